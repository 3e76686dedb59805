#!/usr/bin/env bash
# Part of make bench (bench/run.sh calls it), or on its own: connection rate, one new
# connection per request (ab, no keep-alive), kernel and tcpsm in the same run on the same
# veth, alternating, BENCH_CONN_ROUNDS rounds; prints "key kernel_values tcpsm_values" lines
# (comma-separated per-round req/s) that run.sh turns into medians and ratios.
#   conn      ab in the peer -> nginx on the kernel's address / on tcpsm's
#   conn_cli  ab on the kernel / on tcpsm -> nginx in the peer
#   BENCH_CONNS=5000 requests per ab run, BENCH_CONN_ROUNDS=3
#   BENCH_PERF=FILE: perf record the stack-side nginx during its last server round
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/tests/lib/netns.sh"
. "$root/tests/lib/http.sh"
conns=${BENCH_CONNS:-5000}
rounds=${BENCH_CONN_ROUNDS:-3}
set -e
netns_setup kaddr
set +e
mkdir -p "$TMPD/www"
head -c 1024 /dev/urandom | base64 >"$TMPD/www/index.html"
chmod 644 "$TMPD/www/index.html"

ab_out() {  # FILE: req/s if no request failed, else nothing
    local rps failed
    rps=$(sed -n 's/^Requests per second: *\([0-9.]*\).*/\1/p' "$1")
    failed=$(sed -n 's/^Failed requests: *\([0-9]*\).*/\1/p' "$1")
    if [ -n "$rps" ] && [ "${failed:-1}" = 0 ]; then echo "$rps"; else echo "-"; fi
}
ab_srv() {  # HOST PORT TAG
    on_peer timeout 60 ab -q -n "$conns" -c 20 -s 10 "http://$1:$2/index.html" >"$TMPD/ab-$3.txt" 2>&1
    ab_out "$TMPD/ab-$3.txt"
}
ab_cli() {  # k|s TAG
    local -a run=(on_kstack)
    [ "$1" = s ] && run=(on_stack)
    "${run[@]}" timeout 60 ab -q -n "$conns" -c 20 -s 10 "http://$PEER_IP:8082/index.html" \
        >"$TMPD/abc-$2.txt" 2>&1
    ab_out "$TMPD/abc-$2.txt"
}

nginx_conf "$TMPD/ngx-k" "$KSTACK_IP:8081" "$TMPD/www"
nginx_conf "$TMPD/ngx-s" "$STACK_IP:8080" "$TMPD/www"
nginx_start bg_kstack "$TMPD/ngx-k"
wait_listen "$NS_S" 8081
nginx_start bg_stack "$TMPD/ngx-s"
ngx_s=$BG_PID
wait_connect "$NS_P" "$STACK_IP" 8080 15 2>/dev/null || true
ks="" ss=""
for i in $(seq 1 "$rounds"); do
    ks+="$(ab_srv "$KSTACK_IP" 8081 k$i),"
    if [ -n "${BENCH_PERF:-}" ] && [ "$i" = "$rounds" ]; then
        npid=$(pgrep -f "ngx-s/nginx.conf" | tail -1)
        perf record -g -o "$BENCH_PERF" -p "$npid" 2>/dev/null &
        perfpid=$!
        sleep 0.3
    fi
    ss+="$(ab_srv "$STACK_IP" 8080 s$i),"
    [ -n "${perfpid:-}" ] && { kill -INT "$perfpid"; wait "$perfpid"; perfpid=; }
done
echo "conn ${ks%,} ${ss%,}"
# Two programs started separately cannot share one stack: the stack-side nginx leaves first.
bg_stop "$ngx_s" || true
nginx_conf "$TMPD/ngx-p" "$PEER_IP:8082" "$TMPD/www"
nginx_start bg_peer "$TMPD/ngx-p"
wait_listen "$NS_P" 8082
kc="" sc=""
for i in $(seq 1 "$rounds"); do
    kc+="$(ab_cli k k$i),"
    sc+="$(ab_cli s s$i),"
done
echo "conn_cli ${kc%,} ${sc%,}"
