#!/usr/bin/env bash
# Two programs started separately on one address (issue 6): nginx serves on the stack, then a
# curl started on its own with the same interface and address downloads from a kernel nginx in
# the peer while kernel clients download from the stack's nginx. Both programs run the one
# shared stack (the second joins it: its copy of the library is elsewhere in memory), each
# with its own link socket in the stack's fanout group; every transfer is byte-exact, both
# ways, several times over, and the shared region holds no address of the second program's
# images (its exit-time audit).
# timeout: 120
set -euo pipefail
. "$(dirname "$0")/../lib/netns.sh"
. "$(dirname "$0")/../lib/http.sh"
need_cmd curl nginx
netns_setup

mkdir -p "$TMPD/pwww" "$TMPD/swww"
mkfile "$TMPD/pwww/c.bin" $((16 << 20))
mkfile "$TMPD/swww/s.bin" $((16 << 20))
for i in 1 2 3 4 5; do mkfile "$TMPD/pwww/small$i.bin" $((i * 7000 + 13)); done
nginx_conf "$TMPD/pngx" 8080 "$TMPD/pwww"
nginx_start bg_peer "$TMPD/pngx"
wait_listen "$NS_P" 8080

STACK_OPTS=(--log info)
nginx_conf "$TMPD/sngx" 80 "$TMPD/swww"
nginx_start bg_stack "$TMPD/sngx"
srv=$BG_PID
wait_connect "$NS_P" "$STACK_IP" 80 20

log "the server's file to the peer while a second program on the stack downloads from it"
bg_peer "$TMPD/pc.log" curl -sS --fail --max-time 60 -o "$TMPD/got-s.bin" "http://$STACK_IP/s.bin"
pc=$BG_PID
# --log debug: as it leaves, the second program checks that no word of the shared region
# points into its own loaded images (code, constants, static data).
STACK_OPTS=(--log debug)
bg_stack "$TMPD/sc.log" curl -sS --fail --max-time 60 -o "$TMPD/got-c.bin" "http://$PEER_IP:8080/c.bin"
sc=$BG_PID
STACK_OPTS=(--log info)
r1=0 r2=0
bg_wait $pc 70 || r1=$?
bg_wait $sc 70 || r2=$?
[ $r1 -eq 0 ] || die "peer curl from the stack's nginx: exit $r1 $(cat "$TMPD/pc.log")"
[ $r2 -eq 0 ] || die "stack curl (second program): exit $r2 $(cat "$TMPD/sc.log")"
same_file "$TMPD/swww/s.bin" "$TMPD/got-s.bin"
same_file "$TMPD/pwww/c.bin" "$TMPD/got-c.bin"
if stack_mode; then
    grep -q "stack joined on" "$TMPD/sc.log" ||
        die "the second program did not join the server's stack: $(cat "$TMPD/sc.log")"
    grep -Eq "region audit: [1-9][0-9]* words in use, 0 hold" "$TMPD/sc.log" ||
        die "region audit: $(grep "region audit" "$TMPD/sc.log" || echo "no line")"
fi

log "sequential second programs (each joins and leaves while the server stays)"
for i in 1 2 3 4 5; do
    on_stack curl -sS --fail --max-time 20 -o "$TMPD/got-small$i.bin" \
        "http://$PEER_IP:8080/small$i.bin" 2>"$TMPD/small$i.log" ||
        die "small download $i failed: $(cat "$TMPD/small$i.log")"
    same_file "$TMPD/pwww/small$i.bin" "$TMPD/got-small$i.bin"
    on_peer curl -sS --fail --max-time 20 -o "$TMPD/got-s$i.bin" "http://$STACK_IP/s.bin" ||
        die "peer download $i from the stack's nginx failed"
    same_file "$TMPD/swww/s.bin" "$TMPD/got-s$i.bin"
done
kill -0 "$srv" 2>/dev/null || die "the stack's nginx exited"
log "ok: a server and separately started clients on one stack, every transfer byte-exact"
