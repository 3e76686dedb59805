#!/usr/bin/env bash
# One stack shared by nginx's master and 4 workers survives a worker killed with SIGKILL in the
# middle of a load: `ab -r -n 4000 -c 50` runs while one worker is killed; ab must finish (no
# hung connection: the dead worker's connections are reset by the stack, which notices the
# process is gone), and afterwards the remaining workers (and the one the master starts in its
# place) serve `ab -n 1000 -c 20` with zero failures and the exact page length.
# timeout: 150
set -euo pipefail
. "$(dirname "$0")/../lib/netns.sh"
. "$(dirname "$0")/../lib/http.sh"
need_cmd nginx ab
netns_setup

mkdir -p "$TMPD/www"
head -c 3000 /dev/urandom | base64 -w 76 >"$TMPD/www/index.html"
chmod 644 "$TMPD/www/index.html"
NGINX_WORKERS=4 nginx_stack "$TMPD/www"
master=$(pgrep -o -f "nginx -p $TMPD/ngx")
workers=$(pgrep -P "$master" | tr '\n' ' ')
log "master $master, workers $workers"
[ "$(echo $workers | wc -w)" -eq 4 ] || die "expected 4 workers"
victim=$(echo $workers | cut -d' ' -f2)

len=$(fsize "$TMPD/www/index.html")
log "ab -r -n 4000 -c 50 while worker $victim is killed"
on_peer timeout 60 ab -q -r -n 4000 -c 50 -s 10 "http://$STACK_IP:8080/index.html" >"$TMPD/ab1.out" 2>&1 &
abpid=$!
sleep 0.5
kill -KILL "$victim"
rc=0
wait "$abpid" || rc=$?
grep -E 'Complete requests|Failed requests|Requests per second' "$TMPD/ab1.out" >&2 || true
[ "$rc" -eq 0 ] || { cat "$TMPD/ab1.out" >&2; die "ab during the kill: exit $rc (hung or aborted)"; }
grep -Eq '^Complete requests: +4000$' "$TMPD/ab1.out" || die "ab during the kill: not all requests accounted"
kill -0 "$master" 2>/dev/null || die "the nginx master died"

log "afterwards: ab -n 1000 -c 20"
on_peer timeout 60 ab -q -n 1000 -c 20 -s 10 "http://$STACK_IP:8080/index.html" >"$TMPD/ab2.out" 2>&1 ||
    { cat "$TMPD/ab2.out" >&2; die "ab after the kill failed"; }
grep -E 'Complete requests|Failed requests|Requests per second' "$TMPD/ab2.out" >&2 || true
grep -Eq '^Complete requests: +1000$' "$TMPD/ab2.out" || die "not all 1000 requests completed"
grep -Eq '^Failed requests: +0$' "$TMPD/ab2.out" || die "failed requests after the kill"
grep -Eq "^Document Length: +$len bytes" "$TMPD/ab2.out" || die "wrong document length"
log "ok"
