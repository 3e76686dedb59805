#!/usr/bin/env bash
# Builds the fuzzers with clang (libFuzzer + sanitizers) and runs each for a
# bounded time. FUZZ_SECONDS (default 60) is the budget per target;
# FUZZ_TARGET picks one: input (raw frames into the stack: the parsers), tcp
# (one connection driven into a state, then segments relative to it: the
# state machine), or all (the default, one after the other).
#   FUZZ_SAN=asan (default: ASan + UBSan) or ubsan (UBSan only, -O2, every
#     check a trap instruction: more than twice as fast, for long runs of
#     fuzz_tcp, whose corpus is then replayed under ASan + UBSan with
#     FUZZ_REPLAY=1; a finding is re-run under ASan + UBSan for its report)
#   FUZZ_JOBS=N  fuzz_tcp in N processes sharing the corpus (default 1); the
#     executions reported are the sum of their counts
#   FUZZ_RUNS=N  each process also stops after N executions (libFuzzer's
#     -runs): a long run then ends at a count, not at a time (not to be
#     paused: libFuzzer's -timeout=10 alarm counts wall time and reports a
#     unit stopped for longer as a timeout)
#   FUZZ_REPLAY=1  instead of fuzzing, run fuzz_tcp once over its corpus
#     (build/fuzz/corpus_tcp and the seeds) under ASan + UBSan, each input
#     both from its saved start state and from a fresh build (FUZZ_TCP_VERIFY)
# Core sources only (stack/*.c): the runtime (stack/runtime/) is not needed.
# fuzz_input keeps one stack across inputs, so its per-input leak checks are off
# (-detect_leaks=0); fuzz_tcp counts the blocks of its arena (fuzz_arena.c).
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${FUZZ_SECONDS:-60}
target=${FUZZ_TARGET:-all}
san=${FUZZ_SAN:-asan}
jobs=${FUZZ_JOBS:-1}
replay=${FUZZ_REPLAY:-0}
runs=${FUZZ_RUNS:-}
case "$runs" in '') ;; *[!0-9]*|0*) echo "fuzz: FUZZ_RUNS is a positive count" >&2; exit 2 ;; esac
repo=$PWD
out=$repo/build/fuzz
mkdir -p "$out/corpus" "$out/corpus_tcp"
# ubsan: -fsanitize-trap: a check that fails is one ud2 (SIGILL, a "deadly
# signal" to libFuzzer, which saves the input) instead of a call with the
# operands to the runtime that prints them: every check is kept and costs
# less (a ninth of an execution's instructions). failed() re-runs the input
# under ASan + UBSan for the report.
asan_flags="-O1 -fsanitize=address,undefined"
ubsan_flags="-O2 -fsanitize=undefined -fsanitize-trap=undefined"
case "$san" in
    asan) sanflags=$asan_flags ;;
    ubsan) sanflags=$ubsan_flags ;;
    *) echo "fuzz: FUZZ_SAN is asan or ubsan" >&2; exit 2 ;;
esac
[ "$replay" = 1 ] && sanflags=$asan_flags && san=asan

src=(stack/*.c)
cc=(clang -std=c11 -D_GNU_SOURCE -g -fno-sanitize-recover=all -Iinclude -Istack)

# fuzz_input: everything instrumented, comparisons included (the parsers'
# magic numbers are what the comparison hooks find).
build_input() {
    "${cc[@]}" -O1 -fsanitize=fuzzer,address,undefined \
        -o "$out/fuzz_input" tests/fuzz/fuzz_input.c "${src[@]}" -lpthread
}

# fuzz_tcp: coverage on the stack only, without comparison hooks (segments
# are built relative to the connection: there are few magic numbers to find,
# and the hooks were half the time of an execution); the harness and its
# arena carry no coverage (their edges say nothing about the stack). The
# stack's memcmp is the harness's fuzz_memcmp, not libFuzzer's interceptor
# (which records the operands for mutations: see fuzz_tcp.c).
tcp_cov="-fsanitize=fuzzer-no-link -fno-sanitize-coverage=trace-cmp -Dmemcmp=fuzz_memcmp"
build_tcp() {   # [san flags name]
    local flags=${1:-$sanflags} name=${2:-$san}
    local bin=$out/fuzz_tcp-$name obj=$out/obj-$name
    mkdir -p "$obj"
    {
        for f in "${src[@]}"; do
            echo "${cc[*]} $flags $tcp_cov -c $f -o $obj/$(basename "$f" .c).o"
        done
        echo "${cc[*]} $flags -c tests/fuzz/fuzz_tcp.c -o $obj/fuzz_tcp.o"
        echo "${cc[*]} $flags -c tests/fuzz/fuzz_arena.c -o $obj/fuzz_arena.o"
    } | xargs -P2 -I{} sh -c '{}' >&2
    "${cc[@]}" $flags -fsanitize=fuzzer -o "$bin" "$obj"/*.o -lpthread >&2
    echo "$bin"
}

# Seeds: byte 0 = flags (0x80: repair checksums), byte 1 = time step; then a frame.
hex() { printf '%b' "$(echo "$1" | sed 's/../\\x&/g')"; }
seeds_input() {
    local us=020000000001 peer=020000000002
    # ARP request for 198.18.0.1 from 198.18.0.2
    hex "8000ffffffffffff${peer}08060001080006040001${peer}c6120002000000000000c6120001" > "$out/corpus/arp_req"
    # ICMP echo request 198.18.0.2 -> 198.18.0.1 (checksums repaired by the harness)
    hex "8000${us}${peer}0800450000240000400040010000c6120002c612000108000000000100010102030405060708090a0b0c" > "$out/corpus/echo"
    # TCP SYN 198.18.0.2:40000 -> 198.18.0.1:80 with MSS, SACK-permitted, timestamps, wscale
    hex "8000${us}${peer}08004500003c0000400040060000c6120002c61200019c4000500000000100000000a002faf000000000020405b40402080a000000010000000001030307" > "$out/corpus/syn"
    # ICMP port unreachable quoting a TCP segment we sent
    hex "8000${us}${peer}0800450000380000400040010000c6120002c61200010303000000000000450000280000400040060000c6120001c61200029c4000500000000a" > "$out/corpus/unreach"
}

failed() {   # name log
    grep -A60 -m1 -E 'ERROR|runtime error|deadly signal|timeout|invariant|fuzz_arena' "$2" ||
        tail -n 60 "$2"
    # a UBSan trap says only "deadly signal": the saved input again under
    # ASan + UBSan, whose report names the check and the line
    local unit
    unit=$(grep -oE 'Test unit written to [^ ]+' "$2" | head -n 1 | sed 's/.* //')
    if [ "$san" = ubsan ] && [ -n "$unit" ] && [ -f "$unit" ] && [ "${1%%-*}" = fuzz_tcp ]; then
        echo "fuzz: re-running $unit under ASan + UBSan for the report" >&2
        local abin
        abin=$(build_tcp "$asan_flags" asan)
        "$abin" -timeout=60 "$unit" 2>&1 | grep -A60 -m1 -E 'ERROR|runtime error|invariant|fuzz_arena|deadly signal' || true
    fi
    echo "fuzz: $1 FAILED, full log in $2" >&2
    exit 1
}

run() {   # name binary corpus-dir [seed-dir] [extra libFuzzer flags...]
    local name=$1 bin=$2 corpus=$3 seeds=$4
    shift 4
    echo "fuzz: running $name for ${secs}s (crash inputs are saved as $out/crash-*)"
    local rc=0
    "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$out/" -print_final_stats=1 ${runs:+-runs=$runs} "$@" "$corpus" $seeds >"$out/$name.log" 2>&1 || rc=$?
    [ "$rc" -eq 0 ] || failed "$name" "$out/$name.log"
    grep -E '^(Done|stat::(number_of_executed_units|new_units_added|peak_rss_mb))' "$out/$name.log"
    grep -E '^#[0-9]+[[:space:]]+(DONE|pulse|NEW|REDUCE)' "$out/$name.log" | tail -n 1 || true
}

# fuzz_tcp in $jobs processes (libFuzzer -jobs/-workers: each writes
# fuzz-N.log in the directory it starts in; they share the corpus).
run_jobs() {   # binary [extra libFuzzer flags...]
    local bin=$1
    shift
    local logs=$out/logs_tcp
    rm -rf "$logs"
    mkdir -p "$logs"
    echo "fuzz: running fuzz_tcp in $jobs processes for ${secs}s each (logs in $logs)"
    (cd "$logs" && "$bin" -jobs="$jobs" -workers="$jobs" -max_total_time="$secs" -timeout=10 \
        -rss_limit_mb=2048 -artifact_prefix="$out/" -print_final_stats=1 ${runs:+-runs=$runs} "$@" \
        "$out/corpus_tcp" "$repo/tests/fuzz/corpus_tcp" >"$logs/main.log" 2>&1) || true
    local total=0 n
    for l in "$logs"/fuzz-*.log; do
        grep -qE '==[0-9]+==ERROR|runtime error|deadly signal|invariant failed|fuzz_arena:' "$l" &&
            failed fuzz_tcp "$l"
        n=$(grep -E '^stat::number_of_executed_units' "$l" | awk '{print $2}')
        [ -n "$n" ] || failed fuzz_tcp "$l"
        echo "fuzz: $(basename "$l"): $n executions; $(grep -E '^#[0-9]+[[:space:]]+(DONE|pulse|NEW|REDUCE)' "$l" | tail -n 1)"
        total=$((total + n))
    done
    echo "fuzz: fuzz_tcp: $total executions in all ($jobs processes)"
}

case "$target" in
    input|all)
        if [ "$replay" != 1 ]; then
            build_input
            seeds_input
            run fuzz_input "$out/fuzz_input" "$out/corpus" "" -max_len=2048 -detect_leaks=0
        fi ;;
esac
case "$target" in
    tcp|all)
        bin=$(build_tcp)
        # tests/fuzz/corpus_tcp: the committed seeds and corpus (tests/fuzz/make_tcp_seeds.py)
        if [ "$replay" = 1 ]; then
            echo "fuzz: replaying fuzz_tcp's corpus under ASan + UBSan"
            FUZZ_TCP_VERIFY=1 "$bin" -runs=0 -rss_limit_mb=2048 -artifact_prefix="$out/" \
                "$out/corpus_tcp" tests/fuzz/corpus_tcp >"$out/fuzz_tcp-replay.log" 2>&1 ||
                failed fuzz_tcp-replay "$out/fuzz_tcp-replay.log"
            grep -E '^#[0-9]+[[:space:]]+DONE' "$out/fuzz_tcp-replay.log"
        else
            # -entropic=0: the entropic schedule's bookkeeping per execution
            # cost a third of the speed
            flags=(-max_len=1024 -entropic=0)
            [ "$san" = asan ] && flags+=(-detect_leaks=1)
            if [ "$jobs" -gt 1 ]; then
                run_jobs "$bin" "${flags[@]}"
            else
                run fuzz_tcp "$bin" "$out/corpus_tcp" tests/fuzz/corpus_tcp "${flags[@]}"
            fi
        fi ;;
    input) ;;
    *) echo "fuzz: FUZZ_TARGET is input, tcp or all" >&2; exit 2 ;;
esac
echo "fuzz: OK"
