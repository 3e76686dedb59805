#!/usr/bin/env bash
# Urgent data as Linux treats it (RFC 9293 3.8.5, RFC 6093): build/tools/urg_check runs one
# scenario per case (one urgent byte; a second pointer that replaces the first; an urgent
# byte alone; the first again with the receiver as the socket's owner, F_SETOWN: SIGURG and a
# MSG_WAITALL read that stops at the mark) with SO_OOBINLINE off and on, and prints what the
# receiver sees step by step (poll/epoll POLLPRI, SIOCATMARK, FIONREAD, reads stopping at the
# mark, recv(MSG_OOB) and its errors). Reference: kernel sender to kernel receiver (198.18.0.2 in the stack
# namespace). Checked: the stack as receiver (kernel sender) and the stack as sender (kernel
# receiver) give the reference transcript, byte for byte.
# timeout: 120
set -euo pipefail
. "$(dirname "$0")/../lib/netns.sh"
netns_setup kaddr
tool=$(need_tool urg_check)
port=7300

# recv_side: bg function, recv host; send_side: fg function, then the transcript file
pair() {   # name scen inline recv-runner recv-addr send-runner
    local name=$1 scen=$2 inl=$3 rrun=$4 raddr=$5 srun=$6
    port=$((port + 1))
    "$rrun" "$TMPD/$name.out" "$tool" recv "$raddr" "$port" "$scen" $inl
    local rp=$BG_PID
    wait_log "$TMPD/$name.out" 'urg_check: ready'
    "$srun" timeout 20 "$tool" send "$raddr" "$port" "$scen" >"$TMPD/$name.send" 2>&1 ||
        { cat "$TMPD/$name.send" >&2; die "$name: the sender failed"; }
    bg_wait "$rp" 20 || die "$name: the receiver did not finish"
    grep -v '^urg_check: ready' "$TMPD/$name.out" >"$TMPD/$name.txt"
}

n=0
for scen in 1 2 3 4; do
    for inl in "" inline; do
        tag=s$scen${inl:+i}
        pair "ref-$tag" "$scen" "$inl" bg_kstack "$KSTACK_IP" on_peer
        pair "rcv-$tag" "$scen" "$inl" bg_stack "$STACK_IP" on_peer
        pair "snd-$tag" "$scen" "$inl" bg_peer "$PEER_IP" on_stack
        grep -q '^read -> ' "$TMPD/ref-$tag.txt" || die "$tag: no reference transcript"
        for side in rcv snd; do
            if ! diff -u "$TMPD/ref-$tag.txt" "$TMPD/$side-$tag.txt" >&2; then
                die "$tag: the stack as $([ $side = rcv ] && echo receiver || echo sender) differs from Linux"
            fi
        done
        n=$((n + 1))
    done
done
cat "$TMPD/ref-s1.txt" >&2
log "ok: $n scenarios match the kernel's transcript, with the stack receiving and sending"
