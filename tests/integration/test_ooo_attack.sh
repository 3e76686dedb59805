#!/usr/bin/env bash
# A peer that opens many connections and sends only out-of-order data (build/tools/tcp_attack
# ooo: hand-made handshakes from the peer's address, the peer kernel's RSTs for them dropped
# by nftables) at an nginx on the stack with TCPSM_MEM_MAX=8M:
#  1. 300 connections x 3 single bytes far beyond a hole (the issue's measurement): the
#     stack's buffer memory holds under 256 bytes per connection (the bytes, not a ring up to
#     their offset), and nginx's resident memory (nginx's own per-connection state, the
#     shim's and the TCB included) grows by less than 12 KB per connection (before: 24 KB);
#  2. 300 connections x 40 segments of 1000 bytes (12 MB of out-of-order data): the stack's
#     buffer memory (tcpsm stat: tcp_mem) stays under its 8M cap, pressure is entered and
#     counted;
# and meanwhile a kernel curl gets its page byte-exact.
# timeout: 120
set -euo pipefail
. "$(dirname "$0")/../lib/netns.sh"
. "$(dirname "$0")/../lib/http.sh"
stack_mode || skip "an attack on the stack's memory accounting"
need_cmd curl nginx ethtool nft python3
netns_setup
attack=$(need_tool tcp_attack)
export TCPSM_RUN_DIR=$TMPD/run TCPSM_MEM_MAX=8M
tcpsm=$TCPSM_BUILD/tcpsm

on_peer nft add table inet tcpsm_ooo
on_peer nft add chain inet tcpsm_ooo out '{ type filter hook output priority 0; }'
# the peer kernel's bare RSTs to the stack's SYN+ACKs (the tool's own resets carry ACK)
on_peer nft add rule inet tcpsm_ooo out ip daddr "$STACK_IP" tcp sport 20000-29999 \
    'tcp flags & (rst | ack) == rst' drop

mkdir -p "$TMPD/www"
head -c 3000 /dev/urandom | base64 -w 76 >"$TMPD/www/index.html"
chmod 644 "$TMPD/www/index.html"
nginx_stack "$TMPD/www"
ngx=$NGX_PID

rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
fetch() {
    on_peer curl -sS --fail --max-time 20 -o "$TMPD/got.html" "http://$STACK_IP:8080/index.html"
    same_file "$TMPD/www/index.html" "$TMPD/got.html"
}
mem_json() {
    "$tcpsm" stat --json --pid "$ngx" >"$TMPD/stat.json" || die "tcpsm stat failed"
    python3 - "$TMPD/stat.json" "$ngx" <<'PY'
import json, sys
s = [x for x in json.load(open(sys.argv[1])) if x["pid"] == int(sys.argv[2])][0]
m, c = s["tcp_mem"], s["counters"]
print(m["used"], m["max"], c["tcp_mem_pressure"], c["tcp_drop_mem"], c["tcp_ooo_in"], s["nsocks"])
PY
}
fetch
rss0=$(rss "$ngx")

log "phase 1: 300 connections, 3 out-of-order bytes each"
bg_peer "$TMPD/a1.out" "$attack" ooo "$PEER_IP" "$STACK_IP" 8080 --conns 300 --segs 3 --bytes 1 --hold 4
a1=$BG_PID
for i in $(seq 100); do grep -q '^ooo:' "$TMPD/a1.out" && break; sleep 0.1; done
sleep 1
read -r used max pr dropm ooo nsocks < <(mem_json)
rss1=$(rss "$ngx")
cat "$TMPD/a1.out" >&2
est=$(sed -n 's/.*established=\([0-9]*\).*/\1/p' "$TMPD/a1.out")
log "established=$est nsocks=$nsocks tcp_mem used=$used max=$max ooo_in=$ooo; VmRSS $rss0 -> $rss1 kB"
[ "${est:-0}" -ge 290 ] || die "only ${est:-0} attack connections established"
[ "$ooo" -ge $((est * 3)) ] || die "the stack saw only $ooo out-of-order segments"
per=$(( (rss1 - rss0) * 1024 / est ))
log "per out-of-order connection: $((used / est)) bytes of stack buffers, $per bytes resident"
[ $((used / est)) -lt 256 ] || die "$((used / est)) bytes of stack buffers per connection"
[ "$per" -lt 12288 ] || die "$per resident bytes per connection (limit 12288)"
fetch
for i in $(seq 100); do kill -0 "$a1" 2>/dev/null || break; sleep 0.1; done
sleep 0.5
read -r used max pr dropm ooo nsocks < <(mem_json)
log "after the resets: nsocks=$nsocks tcp_mem used=$used"
[ "$used" -eq 0 ] || die "$used bytes of buffers left after the attack connections were reset"

log "phase 2: 300 connections, 40 x 1000 out-of-order bytes each, cap 8M"
bg_peer "$TMPD/a2.out" "$attack" ooo "$PEER_IP" "$STACK_IP" 8080 --conns 300 --segs 40 --bytes 1000 --hold 4 --port-base 21000
a2=$BG_PID
peak=0
for i in $(seq 40); do
    read -r used max pr dropm ooo nsocks < <(mem_json)
    [ "$used" -gt "$peak" ] && peak=$used
    [ "$used" -le "$max" ] || die "tcp_mem used $used over the cap $max"
    grep -q '^ooo:' "$TMPD/a2.out" && [ "$i" -gt 8 ] && break
    sleep 0.25
done
cat "$TMPD/a2.out" >&2
log "tcp_mem peak $peak of $max; pressure entered $pr times; refused $dropm"
[ "$max" -eq $((8 << 20)) ] || die "TCPSM_MEM_MAX not applied (max $max)"
[ "$pr" -ge 1 ] || die "memory pressure never entered"
fetch
kill -0 "$ngx" 2>/dev/null || die "nginx on the stack exited"
for i in $(seq 100); do kill -0 "$a2" 2>/dev/null || break; sleep 0.1; done
log "ok"
