#!/usr/bin/env bash
# TCPSM_TRACE: curl through the stack fetches a page with the trace on; the trace must show
# this connection's timeline (RFC 9293 3.5/3.6): CLOSED -> SYN-SENT on the SYN sent,
# SYN-SENT -> ESTABLISHED on the SYN+ACK received, then the close: FIN-WAIT-1 (curl closes
# first; nginx keeps the connection alive) and FIN-WAIT-2/CLOSING/TIME-WAIT after, every line
# naming 198.18.0.10 and the server's port 8080. A second run through a server on the
# stack shows the passive side: LISTEN -> SYN-RECEIVED -> ESTABLISHED.
# timeout: 60
set -euo pipefail
. "$(dirname "$0")/../lib/netns.sh"
. "$(dirname "$0")/../lib/http.sh"
stack_mode || skip "TCPSM_TRACE exists only on the stack"
need_cmd curl nginx ethtool
netns_setup

mkdir -p "$TMPD/www"
mkfile "$TMPD/www/page.bin" 100000
nginx_peer "$TMPD/www"

TCPSM_TRACE=$TMPD/trace.txt on_stack curl -sS --fail --max-time 20 -o "$TMPD/got.bin" \
    "http://$PEER_IP:8080/page.bin"
same_file "$TMPD/www/page.bin" "$TMPD/got.bin"
[ -s "$TMPD/trace.txt" ] || die "TCPSM_TRACE wrote nothing"
cat "$TMPD/trace.txt" >&2
grep -q "$STACK_IP:[0-9]* > $PEER_IP:8080" "$TMPD/trace.txt" || die "no line for this connection"
tl=$(grep "$STACK_IP:[0-9]* > $PEER_IP:8080" "$TMPD/trace.txt")
line_of() { grep -n -E -- "$1" <<<"$tl" | head -1 | cut -d: -f1; }
a=$(line_of 'SYN-SENT')
b=$(line_of 'SYN-SENT -> ESTABLISHED +< SYN\+ACK')
c=$(line_of 'ESTABLISHED -> FIN-WAIT-1')
d=$(line_of 'FIN-WAIT-1 -> (FIN-WAIT-2|CLOSING|TIME-WAIT)')
[ -n "$a" ] || die "no SYN-SENT in the trace"
grep -Eq -- '-> SYN-SENT +> SYN ' <<<"$tl" || log "note: the SYN-SENT line does not show the SYN itself"
[ -n "$b" ] || die "no SYN-SENT -> ESTABLISHED on a received SYN+ACK"
[ -n "$c" ] || die "no ESTABLISHED -> FIN-WAIT-1 (the active close)"
[ -n "$d" ] || die "no FIN-WAIT-1 -> FIN-WAIT-2/CLOSING/TIME-WAIT"
[ "$a" -le "$b" ] && [ "$b" -lt "$c" ] && [ "$c" -lt "$d" ] || die "the transitions are out of order"

# Passive side: a server on the stack.
bg_stack "$TMPD/srv.log" env TCPSM_TRACE="$TMPD/trace2.txt" "$(need_tool tcp_probe)" serve 9400 \
    --send 50000 --max-seconds 20
srv=$BG_PID
wait_log "$TMPD/srv.log" '^listening' 10   # ss cannot see a listener on the stack
out=$(on_peer "$(need_tool tcp_probe)" connect "$STACK_IP" 9400 --recv --max-seconds 10) ||
    die "kernel client: $out"
grep -q 'received=50000 pattern=ok' <<<"$out" || die "kernel client got: $out"
bg_wait $srv 10 || true
cat "$TMPD/trace2.txt" >&2
grep -Eq -- '(LISTEN|CLOSED) -> SYN-RECEIVED +< SYN ' "$TMPD/trace2.txt" ||
    die "no -> SYN-RECEIVED on the received SYN"
grep -Eq -- 'SYN-RECEIVED -> ESTABLISHED +< [A-Z+]*ACK' "$TMPD/trace2.txt" ||
    die "no SYN-RECEIVED -> ESTABLISHED on the received ACK"
