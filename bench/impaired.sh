#!/usr/bin/env bash
# Part of make bench (bench/run.sh calls it): bulk transfers through the impair_bridge (loss
# 5 %, delay 5 +/- 2 ms, reordering 10 %, fixed seed), kernel and tcpsm clients in the same
# run on the same link. Prints "key kernel_value tcpsm_value" lines (seconds per transfer);
# run.sh turns them into ratios. Loss recovery is what this measures.
#   imp_down, imp_up   curl GET / PUT of the file (nginx in the peer), each side's default
#                      congestion control: both follow the host's sysctl (bbr on the machine the
#                      README's figures come from; tcpsm reads it at start, CUBIC if it lacks it)
#   imp_up_cubic       iperf3 -n SIZE -C cubic upload: CUBIC on both sides (not in the default
#                      set: make bench prints the two curl rows)
# With several rounds each line is the median of the rounds (each round also on stderr).
#   BENCH_IMPAIRED_MB=64 (issue 11's size)  BENCH_IMPAIRED_DIRS="down up"  BENCH_IMPAIRED_ROUNDS=3
#   BENCH_IMPAIR_ARGS="--loss 5 --delay 5 --jitter 2 --reorder 10" (impair_bridge options)
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/tests/lib/netns.sh"
. "$root/tests/lib/http.sh"
. "$root/tests/lib/impair.sh"
size_mb=${BENCH_IMPAIRED_MB:-64}
dirs=${BENCH_IMPAIRED_DIRS:-down up}    # e.g. "up" for the upload row only; "up_cubic" too
rounds=${BENCH_IMPAIRED_ROUNDS:-3}       # the medians are printed (the bench's noise is large)
set -e
netns_setup bridge kaddr
# BENCH_IMPAIR_ARGS replaces the impairment (for experiments; the bench's rows use the default)
# shellcheck disable=SC2086
bridge_start ${BENCH_IMPAIR_ARGS:---loss 5 --delay 5 --jitter 2 --reorder 10} --seed 7 --max-seconds 900
mkdir -p "$TMPD/www" "$TMPD/store"
chmod 777 "$TMPD/store"
mkfile "$TMPD/www/f.bin" $((size_mb << 20))
nginx_conf "$TMPD/ngx" 8080 "$TMPD/store" "dav_methods PUT; client_max_body_size 256m;"
# Downloads come from the store too: put the file there.
cp "$TMPD/www/f.bin" "$TMPD/store/f.bin"
nginx_start bg_peer "$TMPD/ngx"
wait_listen "$NS_P" 8080
set +e

# xfer k|s down|up → seconds, or nothing if the transfer failed or the data differ.
xfer() {
    local side=$1 dir=$2 t rc
    local -a run=(on_kstack)
    [ "$side" = s ] && run=(on_stack)
    local src=$KSTACK_IP
    [ "$side" = s ] && src=$STACK_IP
    if [ "$dir" = down ]; then
        t=$("${run[@]}" curl -sS --fail --max-time 120 --interface "$src" -o "$TMPD/got-$side.bin" \
            -w '%{time_total}' "http://$PEER_IP:8080/f.bin") || return 0
        cmp -s "$TMPD/www/f.bin" "$TMPD/got-$side.bin" || return 0
    else
        t=$("${run[@]}" curl -sS --fail --max-time 120 --interface "$src" -o /dev/null -T "$TMPD/www/f.bin" \
            -w '%{time_total}' "http://$PEER_IP:8080/up-$side.bin") || return 0
        cmp -s "$TMPD/www/f.bin" "$TMPD/store/up-$side.bin" || return 0
    fi
    echo "$t"
}

# iperf_up k|s → seconds of an iperf3 upload of the file's size with CUBIC, or nothing.
iperf_up() {
    local side=$1 f=$TMPD/iperf-$1.json src=$KSTACK_IP srv
    local -a run=(on_kstack)
    [ "$side" = s ] && run=(on_stack) src=$STACK_IP
    bg_peer "$TMPD/iperf-srv.log" iperf3 -s -1 -p 5201
    srv=$BG_PID
    wait_listen "$NS_P" 5201 >/dev/null
    "${run[@]}" timeout 120 iperf3 -c "$PEER_IP" -B "$src" -p 5201 -n "${size_mb}M" -C cubic \
        --json >"$f" 2>/dev/null
    bg_wait "$srv" 10 >/dev/null || bg_stop "$srv" >/dev/null
    python3 - "$f" "$((size_mb << 20))" <<'PY' 2>/dev/null
import json, sys
e = json.load(open(sys.argv[1]))["end"]
t = e["sum_sent"]   # (sum_received's count may end a little short of the total)
if t["bytes"] >= int(sys.argv[2]) and e["sum_received"]["bytes"] > 0:
    print(f"{t['seconds']:.3f}")
PY
}

median() {   # the median of the numbers given (nothing if none)
    printf '%s\n' "$@" | grep -E '^[0-9.]+$' | sort -g |
        awk '{ v[NR] = $1 } END { if (NR) print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

declare -A KV SV
for ((r = 0; r < rounds; r++)); do
    for dir in $dirs; do
        if [ "$dir" = up_cubic ]; then
            k=$(iperf_up k)
            s=$(iperf_up s)
        else
            k=$(xfer k "$dir")
            s=$(xfer s "$dir")
        fi
        echo "round $((r + 1)): imp_$dir ${k:--} ${s:--}" >&2
        KV[$dir]+=" ${k:--}"
        SV[$dir]+=" ${s:--}"
    done
done
for dir in $dirs; do
    # shellcheck disable=SC2086
    k=$(median ${KV[$dir]})
    # shellcheck disable=SC2086
    s=$(median ${SV[$dir]})
    echo "imp_$dir ${k:--} ${s:--}"
done
