#!/usr/bin/env bash
# Impairment with the veth offloads ON (TSO/GSO and checksum offload, as users run): the
# kernel peer and the stack both send 64 KiB super-segments with partial checksums. The
# impair_bridge cuts each into MSS-sized frames as a wire would (its "gso" counter) and loses
# 2 %, delays 10 ms and reorders 5 % of those frames, both ways. A curl download and a curl
# upload (PUT, nginx WebDAV) of 8 MB through the stack must arrive byte-exact (sha256), which
# needs the stack to take the kernel's checksum-partial super-segments' pieces and to resend
# single segments that had first left inside one of its own super-segments (in stack mode the
# capture must show such a partial retransmission).
# timeout: 200
set -euo pipefail
. "$(dirname "$0")/../lib/netns.sh"
. "$(dirname "$0")/../lib/http.sh"
. "$(dirname "$0")/../lib/impair.sh"
need_cmd curl nginx ethtool
TCPSM_TEST_OFFLOADS=1 netns_setup bridge
for dev in "$NS_S $IF_S" "$NS_P $IF_P"; do
    set -- $dev
    ip netns exec "$1" ethtool -k "$2" | grep -q '^tcp-segmentation-offload: on' ||
        die "TSO is off on $2: the test needs the veth defaults"
done

seed=${TCPSM_TEST_SEED:-$RANDOM}
bridge_start --loss 2 --delay 10 --reorder 5 --seed "$seed" --max-seconds 190

mkdir -p "$TMPD/www" "$TMPD/up"
mkfile "$TMPD/www/8m.bin" $((8 << 20))
mkfile "$TMPD/up/8m.bin" $((8 << 20))
nginx_conf "$TMPD/ngx" 8080 "$TMPD/www" \
    "dav_methods PUT; create_full_put_path on; client_max_body_size 64m; client_body_buffer_size 1m;"
nginx_start bg_peer "$TMPD/ngx"
wait_listen "$NS_P" 8080

stack_mode && export TCPSM_LOG=info
log "download: curl http://$PEER_IP:8080/8m.bin, offloads on, loss 2%, delay 10 ms, reorder 5% (seed $seed)"
on_stack curl -sS --fail --max-time 80 -o "$TMPD/got.bin" \
    -w 'http=%{http_code} bytes=%{size_download} secs=%{time_total}\n' "http://$PEER_IP:8080/8m.bin"
same_file "$TMPD/www/8m.bin" "$TMPD/got.bin"

log "upload: curl -T 8m.bin, the same impairment"
# In stack mode the capture is read below (partial retransmissions).
code=$(TCPSM_PCAP=$TMPD/up.pcap on_stack curl -sS --max-time 80 -o /dev/null -w '%{http_code}' \
    -T "$TMPD/up/8m.bin" "http://$PEER_IP:8080/put.bin" 2>"$TMPD/curl.err") || { cat "$TMPD/curl.err" >&2; false; }
cat "$TMPD/curl.err" >&2
[ "$code" = 201 ] || [ "$code" = 204 ] || die "PUT: HTTP $code"
same_file "$TMPD/up/8m.bin" "$TMPD/www/put.bin"

bg_stop $BRIDGE_PID || true
cat "$BRIDGE_LOG" >&2
# a->b is the stack's side to the peer's: both directions carried super-segments.
for dir in 'a->b' 'b->a'; do
    g=$(grep "^$dir:" "$BRIDGE_LOG" | grep -o ' gso=[0-9]*' | cut -d= -f2)
    [ "${g:-0}" -gt 0 ] || die "no super-segment crossed the bridge $dir (offloads off?)"
done
[ "$(bridge_sum "$BRIDGE_LOG" lost)" -gt 0 ] || die "the bridge lost nothing"
[ "$(bridge_sum "$BRIDGE_LOG" oversize)" -eq 0 ] || die "the bridge could not forward some frames"
if stack_mode; then
    gso=$(sed -n 's/.*super-segments out \([0-9]*\).*/\1/p' "$TMPD/curl.err" | tail -1)
    [ "${gso:-0}" -gt 0 ] || die "the stack sent no super-segments (fast path off?)"
    if command -v tshark >/dev/null; then
        part=$(partial_retrans "$TMPD/up.pcap" "$STACK_IP")
        log "stack: $gso super-segments sent, $part retransmissions of part of one"
        [ "${part:-0}" -gt 0 ] || die "no retransmission of part of a super-segment was seen"
    fi
fi
