#!/usr/bin/env bash
# alarm + siglongjmp out of a blocked read on a stack socket (wget's connect timeout does this),
# 20 times (build/tools/sig_check longjmp): after each jump the same socket and a fresh one
# still echo, so no wait-queue entry, poll watch or link lead was left behind.
# Not in SAN_TESTS: the jump skips the shim's release of the reference the read held on the
# socket object, which LeakSanitizer reports (README, Limits).
# timeout: 120
set -euo pipefail
. "$(dirname "$0")/../lib/netns.sh"
need_cmd socat
netns_setup
tool=$(need_tool sig_check)
port=7301
bg_peer "$TMPD/echo.log" socat TCP-LISTEN:$port,reuseaddr,fork,backlog=64 EXEC:cat
wait_listen "$NS_P" "$port"
on_stack timeout 60 "$tool" longjmp "$PEER_IP" "$port" || die "sig_check longjmp"
log "ok"
