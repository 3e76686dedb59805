#!/usr/bin/env bash
# Processes killed by a signal's default action while they make stack calls (issue 6): one
# program on the stack echoes numbered messages with a kernel peer for the whole test
# (build/tools/sig_check busy, every message checked byte for byte) while 30 others, started
# separately on the same address (one shared stack), do the same and are killed by SIGTERM
# (which they leave at its default action) after 50-300 ms each. A process must die between
# stack operations, never halfway through one the survivor then finds (runtime.h, "Locks and
# signals" 6): the survivor never logs that the lock's holder died halfway ("lock recovered"),
# and its echo stays byte-exact.
# timeout: 120
set -euo pipefail
. "$(dirname "$0")/../lib/netns.sh"
stack_mode || skip "the shared stack's lock exists on the stack only"
need_cmd socat
netns_setup
tool=$(need_tool sig_check)
port=7310
bg_peer "$TMPD/echo.log" socat TCP-LISTEN:$port,reuseaddr,fork,backlog=64 EXEC:cat
wait_listen "$NS_P" "$port"
bg_stack "$TMPD/survivor.log" "$tool" busy "$PEER_IP" "$port" 20
surv=$BG_PID
sleep 0.5
for i in $(seq 30); do
    bg_stack "$TMPD/victim$i.log" "$tool" busy "$PEER_IP" "$port" 0
    v=$BG_PID
    sleep "0.$(printf '%02d' $((5 + RANDOM % 25)))"
    kill -TERM "$v" 2>/dev/null || true
    for j in $(seq 50); do kill -0 "$v" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$v" 2>/dev/null && die "victim $i did not end on SIGTERM"
    wait "$v" 2>/dev/null || true
    kill -0 "$surv" 2>/dev/null || break
done
rc=0
bg_wait "$surv" 40 || rc=$?
[ $rc -eq 0 ] || die "the survivor failed (exit $rc): $(tail -5 "$TMPD/survivor.log")"
grep -q "^busy: [1-9][0-9]* messages echoed" "$TMPD/survivor.log" ||
    die "the survivor echoed nothing: $(tail -5 "$TMPD/survivor.log")"
if grep -q "holder died: lock recovered" "$TMPD/survivor.log"; then
    die "a process was killed halfway through a stack operation: $(grep -c "holder died" "$TMPD/survivor.log") times"
fi
log "ok: $(grep '^busy:' "$TMPD/survivor.log")"
