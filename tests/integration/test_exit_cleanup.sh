#!/usr/bin/env bash
# Process exit with connections open: a client through the stack receiving an endless stream
# from a kernel server exits (exit(0), socket never closed) after 2 MB. The library must not
# leave the connection to time out on the peer: the server's send must fail (reset) within
# its 30 s bound, and the client must exit promptly. Then the same with curl, which exits on
# --max-time in the middle of a download. Last, an orphan: a server through the stack queues
# 64 KiB to a kernel client that does not read (its small window is soon full), closes and
# exits; the connection, stuck in FIN-WAIT-1 with data and FIN unsent, must be reset.
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

# The kernel keeps such an orphan probing the zero window for minutes; the stack resets it.
stack_mode || exit 0
TCPSM_LOG=info bg_stack "$TMPD/orph.log" "$probe" serve 9602 --send 64K --close-exit --max-seconds 20
orph=$BG_PID
wait_log "$TMPD/orph.log" '^listening' 10
bg_peer "$TMPD/reader.log" "$probe" connect "$STACK_IP" 9602 --rcvbuf 4096 --wait-file "$TMPD/go" \
    --recv --max-seconds 30
reader=$BG_PID
wait_log "$TMPD/reader.log" '^waiting' 10
rc=0
bg_wait $orph 10 || rc=$?
log "orphan server: rc=$rc $(grep -E 'result=|exit:' "$TMPD/orph.log" | tr '\n' ' ')"
[ $rc -eq 0 ] || die "the server with an orphan did not exit cleanly (rc $rc; 124 = hung at exit)"
grep -q 'result=closed .*sent=65536 ' "$TMPD/orph.log" || die "server: the 64 KiB were not queued"
grep -q 'at exit 0 held and 1 orphan connection(s) reset' "$TMPD/orph.log" ||
    die "the exit summary does not count one orphan reset"
# The RST went out before the process ended: the peer's connection is gone (not ESTABLISHED
# with its receive queue full), while its reader has not read a byte yet.
gone=0
for _ in $(seq 1 50); do
    [ -z "$(on_peer ss -Htn "sport = :9602 or dport = :9602")" ] && { gone=1; break; }
    sleep 0.1
done
[ $gone -eq 1 ] || die "the peer's connection is still open: $(on_peer ss -Htni "dport = :9602")"
touch "$TMPD/go"
bg_wait $reader 10 || true
log "reader: $(tail -1 "$TMPD/reader.log")"
grep -Eq 'result=error errno=ECONNRESET sent=0 received=[1-9][0-9]* pattern=ok' "$TMPD/reader.log" ||
    die "the peer did not read the bytes that arrived, then ECONNRESET"
