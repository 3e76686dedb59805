#!/usr/bin/env bash
# The receive ring with the veth offloads on (TCPSM_TEST_OFFLOADS=1): the kernel peer's nginx
# sends 64 KiB TSO frames, larger than a ring slot; each must come whole past the ring (the
# socket queue, PACKET_COPY_THRESH) in order with the MTU-sized frames that fill slots. curl
# through the stack downloads 32 MB (sha256), and in stack mode the stack's log must show the
# ring in use, frames read past it, and none truncated.
# timeout: 90
set -euo pipefail
. "$(dirname "$0")/../lib/netns.sh"
. "$(dirname "$0")/../lib/http.sh"
need_cmd curl nginx
TCPSM_TEST_OFFLOADS=1 netns_setup

mkdir -p "$TMPD/www"
mkfile "$TMPD/www/32m.bin" $((32 << 20))
nginx_conf "$TMPD/ngx" 8080 "$TMPD/www"
nginx_start bg_peer "$TMPD/ngx"
wait_listen "$NS_P" 8080

stack_mode && export TCPSM_LOG=info
on_stack curl -sS --fail --max-time 60 -o "$TMPD/got.bin" \
    -w 'http=%{http_code} bytes=%{size_download} secs=%{time_total}\n' \
    "http://$PEER_IP:8080/32m.bin" 2>"$TMPD/curl.err" || { cat "$TMPD/curl.err" >&2; false; }
cat "$TMPD/curl.err" >&2
same_file "$TMPD/www/32m.bin" "$TMPD/got.bin"
if stack_mode; then
    grep -q 'receive ring (TPACKET_V2)' "$TMPD/curl.err" || die "the stack did not receive through the ring"
    past=$(sed -n 's/.*read whole past the ring \([0-9]*\).*/\1/p' "$TMPD/curl.err" | tail -1)
    trunc=$(sed -n 's/.*truncated \([0-9]*\),.*/\1/p' "$TMPD/curl.err" | tail -1)
    log "frames read whole past the ring: ${past:-?}, truncated: ${trunc:-?}"
    [ "${past:-0}" -gt 0 ] || die "no large frame came past the ring (offloads off?)"
    [ "${trunc:-1}" -eq 0 ] || die "$trunc frames truncated"
fi
