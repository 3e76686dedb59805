#!/usr/bin/env bash
# A Node.js `http` server on the stack serving files with fs.createReadStream(file).pipe(res)
# (libuv: sockets closed with syscall(SYS_close), files opened right after on the same numbers):
# 10 parallel curls per file, then `ab -c 8 -n 400`, from kernel clients in the peer. Every body
# is byte-exact (sha256 of each curl body; ab: every response the full length, no failure) and
# the server logs no error (a stale fd-table entry made a file read answer EAGAIN).
# timeout: 150
set -euo pipefail
. "$(dirname "$0")/../lib/netns.sh"
need_cmd node curl ab ethtool
netns_setup
port=8090

mkdir -p "$TMPD/www"
mkfile "$TMPD/www/big.bin" $((3 << 20))
mkfile "$TMPD/www/mid.bin" $((200 << 10))
head -c 6000 /dev/urandom | base64 -w 76 >"$TMPD/www/small.txt"
chmod 644 "$TMPD/www"/*
cat >"$TMPD/server.js" <<'JS'
'use strict';
const http = require('http'), fs = require('fs'), path = require('path');
const root = process.argv[2], port = +process.argv[3];
let served = 0;
const srv = http.createServer((req, res) => {
  const f = path.join(root, path.basename(req.url));
  fs.stat(f, (err, st) => {
    if (err) { res.writeHead(404); res.end(); return; }
    res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': st.size });
    const rs = fs.createReadStream(f);
    rs.on('error', (e) => { console.error('ERROR read ' + f + ': ' + e.message); res.destroy(); });
    rs.on('end', () => { served++; });
    rs.pipe(res);
  });
});
srv.on('clientError', (e, sock) => { if (e.code !== 'ECONNRESET') console.error('ERROR client: ' + e.message); sock.destroy(); });
process.on('SIGTERM', () => { console.log('served ' + served); process.exit(0); });
srv.listen(port, '0.0.0.0', () => console.log('listening ' + port));
JS
bg_stack "$TMPD/server.log" node "$TMPD/server.js" "$TMPD/www" "$port"
srv=$BG_PID
wait_log "$TMPD/server.log" '^listening'

for round in 1 2 3; do
    for f in big.bin mid.bin small.txt; do
        log "round $round: 10 parallel curls of $f"
        pids=()
        for i in $(seq 1 10); do
            on_peer curl -sS --fail --max-time 20 -o "$TMPD/got-$f-$i" "http://$STACK_IP:$port/$f" &
            pids+=($!)
        done
        bad=0
        for p in "${pids[@]}"; do wait "$p" || bad=$((bad + 1)); done
        [ "$bad" -eq 0 ] || { cat "$TMPD/server.log" >&2; die "$bad curl(s) of $f failed"; }
        want=$(sha "$TMPD/www/$f")
        for i in $(seq 1 10); do
            [ "$(sha "$TMPD/got-$f-$i")" = "$want" ] ||
                { cat "$TMPD/server.log" >&2; die "curl $i of $f: body differs ($(fsize "$TMPD/got-$f-$i") of $(fsize "$TMPD/www/$f") bytes)"; }
        done
        rm -f "$TMPD"/got-*
    done
done

for f in mid.bin small.txt; do
    len=$(fsize "$TMPD/www/$f")
    log "ab -c 8 -n 400 http://$STACK_IP:$port/$f"
    on_peer timeout 90 ab -q -n 400 -c 8 -s 20 "http://$STACK_IP:$port/$f" >"$TMPD/ab.out" 2>&1 ||
        { cat "$TMPD/ab.out" "$TMPD/server.log" >&2; die "ab ($f) failed"; }
    grep -E 'Complete requests|Failed requests|Non-2xx|Document Length|HTML transferred' "$TMPD/ab.out" >&2 || true
    grep -Eq '^Complete requests: +400$' "$TMPD/ab.out" || die "ab ($f): not all 400 requests completed"
    grep -Eq '^Failed requests: +0$' "$TMPD/ab.out" || { cat "$TMPD/server.log" >&2; die "ab ($f): failed requests"; }
    grep -q 'Non-2xx' "$TMPD/ab.out" && die "ab ($f): non-2xx responses"
    grep -Eq "^Document Length: +$len bytes" "$TMPD/ab.out" || die "ab ($f): wrong document length"
    grep -Eq "^HTML transferred: +$((400 * len)) bytes" "$TMPD/ab.out" || die "ab ($f): bytes missing"
done

if grep -q 'ERROR' "$TMPD/server.log"; then
    cat "$TMPD/server.log" >&2
    die "the server logged errors"
fi
kill -0 "$srv" 2>/dev/null || die "node on the stack exited"
log "ok"
