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
    local dir=$1 rc=$2 prefix=${3:-} sf=$TMPD/srv-$dir.json
    [ "$rc" = 0 ] || { cat "$TMPD/cli-$dir.json" >&2; die "iperf3 client exit $rc ($dir)"; }
    # The kernel's own iperf3 -s -1 sometimes hangs after a finished test (esnet/iperf#819,
    # #1735) and writes no JSON: in the kernel-mode run only (no tcpsm in it), its counts are
    # then the client's copy. On the stack an empty server file still fails.
    if [ ! -s "$sf" ] && ! stack_mode; then
        log "the kernel's iperf3 server wrote no JSON (hung after its test): the client's copy of its counts is checked"
        sf=-
    fi
    python3 "$(dirname "${BASH_SOURCE[0]}")/iperf3_check.py" "$dir" "$TMPD/cli-$dir.json" \
        "$sf" $prefix || die "iperf3 byte accounting ($dir)"
}
