#!/usr/bin/env bash
# The fd table's lifetime rules through the library (build/tools/fd_check on the stack, against
# build/tools/api_peer's echo port on the kernel peer): syscall(2) reaches the same handlers as
# the libc wrappers; a socket closed behind the shim's back (a raw system call) never captures
# the fd that open/openat/creat/pipe/pipe2/eventfd/timerfd/signalfd/memfd/inotify/epoll_create/
# socketpair/dup/SCM_RIGHTS/a kernel accept/fopen/opendir/mkstemp/tmpfile/popen put on its number
# next; close_range(CLOSE_RANGE_UNSHARE); fclose of an fdopen'ed
# socket; a vfork or posix_spawn child closing a socket leaves the parent's connection; fork
# while other threads hold the shim's locks never leaves a child hung; ppoll/select/pselect
# timeouts too large for nanoseconds wait instead of wrapping. Any FAIL line fails the test.
# timeout: 120
set -euo pipefail
. "$(dirname "$0")/../lib/netns.sh"
need_cmd ethtool
netns_setup
run_checks fd_check 7200 40
