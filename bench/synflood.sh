#!/usr/bin/env bash
# Part of make bench (bench/run.sh calls it): a spoofed-source SYN flood (build/tools/synflood
# in the peer, BENCH_SYN_COUNT SYNs asked at BENCH_SYN_RATE/s from 198.18.128.0/17) at an nginx
# on the kernel (198.18.0.2:8081) and then at one on the stack (198.18.0.10:8080), same run,
# while curl in the peer makes requests. Prints "key kernel_value tcpsm_value" lines:
#   syn_sent    SYNs/s the attack tool achieved (on a shared 2-core VM the tool is the limit)
#   syn_proc    SYNs/s the server took: the stack's tcp_listen_syns over the flood's time (the
#               kernel's TcpExtListenDrops-free count is not exposed per listener: '-')
#   syn_served  % of the requests made during the flood that were served byte-exact
#   syn_core    SYNs/s the stack's core handles on one core with no link (build/tools/syn_bench)
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/tests/lib/netns.sh"
. "$root/tests/lib/http.sh"
count=${BENCH_SYN_COUNT:-600000}
rate=${BENCH_SYN_RATE:-300000}
set -e
netns_setup kaddr
flood=$(need_tool synflood)
export TCPSM_RUN_DIR=$TMPD/run
mkdir -p "$TMPD/www"
head -c 3000 /dev/urandom | base64 -w 76 >"$TMPD/www/index.html"
chmod 644 "$TMPD/www/index.html"
nginx_conf "$TMPD/ngk" 8081 "$TMPD/www"
nginx_conf "$TMPD/ngs" 8080 "$TMPD/www"
nginx_start bg_kstack "$TMPD/ngk"
nginx_start bg_stack "$TMPD/ngs"
ngs=$BG_PID
wait_connect "$NS_P" "$KSTACK_IP" 8081 20
wait_connect "$NS_P" "$STACK_IP" 8080 20
set +e

syns() { "$TCPSM_BUILD/tcpsm" stat --json --pid "$ngs" 2>/dev/null |
    python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["counters"]["tcp_listen_syns"])' 2>/dev/null; }

# flood ADDR PORT side → "sent_rate proc_rate served_pct"
flood_run() {
    local addr=$1 port=$2 side=$3 s0 s1 n=0 ok=0
    [ "$side" = s ] && s0=$(syns)
    bg_peer "$TMPD/flood-$side.out" "$flood" "$addr" "$port" --count "$count" --rate "$rate" --max-seconds 30
    local fl=$BG_PID
    sleep 0.3
    while kill -0 "$fl" 2>/dev/null && [ $n -lt 200 ]; do
        n=$((n + 1))
        if on_peer curl -sS --fail --max-time 10 -o "$TMPD/got" "http://$addr:$port/index.html" 2>/dev/null &&
            cmp -s "$TMPD/got" "$TMPD/www/index.html"; then ok=$((ok + 1)); fi
    done
    bg_wait "$fl" 40
    local line secs sent
    line=$(grep '^synflood:' "$TMPD/flood-$side.out")
    log "$side: $line; requests $ok of $n"
    sent=$(sed -n 's/.*rate=\([0-9]*\).*/\1/p' <<<"$line")
    secs=$(sed -n 's/.*seconds=\([0-9.]*\).*/\1/p' <<<"$line")
    local proc=-
    if [ "$side" = s ] && [ -n "$s0" ]; then
        s1=$(syns)
        [ -n "$s1" ] && proc=$(awk -v a="$s0" -v b="$s1" -v t="$secs" 'BEGIN { printf "%.0f", (b - a) / t }')
    fi
    local pct=-
    [ "$n" -gt 0 ] && pct=$(awk -v a="$ok" -v b="$n" 'BEGIN { printf "%.1f", 100 * a / b }')
    echo "${sent:--} $proc $pct"
}
read -r ks kp kv < <(flood_run "$KSTACK_IP" 8081 k)
read -r ss sp sv < <(flood_run "$STACK_IP" 8080 s)
core=$("$TCPSM_BUILD/tools/syn_bench" --count 2000000 | sed -n 's/.*rate=\([0-9]*\).*/\1/p')
echo "syn_sent $ks $ss"
echo "syn_proc $kp $sp"
echo "syn_served $kv $sv"
echo "syn_core - ${core:--}"
