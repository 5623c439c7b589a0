#!/usr/bin/env bash
# larson_real.sh -- a smoke run of `scripts/larson.sh real` (the real
# programs, timed in seconds) at a fiftieth of their size, hakmem and glibc,
# one run each after the warm-up: a few seconds. python3 is taken as missing
# (HAKMEM_REAL_HIDE, which larson.sh --help documents): the way to see a
# skipped program on a machine that has them all, and the slowest program
# where python3 is a pyenv shim. Checks, from the JSON:
#   - every present program (perl, sort, sqlite3, as found on PATH) has a
#     result per allocator: "metric": "seconds", a positive median, no failed
#     run, a peak RSS, and its own output (the element count at scale 0.02:
#     perl prints 20000), so --scale reached the program;
#   - the speed ratio is glibc's seconds / hakmem's (> 1: hakmem faster);
#   - python3's two programs have a skip entry and no result, and the table
#     says so.
#
# Usage: tests/larson_real.sh BUILD_DIR   (with libhakmem.so and bench/peakrss)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$(cd "${1:?usage: $0 BUILD_DIR}" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/larson_real.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
for f in libhakmem.so bench/peakrss; do
  [ -e "$build/$f" ] || { echo "SKIPPED: $build/$f is not built"; exit 77; }
done
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
HK_ROOT=$root
. "$root/scripts/lib.sh"   # hk_json_flat

rc=0
HAKMEM_REAL_HIDE=python3 "$root/scripts/larson.sh" real --reps 1 --scale 0.02 --alloc hakmem,glibc \
  --no-chart --no-build --build-dir "$build" --timeout 60 --json "$tmp/real.json" >"$tmp/out" 2>&1 || rc=$?
cat "$tmp/out"
[ "$rc" = 0 ] || { echo "FAIL: larson.sh real exited $rc"; exit 1; }
hk_json_flat <"$tmp/real.json" >"$tmp/flat"

# field WORKLOAD ALLOC KEY: the value of KEY in that result ("" if none)
field() { awk -F'\t' -v w="$1" -v a="$2" -v k="$3" '
  { split($1, p, "/") }
  p[1] == "results" && p[3] == "workload" { W[p[2]] = $2 }
  p[1] == "results" && p[3] == "allocator" { A[p[2]] = $2 }
  p[1] == "results" && p[3] == k && length(p) == 3 { V[p[2]] = $2 }
  END { for (r in W) if (W[r] == w && A[r] == a) print V[r] }' "$tmp/flat"; }
# skipped WORKLOAD: its skip reason ("" if it has none)
skipped() { awk -F'\t' -v w="$1" '
  { split($1, p, "/") }
  p[1] == "skipped" && p[3] == "workload" { W[p[2]] = $2 }
  p[1] == "skipped" && p[3] == "reason" { R[p[2]] = $2 }
  END { for (k in W) if (W[k] == w) print R[k] }' "$tmp/flat"; }

[ "$(awk -F'\t' '$1 == "profile" { print $2 }' "$tmp/flat")" = real ] || fail "the profile is not real"
declare -A needs=([perl_hash]=perl [sort]=sort [sqlite_index]=sqlite3)
# what each program prints at scale 0.02 (a regular expression)
declare -A prints=([perl_hash]='^20000$' [sort]='^[0-9]+$' [sqlite_index]='^[0-9]+$')
measured=0
for w in perl_hash sort sqlite_index; do
  if ! command -v "${needs[$w]}" >/dev/null; then
    [ -n "$(skipped "$w")" ] || fail "$w: ${needs[$w]} is missing here, but $w has no skip entry"
    continue
  fi
  measured=$((measured + 1))
  for a in hakmem glibc; do
    [ "$(field "$w" "$a" metric)" = seconds ] || fail "$w $a: no result with \"metric\": \"seconds\""
    awk -v v="$(field "$w" "$a" median_seconds)" 'BEGIN { exit !(v > 0) }' || fail "$w $a: no positive median_seconds"
    [ "$(field "$w" "$a" failed_runs)" = 0 ] || fail "$w $a: failed runs"
    awk -v v="$(field "$w" "$a" peak_rss_kib)" 'BEGIN { exit !(v > 0) }' || fail "$w $a: no peak RSS"
    [[ $(field "$w" "$a" last_result) =~ ${prints[$w]} ]] ||
      fail "$w $a: printed '$(field "$w" "$a" last_result)', wanted /${prints[$w]}/"
  done
  want=$(hk_ratio "$(field "$w" glibc median_seconds)" "$(field "$w" hakmem median_seconds)")
  [ "$(field "$w" hakmem speed_ratio_glibc)" = "$want" ] ||
    fail "$w: speed_ratio_glibc is $(field "$w" hakmem speed_ratio_glibc), wanted glibc's seconds / hakmem's = $want"
  [ "$(field "$w" glibc speed_ratio_glibc)" = 1.00 ] || fail "$w: the reference's own ratio is not 1.00"
done
[ "$measured" -gt 0 ] || fail "not one program was measured (sort is always there on Debian)"
for w in python_objects python_json; do
  [ "$(skipped "$w")" = "python3 not found" ] || fail "$w: no skip entry 'python3 not found' (hidden by HAKMEM_REAL_HIDE)"
  [ -z "$(field "$w" hakmem metric)" ] || fail "$w: hidden, but it has a result"
  grep -q "^# not run: $w (python3 not found)$" "$tmp/real.txt" || fail "$w: the table does not say it was not run"
  grep -q "skipping $w: python3 not found" "$tmp/out" || fail "$w: no message saying it is skipped"
done
grep -Eq '^workload +allocator +seconds ' "$tmp/real.txt" || fail "the table's value column does not say seconds"

[ "$fails" = 0 ] || { echo "$fails check(s) failed"; exit 1; }
echo "all checks passed"
