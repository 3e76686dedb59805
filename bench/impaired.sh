#!/usr/bin/env bash
# Part of make bench (bench/run.sh calls it): bulk transfers through the impair_bridge (loss
# 5 %, delay 5 +/- 2 ms, reordering 10 %, fixed seed), kernel and tcpsm clients in the same
# run on the same link. Prints "key kernel_value tcpsm_value" lines (seconds per transfer);
# run.sh turns them into ratios. Loss recovery is what this measures.
#   BENCH_IMPAIRED_MB=4  BENCH_IMPAIRED_DIRS="down up"  BENCH_IMPAIRED_ROUNDS=1
#   BENCH_IMPAIR_ARGS="--loss 5 --delay 5 --jitter 2 --reorder 10" (impair_bridge options)
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/tests/lib/netns.sh"
. "$root/tests/lib/http.sh"
. "$root/tests/lib/impair.sh"
size_mb=${BENCH_IMPAIRED_MB:-4}
dirs=${BENCH_IMPAIRED_DIRS:-down up}     # e.g. "up" for the upload rows only
rounds=${BENCH_IMPAIRED_ROUNDS:-1}       # >1: one line per round (the bench's noise is large)
set -e
netns_setup bridge kaddr
# BENCH_IMPAIR_ARGS replaces the impairment (for experiments; the bench's rows use the default)
# shellcheck disable=SC2086
bridge_start ${BENCH_IMPAIR_ARGS:---loss 5 --delay 5 --jitter 2 --reorder 10} --seed 7 --max-seconds 300
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

for ((r = 0; r < rounds; r++)); do
    for dir in $dirs; do
        k=$(xfer k $dir)
        s=$(xfer s $dir)
        echo "imp_$dir ${k:--} ${s:--}"
    done
done
