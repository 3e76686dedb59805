#!/usr/bin/env bash
# The shim's POSIX semantics that real programs do not reach (build/tools/api_check under the
# library, against build/tools/api_peer on the kernel peer): non-blocking connect, refused
# connects, poll/select/epoll over a pipe + UDP + timerfd + stack socket, EOF and RST
# readiness and errnos, dup/dup2/fcntl/ioctl, SO_RCVTIMEO, EINTR, SIGPIPE, EPOLLONESHOT and
# EPOLLET, TCP_INFO, address and option checks, loopback hand-over to the kernel; unconnected
# sockets (on the shim's shared client template until they need their own) each behave as a
# socket of their own: lowest fd number, O_NONBLOCK, options, shutdown, F_SETOWN, dup, fork.
# Every check prints PASS/FAIL; any FAIL fails the test.
# timeout: 120
set -euo pipefail
. "$(dirname "$0")/../lib/netns.sh"
need_cmd ethtool
netns_setup
run_checks api_check 7100 50
