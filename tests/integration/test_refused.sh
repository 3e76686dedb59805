#!/usr/bin/env bash
# A connect to a port nobody listens on in the peer: the kernel answers RST, the program
# through the stack sees ECONNREFUSED — promptly (curl exit 7 "Connection refused" and
# tcp_probe's connect errno), for a blocking and a non-blocking connect.
# timeout: 60
set -euo pipefail
. "$(dirname "$0")/../lib/netns.sh"
need_cmd curl ethtool
probe=$(need_tool tcp_probe)
netns_setup

rc=0
out=$(on_stack curl -v --max-time 10 "http://$PEER_IP:9/" 2>&1) || rc=$?
log "curl: rc=$rc $(grep -E 'failed|curl:' <<<"$out")"
[ "$rc" = 7 ] || die "curl exit $rc, expected 7 (couldn't connect)"
grep -q 'Connection refused' <<<"$out" || die "curl did not report 'Connection refused'"

for mode in blocking nonblocking; do
    extra=()
    [ $mode = nonblocking ] && extra=(--connect-timeout 5000)
    rc=0
    out=$(on_stack "$probe" connect "$PEER_IP" 9 "${extra[@]}" --max-seconds 10 2>&1) || rc=$?
    log "tcp_probe ($mode): rc=$rc $out"
    grep -q 'result=error errno=ECONNREFUSED' <<<"$out" || die "$mode connect: expected ECONNREFUSED"
    ms=$(sed -n 's/.* ms=\([0-9]*\).*/\1/p' <<<"$out" | tail -1)
    # A refusal is an answer, not a timeout: well under the 5 s bound.
    [ "${ms:-99999}" -lt 4000 ] || die "$mode connect took ${ms} ms to report the refusal"
done
