# tests/lib/netns.sh — test hosts for the integration tests, the demo and the benches.
# Source it, then call netns_setup. Two network namespaces joined by a veth pair:
#
#   NS_S (stack side)  IF_S ====== IF_P  NS_P (peer: the kernel's TCP, 198.18.0.1/24)
#
# or, with `netns_setup bridge`, a middle namespace NS_B in which build/tools/impair_bridge
# forwards frames between IF_BS and IF_BP:
#
#   NS_S  IF_S ==== IF_BS  NS_B  IF_BP ==== IF_P  NS_P
#
# TCPSM_TEST_MODE selects who holds 198.18.0.10 on the stack side:
#   stack  (default) the program runs through build/tcpsm; IF_S has NO kernel address, the stack
#          answers ARP for 198.18.0.10 with its own MAC.
#   kernel the same scripts as a kernel-vs-kernel baseline: IF_S gets 198.18.0.10/24 as a kernel
#          address and programs run without the library. This validates the tests themselves.
# IF_S also gets 198.18.0.2/24 as a kernel address when asked (netns_setup ... kaddr), for
# kernel-vs-kernel comparisons in the same run (bench).
# `netns_setup v6` adds IPv6 from 2001:2::/48 (RFC 5180): the peer holds 2001:2::1/64 (nodad:
# no duplicate address detection delay on the kernel's side), the stack 2001:2::10/64 (the
# wrapper gets a second --addr; in kernel mode IF_S holds it, nodad), and the stack namespace's
# loopback has ::1 for the dual-stack listener tests.
#
# TCPSM_SAN=1 runs the sanitizer build instead (make SAN=1: build/san/tcpsm, which preloads the
# ASan+UBSan runtimes and build/san/libtcpsm.so, and the sanitized tools in build/san/tools).
# Every sanitizer report (ASan, LSan, UBSan; from the program on the stack or from a tool) is
# written to build/san/reports/<test>-<tag>/ and fails the test at cleanup. LSan suppressions
# for leaks of the third-party programs themselves are in tests/lsan.supp.
#
# Names are unique per run: "<tag><pid><rand>" for namespaces and interfaces (interface
# names must fit IFNAMSIZ). Everything created here is removed by netns_cleanup, installed as the
# EXIT/INT/TERM trap. Background processes are started in their own process group and killed
# by that group id at cleanup.

TCPSM_ROOT=${TCPSM_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
TCPSM_TEST_MODE=${TCPSM_TEST_MODE:-stack}
STACK_IP=198.18.0.10
PEER_IP=198.18.0.1
STACK_IP6=2001:2::10
PEER_IP6=2001:2::1
PREFIX6=64
NETNS_V6=0
KSTACK_IP=198.18.0.2      # optional kernel address on the stack side (kaddr)
KSTACK_IP6=2001:2::2      # and its IPv6 twin (kaddr v6)
PREFIX=24
TCPSM_SAN=${TCPSM_SAN:-0}
case $TCPSM_SAN in
1) TCPSM_BUILD=$TCPSM_ROOT/build/san ;;
tsan) TCPSM_BUILD=$TCPSM_ROOT/build/tsan ;;     # make tsan: ThreadSanitizer, reports fail the test
*) TCPSM_BUILD=$TCPSM_ROOT/build ;;
esac
SAN_REPORTS=

NS_S= NS_P= NS_B= IF_S= IF_P= IF_BS= IF_BP=
TMPD=
BG_PIDS=()
CLEANUP_HOOKS=()
_NETNS_TAG=
_NETNS_CLEANED=0

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }
skip() { log "SKIP: $*"; exit 77; }

stack_mode() { [ "$TCPSM_TEST_MODE" = stack ]; }

# Hooks run (last first) at cleanup, before the namespaces go: e.g. at_cleanup "nft ...".
at_cleanup() { CLEANUP_HOOKS+=("$1"); }

netns_cleanup() {
    local rc=$?
    [ "$_NETNS_CLEANED" = 1 ] && return "$rc"
    _NETNS_CLEANED=1
    trap - EXIT INT TERM
    local i pid san_failed=0
    for ((i = ${#CLEANUP_HOOKS[@]} - 1; i >= 0; i--)); do
        eval "${CLEANUP_HOOKS[i]}" >/dev/null 2>&1 || true
    done
    for pid in "${BG_PIDS[@]}"; do
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${BG_PIDS[@]}"; do
        for i in 1 2 3 4 5 6 7 8 9 10; do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    # Anything still inside our namespaces was started by this test (e.g. a double fork).
    local ns
    for ns in $NS_S $NS_B $NS_P; do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
        ip netns del "$ns" 2>/dev/null || true
    done
    # The stack's shared region (named after the namespace, interface and address) outlives
    # processes killed above; the last process to leave normally removes it.
    [ -n "$IF_S" ] && rm -f /dev/shm/tcpsm-*-"$IF_S"-* 2>/dev/null
    # LeakSanitizer in a child forked from a threaded parent lists the parent's threads as
    # "not suspended" (the child's registry still has them): a warning about the sanitizer's
    # own bookkeeping, not a finding. A report made only of such lines is dropped.
    if [ -n "$SAN_REPORTS" ]; then
        local rf
        for rf in "$SAN_REPORTS"/*; do
            [ -f "$rf" ] && ! grep -qv 'Running thread [0-9]* was not suspended' "$rf" && rm -f "$rf"
        done
    fi
    if [ -n "$SAN_REPORTS" ] && [ -n "$(ls -A "$SAN_REPORTS" 2>/dev/null)" ]; then
        local f
        for f in "$SAN_REPORTS"/*; do
            log "sanitizer report $f:"
            head -80 "$f" >&2
        done
        log "FAIL: sanitizer reports in $SAN_REPORTS"
        { [ "$rc" -eq 0 ] || [ "$rc" -eq 77 ]; } && rc=1
        san_failed=1
    elif [ -n "$SAN_REPORTS" ]; then
        rmdir "$SAN_REPORTS" 2>/dev/null || true     # nothing to keep
    fi
    if [ -n "$TMPD" ] && [ -d "$TMPD" ]; then
        if [ "${TCPSM_KEEP_TMP:-0}" = 1 ] || { [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ] && [ -n "${TCPSM_KEEP_FAILED:-}" ]; }; then
            log "kept $TMPD"
        else
            rm -rf "$TMPD"
        fi
    fi
    # From the EXIT trap only an exit changes the script's status.
    [ "$san_failed" = 1 ] && exit "$rc"
    return "$rc"
}

_netns_sig() { log "interrupted"; netns_cleanup; exit 130; }

# Turn off what a veth does and a wire does not: GSO/TSO super-frames and partial checksums
# (AF_PACKET readers would see 64 KB frames with unfinished checksums). TCPSM_TEST_OFFLOADS=1
# keeps the defaults.
_netns_wire_like() {
    local ns=$1 dev=$2
    [ "${TCPSM_TEST_OFFLOADS:-0}" = 1 ] && return 0
    ip netns exec "$ns" ethtool -K "$dev" tx off tso off gso off gro off >/dev/null 2>&1 ||
        die "ethtool -K $dev failed (is ethtool installed? make deps)"
}

_netns_quiet() {
    # No IPv6 chatter (router solicitations, DAD) on the test links.
    ip netns exec "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 2>/dev/null || true
    ip -n "$1" link set lo up
}

# IPv6 on one interface of a namespace, without DAD (RFC 4862) or router solicitations.
_netns_v6_on() {
    local ns=$1 dev=$2
    ip netns exec "$ns" sysctl -qw "net.ipv6.conf.$dev.accept_dad=0" "net.ipv6.conf.$dev.router_solicitations=0" \
        "net.ipv6.conf.$dev.disable_ipv6=0" || die "sysctl: IPv6 on $dev"
}

# netns_setup [bridge] [kaddr] [v6]
netns_setup() {
    local bridge=0 kaddr=0 a
    for a in "$@"; do
        case $a in
            bridge) bridge=1 ;;
            kaddr) kaddr=1 ;;
            v6) NETNS_V6=1 ;;
            *) die "netns_setup: unknown argument $a" ;;
        esac
    done
    [ "$(id -u)" -eq 0 ] || skip "needs root (network namespaces)"
    command -v ip >/dev/null || skip "iproute2 missing"
    # <tag (<= 5)><pid in hex (<= 6)><3 random hex>: <= 14 characters, so an interface name
    # (one more letter) fits IFNAMSIZ. The runner passes a tag of its own (TCPSM_NS_TAG) so
    # that its safety-net cleanup touches only its own tests.
    local tag=${TCPSM_NS_TAG:-ts$(printf '%03x' $((RANDOM % 4096)))}
    _NETNS_TAG="${tag:0:5}$(printf '%x' $$)$(printf '%03x' $((RANDOM % 4096)))"
    NS_S="${_NETNS_TAG}s" NS_P="${_NETNS_TAG}p"
    IF_S="${_NETNS_TAG}S" IF_P="${_NETNS_TAG}P"
    trap netns_cleanup EXIT
    trap _netns_sig INT TERM
    TMPD=$(mktemp -d "/tmp/tcpsm-${_NETNS_TAG}.XXXX")
    chmod 755 "$TMPD"
    [ "$TCPSM_SAN" = 1 ] && _netns_san_env
    [ "$TCPSM_SAN" = tsan ] && _netns_tsan_env

    ip netns add "$NS_S" || die "ip netns add $NS_S"
    ip netns add "$NS_P" || die "ip netns add $NS_P"
    _netns_quiet "$NS_S"
    _netns_quiet "$NS_P"
    if [ "$bridge" = 1 ]; then
        NS_B="${_NETNS_TAG}b" IF_BS="${_NETNS_TAG}x" IF_BP="${_NETNS_TAG}y"
        ip netns add "$NS_B" || die "ip netns add $NS_B"
        _netns_quiet "$NS_B"
        ip link add "$IF_S" netns "$NS_S" type veth peer name "$IF_BS" netns "$NS_B" || die "veth"
        ip link add "$IF_P" netns "$NS_P" type veth peer name "$IF_BP" netns "$NS_B" || die "veth"
        ip -n "$NS_B" link set "$IF_BS" up
        ip -n "$NS_B" link set "$IF_BP" up
        _netns_wire_like "$NS_B" "$IF_BS"
        _netns_wire_like "$NS_B" "$IF_BP"
    else
        ip link add "$IF_S" netns "$NS_S" type veth peer name "$IF_P" netns "$NS_P" || die "veth"
    fi
    _netns_wire_like "$NS_S" "$IF_S"
    _netns_wire_like "$NS_P" "$IF_P"
    ip -n "$NS_P" addr add "$PEER_IP/$PREFIX" dev "$IF_P"
    if ! stack_mode; then
        ip -n "$NS_S" addr add "$STACK_IP/$PREFIX" dev "$IF_S"
    fi
    if [ "$NETNS_V6" = 1 ]; then
        _netns_v6_on "$NS_P" "$IF_P"
        ip -n "$NS_P" addr add "$PEER_IP6/$PREFIX6" dev "$IF_P" nodad || die "ip addr $PEER_IP6"
        _netns_v6_on "$NS_S" lo
        if ! stack_mode; then
            _netns_v6_on "$NS_S" "$IF_S"
            ip -n "$NS_S" addr add "$STACK_IP6/$PREFIX6" dev "$IF_S" nodad || die "ip addr $STACK_IP6"
        fi
    fi
    if [ "$kaddr" = 1 ]; then
        ip -n "$NS_S" addr add "$KSTACK_IP/$PREFIX" dev "$IF_S"
        if [ "$NETNS_V6" = 1 ]; then
            _netns_v6_on "$NS_S" "$IF_S"
            ip -n "$NS_S" addr add "$KSTACK_IP6/$PREFIX6" dev "$IF_S" nodad || die "ip addr $KSTACK_IP6"
        fi
    fi
    ip -n "$NS_S" link set "$IF_S" up
    ip -n "$NS_P" link set "$IF_P" up
    if stack_mode; then
        [ -x "$TCPSM_BUILD/tcpsm" ] && [ -f "$TCPSM_BUILD/libtcpsm.so" ] ||
            die "$TCPSM_BUILD/tcpsm or libtcpsm.so missing: run make$([ "$TCPSM_SAN" = 1 ] && echo ' SAN=1')"
    fi
}

# Sanitizer options for every program of the test (only sanitized ones read them): reports go
# to files (servers' stderr is often a log nobody reads, and a worker's report would be lost),
# an error stops the program (abort_on_error, halt_on_error). verify_asan_link_order=0: a
# program that itself preloads something (LD_PRELOAD set by the test) may load it first.
_netns_san_env() {
    SAN_REPORTS=${TCPSM_SAN_REPORTS:-$TCPSM_ROOT/build/san/reports}/$(basename "$0" .sh)-$_NETNS_TAG
    mkdir -p "$SAN_REPORTS" || die "mkdir $SAN_REPORTS"
    chmod 1777 "$SAN_REPORTS"   # servers' workers may run as another user
    export ASAN_OPTIONS="verify_asan_link_order=0:detect_leaks=1:abort_on_error=1:log_path=$SAN_REPORTS/asan${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
    export LSAN_OPTIONS="suppressions=$TCPSM_ROOT/tests/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
    export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$SAN_REPORTS/ubsan${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
}

# ThreadSanitizer (make tsan): reports to files, suppressions with their reasons in tests/tsan.supp.
_netns_tsan_env() {
    SAN_REPORTS=${TCPSM_SAN_REPORTS:-$TCPSM_ROOT/build/tsan/reports}/$(basename "$0" .sh)-$_NETNS_TAG
    mkdir -p "$SAN_REPORTS" || die "mkdir $SAN_REPORTS"
    chmod 1777 "$SAN_REPORTS"
    export TSAN_OPTIONS="suppressions=$TCPSM_ROOT/tests/tsan.supp:log_path=$SAN_REPORTS/tsan:halt_on_error=0:report_signal_unsafe=0${TSAN_OPTIONS:+:$TSAN_OPTIONS}"
}

# The command prefix that puts a program on the stack (or, in kernel mode, on the kernel).
# Extra wrapper options (e.g. --trace FILE, --pcap FILE) go in the STACK_OPTS array.
STACK_OPTS=()
_stack_prefix() {
    if stack_mode; then
        printf '%s\0' "$TCPSM_BUILD/tcpsm" --if "$IF_S" --addr "$STACK_IP/$PREFIX"
        [ "$NETNS_V6" = 1 ] && printf '%s\0' --addr "$STACK_IP6/$PREFIX6"
        printf '%s\0' "${STACK_OPTS[@]}" --
    fi
}

# Foreground runs. on_stack uses the wrapper in stack mode.
on_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }
on_peer() { ip netns exec "$NS_P" "$@"; }
on_kstack() { ip netns exec "$NS_S" "$@"; }   # the stack namespace's kernel, never the library
on_stack() {
    local -a pre=()
    mapfile -d '' pre < <(_stack_prefix)
    ip netns exec "$NS_S" "${pre[@]}" "$@"
}

# Background runs: bg_ns NS LOG CMD... ; sets BG_PID and records it for cleanup.
BG_PID=
bg_ns() {
    local ns=$1 logf=$2; shift 2
    setsid ip netns exec "$ns" "$@" >"$logf" 2>&1 </dev/null &
    BG_PID=$!
    BG_PIDS+=("$BG_PID")
}
bg_peer() { bg_ns "$NS_P" "$@"; }
bg_kstack() { bg_ns "$NS_S" "$@"; }
bg_stack() {
    local logf=$1; shift
    local -a pre=()
    mapfile -d '' pre < <(_stack_prefix)
    bg_ns "$NS_S" "$logf" "${pre[@]}" "$@"
}

# Stop one background process (group) started above, politely then firmly; returns its status.
bg_stop() {
    local pid=$1 i rc=0
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 25); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL -- "-$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || rc=$?
    return "$rc"
}

# Wait (bounded) for a background process to exit; returns its exit status, 124 on timeout.
bg_wait() {
    local pid=$1 secs=${2:-30} i
    for ((i = 0; i < secs * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || { wait "$pid"; return $?; }
        sleep 0.1
    done
    return 124
}

# A kernel listener in NS on PORT (ss sees only kernel sockets).
wait_listen() {
    local ns=$1 port=$2 secs=${3:-10} i
    for ((i = 0; i < secs * 10; i++)); do
        [ -n "$(ip netns exec "$ns" ss -Hltn "sport = :$port" 2>/dev/null)" ] && return 0
        sleep 0.1
    done
    die "nothing listens on port $port in $ns after ${secs}s"
}

# Any listener (also one on the stack): connect from NS to HOST:PORT until it succeeds.
wait_connect() {
    local ns=$1 host=$2 port=$3 secs=${4:-15} i
    for ((i = 0; i < secs * 4; i++)); do
        ip netns exec "$ns" timeout 1 bash -c "exec 3<>/dev/tcp/$host/$port" 2>/dev/null && return 0
        sleep 0.25
    done
    die "cannot connect to $host:$port from $ns after ${secs}s"
}

# Wait for a line matching REGEX in FILE (bounded).
wait_log() {
    local file=$1 re=$2 secs=${3:-10} i
    for ((i = 0; i < secs * 10; i++)); do
        grep -Eq -- "$re" "$file" 2>/dev/null && return 0
        sleep 0.1
    done
    die "no line matching '$re' in $file after ${secs}s"
}

# Files with known content: mkfile PATH BYTES (random data).
mkfile() {
    head -c "$2" /dev/urandom >"$1" || die "mkfile $1"
    chmod 644 "$1"
}
sha() { sha256sum "$1" | cut -d' ' -f1; }
fsize() { stat -c %s "$1"; }

# same_file EXPECTED GOT: sizes and sha256 equal, or fail naming both.
same_file() {
    local e=$1 g=$2
    [ -f "$g" ] || die "$g was not written"
    local se sg he hg
    se=$(fsize "$e") sg=$(fsize "$g")
    [ "$se" = "$sg" ] || die "size differs: expected $se bytes, got $sg ($g)"
    he=$(sha "$e") hg=$(sha "$g")
    [ "$he" = "$hg" ] || die "sha256 differs: expected $he, got $hg ($g)"
    log "ok: $sg bytes, sha256 $hg"
}

# Build check: tools the tests use.
need_tool() {
    local t=$TCPSM_BUILD/tools/$1
    [ -x "$t" ] || die "$t missing: run make tools$([ "$TCPSM_SAN" = 1 ] && echo ' SAN=1')"
    printf '%s' "$t"
}
# conn_many_server N PORT: build/tools/conn_many's epoll server on the stack for N connections,
# listening when this returns; sets tool (for the client) and srv (its pid); raises ulimit -n.
conn_many_server() {
    tool=$(need_tool conn_many)
    ulimit -n $(($1 * 2 + 1024))
    bg_stack "$TMPD/srv.log" "$tool" server -a 0.0.0.0 -p "$2" -n "$1"
    srv=$BG_PID
    wait_log "$TMPD/srv.log" '^listening'
}
need_cmd() {
    local c
    for c in "$@"; do command -v "$c" >/dev/null || skip "$c not installed (make deps)"; done
}

# run_checks TOOL BASE MIN: build/tools/TOOL on the stack against api_peer (ports BASE..) on the
# kernel peer; every check prints PASS/FAIL and a last "PASS: 0 failed" line. Fails the test on
# any FAIL, a non-zero exit or fewer than MIN checks (a tool that stopped early).
run_checks() {
    local name=$1 base=$2 min=$3 check peer rc=0 n
    check=$(need_tool "$name")
    peer=$(need_tool api_peer)
    bg_peer "$TMPD/peer.log" "$peer" "$PEER_IP" "$base" 100
    wait_log "$TMPD/peer.log" 'api_peer: ready'
    log "$name $PEER_IP $base"
    on_stack timeout 90 "$check" "$PEER_IP" "$base" >"$TMPD/check.out" 2>&1 || rc=$?
    cat "$TMPD/check.out" >&2
    grep -q '^PASS: 0 failed$' "$TMPD/check.out" || die "$name: failures (exit $rc)"
    [ "$rc" -eq 0 ] || die "$name exited $rc"
    n=$(grep -c '^PASS ' "$TMPD/check.out")
    [ "$n" -ge "$min" ] || die "$name: only $n checks ran"
    log "ok: $n checks passed"
}

# hold_until FILE SECS: prints a shell command that waits until FILE exists or SECS pass (for
# a client that must keep its connection open while the test looks at it).
hold_until() {
    printf 'for _i in $(seq %d); do [ -e %q ] && break; sleep 0.1; done' $(($2 * 10)) "$1"
}
