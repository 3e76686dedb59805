#!/usr/bin/env bash
# Builds the fuzzers with clang (libFuzzer + ASan + UBSan) and runs each for a
# bounded time. FUZZ_SECONDS (default 60) is the budget per target;
# FUZZ_TARGET picks one: input (raw frames into the stack: the parsers), tcp
# (one connection driven into a state, then segments relative to it: the
# state machine), or all (the default, one after the other).
# Core sources only (stack/*.c): the runtime (stack/runtime/) is not needed.
# fuzz_input keeps one stack across inputs, so its per-input leak checks are off
# (-detect_leaks=0); fuzz_tcp builds a fresh stack per input and checks leaks.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${FUZZ_SECONDS:-60}
target=${FUZZ_TARGET:-all}
out=build/fuzz
mkdir -p "$out/corpus" "$out/corpus_tcp"

src=(stack/*.c)
build() {
    clang -std=c11 -D_GNU_SOURCE -O1 -g -fsanitize=fuzzer,address,undefined \
          -fno-sanitize-recover=all -Iinclude -Istack \
          -o "$out/$1" "tests/fuzz/$1.c" "${src[@]}" -lpthread
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

run() {   # name corpus-dir [seed-dir] [extra libFuzzer flags...]
    local name=$1 corpus=$2 seeds=$3
    shift 3
    echo "fuzz: running $name for ${secs}s (crash inputs are saved as $out/crash-*)"
    local rc=0
    "$out/$name" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$out/" -print_final_stats=1 "$@" "$corpus" $seeds >"$out/$name.log" 2>&1 || rc=$?
    if [ "$rc" -ne 0 ]; then
        grep -A60 -m1 -E 'ERROR|runtime error|deadly signal|timeout|invariant' "$out/$name.log" ||
            tail -n 60 "$out/$name.log"
        echo "fuzz: $name FAILED (rc $rc), full log in $out/$name.log" >&2
        exit 1
    fi
    grep -E '^(Done|stat::(number_of_executed_units|new_units_added|peak_rss_mb))' "$out/$name.log"
    grep -E '^#[0-9]+ +(DONE|pulse|NEW|REDUCE)' "$out/$name.log" | tail -n 1 || true
}

case "$target" in
    input|all)
        build fuzz_input
        seeds_input
        run fuzz_input "$out/corpus" "" -max_len=2048 -detect_leaks=0 ;;
esac
case "$target" in
    tcp|all)
        build fuzz_tcp
        # tests/fuzz/corpus_tcp: the committed seeds (tests/fuzz/make_tcp_seeds.py)
        run fuzz_tcp "$out/corpus_tcp" tests/fuzz/corpus_tcp -max_len=1024 -detect_leaks=1 ;;
    input) ;;
    *) echo "fuzz: FUZZ_TARGET is input, tcp or all" >&2; exit 2 ;;
esac
echo "fuzz: OK"
