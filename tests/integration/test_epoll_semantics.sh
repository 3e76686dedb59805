#!/usr/bin/env bash
# epoll through the shim, one defect each (build/tools/epoll_check), against a kernel echo server
# in the peer: epoll_ctl(ADD) from another thread wakes a thread already in epoll_wait; an epoll
# fd holding a stack socket reports readiness through poll() and an outer epoll set; an EPOLLET
# listener reports an edge per new connection while earlier ones stay queued; one epoll_wait
# reports each of 100 ready level-triggered sockets exactly once, and smaller calls rotate
# through them (the shim once collected in batches of 64 and reported items twice); epoll_ctl racing
# close() of the same fd (under SAN=1 ASan checks every access).
# timeout: 120
set -euo pipefail
. "$(dirname "$0")/../lib/netns.sh"
need_cmd socat
netns_setup
tool=$(need_tool epoll_check)
port=7100

bg_peer "$TMPD/echo.log" socat TCP-LISTEN:$port,reuseaddr,fork,backlog=128 EXEC:cat
wait_listen "$NS_P" "$port"

for mode in wake nested; do
    log "$mode"
    on_stack timeout 30 "$tool" "$mode" "$PEER_IP" "$port" || die "epoll_check $mode"
done

log "etlisten: 3 connections, none accepted until the end"
bg_stack "$TMPD/et.log" "$tool" etlisten 7200 3
et=$BG_PID
wait_log "$TMPD/et.log" '^listening'
for i in 1 2 3; do
    bg_peer "$TMPD/c$i.log" socat -u EXEC:'sleep 20' "TCP:$STACK_IP:7200"
    wait_log "$TMPD/et.log" "^edge $i\$" 20 || true
    grep -q "^edge $i\$" "$TMPD/et.log" || { cat "$TMPD/et.log" >&2; die "no edge for connection $i"; }
done
bg_wait "$et" 30 || { cat "$TMPD/et.log" >&2; die "epoll_check etlisten failed"; }
grep -q '^ok etlisten' "$TMPD/et.log" || die "etlisten did not finish"

log "many: 100 ready sockets, each once per epoll_wait"
on_stack timeout 60 "$tool" many "$PEER_IP" "$port" 100 || die "epoll_check many"

log "race: epoll_ctl, epoll_wait, send/recv and poll against close() for 4 s"
on_stack timeout 60 "$tool" race "$PEER_IP" "$port" 4 || die "epoll_check race"
log "ok"
