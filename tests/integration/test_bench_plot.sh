#!/usr/bin/env bash
# bench/plot.sh on a results file in bench/run.sh's TSV form (no network): the SVG parses, has a
# panel titled for every workload with a numeric result, skips failed values and comments, and
# a file without any number is a clear error.
# timeout: 30
set -euo pipefail
. "$(dirname "$0")/../lib/netns.sh"
need_cmd gnuplot python3
TMPD=$(mktemp -d /tmp/tcpsm-plot-test.XXXXXX)
trap 'rm -rf "$TMPD"' EXIT
plot=$TCPSM_ROOT/bench/plot.sh
printf '%s\n' '# workload	variant	round	value	unit' \
    'iperf3 client send	kernel	1	1.5	Gbit/s' 'iperf3 client send	kernel	2	1.7	Gbit/s' \
    'iperf3 client send	tcpsm	1	0.9	Gbit/s' 'iperf3 client send	tcpsm	2	failed	Gbit/s' \
    'latency p50	kernel	1	10.3	us' 'latency p50	tcpsm	1	15.1	us' \
    'send, CPU	kernel	1	2.5	CPU s/GB' 'send, CPU	tcpsm	1	3.1	CPU s/GB' \
    'only failures	kernel	1	failed	s' >"$TMPD/r.tsv"
bash "$plot" "$TMPD/r.tsv" "$TMPD/r.svg" >/dev/null || die "plot.sh failed"
python3 - "$TMPD/r.svg" <<'PY' || die "bad SVG"
import sys, xml.dom.minidom as m
d = m.parse(sys.argv[1])
def flat(n):
    return n.data if n.nodeType == n.TEXT_NODE else "".join(flat(c) for c in n.childNodes)
text = " ".join(flat(n) for n in d.getElementsByTagName("text"))
assert "iperf3 client send (higher is better)" in text, text
assert "latency p50 (lower is better)" in text, text
assert "send, CPU (lower is better)" in text, text
assert "only failures" not in text, text
assert "kernel" in text and "tcpsm" in text, text
PY
printf 'x\tkernel\t1\tfailed\ts\n' >"$TMPD/none.tsv"
if bash "$plot" "$TMPD/none.tsv" "$TMPD/none.svg" 2>"$TMPD/err"; then die "accepted a file without results"; fi
grep -q 'no numeric results' "$TMPD/err" || die "unclear error: $(cat "$TMPD/err")"
log "bench/plot.sh: a panel per workload with results, failed runs skipped"
