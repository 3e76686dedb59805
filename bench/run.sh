#!/usr/bin/env bash
# make bench: the same workloads on the kernel's TCP and on tcpsm, on the same veth in the same
# run, reported as ratios (tcpsm / kernel). Never pass/fail on timing: the numbers are for
# reading. About fifteen minutes in total.
#
# The stack side of the veth holds two addresses: 198.18.0.2 is the kernel's, 198.18.0.10 is
# tcpsm's (the library answers ARP for it with its own MAC). The peer namespace (198.18.0.1)
# is the kernel in both cases.
#
#   throughput  iperf3 client -> kernel iperf3 -s, both directions (-R), BENCH_ROUNDS rounds of
#               BENCH_SECS each (kernel and tcpsm back to back in each round): the medians,
#               the ratio of the medians and the spread (min..max) of the per-round ratios;
#               the CPU seconds (user+sys of the iperf3 client process, which holds tcpsm's
#               threads too; iperf3's own getrusage) per GB moved. First on the veth as
#               created (offloads on: TSO/GSO, checksum offload), then the same rows with the
#               offloads off on both ends (ethtool -K tx off tso off gso off gro off).
#   stack pair  iperf3 between two tcpsm stacks (198.18.0.10 and 198.18.0.11 on the peer's
#               veth end) vs between the two kernels, both ways, veth defaults; CPU of both
#               ends per GB
#               then (one run each, veth defaults) the same over IPv6 (2001:2::2 the kernel's,
#               2001:2::10 tcpsm's)
#   latency     sockperf ping-pong (TCP) client -> kernel sockperf server: p50 and mean (best
#               of two runs); then BENCH_LAT_ROUNDS rounds pinned to CPU 0 (client and
#               server) and unpinned with tcpsm spinning: medians and per-round ratios
#   conn rate   bench/connrate.sh: ab (no keep-alive: one connection per request) from the
#               peer against nginx on the kernel (198.18.0.2) and nginx on tcpsm (198.18.0.10);
#               and ab on each side as the client against nginx in the peer; BENCH_CONN_ROUNDS
#               (3) rounds, alternating
#   many conns  bench/conn_many.sh: an epoll server holding 10,000 connections (accept time,
#               echo time, idle memory per connection), and the sustained rate: nginx serving
#               BENCH_SUS_ROUNDS (5) rounds of BENCH_SUS_N (40,000) connections from ab, with
#               the stack-side nginx's memory, fds and threads per round
#   impairment  bench/impaired.sh: curl download and upload through the impair_bridge
#               (loss 5 %, delay 5 +/- 2 ms, reordering 10 %): seconds per transfer
#
#   BENCH_SECS=4     seconds per throughput/latency run
#   BENCH_ROUNDS=3   rounds of each throughput run
#   BENCH_LAT_ROUNDS=5  rounds of the pinned and spinning ping-pong (issue 10's targets)
#   BENCH_CONNS=5000 requests (= connections) per ab run
#   TCPSM_TEST_MODE=kernel  both columns on the kernel (checks the bench itself)
#   BENCH_ONLY="throughput pair"  only these sections (default: all): throughput (both veth
#                    settings), pair, v6, latency, conn, many, impaired, synflood; the rows of
#                    the others print "-"
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/tests/lib/netns.sh"
. "$root/tests/lib/http.sh"
secs=${BENCH_SECS:-4}
only=${BENCH_ONLY:-}
only=" ${only//,/ } "
want() { [ "$only" = "  " ] || [[ $only == *" $1 "* ]]; }
for sec in $only; do
    case $sec in throughput|pair|v6|latency|conn|many|impaired|synflood) ;;
    *) echo "bench: BENCH_ONLY: unknown section '$sec' (throughput pair v6 latency conn many impaired synflood)" >&2; exit 2 ;;
    esac
done
rounds=${BENCH_ROUNDS:-3}
lat_rounds=${BENCH_LAT_ROUNDS:-5}
conns=${BENCH_CONNS:-5000}
for c in iperf3 sockperf ab nginx python3 ethtool; do
    command -v $c >/dev/null || { echo "bench: $c missing (make deps)" >&2; exit 1; }
done
set -e
# The veth as users have it (offloads on); the offloads-off rows switch them off later.
TCPSM_TEST_OFFLOADS=1 netns_setup kaddr v6
set +e
PAIR_IP=198.18.0.11     # the second stack, on the peer's end of the veth
stack_mode || ip -n "$NS_P" addr add "$PAIR_IP/$PREFIX" dev "$IF_P"
out=$root/build/bench
mkdir -p "$out"
results=$out/results.txt
: >"$results"
# Every measurement, one per line, for bench/plot.sh: workload, variant, round, value, unit.
tsv=$out/results.tsv
printf '# workload\tvariant\tround\tvalue\tunit\n' >"$tsv"
rec() { printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "${4:-failed}" "$5" >>"$tsv"; }
rm -f "$out"/raw-*
at_cleanup 'for f in "$TMPD"/*.json "$TMPD"/*.txt "$TMPD"/*.log; do [ -f "$f" ] && cp "$f" "$out/raw-${f##*/}"; done'

declare -A K S   # kernel and stack results per metric

# run_side k|s CMD... : on the kernel's address or through tcpsm.
run_side() {
    local side=$1; shift
    if [ "$side" = k ]; then on_kstack "$@"; else on_stack "$@"; fi
}
src_of() { if [ "$1" = k ]; then echo "$KSTACK_IP"; else echo "$STACK_IP"; fi; }
src6_of() { if [ "$1" = k ]; then echo "$KSTACK_IP6"; else echo "$STACK_IP6"; fi; }

# iperf_run SIDE DIR TAG [6]: one iperf3 run against the kernel server in the peer namespace
# (over IPv6 with 6). Prints "Gbit/s CPU-s/GB" (empty on failure). CPU: the client's (user+sys,
# all threads).
iperf_run() {
    local side=$1 dir=$2 r=() f=$TMPD/iperf-$1-$2-$3.json dst=$PEER_IP src
    src=$(src_of "$side")
    [ "$dir" = recv ] && r=(-R)
    [ "${4:-}" = 6 ] && dst=$PEER_IP6 src=$(src6_of "$side")
    bg_peer "$TMPD/iperf-srv.log" iperf3 -s -1 -p 5201
    local srv=$BG_PID
    wait_listen "$NS_P" 5201 >/dev/null
    run_side "$side" timeout $((secs + 20)) iperf3 -c "$dst" -B "$src" -p 5201 \
        -t "$secs" --json "${r[@]}" >"$f" 2>/dev/null
    bg_wait $srv 10 >/dev/null || bg_stop $srv >/dev/null
    iperf_parse "$f" local
}

# iperf_parse FILE local|both: "Gbit/s CPU-s/GB" from an iperf3 client's JSON; CPU of the
# client, or of both ends.
iperf_parse() {
    python3 - "$1" "$2" <<'PY' 2>/dev/null
import json, sys
e = json.load(open(sys.argv[1]))["end"]
r = e["sum_received"]
gb = r["bytes"] / 1e9
c = e["cpu_utilization_percent"]
pct = c["host_total"] + (c["remote_total"] if sys.argv[2] == "both" else 0)
cpu = pct / 100 * r["seconds"]
print(f"{r['bits_per_second'] / 1e9:.3f} {cpu / gb:.3f}" if gb > 0 else "")
PY
}

# pair_run k|s DIR TAG: iperf3 between the two kernels, or between two tcpsm stacks (the
# server on a second stack on the peer's veth end). Prints "Gbit/s CPU-s/GB" (both ends).
pair_run() {
    local side=$1 dir=$2 r=() f=$TMPD/pair-$1-$2-$3.json try rc
    [ "$dir" = recv ] && r=(-R)
    if [ "$side" = k ]; then
        bg_peer "$TMPD/pair-srv.log" iperf3 -s -1 -p 5202
        local srv=$BG_PID
        wait_listen "$NS_P" 5202 >/dev/null
        on_kstack timeout $((secs + 20)) iperf3 -c "$PEER_IP" -B "$KSTACK_IP" -p 5202 -t "$secs" \
            --json "${r[@]}" >"$f" 2>/dev/null
    else
        if stack_mode; then
            bg_ns "$NS_P" "$TMPD/pair-srv.log" "$TCPSM_BUILD/tcpsm" --if "$IF_P" \
                --addr "$PAIR_IP/$PREFIX" -- iperf3 -s -4 -1 -p 5202
        else
            bg_peer "$TMPD/pair-srv.log" iperf3 -s -1 -p 5202 -B "$PAIR_IP"
        fi
        local srv=$BG_PID
        # ss cannot see a stack's listener: retry while refused
        for try in $(seq 1 25); do
            rc=0
            on_stack timeout $((secs + 20)) iperf3 -c "$PAIR_IP" -p 5202 -t "$secs" --json \
                "${r[@]}" >"$f" 2>/dev/null || rc=$?
            [ $rc = 0 ] || grep -q refused "$f" || break
            [ $rc = 0 ] && break
            sleep 0.2
        done
    fi
    bg_wait $srv 10 >/dev/null || bg_stop $srv >/dev/null
    iperf_parse "$f" both
}

# Per-round values: V[metric|k] and V[metric|s] are space-separated lists, one per round.
declare -A V
addv() { V[$1]="${V[$1]:-} $2"; }
median() {
    printf '%s\n' $1 | awk '$1 ~ /^[0-9.]+$/ { a[++n] = $1 } END {
        if (!n) exit
        for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
        if (n % 2) printf "%.2f", a[(n + 1) / 2]; else printf "%.2f", (a[n / 2] + a[n / 2 + 1]) / 2 }'
}
# ratio of the medians, then [min..max] of the per-round ratios (rounds with both values)
ratios() {
    local k=${V[$1|k]:-} s=${V[$1|s]:-}
    paste -d' ' <(printf '%s\n' $k) <(printf '%s\n' $s) | awk -v mk="$(median "$k")" -v ms="$(median "$s")" '
        $1 > 0 && $2 != "" && $2 != "-" { r = $2 / $1; if (!n++ || r < lo) lo = r; if (n == 1 || r > hi) hi = r }
        END {
            if (mk > 0 && ms != "") printf "%.2f", ms / mk; else printf "-"
            if (n) printf " [%.2f-%.2f]", lo, hi }'
}

# throughput VARIANT: BENCH_ROUNDS rounds of send and receive, kernel then tcpsm.
throughput() {
    local v=$1 i dir side res
    for i in $(seq 1 "$rounds"); do
        for dir in send recv; do
            for side in k s; do
                res=$(iperf_run $side $dir "$v$i")
                read -r g c <<<"${res:-- -}"
                addv "$v-$dir|$side" "$g"
                addv "$v-$dir-cpu|$side" "$c"
                local w="iperf3 client $dir ($v)"
                rec "$w" "$([ $side = k ] && echo kernel || echo tcpsm)" "$i" "$([ "$g" = - ] || echo "$g")" Gbit/s
                rec "$w, CPU" "$([ $side = k ] && echo kernel || echo tcpsm)" "$i" "$([ "$c" = - ] || echo "$c")" "CPU s/GB"
            done
        done
    done
}

if want throughput; then
log "bench: throughput on the veth as created (iperf3, $rounds rounds x ${secs}s)"
throughput defaults
fi
if want pair; then
log "bench: tcpsm <-> tcpsm vs kernel <-> kernel (iperf3, $rounds rounds x ${secs}s)"
for i in $(seq 1 "$rounds"); do
    for dir in send recv; do
        for side in k s; do
            res=$(pair_run $side $dir "$i")
            read -r g c <<<"${res:-- -}"
            addv "pair-$dir|$side" "$g"
            addv "pair-$dir-cpu|$side" "$c"
            rec "iperf3 stack pair $dir" "$([ $side = k ] && echo 'kernel<->kernel' || echo 'tcpsm<->tcpsm')" "$i" "$([ "$g" = - ] || echo "$g")" Gbit/s
            rec "iperf3 stack pair $dir, CPU" "$([ $side = k ] && echo 'kernel<->kernel' || echo 'tcpsm<->tcpsm')" "$i" "$([ "$c" = - ] || echo "$c")" "CPU s/GB"
        done
    done
done
fi

sockperf_run() {
    local side=$1 f=$TMPD/sockperf-$1.txt
    run_side "$side" timeout $((secs + 20)) sockperf pp --tcp -i "$PEER_IP" -p 11111 -t "$secs" \
        >"$f" 2>&1
    local p50 avg
    p50=$(sed -n 's/.*percentile 50.000 = *\([0-9.]*\).*/\1/p' "$f" | head -1)
    avg=$(sed -n 's/.*Summary: Latency is \([0-9.]*\) usec.*/\1/p' "$f" | head -1)
    echo "${p50:-} ${avg:-}"
}


offloads() {  # on|off, both veth ends (veth's defaults: tx, tso, gso on; gro off)
    on_kstack ethtool -K "$IF_S" tx "$1" tso "$1" gso "$1" gro off >/dev/null 2>&1 &&
        on_peer ethtool -K "$IF_P" tx "$1" tso "$1" gso "$1" gro off >/dev/null 2>&1
}
if want throughput; then
log "bench: throughput with the offloads off on both veth ends ($rounds rounds x ${secs}s)"
offloads off || log "bench: ethtool -K failed: the offloads-off rows are not"
throughput offloads-off
offloads on || log "bench: ethtool -K failed: the offloads stay off"
fi
if want v6; then
log "bench: throughput over IPv6 (iperf3 -6, ${secs}s per run)"
for dir in send recv; do
    K[iperf6_$dir]=$(iperf_run k $dir v6 6 | cut -d' ' -f1)
    S[iperf6_$dir]=$(iperf_run s $dir v6 6 | cut -d' ' -f1)
done
fi

if want latency; then
log "bench: latency (sockperf ping-pong, 2 x ${secs}s per side)"
bg_peer "$TMPD/sockperf-srv.log" sockperf sr --tcp -i "$PEER_IP" -p 11111
wait_listen "$NS_P" 11111
# Twice each, alternating, keeping the better run: the first run on a busy machine is noisy.
min2() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "") print b; else if (b == "" || a + 0 <= b + 0) print a; else print b }'; }
for i in 1 2; do
    read -r kp ka <<<"$(sockperf_run k)"
    read -r sp sa <<<"$(sockperf_run s)"
    rec "TCP ping-pong latency p50" kernel $i "$kp" us; rec "TCP ping-pong latency p50" tcpsm $i "$sp" us
    K[lat_p50]=$(min2 "${K[lat_p50]:-}" "$kp") K[lat_avg]=$(min2 "${K[lat_avg]:-}" "$ka")
    S[lat_p50]=$(min2 "${S[lat_p50]:-}" "$sp") S[lat_avg]=$(min2 "${S[lat_avg]:-}" "$sa")
done

# Issue 10's latency targets: client and server pinned to one core (the wake-up path without a
# cross-core hand-off), and unpinned with tcpsm busy-polling (TCPSM_SPIN_US=50) against the
# kernel unpinned. lat_rounds rounds, kernel then tcpsm in each: medians and the spread of the
# per-round ratios (on a shared VM a single round moves by up to 1.6x: one is no reading).
log "bench: latency pinned to CPU 0, and unpinned with spinning ($lat_rounds rounds x ${secs}s per side)"
bg_peer "$TMPD/sockperf-pin.log" taskset -c 0 sockperf sr --tcp -i "$PEER_IP" -p 11112
wait_listen "$NS_P" 11112
sockperf_p50() {   # side port cpus [VAR=value...]
    local side=$1 port=$2 cpus=$3; shift 3
    local f=$TMPD/sockperf-$side-$port.txt
    run_side "$side" env "$@" timeout $((secs + 20)) taskset -c "$cpus" \
        sockperf pp --tcp -i "$PEER_IP" -p "$port" -t "$secs" >"$f" 2>&1
    sed -n 's/.*percentile 50.000 = *\([0-9.]*\).*/\1/p' "$f" | head -1
}
allcpus=0-$(($(nproc) - 1))
for i in $(seq 1 "$lat_rounds"); do
    kp=$(sockperf_p50 k 11112 0) sp=$(sockperf_p50 s 11112 0)
    rec "TCP ping-pong p50, pinned to one core" kernel $i "$kp" us
    rec "TCP ping-pong p50, pinned to one core" tcpsm $i "$sp" us
    addv "lat_pin|k" "${kp:--}"; addv "lat_pin|s" "${sp:--}"
    kp=$(sockperf_p50 k 11111 "$allcpus") sp=$(sockperf_p50 s 11111 "$allcpus" TCPSM_SPIN_US=50)
    rec "TCP ping-pong p50, unpinned, tcpsm spinning" kernel $i "$kp" us
    rec "TCP ping-pong p50, unpinned, tcpsm spinning" tcpsm $i "$sp" us
    addv "lat_spin|k" "${kp:--}"; addv "lat_spin|s" "${sp:--}"
done
fi

# "key kernel,values tcpsm,values" lines from the sub-benches: per-round values
many_line() {
    local key=$1 kv=$2 sv=$3 v
    for v in ${kv//,/ }; do [ "$v" = - ] || addv "$key|k" "$v"; done
    for v in ${sv//,/ }; do [ "$v" = - ] || addv "$key|s" "$v"; done
}
if want conn; then
log "bench: connection rate (bench/connrate.sh: ab -n $conns -c 20, no keep-alive, ${BENCH_CONN_ROUNDS:-3} rounds)"
while read -r key kv sv; do
    case $key in conn|conn_cli) many_line "$key" "$kv" "$sv" ;; esac
done < <(TCPSM_NS_TAG= bash "$root/bench/connrate.sh" 2>"$out/raw-connrate.log")
fi
if want many; then
log "bench: 10,000 connections and sustained connection rate (bench/conn_many.sh)"
while read -r key kv sv; do
    case $key in c10k_*|sustained) many_line "$key" "$kv" "$sv" ;; esac
done < <(TCPSM_NS_TAG= bash "$root/bench/conn_many.sh" 2>"$out/raw-conn_many.log")
fi

if want impaired; then
log "bench: bulk transfers through impairment (bench/impaired.sh)"
while read -r key kv sv; do
    case $key in imp_*) ;; *) continue ;; esac
    [ "$kv" = - ] && kv=""
    [ "$sv" = - ] && sv=""
    K[$key]=$kv S[$key]=$sv
done < <(TCPSM_NS_TAG= bash "$root/bench/impaired.sh" 2>"$out/raw-impaired.log")
fi

if want synflood; then
log "bench: spoofed SYN flood with requests (bench/synflood.sh)"
while read -r key kv sv; do
    case $key in syn_*) ;; *) continue ;; esac
    [ "$kv" = - ] && kv=""
    [ "$sv" = - ] && sv=""
    K[$key]=$kv S[$key]=$sv
done < <(TCPSM_NS_TAG= bash "$root/bench/synflood.sh" 2>"$out/raw-synflood.log")
fi

ratio() {
    [ -n "$1" ] && [ -n "$2" ] || { echo "-"; return; }
    awk -v k="$1" -v s="$2" 'BEGIN { if (k > 0) printf "%.2f", s / k; else print "-" }'
}
miss=failed
[ "$only" = "  " ] || miss=-    # BENCH_ONLY: the sections left out
row() {   # label key note
    printf '%-44s %12s %12s %8s  %s\n' "$1" "${K[$2]:-$miss}" "${S[$2]:-$miss}" \
        "$(ratio "${K[$2]:-}" "${S[$2]:-}")" "$3"
}
trow() {  # label metric: medians and ratio [spread] for veth defaults, then offloads off
    local a=defaults-$2 b=offloads-off-$2
    printf '%-30s %7s %7s %-17s %7s %7s %-17s\n' "$1" "$(median "${V[$a|k]:-}")" \
        "$(median "${V[$a|s]:-}")" "$(ratios "$a")" "$(median "${V[$b|k]:-}")" \
        "$(median "${V[$b|s]:-}")" "$(ratios "$b")"
}
prow() {  # label metric: the stack pair
    printf '%-30s %7s %7s %-17s\n' "$1" "$(median "${V[$2|k]:-}")" "$(median "${V[$2|s]:-}")" \
        "$(ratios "$2")"
}
mrow() {  # label metric note: medians of the rounds and the ratio [spread]
    printf '%-44s %9s %9s %-17s %s\n' "$1" "$(median "${V[$2|k]:-}")" "$(median "${V[$2|s]:-}")" \
        "$(ratios "$2")" "$3"
}
{
    echo "tcpsm bench ($(date -u +%Y-%m-%dT%H:%MZ), mode $TCPSM_TEST_MODE): same veth, same run"
    echo
    echo "throughput, iperf3, $rounds rounds x ${secs}s: medians, ratio of the medians [min-max of the per-round ratios]"
    printf '%-30s %-33s %-33s\n' "" "veth defaults (offloads on)" "offloads off (ethtool -K ... off)"
    printf '%-30s %7s %7s %-17s %7s %7s %-17s\n' "workload" kernel tcpsm ratio kernel tcpsm ratio
    trow "client send, Gbit/s" send
    trow "client receive (-R), Gbit/s" recv
    trow "send, CPU s/GB (lower better)" send-cpu
    trow "receive, CPU s/GB" recv-cpu
    echo
    echo "two stacks over the veth (defaults): kernel<->kernel vs tcpsm<->tcpsm; CPU of both ends"
    printf '%-30s %7s %7s %-17s\n' "workload" kernel tcpsm ratio
    prow "pair send, Gbit/s" pair-send
    prow "pair receive (-R), Gbit/s" pair-recv
    prow "pair send, CPU s/GB" pair-send-cpu
    prow "pair receive, CPU s/GB" pair-recv-cpu
    echo
    printf '%-44s %12s %12s %8s\n' "workload" "kernel" "tcpsm" "ratio"
    row "iperf3 -6 client send, Gbit/s" iperf6_send "(higher is better)"
    row "iperf3 -6 client receive (-R), Gbit/s" iperf6_recv "(higher is better)"
    row "TCP ping-pong latency p50, us" lat_p50 "(lower is better)"
    row "TCP ping-pong latency mean, us" lat_avg "(lower is better)"
    row "${BENCH_IMPAIRED_MB:-64} MiB download, loss 5% reorder 10%, s" imp_down "(lower is better)"
    row "${BENCH_IMPAIRED_MB:-64} MiB upload, loss 5% reorder 10%, s" imp_up "(lower is better)"
    row "SYN flood: SYNs/s the attack tool sent" syn_sent "(the tool's rate; not a server figure)"
    row "SYN flood: SYNs/s the listener took" syn_proc "(tcpsm: target >= 100000; kernel: not measured)"
    row "SYN flood: requests served during it, %" syn_served "(target >= 99)"
    row "SYN cookies, core only (syn_bench), SYNs/s" syn_core "(one core, no link)"
    echo
    echo "latency targets, $lat_rounds rounds: medians, ratio of the medians [min-max of the per-round ratios]"
    printf '%-44s %9s %9s %-17s\n' "workload" kernel tcpsm ratio
    mrow "TCP ping-pong p50, both pinned to CPU 0, us" lat_pin "(lower is better; target <= 1.2)"
    mrow "TCP ping-pong p50, unpinned, tcpsm spin 50us" lat_spin "(lower is better; target <= 0.8)"
    echo
    echo "connections: medians of the rounds, ratio of the medians [min-max of the per-round ratios]"
    printf '%-44s %9s %9s %-17s\n' "workload" kernel tcpsm ratio
    mrow "nginx connection rate (ab -c 20), req/s" conn "(higher is better; target >= 1.0)"
    mrow "connection rate as a client (ab), req/s" conn_cli "(higher is better; target >= 1.0)"
    mrow "10,000 connections: accept, ms" c10k_accept "(lower is better; target <= 1.5)"
    mrow "10,000 connections: echo on each, ms" c10k_echo "(lower is better; target <= 1.5)"
    mrow "  idle memory per connection, bytes (RSS)" c10k_mem "(tcpsm: target <= 4096)"
    mrow "  stack region in use per connection, bytes" c10k_region ""
    mrow "sustained: ${BENCH_SUS_ROUNDS:-5} x ${BENCH_SUS_N:-40000} conns, req/s" sustained "(every round >= 0.9; per round: raw-conn_many.log)"
    echo "ratio = tcpsm / kernel; 'failed' or '-' = the run produced no result (raw outputs: $out/raw-*)."
    echo "CPU s/GB: user+sys seconds of the iperf3 process(es) per GB received (the kernel's softirq"
    echo "work on the other CPU is not in it; tcpsm's threads are). A shared machine makes all of it noisy."
} | tee "$results"
for v in kernel:K tcpsm:S; do
    declare -n A=${v#*:}
    if want v6; then
        rec "iperf3 -6 client send" "${v%:*}" 1 "${A[iperf6_send]:-}" Gbit/s
        rec "iperf3 -6 client receive" "${v%:*}" 1 "${A[iperf6_recv]:-}" Gbit/s
    fi
    if want impaired; then
        rec "download, loss 5% reorder 10%" "${v%:*}" 1 "${A[imp_down]:-}" s
        rec "upload, loss 5% reorder 10%" "${v%:*}" 1 "${A[imp_up]:-}" s
    fi
    unset -n A
done
for m in "conn:nginx connection rate (ab):req/s" "conn_cli:connection rate as a client (ab):req/s" \
    "c10k_accept:10,000 connections, accept:ms" "c10k_echo:10,000 connections, echo:ms" \
    "sustained:sustained connection rate (ab, nginx):req/s"; do
    IFS=: read -r key name unit <<<"$m"
    for v in kernel:k tcpsm:s; do
        i=0
        for x in ${V[$key|${v#*:}]:-}; do i=$((i + 1)); rec "$name" "${v%:*}" $i "$x" "$unit"; done
    done
done
echo "results: $results"
bash "$root/bench/plot.sh" "$tsv" "$out/report.svg" || echo "bench: no report picture (gnuplot missing? make deps)"
exit 0
