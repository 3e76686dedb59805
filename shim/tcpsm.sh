#!/usr/bin/env bash
# tcpsm — run a program with its TCP connections on the tcpsm user-space stack.
# Sets the TCPSM_* variables and preloads libtcpsm.so (the one next to this script).
set -u

TCPSM_VERSION=0.1

usage() {
    cat <<'USAGE'
Usage: tcpsm [OPTIONS] [--] PROGRAM [ARGS...]
       tcpsm stat [--json] [--watch [SECS]] [--all] [--addr A] [--pid N]
       tcpsm capture ADDR|pid:N [-w FILE] [-c N] [--seconds S] [FILTER...]
       tcpsm ladder FILE [--conn A:P B:P] [--svg OUT] [--json]

Runs PROGRAM with libtcpsm.so preloaded (the one next to this script; the
sanitizer build's wrapper, build/san/tcpsm, preloads the ASan and UBSan
runtimes first, then build/san/libtcpsm.so): its TCP sockets (AF_INET and
AF_INET6, SOCK_STREAM) run on an in-process TCP/IP stack that reaches the wire
through an AF_PACKET socket on one interface (needs CAP_NET_RAW). Connections
to loopback or to addresses the stack cannot route, UDP, AF_UNIX and
everything else stay with the kernel, on the same fd numbers. A listener on
:: without IPV6_V6ONLY takes IPv4 too (peers as ::ffff:a.b.c.d), as on Linux.

Options (each sets the environment variable named after it):
  --if IF           TCPSM_IF     interface to attach to (required to enable the
                                 stack; without it the library passes through)
  --addr A.B.C.D/N  TCPSM_ADDR   the stack's own IPv4 address and prefix, e.g.
  --addr X:X::X/N                198.18.0.10/24, and/or its IPv6 one, e.g.
                                 2001:2::10/64: give --addr twice (or one
                                 comma-separated value) for both families. It
                                 must NOT be an address the kernel holds: the
                                 stack answers ARP / neighbour solicitations for
                                 it with its own MAC.
  --gw A.B.C.D      TCPSM_GW     default gateway (optional), per family like
  --gw X:X::X                    --addr; IPv6 without one: the router that
                                 router advertisements announce
  --mac MAC         TCPSM_MAC    the stack's MAC, aa:bb:cc:dd:ee:ff (optional;
                                 default: locally administered, from the address)
  --trace [FILE]    TCPSM_TRACE  one line per TCP state transition with the
                                 segment that caused it; to stderr, or to FILE
                                 (--trace=FILE, or --trace FILE ... -- PROGRAM)
  --pcap FILE       TCPSM_PCAP   every frame sent and received, pcap format
  --log LEVEL       TCPSM_LOG    error, warn (default), info or debug; to stderr
  --sndbuf SIZE     TCPSM_SNDBUF     per-socket send buffer (default 256K;
                                     4K..16M, suffix K or M)
  --rcvbuf SIZE     TCPSM_RCVBUF     per-socket receive buffer (default 256K)
  --rcvbuf-max SIZE TCPSM_RCVBUF_MAX receive buffer auto-tuning ceiling (4M)
  --shm-mb MB       TCPSM_SHM_MB     size of the shared region holding the stack
                                     (default 512; see "Process model" in README)
  --offload 0|1     TCPSM_OFFLOAD    1 (default): checksum offload and TSO
                                     super-segments through the vnet header;
                                     0: plain MSS-sized frames
  --mem-max SIZE    TCPSM_MEM_MAX    TCP buffer memory of the whole stack
                                     (default 128M; 1M..64G, suffix K, M or G):
                                     under pressure from 3/4 of it, no
                                     out-of-order data is kept; beyond it,
                                     received data is refused (resent later)
  --mtu-probing 1|2 TCPSM_MTU_PROBING path MTU probing where ICMP is filtered
                                     (RFC 4821/8899): 1 (default) after a black
                                     hole (six RTOs), 2 from the start (every
                                     connection begins at MSS 1024, probes up)
  --spin US         TCPSM_SPIN_US    busy polling: the thread that polls the
                                     link for the others spins this long (0..1000000
                                     microseconds) before it sleeps; one spinner at
                                     most (default 0: never spin)
  --run-dir DIR     TCPSM_RUN_DIR    where the stack publishes its stats region
                                     and control socket for tcpsm stat/capture,
                                     and keeps the stacks' ISN key (secret)
                                     (default /run/tcpsm; 0 = not at all)
  --user NAME                    run PROGRAM as user NAME (its groups, no
                                 capability) on the stack: the wrapper, as
                                 root, stays as the stack's owner and hands
                                 the link socket to NAME's processes through
                                 a socket file (/dev/shm/tcpsm-...sock, owned
                                 by NAME, mode 0600); see README "Process model"
  --share O:G:MODE  TCPSM_SHARE  with --user: that socket file's owner, group
                                 and octal mode, parts may be empty (default
                                 NAME:NAME's group:0600), e.g. :www-data:0660
                                 lets the group www-data attach too; without
                                 --user, a program with CAP_NET_RAW serves the
                                 socket file itself (default: its user, 0600)
                                 so that programs without it can join its stack
  --profile NAME    a set of the settings above, for variables not set
                    otherwise (options and the environment win):
                      default     nothing changed
                      latency     TCPSM_SPIN_US=50 (spin before sleeping)
                                  TCPSM_RCVBUF_MAX=1M (short queues)
                      throughput  TCPSM_SNDBUF=1M TCPSM_RCVBUF=1M
                                  TCPSM_RCVBUF_MAX=16M
  --help                         this text
  --version                      the version
  --                             end of options: PROGRAM follows

Variables already set in the environment are used as they are; options
override them. A bad value makes the program exit at start with one line
naming the variable and the form it expects.

Subcommands (the first word; `tcpsm [OPTIONS] -- PROGRAM` always runs
PROGRAM, whatever its name; `tcpsm SUBCOMMAND --help` for details):
  stat      the stacks running on this machine, their sockets (state, queues,
            rtt, cwnd, retransmits, SACK) and counters, like ss -tin
  capture   attach to a running stack and stream its frames as pcap to stdout
            (tcpsm capture 198.18.0.10 port 80 | tshark -r -)
  ladder    draw one connection of a pcap or TCPSM_TRACE file as a ladder
            diagram: text on stdout, SVG with --svg

Examples:
  tcpsm --if eth1 --addr 198.18.0.10/24 -- curl -o page.html http://198.18.0.1/
  tcpsm --if eth1 --addr 198.18.0.10/24 --trace -- nginx -c /tmp/nginx.conf
  tcpsm --profile throughput --if eth1 --addr 198.18.0.10/24 -- iperf3 -c 198.18.0.1
  tcpsm stat
  tcpsm capture 198.18.0.10 port 80 | tshark -r -
  tcpsm ladder --svg conn.svg capture.pcap
  tcpsm --if eth1 --addr 198.18.0.10/24 --addr 2001:2::10/64 -- python3 -m http.server
USAGE
}

die_usage() {
    echo "tcpsm: $1 (try 'tcpsm --help')" >&2
    exit 2
}

has_dashdash() {
    local a
    for a in "$@"; do [ "$a" = -- ] && return 0; done
    return 1
}

need_arg() {
    [ $# -ge 2 ] && [ -n "$2" ] || die_usage "option $1 needs a value"
}

# Empty in the build tree (the library is next to this script, the
# subcommands in libexec/); make install writes the installed library
# directory here. An installed wrapper looks beside itself first
# (bin/../lib/tcpsm), so a tree staged with DESTDIR or moved runs as well.
libdir=
here=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
if [ -z "$libdir" ]; then
    lib=$here/libtcpsm.so
    tooldir=$here/libexec
else
    [ -f "$here/../lib/tcpsm/libtcpsm.so" ] && libdir=$(cd "$here/../lib/tcpsm" && pwd)
    lib=$libdir/libtcpsm.so
    tooldir=$libdir
fi

# A subcommand name as the first word takes precedence over a program of the
# same name (run one with: tcpsm -- stat).
case ${1:-} in
    stat|capture|ladder)
        [ -f "$tooldir/$1.py" ] || { echo "tcpsm: $tooldir/$1.py not found (run make)" >&2; exit 2; }
        command -v python3 >/dev/null || { echo "tcpsm $1: needs python3" >&2; exit 2; }
        sub=$1; shift
        exec python3 "$tooldir/$sub.py" "$@" ;;
esac

profile=
run_user=
# --addr and --gw may be repeated (one per family): the first replaces the
# environment's value, the next ones are appended, comma-separated.
add_addr() {
    opt_addr=${opt_addr:+$opt_addr,}$1
    export TCPSM_ADDR=$opt_addr
}
add_gw() {
    opt_gw=${opt_gw:+$opt_gw,}$1
    export TCPSM_GW=$opt_gw
}

while [ $# -gt 0 ]; do
    case $1 in
        --help|-h) usage; exit 0 ;;
        --version) echo "tcpsm $TCPSM_VERSION"; exit 0 ;;
        --if) need_arg "$@"; export TCPSM_IF=$2; shift 2 ;;
        --if=*) export TCPSM_IF=${1#*=}; shift ;;
        --addr) need_arg "$@"; add_addr "$2"; shift 2 ;;
        --addr=*) add_addr "${1#*=}"; shift ;;
        --gw) need_arg "$@"; add_gw "$2"; shift 2 ;;
        --gw=*) add_gw "${1#*=}"; shift ;;
        --mac) need_arg "$@"; export TCPSM_MAC=$2; shift 2 ;;
        --mac=*) export TCPSM_MAC=${1#*=}; shift ;;
        --pcap) need_arg "$@"; export TCPSM_PCAP=$2; shift 2 ;;
        --pcap=*) export TCPSM_PCAP=${1#*=}; shift ;;
        --log) need_arg "$@"; export TCPSM_LOG=$2; shift 2 ;;
        --log=*) export TCPSM_LOG=${1#*=}; shift ;;
        --sndbuf) need_arg "$@"; export TCPSM_SNDBUF=$2; shift 2 ;;
        --sndbuf=*) export TCPSM_SNDBUF=${1#*=}; shift ;;
        --rcvbuf) need_arg "$@"; export TCPSM_RCVBUF=$2; shift 2 ;;
        --rcvbuf=*) export TCPSM_RCVBUF=${1#*=}; shift ;;
        --rcvbuf-max) need_arg "$@"; export TCPSM_RCVBUF_MAX=$2; shift 2 ;;
        --mem-max) need_arg "$@"; export TCPSM_MEM_MAX=$2; shift 2 ;;
        --mtu-probing) need_arg "$@"; export TCPSM_MTU_PROBING=$2; shift 2 ;;
        --mtu-probing=*) export TCPSM_MTU_PROBING=${1#*=}; shift ;;
        --mem-max=*) export TCPSM_MEM_MAX=${1#*=}; shift ;;
        --rcvbuf-max=*) export TCPSM_RCVBUF_MAX=${1#*=}; shift ;;
        --shm-mb) need_arg "$@"; export TCPSM_SHM_MB=$2; shift 2 ;;
        --shm-mb=*) export TCPSM_SHM_MB=${1#*=}; shift ;;
        --offload) need_arg "$@"; export TCPSM_OFFLOAD=$2; shift 2 ;;
        --offload=*) export TCPSM_OFFLOAD=${1#*=}; shift ;;
        --spin) need_arg "$@"; export TCPSM_SPIN_US=$2; shift 2 ;;
        --spin=*) export TCPSM_SPIN_US=${1#*=}; shift ;;
        --run-dir) need_arg "$@"; export TCPSM_RUN_DIR=$2; shift 2 ;;
        --run-dir=*) export TCPSM_RUN_DIR=${1#*=}; shift ;;
        --user) need_arg "$@"; run_user=$2; shift 2 ;;
        --user=*) run_user=${1#*=}; shift ;;
        --share) need_arg "$@"; export TCPSM_SHARE=$2; shift 2 ;;
        --share=*) export TCPSM_SHARE=${1#*=}; shift ;;
        --profile) need_arg "$@"; profile=$2; shift 2 ;;
        --profile=*) profile=${1#*=}; shift ;;
        --trace=*) export TCPSM_TRACE=${1#*=}; shift ;;
        --trace)
            # The optional FILE is the next word only when it is not an
            # option and a -- later on marks where the program starts.
            if [ $# -ge 2 ] && [ "${2#-}" = "$2" ] && has_dashdash "${@:3}"; then
                export TCPSM_TRACE=$2; shift 2
            else
                export TCPSM_TRACE=1; shift
            fi ;;
        --) shift; break ;;
        -*) die_usage "unknown option $1" ;;
        *) break ;;
    esac
done

# Profiles fill in only what neither an option nor the environment set.
case $profile in
    ''|default) ;;
    latency)
        : "${TCPSM_SPIN_US:=50}" "${TCPSM_RCVBUF_MAX:=1M}"
        export TCPSM_SPIN_US TCPSM_RCVBUF_MAX ;;
    throughput)
        : "${TCPSM_SNDBUF:=1M}" "${TCPSM_RCVBUF:=1M}" "${TCPSM_RCVBUF_MAX:=16M}"
        export TCPSM_SNDBUF TCPSM_RCVBUF TCPSM_RCVBUF_MAX ;;
    *) die_usage "unknown profile '$profile' (latency, throughput or default)" ;;
esac

if [ $# -eq 0 ]; then
    echo "tcpsm: no program given" >&2
    usage >&2
    exit 2
fi

# Empty here; the sanitizer build's copy (build/san/tcpsm, make SAN=1) lists the ASan and UBSan
# runtimes, which must be loaded before everything else, its libtcpsm.so included.
sanitizer_runtimes=
# The ThreadSanitizer build's copy (make tsan) lists libtsan here: loaded right after
# libtcpsm.so, so that the shim's interposers run outside libtsan's (which would otherwise wrap
# them and hide their locking from it) and libtsan's still come before libc's.
sanitizer_after=

[ -f "$lib" ] || { echo "tcpsm: $lib not found (run make)" >&2; exit 2; }
preload=${sanitizer_runtimes:+$sanitizer_runtimes:}$lib${sanitizer_after:+:$sanitizer_after}${LD_PRELOAD:+:$LD_PRELOAD}
if [ -n "$run_user" ]; then
    # The helper opens the link as root and stays as the stack's owner; only
    # PROGRAM, run as NAME, gets the library.
    [ "$(id -u)" = 0 ] || { echo "tcpsm: --user needs root (it opens the link, then runs the program as $run_user)" >&2; exit 2; }
    [ -x "$tooldir/tcpsm-user" ] || { echo "tcpsm: $tooldir/tcpsm-user not found (run make)" >&2; exit 2; }
    export TCPSM_USER_PRELOAD=$preload
    exec env -u LD_PRELOAD "$tooldir/tcpsm-user" "$run_user" "$@"
fi
export LD_PRELOAD=${sanitizer_runtimes:+$sanitizer_runtimes:}$lib${sanitizer_after:+:$sanitizer_after}${LD_PRELOAD:+:$LD_PRELOAD}
exec "$@"
