#!/usr/bin/env bash
# Memory per idle connection in the process: a Python server on the stack accepts 1,050
# connections from a kernel client in the peer; each echoes one 64-byte message (so buffers
# were allocated and drained) and then stays open, idle. The server's resident memory grows
# by at most 4 KiB per connection over the last 1,000 (the TCB, the shim's and the runtime's
# per-socket state, Python's socket object; buffers are freed when drained). The kernel
# placeholder socket each stack socket holds is kernel memory, not counted here, nor is the
# link's receive ring (fixed size).
# timeout: 90
set -euo pipefail
. "$(dirname "$0")/../lib/netns.sh"
stack_mode || skip "measures the stack's per-connection memory"
need_cmd python3 ethtool
netns_setup
N=1000

cat >"$TMPD/srv.py" <<'PY'
import socket, sys, time
n = int(sys.argv[1])
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 9100))
s.listen(4096)
print("listening", flush=True)
def rss():
    # Resident KiB of every mapping except the link's receive ring (an mmap of the AF_PACKET
    # socket, "socket:[inode]"): a fixed 8 MiB whose slots are touched as frames arrive,
    # more of them on a loaded machine, not memory per connection.
    total, skip = 0, False
    for l in open("/proc/self/smaps"):
        f = l.split()
        if f and not f[0].endswith(":"):
            skip = len(f) >= 6 and f[5].startswith("socket:[")
        elif f and f[0] == "Rss:" and not skip:
            total += int(f[1])
    return total
conns = []
for i in range(n + 50):
    c, _ = s.accept()
    d = c.recv(100)
    c.sendall(d)
    conns.append(c)
    if i == 49:
        r0 = rss()          # after a warm-up: allocator arenas, tables
time.sleep(1)
r1 = rss()
print("per_conn_bytes %d rss0 %d rss1 %d" % ((r1 - r0) * 1024 // n, r0, r1), flush=True)
time.sleep(3)
PY
cat >"$TMPD/cli.py" <<'PY'
import socket, sys, time
cs = []
for i in range(int(sys.argv[2]) + 50):
    c = socket.create_connection((sys.argv[1], 9100), timeout=10)
    c.sendall(b"x" * 64)
    got = b""
    while len(got) < 64:
        got += c.recv(64 - len(got))
    assert got == b"x" * 64, got
    cs.append(c)
print("client: %d connections echoed" % len(cs), flush=True)
time.sleep(3)
PY
bg_stack "$TMPD/srv.log" python3 "$TMPD/srv.py" $N
wait_log "$TMPD/srv.log" '^listening'
on_peer timeout 60 python3 "$TMPD/cli.py" "$STACK_IP" $N >"$TMPD/cli.log" 2>&1 ||
    { cat "$TMPD/cli.log" >&2; die "the client failed"; }
cat "$TMPD/cli.log" >&2
for i in $(seq 50); do grep -q per_conn_bytes "$TMPD/srv.log" && break; sleep 0.1; done
line=$(grep per_conn_bytes "$TMPD/srv.log") || { cat "$TMPD/srv.log" >&2; die "no measurement"; }
log "$line"
per=$(sed -n 's/.*per_conn_bytes \([0-9]*\).*/\1/p' <<<"$line")
[ "$per" -le 4096 ] || die "$per bytes per idle connection (target 4096)"
log "ok: $per bytes per idle connection"
