#!/usr/bin/env bash
# curl through the stack uploads to a kernel nginx (WebDAV PUT) in the peer: 1 MB and 32 MB
# with PUT, and 1 MB as a POST body to a kernel socat sink. The stored files must have the
# uploaded files' sizes and sha256.
set -euo pipefail
. "$(dirname "$0")/../lib/netns.sh"
. "$(dirname "$0")/../lib/http.sh"
need_cmd curl nginx socat ethtool
netns_setup

mkdir -p "$TMPD/up" "$TMPD/store"
chmod 777 "$TMPD/store"
mkfile "$TMPD/up/1m.bin" $((1 << 20))
mkfile "$TMPD/up/32m.bin" $((32 << 20))
nginx_peer "$TMPD/store" \
    "dav_methods PUT; create_full_put_path on; client_max_body_size 256m; client_body_buffer_size 1m;"

for f in 1m.bin 32m.bin; do
    log "curl -T $f http://$PEER_IP:8080/$f"
    code=$(on_stack curl -sS --max-time 60 -o /dev/null -w '%{http_code}' -T "$TMPD/up/$f" \
        "http://$PEER_IP:8080/$f")
    [ "$code" = 201 ] || [ "$code" = 204 ] || die "PUT $f: HTTP $code"
    same_file "$TMPD/up/$f" "$TMPD/store/$f"
done

# POST: socat stores everything the client sends (request head + body) until the client
# half-closes or 3 s pass without data; the body is the last 1 MiB of what it stored.
bg_peer "$TMPD/socat.log" socat -u -T 3 TCP-LISTEN:9300,reuseaddr "OPEN:$TMPD/post.raw,creat,trunc"
wait_listen "$NS_P" 9300
log "curl --data-binary @1m.bin http://$PEER_IP:9300/"
on_stack curl -sS --max-time 20 -H 'Expect:' --data-binary "@$TMPD/up/1m.bin" \
    "http://$PEER_IP:9300/post" -o /dev/null 2>"$TMPD/curl-post.err" || true
bg_wait $BG_PID 15 || die "socat sink did not finish"
tail -c $((1 << 20)) "$TMPD/post.raw" >"$TMPD/post.body"
grep -q '^Content-Length: 1048576' "$TMPD/post.raw" || die "POST request head missing or wrong"
same_file "$TMPD/up/1m.bin" "$TMPD/post.body"
