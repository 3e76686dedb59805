#!/usr/bin/env bash
# TCP_INFO's segment counts against what the peer saw (Linux semantics): a python3 client on
# the stack sends 8 MiB to a kernel server and shuts down; once the server has read it all and
# closed, the client's tcpi_delivered must be the server's tcpi_data_segs_in plus its SYN (plus
# the FIN when it left alone), its tcpi_data_segs_out the server's data_segs_in (no loss on
# veth: every segment counted once, a super-segment by its segments), tcpi_bytes_acked the
# SYN and the bytes sent (and the FIN once acknowledged), as Linux counts it, tcpi_unacked 0,
# tcpi_rcv_mss at most tcpi_advmss.
# timeout: 60
set -euo pipefail
. "$(dirname "$0")/../lib/netns.sh"
netns_setup
PY=/usr/bin/python3
port=7500
cat >"$TMPD/info.py" <<'PYEOF'
import socket, struct, sys
def info(s):
    b = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 232)
    u32 = lambda o: struct.unpack_from("I", b, o)[0]
    u64 = lambda o: struct.unpack_from("Q", b, o)[0]
    return dict(snd_mss=u32(16), rcv_mss=u32(20), unacked=u32(24), advmss=u32(84),
                total_retrans=u32(100), bytes_acked=u64(120), segs_out=u32(136),
                data_segs_in=u32(152), data_segs_out=u32(156), delivered=u32(192),
                dsack_dups=u32(216))
def show(tag, d):
    print(tag, " ".join("%s=%d" % kv for kv in sorted(d.items())), flush=True)
role, addr, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
if role == "server":
    l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind((addr, port)); l.listen(1); print("ready", flush=True)
    c, _ = l.accept(); n = 0
    while True:
        b = c.recv(1 << 20)
        if not b: break
        n += len(b)
    show("server received=%d" % n, info(c)); c.close()
else:
    s = socket.create_connection((addr, port)); total = 8 << 20; chunk = b"x" * 65536
    for _ in range(total // len(chunk)): s.sendall(chunk)
    s.shutdown(socket.SHUT_WR)
    while s.recv(4096): pass
    show("client sent=%d" % total, info(s)); s.close()
PYEOF
bg_peer "$TMPD/server.out" "$PY" "$TMPD/info.py" server "$PEER_IP" "$port"
sp=$BG_PID
wait_log "$TMPD/server.out" '^ready'
on_stack timeout 30 "$PY" "$TMPD/info.py" client "$PEER_IP" "$port" >"$TMPD/client.out" 2>&1 ||
    { cat "$TMPD/client.out" >&2; die "the client failed"; }
bg_wait "$sp" 10 || die "the server did not finish"
cat "$TMPD/server.out" "$TMPD/client.out" >&2
val() { grep "^$1 " "$TMPD/$1.out" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
recv=$(val server received); segs_in=$(val server data_segs_in)
deliv=$(val client delivered); segs_out=$(val client data_segs_out)
[ "$recv" = $((8 << 20)) ] || die "the server received $recv bytes"
[ "$(val client total_retrans)" = 0 ] || skip "retransmissions on veth: the counts are not comparable"
[ "$segs_out" = "$segs_in" ] || die "tcpi_data_segs_out $segs_out, the peer received $segs_in data segments"
extra=$((deliv - 1 - segs_in))
[ "$extra" = 0 ] || [ "$extra" = 1 ] ||
    die "tcpi_delivered $deliv: not the peer's $segs_in data segments + the SYN (+ a FIN alone)"
# Linux counts the sequence space acknowledged: the SYN, the data, the FIN once its ACK came
[ "$(val client bytes_acked)" = $(((8 << 20) + 1)) ] || [ "$(val client bytes_acked)" = $(((8 << 20) + 2)) ] ||
    die "tcpi_bytes_acked $(val client bytes_acked): not the SYN + 8 MiB (+ the FIN)"
[ "$(val client unacked)" = 0 ] || die "tcpi_unacked $(val client unacked) after everything was ACKed"
[ "$(val client rcv_mss)" -le "$(val client advmss)" ] || die "tcpi_rcv_mss above tcpi_advmss"
log "ok: tcpi_delivered $deliv = $segs_in data segments + SYN$([ "$extra" = 1 ] && echo ' + FIN'), data_segs_out = the peer's data_segs_in"
