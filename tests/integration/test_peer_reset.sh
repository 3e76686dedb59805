#!/usr/bin/env bash
# A peer that resets mid-transfer: a kernel server sends a 64 MB response, aborts after 4 MB
# with SO_LINGER 0 (RST). The client through the stack must report the reset (tcp_probe:
# ECONNRESET; curl: exit 56 "Connection reset by peer"), having received only correct bytes
# (pattern checked) and fewer than the 64 MB announced.
# timeout: 90
set -euo pipefail
. "$(dirname "$0")/../lib/netns.sh"
need_cmd curl ethtool
probe=$(need_tool tcp_probe)
netns_setup

total=$((64 << 20))
bg_peer "$TMPD/srv1.log" "$probe" serve 9100 --send $total --rst-after 4M --max-seconds 40
srv=$BG_PID
wait_listen "$NS_P" 9100
rc=0
out=$(on_stack "$probe" connect "$PEER_IP" 9100 --recv --max-seconds 30 2>&1) || rc=$?
log "tcp_probe: rc=$rc $out"
bg_wait $srv 10 || true
log "server: $(cat "$TMPD/srv1.log")"
grep -q 'result=reset' "$TMPD/srv1.log" || die "the server did not reset"
grep -q 'result=error errno=ECONNRESET' <<<"$out" || die "client: expected ECONNRESET"
grep -q 'pattern=ok' <<<"$out" || die "client received corrupted bytes"
got=$(sed -n 's/.* received=\([0-9]*\).*/\1/p' <<<"$out")
[ "$got" -lt "$total" ] || die "client received everything ($got) despite the reset"

bg_peer "$TMPD/srv2.log" "$probe" serve 9101 --http --send $total --rst-after 4M --max-seconds 40
srv=$BG_PID
wait_listen "$NS_P" 9101
rc=0
out=$(on_stack curl -sS --max-time 30 -o "$TMPD/got.bin" "http://$PEER_IP:9101/" 2>&1) || rc=$?
log "curl: rc=$rc $out"
bg_wait $srv 10 || true
[ "$rc" = 56 ] || die "curl exit $rc, expected 56 (receive failure)"
grep -q 'reset by peer' <<<"$out" || die "curl did not report 'Connection reset by peer'"
[ "$(fsize "$TMPD/got.bin")" -lt "$total" ] || die "curl got the whole body despite the reset"
