#!/usr/bin/env bash
# A peer that vanishes: the client through the stack streams to a kernel sink; after 1 MB
# the peer namespace drops every packet (nftables); the client keeps sending and, with
# TCP_USER_TIMEOUT 3 s, its send fails with ETIMEDOUT (RFC 9293 3.8.3, RFC 5482). The bytes
# the sink got before the drop are checked against the pattern.
# timeout: 90
set -euo pipefail
. "$(dirname "$0")/../lib/netns.sh"
. "$(dirname "$0")/../lib/impair.sh"
need_cmd nft ethtool
probe=$(need_tool tcp_probe)
netns_setup

bg_peer "$TMPD/sink.log" "$probe" serve 9200 --sink --max-seconds 60
sink=$BG_PID
wait_listen "$NS_P" 9200
bg_stack "$TMPD/client.log" "$probe" connect "$PEER_IP" 9200 --user-timeout 3000 \
    --send 1G --pause-after 1M --pause-file "$TMPD/go" --max-seconds 45
client=$BG_PID
wait_log "$TMPD/client.log" '^paused' 15
sleep 0.5      # let the first megabyte be acknowledged before the peer goes away
impair_drop_all "$NS_P"
touch "$TMPD/go"
rc=0
bg_wait $client 50 || rc=$?
log "client: rc=$rc $(cat "$TMPD/client.log")"
grep -q 'result=error errno=ETIMEDOUT' "$TMPD/client.log" || die "client: expected ETIMEDOUT"
bg_stop $sink || true
log "sink: $(cat "$TMPD/sink.log")"
grep -q 'pattern=ok' "$TMPD/sink.log" || die "the sink received corrupted bytes"
got=$(sed -n 's/.* received=\([0-9]*\).*/\1/p' "$TMPD/sink.log")
[ "${got:-0}" -ge 1048576 ] || die "the sink got ${got:-0} bytes before the drop, expected >= 1 MiB"
dropped=$(nft_count "$NS_P" vanish-in)
log "peer dropped ${dropped:-?} packets after vanishing"
