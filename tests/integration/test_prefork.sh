#!/usr/bin/env bash
# A prefork server on the stack (python3: listen, then fork 4 children, each blocked in a plain
# blocking accept() loop, the Apache prefork / gunicorn shape). Kernel clients in the peer make 40
# sequential then 20 concurrent connections, each sending its own random 64 KiB and checking the
# echo (sha256). Each child logs the peer address of every connection it accepts: every
# connection is accepted exactly once, by one child (no duplicates, none lost), and the accepts
# are spread over more than one child. Then the parent exits (normally, with the children
# running): the children go on serving another 20 connections byte-exact, and when they are
# stopped the last one to leave removes the shared region.
# timeout: 150
set -euo pipefail
. "$(dirname "$0")/../lib/netns.sh"
need_cmd socat python3
netns_setup

port=7200
cat >"$TMPD/prefork.py" <<'PY'
import os, signal, socket, sys
port, nchild, logdir = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})   # for sigwait below
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", port))
s.listen(64)
def serve():
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))   # exit through the destructors
    log = open(os.path.join(logdir, "accepts.%d" % os.getpid()), "a", buffering=1)
    while True:
        c, peer = s.accept()
        log.write("%s:%d\n" % peer)
        while True:
            b = c.recv(65536)
            if not b:
                break
            c.sendall(b)
        c.close()
kids = []
for i in range(nchild):
    pid = os.fork()
    if pid == 0:
        serve()
    kids.append(pid)
with open(os.path.join(logdir, "kids"), "w") as f:
    f.write(" ".join(map(str, kids)) + "\n")
# The parent waits for SIGUSR1, then exits normally (the children keep serving).
signal.sigwait({signal.SIGUSR1})
sys.exit(0)
PY
mkdir -p "$TMPD/log"
bg_stack "$TMPD/server.log" python3 "$TMPD/prefork.py" $port 4 "$TMPD/log"
srv=$BG_PID
wait_connect "$NS_P" "$STACK_IP" $port 20 || die "not listening: $(cat "$TMPD/server.log")"
for i in 1 2 3 4 5 6 7 8 9 10; do [ -s "$TMPD/log/kids" ] && break; sleep 0.2; done
read -r -a kids <"$TMPD/log/kids"
[ "${#kids[@]}" = 4 ] || die "expected 4 children"
ppid=$(awk '{print $4}' "/proc/${kids[0]}/stat")   # the python parent

for i in $(seq 1 80); do head -c 65536 /dev/urandom >"$TMPD/in.$i"; done
client() {
    on_peer timeout 30 socat -t 30 -T 30 - TCP:$STACK_IP:$port <"$TMPD/in.$1" >"$TMPD/out.$1" 2>"$TMPD/err.$1" ||
        die "client $1: $(cat "$TMPD/err.$1")"
    [ "$(sha "$TMPD/in.$1")" = "$(sha "$TMPD/out.$1")" ] ||
        die "client $1: echo differs: got $(fsize "$TMPD/out.$1") bytes"
}
clients() {   # FIRST LAST CONCURRENT(0|1)
    local i pids=()
    for i in $(seq "$1" "$2"); do
        if [ "$3" = 1 ]; then client "$i" & pids+=($!); else client "$i"; fi
    done
    for i in "${pids[@]}"; do wait "$i" || die "a concurrent client failed"; done
}
# accepted N: every child's log together holds N lines, all distinct
accepted() {
    local n d
    n=$(cat "$TMPD"/log/accepts.* | wc -l)
    d=$(cat "$TMPD"/log/accepts.* | sort -u | wc -l)
    [ "$n" = "$1" ] && [ "$d" = "$1" ] || die "expected $1 connections accepted once each: $n accepted, $d distinct"
}

# wait_connect's probe: accepted once, or twice when a 1 s attempt timed out
# under load after the server had taken its handshake
probes=0
for i in $(seq 1 50); do
    probes=$(cat "$TMPD"/log/accepts.* 2>/dev/null | wc -l)
    [ "$probes" -ge 1 ] && break
    sleep 0.1
done
[ "$probes" -ge 1 ] && [ "$probes" -le 2 ] || die "the probe of wait_connect: $probes accepts"
clients 1 40 0
clients 41 60 1
accepted $((probes + 60))
by=$(for f in "$TMPD"/log/accepts.*; do [ -s "$f" ] && echo "$f"; done | wc -l)
log "60 connections echoed byte-exact, each accepted once; accepts spread over $by of 4 children"
[ "$by" -ge 2 ] || die "one child accepted everything: the others never woke"

log "the parent exits; the children keep serving"
kill -USR1 "$ppid"
for i in $(seq 1 50); do kill -0 "$ppid" 2>/dev/null || break; sleep 0.1; done
! kill -0 "$ppid" 2>/dev/null || die "the parent did not exit"
for k in "${kids[@]}"; do kill -0 "$k" || die "child $k died with the parent"; done
clients 61 80 1
accepted $((probes + 80))
log "20 more connections served byte-exact by the children alone"

region=$(ls /dev/shm/tcpsm-*-"$IF_S"-"$STACK_IP" 2>/dev/null || true)
stack_mode && { [ -n "$region" ] || die "no shared region while the children run"; }
kill -TERM "${kids[@]}"
for i in $(seq 1 50); do
    alive=0; for k in "${kids[@]}"; do kill -0 "$k" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break; sleep 0.1
done
[ $alive = 0 ] || die "children did not stop"
if stack_mode; then
    for i in $(seq 1 30); do [ -e "$region" ] || break; sleep 0.1; done
    [ ! -e "$region" ] || die "the last child to leave did not remove the shared region $region"
fi
log "ok"
