#!/usr/bin/env bash
# curl through the stack downloads 1 MB and 100 MB files from a kernel nginx in the peer
# namespace; the received files must have the served files' sizes and sha256. Then one curl
# fetches 16 files of 1 MB over parallel connections (--parallel: many sockets in one
# process, multiplexed with poll), each file checked.
set -euo pipefail
. "$(dirname "$0")/../lib/netns.sh"
. "$(dirname "$0")/../lib/http.sh"
need_cmd curl nginx ethtool
netns_setup

mkdir -p "$TMPD/www"
mkfile "$TMPD/www/1m.bin" $((1 << 20))
mkfile "$TMPD/www/100m.bin" $((100 << 20))
nginx_peer "$TMPD/www"

for f in 1m.bin 100m.bin; do
    log "curl http://$PEER_IP:8080/$f"
    on_stack curl -sS --fail --max-time 60 -o "$TMPD/got-$f" \
        -w 'http=%{http_code} bytes=%{size_download}\n' "http://$PEER_IP:8080/$f"
    same_file "$TMPD/www/$f" "$TMPD/got-$f"
done

log "curl --parallel: 16 x 1 MB on up to 8 connections"
urls=()
for i in $(seq 1 16); do urls+=(-o "$TMPD/par-$i.bin" "http://$PEER_IP:8080/1m.bin?n=$i"); done
on_stack curl -sS --fail --max-time 60 --parallel --parallel-max 8 --no-keepalive "${urls[@]}"
for i in $(seq 1 16); do same_file "$TMPD/www/1m.bin" "$TMPD/par-$i.bin" 2>/dev/null || die "parallel file $i"; done
log "ok: 16 parallel downloads intact"
