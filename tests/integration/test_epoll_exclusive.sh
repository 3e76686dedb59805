#!/usr/bin/env bash
# Processes sharing one stack, as nginx's workers with accept_mutex off: 4 processes forked after
# listen(), each with its own epoll instance holding the listener with EPOLLIN|EPOLLEXCLUSIVE
# (tests/tools/excl_check.c). Kernel clients in the peer namespace make 60 sequential then 40
# concurrent connections, each sending its own random 16 KiB and checking the echo (sha256).
# Every connection is accepted exactly once (accepted == distinct peers == connections), and the
# wake-ups are bounded as on Linux: one exclusive waiter per event, not one per process (at most
# 1.5 per connection for the sequential ones, wake-ups that find nothing to accept at most a
# third). Per-process receive: each process that waits on the stack reads its own link socket of
# the PACKET_FANOUT group, so at least two of them receive frames (from their exit log lines).
# For comparison only (not checked), the same without EPOLLEXCLUSIVE. Last, one instance made
# before fork, level-triggered, waited on by all 4 children: each connection accepted once.
# timeout: 150
set -euo pipefail
. "$(dirname "$0")/../lib/netns.sh"
need_cmd socat
excl=$(need_tool excl_check)
netns_setup

for i in $(seq 1 100); do head -c 16384 /dev/urandom >"$TMPD/in.$i"; done
client() {
    on_peer timeout 30 socat -t 30 -T 30 - TCP:$STACK_IP:$2 <"$TMPD/in.$1" >"$TMPD/out.$1" 2>"$TMPD/err.$1" ||
        die "client $1: $(cat "$TMPD/err.$1")"
    [ "$(sha "$TMPD/in.$1")" = "$(sha "$TMPD/out.$1")" ] ||
        die "client $1: echo differs: got $(fsize "$TMPD/out.$1") bytes"
}

# run MODE PORT SEQ CONC: the tool with 4 processes, SEQ sequential then CONC concurrent clients
run() {
    local mode=$1 port=$2 seq=$3 conc=$4 i
    # Listening once the tool says "ready" (after listen and the forks): not wait_connect, whose
    # probe is one more connection, or two when an attempt times out under load after the
    # handshake, and the tool counts every connection exactly.
    bg_stack "$TMPD/$mode.log" "$excl" "$mode" "$port" 4 $((seq + conc))
    local srv=$BG_PID
    wait_log "$TMPD/$mode.log" "^ready" 20
    sleep 0.5   # every process asleep in epoll_wait
    for i in $(seq 1 "$seq"); do client "$i" "$port"; done
    local pids=()
    for i in $(seq $((seq + 1)) $((seq + conc))); do client "$i" "$port" & pids+=($!); done
    for i in "${pids[@]}"; do wait "$i" || die "$mode: a concurrent client failed"; done
    bg_wait "$srv" 60 || die "$mode: excl_check failed: $(cat "$TMPD/$mode.log")"
    grep "^mode" "$TMPD/$mode.log" >&2
}

STACK_OPTS=(--log info)
run excl 7100 60 40
line=$(grep "^mode" "$TMPD/excl.log")
wake=$(sed -n 's/.* wakeups \([0-9]*\) .*/\1/p' <<<"$line")
empty=$(sed -n 's/.* empty \([0-9]*\) .*/\1/p' <<<"$line")
# 60 sequential connections: one wake-up each; the 40 concurrent ones may share wake-ups.
[ "$wake" -le $((60 * 3 / 2 + 40)) ] || die "EPOLLEXCLUSIVE: $wake wake-ups for 100 connections"
[ "$empty" -le 33 ] || die "EPOLLEXCLUSIVE: $empty wake-ups found nothing to accept"
if stack_mode; then
    readers=$(grep -c "its link socket received [1-9]" "$TMPD/excl.log" || true)
    [ "$readers" -ge 2 ] || die "PACKET_FANOUT: only $readers worker(s) received frames: $(grep 'link socket' "$TMPD/excl.log")"
    log "per-process receive: $readers of 4 workers read frames from their own link socket"
fi
run plain 7101 30 0
# An epoll instance made before fork and waited on by the 4 children (Linux: one instance, one
# ready list, shared): every connection accepted exactly once through it.
run shared 7102 30 20
log "ok"
