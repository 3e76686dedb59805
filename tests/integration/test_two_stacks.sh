#!/usr/bin/env bash
# Two processes on one link, each with its own stack, address and MAC (198.18.0.10 and
# 198.18.0.11 on the same veth): both download 32 MB from kernel nginx at the same time.
# Each stack must take only its own frames (and answer ARP only for its own address): both
# files arrive intact, and the peer's neighbour table holds two different MACs.
# timeout: 90
set -euo pipefail
. "$(dirname "$0")/../lib/netns.sh"
. "$(dirname "$0")/../lib/http.sh"
need_cmd curl nginx ethtool
netns_setup
SECOND_IP=198.18.0.11
stack_mode || ip -n "$NS_S" addr add "$SECOND_IP/$PREFIX" dev "$IF_S"

mkdir -p "$TMPD/www"
mkfile "$TMPD/www/a.bin" $((32 << 20))
mkfile "$TMPD/www/b.bin" $((32 << 20))
nginx_peer "$TMPD/www"

bg_stack "$TMPD/a.log" curl -sS --fail --max-time 60 -o "$TMPD/got-a.bin" "http://$PEER_IP:8080/a.bin"
a=$BG_PID
if stack_mode; then
    bg_ns "$NS_S" "$TMPD/b.log" "$TCPSM_ROOT/build/tcpsm" --if "$IF_S" --addr "$SECOND_IP/$PREFIX" -- \
        curl -sS --fail --max-time 60 -o "$TMPD/got-b.bin" "http://$PEER_IP:8080/b.bin"
else
    bg_ns "$NS_S" "$TMPD/b.log" curl -sS --fail --max-time 60 --interface "$SECOND_IP" \
        -o "$TMPD/got-b.bin" "http://$PEER_IP:8080/b.bin"
fi
b=$BG_PID
ra=0 rb=0
bg_wait $a 70 || ra=$?
bg_wait $b 70 || rb=$?
[ $ra -eq 0 ] || die "curl as $STACK_IP: exit $ra $(cat "$TMPD/a.log")"
[ $rb -eq 0 ] || die "curl as $SECOND_IP: exit $rb $(cat "$TMPD/b.log")"
same_file "$TMPD/www/a.bin" "$TMPD/got-a.bin"
same_file "$TMPD/www/b.bin" "$TMPD/got-b.bin"
on_peer ip neigh show dev "$IF_P" >&2
ma=$(on_peer ip neigh show "$STACK_IP" dev "$IF_P" | awk '{ print $3 }')
mb=$(on_peer ip neigh show "$SECOND_IP" dev "$IF_P" | awk '{ print $3 }')
if stack_mode; then
    [ -n "$ma" ] && [ -n "$mb" ] && [ "$ma" != "$mb" ] ||
        die "expected two different MACs in the peer's neighbour table, got '$ma' and '$mb'"
fi
