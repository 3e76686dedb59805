#!/usr/bin/env bash
# An edge-triggered, non-blocking epoll echo server (build/tools/epoll_echo) on the stack;
# kernel clients in the peer send 1 MB each, 8 at once, and must get every byte back
# (sha256 compared), then one 20 MB echo. The server exits 0 after 9 connections.
# timeout: 120
set -euo pipefail
. "$(dirname "$0")/../lib/netns.sh"
need_cmd socat ethtool
netns_setup
echo_srv=$(need_tool epoll_echo)
port=7000

mkfile "$TMPD/1m.bin" $((1 << 20))
mkfile "$TMPD/20m.bin" $((20 << 20))
bg_stack "$TMPD/server.log" "$echo_srv" -p "$port" -n 9
srv=$BG_PID
wait_log "$TMPD/server.log" '^listening'

log "8 concurrent 1 MB echoes"
pids=()
for i in 1 2 3 4 5 6 7 8; do
    on_peer timeout 60 socat -t 60 - "TCP:$STACK_IP:$port" <"$TMPD/1m.bin" >"$TMPD/got-$i.bin" &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || die "a socat client failed"; done
for i in 1 2 3 4 5 6 7 8; do same_file "$TMPD/1m.bin" "$TMPD/got-$i.bin"; done

log "one 20 MB echo"
on_peer timeout 60 socat -t 60 - "TCP:$STACK_IP:$port" <"$TMPD/20m.bin" >"$TMPD/got-20m.bin" ||
    die "socat (20 MB) failed"
same_file "$TMPD/20m.bin" "$TMPD/got-20m.bin"

bg_wait "$srv" 20 || { cat "$TMPD/server.log" >&2; die "epoll_echo did not exit cleanly"; }
[ "$(grep -c '^closed ' "$TMPD/server.log")" -eq 9 ] || die "epoll_echo: expected 9 closed connections"
log "ok"
