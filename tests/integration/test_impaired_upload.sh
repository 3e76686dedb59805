#!/usr/bin/env bash
# The stack as the SENDER under impairment: curl through the stack uploads (PUT) an 8 MB file
# to a kernel nginx (WebDAV) through the impair_bridge dropping 2 % of the frames, delaying
# them 10 ms and sending 5 % early, both ways. The stored file must have the right sha256,
# which needs the stack's retransmission (RFC 6298 RTO, RFC 5681/6582 fast retransmit and
# recovery) to fill every hole. The stack sends through the fast path (vnet header, TSO
# super-segments of up to 64 KiB that the kernel cuts at the MSS on the wire-like veth), so a
# lost frame is one segment of a larger frame: in stack mode the stack must report
# super-segments sent, and the capture must show a retransmission of bytes first sent inside
# a super-segment (partial retransmission).
# timeout: 150
set -euo pipefail
. "$(dirname "$0")/../lib/netns.sh"
. "$(dirname "$0")/../lib/http.sh"
. "$(dirname "$0")/../lib/impair.sh"
need_cmd curl nginx ethtool
netns_setup bridge

seed=${TCPSM_TEST_SEED:-$RANDOM}
bridge_start --loss 2 --delay 10 --reorder 5 --seed "$seed" --max-seconds 140

mkdir -p "$TMPD/up" "$TMPD/store"
chmod 777 "$TMPD/store"
mkfile "$TMPD/up/8m.bin" $((8 << 20))
nginx_peer "$TMPD/store" \
    "dav_methods PUT; create_full_put_path on; client_max_body_size 64m; client_body_buffer_size 1m;"

log "curl -T 8m.bin through loss 2%, delay 10 ms, reorder 5% (seed $seed)"
# In stack mode the capture is kept for the report below (not a pass/fail criterion).
stack_mode && export TCPSM_PCAP=$TMPD/up.pcap TCPSM_LOG=info
code=$(on_stack curl -sS --max-time 120 -o /dev/null -w '%{http_code}' -T "$TMPD/up/8m.bin" \
    "http://$PEER_IP:8080/8m.bin" 2>"$TMPD/curl.err") || { cat "$TMPD/curl.err" >&2; false; }
cat "$TMPD/curl.err" >&2
[ "$code" = 201 ] || [ "$code" = 204 ] || die "PUT: HTTP $code"
same_file "$TMPD/up/8m.bin" "$TMPD/store/8m.bin"
if stack_mode; then
    gso=$(sed -n 's/.*super-segments out \([0-9]*\).*/\1/p' "$TMPD/curl.err" | tail -1)
    [ "${gso:-0}" -gt 0 ] || die "the stack sent no super-segments (fast path off?)"
    log "stack: $gso super-segments sent"
    if command -v tshark >/dev/null; then
        # Bytes sent again that had first gone out inside a frame longer than one MSS.
        part=$(partial_retrans "$TMPD/up.pcap" "$STACK_IP")
        log "stack: $part retransmissions of part of a super-segment"
        [ "${part:-0}" -gt 0 ] || die "no retransmission of part of a super-segment was seen"
    fi
fi
bg_stop $BRIDGE_PID || true
cat "$BRIDGE_LOG" >&2
[ "$(bridge_sum "$BRIDGE_LOG" lost)" -gt 0 ] || die "the bridge lost nothing"
if stack_mode && command -v tshark >/dev/null && [ -s "$TMPD/up.pcap" ]; then
    # How the stack recovered: retransmissions, and data segments far below the MSS, which a
    # bulk sender with a full send queue should not need (informational).
    tsk() { tshark -n -r "$TMPD/up.pcap" -Y "$1" -T fields -e frame.number 2>/dev/null | wc -l; }
    log "stack sender: data segments $(tsk "ip.src==$STACK_IP && tcp.len>0"), retransmissions $(tsk "ip.src==$STACK_IP && tcp.analysis.retransmission"), segments under 100 bytes $(tsk "ip.src==$STACK_IP && tcp.len>0 && tcp.len<100")"
fi
