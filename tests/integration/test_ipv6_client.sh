#!/usr/bin/env bash
# IPv6 clients on the stack (2001:2::10) against a kernel nginx in the peer (2001:2::1, listen
# [::]:8080): curl -6 gets 1 MB and 50 MB files, wget a 10 MB one (sizes and sha256 compared).
# The trace shows the connection with its IPv6 endpoints; the stack's IPv4 address is there
# too and an IPv4 download in the same process works; the kernel peer resolved the stack by
# neighbour discovery (its neighbour table holds the stack's MAC for 2001:2::10).
# timeout: 120
set -euo pipefail
. "$(dirname "$0")/../lib/netns.sh"
. "$(dirname "$0")/../lib/http.sh"
need_cmd curl wget nginx ethtool
netns_setup v6

mkdir -p "$TMPD/www"
mkfile "$TMPD/www/1m.bin" $((1 << 20))
mkfile "$TMPD/www/10m.bin" $((10 << 20))
mkfile "$TMPD/www/50m.bin" $((50 << 20))
nginx_conf "$TMPD/ngx" "[::]:8080 ipv6only=off" "$TMPD/www"
nginx_start bg_peer "$TMPD/ngx"
wait_listen "$NS_P" 8080

STACK_OPTS=(--trace "$TMPD/trace.log")
: >"$TMPD/trace.log"
for f in 1m.bin 50m.bin; do
    log "curl -6 http://[$PEER_IP6]:8080/$f"
    on_stack curl -6 -g -sS --fail --max-time 60 -o "$TMPD/got-$f" \
        -w 'http=%{http_code} bytes=%{size_download} remote=%{remote_ip}\n' "http://[$PEER_IP6]:8080/$f"
    same_file "$TMPD/www/$f" "$TMPD/got-$f"
done
if stack_mode; then
    grep -q "\[$STACK_IP6\]:[0-9]* > \[$PEER_IP6\]:8080 .*SYN-SENT -> ESTABLISHED" "$TMPD/trace.log" ||
        { head -5 "$TMPD/trace.log" >&2; die "no IPv6 handshake in the trace"; }
    grep -q "\[$STACK_IP6\]:[0-9]* > \[$PEER_IP6\]:8080 .*TIME-WAIT" "$TMPD/trace.log" ||
        die "no IPv6 close in the trace"
    log "ok: the trace shows the IPv6 connections"
fi
STACK_OPTS=()

log "wget http://[$PEER_IP6]:8080/10m.bin"
on_stack wget -q -T 60 -O "$TMPD/wget-10m.bin" "http://[$PEER_IP6]:8080/10m.bin"
same_file "$TMPD/www/10m.bin" "$TMPD/wget-10m.bin"

log "one process, both families: curl IPv4 then IPv6"
on_stack curl -sS --fail --max-time 60 -o "$TMPD/both4.bin" "http://$PEER_IP:8080/1m.bin" \
    -o "$TMPD/both6.bin" -g "http://[$PEER_IP6]:8080/1m.bin"
same_file "$TMPD/www/1m.bin" "$TMPD/both4.bin"
same_file "$TMPD/www/1m.bin" "$TMPD/both6.bin"

# The peer learnt the stack's MAC for 2001:2::10 from the stack's neighbour advertisement
# (the default MAC from 198.18.0.10; in kernel mode the veth's own).
mac='[0-9a-f:]*'
stack_mode && mac=02:54:c6:12:00:0a
on_peer ip -6 neigh show dev "$IF_P" | grep -q "^$STACK_IP6 lladdr $mac" ||
    { on_peer ip -6 neigh show dev "$IF_P" >&2; die "no neighbour entry for $STACK_IP6 in the peer"; }
log "ok: the peer resolved $STACK_IP6 by neighbour discovery"
