#!/usr/bin/env bash
# Install the Debian packages tcpsm's build, tests, demo and benches use,
# only those missing. Needs root to install; otherwise lists what is missing.
set -euo pipefail

PKGS=(
  gcc make libc6-dev             # build
  libcriterion-dev               # unit tests
  iproute2 nftables ethtool      # test hosts: namespaces, veth, impairment, offloads off
  python3                        # tcpsm stat/capture/ladder; reads iperf3 JSON in tests, benches
  curl wget socat                # clients
  iperf3 nginx-light redis-server redis-tools apache2-utils   # servers and load tools
  tshark                         # reads the TCPSM_PCAP capture and tcpsm capture
  gnuplot-nox                    # bench/plot.sh: the bench report picture
  man-db groff-base pkgconf      # make install test: man -l, pkg-config
  wrk sockperf                   # benchmarks
  nodejs                         # a Node.js http server on the stack (libuv: syscall(SYS_close))
  clang libclang-rt-14-dev       # fuzzers (libFuzzer)
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "deps: missing Debian packages: ${missing[*]} (run as root to install them)" >&2
  exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# An old package list may not know a package: update once, then install.
if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >/tmp/tcpsm-apt.log 2>&1; then
  apt-get update -qq >>/tmp/tcpsm-apt.log 2>&1
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >>/tmp/tcpsm-apt.log 2>&1 || {
    echo "deps: apt-get install failed, see /tmp/tcpsm-apt.log" >&2; tail -5 /tmp/tcpsm-apt.log >&2; exit 1; }
fi
