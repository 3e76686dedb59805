#!/usr/bin/env bash
# A stack started again continues its timestamp (and ISN) clocks: six client processes on the
# stack, one after another, each a new stack, connect from the same local port to a kernel
# server in the peer that closes first, so the peer holds the previous connection in TIME-WAIT
# when the next SYN comes. Linux takes a SYN in TIME-WAIT when its timestamp is newer (RFC 7323
# 5.3, tcp_timewait_state_process); with a key drawn afresh per stack half of them were
# rejected by PAWS (TcpExtPAWSTimewait) and waited for a SYN retransmission. Every exchange is
# checked byte for byte, and the peer's PAWSTimewait counter must stay 0.
# timeout: 90
set -euo pipefail
. "$(dirname "$0")/../lib/netns.sh"
stack_mode || skip "checks the stack's key across restarts"
need_cmd python3 nstat
netns_setup
export TCPSM_RUN_DIR=$TMPD/run
port=7400
cat >"$TMPD/srv.py" <<'PY'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(8)
print("listening", flush=True)
for i in range(int(sys.argv[3])):
    c, _ = s.accept()
    d = b""
    while not d.endswith(b"\n"):
        d += c.recv(100)
    c.sendall(d[::-1])
    c.close()               # the server closes first: it holds the TIME-WAIT
PY
cat >"$TMPD/cli.py" <<'PY'
import socket, sys
c = socket.socket()
c.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
c.bind(("0.0.0.0", 40123))
c.settimeout(20)
c.connect((sys.argv[1], int(sys.argv[2])))
msg = ("hello %s\n" % sys.argv[3]).encode()
c.sendall(msg)
got = b""
while True:
    d = c.recv(100)
    if not d:
        break
    got += d
assert got == msg[::-1], got
c.close()
print("ok", sys.argv[3])
PY
bg_peer "$TMPD/srv.log" python3 "$TMPD/srv.py" "$PEER_IP" $port 6
wait_log "$TMPD/srv.log" '^listening'
on_peer nstat -n >/dev/null      # reset nstat's history: the next call prints what changed
for i in 1 2 3 4 5 6; do
    on_stack timeout 30 python3 "$TMPD/cli.py" "$PEER_IP" $port $i || die "exchange $i failed"
done
paws=$(on_peer nstat -az TcpExtPAWSTimewait | awk '/TcpExtPAWSTimewait/ {print $2}')
log "peer: TcpExtPAWSTimewait ${paws:-?} over 6 restarts"
[ "${paws:-1}" = 0 ] || die "the peer rejected $paws SYNs by PAWS in TIME-WAIT"
[ -s "$TMPD/run/secret" ] || die "no key in TCPSM_RUN_DIR"
log "ok"
