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

# _iperf3_listening NS: a kernel listener on 5201 in NS within 10 s (wait_listen without the die).
_iperf3_listening() {
    local i
    for ((i = 0; i < 100; i++)); do
        [ -n "$(ip netns exec "$1" ss -Hltn "sport = :5201" 2>/dev/null)" ] && return 0
        sleep 0.1
    done
    return 1
}

# iperf3_run DIR WHERE SRV_ARGS CLIENT_RUN CLIENT_ARGS...: one test. The one-off server
# `iperf3 -s -1 -p 5201 --json SRV_ARGS` (SRV_ARGS one word list, may be "") starts WHERE:
#   peer   the kernel's, in the peer namespace;
#   stack  on the stack (in kernel mode the stack namespace's kernel);
#   pair   on a second stack in the peer namespace at $PAIR_IP/$PREFIX on $IF_P (stack mode);
# a kernel listener is waited for (ss cannot see one on the stack: the client retries while
# refused), then the client `CLIENT_RUN timeout 30 iperf3 CLIENT_ARGS --json` runs and the
# server is given 15 s to exit. Output: $TMPD/cli-DIR.json, $TMPD/srv-DIR.json; sets IPERF_RC.
# Kernel mode only (no tcpsm anywhere): the kernel's own one-off server sometimes stops
# listening without a test or hangs after one and writes no JSON (a CI run: every connect
# refused for 15 s; esnet/iperf#819, #1735): then once more with a fresh server. On the stack a
# hang still fails (iperf3_check: no server JSON).
iperf3_run() {
    local dir=$1 where=$2 srv_args=$3 run=$4 attempt srv ns listening w
    shift 4
    local sf=$TMPD/srv-$dir.json cf=$TMPD/cli-$dir.json
    for attempt in 1 2; do
        ns=
        case $where in
        peer) bg_peer "$sf" iperf3 -s -1 -p 5201 --json $srv_args; ns=$NS_P ;;
        stack) bg_stack "$sf" iperf3 -s -1 -p 5201 --json $srv_args
            stack_mode || ns=$NS_S ;;
        pair) bg_ns "$NS_P" "$sf" "$TCPSM_BUILD/tcpsm" --if "$IF_P" --addr "$PAIR_IP/$PREFIX" \
                -- iperf3 -s -1 -p 5201 --json $srv_args ;;
        *) die "iperf3_run: where is $where" ;;
        esac
        srv=$BG_PID
        listening=true
        [ -n "$ns" ] && ! _iperf3_listening "$ns" && listening=false
        if $listening; then
            log "iperf3 $* ($dir, the server on $where)"
            iperf3_client_retry "$run" "$cf" "$@"
        fi
        w=0
        bg_wait $srv 15 || w=$?
        if [ $w != 124 ]; then
            $listening || die "the iperf3 server exited (status $w) before listening"
            return 0
        fi
        if stack_mode || [ $attempt = 2 ]; then
            $listening || die "nothing listens on port 5201 in $ns"
            log "iperf3 server did not exit by itself"
            return 0
        fi
        if $listening && [ -s "$sf" ]; then
            log "iperf3 server did not exit by itself"
            return 0
        fi
        log "the kernel's iperf3 server hung (no listener, or no JSON 15 s after the test): a fresh one"
        bg_stop $srv || true
    done
}

# iperf3_check DIR RC [REMOTE_PREFIX]: the client exited RC; checks $TMPD/cli-DIR.json and
# $TMPD/srv-DIR.json with tests/lib/iperf3_check.py.
iperf3_check() {
    local dir=$1 rc=$2 prefix=${3:-}
    [ "$rc" = 0 ] || { cat "$TMPD/cli-$dir.json" >&2; die "iperf3 client exit $rc ($dir)"; }
    [ -s "$TMPD/srv-$dir.json" ] || die "the iperf3 server wrote no JSON ($dir)"
    python3 "$(dirname "${BASH_SOURCE[0]}")/iperf3_check.py" "$dir" "$TMPD/cli-$dir.json" \
        "$TMPD/srv-$dir.json" $prefix || die "iperf3 byte accounting ($dir)"
}
