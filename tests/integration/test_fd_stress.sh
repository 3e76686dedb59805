#!/usr/bin/env bash
# build/tools/fd_stress on the stack for a bounded time: 4 threads open and close files, pipes,
# stack listeners and stack connections (to api_peer's echo port on the kernel peer), closing
# through close(), syscall(SYS_close), close_range, dup2 over the fd and a raw system call the
# shim cannot see; after every step each thread checks every fd it holds, by fstat (the kernel's
# identity) and through the interposed calls (a file's tag byte, a pipe byte, a listener's port,
# an echo). Any mismatch fails; under make test SAN=1 any sanitizer report fails too.
# timeout: 90
set -euo pipefail
. "$(dirname "$0")/../lib/netns.sh"
need_cmd ethtool
netns_setup
stress=$(need_tool fd_stress)
peer=$(need_tool api_peer)
base=7300
secs=${TCPSM_FD_STRESS_SECS:-15}

bg_peer "$TMPD/peer.log" "$peer" "$PEER_IP" "$base" 80
wait_log "$TMPD/peer.log" 'api_peer: ready'

log "fd_stress $PEER_IP $base $secs 4"
rc=0
on_stack timeout 60 "$stress" "$PEER_IP" "$base" "$secs" 4 >"$TMPD/out" 2>&1 || rc=$?
cat "$TMPD/out" >&2
[ "$rc" -eq 0 ] || die "fd_stress exited $rc"
n=$(sed -n 's/^fd_stress: \([0-9]*\) operations.*/\1/p' "$TMPD/out")
[ -n "$n" ] && [ "$n" -ge 1000 ] || die "fd_stress: too few operations (${n:-none})"
log "ok: $n operations"
