#!/usr/bin/env bash
# bench/plot.sh [RESULTS.tsv] [OUT.svg]: draws kernel vs tcpsm for every workload of a bench run
# into one SVG (gnuplot): a panel per workload, a bar per variant at the mean of its rounds, a
# dot per round and the min..max range as an error bar (the spread). Input: the TSV bench/run.sh
# writes (build/bench/results.tsv), one measurement per line:
#     workload <TAB> variant <TAB> round <TAB> value <TAB> unit
# lines starting with # and lines whose value is not a number (a failed run) are skipped.
# Output: build/bench/report.svg by default.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
in=${1:-$root/build/bench/results.tsv}
out=${2:-$root/build/bench/report.svg}
command -v gnuplot >/dev/null || { echo "plot: gnuplot missing (make deps: gnuplot-nox)" >&2; exit 1; }
[ -s "$in" ] || { echo "plot: no results in $in (run make bench)" >&2; exit 1; }
tmp=$(mktemp -d /tmp/tcpsm-plot.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# Per workload: its unit, and per variant (in order of appearance) mean, min, max and the rounds.
awk -F'\t' -v dir="$tmp" '
    /^#/ || NF < 5 || $4 !~ /^[0-9.eE+-]+$/ { next }
    {
        w = $1; v = $2
        if (!(w in wi)) { wi[w] = ++nw; wname[nw] = w; unit[nw] = $5 }
        k = wi[w] SUBSEP v
        if (!(k in vi)) { vi[k] = ++nv[wi[w]]; vname[wi[w], nv[wi[w]]] = v }
        n[k]++; s[k] += $4
        if (!(k in lo) || $4 < lo[k]) lo[k] = $4
        if (!(k in hi) || $4 > hi[k]) hi[k] = $4
        pts[k] = pts[k] sprintf("%d %s\n", vi[k] - 1, $4)
    }
    END {
        for (i = 1; i <= nw; i++) {
            f = dir "/w" i ".dat"; p = dir "/p" i ".dat"
            for (j = 1; j <= nv[i]; j++) {
                k = i SUBSEP vname[i, j]
                printf "%d \"%s\" %g %g %g %d\n", j - 1, vname[i, j], s[k] / n[k], lo[k], hi[k], n[k] > f
                printf "%s", pts[k] > p
            }
            printf "%d\t%s\t%s\n", i, wname[i], unit[i] > (dir "/index")
        }
    }' "$in"
[ -s "$tmp/index" ] || { echo "plot: no numeric results in $in" >&2; exit 1; }

nw=$(wc -l <"$tmp/index")
cols=2; [ "$nw" -lt 2 ] && cols=1
rows=$(( (nw + cols - 1) / cols ))
{
    echo "set terminal svg size $((cols * 460)),$((rows * 260 + 40)) dynamic font 'sans,10' background '#ffffff'"
    echo "set output '$out'"
    echo "set multiplot layout $rows,$cols title 'tcpsm vs kernel ($(basename "$in"), $(date -u -r "$in" +%Y-%m-%dT%H:%MZ)): bar = mean, dots = rounds, whiskers = min..max'"
    echo "set style fill solid 0.5 border -1"
    echo "set boxwidth 0.5"
    echo "set grid ytics"
    echo "set yrange [0:*]"
    echo "set offsets 0, 0, graph 0.08, 0"
    echo "set xrange [-0.6:*]"
    echo "set key off"
    while IFS=$'\t' read -r i w u; do
        w=${w//\'/}; u=${u//\'/}
        # times, and costs such as CPU seconds per GB: lower is better
        case $u in s|ms|us|ns|CPU*|*/GB) better="lower is better" ;; *) better="higher is better" ;; esac
        echo "set title '$w ($better)' noenhanced"
        echo "set ylabel '$u' noenhanced"
        echo "set xrange [-0.6:$(($(wc -l <"$tmp/w$i.dat") - 1)).6]"
        # kernel grey, tcpsm blue (any other variant orange)
        echo "plot '$tmp/w$i.dat' using 1:3:(strcol(2) eq 'kernel' ? 0x999999 : strcol(2) eq 'tcpsm' ? 0x4a90d9 : 0xe69138):xtic(2) with boxes lc rgb variable, \\"
        echo "     '' using 1:3:4:5 with yerrorbars lc rgb '#222222' pt -1, \\"
        echo "     '$tmp/p$i.dat' using 1:2 with points pt 7 ps 0.5 lc rgb '#c03030'"
    done <"$tmp/index"
    echo "unset multiplot"
} >"$tmp/plot.gp"
gnuplot "$tmp/plot.gp"
echo "bench report: $out"
