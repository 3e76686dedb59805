#!/usr/bin/env bash
# redis-server through the stack (bound to the stack's address) answers kernel clients in
# the peer: `redis-benchmark -q -n 20000` over a fixed set of commands must report every
# command, and a 1 MiB value SET then GET must come back byte for byte (length and sha256).
# timeout: 120
set -euo pipefail
. "$(dirname "$0")/../lib/netns.sh"
need_cmd redis-server redis-cli redis-benchmark ethtool
netns_setup

cd "$TMPD"
bg_stack "$TMPD/redis.log" redis-server --port 6379 --bind "$STACK_IP" --save '' --appendonly no \
    --protected-mode no --daemonize no --dir "$TMPD"
redis=$BG_PID
wait_connect "$NS_P" "$STACK_IP" 6379 20

tests=ping_inline,ping_mbulk,set,get,incr,lpush,rpush,lpop,rpop,sadd,hset,mset
log "redis-benchmark -q -n 20000 -t $tests"
on_peer timeout 90 redis-benchmark -h "$STACK_IP" -p 6379 -q -n 20000 -t "$tests" \
    >"$TMPD/bench.out" 2>&1 || { cat "$TMPD/bench.out" >&2; die "redis-benchmark failed"; }
tr '\r' '\n' <"$TMPD/bench.out" | grep 'requests per second' | tee "$TMPD/bench.lines" >&2
n=$(grep -c 'requests per second' "$TMPD/bench.lines" || true)
[ "$n" -eq 12 ] || die "redis-benchmark reported $n of 12 commands"
grep -qi 'error' "$TMPD/bench.out" && die "redis-benchmark reported errors"

# 1 MiB value: hex text (no newline), so redis-cli passes it unchanged.
head -c $((512 << 10)) /dev/urandom | od -An -v -tx1 | tr -d ' \n' >"$TMPD/value"
[ "$(fsize "$TMPD/value")" -eq $((1 << 20)) ] || die "value generation"
r=$(on_peer redis-cli -h "$STACK_IP" -x SET big <"$TMPD/value")
[ "$r" = OK ] || die "SET big: $r"
r=$(on_peer redis-cli -h "$STACK_IP" STRLEN big)
[ "$r" = 1048576 ] || die "STRLEN big: $r"
# redis-cli --raw adds one newline after the value.
on_peer redis-cli -h "$STACK_IP" --raw GET big >"$TMPD/got.raw"
[ "$(fsize "$TMPD/got.raw")" -eq $(((1 << 20) + 1)) ] || die "GET big: $(fsize "$TMPD/got.raw") bytes"
head -c $((1 << 20)) "$TMPD/got.raw" >"$TMPD/got"
same_file "$TMPD/value" "$TMPD/got"
r=$(on_peer redis-cli -h "$STACK_IP" DBSIZE)
log "DBSIZE $r"
kill -0 "$redis" 2>/dev/null || die "redis-server on the stack exited"
