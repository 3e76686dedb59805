#!/usr/bin/env bash
# Frames of headers only (ACKs, window updates) leave after the stack lock is released
# (netdev_packet.c), while the program's thread and the receive thread both take the link's
# frames: the link must still see them in the order the stack made them. The stack's client
# receives 16 MiB from a kernel peer (pattern checked); a capture on the stack's own end of the
# veth (its transmit tap, in send order) must show the stack's ACK numbers never going back on
# the connection, and `tcpsm stat` must count frames sent after the lock.
# timeout: 90
set -euo pipefail
. "$(dirname "$0")/../lib/netns.sh"
stack_mode || skip "the stack's send path"
need_cmd tshark python3
probe=$(need_tool tcp_probe)
netns_setup
export TCPSM_RUN_DIR=$TMPD/run

total=$((16 << 20))
cap=$TMPD/stack.pcap
bg_kstack "$TMPD/cap.log" tshark -n -i "$IF_S" -s 96 -f "tcp and src host $STACK_IP and port 9501" \
    -w "$cap" -a duration:60
capture=$BG_PID
wait_log "$TMPD/cap.log" 'Capturing on' 10
bg_peer "$TMPD/srv.log" "$probe" serve 9501 --send $total --max-seconds 40
srv=$BG_PID
wait_listen "$NS_P" 9501
bg_stack "$TMPD/client.log" "$probe" connect "$PEER_IP" 9501 --recv --wait-file "$TMPD/go" \
    --max-seconds 40
client=$BG_PID
wait_log "$TMPD/client.log" '^waiting' 10
"$TCPSM_BUILD/tcpsm" stat --json >"$TMPD/stat0.json" || die "tcpsm stat --json failed"
touch "$TMPD/go"
bg_wait $client 40 || die "client did not finish: $(cat "$TMPD/client.log")"
grep -q "result=ok errno=0 sent=0 received=$total pattern=ok" "$TMPD/client.log" ||
    die "client did not receive the $total bytes intact: $(tail -1 "$TMPD/client.log")"
bg_wait $srv 10 || true
sleep 0.5   # let the capture write the last frames before stopping it
bg_stop $capture || true

python3 - "$TMPD/stat0.json" <<'PY' || die "no frame counted as sent after the stack lock"
import json, sys
ln = json.load(open(sys.argv[1]))[0]["link"]
assert 0 < ln["tx_after_lock"] <= ln["tx_frames"], ln
PY
tshark -n -r "$cap" -Y tcp.flags.ack==1 -T fields -e tcp.srcport -e tcp.ack_raw -e tcp.len 2>/dev/null >"$TMPD/acks.txt"
python3 - "$TMPD/acks.txt" <<'PY' || die "the stack's ACK numbers went back on the wire"
import sys
last, n, back = {}, 0, []
for line in open(sys.argv[1]):
    f = line.split()
    if len(f) < 2:
        continue
    port, ack = f[0], int(f[1])
    if port in last and ((ack - last[port]) & 0xffffffff) >= 0x80000000:
        back.append((port, last[port], ack))
    last[port] = ack
    n += 1
print("frames from the stack: %d, ACK going back: %d %s" % (n, len(back), back[:5]))
assert n > 100, "too few frames captured"
sys.exit(1 if back else 0)
PY
log "ok: $total bytes intact, the stack's ACKs in order on the wire"
