#!/usr/bin/env bash
# posix_spawn children on the stack (issue 6). glibc's posix_spawn clones its child without
# running fork handlers; the program it execs must still find the stack sockets it inherits.
# A python3 server on the stack accepts each connection and starts /bin/cat on it (the
# connection as cat's stdin and stdout), then closes its own copy: the connection lives on in
# cat alone, which echoes until the client's EOF and ends it as it exits.
#  1. os.posix_spawn with POSIX_SPAWN_DUP2 file actions;
#  2. subprocess.Popen(stdin=conn, stdout=conn, close_fds=False), which CPython runs through
#     posix_spawn (an executable with a directory, no preexec_fn, no cwd, ...).
# Kernel clients in the peer send their own random data and must get exactly those bytes back.
# timeout: 120
set -euo pipefail
. "$(dirname "$0")/../lib/netns.sh"
need_cmd socat python3
netns_setup
PY=$(command -v python3)
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3

for i in $(seq 1 16); do head -c $((65536 + i * 1009)) /dev/urandom >"$TMPD/in.$i"; done
client() {
    on_peer timeout 30 socat -t 30 -T 30 - "TCP:$STACK_IP:$2" <"$TMPD/in.$3" \
        >"$TMPD/out.$1.$3" 2>"$TMPD/err.$1.$3"
}
check() {
    [ "$(sha "$TMPD/in.$2")" = "$(sha "$TMPD/out.$1.$2")" ] ||
        die "$1 client $2: echo differs: sent $(fsize "$TMPD/in.$2"), got $(fsize "$TMPD/out.$1.$2") bytes ($(cat "$TMPD/err.$1.$2"))"
}
clients() {
    local tag=$1 port=$2 i pids=()
    for i in $(seq 1 8); do client "$tag" "$port" "$i" || die "$tag client $i failed: $(cat "$TMPD/err.$tag.$i")"; check "$tag" "$i"; done
    for i in $(seq 9 16); do client "$tag" "$port" "$i" & pids+=($!); done
    for i in "${!pids[@]}"; do wait "${pids[i]}" || die "$tag client $((9 + i)) failed"; done
    for i in $(seq 9 16); do check "$tag" "$i"; done
}

cat >"$TMPD/spawn.py" <<'PY'
import os, signal, socket, subprocess, sys
mode, port = sys.argv[1], int(sys.argv[2])
if mode == "popen":
    assert subprocess._USE_POSIX_SPAWN, "this python3 does not use posix_spawn"
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("0.0.0.0", port))
l.listen(64)
print("serving", mode, flush=True)
kids = []
while True:
    c, _ = l.accept()
    if mode == "spawn":
        fa = [(os.POSIX_SPAWN_DUP2, c.fileno(), 0), (os.POSIX_SPAWN_DUP2, c.fileno(), 1)]
        kids.append(os.posix_spawn("/bin/cat", ["cat"], os.environ, file_actions=fa))
    else:
        kids.append(subprocess.Popen(["/bin/cat"], stdin=c, stdout=c, close_fds=False))
    c.close()       # the connection is cat's alone now
    for k in kids[:]:
        done = os.waitpid(k, os.WNOHANG)[0] if mode == "spawn" else k.poll() is not None
        if done:
            kids.remove(k)
PY

port=7200
for mode in spawn popen; do
    log "$mode: cat started by posix_spawn on each accepted connection"
    bg_stack "$TMPD/$mode.log" "$PY" "$TMPD/spawn.py" "$mode" $port
    srv=$BG_PID
    wait_log "$TMPD/$mode.log" "serving" 20 || die "$mode server did not start: $(cat "$TMPD/$mode.log")"
    wait_connect "$NS_P" "$STACK_IP" $port 20
    clients "$mode" $port
    kill -0 "$srv" 2>/dev/null || die "the $mode server exited: $(cat "$TMPD/$mode.log")"
    bg_stop "$srv" || true
    port=$((port + 1))
done
log "ok: 16 connections per mode echoed byte-exact by posix_spawn'd cat"
