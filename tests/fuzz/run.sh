#!/usr/bin/env bash
# Builds the packet-parser fuzzer with clang (libFuzzer + ASan + UBSan) and
# runs it for a bounded time. FUZZ_SECONDS (default 60) sets the budget.
# Core sources only (stack/*.c): the runtime (stack/runtime/) is not needed.
# The stack persists across inputs, so per-input leak checks are off (-detect_leaks=0);
# leaks are the unit tests' job under SAN=1.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${FUZZ_SECONDS:-60}
out=build/fuzz
mkdir -p "$out/corpus"

src=(stack/*.c)

clang -std=c11 -D_GNU_SOURCE -O1 -g -fsanitize=fuzzer,address,undefined \
      -fno-sanitize-recover=all -Iinclude -Istack \
      -o "$out/fuzz_input" tests/fuzz/fuzz_input.c "${src[@]}" -lpthread

# Seeds: byte 0 = flags (0x80: repair checksums), byte 1 = time step; then a frame.
hex() { printf '%b' "$(echo "$1" | sed 's/../\\x&/g')"; }
us=020000000001 peer=020000000002
# ARP request for 198.18.0.1 from 198.18.0.2
hex "8000ffffffffffff${peer}08060001080006040001${peer}c6120002000000000000c6120001" > "$out/corpus/arp_req"
# ICMP echo request 198.18.0.2 -> 198.18.0.1 (checksums repaired by the harness)
hex "8000${us}${peer}0800450000240000400040010000c6120002c612000108000000000100010102030405060708090a0b0c" > "$out/corpus/echo"
# TCP SYN 198.18.0.2:40000 -> 198.18.0.1:80 with MSS, SACK-permitted, timestamps, wscale
hex "8000${us}${peer}08004500003c0000400040060000c6120002c61200019c4000500000000100000000a002faf000000000020405b40402080a000000010000000001030307" > "$out/corpus/syn"
# ICMP port unreachable quoting a TCP segment we sent
hex "8000${us}${peer}0800450000380000400040010000c6120002c61200010303000000000000450000280000400040060000c6120001c61200029c4000500000000a" > "$out/corpus/unreach"

echo "fuzz: running fuzz_input for ${secs}s (crash inputs are saved as $out/crash-*)"
rc=0
"$out/fuzz_input" -max_total_time="$secs" -max_len=2048 -timeout=10 -rss_limit_mb=2048 -detect_leaks=0 \
    -artifact_prefix="$out/" -print_final_stats=1 "$out/corpus" >"$out/log" 2>&1 || rc=$?
if [ "$rc" -ne 0 ]; then
    grep -A60 -m1 -E 'ERROR|runtime error|deadly signal|timeout' "$out/log" || tail -n 60 "$out/log"
    echo "fuzz: FAILED (rc $rc), full log in $out/log" >&2
    exit 1
fi
grep -E '^(Done|stat::(number_of_executed_units|new_units_added|peak_rss_mb))' "$out/log"
echo "fuzz: OK"
