#!/usr/bin/env bash
# Several accepted connections open at once, each handed to its own exec'd program (issue 6):
# a python3 server on the stack accepts N connections, keeps them all, then starts one `cat`
# per connection with that connection as its stdin and stdout, through subprocess (vfork, then
# execve) for half of them and os.fork + os.dup2 + os.execv for the rest, and closes its own
# copies. Every child holds the parent's references to all N connections after the
# fork (the other fds are close-on-exec, as Python makes them); each exec'd cat must find
# exactly its own connection on fds 0 and 1, and the others must be released. Kernel clients send their
# own random data and must get exactly those bytes back, none crossed with another's.
# timeout: 90
set -euo pipefail
. "$(dirname "$0")/../lib/netns.sh"
need_cmd python3 ethtool
netns_setup
N=8
PORT=7400

cat >"$TMPD/srv.py" <<'PY'
import os, socket, subprocess, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("0.0.0.0", port))
ls.listen(n)
print("ready", flush=True)
conns = [ls.accept()[0] for _ in range(n)]
cat = "/bin/cat"
children = []
for i, c in enumerate(conns):
    if i % 2 == 0:
        p = subprocess.Popen([cat], stdin=c, stdout=c)
        children.append(("fork+exec", p.pid, p))
    else:
        pid = os.fork()
        if pid == 0:
            os.dup2(c.fileno(), 0)
            os.dup2(c.fileno(), 1)
            os.execv(cat, [cat])
        children.append(("fork+execv", pid, None))
for c in conns:
    c.close()
bad = 0
for how, pid, p in children:
    st = p.wait() if p else os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    if st != 0:
        print(f"{how} child {pid} exited {st}", flush=True)
        bad += 1
print(f"served {n}, {bad} failed", flush=True)
sys.exit(1 if bad else 0)
PY
cat >"$TMPD/cli.py" <<'PY'
import os, socket, sys, time
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
data = [os.urandom(65536 + 4099 * i) for i in range(n)]
socks = []
for i in range(n):
    for t in range(50):
        try:
            socks.append(socket.create_connection((host, port), timeout=30))
            break
        except ConnectionRefusedError:
            time.sleep(0.1)
    else:
        sys.exit(f"connection {i}: refused")
for i, s in enumerate(socks):
    s.sendall(data[i])
    s.shutdown(socket.SHUT_WR)
    got = bytearray()
    while True:
        b = s.recv(65536)
        if not b:
            break
        got += b
    if bytes(got) != data[i]:
        sys.exit(f"connection {i}: sent {len(data[i])} bytes, got {len(got)} back"
                 f"{' (another connection’s data)' if len(got) in [len(d) for d in data] else ''}")
    s.close()
print(f"ok: {n} connections echoed byte-exact", flush=True)
PY
bg_stack "$TMPD/srv.log" python3 "$TMPD/srv.py" $PORT $N
srv=$BG_PID
wait_log "$TMPD/srv.log" '^ready' 20
on_peer timeout 60 python3 "$TMPD/cli.py" "$STACK_IP" $PORT $N || die "client: $(cat "$TMPD/srv.log")"
bg_wait "$srv" 20 || die "server: $(cat "$TMPD/srv.log")"
grep -q "served $N, 0 failed" "$TMPD/srv.log" || die "server: $(cat "$TMPD/srv.log")"
log "ok: $N accepted connections, each echoed by its own exec'd cat"
