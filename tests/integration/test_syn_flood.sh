#!/usr/bin/env bash
# A spoofed-source SYN flood (build/tools/synflood in the peer: 600,000 SYNs paced at up to
# 150,000/s from 198.18.128.0/17, off the test subnet) at an nginx on the stack, while a
# kernel curl in the peer fetches a page 20 times: every request must succeed with the
# exact bytes (SYN cookies keep the listener answering once its SYN queue is full), nginx
# must stay up, and its resident memory must not grow by more than 24 MiB (the SYN queue
# is bounded by the backlog; cookies keep no state). The flood's achieved rate is logged,
# never asserted (timings go to bench/).
# timeout: 120
set -euo pipefail
. "$(dirname "$0")/../lib/netns.sh"
. "$(dirname "$0")/../lib/http.sh"
need_cmd curl nginx ethtool python3
netns_setup
flood=$(need_tool synflood)
export TCPSM_RUN_DIR=$TMPD/run

mkdir -p "$TMPD/www"
head -c 3000 /dev/urandom | base64 -w 76 >"$TMPD/www/index.html"
chmod 644 "$TMPD/www/index.html"
nginx_stack "$TMPD/www"
ngx=$NGX_PID

rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
rss0=$(rss "$ngx")
log "nginx VmRSS before the flood: ${rss0} kB"

bg_peer "$TMPD/flood.out" "$flood" "$STACK_IP" 8080 --count 600000 --rate 150000 --max-seconds 30
fl=$BG_PID
sleep 0.5

n=20 ok=0 during=0
for ((i = 1; i <= n; i++)); do
    kill -0 "$fl" 2>/dev/null && during=$((during + 1))
    rm -f "$TMPD/got.html"
    if on_peer curl -sS --fail --max-time 20 -o "$TMPD/got.html" "http://$STACK_IP:8080/index.html" \
        2>"$TMPD/curl.err"; then
        same_file "$TMPD/www/index.html" "$TMPD/got.html"
        ok=$((ok + 1))
    else
        cat "$TMPD/curl.err" >&2
        log "request $i failed"
    fi
done
rss1=$(rss "$ngx")
for ((i = 0; i < 300; i++)); do kill -0 "$fl" 2>/dev/null || break; sleep 0.1; done
cat "$TMPD/flood.out" >&2
grep -q '^synflood: sent=600000 ' "$TMPD/flood.out" || die "the flood did not send its 600000 SYNs"
log "requests: $ok of $n served ($during started during the flood); nginx VmRSS ${rss0} -> ${rss1} kB"
[ "$during" -ge 5 ] || die "only $during requests overlapped the flood"
[ "$ok" -eq "$n" ] || die "only $ok of $n requests served under the flood"
[ $((rss1 - rss0)) -le $((24 * 1024)) ] || die "nginx grew by $((rss1 - rss0)) kB under the flood"
kill -0 "$ngx" 2>/dev/null || die "nginx on the stack exited"
# the flood reached the listener, and cookies answered it (the stack's own figures)
if stack_mode; then
    "$TCPSM_BUILD/tcpsm" stat --json --pid "$ngx" >"$TMPD/stat.json" || die "tcpsm stat failed"
    python3 - "$TMPD/stat.json" "$ngx" <<'PY' || die "the stack's SYN figures do not show the flood"
import json, sys
s = [x for x in json.load(open(sys.argv[1])) if x["pid"] == int(sys.argv[2])][0]
c = s["counters"]
print("listen_syns=%d syncookies_sent=%d syncookies_recv=%d rx_queue_drops=%d" % (
    c["tcp_listen_syns"], c["tcp_syncookies_sent"], c["tcp_syncookies_recv"],
    s["link"]["rx_queue_drops"]), file=sys.stderr)
assert c["tcp_listen_syns"] >= 100000 and c["tcp_syncookies_sent"] >= 50000, c
PY
fi
# after the flood the listener serves as before
on_peer curl -sS --fail --max-time 10 -o "$TMPD/got.html" "http://$STACK_IP:8080/index.html"
same_file "$TMPD/www/index.html" "$TMPD/got.html"
log "ok"
