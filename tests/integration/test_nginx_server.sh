#!/usr/bin/env bash
# nginx through the stack (daemon off; master_process off; sendfile on) serves files to kernel
# clients in the peer: curl gets a 10 MB file (sha256 compared) and a small page, then
# `ab -n 2000 -c 20` (no keep-alive: 2000 connections) must complete every request with no
# failure and the exact page length; then the same with keep-alive (ab -k).
# timeout: 120
set -euo pipefail
. "$(dirname "$0")/../lib/netns.sh"
. "$(dirname "$0")/../lib/http.sh"
need_cmd curl nginx ab ethtool
netns_setup

mkdir -p "$TMPD/www"
mkfile "$TMPD/www/10m.bin" $((10 << 20))
head -c 3000 /dev/urandom | base64 -w 76 >"$TMPD/www/index.html"
chmod 644 "$TMPD/www/index.html"
nginx_stack "$TMPD/www"
ngx=$NGX_PID

for f in 10m.bin index.html; do
    log "kernel curl http://$STACK_IP:8080/$f"
    on_peer curl -sS --fail --max-time 60 -o "$TMPD/got-$f" "http://$STACK_IP:8080/$f"
    same_file "$TMPD/www/$f" "$TMPD/got-$f"
done

len=$(fsize "$TMPD/www/index.html")
for k in "" -k; do
    log "ab $k -n 2000 -c 20 http://$STACK_IP:8080/index.html"
    on_peer timeout 45 ab -q $k -n 2000 -c 20 -s 20 "http://$STACK_IP:8080/index.html" >"$TMPD/ab.out" 2>&1 ||
        { cat "$TMPD/ab.out" >&2; die "ab $k failed"; }
    grep -E 'Complete requests|Failed requests|Non-2xx|Keep-Alive requests|Document Length|Requests per second' "$TMPD/ab.out" >&2 || true
    grep -Eq '^Complete requests: +2000$' "$TMPD/ab.out" || die "ab $k: not all 2000 requests completed"
    grep -Eq '^Failed requests: +0$' "$TMPD/ab.out" || die "ab $k: failed requests"
    grep -q 'Non-2xx' "$TMPD/ab.out" && die "ab $k: non-2xx responses"
    grep -Eq "^Document Length: +$len bytes" "$TMPD/ab.out" || die "ab $k: wrong document length"
done
kill -0 "$ngx" 2>/dev/null || die "nginx on the stack exited"
