#!/usr/bin/env bash
# learn_bench_smoke.sh -- a smoke run of scripts/learn-bench.sh: the phased
# benchmark for the learning layer (bench/bench_learn_phases) at a fiftieth
# of its work, one run under glibc and one under hakmem, a short idle time:
# a few seconds. Checks that
#   - the script exits 0 and prints the markdown table: a row per
#     configuration (glibc, hk), every median a number (returned ms may be
#     "never"), the reference's ratio 1.00, and the line saying what the
#     values are;
#   - a configuration whose library is missing (mimalloc, looked for in an
#     empty folder) is skipped with a message, not run;
#   - the JSON has every run's RESULT line (so the benchmark, which checks
#     the pattern of every block before freeing it, finished).
#
# Usage: tests/learn_bench_smoke.sh BUILD_DIR   (with libhakmem.so and bench/)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$(cd "${1:?usage: $0 BUILD_DIR}" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/learn_bench_smoke.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
for f in libhakmem.so bench/peakrss bench/bench_learn_phases; do
  [ -e "$build/$f" ] || { echo "SKIPPED: $build/$f is not built"; exit 77; }
done
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

rc=0
mkdir "$tmp/no-peers"
HAKMEM_PEER_DIR=$tmp/no-peers "$root/scripts/learn-bench.sh" --no-build --build-dir "$build" \
  --reps 1 --scale 0.02 --idle 0.3 --config glibc=glibc --config hk=hakmem: --config mimalloc \
  --json "$tmp/runs.json" >"$tmp/out" 2>"$tmp/err" || rc=$?
cat "$tmp/out"
[ "$rc" = 0 ] || { echo "FAIL: learn-bench.sh exited $rc; its stderr:"; cat "$tmp/err"; exit 1; }

num='^[0-9]+(\.[0-9]+)?$'
grep -q '^| config | tiny s | mid s | large s | prodcons s | idle s | total s | peak RSS MB | idle RSS MB | returned ms | total / glibc |$' \
  "$tmp/out" || fail "no table header (with the ratio to glibc, the first configuration)"
for name in glibc hk; do
  row=$(grep "^| $name |" "$tmp/out" || true)
  [ -n "$row" ] || { fail "no row for $name"; continue; }
  IFS='|' read -r -a cell <<<"$row"   # cell[1] the name, cell[2..11] the values
  [ ${#cell[@]} = 12 ] || { fail "$name: ${#cell[@]} cells, wanted 12: $row"; continue; }
  for ((k = 2; k <= 11; k++)); do
    v=${cell[$k]// /}
    [[ $v =~ $num ]] || { [ $k = 10 ] && [ "$v" = never ]; } || fail "$name: column $k is '$v', not a number: $row"
  done
  awk -v s="${cell[7]// /}" 'BEGIN { exit !(s > 0) }' || fail "$name: total seconds not positive: $row"
done
[ "$(grep '^| glibc |' "$tmp/out" | awk -F'|' '{ gsub(/ /, "", $12); print $12 }')" = 1.00 ] ||
  fail "the reference's own ratio is not 1.00"
grep -q 'values are medians of interleaved runs' "$tmp/out" || fail "no line saying what the values are"
! grep -q '^| mimalloc |' "$tmp/out" || fail "mimalloc is missing (HAKMEM_PEER_DIR), yet it has a row"
grep -q 'skipping mimalloc: .* not found' "$tmp/err" || fail "no message saying mimalloc is skipped"
[ "$(grep -o '"RESULT bench=learn_phases [^"]*returned_ms=[^"]*"' "$tmp/runs.json" | wc -l)" = 2 ] ||
  fail "the JSON does not hold the two runs' RESULT lines"

[ "$fails" = 0 ] || { echo "$fails check(s) failed"; exit 1; }
echo "all checks passed"
