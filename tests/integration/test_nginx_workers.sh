#!/usr/bin/env bash
# nginx in its default process shape on the stack: a master and 4 worker processes (fork after
# listen), all on one shared stack. curl gets a 10 MB file (sha256 compared); `ab -n 2000 -c 50`
# (no keep-alive) and `ab -k` must complete every request with the exact page length; every
# request is in the access log (each worker logs its pid; with EPOLLEXCLUSIVE one worker may
# take them all, as on Linux: nginx_worker_kill shows the others serving).
# timeout: 150
set -euo pipefail
. "$(dirname "$0")/../lib/netns.sh"
. "$(dirname "$0")/../lib/http.sh"
need_cmd curl nginx ab
netns_setup

mkdir -p "$TMPD/www"
mkfile "$TMPD/www/10m.bin" $((10 << 20))
head -c 3000 /dev/urandom | base64 -w 76 >"$TMPD/www/index.html"
chmod 644 "$TMPD/www/index.html"
NGINX_WORKERS=4 nginx_conf "$TMPD/ngx" 8080 "$TMPD/www"
# Which worker served each request: the access log carries the pid.
sed -i "s|access_log off;|log_format pid '\$pid \$status \$body_bytes_sent'; access_log $TMPD/ngx/logs/access.log pid;|" \
    "$TMPD/ngx/nginx.conf"
export TCPSM_RUN_DIR=$TMPD/run     # tcpsm stat below reads this run's stacks only
nginx_start bg_stack "$TMPD/ngx"
ngx=$BG_PID
wait_connect "$NS_P" "$STACK_IP" 8080 20
n=$(pgrep -c -P "$(pgrep -o -f "nginx -p $TMPD/ngx")" || true)
log "nginx workers: $n"
[ "$n" -eq 4 ] || die "expected 4 nginx workers, found $n"
if stack_mode; then
    # tcpsm stat lists every process attached to the one shared stack: the master and each worker.
    master=$(pgrep -o -f "nginx -p $TMPD/ngx")
    want="$master $(pgrep -P "$master" | tr '\n' ' ')"
    sleep 1.2   # the stats file is rewritten every second
    "$TCPSM_BUILD/tcpsm" stat --json >"$TMPD/stat.json" || die "tcpsm stat --json failed"
    python3 - "$TMPD/stat.json" $want <<'PY' || { cat "$TMPD/stat.json" >&2; die "tcpsm stat: not every nginx process listed"; }
import json, sys
doc = json.load(open(sys.argv[1]))
stacks = doc["stacks"] if isinstance(doc, dict) and "stacks" in doc else doc
pids = {p for st in stacks for p in st["pids"]}
want = {int(p) for p in sys.argv[2:]}
sys.exit(0 if want <= pids else 1)
PY
    log "tcpsm stat: master and workers attached ($want)"
fi

log "kernel curl http://$STACK_IP:8080/10m.bin"
on_peer curl -sS --fail --max-time 60 -o "$TMPD/got" "http://$STACK_IP:8080/10m.bin"
same_file "$TMPD/www/10m.bin" "$TMPD/got"

len=$(fsize "$TMPD/www/index.html")
for k in "" -k; do
    log "ab $k -n 2000 -c 50 http://$STACK_IP:8080/index.html"
    on_peer timeout 60 ab -q $k -n 2000 -c 50 -s 20 "http://$STACK_IP:8080/index.html" >"$TMPD/ab.out" 2>&1 ||
        { cat "$TMPD/ab.out" >&2; die "ab $k failed"; }
    grep -E 'Complete requests|Failed requests|Non-2xx|Document Length|Requests per second' "$TMPD/ab.out" >&2 || true
    grep -Eq '^Complete requests: +2000$' "$TMPD/ab.out" || die "ab $k: not all 2000 requests completed"
    grep -Eq '^Failed requests: +0$' "$TMPD/ab.out" || die "ab $k: failed requests"
    grep -q 'Non-2xx' "$TMPD/ab.out" && die "ab $k: non-2xx responses"
    grep -Eq "^Document Length: +$len bytes" "$TMPD/ab.out" || die "ab $k: wrong document length"
done
kill -0 "$ngx" 2>/dev/null || die "nginx on the stack exited"
served=$(awk '$2 == 200' "$TMPD/ngx/logs/access.log" | wc -l)
workers=$(awk '$2 == 200 {print $1}' "$TMPD/ngx/logs/access.log" | sort -u | wc -l)
log "requests logged: $served, by $workers worker(s)"
[ "$served" -eq 4001 ] || die "expected 4001 logged requests, got $served"
log "ok"
