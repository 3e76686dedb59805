#!/usr/bin/env bash
# Frames an event loop's calls leave waiting past their end (runtime.c out_keep: they go
# together when it sleeps) must not wait for a thread that leaves the stack for long. A python
# epoll server on the stack echoes one request on each of 64 connections from a kernel client
# in the peer, then sleeps 3 s outside the stack (time.sleep) before it closes them: every
# echo must reach the client within 1.5 s of its request, the last batch sent by the receive
# thread when its park ends, not at the server's return, and soon enough that the client never
# retransmits a request (its retransmission timeout is 200 ms at least). test_stat checks the
# batch counters (tx_batches, tx_kept).
# timeout: 60
set -euo pipefail
. "$(dirname "$0")/../lib/netns.sh"
stack_mode || skip "the stack's send path"
need_cmd python3
netns_setup
n=64
cat >"$TMPD/srv.py" <<'PY'
import select, socket, sys, time
n, ip = int(sys.argv[1]), sys.argv[2]
ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind((ip, 9502)); ls.listen(128); ls.setblocking(False)
ep = select.epoll(); ep.register(ls.fileno(), select.EPOLLIN)
conns, done = {}, 0
print("listening", flush=True)
end = time.time() + 30
while done < n and time.time() < end:
    for fd, ev in ep.poll(1.0):
        if fd == ls.fileno():
            while True:
                try:
                    c, _ = ls.accept()
                except BlockingIOError:
                    break
                c.setblocking(False); conns[c.fileno()] = c; ep.register(c.fileno(), select.EPOLLIN)
        else:
            c = conns[fd]
            d = c.recv(100)
            if d:
                c.send(d)
                ep.unregister(fd)
                done += 1
print("echoed", done, flush=True)
time.sleep(3)
for c in conns.values():
    c.close()
print("closed", flush=True)
PY
cat >"$TMPD/cli.py" <<'PY'
import socket, sys, time
n, ip = int(sys.argv[1]), sys.argv[2]
socks = [socket.create_connection((ip, 9502), timeout=10) for _ in range(n)]
t0 = time.time()
for i, s in enumerate(socks):
    s.sendall(b"request %03d" % i)
worst = 0.0
for i, s in enumerate(socks):
    d = s.recv(100)
    assert d == b"request %03d" % i, (i, d)
    worst = max(worst, time.time() - t0)
print("all %d echoes, the last %.3f s after the requests" % (n, worst), flush=True)
sys.exit(0 if worst < 1.5 else 1)
PY
bg_stack "$TMPD/srv.log" python3 "$TMPD/srv.py" $n "$STACK_IP"
srv=$BG_PID
wait_log "$TMPD/srv.log" '^listening' 15
on_peer timeout 30 python3 "$TMPD/cli.py" $n "$STACK_IP" >"$TMPD/cli.log" 2>&1 ||
    die "an echo waited for the server's return: $(cat "$TMPD/cli.log")"
cat "$TMPD/cli.log"
retrans=$(on_peer awk '$1 == "Tcp:" && !h { for (i = 1; i <= NF; i++) c[$i] = i; h = 1; next }
                      $1 == "Tcp:" { print $c["RetransSegs"] }' /proc/net/snmp)
[ "$retrans" = 0 ] || die "the client retransmitted $retrans segment(s): an echo waited too long"
bg_wait $srv 15 || die "server did not finish: $(cat "$TMPD/srv.log")"
grep -q "^echoed $n" "$TMPD/srv.log" || die "server: $(cat "$TMPD/srv.log")"
log "out_kept: every echo left while the server slept outside the stack"
