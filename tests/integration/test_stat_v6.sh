#!/usr/bin/env bash
# tcpsm stat and tcpsm capture on a dual-stack stack (198.18.0.10 and 2001:2::10): socat on the
# stack listens on the IPv6 address; while a kernel client's IPv6 connection holds N bytes
# delivered, `tcpsm stat --json` lists both addresses and the connection ESTABLISHED between
# [2001:2::10]:9003 and [2001:2::1]:port with bytes_received == N; `tcpsm capture 2001:2::10
# host 2001:2::1 and port 9003` (the stack named by its IPv6 address, an IPv6 filter) read by
# tshark shows that connection's handshake.
# timeout: 60
set -euo pipefail
. "$(dirname "$0")/../lib/netns.sh"
stack_mode || skip "tcpsm stat shows the stack only"
need_cmd socat tshark python3 ethtool
netns_setup v6
export TCPSM_RUN_DIR=$TMPD/run
tcpsm=$TCPSM_BUILD/tcpsm
N=54321

mkfile "$TMPD/data.bin" $N
bg_stack "$TMPD/srv.log" socat -u "TCP6-LISTEN:9003,bind=[$STACK_IP6]" "OPEN:$TMPD/got.bin,creat"
srv=$BG_PID
for i in $(seq 50); do [ -S "$TMPD/run/$srv.sock" ] && break; sleep 0.2; done
[ -S "$TMPD/run/$srv.sock" ] || die "no control socket for pid $srv"
( "$tcpsm" capture "$STACK_IP6" host "$PEER_IP6" and port 9003 --seconds 40 2>"$TMPD/cap.err" |
    tshark -r - >"$TMPD/cap.txt" 2>"$TMPD/tshark.err" ) &
cap=$!
BG_PIDS+=("$cap")
wait_log "$TMPD/cap.err" '^tcpsm capture: attached to pid' 10
bg_peer "$TMPD/cli.log" bash -c "{ cat '$TMPD/data.bin'; $(hold_until "$TMPD/release" 30); } |
    socat -u - 'TCP6:[$STACK_IP6]:9003'"
cli=$BG_PID
ok=0
for i in $(seq 40); do
    "$tcpsm" stat --json --addr "$STACK_IP6" >"$TMPD/stat.json" || die "tcpsm stat failed"
    if python3 - "$TMPD/stat.json" "$STACK_IP" "$STACK_IP6" "$PEER_IP6" $N <<'PY'
import json, sys
path, me4, me6, peer6, n = sys.argv[1:]
st = json.load(open(path))
assert len(st) == 1, st
s = st[0]
assert s["address"] == me4 and s["address6"] == me6, s
est = [x for x in s["sockets"] if x["state"] == "ESTABLISHED"]
if not est or est[0]["bytes_received"] != int(n):
    sys.exit(3)
e = est[0]
assert e["local"] == "[%s]:9003" % me6 and e["remote"].startswith("[%s]:" % peer6), e
PY
    then ok=1; break
    else rc=$?; [ $rc -eq 3 ] || { cat "$TMPD/stat.json" >&2; die "wrong stat content"; }
    fi
    sleep 0.25
done
[ $ok = 1 ] || { cat "$TMPD/stat.json" >&2; die "the IPv6 connection never showed $N bytes"; }
"$tcpsm" stat --addr "$STACK_IP6" | tee "$TMPD/stat.txt" >&2
grep -q "^stack $STACK_IP/$PREFIX $STACK_IP6/$PREFIX6 on " "$TMPD/stat.txt" || die "text: stack line"
touch "$TMPD/release"
bg_wait "$cli" 20 || die "client failed"
bg_wait "$srv" 20 || die "socat on the stack failed"
same_file "$TMPD/data.bin" "$TMPD/got.bin"
wait "$cap" || die "capture failed: $(cat "$TMPD/cap.err" "$TMPD/tshark.err")"
head -3 "$TMPD/cap.txt" >&2
grep -Eq "$PEER_IP6 → $STACK_IP6 +TCP .* → 9003 \[SYN\]" "$TMPD/cap.txt" || die "no IPv6 SYN captured"
grep -Eq "$STACK_IP6 → $PEER_IP6 +TCP .*9003 → [0-9]+ \[SYN, ACK\]" "$TMPD/cap.txt" || die "no SYN+ACK"
grep -qv "$PEER_IP6\|$STACK_IP6" "$TMPD/cap.txt" && die "the filter let other hosts through"
log "stat and capture over IPv6: both addresses, the connection, its handshake"
