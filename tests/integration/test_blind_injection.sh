#!/usr/bin/env bash
# Blind in-window attacks (RFC 5961) against a long transfer: curl in the peer downloads 48 MB
# from nginx on the stack (rate-limited; the last 8 MB are not read until the attack has ended,
# so the connection is still open through all of it however long a loaded machine makes the
# attack take: a fixed-length transfer could end first), while build/tools/tcp_attack injects
# 100,000 segments with the connection's own 4-tuple and guessed sequence and ack numbers
# (a third each RST, SYN, ACK+data). The download must complete byte-exact (sha256) and
# nginx stay up: no injection kills or corrupts the connection.
# timeout: 120
set -euo pipefail
. "$(dirname "$0")/../lib/netns.sh"
. "$(dirname "$0")/../lib/http.sh"
need_cmd curl nginx ethtool ss
netns_setup
attack=$(need_tool tcp_attack)

mkdir -p "$TMPD/www"
mkfile "$TMPD/www/big.bin" $((48 << 20))
nginx_stack "$TMPD/www"
ngx=$NGX_PID

# curl's output: 40 MB as it comes, then (curl blocked on the pipe, the window closing) the rest
# once $TMPD/attacked exists (at most 60 s)
bg_peer "$TMPD/curl.log" bash -c "set -o pipefail
curl -sS --fail --max-time 100 --limit-rate 6M 'http://$STACK_IP:8080/big.bin' |
    { dd bs=1M count=40 iflag=fullblock status=none
      for i in \$(seq 600); do [ -e '$TMPD/attacked' ] && break; sleep 0.1; done
      cat; } >'$TMPD/got.bin'"
cl=$BG_PID
sport=
for i in $(seq 50); do
    sport=$(on_peer ss -tnH state established "( dst $STACK_IP and dport = :8080 )" |
            awk '{ n = split($3, a, ":"); print a[n]; exit }')
    [ -n "$sport" ] && break
    sleep 0.1
done
[ -n "$sport" ] || die "no established curl connection found"
log "curl's connection: $PEER_IP:$sport -> $STACK_IP:8080; injecting 100000 blind segments"
on_peer "$attack" inject "$PEER_IP" "$sport" "$STACK_IP" 8080 --count 100000 --rate 40000 \
    >"$TMPD/attack.out" 2>&1 || { cat "$TMPD/attack.out" >&2; die "tcp_attack inject failed"; }
cat "$TMPD/attack.out" >&2
kill -0 "$cl" 2>/dev/null || { cat "$TMPD/curl.log" >&2; die "curl ended during the attack"; }
touch "$TMPD/attacked"
for i in $(seq 900); do kill -0 "$cl" 2>/dev/null || break; sleep 0.1; done
wait "$cl" || { cat "$TMPD/curl.log" >&2; die "curl failed: the connection did not survive"; }
same_file "$TMPD/www/big.bin" "$TMPD/got.bin"
kill -0 "$ngx" 2>/dev/null || die "nginx on the stack exited"
log "ok: 48 MB byte-exact through 100000 blind injections"
