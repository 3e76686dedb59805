#!/usr/bin/env bash
# make demo: curl on the tcpsm stack fetches a page from a kernel HTTP server.
#
# Two network namespaces joined by a veth pair: the peer runs nginx on the kernel's TCP at
# 198.18.0.1; the stack side has no kernel address: curl runs through build/tcpsm, whose
# stack is 198.18.0.10 with its own MAC. Prints the page's sha256 on both ends, the trace of
# the connection (handshake and close), its ladder diagram drawn from the stack's pcap
# (`tcpsm ladder`: handshake, data, four-way close, both sides' states) and a summary. Everything is torn down on exit,
# failure or Ctrl-C. As root, installs the Debian packages it needs that are missing.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

[ "$(id -u)" -eq 0 ] || { echo "demo: needs root (it creates network namespaces)" >&2; exit 1; }

need=()
for p in iproute2:ip ethtool:ethtool curl:curl nginx-light:nginx; do
    command -v "${p#*:}" >/dev/null || need+=("${p%%:*}")
done
if [ ${#need[@]} -gt 0 ]; then
    echo "demo: installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/tmp/tcpsm-demo-apt.log 2>&1 || {
        apt-get update -qq >>/tmp/tcpsm-demo-apt.log 2>&1
        apt-get install -y -qq --no-install-recommends "${need[@]}" >>/tmp/tcpsm-demo-apt.log 2>&1 ||
            { echo "demo: apt-get failed, see /tmp/tcpsm-demo-apt.log" >&2; exit 1; }
    }
fi
if [ ! -x build/tcpsm ] || [ ! -f build/libtcpsm.so ]; then
    make --no-print-directory all >/dev/null || { echo "demo: build failed (run make)" >&2; exit 1; }
fi

TCPSM_TEST_MODE=stack
. tests/lib/netns.sh
. tests/lib/http.sh
netns_setup

# The page: a small HTML document with some random content, so its checksum is new each run.
mkdir -p "$TMPD/www"
{
    echo "<!doctype html><title>tcpsm demo</title>"
    echo "<p>Served by nginx on the kernel's TCP in namespace $NS_P, fetched by curl on tcpsm.</p>"
    echo "<pre>"
    head -c 48000 /dev/urandom | base64 -w 76
    echo "</pre>"
} >"$TMPD/www/index.html"
chmod 644 "$TMPD/www/index.html"
nginx_conf "$TMPD/ngx" 8080 "$TMPD/www"
nginx_start bg_peer "$TMPD/ngx"
wait_listen "$NS_P" 8080

url="http://$PEER_IP:8080/index.html"
cat <<EOF
tcpsm demo
  peer  : namespace $NS_P, $IF_P $PEER_IP/$PREFIX — nginx on the kernel's TCP
  stack : namespace $NS_S, $IF_S (no kernel address) — curl on tcpsm as $STACK_IP/$PREFIX

\$ build/tcpsm --if $IF_S --addr $STACK_IP/$PREFIX --trace FILE --pcap conn.pcap -- curl -o page.html $url
EOF
STACK_OPTS=(--trace "$TMPD/trace.txt" --pcap "$TMPD/conn.pcap")
rc=0
w=$(on_stack curl -sS --max-time 20 -o "$TMPD/page.html" \
    -w '%{http_code} %{size_download} %{time_connect} %{time_total}' "$url") || rc=$?
if [ $rc -ne 0 ]; then
    echo "demo: curl on the stack failed (exit $rc)" >&2
    [ -s "$TMPD/trace.txt" ] && { echo "trace so far:" >&2; sed 's/^/  /' "$TMPD/trace.txt" >&2; }
    exit 1
fi
read -r code bytes tconn ttotal <<<"$w"
served=$(sha "$TMPD/www/index.html")
got=$(sha "$TMPD/page.html")
echo "  HTTP $code, $bytes bytes; connected in ${tconn}s, done in ${ttotal}s"
echo "  served   sha256 $served"
echo "  received sha256 $got"
echo
echo "trace of the connection (TCPSM_TRACE):"
sed 's/^/  /' "$TMPD/trace.txt"
echo
echo "\$ build/tcpsm ladder --svg build/demo-ladder.svg conn.pcap"
mkdir -p build
build/tcpsm ladder --width 44 --svg build/demo-ladder.svg "$TMPD/conn.pcap" | tee "$TMPD/ladder.txt" |
    sed 's/^/  /'
echo "  (the same as SVG: build/demo-ladder.svg)"
echo
hs=no cl=no
grep -q 'SYN-SENT -> ESTABLISHED' "$TMPD/trace.txt" && hs=yes
grep -Eq 'ESTABLISHED -> (FIN-WAIT-1|CLOSE-WAIT)' "$TMPD/trace.txt" && cl=yes
n=$(grep -c -- ' -> ' "$TMPD/trace.txt" || true)
lad=no
grep -q 'SYN-SENT *|-* SYN=1 seq=x -*>| SYN-RECEIVED' "$TMPD/ladder.txt" &&
    grep -q 'len=' "$TMPD/ladder.txt" && grep -q 'TIME-WAIT' "$TMPD/ladder.txt" &&
    grep -Eq '\| (CLOSED|LAST-ACK)' "$TMPD/ladder.txt" && lad=yes
echo "summary: $n state transitions; handshake (SYN, SYN+ACK, ACK): $hs; orderly close (FIN/ACK): $cl; ladder: $lad"
if [ "$served" = "$got" ] && [ "$hs" = yes ] && [ "$cl" = yes ] && [ "$lad" = yes ]; then
    echo "demo: OK — the page crossed the tcpsm stack intact"
else
    [ "$served" = "$got" ] || echo "demo: FAILED — the page differs" >&2
    [ "$hs" = yes ] || echo "demo: FAILED — no handshake in the trace" >&2
    [ "$cl" = yes ] || echo "demo: FAILED — no close in the trace" >&2
    [ "$lad" = yes ] || echo "demo: FAILED — the ladder lacks the handshake, data or close" >&2
    exit 1
fi
