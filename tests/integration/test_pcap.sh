#!/usr/bin/env bash
# TCPSM_PCAP: curl through the stack downloads 1 MB with the capture on. tshark must read the
# file without complaint, and it must hold this connection as on the wire: ARP resolution of
# the peer, one SYN, one SYN+ACK, at least two FINs, no RST, no bad IP/TCP checksum (the
# stack's own frames are checked too), and the peer's TCP payload at least the HTTP response
# curl received.
# timeout: 60
set -euo pipefail
. "$(dirname "$0")/../lib/netns.sh"
. "$(dirname "$0")/../lib/http.sh"
stack_mode || skip "TCPSM_PCAP exists only on the stack"
need_cmd curl nginx tshark ethtool
netns_setup

mkdir -p "$TMPD/www"
mkfile "$TMPD/www/1m.bin" $((1 << 20))
nginx_peer "$TMPD/www"

pcap=$TMPD/cap.pcap
w=$(TCPSM_PCAP=$pcap on_stack curl -sS --fail --max-time 20 -o "$TMPD/got.bin" \
    -w '%{size_header} %{size_download}' "http://$PEER_IP:8080/1m.bin")
same_file "$TMPD/www/1m.bin" "$TMPD/got.bin"
[ -s "$pcap" ] || die "TCPSM_PCAP wrote nothing"
resp=$(( ${w% *} + ${w#* } ))

ts() { tshark -r "$pcap" -o tcp.check_checksum:TRUE -o ip.check_checksum:TRUE "$@" 2>>"$TMPD/tshark.err"; }
count() { ts -Y "$1" -T fields -e frame.number | wc -l; }
: >"$TMPD/tshark.err"
ts -q -z io,stat,0 >"$TMPD/stat.txt" || die "tshark -r failed: $(cat "$TMPD/tshark.err")"
# tshark's only acceptable remark is the one about running as root.
complaints=$(grep -v 'Running as user "root"' "$TMPD/tshark.err" || true)
[ -z "$complaints" ] || die "tshark complained: $complaints"
total=$(count 'frame')
syn=$(count 'tcp.flags.syn==1 && tcp.flags.ack==0')
synack=$(count 'tcp.flags.syn==1 && tcp.flags.ack==1')
fin=$(count 'tcp.flags.fin==1')
rst=$(count 'tcp.flags.reset==1')
arp=$(count 'arp')
badip=$(count 'ip.checksum.status==0')
badtcp=$(count 'tcp.checksum.status==0')
retx=$(count 'tcp.analysis.retransmission')
payload=$(ts -Y "ip.src==$PEER_IP && tcp.len>0" -T fields -e tcp.len | awk '{ s += $1 } END { print s + 0 }')
log "frames=$total arp=$arp syn=$syn synack=$synack fin=$fin rst=$rst bad_ip_csum=$badip bad_tcp_csum=$badtcp retransmissions=$retx peer_payload=$payload http_response=$resp"
[ "$syn" -eq 1 ] || die "expected 1 SYN, found $syn"
[ "$synack" -eq 1 ] || die "expected 1 SYN+ACK, found $synack"
[ "$fin" -ge 2 ] || die "expected at least 2 FINs, found $fin"
[ "$rst" -eq 0 ] || die "found $rst RST"
[ "$arp" -ge 2 ] || die "expected the ARP request and reply, found $arp ARP frames"
[ "$badip" -eq 0 ] || die "$badip frames with a bad IP checksum"
[ "$badtcp" -eq 0 ] || die "$badtcp frames with a bad TCP checksum"
[ "$payload" -ge "$resp" ] || die "the capture holds $payload payload bytes from the peer, curl got $resp"
