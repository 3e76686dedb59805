# tests/lib/impair.sh — packet loss and drops with nftables in a namespace (this kernel has no
# netem). Source after netns.sh. All rules live in one table, "tcpsm", removed with the
# namespace.

_nft() { ip netns exec "$1" nft "${@:2}"; }

_nft_table() {
    local ns=$1
    _nft "$ns" list table inet tcpsm >/dev/null 2>&1 && return 0
    _nft "$ns" -f - <<NFT || die "nft table in $ns"
table inet tcpsm {
    chain in  { type filter hook input  priority -10; policy accept; }
    chain out { type filter hook output priority -10; policy accept; }
}
NFT
}

# Random loss of PCT % of the packets in each direction (input and output hooks) in NS.
# The output hook sees the kernel's TCP segments before GSO splits them into frames: with
# gso_max_segs 1 each one is a single frame, so the loss is per frame, not per 64 KB burst.
impair_loss() {
    local ns=$1 pct=$2 dev
    for dev in $(ip -n "$ns" -o link show | awk -F': ' '{ print $2 }' | cut -d@ -f1 | grep -v '^lo$'); do
        ip -n "$ns" link set dev "$dev" gso_max_segs 1 || die "gso_max_segs on $dev"
    done
    _nft_table "$ns"
    _nft "$ns" add rule inet tcpsm in meta l4proto tcp numgen random mod 100 '<' "$pct" counter drop
    _nft "$ns" add rule inet tcpsm out meta l4proto tcp numgen random mod 100 '<' "$pct" counter drop
}

# After impair_loss: the packets its rules dropped in NS, both directions, logged; a loss test
# whose loss never happened tested nothing, so none dies. Sets IMPAIR_DROPS.
impair_loss_dropped() {
    local ns=$1
    IMPAIR_DROPS=$(_nft "$ns" list table inet tcpsm | grep -F 'numgen random' |
        grep -o 'packets [0-9]*' | awk '{ s += $2 } END { print s + 0 }')
    [ "$IMPAIR_DROPS" -gt 0 ] || die "no packet was dropped"
    log "$IMPAIR_DROPS packets dropped by the loss rules in $ns"
}

# The host vanishes: every packet in and out of NS is dropped from now on.
impair_drop_all() {
    local ns=$1
    _nft_table "$ns"
    _nft "$ns" insert rule inet tcpsm in counter drop comment '"vanish-in"'
    _nft "$ns" insert rule inet tcpsm out counter drop comment '"vanish-out"'
}

# Drop SYNs to PORT arriving in NS, counting them (a connect that never gets an answer).
impair_drop_syn() {
    local ns=$1 port=$2
    _nft_table "$ns"
    _nft "$ns" add rule inet tcpsm in tcp dport "$port" tcp flags '&' '(syn|ack)' == syn counter drop
}

# Packets counted by the first counter rule matching WORD in the table (e.g. "dport 9001").
nft_count() {
    local ns=$1 word=$2
    { _nft "$ns" list table inet tcpsm | grep -F -- "$word" | grep -o 'packets [0-9]*' | head -1 |
        cut -d' ' -f2; } || true
}

# Sum of one impair_bridge counter over both directions, from its exit report in LOG.
bridge_sum() {
    grep -o " $2=[0-9]*" "$1" | cut -d= -f2 | awk '{ s += $1 } END { print s + 0 }'
}

# Start the impair_bridge between IF_BS and IF_BP in NS_B (netns_setup bridge); extra
# arguments are its options. Sets BRIDGE_PID and BRIDGE_LOG.
bridge_start() {
    local tool
    tool=$(need_tool impair_bridge)
    BRIDGE_LOG=$TMPD/bridge.log
    bg_ns "$NS_B" "$BRIDGE_LOG" "$tool" "$@" "$IF_BS" "$IF_BP"
    BRIDGE_PID=$BG_PID
    wait_log "$BRIDGE_LOG" '^impair_bridge:' 5
}

# Retransmissions of bytes that first left inside a super-segment (a TCP frame longer than
# MSS bytes of payload), from SRC, in the capture PCAP: prints their count (needs tshark).
partial_retrans() {
    local pcap=$1 src=$2 mss=${3:-1460}
    tshark -n -r "$pcap" -Y "ip.src==$src && tcp.len>0" -T fields -e tcp.seq -e tcp.len \
        2>/dev/null >"$TMPD/segs.txt" || true
    python3 - "$TMPD/segs.txt" "$mss" <<'PY'
import sys
supers, top, part = [], 0, 0
mss = int(sys.argv[2])
for line in open(sys.argv[1]):
    f = line.split()
    if len(f) < 2:
        continue
    seq, n = int(f[0]), int(f[1])
    if seq + n <= top and any(s <= seq and seq + n <= e for s, e in supers):
        part += 1
    if n > mss:
        supers.append((seq, seq + n))
    top = max(top, seq + n)
print(part)
PY
}
