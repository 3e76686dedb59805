#!/usr/bin/env bash
# iperf3 over IPv6: the client through the stack against a kernel `iperf3 -s` in the peer,
# 3 s each way (-6 normal, then -R); then `iperf3 -s` on the stack (no -4: a dual-stack
# listener on ::) against kernel clients over IPv6 and then IPv4. Both ends report JSON; the
# bytes must be accounted on both ends as in test_iperf3: the receiver got at least 1 MiB,
# never more than the sender sent, no more than 8 MiB less, and each end's own count agrees
# with what the other end reports for it.
# timeout: 120
set -euo pipefail
. "$(dirname "$0")/../lib/netns.sh"
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
        bg_stack "$TMPD/srv-$dir.json" iperf3 -s -1 -p 5201 --json
        srv=$BG_PID
        log "kernel iperf3 $fam -c $dst -t 3 against iperf3 -s on the stack"
        for try in $(seq 1 25); do
            rc=0
            on_peer timeout 30 iperf3 $fam -c "$dst" -p 5201 -t 3 --json >"$TMPD/cli-$dir.json" || rc=$?
            [ $rc = 0 ] || grep -q 'refused' "$TMPD/cli-$dir.json" || break
            [ $rc = 0 ] && break
            sleep 0.2
        done ;;
    *)
        bg_peer "$TMPD/srv-$dir.json" iperf3 -s -1 -p 5201 --json
        srv=$BG_PID
        wait_listen "$NS_P" 5201
        log "iperf3 -6 -c $PEER_IP6 -t 3 ${r[*]}"
        on_stack timeout 30 iperf3 -6 -c "$PEER_IP6" -p 5201 -t 3 --json "${r[@]}" >"$TMPD/cli-$dir.json" || rc=$? ;;
    esac
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
if d != "reverse":
    sent, recvd = ce["sum_sent"]["bytes"], se["sum_received"]["bytes"]
    mirror = (ce["sum_received"]["bytes"], recvd)
else:
    sent, recvd = se["sum_sent"]["bytes"], ce["sum_received"]["bytes"]
    mirror = (ce["sum_sent"]["bytes"], sent)
fam = c["start"]["connected"][0]["remote_host"]
gbps = recvd * 8 / 3 / 1e9
print(f"{d}: {fam}: sent {sent} received {recvd} ({gbps:.2f} Gbit/s)", file=sys.stderr)
if d == "server4" and not fam.startswith("198.18."):
    sys.exit(f"server4 connected to {fam}")
if d != "server4" and not fam.startswith("2001:2::"):
    sys.exit(f"{d} connected to {fam}, not IPv6")
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
