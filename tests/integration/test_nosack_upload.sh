#!/usr/bin/env bash
# Loss recovery WITHOUT SACK, the stack as the sender: the kernel peer has net.ipv4.tcp_sack=0
# (its namespace only), so the connection recovers as Linux's Reno does: NewReno fast
# retransmit, and after an RTO the go-back with F-RTO and the timestamps' undo (README "TCP:
# behaviour and limits"). curl through the stack uploads (PUT) a 4 MB file to a kernel nginx
# through nftables dropping 2 % of the TCP packets each way; the stored file must have the
# right sha256 and the stack's connection must not have negotiated SACK.
# timeout: 120
set -euo pipefail
. "$(dirname "$0")/../lib/netns.sh"
. "$(dirname "$0")/../lib/http.sh"
. "$(dirname "$0")/../lib/impair.sh"
need_cmd curl nginx nft ethtool
netns_setup

ip netns exec "$NS_P" sysctl -qw net.ipv4.tcp_sack=0 || die "net.ipv4.tcp_sack in $NS_P"
mkdir -p "$TMPD/up" "$TMPD/store"
chmod 777 "$TMPD/store"
mkfile "$TMPD/up/4m.bin" $((4 << 20))
nginx_peer "$TMPD/store" \
    "dav_methods PUT; create_full_put_path on; client_max_body_size 64m; client_body_buffer_size 1m;"
impair_loss "$NS_P" 2

log "curl -T 4m.bin to a peer without SACK, 2% loss each way"
stack_mode && export TCPSM_PCAP=$TMPD/up.pcap
code=$(on_stack curl -sS --max-time 100 -o /dev/null -w '%{http_code}' -T "$TMPD/up/4m.bin" \
    "http://$PEER_IP:8080/4m.bin" 2>"$TMPD/curl.err") || { cat "$TMPD/curl.err" >&2; false; }
cat "$TMPD/curl.err" >&2
[ "$code" = 201 ] || [ "$code" = 204 ] || die "PUT: HTTP $code"
same_file "$TMPD/up/4m.bin" "$TMPD/store/4m.bin"
impair_loss_dropped "$NS_P"
if stack_mode && command -v tshark >/dev/null && [ -s "$TMPD/up.pcap" ]; then
    # the handshake must not have agreed SACK: no SACK-permitted option from the peer
    sp=$(tshark -n -r "$TMPD/up.pcap" -Y "ip.src==$PEER_IP && tcp.options.sack_perm" -T fields \
        -e frame.number 2>/dev/null | wc -l)
    [ "$sp" -eq 0 ] || die "the peer offered SACK: the test tested the SACK path"
    rt=$(tshark -n -r "$TMPD/up.pcap" -Y "ip.src==$STACK_IP && tcp.analysis.retransmission" \
        -T fields -e frame.number 2>/dev/null | wc -l)
    log "stack sender: $rt retransmissions"
fi
