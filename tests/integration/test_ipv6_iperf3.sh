#!/usr/bin/env bash
# iperf3 over IPv6: the client through the stack against a kernel `iperf3 -s` in the peer,
# 3 s each way (-6 normal, then -R); then `iperf3 -s` on the stack (no -4: a dual-stack
# listener on ::) against kernel clients over IPv6 and then IPv4. Both ends report JSON; the
# bytes must be accounted on both ends (tests/lib/iperf3_check.py), and each connection must
# have used the family under test. Each run's server and its kernel-mode retry: iperf3_run
# (tests/lib/iperf3.sh).
# timeout: 120
set -euo pipefail
. "$(dirname "$0")/../lib/netns.sh"
. "$(dirname "$0")/../lib/iperf3.sh"
need_cmd iperf3 python3 ethtool
netns_setup v6

for dir in forward reverse server6 server4; do
    pfx=2001:2::
    case $dir in
    forward) iperf3_run $dir peer "" on_stack -6 -c "$PEER_IP6" -p 5201 -t 3 ;;
    reverse) iperf3_run $dir peer "" on_stack -6 -c "$PEER_IP6" -p 5201 -t 3 -R ;;
    server6) iperf3_run $dir stack "" on_peer -6 -c "$STACK_IP6" -p 5201 -t 3 ;;
    server4) iperf3_run $dir stack "" on_peer -4 -c "$STACK_IP" -p 5201 -t 3
        pfx=198.18. ;;
    esac
    iperf3_check "$dir" "$IPERF_RC" "$pfx"
done
