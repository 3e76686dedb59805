#!/usr/bin/env bash
# iperf3 client through the stack against a kernel `iperf3 -s` in the peer, 3 s each way
# (normal, then -R); then `iperf3 -s -4` through the stack against a kernel client. Both ends
# report JSON; the bytes must be accounted on both ends (tests/lib/iperf3_check.py). In stack
# mode two more: "pair", both ends on tcpsm (the server on a second stack, 198.18.0.11 on the
# peer's veth end: vnet headers and super-segments both ways), and "plain", the client with
# TCPSM_OFFLOAD=0 (no vnet header: what a kernel refusing it gets). Each run's server and its
# kernel-mode retry: iperf3_run (tests/lib/iperf3.sh).
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
    case $dir in
    pair) iperf3_run $dir pair -4 on_stack -c "$PAIR_IP" -p 5201 -t 3 ;;
    # the server on the stack (-4: an IPv6 listener would be the kernel's)
    server) iperf3_run $dir stack -4 on_peer -c "$STACK_IP" -p 5201 -t 3 ;;
    reverse) TCPSM_OFFLOAD=1 iperf3_run $dir peer "" on_stack -c "$PEER_IP" -p 5201 -t 3 -R ;;
    forward) TCPSM_OFFLOAD=1 iperf3_run $dir peer "" on_stack -c "$PEER_IP" -p 5201 -t 3 ;;
    plain) TCPSM_OFFLOAD=0 iperf3_run $dir peer "" on_stack -c "$PEER_IP" -p 5201 -t 3 ;;
    esac
    iperf3_check "$dir" "$IPERF_RC"
done
