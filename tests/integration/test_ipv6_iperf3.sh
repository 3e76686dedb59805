#!/usr/bin/env bash
# iperf3 over IPv6: the client through the stack against a kernel `iperf3 -s` in the peer,
# 3 s each way (-6 normal, then -R); then `iperf3 -s` on the stack (no -4: a dual-stack
# listener on ::) against kernel clients over IPv6 and then IPv4. Both ends report JSON; the
# bytes must be accounted on both ends (tests/lib/iperf3_check.py), and each connection must
# have used the family under test.
# timeout: 120
set -euo pipefail
. "$(dirname "$0")/../lib/netns.sh"
. "$(dirname "$0")/../lib/iperf3.sh"
need_cmd iperf3 python3 ethtool
netns_setup v6

for dir in forward reverse server6 server4; do
    r=()
    [ $dir = reverse ] && r=(-R)
    rc=0
    case $dir in
    server*)
        dst=$STACK_IP6 fam=-6
        [ $dir = server4 ] && dst=$STACK_IP fam=-4
        for attempt in 1 2; do
            bg_stack "$TMPD/srv-$dir.json" iperf3 -s -1 -p 5201 --json
            srv=$BG_PID
            stack_mode || wait_listen "$NS_S" 5201
            log "kernel iperf3 $fam -c $dst -t 3 against iperf3 -s on the stack"
            iperf3_client_retry on_peer "$TMPD/cli-$dir.json" $fam -c "$dst" -p 5201 -t 3
            rc=$IPERF_RC
            # Kernel mode only (no tcpsm in it): the kernel's own one-off server sometimes
            # stops listening without a test and writes nothing (a CI run: every connect
            # refused for 15 s; esnet/iperf#1735): once more with a fresh one.
            stack_mode || [ $attempt = 2 ] || [ -s "$TMPD/srv-$dir.json" ] ||
                bg_wait $srv 15 || {
                log "the kernel's iperf3 server hung without a test: a fresh one"
                kill $srv 2>/dev/null; bg_wait $srv 5 || true; continue; }
            break
        done ;;
    *)
        bg_peer "$TMPD/srv-$dir.json" iperf3 -s -1 -p 5201 --json
        srv=$BG_PID
        wait_listen "$NS_P" 5201
        log "iperf3 -6 -c $PEER_IP6 -t 3 ${r[*]}"
        on_stack timeout 30 iperf3 -6 -c "$PEER_IP6" -p 5201 -t 3 --json "${r[@]}" >"$TMPD/cli-$dir.json" || rc=$? ;;
    esac
    bg_wait $srv 15 || log "iperf3 server did not exit by itself"
    pfx=2001:2::
    [ $dir = server4 ] && pfx=198.18.
    iperf3_check "$dir" "$rc" "$pfx"
done
