#!/usr/bin/env bash
# Signal handlers and blocking stack calls (build/tools/sig_check handler) against a kernel echo
# server: a handler that writes to and closes stack sockets while its thread is inside stack
# calls never deadlocks, and every byte it wrote is echoed. (siglongjmp: test_signal_longjmp.)
# timeout: 120
set -euo pipefail
. "$(dirname "$0")/../lib/netns.sh"
need_cmd socat
netns_setup
tool=$(need_tool sig_check)
port=7300
bg_peer "$TMPD/echo.log" socat TCP-LISTEN:$port,reuseaddr,fork,backlog=64 EXEC:cat
wait_listen "$NS_P" "$port"
for mode in handler; do
    log "$mode"
    on_stack timeout 60 "$tool" "$mode" "$PEER_IP" "$port" || die "sig_check $mode"
done
log "ok"
