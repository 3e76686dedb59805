#!/usr/bin/env bash
# tcpsm stat over a table larger than one step of its walk (the sockets are copied 256 at a time
# under the stack lock, which is let go between steps): an epoll server on the stack holds 1,000
# connections from a kernel client in the peer (build/tools/conn_many, each connection echoed
# first, then held); `tcpsm stat --json` must list every one of them exactly once, ESTABLISHED,
# from the server's port to a distinct port of the peer, with the listener, and "nsocks" must
# equal "listed" (1,001). The once-a-second rewrite of the stack's file without a request lists
# one step only (256: formatting thousands of sockets every second is CPU stolen from the
# program), with "nsocks" still the whole count.
# timeout: 90
set -euo pipefail
. "$(dirname "$0")/../lib/netns.sh"
stack_mode || skip "tcpsm stat shows the stack only"
need_cmd python3
netns_setup
export TCPSM_RUN_DIR=$TMPD/run
tcpsm=$TCPSM_BUILD/tcpsm
N=1000
port=7160
conn_many_server $N $port
bg_peer "$TMPD/cli.log" timeout 60 "$tool" client -a "$STACK_IP" -p $port -n $N -t 40 -H 8
cli=$BG_PID
wait_log "$TMPD/cli.log" " n=$N " 40
periodic=""
for _ in $(seq 50); do      # the periodic rewrite after all N were accepted (1 s period)
    periodic=$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(s["nsocks"], s["listed"], len(s["sockets"]))' \
        "$TMPD/run/$srv.json" 2>/dev/null || true)
    [ "${periodic%% *}" = $((N + 1)) ] && break
    sleep 0.1
done
[ "$periodic" = "$((N + 1)) 256 256" ] || die "periodic rewrite: nsocks/listed/entries '$periodic', want '$((N + 1)) 256 256'"
"$tcpsm" stat --json --pid "$srv" >"$TMPD/stat.json" || die "tcpsm stat --json failed"
python3 - "$TMPD/stat.json" "$srv" "$STACK_IP" "$PEER_IP" $port $N <<'PY' || { head -c 3000 "$TMPD/stat.json" >&2; die "tcpsm stat --json: wrong listing"; }
import json, sys
path, pid, me, peer, port, n = sys.argv[1:]
n = int(n)
stacks = json.load(open(path))
st = [s for s in stacks if s["pid"] == int(pid)]
assert len(st) == 1, "stack of pid %s not listed" % pid
s = st[0]
socks = s["sockets"]
assert s["nsocks"] == n + 1 and s["listed"] == n + 1 == len(socks), \
    "nsocks %d listed %d entries %d, want %d" % (s["nsocks"], s["listed"], len(socks), n + 1)
est = [x for x in socks if x["state"] == "ESTABLISHED"]
lst = [x for x in socks if x["state"] == "LISTEN"]
assert len(est) == n and len(lst) == 1, "%d ESTABLISHED, %d LISTEN" % (len(est), len(lst))
assert all(x["local"] == "%s:%s" % (me, port) for x in est), "a connection on another local address"
remotes = [x["remote"] for x in est]
assert all(r.startswith(peer + ":") for r in remotes), "a connection from another address"
assert len(set(remotes)) == n, "%d distinct remote ports among %d connections" % (len(set(remotes)), n)
PY
log "tcpsm stat: $N connections and the listener, each listed once"
bg_wait "$cli" 60 || { cat "$TMPD/cli.log" >&2; die "the client failed"; }
bg_wait "$srv" 30 || { cat "$TMPD/srv.log" >&2; die "the server did not exit 0"; }
grep -q "^done accepted=$N\$" "$TMPD/srv.log" || die "the server accepted a different count"
