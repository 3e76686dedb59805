#!/usr/bin/env bash
# Checksums and duplicates: curl through the stack downloads an 8 MB file through the
# impair_bridge flipping one bit in 2 % of the frames, duplicating 2 % and jittering the
# delay (2 +/- 1 ms, which also reorders), both ways. Every corrupted frame must be dropped
# by the IP or TCP checksum (RFC 791, RFC 9293 3.1) and every duplicate ignored: the file
# must arrive with the right sha256.
# timeout: 120
set -euo pipefail
. "$(dirname "$0")/../lib/netns.sh"
. "$(dirname "$0")/../lib/http.sh"
. "$(dirname "$0")/../lib/impair.sh"
need_cmd curl nginx ethtool
netns_setup bridge

seed=${TCPSM_TEST_SEED:-$RANDOM}
bridge_start --corrupt 2 --dup 2 --delay 2 --jitter 1 --seed "$seed" --max-seconds 110

mkdir -p "$TMPD/www"
mkfile "$TMPD/www/8m.bin" $((8 << 20))
nginx_peer "$TMPD/www"

log "curl http://$PEER_IP:8080/8m.bin through corrupt 2%, dup 2%, delay 2+-1 ms (seed $seed)"
on_stack curl -sS --fail --max-time 90 -o "$TMPD/got.bin" \
    -w 'http=%{http_code} bytes=%{size_download} secs=%{time_total}\n' "http://$PEER_IP:8080/8m.bin"
same_file "$TMPD/www/8m.bin" "$TMPD/got.bin"
bg_stop $BRIDGE_PID || true
cat "$BRIDGE_LOG" >&2
[ "$(bridge_sum "$BRIDGE_LOG" corrupted)" -gt 0 ] || die "the bridge corrupted nothing"
[ "$(bridge_sum "$BRIDGE_LOG" duplicated)" -gt 0 ] || die "the bridge duplicated nothing"
