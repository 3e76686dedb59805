#!/usr/bin/env bash
# Least privilege: `tcpsm --user NAME` runs a server as an unprivileged user (a throwaway system
# user made for the test) on the stack. The wrapper's helper opens the link as root and hands it
# over through the socket file next to the shared region; the server has no capability at all
# (CapEff 0 checked) and serves a 3 MB file and a 64 KiB one byte-exact to a kernel client.
# Then the refusals, each ONE line at start naming the reason, the program not run:
#   - `nobody` on the same stack: permission denied on the socket file (0600, NAME's);
#   - after the owner is gone: no stack owner serves the socket file.
# Last, a privileged program as the owner (TCPSM_SHARE): a root http.server on the stack lets
# the group nogroup in; curl as nobody, started separately, downloads 3 MB byte-exact on it.
# Then a second root http.server with the same TCPSM_SHARE stands by; when the first exits it
# takes over the socket file (a new one, same owner, group and mode) and nobody's curl runs again.
# timeout: 120
set -euo pipefail
. "$(dirname "$0")/../lib/netns.sh"
need_cmd python3
need_cmd curl
command -v useradd >/dev/null || skip "useradd missing"
command -v setpriv >/dev/null || skip "setpriv (util-linux) missing"
stack_mode || skip "checks the stack's --user (no kernel-mode equivalent)"
netns_setup

user=tcpsmu$(printf '%x' $$)
useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$user" ||
    die "useradd $user"
at_cleanup "userdel $user"
uid=$(id -u "$user")

www=$TMPD/www
mkdir -p "$www"
mkfile "$www/big.bin" 3145728
head -c 65536 /dev/urandom >"$www/small.bin"
chmod 755 "$www"; chmod 644 "$www"/*

port=8080
STACK_OPTS=(--user "$user")
bg_stack "$TMPD/server.log" python3 -m http.server --bind "$STACK_IP" --directory "$www" $port
srv=$BG_PID
wait_connect "$NS_P" "$STACK_IP" $port 20 || die "server not reachable: $(cat "$TMPD/server.log")"

# The server process: NAME's uid, no effective (or permitted) capability.
py=$(pgrep -u "$uid" -f "http.server" | head -1)
[ -n "$py" ] || die "no python3 running as $user"
grep -q "^CapEff:[[:space:]]*0000000000000000" "/proc/$py/status" ||
    die "the server kept capabilities: $(grep Cap /proc/$py/status | tr '\n' ' ')"
grep -q "^CapPrm:[[:space:]]*0000000000000000" "/proc/$py/status" || die "permitted capabilities left"
sock=$(ls /dev/shm/tcpsm-*-"$IF_S"-"$STACK_IP".sock 2>/dev/null) || die "no socket file"
[ "$(stat -c '%U %a' "$sock")" = "$user 600" ] || die "socket file: $(stat -c '%U %G %a' "$sock")"

for f in big.bin small.bin; do
    on_peer curl -sS --max-time 30 -o "$TMPD/got.$f" "http://$STACK_IP:$port/$f" || die "curl $f"
    same_file "$www/$f" "$TMPD/got.$f" "$f"
done
log "served byte-exact by $user (uid $uid, no capability) through --user"

lib=$TCPSM_BUILD/libtcpsm.so
env_stack=(TCPSM_IF="$IF_S" TCPSM_ADDR="$STACK_IP/$PREFIX")
# refused PROGRAM-as-nobody: runs a program that would print "ran" as nobody on the stack
refused() {
    on_kstack setpriv --reuid=nobody --regid=nogroup --clear-groups \
        env LD_PRELOAD="$lib" "${env_stack[@]}" python3 -c 'print("ran")' >"$TMPD/out" 2>"$TMPD/err" &&
        die "nobody ran on the stack: $(cat "$TMPD/out" "$TMPD/err")"
    ! grep -q ran "$TMPD/out" || die "the program ran despite the error"
    [ "$(grep -c . "$TMPD/err")" = 1 ] || die "expected one error line, got: $(cat "$TMPD/err")"
    grep -q "$1" "$TMPD/err" || die "error line does not say '$1': $(cat "$TMPD/err")"
    log "refused with: $(cat "$TMPD/err")"
}
refused "permission denied on $sock"

bg_stop "$srv" || true
for i in $(seq 1 50); do [ -e "$sock" ] || break; sleep 0.1; done
[ ! -e "$sock" ] || die "the socket file outlived its owner"
refused "no stack owner serves $sock"

# A privileged program as the owner: python3's http.server run as root with --share :nogroup:0660
# serves the socket file itself; curl run separately as nobody (group nogroup, no capability)
# joins that stack and downloads from a kernel server in the peer, byte-exact.
STACK_OPTS=(--share :nogroup:0660)
bg_stack "$TMPD/root-server.log" python3 -m http.server --bind "$STACK_IP" --directory "$www" $port
root_srv=$BG_PID
wait_connect "$NS_P" "$STACK_IP" $port 20 || die "root server not reachable: $(cat "$TMPD/root-server.log")"
for i in $(seq 1 30); do [ -e "$sock" ] && break; sleep 0.1; done
[ "$(stat -c '%U %G %a' "$sock" 2>/dev/null)" = "root nogroup 660" ] ||
    die "TCPSM_SHARE socket file: $(stat -c '%U %G %a' "$sock" 2>&1)"
bg_peer "$TMPD/peer-server.log" python3 -m http.server --bind "$PEER_IP" --directory "$www" 8081
wait_listen "$NS_P" 8081 10 || die "peer server"
mkdir -m 1777 "$TMPD/nobody"   # nobody writes there
on_kstack setpriv --reuid=nobody --regid=nogroup --clear-groups \
    env LD_PRELOAD="$lib" "${env_stack[@]}" curl -sS --max-time 30 -o "$TMPD/nobody/nobody.bin" \
    "http://$PEER_IP:8081/big.bin" 2>"$TMPD/nobody.err" || die "curl as nobody: $(cat "$TMPD/nobody.err")"
same_file "$www/big.bin" "$TMPD/nobody/nobody.bin"
log "nobody's curl ran on the stack of a root program that allows its group (TCPSM_SHARE)"

# Takeover: a second root program with the same TCPSM_SHARE joins the stack and stands by; when
# the first one (the socket file's server) exits, the second serves the file, and nobody can
# still join the stack.
bg_stack "$TMPD/root-server2.log" python3 -m http.server --bind "$STACK_IP" --directory "$www" 8082
srv2=$BG_PID
wait_connect "$NS_P" "$STACK_IP" 8082 20 || die "second root server not reachable: $(cat "$TMPD/root-server2.log")"
sock_ino=$(stat -c %i "$sock")
bg_stop "$root_srv" || true
for i in $(seq 1 50); do
    [ -e "$sock" ] && [ "$(stat -c %i "$sock")" != "$sock_ino" ] && break
    sleep 0.1
done
[ -e "$sock" ] && [ "$(stat -c %i "$sock")" != "$sock_ino" ] ||
    die "nobody took over the socket file when its server exited"
[ "$(stat -c '%U %G %a' "$sock")" = "root nogroup 660" ] || die "taken-over socket file: $(stat -c '%U %G %a' "$sock")"
rm -f "$TMPD/nobody/nobody.bin"
on_kstack setpriv --reuid=nobody --regid=nogroup --clear-groups \
    env LD_PRELOAD="$lib" "${env_stack[@]}" curl -sS --max-time 30 -o "$TMPD/nobody/nobody.bin" \
    "http://$PEER_IP:8081/big.bin" 2>"$TMPD/nobody.err" || die "curl as nobody after the takeover: $(cat "$TMPD/nobody.err")"
same_file "$www/big.bin" "$TMPD/nobody/nobody.bin"
on_peer curl -sS --max-time 30 -o "$TMPD/got2.bin" "http://$STACK_IP:8082/big.bin" || die "curl from the second server"
same_file "$www/big.bin" "$TMPD/got2.bin"
bg_stop "$srv2" || true
log "the second root program took over the socket file; nobody's curl ran again"
log "ok"
