#!/usr/bin/env bash
# alarm + siglongjmp out of blocked stack calls (wget's connect timeout does this):
# - build/tools/sig_check longjmp: out of a blocked read, 20 times; after each jump the same
#   socket and a fresh one still echo, so no wait-queue entry, poll watch or link lead was left;
# - build/tools/sig_check jumpfree: out of 10 blocked reads, accepts and connects each, closing
#   the socket after each jump: the reference the abandoned call held is released (shim/inflight.c),
#   so each read's connection ends (the kernel peer sees 10 FINs), the listener's and the
#   connecting socket's ports are free again and no fd is left over.
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

# Each connection's end, as the kernel peer sees it: cat ends at the FIN, then a line is logged.
fport=7302
: >"$TMPD/fins"
bg_peer "$TMPD/fin.log" socat TCP-LISTEN:$fport,reuseaddr,fork,backlog=64 \
    SYSTEM:"cat >/dev/null; echo fin >>$TMPD/fins"
wait_listen "$NS_P" "$fport"
on_stack timeout 60 "$tool" jumpfree "$PEER_IP" "$fport" 198.18.0.99 || die "sig_check jumpfree"
for i in $(seq 50); do
    [ "$(wc -l <"$TMPD/fins")" -ge 10 ] && break
    sleep 0.2
done
n=$(wc -l <"$TMPD/fins")
[ "$n" -eq 10 ] || die "the peer saw $n of 10 connections end (a jump out of a read kept its socket)"
log "ok"
