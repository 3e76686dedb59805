#!/usr/bin/env bash
# An event-loop server under hundreds of concurrent clients: nginx (epoll, EPOLLET,
# master_process off) on the stack, `ab -c 200` from the peer, first one connection per request
# (4000 connections, 200 at a time), then keep-alive; every request must complete with the exact
# length, and a 1 MB file fetched by 50 curl clients at once must arrive intact (sha256).
# timeout: 180
set -euo pipefail
. "$(dirname "$0")/../lib/netns.sh"
. "$(dirname "$0")/../lib/http.sh"
need_cmd curl nginx ab ethtool
netns_setup

mkdir -p "$TMPD/www"
mkfile "$TMPD/www/1m.bin" $((1 << 20))
head -c 2000 /dev/urandom | base64 -w 76 >"$TMPD/www/index.html"
chmod 644 "$TMPD/www/index.html"
nginx_stack "$TMPD/www"
ngx=$NGX_PID

len=$(fsize "$TMPD/www/index.html")
for k in "" -k; do
    log "ab $k -n 4000 -c 200 http://$STACK_IP:8080/index.html"
    on_peer timeout 90 ab -q $k -n 4000 -c 200 -s 30 "http://$STACK_IP:8080/index.html" >"$TMPD/ab.out" 2>&1 ||
        { cat "$TMPD/ab.out" >&2; die "ab $k failed"; }
    grep -E 'Complete requests|Failed requests|Non-2xx|Document Length|Requests per second' "$TMPD/ab.out" >&2 || true
    grep -Eq '^Complete requests: +4000$' "$TMPD/ab.out" || die "ab $k: not all 4000 requests completed"
    grep -Eq '^Failed requests: +0$' "$TMPD/ab.out" || die "ab $k: failed requests"
    grep -q 'Non-2xx' "$TMPD/ab.out" && die "ab $k: non-2xx responses"
    grep -Eq "^Document Length: +$len bytes" "$TMPD/ab.out" || die "ab $k: wrong document length"
done

log "50 concurrent curl downloads of 1 MB"
pids=()
for i in $(seq 1 50); do
    on_peer curl -sS --fail --max-time 60 -o "$TMPD/got-$i.bin" "http://$STACK_IP:8080/1m.bin" &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || die "a curl client failed"; done
for i in $(seq 1 50); do same_file "$TMPD/www/1m.bin" "$TMPD/got-$i.bin"; done
kill -0 "$ngx" 2>/dev/null || die "nginx on the stack exited"
log "ok"
