#!/usr/bin/env bash
# larson_report.sh -- scripts/larson.sh's reading of result files, on small
# synthetic results (no benchmark runs, no build, no gnuplot):
#   compare  `larson.sh compare A.json B.json`: medians, ratios, the noise
#            verdicts, the geometric means, --alloc, and the error exits
#   table    `larson.sh report FILE.json --no-chart`: the "~" noise marks
#            of the table and the chart's data (ratio, range, flag)
#   real_table, real_compare  the same for workloads timed in seconds (the
#            real profile): the ratio is a speed (> 1 faster), a slower
#            time is "slower", a skipped program is listed
#
# Usage: tests/larson_report.sh compare|table|real_table|real_compare
# The noise rule under test (larson.sh --help): X against R is within noise
# when min(X)/max(R) <= 1 <= max(X)/min(R).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
larson=$root/scripts/larson.sh
tmp=$(mktemp -d "${TMPDIR:-/tmp}/larson_report.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
# expect_line FILE REGEX WHAT: FILE has a line matching the extended REGEX
expect_line() { grep -Eq -- "$2" "$1" || { fail "$3: no line matching /$2/ in:"; sed 's/^/    /' "$1"; }; }

# result FILE PROFILE SCALE ROW...: a result file as larson.sh writes it;
# ROW = "WORKLOAD ALLOC MOPS_SAMPLES RSS_SAMPLES [seconds]" with
# comma-separated samples ("-" = every run failed); with "seconds" the
# samples are wall seconds ("metric": "seconds"), without it the row has no
# metric field, as the files written before it. $SKIP_EXTRA: more entries
# of "skipped" (JSON, each with a leading comma).
result() {
  local file=$1 profile=$2 scale=$3 first=1 w a m r met med rmed; shift 3
  median() { tr , '\n' | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
  {
    echo "{"
    echo "  \"profile\": \"$profile\","
    echo "  \"command\": \"scripts/larson.sh $profile --reps 3\","
    echo "  \"date\": \"2026-12-02T10:00Z\","
    echo "  \"machine\": \"test machine, 2 cpus\","
    echo "  \"hakmem_revision\": \"abc1234\","
    echo "  \"reps\": 3, \"warmup\": 1, \"scale\": $scale, \"reference\": \"mimalloc\","
    echo "  \"seconds\": 12,"
    echo '  "skipped": [{"allocator": "jemalloc", "reason": "/nonexistent/libjemalloc.so.2 not found"}'"${SKIP_EXTRA:-}"'],'
    echo '  "results": ['
    for row in "$@"; do
      read -r w a m r met <<<"$row"
      [ $first = 1 ] || echo ","
      first=0
      if [ "$met" = seconds ]; then
        med=$(median <<<"$m") rmed=$(median <<<"$r")
        printf '    {"workload": "%s", "allocator": "%s", "metric": "seconds", "command": "perl -e '"'"'print \\"1\\\\n\\"'"'"'", "library": "x.so",\n' "$w" "$a"
        printf '     "programs": "/usr/bin/perl", "setup": "",\n'
        printf '     "median_seconds": %s, "samples_seconds": [%s], "failed_runs": 0,\n' "$med" "${m//,/, }"
        printf '     "peak_rss_kib": %s, "samples_rss_kib": [%s],\n' "$rmed" "${r//,/, }"
        printf '     "speed_ratio_mimalloc": 1.00, "rss_ratio_mimalloc": 1.00,\n     "last_result": "1"}'
        continue
      fi
      if [ "$m" = - ]; then
        printf '    {"workload": "%s", "allocator": "%s", "command": "bench_x 1", "library": "x.so",\n' "$w" "$a"
        printf '     "median_mops": null, "samples_mops": [], "failed_runs": 3,\n'
        printf '     "peak_rss_kib": null, "samples_rss_kib": [],\n'
        printf '     "mops_ratio_mimalloc": null, "rss_ratio_mimalloc": null,\n     "last_result": ""}'
        continue
      fi
      med=$(median <<<"$m") rmed=$(median <<<"$r")
      printf '    {"workload": "%s", "allocator": "%s", "command": "bench_x \\"1\\"", "library": "build/libhakmem.so",\n' "$w" "$a"
      printf '     "median_mops": %s, "samples_mops": [%s], "failed_runs": 0,\n' "$med" "${m//,/, }"
      printf '     "peak_rss_kib": %s, "samples_rss_kib": [%s],\n' "$rmed" "${r//,/, }"
      printf '     "mops_ratio_mimalloc": 1.00, "rss_ratio_mimalloc": 1.00,\n'
      printf '     "last_result": "RESULT bench=x mops=%s"}' "$med"
    done
    printf '\n  ]\n}\n'
  } >"$file"
}

# status_of CMD...: run CMD, its stdout+stderr in $tmp/out, its status echoed
status_of() { local rc=0; "$@" >"$tmp/out" 2>&1 || rc=$?; echo $rc; }
# succeeds CMD...: run CMD, show its output ($tmp/out), and fail unless it exits 0
succeeds() {
  local rc
  rc=$(status_of "$@")
  cat "$tmp/out"
  [ "$rc" = 0 ] || fail "${2:-$1} exited $rc, wanted 0"
}

test_compare() {
  # A and B: hakmem before and after. Throughput: fast 2.00 outside the noise
  # (19/10.5 = 1.81 > 1), noisy 1.10 within (9/12 = 0.75 <= 1 <= 13/8),
  # slow 0.50 outside; geomean (2 x 1.1 x 0.5)^(1/3) = 1.03. Peak RSS: fast
  # 2.00 larger, noisy 1.00 within (1000/1100 .. 1000/900), slow 1.00 within
  # (identical runs: the range is exactly 1); geomean 2^(1/3) = 1.26.
  # only_a is only in A, only_b only in B; mimalloc is only in A.
  result "$tmp/a.json" quick 0.25 \
    "fast hakmem 10,10.5,9.5 1024,1024,1024" \
    "noisy hakmem 10,12,8 1000,1100,900" \
    "slow hakmem 10,10,10 1024,1024,1024" \
    "only_a hakmem 1,1,1 100,100,100" \
    "fast mimalloc 5,5,5 1024,1024,1024"
  result "$tmp/b.json" quick 0.25 \
    "fast hakmem 20,21,19 2048,2048,2048" \
    "noisy hakmem 11,13,9 1000,1000,1000" \
    "slow hakmem 5,5,5 1024,1024,1024" \
    "only_b hakmem 1,1,1 100,100,100"
  succeeds "$larson" compare "$tmp/a.json" "$tmp/b.json"
  local rc
  cp "$tmp/out" "$tmp/cmp"
  expect_line "$tmp/cmp" '^fast +10\.00 +20\.00 +2\.00 +faster +1\.0 +2\.0 +2\.00 +larger$' "fast"
  expect_line "$tmp/cmp" '^noisy +10\.00 +11\.00 +1\.10 +within noise +1\.0 +1\.0 +1\.00 +within noise$' "noisy"
  expect_line "$tmp/cmp" '^slow +10\.00 +5\.00 +0\.50 +slower +1\.0 +1\.0 +1\.00 +within noise$' "slow"
  expect_line "$tmp/cmp" '^geomean +1\.03 +1\.26 *$' "geomean"
  expect_line "$tmp/cmp" '^# outside the noise: throughput 2 of 3, peak RSS 1 of 3$' "count outside the noise"
  expect_line "$tmp/cmp" '^# only in A \(not compared\): only_a$' "workload only in A"
  expect_line "$tmp/cmp" '^# only in B \(not compared\): only_b$' "workload only in B"
  ! grep -q '^only_' "$tmp/cmp" || fail "a workload missing from one file was compared"

  # B against itself: every ratio 1.00 and within noise
  rc=$(status_of "$larson" compare "$tmp/b.json" "$tmp/b.json")
  [ "$rc" = 0 ] || fail "compare B B exited $rc"
  expect_line "$tmp/out" '^geomean +1\.00 +1\.00 *$' "B against itself"
  ! grep -Eq 'faster|slower|larger|smaller' "$tmp/out" || fail "B against itself is outside the noise"

  # --alloc, and the errors: exit 2 with a message that says what is wrong
  rc=$(status_of "$larson" compare "$tmp/a.json" "$tmp/b.json" --alloc mimalloc)
  [ "$rc" = 2 ] || fail "--alloc mimalloc (absent from B) exited $rc, wanted 2"
  expect_line "$tmp/out" "mimalloc is not in .*b\.json \(it has: hakmem\)" "allocator absent from B"
  rc=$(status_of "$larson" compare "$tmp/a.json" "$tmp/missing.json")
  [ "$rc" = 2 ] || fail "a missing file: exit $rc, wanted 2"
  expect_line "$tmp/out" 'missing\.json: no such file' "missing file"
  result "$tmp/mt.json" mt 1 "fast hakmem 1,1,1 1,1,1"
  rc=$(status_of "$larson" compare "$tmp/a.json" "$tmp/mt.json")
  [ "$rc" = 2 ] || fail "mismatched profiles: exit $rc, wanted 2"
  expect_line "$tmp/out" 'the profiles differ \(.*a\.json: quick, .*mt\.json: mt\)' "mismatched profiles"
  echo '{"something": "else"}' >"$tmp/other.json"
  rc=$(status_of "$larson" compare "$tmp/a.json" "$tmp/other.json")
  [ "$rc" = 2 ] || fail "a file that is no result: exit $rc, wanted 2"
  expect_line "$tmp/out" 'other\.json is not a result file' "not a result file"
  rc=$(status_of "$larson" compare "$tmp/a.json")
  [ "$rc" = 2 ] || fail "one file: exit $rc, wanted 2"
  expect_line "$tmp/out" 'compare wants two result files' "one file"
}

test_table() {
  # hakmem against mimalloc (the reference): w1 1.50 outside the noise
  # (14/11 = 1.27 > 1), w2 1.05 within (9/11 <= 1 <= 12/9); RSS: w1 1.00
  # within (identical), w2 0.50 outside. glibc's w1 runs all failed.
  result "$tmp/r.json" quick 0.25 \
    "w1 hakmem 15,14,16 2048,2048,2048" \
    "w1 mimalloc 10,9,11 2048,2048,2048" \
    "w1 glibc - -" \
    "w2 hakmem 10.5,9,12 1024,1024,1024" \
    "w2 mimalloc 10,9,11 2048,2048,2048"
  succeeds "$larson" report "$tmp/r.json" --no-chart
  [ -s "$tmp/r.txt" ] || fail "report wrote no table beside the JSON"
  expect_line "$tmp/r.txt" '^# ~ after a ratio: within noise' "the legend of ~"
  expect_line "$tmp/r.txt" '^w1 +hakmem +15\.00 +1\.50 +13% +2\.0 +1\.00 ~ *$' "w1 hakmem"
  expect_line "$tmp/r.txt" '^w1 +mimalloc +10\.00 +1\.00 +20% +2\.0 +1\.00 *$' "the reference is never flagged"
  expect_line "$tmp/r.txt" '^w1 +glibc +FAIL .*\(3 failed runs\)' "failed runs"
  expect_line "$tmp/r.txt" '^w2 +hakmem +10\.50 +1\.05 ~ +29% +1\.0 +0\.50 *$' "w2 hakmem"
  expect_line "$tmp/r.txt" '^# not measured: jemalloc \(' "skipped allocator"
  # the chart's data: x, allocator, ratio, low, high, flag, workload
  expect_line "$tmp/r.dat" '^-0\.2667 0 1\.5000 1\.2727 1\.7778 0 w1$' "chart data, w1 throughput"
  expect_line "$tmp/r.dat" '^0\.7333 0 1\.0500 0\.8182 1\.3333 1 w2$' "chart data, w2 throughput"
  expect_line "$tmp/r.gp" 'with yerrorbars' "error bars in the chart"
  expect_line "$tmp/r.gp" 'fs pattern 4 .*title .hatched: within noise' "the noise legend in the chart"
  [ "$(grep -c ' w1$' "$tmp/r.dat")" = 4 ] || fail "glibc's failed workload has a bar"
}

# real programs, timed in seconds (lower is better), as the real profile
# writes them: the table's x and compare's ratio are speeds (> 1: faster)
test_real_table() {
  # hakmem against mimalloc: w1 takes twice as long: speed 1.0/2.0 = 0.50,
  # range 0.9/2.1 = 0.43 .. 1.1/1.9 = 0.58, outside the noise; w2 speed
  # 1.1/1.0 = 1.10, range 1.0/1.3 .. 1.2/0.8, within; w3 twice as fast: 2.00
  SKIP_EXTRA=', {"workload": "sqlite_index", "reason": "sqlite3 not found"}' \
  result "$tmp/s.json" real 1 \
    "w1 hakmem 2.0,1.9,2.1 2048,2048,2048 seconds" \
    "w1 mimalloc 1.0,0.9,1.1 1024,1024,1024 seconds" \
    "w2 hakmem 1.0,0.8,1.3 1024,1024,1024 seconds" \
    "w2 mimalloc 1.1,1.0,1.2 1024,1024,1024 seconds" \
    "w3 hakmem 0.5,0.5,0.5 1024,1024,1024 seconds" \
    "w3 mimalloc 1.0,1.0,1.0 1024,1024,1024 seconds"
  succeeds "$larson" report "$tmp/s.json" --no-chart
  expect_line "$tmp/s.txt" '^workload +allocator +seconds +x ' "the value column says seconds"
  expect_line "$tmp/s.txt" "x = speed = mimalloc's seconds / these, > 1: faster than mimalloc" "the legend of a speed"
  expect_line "$tmp/s.txt" '^w1 +hakmem +2\.000 +0\.50 +10% +2\.0 +2\.00 *$' "w1 hakmem: slower, outside the noise"
  expect_line "$tmp/s.txt" '^w1 +mimalloc +1\.000 +1\.00 +20% +1\.0 +1\.00 *$' "w1 mimalloc"
  expect_line "$tmp/s.txt" '^w2 +hakmem +1\.000 +1\.10 ~ +50% +1\.0 +1\.00 ~ *$' "w2 hakmem: within noise"
  expect_line "$tmp/s.txt" '^w3 +hakmem +0\.500 +2\.00 +0% +1\.0 +1\.00 ~ *$' "w3 hakmem: faster"
  expect_line "$tmp/s.txt" '^# not run: sqlite_index \(sqlite3 not found\)$' "the skipped program"
  expect_line "$tmp/s.txt" '^# not measured: jemalloc \(' "the skipped allocator"
  # the chart's data (x, allocator, ratio, low, high, flag, workload) and title
  expect_line "$tmp/s.dat" '^-0\.2000 0 0\.5000 0\.4286 0\.5789 0 w1$' "chart data, w1 speed"
  expect_line "$tmp/s.dat" '^0\.8000 0 1\.1000 0\.7692 1\.5000 1 w2$' "chart data, w2 speed"
  expect_line "$tmp/s.dat" '^1\.8000 0 2\.0000 2\.0000 2\.0000 0 w3$' "chart data, w3 speed"
  expect_line "$tmp/s.gp" "set title 'speed relative to mimalloc \(mimalloc''s median seconds / median seconds; higher is better\)'" "the chart's title"
}

test_real_compare() {
  # A and B: hakmem before and after. fast: B takes half A's time, A/B 2.00,
  # range 1.9/1.05 = 1.81 > 1: faster; slow: B takes twice as long, 0.50,
  # slower; noisy: 1.0/1.1 = 0.91 within noise (0.8/1.3 .. 1.2/0.9);
  # geomean (2 x 0.5 x 0.909)^(1/3) = 0.97
  result "$tmp/ra.json" real 1 \
    "fast hakmem 2.0,2.1,1.9 1024,1024,1024 seconds" \
    "slow hakmem 1.0,1.0,1.0 1024,1024,1024 seconds" \
    "noisy hakmem 1.0,1.2,0.8 1024,1024,1024 seconds"
  result "$tmp/rb.json" real 1 \
    "fast hakmem 1.0,1.05,0.95 1024,1024,1024 seconds" \
    "slow hakmem 2.0,2.0,2.0 2048,2048,2048 seconds" \
    "noisy hakmem 1.1,1.3,0.9 1024,1024,1024 seconds"
  succeeds "$larson" compare "$tmp/ra.json" "$tmp/rb.json"
  expect_line "$tmp/out" '^workload +A s +B s +A/B +time +A RSS_MiB' "the heads say seconds and A/B"
  expect_line "$tmp/out" "^# seconds \(wall time, lower is better\): the ratio is A's time / B's time" "the legend of a speed"
  expect_line "$tmp/out" '^fast +2\.000 +1\.000 +2\.00 +faster +1\.0 +1\.0 +1\.00 +within noise$' "fast"
  expect_line "$tmp/out" '^slow +1\.000 +2\.000 +0\.50 +slower +1\.0 +2\.0 +2\.00 +larger$' "slow: a longer time is slower"
  expect_line "$tmp/out" '^noisy +1\.000 +1\.100 +0\.91 +within noise ' "noisy"
  expect_line "$tmp/out" '^geomean +0\.97 +1\.26 *$' "geomean"
  expect_line "$tmp/out" '^# outside the noise: time 2 of 3, peak RSS 1 of 3$' "count outside the noise"
}

case ${1:-} in
  compare) test_compare ;;
  table) test_table ;;
  real_table) test_real_table ;;
  real_compare) test_real_compare ;;
  *) echo "usage: $0 compare|table|real_table|real_compare" >&2; exit 2 ;;
esac
[ "$fails" = 0 ] || { echo "$fails check(s) failed"; exit 1; }
echo "all checks passed"
