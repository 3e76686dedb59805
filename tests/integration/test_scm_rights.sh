#!/usr/bin/env bash
# Stack sockets passed between processes over AF_UNIX (SCM_RIGHTS; issue 6). A python3 "master"
# on the stack accepts connections and hands each to a separately started python3 "worker" on
# the same stack with socket.send_fds over a Unix socket, closing its own copy at once; the
# worker waits a little before receiving (the connection is then held by the message alone),
# takes it with socket.recv_fds and echoes until EOF. Then the same master passes its listener
# itself: the worker accepts on it and echoes. Kernel clients in the peer send random data and
# must get exactly those bytes back.
# timeout: 120
set -euo pipefail
. "$(dirname "$0")/../lib/netns.sh"
need_cmd socat python3
netns_setup
PY=$(command -v python3)
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3
port=7400
usock=$TMPD/pass.sock

cat >"$TMPD/master.py" <<'PY'
import os, socket, sys
port, path, nconn = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
u = socket.socket(socket.AF_UNIX)
u.bind(path)
u.listen(1)
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("0.0.0.0", port))
l.listen(64)
print("listening", flush=True)
w, _ = u.accept()
for i in range(nconn):
    c, _ = l.accept()
    socket.send_fds(w, [b"c"], [c.fileno()])
    c.close()           # the message holds the connection until the worker takes it
socket.send_fds(w, [b"l"], [l.fileno()])
l.close()
print("passed", nconn, "and the listener", flush=True)
w.recv(1)               # the worker is done
PY
cat >"$TMPD/worker.py" <<'PY'
import socket, sys, time
path, nconn, nlisten = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
w = socket.socket(socket.AF_UNIX)
w.connect(path)
def echo(c):
    while True:
        b = c.recv(65536)
        if not b:
            break
        c.sendall(b)
    c.close()
for i in range(nconn):
    time.sleep(0.2)
    msg, fds, _, _ = socket.recv_fds(w, 1, 1)
    assert msg == b"c" and len(fds) == 1, (msg, fds)
    echo(socket.socket(fileno=fds[0]))
    print("echoed", i + 1, flush=True)
msg, fds, _, _ = socket.recv_fds(w, 1, 1)
assert msg == b"l" and len(fds) == 1, (msg, fds)
l = socket.socket(fileno=fds[0])
print("listener", l.getsockname(), flush=True)
for i in range(nlisten):
    c, _ = l.accept()
    echo(c)
    print("accepted and echoed", i + 1, flush=True)
w.send(b"d")
PY

for i in $(seq 1 8); do head -c $((65536 + i * 1013)) /dev/urandom >"$TMPD/in.$i"; done
client() {
    on_peer timeout 30 socat -t 30 -T 30 - "TCP:$STACK_IP:$port" <"$TMPD/in.$1" \
        >"$TMPD/out.$1" 2>"$TMPD/err.$1" || die "client $1 failed: $(cat "$TMPD/err.$1"); master: $(cat "$TMPD/master.log"); worker: $(cat "$TMPD/worker.log")"
    [ "$(sha "$TMPD/in.$1")" = "$(sha "$TMPD/out.$1")" ] ||
        die "client $1: echo differs: sent $(fsize "$TMPD/in.$1"), got $(fsize "$TMPD/out.$1") bytes; worker: $(cat "$TMPD/worker.log")"
}

bg_stack "$TMPD/master.log" "$PY" "$TMPD/master.py" $port "$usock" 5
master=$BG_PID
wait_log "$TMPD/master.log" '^listening' 20 || die "master did not start: $(cat "$TMPD/master.log")"
bg_stack "$TMPD/worker.log" "$PY" "$TMPD/worker.py" "$usock" 5 3
worker=$BG_PID
log "5 connections accepted by the master, echoed by the worker"
for i in 1 2 3 4 5; do client "$i"; done
wait_log "$TMPD/master.log" '^passed' 20 || die "master did not pass the listener: $(cat "$TMPD/master.log")"
log "the listener passed: 3 connections accepted by the worker"
for i in 6 7 8; do client "$i"; done
bg_wait "$worker" 20 || die "worker failed: $(cat "$TMPD/worker.log")"
grep -q '^accepted and echoed 3$' "$TMPD/worker.log" || die "worker: $(cat "$TMPD/worker.log")"
bg_wait "$master" 20 || die "master failed: $(cat "$TMPD/master.log")"
log "ok: 5 connections and a listener passed by SCM_RIGHTS, 8 echoes byte-exact"
