#!/usr/bin/env bash
# Flow control (RFC 9293 3.8.6): a client through the stack connects to a kernel server that
# sends 8 MB, but does not read until the peer has stopped sending. The receiver's window
# must close: the capture taken on the peer's veth shows the stack advertising a zero
# window, the peer's zero-window probes are answered, and once the client reads it gets all
# 8 MB intact (pattern checked). Retransmissions by the peer (in-window data the stack
# dropped) are reported.
# timeout: 90
set -euo pipefail
. "$(dirname "$0")/../lib/netns.sh"
need_cmd tshark ethtool ss
probe=$(need_tool tcp_probe)
netns_setup

total=$((8 << 20))
cap=$TMPD/peer.pcap
bg_peer "$TMPD/cap.log" tshark -n -i "$IF_P" -f 'tcp port 9500' -w "$cap" -a duration:80
capture=$BG_PID
wait_log "$TMPD/cap.log" 'Capturing on' 10
bg_peer "$TMPD/srv.log" "$probe" serve 9500 --send $total --max-seconds 60
srv=$BG_PID
wait_listen "$NS_P" 9500
bg_stack "$TMPD/client.log" "$probe" connect "$PEER_IP" 9500 --recv --wait-file "$TMPD/go" --max-seconds 60
client=$BG_PID
wait_log "$TMPD/client.log" '^waiting' 10

# The peer stops when the window is closed: its send queue stops growing. (A bounded wait
# for a state, not a pass/fail timing: the checks below are on the capture and the data.)
prev=-1 same=0
for i in $(seq 1 200); do
    q=$(on_peer ss -Htn state established '( sport = :9500 )' | awk '{ print $2 }' | head -1)
    if [ -n "$q" ] && [ "$q" = "$prev" ] && [ "$q" -gt 0 ]; then same=$((same + 1)); else same=0; fi
    [ $same -ge 10 ] && break
    prev=${q:-0}
    sleep 0.1
done
log "peer send queue settled at ${prev} bytes"
touch "$TMPD/go"
bg_wait $client 40 || die "client did not finish: $(cat "$TMPD/client.log")"
log "client: $(tail -1 "$TMPD/client.log")"
grep -q "result=ok errno=0 sent=0 received=$total pattern=ok" "$TMPD/client.log" ||
    die "client did not receive the $total bytes intact"
bg_wait $srv 10 || true
sleep 0.5   # let the capture write the last frames before stopping it
bg_stop $capture || true

t() { tshark -n -r "$cap" "$@" 2>/dev/null; }
count() { t -Y "$1" -T fields -e frame.number | wc -l; }
zw=$(count "ip.src==$STACK_IP && tcp.window_size==0 && tcp.flags.syn==0")
zwp=$(count "ip.src==$PEER_IP && tcp.analysis.zero_window_probe")
retx=$(count "ip.src==$PEER_IP && tcp.analysis.retransmission && !tcp.analysis.zero_window_probe")
upd=$(count "ip.src==$STACK_IP && tcp.analysis.window_update")
dup=$(count "ip.src==$STACK_IP && tcp.analysis.duplicate_ack")
maxw=$(t -Y "ip.src==$STACK_IP && tcp.flags.syn==0" -T fields -e tcp.window_size | sort -n | tail -1)
log "capture: zero-window ACKs from $STACK_IP: $zw; peer zero-window probes: $zwp; window updates: $upd; largest window offered: $maxw; duplicate ACKs: $dup; peer retransmissions: $retx"
[ "$zw" -ge 1 ] || die "the receiver never advertised a zero window while its application did not read"
