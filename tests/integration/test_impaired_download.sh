#!/usr/bin/env bash
# The curl download under impairment: the impair_bridge between the stack and the peer drops
# 2 % of the frames, delays every frame 10 ms and sends 5 % early (reordering), in both
# directions. curl through the stack must still get the 8 MB file with the right sha256,
# and the bridge must have actually lost and reordered frames.
# timeout: 150
set -euo pipefail
. "$(dirname "$0")/../lib/netns.sh"
. "$(dirname "$0")/../lib/http.sh"
. "$(dirname "$0")/../lib/impair.sh"
need_cmd curl nginx ethtool
netns_setup bridge

seed=${TCPSM_TEST_SEED:-$RANDOM}
bridge_start --loss 2 --delay 10 --reorder 5 --seed "$seed" --max-seconds 200

mkdir -p "$TMPD/www"
mkfile "$TMPD/www/8m.bin" $((8 << 20))
nginx_peer "$TMPD/www"

log "curl http://$PEER_IP:8080/8m.bin through loss 2%, delay 10 ms, reorder 5% (seed $seed)"
on_stack curl -sS --fail --max-time 120 -o "$TMPD/got.bin" \
    -w 'http=%{http_code} bytes=%{size_download} secs=%{time_total}\n' "http://$PEER_IP:8080/8m.bin"
same_file "$TMPD/www/8m.bin" "$TMPD/got.bin"
bg_stop $BRIDGE_PID || true
cat "$BRIDGE_LOG" >&2
lost=$(bridge_sum "$BRIDGE_LOG" lost)
reord=$(bridge_sum "$BRIDGE_LOG" reordered)
[ "${lost:-0}" -gt 0 ] && [ "${reord:-0}" -gt 0 ] || die "the bridge did not impair (lost=$lost reordered=$reord)"
