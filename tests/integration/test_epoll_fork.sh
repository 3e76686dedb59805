#!/usr/bin/env bash
# An epoll instance inherited across fork, as on Linux (issue 6; build/tools/ep_fork): the
# parent makes a listener and an epoll instance holding it, forks and closes its own copy of
# the listener; the listener's item stays (Linux removes an item only when the last fd on the
# socket closes) and the child serves 3 connections through the inherited instance, adding,
# changing and deleting each accepted socket there itself. Kernel clients send random data and
# must get exactly those bytes back.
# timeout: 90
set -euo pipefail
. "$(dirname "$0")/../lib/netns.sh"
need_cmd socat
netns_setup
tool=$(need_tool ep_fork)
port=7300

bg_stack "$TMPD/srv.log" "$tool" $port 3
srv=$BG_PID
wait_log "$TMPD/srv.log" '^listening' 20 || die "ep_fork did not start: $(cat "$TMPD/srv.log")"
for i in 1 2 3; do
    head -c $((100000 + i * 4099)) /dev/urandom >"$TMPD/in.$i"
    on_peer timeout 30 socat -t 30 -T 30 - "TCP:$STACK_IP:$port" <"$TMPD/in.$i" >"$TMPD/out.$i" \
        2>"$TMPD/err.$i" || die "client $i failed: $(cat "$TMPD/err.$i"); server: $(cat "$TMPD/srv.log")"
    [ "$(sha "$TMPD/in.$i")" = "$(sha "$TMPD/out.$i")" ] ||
        die "client $i: echo differs: sent $(fsize "$TMPD/in.$i"), got $(fsize "$TMPD/out.$i") bytes; server: $(cat "$TMPD/srv.log")"
done
rc=0
bg_wait "$srv" 30 || rc=$?
[ $rc = 0 ] || die "ep_fork failed (status $rc, 124: still running after 30 s): $(cat "$TMPD/srv.log")"
grep -q '^ok 3$' "$TMPD/srv.log" || die "ep_fork did not finish: $(cat "$TMPD/srv.log")"
log "ok: 3 connections served byte-exact through an epoll instance inherited across fork"
