#!/usr/bin/env bash
# SIGIO and SIGURG on TCP sockets as Linux sends them (fcntl F_SETOWN, F_SETOWN_EX, F_SETSIG,
# O_ASYNC; Linux sock_wake_async, sk_send_sigurg): build/tools/sigio_check owns a listener and a
# client, both O_ASYNC with a real-time F_SETSIG signal, set before connect/listen, and prints
# step by step which signals arrived and with which si_band and si_fd: the connect completing,
# data, an urgent byte (SIGURG and POLL_PRI), plain SIGIO after F_SETSIG 0, room to write after
# a send found none, the peer's FIN after our shutdown (POLL_HUP), a connection to accept, an
# accepted socket (no owner, no O_ASYNC), and a refused connect signalled to the process group.
# Reference: the same tool on the kernel (198.18.0.2 in the stack namespace) against the same
# kernel peer. Checked: the stack's transcript is the reference's, line for line.
# timeout: 90
set -euo pipefail
. "$(dirname "$0")/../lib/netns.sh"
netns_setup kaddr
tool=$(need_tool sigio_check)
port=7400

run() {   # name runner myaddr
    local name=$1 run=$2 me=$3
    port=$((port + 10))
    bg_peer "$TMPD/$name.peer" "$tool" peer "$PEER_IP" "$me" "$port"
    local pp=$BG_PID
    wait_log "$TMPD/$name.peer" 'sigio_check: ready'
    "$run" "$TMPD/$name.out" timeout 40 "$tool" async "$me" "$PEER_IP" "$port"
    local ap=$BG_PID
    bg_wait "$ap" 45 || { cat "$TMPD/$name.out" >&2; die "$name: the owner's steps failed"; }
    bg_wait "$pp" 10 || { cat "$TMPD/$name.peer" >&2; die "$name: the peer failed"; }
    grep -q '^sigio_check: done' "$TMPD/$name.out" || { cat "$TMPD/$name.out" >&2; die "$name: incomplete"; }
    grep -v '^sigio_check: ready' "$TMPD/$name.out" >"$TMPD/$name.txt"
}

run ref bg_kstack "$KSTACK_IP"
run stack bg_stack "$STACK_IP"
cat "$TMPD/ref.txt" >&2
diff -u "$TMPD/ref.txt" "$TMPD/stack.txt" >&2 || die "the stack's signals differ from Linux's"
grep -q '^connect: .*rt { out} fd {C}' "$TMPD/ref.txt" || die "reference: no POLL_OUT at connect"
log "ok: the stack's SIGIO/SIGURG transcript matches the kernel's ($(wc -l <"$TMPD/ref.txt") lines)"
