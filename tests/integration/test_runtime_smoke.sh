#!/usr/bin/env bash
# The runtime driven directly through tcpsm.h (tests/tools/rt_smoke.sh, no shim), with the
# veth offloads left on (GSO frames and deferred checksums from the kernel peer): ARP and
# ICMP, echo round trips checked both ways, ECONNREFUSED, timeouts, EINTR, fork, SO_LINGER,
# the exit path, retransmission under loss.
# timeout: 240
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [ "${TCPSM_TEST_MODE:-stack}" = kernel ]; then
    echo "SKIP: drives the stack directly, no kernel-mode equivalent"; exit 77
fi
smoke=build/tools/rt_smoke
[ "${TCPSM_SAN:-0}" = 1 ] && smoke=build/san/tools/rt_smoke   # the sanitizer build (make SAN=1)
[ -x "$here/../../$smoke" ] || { echo "SKIP: $smoke is not built"; exit 77; }
export RT_SMOKE_BIN=$smoke
for c in ip socat python3 nft ss; do
    command -v "$c" >/dev/null || { echo "SKIP: $c is missing"; exit 77; }
done
exec bash "$here/../tools/rt_smoke.sh" 3000000
