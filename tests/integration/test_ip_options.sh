#!/usr/bin/env bash
# IP-level socket options on stack sockets, as Linux applies and reads them back: a Python
# client on the stack sets IP_TOS 0x10 (ssh's IPTOS_LOWDELAY) and IP_TTL 33 on an IPv4 socket,
# IPV6_TCLASS 0x28 and IPV6_UNICAST_HOPS 17 on an IPv6 one, reads them back (and the defaults
# on fresh sockets: TOS 0, TTL 64, hop limit 64, IP_MTU_DISCOVER "want"), connects to a kernel
# echo server in the peer, reads IP_MTU / IPV6_MTU (1500) and sends 64 KiB that come back
# intact. The stack's capture (--pcap, read by tshark) shows every data packet of each
# connection with those TOS/TTL and traffic class/hop limit values.
# timeout: 90
set -euo pipefail
. "$(dirname "$0")/../lib/netns.sh"
need_cmd python3 tshark ethtool
netns_setup v6
# Debian's python3 itself on the stack, not a wrapper script (a pyenv shim is bash: it would
# run under the library, and under SAN=1 its own leaks would be reported)
PY3=/usr/bin/python3
[ -x "$PY3" ] || PY3=$(command -v python3)

cat >"$TMPD/echo.py" <<'PY'
import socket, sys, threading
def serve(fam, addr):
    l = socket.socket(fam, socket.SOCK_STREAM)
    l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if fam == socket.AF_INET6:
        l.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    l.bind((addr, 7000)); l.listen(4)
    while True:
        c, _ = l.accept()
        while True:
            b = c.recv(65536)
            if not b: break
            c.sendall(b)
        c.close()
threading.Thread(target=serve, args=(socket.AF_INET, sys.argv[1]), daemon=True).start()
serve(socket.AF_INET6, sys.argv[2])
PY
bg_peer "$TMPD/echo.log" python3 "$TMPD/echo.py" "$PEER_IP" "$PEER_IP6"
wait_listen "$NS_P" 7000

cat >"$TMPD/client.py" <<'PY'
import os, socket, sys
peer4, peer6 = sys.argv[1], sys.argv[2]
IP_MTU = getattr(socket, "IP_MTU", 14)
IPV6_MTU = getattr(socket, "IPV6_MTU", 24)
IP_MTU_DISCOVER = getattr(socket, "IP_MTU_DISCOVER", 10)
def check(what, got, want):
    if got != want:
        sys.exit(f"{what}: got {got}, want {want}")
    print(f"ok: {what} = {got}")
def echo(s):
    data = os.urandom(65536)
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    got = b""
    while True:
        b = s.recv(65536)
        if not b: break
        got += b
    check("echoed bytes intact", got == data, True)
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
check("IP_TOS default", s.getsockopt(socket.IPPROTO_IP, socket.IP_TOS), 0)
check("IP_TTL default", s.getsockopt(socket.IPPROTO_IP, socket.IP_TTL), 64)
check("IP_MTU_DISCOVER default", s.getsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER), 1)
s.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, 0x10)
s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 33)
s.connect((peer4, 7000))
check("IP_TOS", s.getsockopt(socket.IPPROTO_IP, socket.IP_TOS), 0x10)
check("IP_TTL", s.getsockopt(socket.IPPROTO_IP, socket.IP_TTL), 33)
check("IP_MTU", s.getsockopt(socket.IPPROTO_IP, IP_MTU), 1500)
echo(s)
s.close()
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
check("IPV6_TCLASS default", s.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_TCLASS), 0)
check("IPV6_UNICAST_HOPS default", s.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS), 64)
check("IPV6_V6ONLY default", s.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY), 0)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_TCLASS, 0x28)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 17)
s.connect((peer6, 7000))
check("IPV6_TCLASS", s.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_TCLASS), 0x28)
check("IPV6_UNICAST_HOPS", s.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS), 17)
check("IPV6_MTU", s.getsockopt(socket.IPPROTO_IPV6, IPV6_MTU), 1500)
check("SO_DOMAIN", s.getsockopt(socket.SOL_SOCKET, socket.SO_DOMAIN), socket.AF_INET6)
echo(s)
s.close()
PY
STACK_OPTS=(--pcap "$TMPD/cap.pcap")
on_stack "$PY3" "$TMPD/client.py" "$PEER_IP" "$PEER_IP6" || die "socket options"
stack_mode || exit 0

# Every data-carrying packet the stack sent on each connection carries the socket's values.
v4=$(tshark -r "$TMPD/cap.pcap" -Y "ip.src == $STACK_IP && tcp.dstport == 7000 && tcp.len > 0" \
     -T fields -e ip.dsfield -e ip.ttl 2>/dev/null | sort | uniq -c)
v6=$(tshark -r "$TMPD/cap.pcap" -Y "ipv6.src == $STACK_IP6 && tcp.dstport == 7000 && tcp.len > 0" \
     -T fields -e ipv6.tclass -e ipv6.hlim 2>/dev/null | sort | uniq -c)
log "IPv4 data packets (count, TOS, TTL): $v4"
log "IPv6 data packets (count, traffic class, hop limit): $v6"
[ "$(echo "$v4" | wc -l)" = 1 ] && echo "$v4" | grep -Eq ' 0x0*10[[:space:]]+33$' || die "IPv4 TOS/TTL not applied"
[ "$(echo "$v6" | wc -l)" = 1 ] && echo "$v6" | grep -Eq ' 0x0*28[[:space:]]+17$' || die "IPv6 traffic class/hop limit not applied"
