# tests/lib/iperf3.sh — iperf3 runs checked from both ends. Source after netns.sh.

# iperf3_client_retry RUNFN OUT ARGS...: an iperf3 client (RUNFN is on_peer or on_stack) until
# it is not refused: a server on the stack cannot be seen by ss, so the client retries while
# the one-off server is not listening yet (it counts only an accepted test). Sets IPERF_RC.
iperf3_client_retry() {
    local run=$1 out=$2 try
    shift 2
    for try in $(seq 1 25); do
        IPERF_RC=0
        "$run" timeout 30 iperf3 "$@" --json >"$out" || IPERF_RC=$?
        [ $IPERF_RC = 0 ] && return 0
        grep -q 'refused' "$out" || return 0
        sleep 0.2
    done
}

# iperf3_check DIR RC [REMOTE_PREFIX]: the client exited RC; checks $TMPD/cli-DIR.json and
# $TMPD/srv-DIR.json with tests/lib/iperf3_check.py.
iperf3_check() {
    local dir=$1 rc=$2 prefix=${3:-}
    [ "$rc" = 0 ] || { cat "$TMPD/cli-$dir.json" >&2; die "iperf3 client exit $rc ($dir)"; }
    python3 "$(dirname "${BASH_SOURCE[0]}")/iperf3_check.py" "$dir" "$TMPD/cli-$dir.json" \
        "$TMPD/srv-$dir.json" $prefix || die "iperf3 byte accounting ($dir)"
}
