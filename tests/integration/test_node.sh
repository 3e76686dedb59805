#!/usr/bin/env bash
# node (libuv: epoll, non-blocking sockets) on the stack, both ways: an http server bound to
# the stack's address serves a 5 MB file to kernel curl in the peer (sha256 compared), and an
# http client on the stack fetches a 5 MB file from a kernel nginx and writes it out (sha256
# compared). node binds dual-stack by default; the server is told the IPv4 address.
# timeout: 90
set -euo pipefail
. "$(dirname "$0")/../lib/netns.sh"
. "$(dirname "$0")/../lib/http.sh"
need_cmd node curl nginx ethtool
netns_setup

mkdir -p "$TMPD/www"
mkfile "$TMPD/www/page.bin" 5000000
cat >"$TMPD/server.js" <<'JS'
const http = require('http'), fs = require('fs');
const [file, host, port] = process.argv.slice(2);
const srv = http.createServer((req, res) => {
  res.writeHead(200, {'Content-Length': fs.statSync(file).size});
  fs.createReadStream(file).pipe(res);
});
srv.listen(Number(port), host, () => console.log('listening'));
JS
cat >"$TMPD/client.js" <<'JS'
const http = require('http'), fs = require('fs');
const [url, out] = process.argv.slice(2);
http.get(url, res => {
  if (res.statusCode !== 200) { console.error('status', res.statusCode); process.exit(1); }
  res.pipe(fs.createWriteStream(out)).on('finish', () => console.log('done'));
}).on('error', e => { console.error(e.message); process.exit(1); });
JS

bg_stack "$TMPD/node-srv.log" node "$TMPD/server.js" "$TMPD/www/page.bin" "$STACK_IP" 8088
srv=$BG_PID
wait_log "$TMPD/node-srv.log" '^listening' 20
for i in 1 2; do
    on_peer curl -sS --fail --max-time 30 -o "$TMPD/got$i.bin" "http://$STACK_IP:8088/" ||
        die "curl from the peer to node on the stack failed"
    same_file "$TMPD/www/page.bin" "$TMPD/got$i.bin"
done
# The server is stopped, not awaited: node's own exit after close() sometimes waited longer
# than any bound, in kernel mode too (not the stack's doing); the data checks above are the test.
kill -0 "$srv" 2>/dev/null || die "node server on the stack died: $(cat "$TMPD/node-srv.log")"
bg_stop "$srv" || true

nginx_peer "$TMPD/www"
out=$(on_stack timeout 60 node "$TMPD/client.js" "http://$PEER_IP:8080/page.bin" "$TMPD/cli.bin") ||
    die "node client on the stack failed: $out"
[ "$out" = done ] || die "node client: $out"
same_file "$TMPD/www/page.bin" "$TMPD/cli.bin"
log "node: server and client on the stack, 5 MB each way intact"
