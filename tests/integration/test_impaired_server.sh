#!/usr/bin/env bash
# A server on the stack sending under impairment: nginx through the stack (sendfile) serves
# an 8 MB file to kernel curl in the peer through the impair_bridge (loss 2 %, delay 10 ms,
# reordering 5 %, both ways); the file must arrive with the right sha256.
# timeout: 150
set -euo pipefail
. "$(dirname "$0")/../lib/netns.sh"
. "$(dirname "$0")/../lib/http.sh"
. "$(dirname "$0")/../lib/impair.sh"
need_cmd curl nginx ethtool
netns_setup bridge

seed=${TCPSM_TEST_SEED:-$RANDOM}
bridge_start --loss 2 --delay 10 --reorder 5 --seed "$seed" --max-seconds 140

mkdir -p "$TMPD/www"
mkfile "$TMPD/www/8m.bin" $((8 << 20))
nginx_stack "$TMPD/www"

log "kernel curl http://$STACK_IP:8080/8m.bin through loss 2%, delay 10 ms, reorder 5% (seed $seed)"
on_peer curl -sS --fail --max-time 120 -o "$TMPD/got.bin" \
    -w 'http=%{http_code} bytes=%{size_download} secs=%{time_total}\n' "http://$STACK_IP:8080/8m.bin"
same_file "$TMPD/www/8m.bin" "$TMPD/got.bin"
bg_stop $BRIDGE_PID || true
cat "$BRIDGE_LOG" >&2
[ "$(bridge_sum "$BRIDGE_LOG" lost)" -gt 0 ] || die "the bridge lost nothing"
