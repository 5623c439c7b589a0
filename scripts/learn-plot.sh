#!/usr/bin/env bash
# learn-plot.sh -- a chart (PNG) of what the learner did: the log that
# HAKMEM_LEARN_LOG=FILE writes (CSV, one row per epoch, a header first) as
# stacked panels on one time axis (seconds since the learner started):
#   1. cost, the epoch's objective (lower is better)
#   2. resident_mb and committed_mb
#   3. every p_* parameter, each divided by its first non-zero value, on a
#      log scale (the legend gives that value; 0 has its own tick at the bottom)
#   4. the strategy chosen (strategy_id, named from the strategy column) and
#      the UCB1 arm, as steps
#   5. every elo_* rating
# Changes of phase (a column a benchmark may add) and of mode are dashed
# vertical lines, named in the top panel.
#
# Usage: scripts/learn-plot.sh FILE.csv [OUT.png]
#
#   OUT.png  default: FILE with .png in place of .csv
#
# The columns are found by the header's names: their order does not matter,
# unknown ones are ignored, and a panel whose columns are absent (or empty)
# is left out. Only t_ms is required.
#
# Needs gnuplot; when it is missing the script tries `apt-get install
# gnuplot-nox` (as scripts/larson.sh does). Prints "# plot: OUT.png".
# Exit status: 0 drawn; 2 no such file, an empty file, no t_ms column, no
# row or nothing to draw (one line on stderr says which); 1 no gnuplot, or
# gnuplot failed.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }
die() { echo "learn-plot.sh: $*" >&2; exit 2; }

case ${1:-} in -h|--help) usage; exit 0 ;; esac
[ $# -ge 1 ] && [ $# -le 2 ] || { usage >&2; exit 2; }
csv=$1 out=${2:-}
[ -e "$csv" ] || die "$csv: no such file"
[ -f "$csv" ] && [ -r "$csv" ] || die "$csv: not a readable file"
[ -s "$csv" ] || die "$csv is empty (a learning log starts with its header line)"
[ -n "$out" ] || out=${csv%.csv}.png

HK_ROOT=$root
. "$root/scripts/lib.sh"
case $out in /*) ;; *) out=$PWD/$out ;; esac
mkdir -p "$(dirname "$out")"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/learn-plot.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# The log is read first, so that a wrong file is said before any apt-get.
# awk says what is wrong with it itself (exit 2); it prints the chart's size.
size=$(awk -f "$root/scripts/learn-plot.awk" -v me=learn-plot.sh -v name="${csv##*/}" \
           -v dat="$tmp/log.dat" -v gp="$tmp/log.gp" -v png="$out" "$csv") || exit
hk_have_gnuplot >&2 || exit 1
# noenhanced: the names' underscores are not subscripts
if ! gnuplot -e "set terminal $(hk_gnuplot_term) size $size noenhanced" "$tmp/log.gp" 2>"$tmp/err"; then
  echo "learn-plot.sh: gnuplot failed:" >&2
  head -n 10 "$tmp/err" >&2
  exit 1
fi
echo "# plot: $(hk_shown "$out")"
