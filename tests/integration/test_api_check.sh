#!/usr/bin/env bash
# The shim's POSIX semantics that real programs do not reach (build/tools/api_check under the
# library, against build/tools/api_peer on the kernel peer): non-blocking connect, refused
# connects, poll/select/epoll over a pipe + UDP + timerfd + stack socket, EOF and RST
# readiness and errnos, dup/dup2/fcntl/ioctl, SO_RCVTIMEO, EINTR, SIGPIPE, EPOLLONESHOT and
# EPOLLET, TCP_INFO, address and option checks, loopback hand-over to the kernel.
# Every check prints PASS/FAIL; any FAIL fails the test.
# timeout: 120
set -euo pipefail
. "$(dirname "$0")/../lib/netns.sh"
need_cmd ethtool
netns_setup
check=$(need_tool api_check)
peer=$(need_tool api_peer)
base=7100

bg_peer "$TMPD/peer.log" "$peer" "$PEER_IP" "$base" 100
wait_log "$TMPD/peer.log" 'api_peer: ready'

log "api_check $PEER_IP $base"
rc=0
on_stack timeout 90 "$check" "$PEER_IP" "$base" >"$TMPD/check.out" 2>&1 || rc=$?
cat "$TMPD/check.out" >&2
grep -q '^PASS: 0 failed$' "$TMPD/check.out" || die "api_check: failures (exit $rc)"
[ "$rc" -eq 0 ] || die "api_check exited $rc"
n=$(grep -c '^PASS ' "$TMPD/check.out")
[ "$n" -ge 50 ] || die "api_check: only $n checks ran"
log "ok: $n checks passed"
