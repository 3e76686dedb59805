#!/usr/bin/env bash
# Process exit with connections open: a client through the stack receiving an endless stream
# from a kernel server exits (exit(0), socket never closed) after 2 MB. The library must not
# leave the connection to time out on the peer: the server's send must fail (reset) within
# its 30 s bound, and the client must exit promptly. Then the same with curl, which exits on
# --max-time in the middle of a download.
# timeout: 90
set -euo pipefail
. "$(dirname "$0")/../lib/netns.sh"
need_cmd curl ethtool
probe=$(need_tool tcp_probe)
netns_setup

bg_peer "$TMPD/srv.log" "$probe" serve 9600 --send 64G --max-seconds 30
srv=$BG_PID
wait_listen "$NS_P" 9600
rc=0
out=$(on_stack timeout 20 "$probe" connect "$PEER_IP" 9600 --recv --exit-after 2M 2>&1) || rc=$?
log "client: rc=$rc $out"
[ $rc -eq 0 ] || die "the client did not exit cleanly (rc $rc; 124 = hung at exit)"
grep -q 'result=exit .*pattern=ok' <<<"$out" || die "client: $out"
bg_wait $srv 35 || true
log "server: $(tail -1 "$TMPD/srv.log")"
grep -Eq 'result=error errno=(ECONNRESET|EPIPE)' "$TMPD/srv.log" ||
    die "the peer was not told the connection ended (expected a reset on its send)"

bg_peer "$TMPD/srv2.log" "$probe" serve 9601 --http --send 64G --max-seconds 30
srv=$BG_PID
wait_listen "$NS_P" 9601
rc=0
on_stack timeout 20 curl -sS --max-time 2 -o /dev/null "http://$PEER_IP:9601/" 2>"$TMPD/curl.err" || rc=$?
log "curl: rc=$rc $(cat "$TMPD/curl.err")"
[ $rc -eq 28 ] || die "curl exit $rc, expected 28 (its own --max-time)"
bg_wait $srv 35 || true
log "server: $(tail -1 "$TMPD/srv2.log")"
grep -Eq 'result=error errno=(ECONNRESET|EPIPE)' "$TMPD/srv2.log" ||
    die "the peer was not told curl's connection ended"
