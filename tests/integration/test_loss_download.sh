#!/usr/bin/env bash
# The curl download with nftables loss in the peer namespace: 2 % of the TCP packets dropped
# in each direction (numgen random). curl through the stack must get the 16 MB file with
# the right sha256, and the peer's counters must show drops.
# timeout: 120
set -euo pipefail
. "$(dirname "$0")/../lib/netns.sh"
. "$(dirname "$0")/../lib/http.sh"
. "$(dirname "$0")/../lib/impair.sh"
need_cmd curl nginx nft ethtool
netns_setup

mkdir -p "$TMPD/www"
mkfile "$TMPD/www/16m.bin" $((16 << 20))
nginx_peer "$TMPD/www"
impair_loss "$NS_P" 2

log "curl http://$PEER_IP:8080/16m.bin with 2% loss each way"
on_stack curl -sS --fail --max-time 100 -o "$TMPD/got.bin" \
    -w 'http=%{http_code} bytes=%{size_download} secs=%{time_total}\n' "http://$PEER_IP:8080/16m.bin"
same_file "$TMPD/www/16m.bin" "$TMPD/got.bin"
impair_loss_dropped "$NS_P"
