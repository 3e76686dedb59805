#!/usr/bin/env bash
# wget through the stack downloads 1 MB and 100 MB files from a kernel nginx in the peer;
# sizes and sha256 must match the served files.
set -euo pipefail
. "$(dirname "$0")/../lib/netns.sh"
. "$(dirname "$0")/../lib/http.sh"
need_cmd wget nginx ethtool
netns_setup

mkdir -p "$TMPD/www"
mkfile "$TMPD/www/1m.bin" $((1 << 20))
mkfile "$TMPD/www/100m.bin" $((100 << 20))
nginx_peer "$TMPD/www"

for f in 1m.bin 100m.bin; do
    log "wget http://$PEER_IP:8080/$f"
    on_stack wget -q --tries=1 --timeout=30 -O "$TMPD/got-$f" "http://$PEER_IP:8080/$f"
    same_file "$TMPD/www/$f" "$TMPD/got-$f"
done
