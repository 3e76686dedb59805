#!/usr/bin/env bash
# exec of a program without the library (issue 6): a python3 server on the stack accepts a
# connection and forks a child that execs `sleep 2` without LD_PRELOAD, the connection
# inherited (to sleep it is a plain kernel socket); the server closes its copy. The stack keeps
# the connection while the child lives (its slot holds it) and releases it once the child has
# exited (the server's once-a-second check for dead processes): the kernel client first sees
# nothing for a second, then the connection end, instead of a connection held forever.
# timeout: 60
set -euo pipefail
. "$(dirname "$0")/../lib/netns.sh"
need_cmd socat python3
netns_setup
PY=$(command -v python3)
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3
port=7500
cat >"$TMPD/srv.py" <<'PY'
import os, signal, socket, sys
signal.signal(signal.SIGCHLD, signal.SIG_IGN)      # children reaped at once
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("0.0.0.0", int(sys.argv[1])))
l.listen(8)
print("listening", flush=True)
while True:
    c, _ = l.accept()
    c.sendall(b"hello\n")
    if os.fork() == 0:
        os.dup2(c.fileno(), 0)      # inherited by sleep
        env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
        os.execve("/bin/sleep", ["sleep", "2"], env)
    c.close()
    print("forked", flush=True)
PY
bg_stack "$TMPD/srv.log" "$PY" "$TMPD/srv.py" $port
srv=$BG_PID
wait_log "$TMPD/srv.log" '^listening' 20 || die "server did not start: $(cat "$TMPD/srv.log")"
start=$(date +%s)
rc=0
on_peer timeout 20 socat -u "TCP:$STACK_IP:$port" - >"$TMPD/got" 2>"$TMPD/err" || rc=$?
took=$(($(date +%s) - start))
[ "$rc" != 124 ] || die "the connection was still open 20 s later (held for good): $(cat "$TMPD/srv.log")"
[ "$(cat "$TMPD/got")" = hello ] || die "client got '$(cat "$TMPD/got")' ($(cat "$TMPD/err"))"
[ "$took" -ge 2 ] || die "the connection ended after ${took} s, while sleep still held it"
kill -0 "$srv" 2>/dev/null || die "server exited: $(cat "$TMPD/srv.log")"
log "ok: the connection ended ${took} s after accept, once the exec'd program without the library exited (socat rc $rc)"
