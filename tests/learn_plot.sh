#!/usr/bin/env bash
# learn_plot.sh -- scripts/learn-plot.sh on synthetic learning logs (no
# build, no learner): 50 epochs, 3 strategies, parameters that change at
# epoch 20 (one of them to 0), an unknown column and the columns in a
# shuffled order; asserts a PNG is drawn (its magic bytes, more than a few
# KB), at the default place too; that a log with only t_ms and cost is
# drawn; and that a missing file, an empty file and a log without t_ms end
# in exit status 2 with the message. Exit 77 (skipped) when gnuplot is
# missing and cannot be installed without a password.
#
# Usage: tests/learn_plot.sh   (KEEP=1: keep the scratch folder, to look at
# the charts; its name is printed)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
plot=$root/scripts/learn-plot.sh
tmp=$(mktemp -d "${TMPDIR:-/tmp}/learn_plot.XXXXXX")
trap '[ -n "${KEEP:-}" ] || rm -rf "$tmp"' EXIT
[ -z "${KEEP:-}" ] || echo "charts in $tmp"
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

if ! command -v gnuplot >/dev/null; then
  # apt-get through sudo could wait for a password no one types: only as
  # root or with sudo that asks none
  [ "$(id -u)" = 0 ] || sudo -n true 2>/dev/null || { echo "SKIP: no gnuplot (and no sudo without a password to install it)"; exit 77; }
  HK_ROOT=$root
  . "$root/scripts/lib.sh"
  hk_have_gnuplot || { echo "SKIP: no gnuplot"; exit 77; }
fi

# The log as the learner will write it, but its columns shuffled and one
# more the plot does not know (x_unknown).
awk 'BEGIN {
  OFS = ","
  split("lean fast balanced", name, " ")
  print "elo_fast,strategy,p_large_cache_mb,cost,t_ms,x_unknown,arm,resident_mb,mode,p_purge_delay_ms,elo_lean,epoch," \
        "committed_mb,strategy_id,elo_balanced,p_tiny_cap_kb,overhead,phase,refills"
  for (e = 0; e < 50; e++) {
    s = (e < 12 ? e % 3 : (e < 30 ? 1 : 2))             # explores, then settles twice
    arm = (e < 12 ? s : (e % 7 == 0 ? (s + 1) % 3 : s))   # an exploring pull now and then
    large = (e < 20 ? 64 : 256); purge = (e < 20 ? 100 : 0)
    cost = 1.5 + sin(e / 3) * 0.2 - e * 0.015 + (e == 20 ? 0.4 : 0)
    res = 40 + 10 * sin(e / 5) + (e >= 20 ? 25 : 0)
    fast = 1500 + (e < 30 ? e * 5 : 150 - (e - 30) * 4)
    print fast, name[s + 1], large, sprintf("%.4f", cost), e * 250 + (e % 3), "junk" e, arm,
          sprintf("%.1f", res), (e < 10 ? "observe" : "on"), purge, 1500 - e * 3, e,
          sprintf("%.1f", res * 1.4 + 8), s, 1500 + (e < 25 ? e : 25 + (e - 25) * 8), 32, 0.01, (e < 25 ? "warmup" : "burst"), 1000 + e
  }
}' >"$tmp/shuffled.csv"

# png_ok FILE WHAT: FILE is a PNG of more than a few KB
png_ok() {
  [ -f "$1" ] || { fail "$2: no $1"; return; }
  [ "$(head -c 8 "$1" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] || fail "$2: $1 is not a PNG"
  [ "$(stat -c %s "$1")" -gt 5000 ] || fail "$2: $1 has only $(stat -c %s "$1") bytes"
}
# run WHAT STATUS ARG...: learn-plot.sh ARG... exits STATUS; output in $tmp/out
run() {
  local what=$1 want=$2 rc=0; shift 2
  "$plot" "$@" >"$tmp/out" 2>&1 || rc=$?
  [ "$rc" = "$want" ] || { fail "$what: exit status $rc, not $want:"; sed 's/^/    /' "$tmp/out"; }
}

run "shuffled log, OUT given" 0 "$tmp/shuffled.csv" "$tmp/charts/given.png"
png_ok "$tmp/charts/given.png" "shuffled log"
grep -qx "# plot: .*charts/given.png" "$tmp/out" || { fail "no '# plot:' line:"; cat "$tmp/out"; }

run "shuffled log, default OUT" 0 "$tmp/shuffled.csv"
png_ok "$tmp/shuffled.png" "default OUT (FILE.png)"

printf 't_ms,cost\n0,1.2\n100,1.1\n200,0.9\n' >"$tmp/cost-only.csv"
run "a log with t_ms and cost only" 0 "$tmp/cost-only.csv"
png_ok "$tmp/cost-only.png" "cost only"

sed 's/t_ms/time/' "$tmp/shuffled.csv" >"$tmp/no-t.csv"
run "no t_ms column" 2 "$tmp/no-t.csv"
grep -q "no t_ms column" "$tmp/out" || { fail "no t_ms: the message is missing:"; cat "$tmp/out"; }
[ ! -e "$tmp/no-t.png" ] || fail "no t_ms: a chart was drawn"

run "missing file" 2 "$tmp/nonexistent.csv"
grep -q "nonexistent.csv: no such file" "$tmp/out" || { fail "missing file: the message is missing:"; cat "$tmp/out"; }

: >"$tmp/empty.csv"
run "empty file" 2 "$tmp/empty.csv"
grep -q "is empty" "$tmp/out" || { fail "empty file: the message is missing:"; cat "$tmp/out"; }

[ $fails = 0 ] || { echo "$fails failure(s)"; exit 1; }
echo "learn_plot: all passed"
