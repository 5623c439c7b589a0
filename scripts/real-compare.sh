#!/usr/bin/env bash
# real-compare.sh -- time real programs under several allocators, in
# alternation, and print the median wall time and peak RSS of each.
#
# Usage: scripts/real-compare.sh [--reps N] [--alloc LIST] [--no-build]
#   --alloc LIST  allocators in run order (default hakmem,mimalloc,jemalloc,
#                 tcmalloc,glibc); NAME=PATH[:VAR=VALUE...] adds a library run
#                 with that environment, e.g.
#                 hakmem-bgoff=build/libhakmem.so:HAKMEM_BACKGROUND=0
#   --reps N      measured runs of each program per allocator (default 5),
#                 after one warm-up round
#
# Programs (each skipped, with a message, when missing): python3 object churn
# (a dict of 1M lists), python3 JSON (dump + load of 300k records), perl
# hash build (1M keys), sort -n of 2M random numbers, sqlite3 with an index
# (300k rows). Time is wall-clock (bash's SECONDS is too coarse: date +%s.%N);
# peak RSS comes from bench/peakrss (wait4's ru_maxrss). Ratios are to the
# first allocator of the list; spread is (max - min) / median of the runs: a
# ratio closer to 1 than the spreads is within noise.
set -euo pipefail
HK_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$HK_ROOT/scripts/lib.sh"

reps=5 alloc_list=hakmem,mimalloc,jemalloc,tcmalloc,glibc build=1
while [ $# -gt 0 ]; do
  case $1 in
    --reps) reps=${2:?}; shift 2 ;;
    --alloc) alloc_list=${2:?}; shift 2 ;;
    --no-build) build=0; shift ;;
    -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "real-compare.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ "$build" = 1 ]; then
  log=$HK_BUILD/real-compare-build.log   # kept: the messages point at it
  mkdir -p "$HK_BUILD"; : >"$log"
  hk_build_lib "$log" || true
  hk_build_benches "$log"
else
  hk_find_benches
fi

# name | programs needed | shell command (run in $work)
cases=(
  "python_objects|python3|python3 -c 'd = {str(i): [i] * 9 for i in range(1000000)}; print(len(d))'"
  "python_json|python3|python3 -c 'import json; s = json.dumps([{\"a\": i, \"b\": str(i) * 3} for i in range(300000)]); print(sum(len(json.loads(s)) for _ in range(3)))'"
  "perl_hash|perl|perl -e 'my %h; \$h{\$_} = [\$_] for 1..1000000; print scalar(keys %h), \"\\n\"'"
  "sort|sort|sort -n numbers.txt | tail -1"
  "sqlite_index|sqlite3|rm -f t.db; printf 'create table t(a integer, b text); create index ia on t(a); create index ib on t(b); with recursive c(x) as (select 1 union all select x + 1 from c where x < 300000) insert into t select abs(random()) %% 100000, hex(randomblob(8)) from c; select count(*) from t where a < 500;' | sqlite3 t.db"
)
awk 'BEGIN { srand(7); for (i = 0; i < 2000000; i++) print int(rand() * 1e9) }' >"$work/numbers.txt"

IFS=, read -r -a allocs <<<"$alloc_list"
names=() libs=()
for a in "${allocs[@]}"; do
  if hk_alloc_lib "$a"; then names+=("$HK_NAME"); libs+=("$HK_LIB"); fi
done

# run LIB CMD: one timed run; sets T (seconds) and R (peak RSS, KiB)
run() {
  local lib=$1 cmd=$2 pre=(env -u LD_PRELOAD) extra=() t0 t1
  if [[ $lib == *'|'* ]]; then read -r -a extra <<<"${lib#*|}"; lib=${lib%%|*}; fi
  [ -z "$lib" ] || pre=(env "LD_PRELOAD=$lib" "${extra[@]}")
  t0=$(date +%s.%N)
  (cd "$work" && "$HK_BENCH_BIN/peakrss" -o "$work/rss" "${pre[@]}" sh -c "$cmd" >/dev/null 2>&1) || { T=fail; R=; return; }
  t1=$(date +%s.%N)
  T=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
  R=$(cat "$work/rss")
}

echo "# scripts/real-compare.sh --reps $reps --alloc $alloc_list"
echo "# $(hk_machine); hakmem $(hk_revision); medians of $reps alternating runs; x = ratio to ${names[0]}"
printf '| program |'; for n in "${names[@]}"; do printf ' %s s | x | spread | RSS MiB |' "$n"; done; echo
printf '|---|'; for _ in "${names[@]}"; do printf -- '---|---|---|---|'; done; echo
for c in "${cases[@]}"; do
  IFS='|' read -r name progs cmd <<<"$c"
  missing=
  for p in $progs; do command -v "$p" >/dev/null || missing=$p; done
  if [ -n "$missing" ]; then echo "| $name | skipped: $missing not found |"; continue; fi
  declare -A times=() rsss=()
  for ((r = 0; r <= reps; r++)); do
    for i in "${!names[@]}"; do
      run "${libs[$i]}" "$cmd"
      [ "$r" = 0 ] && continue   # warm-up
      times[$i]+="$T " rsss[$i]+="$R "
    done
  done
  printf '| %s |' "$name"
  t0=
  for i in "${!names[@]}"; do
    t=$(echo "${times[$i]}" | tr ' ' '\n' | grep -v fail | hk_median)
    rss=$(echo "${rsss[$i]}" | hk_median)
    [ -n "$t0" ] || t0=$t
    spread=$(echo "${times[$i]}" | tr ' ' '\n' | grep -v fail | hk_values |
             awk -v m="${t:-0}" 'NR == 1 { lo = $1 } { hi = $1 } END { if (m > 0) printf "%.0f%%", (hi - lo) / m * 100 }')
    printf ' %s | %s | %s | %s |' "${t:-fail}" "$(hk_ratio "$t" "$t0")" "$spread" \
      "$(awk -v k="${rss:-0}" 'BEGIN { printf "%.1f", k / 1024 }')"
  done
  echo
  unset times rsss
done
