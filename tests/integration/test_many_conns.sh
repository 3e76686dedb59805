#!/usr/bin/env bash
# An epoll server on the stack (build/tools/conn_many) holding 5,000 connections at once from a
# kernel client in the peer: every connection gets two 64-byte messages echoed back byte for
# byte (one as it opens, one with all of them open), the client checks each byte; the server
# accepts exactly 5,000, sees every one closed (reset) and exits 0; its idle memory report is
# logged and its resident growth must be under 4 KiB per connection (a memory bound, not a timing;
# 5,000 so that the allocator's pool steps, which swung 2,000 between 3.0 and 4.9 KiB, amortise).
# The 10,000-connection row with timings is in make bench (bench/conn_many.sh).
# timeout: 120
set -euo pipefail
. "$(dirname "$0")/../lib/netns.sh"
netns_setup
N=5000
port=7150
conn_many_server $N $port
on_peer timeout 90 "$tool" client -a "$STACK_IP" -p $port -n $N -t 80 -H 2 >"$TMPD/cli.log" 2>&1 ||
    { cat "$TMPD/cli.log" >&2; die "the client failed"; }
cat "$TMPD/cli.log" >&2
grep -q "n=$N" "$TMPD/cli.log" || die "the client did not report $N connections"
bg_wait "$srv" 30 || { cat "$TMPD/srv.log" >&2; die "the server did not exit 0 after the $N connections closed"; }
grep -q "^done accepted=$N\$" "$TMPD/srv.log" || { cat "$TMPD/srv.log" >&2; die "the server accepted a different count"; }
line=$(grep '^mem ' "$TMPD/srv.log") || die "no memory report from the server"
log "$line"
if stack_mode && [ "${TCPSM_SAN:-0}" != 1 ]; then   # ASan's shadow and redzones are not the stack's
    per=$(sed -n 's/.*per_conn_bytes=\([0-9-]*\).*/\1/p' <<<"$line")
    [ "$per" -le 4096 ] || die "$per bytes of memory per idle connection (bound 4096)"
fi
log "ok: $N connections held, each echoed twice"
