#!/usr/bin/env bash
# iperf3 client through the stack against a kernel `iperf3 -s` in the peer, 3 s each way
# (normal, then -R); then `iperf3 -s -4` through the stack against a kernel client. Both ends report JSON; the bytes must be accounted on both ends: the
# receiver got at least 1 MiB, never more than the sender sent, and no more than 8 MiB less
# (what can be in flight when the test ends); each end's own count agrees with what the
# other end reports for it. In stack mode two more: "pair", both ends on tcpsm (the server on a
# second stack, 198.18.0.11 on the peer's veth end: vnet headers and super-segments both ways),
# and "plain", the client with TCPSM_OFFLOAD=0 (no vnet header: what a kernel refusing it gets).
# timeout: 90
set -euo pipefail
. "$(dirname "$0")/../lib/netns.sh"
need_cmd iperf3 python3 ethtool
netns_setup

PAIR_IP=198.18.0.11
dirs="forward reverse server"
stack_mode && dirs="$dirs pair plain"
for dir in $dirs; do
    r=()
    [ $dir = reverse ] && r=(-R)
    rc=0
    if [ $dir = pair ]; then
        bg_ns "$NS_P" "$TMPD/srv-$dir.json" "$TCPSM_BUILD/tcpsm" --if "$IF_P" --addr "$PAIR_IP/$PREFIX" \
            -- iperf3 -s -4 -1 -p 5201 --json
        srv=$BG_PID
        log "iperf3 -c $PAIR_IP -t 3: tcpsm to tcpsm"
        for try in $(seq 1 25); do
            rc=0
            on_stack timeout 30 iperf3 -c "$PAIR_IP" -p 5201 -t 3 --json >"$TMPD/cli-$dir.json" || rc=$?
            [ $rc = 0 ] || grep -q 'refused' "$TMPD/cli-$dir.json" || break
            [ $rc = 0 ] && break
            sleep 0.2
        done
    elif [ $dir = server ]; then
        # The server on the stack (-4: an IPv6 listener would be the kernel's). ss cannot see
        # a stack listener, so the client retries while it is refused (a one-off server
        # counts only an accepted test).
        bg_stack "$TMPD/srv-$dir.json" iperf3 -s -4 -1 -p 5201 --json
        srv=$BG_PID
        log "kernel iperf3 -c $STACK_IP -t 3 against iperf3 -s on the stack"
        for try in $(seq 1 25); do
            rc=0
            on_peer timeout 30 iperf3 -c "$STACK_IP" -p 5201 -t 3 --json >"$TMPD/cli-$dir.json" || rc=$?
            [ $rc = 0 ] || grep -q 'refused' "$TMPD/cli-$dir.json" || break
            [ $rc = 0 ] && break
            sleep 0.2
        done
    else
        bg_peer "$TMPD/srv-$dir.json" iperf3 -s -1 -p 5201 --json
        srv=$BG_PID
        wait_listen "$NS_P" 5201
        log "iperf3 -c $PEER_IP -t 3 ${r[*]} ($dir)"
        off=1
        [ $dir = plain ] && off=0
        TCPSM_OFFLOAD=$off on_stack timeout 30 iperf3 -c "$PEER_IP" -p 5201 -t 3 --json "${r[@]}" \
            >"$TMPD/cli-$dir.json" || rc=$?
    fi
    bg_wait $srv 15 || log "iperf3 server did not exit by itself"
    [ $rc = 0 ] || { cat "$TMPD/cli-$dir.json" >&2; die "iperf3 client exit $rc ($dir)"; }
    python3 - "$dir" "$TMPD/cli-$dir.json" "$TMPD/srv-$dir.json" <<'PY' || die "iperf3 byte accounting ($dir)"
import json, sys
d, cf, sf = sys.argv[1:4]
c, s = json.load(open(cf)), json.load(open(sf))
for name, j in (("client", c), ("server", s)):
    if "error" in j:
        sys.exit(f"{name} error: {j['error']}")
ce, se = c["end"], s["end"]
if d in ("forward", "server", "pair", "plain"):
    sent, recvd = ce["sum_sent"]["bytes"], se["sum_received"]["bytes"]
    mirror = (ce["sum_received"]["bytes"], recvd)        # the client's copy of the server's count
else:
    sent, recvd = se["sum_sent"]["bytes"], ce["sum_received"]["bytes"]
    mirror = (ce["sum_sent"]["bytes"], sent)
gbps = recvd * 8 / 3 / 1e9
print(f"{d}: sent {sent} received {recvd} ({gbps:.2f} Gbit/s)", file=sys.stderr)
if recvd < (1 << 20):
    sys.exit(f"only {recvd} bytes received")
if recvd > sent:
    sys.exit(f"received {recvd} > sent {sent}")
if sent - recvd > (8 << 20):
    sys.exit(f"{sent - recvd} bytes sent but never received")
if mirror[0] != mirror[1]:
    sys.exit(f"the two ends disagree: {mirror[0]} vs {mirror[1]}")
PY
done
