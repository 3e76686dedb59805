#!/usr/bin/env bash
# Runtime smoke test over a real link: two network namespaces joined by veth.
#   ns "k": the kernel's TCP, veth address 198.18.0.1/24, socat servers
#   ns "s": the stack (build/tools/rt_smoke), TCPSM_ADDR=198.18.0.10/24 on a
#           veth that has NO kernel address
# Checks: ARP + ICMP echo from the kernel peer, a 10 MB echo round trip with
# checksum (stack client), a kernel client against a stack server (sha256),
# ECONNREFUSED / recv timeout / EINTR, the pcap readable by tshark, the trace,
# fork, SO_LINGER, the exit path, and retransmission timers under 3% loss.
# Needs root. Usage: [RT_SMOKE_BIN=path] tests/tools/rt_smoke.sh [BYTES]
set -euo pipefail
cd "$(dirname "$0")/../.."
BYTES=${1:-10000000}
SMOKE=${RT_SMOKE_BIN:-build/tools/rt_smoke}   # e.g. a sanitizer build
[ -x "$SMOKE" ] || { echo "rt_smoke: build it first (make tools)" >&2; exit 2; }

ID=$$
NK=tcpsm-rtk-$ID; NS=tcpsm-rts-$ID
VK=rtk$ID; VS=rts$ID
TMP=$(mktemp -d /tmp/tcpsm-rt-smoke.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  ip netns del "$NK" 2>/dev/null || true
  ip netns del "$NS" 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT INT TERM
fail() { echo "FAIL $*"; exit 1; }

ip netns add "$NK"; ip netns add "$NS"
ip link add "$VK" netns "$NK" type veth peer name "$VS" netns "$NS"
ip -n "$NK" addr add 198.18.0.1/24 dev "$VK"
ip -n "$NK" link set "$VK" up; ip -n "$NK" link set lo up
ip -n "$NS" link set "$VS" up; ip -n "$NS" link set lo up

inns() { ip netns exec "$NS" env TCPSM_IF="$VS" TCPSM_ADDR=198.18.0.10/24 "$@"; }
wait_port() {   # wait (bounded) until a TCP port listens in ns k
  for _ in $(seq 1 50); do
    ip netns exec "$NK" ss -ltnH "sport = :$1" | grep -q . && return 0; sleep 0.1
  done; fail "server on port $1 did not start"
}

# 1. The link: ARP and ICMP echo answered by the stack (the stack runs only while held up).
inns "$SMOKE" hold 4 >"$TMP/hold.out" 2>&1 & PIDS+=($!)
for _ in $(seq 1 50); do grep -q '^ok up' "$TMP/hold.out" && break; sleep 0.1; done
if command -v ping >/dev/null; then
  ip netns exec "$NK" ping -c 2 -W 1 -i 0.3 198.18.0.10 >"$TMP/ping.out" 2>&1 \
    && echo "ok ping (ICMP echo + ARP)" || { cat "$TMP/ping.out"; fail "ping 198.18.0.10"; }
else
  # No ping: a kernel TCP connect proves ARP; the port is closed, so a RST (refused) is success.
  r=$(ip netns exec "$NK" timeout 3 socat -u /dev/null TCP:198.18.0.10:9,connect-timeout=2 2>&1 || true)
  echo "$r" | grep -q "Connection refused" && echo "ok ARP + TCP RST from the stack" \
    || fail "no answer from 198.18.0.10: $r"
fi
ip netns exec "$NK" ip neigh show 198.18.0.10 | grep -q "02:54:c6:12:00:0a" \
  && echo "ok ARP: 198.18.0.10 is at 02:54:c6:12:00:0a" || fail "ARP entry for 198.18.0.10"
wait "${PIDS[-1]}" || fail "rt_smoke hold: $(cat "$TMP/hold.out")"

# 2. Stack client, kernel echo server: BYTES round trip with checksum, pcap + trace.
# A threaded echo server (socat PIPE can deadlock on itself with a full-duplex stream:
# it blocks writing into its own full pipe while no longer reading the socket).
ip netns exec "$NK" python3 -c '
import socket, socketserver
class H(socketserver.BaseRequestHandler):
    def handle(self):
        while True:
            d = self.request.recv(262144)
            if not d:
                break
            self.request.sendall(d)
class S(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 128
S(("198.18.0.1", 7007), H).serve_forever()
' >/dev/null 2>&1 & PIDS+=($!)
wait_port 7007
inns TCPSM_PCAP="$TMP/echo.pcap" TCPSM_TRACE="$TMP/echo.trace" \
  timeout 120 "$SMOKE" echo 198.18.0.1 7007 "$BYTES" | tee "$TMP/echo.out"
grep -q "^ok echo $BYTES bytes" "$TMP/echo.out" || fail "echo"
grep -q "SYN-SENT -> ESTABLISHED" "$TMP/echo.trace" || { cat "$TMP/echo.trace"; fail "trace handshake"; }
echo "ok trace:"; sed 's/^/    /' "$TMP/echo.trace"
if command -v tshark >/dev/null; then
  n=$(tshark -r "$TMP/echo.pcap" 2>"$TMP/tshark.err" | wc -l)
  # tshark warns about running as root; anything else is a complaint about the file.
  grep -v "Running as user" "$TMP/tshark.err" | grep -q . && { cat "$TMP/tshark.err"; fail "tshark complained"; }
  [ "$n" -gt 100 ] || fail "pcap has only $n frames"
  echo "ok pcap: tshark reads $n frames"
fi

# 3. Kernel client, stack server: accept path, data echoed back, sha256 compared.
head -c 3000000 /dev/urandom >"$TMP/in.bin"
inns timeout 60 "$SMOKE" serve 8080 >"$TMP/serve.out" 2>&1 & PIDS+=($!)
for _ in $(seq 1 50); do grep -q '^ok listening' "$TMP/serve.out" && break; sleep 0.1; done
ip netns exec "$NK" timeout 60 socat -t 5 - TCP:198.18.0.10:8080 <"$TMP/in.bin" >"$TMP/out.bin"
wait "${PIDS[-1]}" || { cat "$TMP/serve.out"; fail "rt_smoke serve"; }
cat "$TMP/serve.out"
[ "$(sha256sum <"$TMP/in.bin")" = "$(sha256sum <"$TMP/out.bin")" ] \
  && echo "ok stack server echo sha256" || fail "stack server echo: sha256 differs"

# 4. Errors and waits: refused port, recv timeout, EINTR, non-blocking connect.
ip netns exec "$NK" socat TCP-LISTEN:7008,reuseaddr,fork SYSTEM:'sleep 10' >/dev/null 2>&1 & PIDS+=($!)
wait_port 7008
inns timeout 60 "$SMOKE" errors 198.18.0.1 7008 7009 | tee "$TMP/err.out"
grep -q "^ok shutdown twice" "$TMP/err.out" || fail "errors"

# 4b. Sixteen threads, one connection each, echoing at once: lock and wake-up contention.
inns timeout 60 "$SMOKE" parallel 198.18.0.1 7007 16 1000000 | tee "$TMP/par.out"
grep -q "^ok parallel 16 connections" "$TMP/par.out" || fail "parallel"

# 5. fork (the child echoes through the inherited socket, parent's connection intact) and SO_LINGER.
inns timeout 30 "$SMOKE" fork 198.18.0.1 7007 | tee "$TMP/fork.out"
grep -q "^ok fork child: echoed" "$TMP/fork.out" && grep -q "^ok fork parent connection intact" "$TMP/fork.out" || fail "fork"
inns timeout 30 "$SMOKE" linger 198.18.0.1 7007 7008 | tee "$TMP/linger.out"
grep -q "^ok linger close gave up" "$TMP/linger.out" || fail "linger"

# 6. Exit path: queued data is delivered and the connection closed with FIN.
ip netns exec "$NK" timeout 30 socat -u TCP-LISTEN:7010,reuseaddr CREATE:"$TMP/exit.bin" & PIDS+=($!)
wait_port 7010
inns timeout 30 "$SMOKE" send-exit 198.18.0.1 7010 2000000 | tee "$TMP/exit.out"
wait "${PIDS[-1]}" || fail "exit path: the kernel receiver did not see EOF"
[ "$(stat -c %s "$TMP/exit.bin")" = 2000000 ] && echo "ok exit path delivered 2000000 bytes" \
  || fail "exit path delivered $(stat -c %s "$TMP/exit.bin") bytes"

# 7. Timers under loss: 3% drop both ways (nftables), the echo still completes intact.
ip netns exec "$NK" nft -f - <<'NFT'
table inet rtsmoke {
  chain in { type filter hook input priority 0; ip saddr 198.18.0.10 numgen random mod 100 < 3 drop; }
  chain out { type filter hook output priority 0; ip daddr 198.18.0.10 numgen random mod 100 < 3 drop; }
}
NFT
inns TCPSM_LOG=info timeout 120 "$SMOKE" echo 198.18.0.1 7007 3000000 2>"$TMP/loss.err" | tee "$TMP/loss.out"
grep -q "^ok echo 3000000 bytes" "$TMP/loss.out" || { cat "$TMP/loss.err"; fail "echo under loss"; }
grep -o "retransmits [0-9]*" "$TMP/loss.err" | sed 's/^/ok under 3% loss: /'
ip netns exec "$NK" nft delete table inet rtsmoke

echo "rt_smoke: all passed"
