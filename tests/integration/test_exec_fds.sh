#!/usr/bin/env bash
# Stack sockets across exec (issue 6). Each exec'd program finds the stack sockets it inherited
# on the same fd numbers (their placeholders' identities lead back to them), and a socket whose
# fd was close-on-exec is released as Linux closes it:
#  1. socket activation: systemd-socket-activate creates the listener on the stack, waits for
#     the first connection and execs a python3 server that takes it from LISTEN_FDS (fd 3);
#  2. inetd style: systemd-socket-activate --inetd --accept forks a child per connection that
#     execs cat with the connection as its stdin and stdout;
#  3. socat TCP-LISTEN,fork EXEC:cat,nofork: the same through socat (cat is exec'd in socat's
#     child, on the connection itself).
# Kernel clients in the peer send their own random data and must get exactly those bytes back.
# timeout: 150
set -euo pipefail
. "$(dirname "$0")/../lib/netns.sh"
need_cmd socat python3 systemd-socket-activate
netns_setup
PY=$(command -v python3)
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3

for i in $(seq 1 40); do head -c $((65536 + i * 997)) /dev/urandom >"$TMPD/in.$i"; done
# client TAG PORT N: sends in.N, writes the echo to out.TAG.N
client() {
    on_peer timeout 30 socat -t 30 -T 30 - "TCP:$STACK_IP:$2" <"$TMPD/in.$3" \
        >"$TMPD/out.$1.$3" 2>"$TMPD/err.$1.$3"
}
check() {
    [ "$(sha "$TMPD/in.$2")" = "$(sha "$TMPD/out.$1.$2")" ] ||
        die "$1 client $2: echo differs: sent $(fsize "$TMPD/in.$2"), got $(fsize "$TMPD/out.$1.$2") bytes ($(cat "$TMPD/err.$1.$2"))"
}
# sequential then concurrent clients of one server
clients() {
    local tag=$1 port=$2 i pids=()
    for i in $(seq 1 10); do client "$tag" "$port" "$i" || die "$tag client $i failed: $(cat "$TMPD/err.$tag.$i")"; check "$tag" "$i"; done
    for i in $(seq 11 20); do client "$tag" "$port" "$i" & pids+=($!); done
    for i in "${!pids[@]}"; do wait "${pids[i]}" || die "$tag client $((11 + i)) failed"; done
    for i in $(seq 11 20); do check "$tag" "$i"; done
}

# systemd-socket-activate passes only a few variables to what it execs (TERM, PATH, ...): -E
# NAME passes the library's (the wrapper's LD_PRELOAD and TCPSM_*, the sanitizers' options).
cat >"$TMPD/activate.sh" <<'SH'
#!/bin/sh
for v in $(env | grep -E '^(LD_PRELOAD|TCPSM_[A-Z_]*|ASAN_OPTIONS|UBSAN_OPTIONS|LSAN_OPTIONS)=' | cut -d= -f1); do
    set -- -E "$v" "$@"
done
exec systemd-socket-activate "$@"
SH
chmod +x "$TMPD/activate.sh"

# Under the sanitizer build systemd-socket-activate dies before its main: libcap-ng's
# constructor calls open() (interposed, instrumented) before the preloaded ASan runtime is
# initialised. Parts 1 and 2 need it.
if [ "${TCPSM_SAN:-0}" = 1 ]; then
    log "sanitizer build: parts 1 and 2 (systemd-socket-activate) skipped"
else
log "1. socket activation: the listener made before exec, used by the exec'd python3"
cat >"$TMPD/lfd.py" <<'PY'
import os, socket, sys
assert os.environ.get("LISTEN_FDS") == "1", os.environ.get("LISTEN_FDS")
assert os.environ.get("LISTEN_PID") == str(os.getpid())
l = socket.socket(fileno=3)
assert l.getsockname()[1] == int(sys.argv[1]), l.getsockname()
print("serving on", l.getsockname(), flush=True)
while True:
    c, _ = l.accept()
    while True:
        b = c.recv(65536)
        if not b:
            break
        c.sendall(b)
    c.close()
PY
bg_stack "$TMPD/act.log" "$TMPD/activate.sh" -l "$STACK_IP:7100" "$PY" "$TMPD/lfd.py" 7100
act=$BG_PID
wait_connect "$NS_P" "$STACK_IP" 7100 20   # the first connection: socket-activate execs python3
wait_log "$TMPD/act.log" "serving on" 20 || die "python3 did not take the listener: $(cat "$TMPD/act.log")"
clients act 7100
kill -0 "$act" 2>/dev/null || die "the activated server exited: $(cat "$TMPD/act.log")"
bg_stop "$act" || true

log "2. inetd style: a child per connection execs cat on the connection (stdin/stdout)"
bg_stack "$TMPD/inetd.log" "$TMPD/activate.sh" --inetd -a -l "$STACK_IP:7101" cat
inetd=$BG_PID
wait_connect "$NS_P" "$STACK_IP" 7101 20
clients inetd 7101
kill -0 "$inetd" 2>/dev/null || die "systemd-socket-activate exited: $(cat "$TMPD/inetd.log")"
bg_stop "$inetd" || true
fi

# backlog=128: socat's default (5) overflows under the 10 concurrent clients into SYN cookies,
# and a reset now and then (fork_per_conn's known failure); this test is about exec.
log "3. socat TCP-LISTEN,fork EXEC:cat,nofork: cat exec'd on the connection"
bg_stack "$TMPD/socat.log" socat -t 30 TCP-LISTEN:7102,reuseaddr,fork,backlog=128 EXEC:cat,nofork
sc=$BG_PID
wait_connect "$NS_P" "$STACK_IP" 7102 20
clients socat 7102
kill -0 "$sc" 2>/dev/null || die "socat exited: $(cat "$TMPD/socat.log")"
log "ok: listener and connections across exec, 20 echoes byte-exact per server"
