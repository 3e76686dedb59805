#!/usr/bin/env bash
# Daemons on the stack: the process that starts them exits while what it forked serves.
#  1. A classic double-forking daemon (python3): it listens FIRST (so the stack and the listener
#     are made by the process that then exits), forks, the child calls setsid() and forks again,
#     both exit normally; the grandchild writes a pid file and serves (a thread per connection).
#     The command returns at once; kernel clients get 20 echoes of 64 KiB byte-exact (10 of them
#     concurrent); SIGTERM ends the daemon and, being the last process, it removes the region.
#  2. nginx as it runs by default (daemon on, master_process on, 2 workers): the process started
#     opens the listener, daemonizes (forks, exits), the master forks the workers. curl gets a
#     4 MB file byte-exact from the peer; nginx -s quit's signal ends it and the region goes.
# timeout: 120
set -euo pipefail
. "$(dirname "$0")/../lib/netns.sh"
. "$(dirname "$0")/../lib/http.sh"
need_cmd socat python3 nginx curl
netns_setup

region_gone() {
    stack_mode || return 0
    local i
    for i in $(seq 1 50); do
        ls /dev/shm/tcpsm-*-"$IF_S"-"$STACK_IP" >/dev/null 2>&1 || return 0
        sleep 0.1
    done
    die "$1: the shared region outlived the last process: $(ls /dev/shm/tcpsm-*-"$IF_S"-*)"
}

port=7300
cat >"$TMPD/daemon.py" <<'PY'
import os, signal, socket, sys, threading
port, pidfile = int(sys.argv[1]), sys.argv[2]
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", port))
s.listen(64)
if os.fork() > 0:
    sys.exit(0)                 # the original process: returns to the shell at once
os.setsid()
if os.fork() > 0:
    sys.exit(0)                 # the session leader
os.chdir("/")
os.umask(0o022)
null = os.open("/dev/null", os.O_RDWR)
for fd in (0, 1, 2):
    os.dup2(null, fd)
with open(pidfile, "w") as f:
    f.write("%d\n" % os.getpid())
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))   # exit through the destructors
def echo(c):
    while True:
        b = c.recv(65536)
        if not b:
            break
        c.sendall(b)
    c.close()
def loop():
    while True:
        c, _ = s.accept()
        threading.Thread(target=echo, args=(c,), daemon=True).start()
threading.Thread(target=loop, daemon=True).start()
signal.pause()
PY
log "python3 double-fork daemon"
on_stack timeout 20 python3 "$TMPD/daemon.py" $port "$TMPD/daemon.pid" || die "the daemon's start failed"
for i in $(seq 1 50); do [ -s "$TMPD/daemon.pid" ] && break; sleep 0.1; done
dpid=$(cat "$TMPD/daemon.pid")
kill -0 "$dpid" || die "the daemon is not running"
at_cleanup "kill -KILL $dpid"
[ "$(ps -o sid= -p "$dpid" | tr -d ' ')" != "$(ps -o sid= -p $$ | tr -d ' ')" ] || die "not in a session of its own"
wait_connect "$NS_P" "$STACK_IP" $port 20 || die "the daemon is not reachable"
for i in $(seq 1 20); do head -c 65536 /dev/urandom >"$TMPD/in.$i"; done
client() {
    on_peer timeout 30 socat -t 30 -T 30 - TCP:$STACK_IP:$port <"$TMPD/in.$1" >"$TMPD/out.$1" 2>"$TMPD/err.$1" ||
        die "client $1: $(cat "$TMPD/err.$1")"
    [ "$(sha "$TMPD/in.$1")" = "$(sha "$TMPD/out.$1")" ] || die "client $1: echo differs"
}
for i in $(seq 1 10); do client "$i"; done
pids=()
for i in $(seq 11 20); do client "$i" & pids+=($!); done
for p in "${pids[@]}"; do wait "$p" || die "a concurrent client failed"; done
log "20 echoes of 64 KiB byte-exact from the grandchild (pid $dpid) after its ancestors exited"
kill -TERM "$dpid"
for i in $(seq 1 50); do kill -0 "$dpid" 2>/dev/null || break; sleep 0.1; done
! kill -0 "$dpid" 2>/dev/null || die "the daemon did not stop"
region_gone "python daemon"

log "nginx with daemon on, master_process on, 2 workers"
mkdir -p "$TMPD/www"
mkfile "$TMPD/www/4m.bin" $((4 << 20))
NGINX_WORKERS=2 nginx_conf "$TMPD/ngx" 8080 "$TMPD/www"
sed -i 's/^daemon off;/daemon on;/' "$TMPD/ngx/nginx.conf"
on_stack timeout 20 nginx -p "$TMPD/ngx" -c "$TMPD/ngx/nginx.conf" || die "nginx did not start: $(cat "$TMPD/ngx/logs/error.log")"
for i in $(seq 1 50); do [ -s "$TMPD/ngx/nginx.pid" ] && break; sleep 0.1; done
master=$(cat "$TMPD/ngx/nginx.pid")
at_cleanup "kill -KILL $master"
kill -0 "$master" || die "no nginx master"
# The master writes its pid file before it has forked both workers: wait for them (bounded).
for i in $(seq 1 50); do
    n=$(pgrep -c -P "$master" || true)
    [ "$n" = 2 ] && break
    sleep 0.1
done
[ "$n" = 2 ] || die "expected 2 workers, found $n"
wait_connect "$NS_P" "$STACK_IP" 8080 20 || die "nginx not reachable"
for i in 1 2 3; do
    on_peer curl -sS --fail --max-time 30 -o "$TMPD/got" "http://$STACK_IP:8080/4m.bin" || die "curl $i"
    same_file "$TMPD/www/4m.bin" "$TMPD/got"
done
kill -QUIT "$master"
for i in $(seq 1 100); do kill -0 "$master" 2>/dev/null || break; sleep 0.1; done
! kill -0 "$master" 2>/dev/null || die "nginx did not quit"
region_gone nginx
log "ok"
