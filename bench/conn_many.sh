#!/usr/bin/env bash
# Part of make bench (bench/run.sh calls it), or on its own: issue 10's many-connection rows,
# the kernel and tcpsm in the same run on the same veth, alternating.
#   c10k       build/tools/conn_many: an epoll server (on the kernel's address, then on
#              tcpsm's) holding BENCH_C10K_N (10,000) connections from a kernel client in the
#              peer: the time to accept them (each connected, sent 64 bytes and got them back)
#              and then to echo 64 bytes on every one of them; BENCH_C10K_ROUNDS (3) rounds;
#              and the server's memory per idle connection (VmRSS growth from the 100th to the
#              last connection; the placeholder sockets' kernel memory is not in it)
#   sustained  nginx on each side, ab from the peer: BENCH_SUS_ROUNDS (5) rounds of
#              BENCH_SUS_N (40,000) new connections each, kernel then tcpsm per round, with the
#              stack-side nginx's memory (VmRSS), fds and threads after each round
# Prints "key kernel_values tcpsm_values" lines (comma-separated per-round values) for run.sh,
# and the per-round detail on stderr. Every client run is bounded (timeout).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/tests/lib/netns.sh"
. "$root/tests/lib/http.sh"
n10k=${BENCH_C10K_N:-10000}
r10k=${BENCH_C10K_ROUNDS:-3}
nsus=${BENCH_SUS_N:-40000}
rsus=${BENCH_SUS_ROUNDS:-5}
only=${BENCH_MANY_ONLY:-}      # c10k or sustained: that part alone
tool=$TCPSM_BUILD/tools/conn_many
[ -x "$tool" ] || { echo "bench: $tool missing (make tools)" >&2; exit 1; }
set -e
netns_setup kaddr
set +e
# Client source addresses (RFC 2544 range) so that rounds never wait on the client's ports.
srcs=""
for i in 101 102 103 104; do
    ip -n "$NS_P" addr add "198.18.0.$i/$PREFIX" dev "$IF_P" && srcs+="198.18.0.$i,"
done
srcs=${srcs%,}
ulimit -n 65536 2>/dev/null || true
# wait_line FILE REGEX SECS: like wait_log, without dying
wait_line() {
    local i
    for ((i = 0; i < $3 * 10; i++)); do
        grep -Eq -- "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

if [ "$only" != sustained ]; then
    ka="" sa="" ke="" se="" km="" sm=""
    c10k_once() {   # k|s ROUND -> "accept_ms echo_ms per_conn_bytes"
        local side=$1 r=$2 host=$KSTACK_IP port=$((7100 + r * 2))
        [ "$side" = s ] && host=$STACK_IP port=$((7101 + r * 2))
        if [ "$side" = k ]; then
            bg_kstack "$TMPD/srv-$side$r.log" "$tool" server -a "$host" -p $port -n "$n10k"
        else
            bg_stack "$TMPD/srv-$side$r.log" "$tool" server -a 0.0.0.0 -p $port -n "$n10k"
        fi
        local srv=$BG_PID
        wait_line "$TMPD/srv-$side$r.log" '^listening' 10
        # the client holds the connections idle for 3 s: the server reports its memory then
        on_peer timeout 150 "$tool" client -a "$host" -p $port -n "$n10k" -b "$srcs" -t 120 -H 3 \
            >"$TMPD/cli-$side$r.log" 2>&1 &
        local cli=$!
        local reg=""
        if wait_line "$TMPD/srv-$side$r.log" '^mem |^conn_many' 130 && [ "$side" = s ]; then
            # the stack's shared region in use, per connection (tcpsm stat)
            local spid
            spid=$(pgrep -f "conn_many server -a 0.0.0.0 -p $port" | tail -1)
            reg=$(TCPSM_RUN_DIR=${TCPSM_RUN_DIR:-/run/tcpsm} "$TCPSM_BUILD/tcpsm" stat --json --pid "$spid" 2>/dev/null |
                python3 -c 'import json,sys; s=json.load(sys.stdin)[0]; print(s["region"]["used"], s["nsocks"])' 2>/dev/null)
        fi
        wait $cli
        bg_wait "$srv" 30 >/dev/null || bg_stop "$srv" >/dev/null
        local a e m
        a=$(sed -n 's/.*accept_ms=\([0-9.]*\).*/\1/p' "$TMPD/cli-$side$r.log")
        e=$(sed -n 's/.*echo_ms=\([0-9.]*\).*/\1/p' "$TMPD/cli-$side$r.log")
        m=$(sed -n 's/.*per_conn_bytes=\([0-9-]*\).*/\1/p' "$TMPD/srv-$side$r.log")
        log "c10k round $r $side: accept ${a:-failed} ms, echo ${e:-failed} ms, $(grep -o 'rss_kib.*' "$TMPD/srv-$side$r.log" || echo 'no memory line')${reg:+, region in use $((${reg% *} / 1024)) KiB for ${reg#* } sockets}"
        [ -n "$a" ] || sed 's/^/  client: /' "$TMPD/cli-$side$r.log" | tail -3 >&2
        local rpc=-
        [ -n "$reg" ] && rpc=$((${reg% *} / n10k))
        echo "${a:--} ${e:--} ${m:--} $rpc"
    }
    sg=""
    for r in $(seq 1 "$r10k"); do
        read -r a e m g <<<"$(c10k_once k "$r")"
        ka+="$a," ke+="$e," km+="$m,"
        read -r a e m g <<<"$(c10k_once s "$r")"
        sa+="$a," se+="$e," sm+="$m," sg+="$g,"
    done
    echo "c10k_accept ${ka%,} ${sa%,}"
    echo "c10k_echo ${ke%,} ${se%,}"
    echo "c10k_mem ${km%,} ${sm%,}"
    echo "c10k_region - ${sg%,}"
fi

if [ "$only" != c10k ]; then
    mkdir -p "$TMPD/www"
    head -c 1024 /dev/urandom | base64 >"$TMPD/www/index.html"
    chmod 644 "$TMPD/www/index.html"
    nginx_conf "$TMPD/ngx-k" "$KSTACK_IP:8081" "$TMPD/www"
    nginx_conf "$TMPD/ngx-s" "$STACK_IP:8080" "$TMPD/www"
    nginx_start bg_kstack "$TMPD/ngx-k"
    wait_listen "$NS_S" 8081
    nginx_start bg_stack "$TMPD/ngx-s"
    wait_connect "$NS_P" "$STACK_IP" 8080 15 2>/dev/null || true
    spid=$(pgrep -f "ngx-s/nginx.conf" | tail -1)
    ab_rate() {   # HOST PORT TAG
        on_peer timeout 150 ab -q -n "$nsus" -c 20 -s 10 "http://$1:$2/index.html" >"$TMPD/sus-$3.txt" 2>&1
        local rps failed
        rps=$(sed -n 's/^Requests per second: *\([0-9.]*\).*/\1/p' "$TMPD/sus-$3.txt")
        failed=$(sed -n 's/^Failed requests: *\([0-9]*\).*/\1/p' "$TMPD/sus-$3.txt")
        if [ -n "$rps" ] && [ "${failed:-1}" = 0 ]; then echo "$rps"; else echo "-"; fi
    }
    kr="" sr=""
    for r in $(seq 1 "$rsus"); do
        k=$(ab_rate "$KSTACK_IP" 8081 k$r)
        s=$(ab_rate "$STACK_IP" 8080 s$r)
        kr+="$k," sr+="$s,"
        rss=$(awk '/^VmRSS:/ {print $2}' /proc/"$spid"/status 2>/dev/null)
        thr=$(awk '/^Threads:/ {print $2}' /proc/"$spid"/status 2>/dev/null)
        fds=$(ls /proc/"$spid"/fd 2>/dev/null | wc -l)
        log "sustained round $r ($nsus connections): kernel $k/s, tcpsm $s/s; tcpsm nginx: rss ${rss:-?} KiB, fds $fds, threads ${thr:-?}"
        echo "sus_round $r $k $s ${rss:--} $fds ${thr:--}" >&2
    done
    echo "sustained ${kr%,} ${sr%,}"
fi
