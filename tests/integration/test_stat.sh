#!/usr/bin/env bash
# tcpsm stat: socat on the stack receives exactly N bytes from a kernel client that then keeps
# the connection open; while it is open `tcpsm stat --json` must parse and show this stack
# (address, interface, pid, program) with the listener in LISTEN, then the connection in
# ESTABLISHED between the right endpoints, bytes_received == N, nothing left in its receive
# queue, and the stack's counters (its ACKs among the frames sent after the stack lock); the
# text form shows the same. After socat exits its region is gone; the region of a dead process
# is removed by the next tcpsm stat.
# timeout: 60
set -euo pipefail
. "$(dirname "$0")/../lib/netns.sh"
stack_mode || skip "tcpsm stat shows the stack only"
need_cmd socat python3 ethtool
netns_setup
export TCPSM_RUN_DIR=$TMPD/run
tcpsm=$TCPSM_BUILD/tcpsm
N=123457

mkfile "$TMPD/data.bin" $N
bg_stack "$TMPD/srv.log" socat -u "TCP-LISTEN:9000,bind=$STACK_IP" "OPEN:$TMPD/got.bin,creat"
srv=$BG_PID
for i in $(seq 50); do [ -S "$TMPD/run/$srv.sock" ] && break; sleep 0.2; done
[ -S "$TMPD/run/$srv.sock" ] || die "no control socket $TMPD/run/$srv.sock (ls: $(ls "$TMPD/run" 2>&1))"
# Before the client: the listener (socat closes it once it has accepted).
"$tcpsm" stat --pid "$srv" >"$TMPD/stat0.txt"
grep -Eq "^LISTEN +0 +0 +$STACK_IP:9000 +\*:\*" "$TMPD/stat0.txt" ||
    { cat "$TMPD/stat0.txt" >&2; die "no LISTEN line for socat's listener"; }
# The client sends N bytes and holds the connection until the checks are done (30 s at most).
bg_peer "$TMPD/cli.log" bash -c "{ cat '$TMPD/data.bin'; $(hold_until "$TMPD/release" 30); } |
    socat -u - TCP:$STACK_IP:9000"
cli=$BG_PID

ok=0
for i in $(seq 40); do
    "$tcpsm" stat --json >"$TMPD/stat.json" || die "tcpsm stat --json failed"
    if python3 - "$TMPD/stat.json" "$srv" "$STACK_IP" "$PEER_IP" "$IF_S" $N <<'PY'
import json, sys
path, pid, me, peer, ifname, n = sys.argv[1:]
stacks = json.load(open(path))                    # must parse
st = [s for s in stacks if s["pid"] == int(pid)]
assert len(st) == 1, "stack of pid %s not listed: %s" % (pid, [s["pid"] for s in stacks])
s = st[0]
assert s["address"] == me and s["interface"] == ifname and s["comm"] == "socat", s
assert s["counters"]["tcp_in"] > 0 and s["counters"]["tcp_passive_opens"] == 1, s["counters"]
est = [x for x in s["sockets"] if x["state"] == "ESTABLISHED"]
assert len(est) == 1, s["sockets"]
e = est[0]
assert e["local"] == me + ":9000" and e["remote"].startswith(peer + ":"), e
if e["bytes_received"] != int(n) or e["recv_q"] != 0:
    sys.exit(3)                                   # not all there yet: try again
assert e["send_q"] == 0 and e["rto_us"] > 0 and e["mss"] > 0 and e["cwnd"] > 0, e
assert e["segs_in"] > 0 and e["held"] is True, e
# socat's ACKs are headers only: sent after the stack lock (netdev_packet.c), counted apart
ln = s["link"]
assert 0 < ln["tx_after_lock"] <= ln["tx_frames"], ln
assert 0 < ln["tx_batches"] <= ln["tx_after_lock"], ln
assert isinstance(ln["tx_kept"], int), ln        # published (it counts calls, not frames)
PY
    then ok=1; break
    else rc=$?; [ $rc -eq 3 ] || { cat "$TMPD/stat.json" >&2; die "tcpsm stat --json: wrong content"; }
    fi
    sleep 0.25
done
[ $ok = 1 ] || { cat "$TMPD/stat.json" >&2; die "the connection never showed $N bytes received"; }
log "tcpsm stat --json: ESTABLISHED, $N bytes received, counters"
"$tcpsm" stat >"$TMPD/stat.txt"
cat "$TMPD/stat.txt" >&2
grep -q "^stack $STACK_IP/$PREFIX on $IF_S" "$TMPD/stat.txt" || die "text: no stack line"
grep -Eq "^ESTAB +0 +0 +$STACK_IP:9000 +$PEER_IP:[0-9]+" "$TMPD/stat.txt" || die "text: no ESTAB line"
grep -q "bytes_received:$N " "$TMPD/stat.txt" || die "text: no bytes_received:$N"
touch "$TMPD/release"

bg_wait "$cli" 20 || die "the client failed"
bg_wait "$srv" 20 || die "socat on the stack failed"
same_file "$TMPD/data.bin" "$TMPD/got.bin"
[ ! -e "$TMPD/run/$srv.json" ] && [ ! -e "$TMPD/run/$srv.sock" ] ||
    die "the region of the exited process is still there: $(ls "$TMPD/run")"
# A region left by a process that died without cleaning up (SIGKILL) is ignored and removed.
sleep 0 & dead=$!; wait $dead
cp "$TMPD/stat.json" "$TMPD/run/$dead.json"
out=$("$tcpsm" stat)
grep -q 'no tcpsm stack running' <<<"$out" || die "a dead process's region was listed: $out"
[ ! -e "$TMPD/run/$dead.json" ] || die "the dead process's region was not removed"
log "stat: live connection seen right; regions of exited and dead processes gone"
