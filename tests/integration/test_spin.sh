#!/usr/bin/env bash
# Busy polling (--spin, TCPSM_SPIN_US): the waiting thread looks at the link's ring in memory
# and reads the frame it sees there without asking the kernel (runtime_wait.c tcpsm_spin). A client
# on the stack spinning 200 us per wait: 3,000 request/response round trips of 1-3,000 bytes
# to a kernel echo server in the peer, every reply byte-exact; then a 16 MB download (curl,
# sha256) and a 4 MB upload echoed back, also spinning.
# timeout: 120
set -euo pipefail
. "$(dirname "$0")/../lib/netns.sh"
. "$(dirname "$0")/../lib/http.sh"
need_cmd socat curl nginx ethtool
netns_setup
STACK_OPTS=(--spin 200)

bg_peer "$TMPD/echo.log" socat TCP-LISTEN:7000,reuseaddr,fork PIPE
wait_listen "$NS_P" 7000

log "3000 round trips, spinning"
cat >"$TMPD/pp.py" <<'PY'
import random, socket, sys
random.seed(7)
s = socket.create_connection((sys.argv[1], 7000), timeout=20)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
for i in range(3000):
    msg = random.randbytes(random.randint(1, 3000))
    s.sendall(msg)
    got = b""
    while len(got) < len(msg):
        b = s.recv(len(msg) - len(got))
        if not b:
            sys.exit("closed at round trip %d" % i)
        got += b
    if got != msg:
        sys.exit("round trip %d: reply differs" % i)
s.close()
print("ok")
PY
r=$(on_stack timeout 60 python3 "$TMPD/pp.py" "$PEER_IP") || die "ping-pong client: $r"
[ "$r" = ok ] || die "ping-pong client: $r"

log "16 MB download and 4 MB echo, spinning"
mkdir -p "$TMPD/www"
mkfile "$TMPD/www/16m.bin" $((16 << 20))
nginx_peer "$TMPD/www"
on_stack timeout 60 curl -sS -o "$TMPD/got.bin" "http://$PEER_IP:8080/16m.bin" || die "curl failed"
same_file "$TMPD/www/16m.bin" "$TMPD/got.bin"
mkfile "$TMPD/4m.bin" $((4 << 20))
on_stack timeout 60 socat -t 30 - "TCP:$PEER_IP:7000" <"$TMPD/4m.bin" >"$TMPD/got4.bin" ||
    die "socat echo failed"
same_file "$TMPD/4m.bin" "$TMPD/got4.bin"
log "PASS"
