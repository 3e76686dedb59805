#!/usr/bin/env bash
# On its own (not part of make bench): what one fork() costs a process holding N sockets, with
# and without the library (tests/tools/fork_cost: N listeners, M forks whose children _exit at
# once). Prints one line per run: sockets, forks, fork() in the parent, the whole
# fork-exit-wait round, the parent's CPU time per fork (microseconds).
#   FORK_N="0 100 1000 10000" sockets, FORK_M=500 forks
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/tests/lib/netns.sh"
set -e
netns_setup
set +e
tool=$(need_tool fork_cost)
for n in ${FORK_N:-0 100 1000 10000}; do
    ulimit -n $((n + 1024))
    printf 'kernel '; on_kstack "$tool" "$n" "${FORK_M:-500}"
    printf 'tcpsm  '; on_stack "$tool" "$n" "${FORK_M:-500}"
done
