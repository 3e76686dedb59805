#!/usr/bin/env bash
# Runs every tests/integration/test_*.sh (or those whose name contains one of the FILTERs), each under a
# time limit, one PASS/FAIL/SKIP/KNOWN-FAILING line per test, then "N passed, N failed" (and
# ", N skipped", ", N known-failing" when there are any). Exit status: 1 if any test failed.
#
#   tests/integration/run.sh [FILTER...]
#   TCPSM_SAN=1 tests/integration/run.sh      # with the sanitizer build (make SAN=1), see
#                                             # tests/lib/netns.sh
#   TCPSM_TEST_MODE=kernel tests/integration/run.sh    # the same tests on the kernel's TCP
#   TCPSM_TEST_TIMEOUT=SECS   per-test limit (default 120; a test may ask more with a
#                             "# timeout: SECS" line)
#   TCPSM_TEST_VERBOSE=1      print each test's log as it runs (otherwise only on failure)
#
# Exit status of a test: 0 pass, 77 skipped (a prerequisite is missing), anything else fail.
# tests/integration/KNOWN_FAILING lists tests that fail because of a known stack bug (one
# "name  reason" per line): they still run; a failure is reported as known-failing and does
# not fail the run, a pass is reported loudly so the entry gets removed.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# The fixtures are Debian's programs (tests/lib/deps.sh installs them): look for them first, so a
# per-user python3 or nginx earlier in PATH (pyenv shims, /usr/local) is not what gets tested.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH
filters=("$@")
limit=${TCPSM_TEST_TIMEOUT:-120}
mode=${TCPSM_TEST_MODE:-stack}
logdir=${TCPSM_TEST_LOGDIR:-$(cd "$here/../.." && pwd)/build/integration-logs}
mkdir -p "$logdir"

if [ "$(id -u)" -ne 0 ]; then
    echo "integration tests need root (network namespaces)" >&2
fi

declare -A known=()
if [ "$mode" = stack ] && [ -f "$here/KNOWN_FAILING" ]; then
    while read -r name reason; do
        case $name in ''|'#'*) continue ;; esac
        known[$name]=$reason
    done <"$here/KNOWN_FAILING"
fi

pass=0 fail=0 skipped=0 kfail=0 n=0
tag=t$(printf '%04x' $((RANDOM % 65536)))   # this run's namespaces: <tag><pid><rand>[spb]
failed=()
pid=
# timeout(1) puts each test in its own process group, out of reach of the terminal's Ctrl-C:
# pass the interruption on (the test's trap then tears its namespaces down).
on_interrupt() {
    [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    echo "interrupted"
    exit 130
}
trap on_interrupt INT TERM
san=""; [ "${TCPSM_SAN:-0}" = 1 ] && san=", sanitizer build"; [ "${TCPSM_SAN:-0}" = tsan ] && san=", ThreadSanitizer build"
echo "integration tests ($mode mode$san), logs in $logdir"
for t in "$here"/test_*.sh; do
    [ -e "$t" ] || continue
    name=$(basename "$t" .sh)
    if [ ${#filters[@]} -gt 0 ]; then
        hit=0
        for f in "${filters[@]}"; do [[ $name == *"$f"* ]] && hit=1; done
        [ $hit = 1 ] || continue
    fi
    n=$((n + 1))
    tl=$(sed -n 's/^# timeout: *\([0-9]\+\).*/\1/p' "$t" | head -1)
    tl=${tl:-$limit}
    logf=$logdir/$name.log
    start=$(date +%s)
    TCPSM_NS_TAG=$tag TCPSM_TEST_MODE=$mode \
        timeout -k 10 "$tl" bash "$t" >"$logf" 2>&1 &
    pid=$!
    if [ "${TCPSM_TEST_VERBOSE:-0}" = 1 ]; then
        tail -n +1 -f --pid=$pid "$logf" 2>/dev/null
    fi
    wait $pid
    rc=$?
    secs=$(($(date +%s) - start))
    # Safety net: nothing of a killed test may survive (its namespaces carry this run's tag).
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^${tag}[0-9a-f]{4,9}[spb]$" || true); do
        for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
        ip netns del "$ns" 2>/dev/null || true
    done
    why=""
    [ $rc -eq 124 ] || [ $rc -eq 137 ] && why=" (timed out after ${tl}s)"
    if [ $rc -eq 0 ]; then
        if [ -n "${known[$name]+x}" ]; then
            printf 'PASS  %-32s %4ss  (listed in KNOWN_FAILING: remove it)\n' "$name" "$secs"
        else
            printf 'PASS  %-32s %4ss\n' "$name" "$secs"
        fi
        pass=$((pass + 1))
    elif [ $rc -eq 77 ]; then
        printf 'SKIP  %-32s %4ss  %s\n' "$name" "$secs" "$(grep -m1 'SKIP:' "$logf" | sed 's/.*SKIP: //')"
        skipped=$((skipped + 1))
    elif [ -n "${known[$name]+x}" ]; then
        printf 'KNOWN-FAILING %-24s %4ss  rc=%d%s: %s\n' "$name" "$secs" "$rc" "$why" "${known[$name]}"
        kfail=$((kfail + 1))
    else
        printf 'FAIL  %-32s %4ss  rc=%d%s  log: %s\n' "$name" "$secs" "$rc" "$why" "$logf"
        grep -E 'FAIL:|rror' "$logf" | tail -5 | sed 's/^/      /'
        fail=$((fail + 1))
        failed+=("$name")
    fi
done
[ $n -eq 0 ] && { echo "no test matches '${filters[*]}'" >&2; exit 2; }
summary="$pass passed, $fail failed"
[ $skipped -gt 0 ] && summary+=", $skipped skipped"
[ $kfail -gt 0 ] && summary+=", $kfail known-failing"
echo "$summary"
[ $fail -eq 0 ]
