#!/usr/bin/env bash
# iperf3 client through the stack against a kernel `iperf3 -s` in the peer, 3 s each way
# (normal, then -R); then `iperf3 -s -4` through the stack against a kernel client. Both ends
# report JSON; the bytes must be accounted on both ends (tests/lib/iperf3_check.py). In stack
# mode two more: "pair", both ends on tcpsm (the server on a second stack, 198.18.0.11 on the
# peer's veth end: vnet headers and super-segments both ways), and "plain", the client with
# TCPSM_OFFLOAD=0 (no vnet header: what a kernel refusing it gets).
# timeout: 90
set -euo pipefail
. "$(dirname "$0")/../lib/netns.sh"
. "$(dirname "$0")/../lib/iperf3.sh"
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
        iperf3_client_retry on_stack "$TMPD/cli-$dir.json" -c "$PAIR_IP" -p 5201 -t 3
        rc=$IPERF_RC
    elif [ $dir = server ]; then
        # The server on the stack (-4: an IPv6 listener would be the kernel's).
        bg_stack "$TMPD/srv-$dir.json" iperf3 -s -4 -1 -p 5201 --json
        srv=$BG_PID
        log "kernel iperf3 -c $STACK_IP -t 3 against iperf3 -s on the stack"
        iperf3_client_retry on_peer "$TMPD/cli-$dir.json" -c "$STACK_IP" -p 5201 -t 3
        rc=$IPERF_RC
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
    iperf3_check "$dir" "$rc"
done
