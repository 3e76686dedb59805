#!/usr/bin/env bash
# Path MTU, both ways of learning it, with nftables and a kernel router in the namespaces:
# 1. ICMP (RFC 1191): the peer namespace routes to a third namespace (198.18.1.0/24) over a
#    link with MTU 1280; the stack's 1500-byte DF packets get "fragmentation needed" from the
#    kernel router. A client on the stack (python3) uploads 1 MiB twice: both copies arrive
#    byte-exact, the first connection's IP_MTU falls to 1280, and the second connection starts
#    at 1280 before it sends anything (the per-destination table).
# 2. A black hole (RFC 4821 / 8899): nftables in the peer namespace silently drops every
#    packet from the stack longer than 1200 bytes (no ICMP). The upload must still complete
#    byte-exact (the MSS falls after repeated RTOs) instead of stalling until the retry limit,
#    and (stack mode) the probes upward (RFC 4821 7.3) find the path's 1200 bytes again: the
#    connection's IP_MTU ends above the black hole's 1064 and at most 1200.
# In kernel mode the stack side's kernel gets net.ipv4.tcp_mtu_probing=1 for part 2.
# timeout: 150
set -euo pipefail
. "$(dirname "$0")/../lib/netns.sh"
need_cmd python3 nft ethtool
netns_setup

NS_R="${_NETNS_TAG}r" IF_Q="${_NETNS_TAG}q" IF_R="${_NETNS_TAG}r"
ip netns add "$NS_R" || die "ip netns add $NS_R"
at_cleanup "ip netns del $NS_R"
_netns_quiet "$NS_R"
ip link add "$IF_Q" netns "$NS_P" type veth peer name "$IF_R" netns "$NS_R" || die "veth"
_netns_wire_like "$NS_P" "$IF_Q"
_netns_wire_like "$NS_R" "$IF_R"
ip -n "$NS_P" link set "$IF_Q" mtu 1280 up
# the far end keeps 1500: its MSS option says 1460, only the router knows better
ip -n "$NS_R" link set "$IF_R" up
ip -n "$NS_P" addr add 198.18.1.1/24 dev "$IF_Q"
ip -n "$NS_R" addr add 198.18.1.2/24 dev "$IF_R"
ip -n "$NS_R" route add default via 198.18.1.1
ip netns exec "$NS_P" sysctl -qw net.ipv4.ip_forward=1
if stack_mode; then
    STACK_OPTS=(--gw "$PEER_IP")
else
    ip -n "$NS_S" route add 198.18.1.0/24 via "$PEER_IP"
    ip netns exec "$NS_S" sysctl -qw net.ipv4.tcp_mtu_probing=1
fi

mkfile "$TMPD/data" $((1 << 20))
want=$(sha "$TMPD/data")
cat >"$TMPD/sink.py" <<'PY'
import hashlib, socket, sys
# accept one connection per port, read to EOF, print the sha256, close
ports = [int(p) for p in sys.argv[2:]]
ls = []
for p in ports:
    l = socket.socket()
    l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind((sys.argv[1], p))
    l.listen(1)
    ls.append(l)
print("ready", flush=True)
for p, l in zip(ports, ls):
    c, _ = l.accept()
    c.settimeout(90)
    h, n = hashlib.sha256(), 0
    while True:
        b = c.recv(65536)
        if not b:
            break
        h.update(b)
        n += len(b)
    print("port %d bytes %d sha %s" % (p, n, h.hexdigest()), flush=True)
    c.close()
PY
cat >"$TMPD/upload.py" <<'PY'
import socket, sys
IP_MTU = 14
host, port, n, path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
data = open(path, "rb").read()
for i in range(n):
    s = socket.create_connection((host, port + i), timeout=90)
    print("conn %d mtu-at-connect %d" % (i, s.getsockopt(socket.IPPROTO_IP, IP_MTU)), flush=True)
    s.sendall(data)
    print("conn %d mtu-after %d" % (i, s.getsockopt(socket.IPPROTO_IP, IP_MTU)), flush=True)
    ti = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 248)
    if len(ti) >= 242:
        print("conn %d total-rto %d" % (i, int.from_bytes(ti[240:242], "little")), flush=True)
    s.shutdown(socket.SHUT_WR)
    s.recv(1)
    s.close()
PY

# 1. ICMP from the router
bg_ns "$NS_R" "$TMPD/sink1.out" python3 "$TMPD/sink.py" 198.18.1.2 7401 7402
wait_log "$TMPD/sink1.out" '^ready'
log "upload 1 MiB twice to 198.18.1.2 behind a 1280-byte link"
on_stack timeout 100 python3 "$TMPD/upload.py" 198.18.1.2 7401 2 "$TMPD/data" >"$TMPD/up1.out" 2>&1 ||
    { cat "$TMPD/up1.out" >&2; die "the upload behind the 1280-byte link failed"; }
cat "$TMPD/up1.out" >&2
bg_wait "$BG_PID" 20 || die "the sink did not finish"
cat "$TMPD/sink1.out" >&2
[ "$(grep -c "bytes $((1 << 20)) sha $want" "$TMPD/sink1.out")" -eq 2 ] || die "the data behind the router differ"
grep -q '^conn 0 mtu-after 1280$' "$TMPD/up1.out" || die "the first connection did not learn MTU 1280"
grep -q '^conn 1 mtu-at-connect 1280$' "$TMPD/up1.out" ||
    die "the second connection did not start with the destination's MTU"

# 2. a black hole for packets over 1200 bytes
ip netns exec "$NS_P" nft -f - <<EOF2
table inet tcpsm_pmtu {
    chain pre {
        type filter hook prerouting priority -300; policy accept;
        ip saddr $STACK_IP ip length > 1200 counter drop
    }
}
EOF2
bg_peer "$TMPD/sink2.out" python3 "$TMPD/sink.py" "$PEER_IP" 7411
wait_log "$TMPD/sink2.out" '^ready'
log "upload 1 MiB through a black hole for packets over 1200 bytes"
on_stack timeout 100 python3 "$TMPD/upload.py" "$PEER_IP" 7411 1 "$TMPD/data" >"$TMPD/up2.out" 2>&1 ||
    { cat "$TMPD/up2.out" >&2; die "the upload through the black hole stalled or failed"; }
cat "$TMPD/up2.out" >&2
bg_wait "$BG_PID" 20 || die "the sink did not finish"
cat "$TMPD/sink2.out" >&2
grep -q "bytes $((1 << 20)) sha $want" "$TMPD/sink2.out" || die "the data through the black hole differ"
drops=$(ip netns exec "$NS_P" nft list table inet tcpsm_pmtu | grep -o 'packets [0-9]*' | awk '{ print $2 }')
log "the black hole dropped ${drops:-0} packets"
[ "${drops:-0}" -gt 0 ] || die "the black hole dropped nothing: the test tested nothing"
if stack_mode; then
    after=$(sed -n 's/^conn 0 mtu-after \([0-9]*\)$/\1/p' "$TMPD/up2.out")
    [ "${after:-0}" -gt 1064 ] && [ "${after:-0}" -le 1200 ] ||
        die "after the black hole the path MTU is ${after:-?}, not probed back up to about 1200"
    # 3. the same hole with probing from the start (TCPSM_MTU_PROBING=2): found without an RTO
    bg_peer "$TMPD/sink3.out" python3 "$TMPD/sink.py" "$PEER_IP" 7421
    wait_log "$TMPD/sink3.out" '^ready'
    log "upload 1 MiB through the black hole with TCPSM_MTU_PROBING=2"
    TCPSM_MTU_PROBING=2 on_stack timeout 100 python3 "$TMPD/upload.py" "$PEER_IP" 7421 1 "$TMPD/data" \
        >"$TMPD/up3.out" 2>&1 || { cat "$TMPD/up3.out" >&2; die "the upload with probing from the start failed"; }
    cat "$TMPD/up3.out" >&2
    bg_wait "$BG_PID" 20 || die "the sink did not finish"
    grep -q "bytes $((1 << 20)) sha $want" "$TMPD/sink3.out" || die "the data (probing from the start) differ"
    after=$(sed -n 's/^conn 0 mtu-after \([0-9]*\)$/\1/p' "$TMPD/up3.out")
    [ "${after:-0}" -gt 1064 ] && [ "${after:-0}" -le 1200 ] ||
        die "probing from the start ended at path MTU ${after:-?}, not about 1200"
    grep -q '^conn 0 total-rto 0$' "$TMPD/up3.out" || die "probing from the start still needed RTOs"
fi
log "ok"
