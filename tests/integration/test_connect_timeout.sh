#!/usr/bin/env bash
# The peer drops every SYN to port 9001 (nftables, counted): the connect never completes.
# curl --connect-timeout 2 gives up (exit 28); a blocking connect with TCP_USER_TIMEOUT 3 s
# fails with ETIMEDOUT; the peer counted the SYN and its retransmissions.
# timeout: 90
set -euo pipefail
. "$(dirname "$0")/../lib/netns.sh"
. "$(dirname "$0")/../lib/impair.sh"
need_cmd curl nft ethtool
probe=$(need_tool tcp_probe)
netns_setup
impair_drop_syn "$NS_P" 9001

rc=0
out=$(on_stack curl -sS --connect-timeout 2 --max-time 10 "http://$PEER_IP:9001/" 2>&1) || rc=$?
log "curl: rc=$rc $out"
[ "$rc" = 28 ] || die "curl exit $rc, expected 28 (timeout)"
n1=$(nft_count "$NS_P" 'dport 9001')
log "peer dropped $n1 SYN(s) during curl's 2 s"
[ "${n1:-0}" -ge 2 ] || die "expected the SYN and at least one retransmission, peer saw ${n1:-0}"

rc=0
out=$(on_stack "$probe" connect "$PEER_IP" 9001 --user-timeout 3000 --max-seconds 40 2>&1) || rc=$?
log "tcp_probe: rc=$rc $out"
grep -q 'result=error errno=ETIMEDOUT' <<<"$out" || die "blocking connect: expected ETIMEDOUT"
n2=$(nft_count "$NS_P" 'dport 9001')
log "peer dropped $((n2 - n1)) SYN(s) during the blocking connect"
[ $((n2 - n1)) -ge 2 ] || die "expected SYN retransmissions, peer saw $((n2 - n1))"
