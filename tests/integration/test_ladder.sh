#!/usr/bin/env bash
# tcpsm ladder on connections between two real stacks (build/tools/ladder_pair: the core over
# the in-memory link on a virtual clock, each side writing its TCPSM_TRACE lines):
#   simclose: both close at once, the FINs cross (RFC 9293 3.6): both sides go
#             FIN-WAIT-1 -> CLOSING -> TIME-WAIT
#   synloss:  the client's first SYN is lost and retransmitted; the ordinary four-way close
# The ladder drawn from the pcap (captured at the client) must give, on each axis, exactly the
# sequence of states that side's own stack recorded; the trace input must give the stack side's
# states too; the text and the SVG must show the lost SYN and the labels.
# timeout: 60
set -euo pipefail
. "$(dirname "$0")/../lib/netns.sh"
need_cmd python3
pair=$(need_tool ladder_pair)
ladder=(python3 "$(dirname "$0")/../../tools/ladder.py")
TMPD=$(mktemp -d /tmp/tcpsm-ladder.XXXXXX)
at_cleanup "rm -rf $TMPD"
trap netns_cleanup EXIT

# The states one side's trace recorded for the connection (not the listener's own lines):
# the first line's old state, then every new state.
trace_states() {
    python3 - "$1" <<'PY'
import re, sys
out = []
for line in open(sys.argv[1]):
    m = re.search(r"tcpsm: \S+ > (\S+)\s+(\S+) -> (\S+)", line)
    if not m or m.group(1).endswith(":0"):
        continue
    if not out:
        out.append(m.group(2))
    out.append(m.group(3))
print(" ".join(out))
PY
}
ladder_states() {   # FILE SIDE
    "${ladder[@]}" "$1" --json | python3 -c \
        "import json,sys; print(' '.join(json.load(sys.stdin)['states']['$2']))"
}

for sc in simclose synloss; do
    mkdir -p "$TMPD/$sc"
    "$pair" "$sc" "$TMPD/$sc" || die "ladder_pair $sc failed"
    "${ladder[@]}" "$TMPD/$sc/cap.pcap" --svg "$TMPD/$sc/l.svg" >"$TMPD/$sc/l.txt" ||
        die "ladder failed on the $sc pcap"
    cat "$TMPD/$sc/l.txt" >&2
    want_c=$(trace_states "$TMPD/$sc/a.trace"); want_s=$(trace_states "$TMPD/$sc/b.trace")
    # The traces run on to CLOSED after TIME-WAIT only if 2 MSL passed (it does not here).
    got_c=$(ladder_states "$TMPD/$sc/cap.pcap" client)
    got_s=$(ladder_states "$TMPD/$sc/cap.pcap" server)
    log "$sc client: trace [$want_c] ladder [$got_c]"
    log "$sc server: trace [$want_s] ladder [$got_s]"
    [ "$got_c" = "$want_c" ] || die "$sc: client states from the pcap differ from its trace"
    [ "$got_s" = "$want_s" ] || die "$sc: server states from the pcap differ from its trace"
    # From the client's trace: its own states exactly; from the server's: the server's.
    [ "$(ladder_states "$TMPD/$sc/a.trace" client)" = "$want_c" ] ||
        die "$sc: client states from its own trace differ"
    [ "$(ladder_states "$TMPD/$sc/b.trace" server)" = "$want_s" ] ||
        die "$sc: server states from its own trace differ"
    python3 -c "import sys, xml.dom.minidom as m; d = m.parse(sys.argv[1]); \
assert len(d.getElementsByTagName('line')) >= 10" "$TMPD/$sc/l.svg" || die "$sc: bad SVG"
    grep -q 'SYN=1 seq=x ' "$TMPD/$sc/l.txt" || die "$sc: no SYN=1 seq=x label"
    grep -q 'SYN=1 ACK=1 seq=y ack=x+1 ' "$TMPD/$sc/l.txt" || die "$sc: no SYN+ACK label"
done

case $(trace_states "$TMPD/simclose/a.trace") in
    *FIN-WAIT-1\ CLOSING\ TIME-WAIT) ;;
    *) die "simclose: the stacks did not close simultaneously (test setup)" ;;
esac
case $(trace_states "$TMPD/simclose/b.trace") in
    *FIN-WAIT-1\ CLOSING\ TIME-WAIT) ;;
    *) die "simclose: the server did not close simultaneously (test setup)" ;;
esac
# The lost SYN: drawn as lost once (X in the text, "(lost)" in the SVG), then the retransmission.
[ "$(grep -c 'SYN=1 seq=x -*X' "$TMPD/synloss/l.txt")" = 1 ] || die "synloss: no lost SYN drawn"
grep -q '(lost)' "$TMPD/synloss/l.svg" || die "synloss: no lost SYN in the SVG"
[ "$(grep -c 'SYN=1 seq=x -*>' "$TMPD/synloss/l.txt")" = 1 ] || die "synloss: no retransmitted SYN"
# A bad input is a clear error, not a traceback.
printf 'not a capture\n' >"$TMPD/bad"
if "${ladder[@]}" "$TMPD/bad" 2>"$TMPD/err"; then die "ladder accepted garbage"; fi
grep -q 'tcpsm ladder: ' "$TMPD/err" || die "no clear error for a bad input: $(cat "$TMPD/err")"
log "ladder: simultaneous close and retransmitted SYN drawn with both sides' states right"
