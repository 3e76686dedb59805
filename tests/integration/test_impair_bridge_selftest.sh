#!/usr/bin/env bash
# Checks the test infrastructure itself, always kernel-to-kernel (no library): curl between
# two kernel namespaces through build/tools/impair_bridge with every impairment on (loss,
# delay with jitter, reordering, duplication, corruption) gets the file intact; the bridge's
# counters show each impairment happened; a bridge with --max-seconds stops by itself.
# timeout: 120
set -euo pipefail
TCPSM_TEST_MODE=kernel
. "$(dirname "$0")/../lib/netns.sh"
. "$(dirname "$0")/../lib/http.sh"
. "$(dirname "$0")/../lib/impair.sh"
need_cmd curl nginx ethtool
netns_setup bridge

"$TCPSM_ROOT/build/tools/impair_bridge" --help | grep -q -- '--reorder' || die "--help"
bridge_start --loss 2 --delay 5 --jitter 2 --reorder 5 --dup 2 --corrupt 1 --seed 42 --max-seconds 100

mkdir -p "$TMPD/www"
mkfile "$TMPD/www/4m.bin" $((4 << 20))
nginx_peer "$TMPD/www"
on_stack curl -sS --fail --max-time 60 -o "$TMPD/got.bin" "http://$PEER_IP:8080/4m.bin"
same_file "$TMPD/www/4m.bin" "$TMPD/got.bin"
bg_stop $BRIDGE_PID || true
cat "$BRIDGE_LOG" >&2
for c in lost reordered duplicated corrupted delayed tx; do
    [ "$(bridge_sum "$BRIDGE_LOG" $c)" -gt 0 ] || die "bridge counter $c stayed 0"
done
for c in qfull oversize txerr; do
    [ "$(bridge_sum "$BRIDGE_LOG" $c)" -eq 0 ] || die "bridge counter $c is not 0"
done

# A bridge with no impairment is transparent, and --max-seconds ends it.
bridge_start --max-seconds 3
on_stack curl -sS --fail --max-time 20 -o "$TMPD/got2.bin" "http://$PEER_IP:8080/4m.bin"
same_file "$TMPD/www/4m.bin" "$TMPD/got2.bin"
bg_wait $BRIDGE_PID 10 || die "the bridge ignored --max-seconds"
[ "$(bridge_sum "$BRIDGE_LOG" lost)" -eq 0 ] || die "a bridge without --loss lost frames"
