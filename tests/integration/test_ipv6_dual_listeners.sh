#!/usr/bin/env bash
# Servers that listen on :: the way their defaults do, on the stack, reached over both families:
# - `python3 -m http.server` with no --bind: it listens where getaddrinfo(NULL, AI_PASSIVE)
#   puts first (glibc here: 0.0.0.0, so IPv4 only, as without the stack; a system whose
#   resolver puts :: first gets the dual-stack case below): fetched over IPv4 (and over IPv6
#   when it said "::"). Then `--bind ::`, Python's dual-stack server (IPV6_V6ONLY 0): kernel
#   clients in the peer fetch a file over IPv4 (198.18.0.10) and IPv6 (2001:2::10), loopback
#   clients in the stack's namespace over 127.0.0.1 and ::1 (the listener's kernel
#   placeholder); the server's log names each client as Linux reports it:
#   ::ffff:198.18.0.1, 2001:2::1, ::ffff:127.0.0.1 and ::1.
# - nginx with `listen 8080; listen [::]:8080;` (the Debian default site's pair; [::] is
#   v6-only in nginx): a 10 MB file over both families.
# - node's `server.listen(port)` (if nodejs is installed): the peer's address as the server
#   sees it comes back in the body, over both families.
# Every download is compared by size and sha256.
# timeout: 120
set -euo pipefail
. "$(dirname "$0")/../lib/netns.sh"
. "$(dirname "$0")/../lib/http.sh"
need_cmd curl python3 nginx ethtool
netns_setup v6
# Debian's python3 itself on the stack, not a wrapper script (a pyenv shim is bash: it would
# run under the library, and under SAN=1 its own leaks would be reported)
PY3=/usr/bin/python3
[ -x "$PY3" ] || PY3=$(command -v python3)

mkdir -p "$TMPD/www"
mkfile "$TMPD/www/4m.bin" $((4 << 20))
mkfile "$TMPD/www/10m.bin" $((10 << 20))

log "python3 -m http.server 7999 (no --bind) on the stack"
bg_stack "$TMPD/py0.log" "$PY3" -u -m http.server 7999 -d "$TMPD/www"
py=$BG_PID
wait_connect "$NS_P" "$STACK_IP" 7999 20
urls=("http://$STACK_IP:7999/4m.bin")
grep -q '^Serving HTTP on :: ' "$TMPD/py0.log" && urls+=("http://[$STACK_IP6]:7999/4m.bin")
for url in "${urls[@]}"; do
    log "kernel curl $url"
    on_peer curl -g -sS --fail --max-time 60 -o "$TMPD/got.bin" "$url"
    same_file "$TMPD/www/4m.bin" "$TMPD/got.bin"
done
bg_stop "$py" || true

log "python3 -m http.server --bind :: 8000 on the stack"
bg_stack "$TMPD/py.log" "$PY3" -u -m http.server --bind :: 8000 -d "$TMPD/www"
py=$BG_PID
wait_connect "$NS_P" "$STACK_IP" 8000 20
for url in "http://$STACK_IP:8000/4m.bin" "http://[$STACK_IP6]:8000/4m.bin"; do
    log "kernel curl $url"
    on_peer curl -g -sS --fail --max-time 60 -o "$TMPD/got.bin" "$url"
    same_file "$TMPD/www/4m.bin" "$TMPD/got.bin"
done
for url in "http://127.0.0.1:8000/4m.bin" "http://[::1]:8000/4m.bin"; do
    log "loopback curl $url (the kernel placeholder)"
    on_kstack curl -g -sS --fail --max-time 60 -o "$TMPD/got.bin" "$url"
    same_file "$TMPD/www/4m.bin" "$TMPD/got.bin"
done
for who in "::ffff:$PEER_IP" "$PEER_IP6" "::ffff:127.0.0.1" "::1"; do
    grep -q "^$who - - .*\"GET /4m.bin HTTP/1.1\" 200" "$TMPD/py.log" ||
        { cat "$TMPD/py.log" >&2; die "http.server logged no request from $who"; }
done
log "ok: http.server saw ::ffff:$PEER_IP, $PEER_IP6, ::ffff:127.0.0.1 and ::1"
bg_stop "$py" || true

log "nginx: listen 8080; listen [::]:8080;"
nginx_conf "$TMPD/ngx" "8080; listen [::]:8080" "$TMPD/www"
nginx_start bg_stack "$TMPD/ngx"
ngx=$BG_PID
wait_connect "$NS_P" "$STACK_IP" 8080 20
for url in "http://$STACK_IP:8080/10m.bin" "http://[$STACK_IP6]:8080/10m.bin"; do
    log "kernel curl $url"
    on_peer curl -g -sS --fail --max-time 60 -o "$TMPD/got.bin" "$url"
    same_file "$TMPD/www/10m.bin" "$TMPD/got.bin"
done
kill -0 "$ngx" 2>/dev/null || die "nginx on the stack exited"
bg_stop "$ngx" || true

node=$(command -v node || command -v nodejs || true)
if [ -z "$node" ]; then
    log "nodejs not installed: node part skipped"
    exit 0
fi
log "node: http.createServer(...).listen(8081)"
cat >"$TMPD/srv.js" <<'JS'
const http = require('http');
const fs = require('fs');
const body = fs.readFileSync(process.argv[2]);
http.createServer((req, res) => {
    if (req.url === '/who') { res.end(req.socket.remoteAddress + ' ' + req.socket.localAddress); return; }
    res.end(body);
}).listen(8081);
JS
bg_stack "$TMPD/node.log" "$node" "$TMPD/srv.js" "$TMPD/www/4m.bin"
wait_connect "$NS_P" "$STACK_IP" 8081 20
for host in "$STACK_IP" "[$STACK_IP6]"; do
    on_peer curl -g -sS --fail --max-time 60 -o "$TMPD/got.bin" "http://$host:8081/4m"
    same_file "$TMPD/www/4m.bin" "$TMPD/got.bin"
done
who4=$(on_peer curl -sS --fail --max-time 10 "http://$STACK_IP:8081/who")
who6=$(on_peer curl -g -sS --fail --max-time 10 "http://[$STACK_IP6]:8081/who")
[ "$who4" = "::ffff:$PEER_IP ::ffff:$STACK_IP" ] || die "node saw '$who4' over IPv4"
[ "$who6" = "$PEER_IP6 $STACK_IP6" ] || die "node saw '$who6' over IPv6"
log "ok: node saw '$who4' and '$who6'"
