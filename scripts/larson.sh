#!/usr/bin/env bash
# larson.sh -- the unified benchmark runner: every bench/ workload of a
# profile under hakmem and its peers, in alternation; a table of median
# throughput, peak RSS and the ratios to mimalloc, each marked when it is
# within noise; results as JSON (and CSV); a chart (PNG) of both ratios per
# workload, with error bars. The real profile times real programs (python3,
# perl, sort, sqlite3) instead: wall seconds, lower is better.
#
# Usage: scripts/larson.sh PROFILE [OPTIONS]
#        scripts/larson.sh --list
#        scripts/larson.sh report FILE.json [--no-chart]
#        scripts/larson.sh compare A.json B.json [--alloc NAME]
#
#   PROFILE  quick, tiny, mid, mixed, large, mt, full or real (--list says
#            what each runs); quick takes about a minute and runs every
#            workload; real runs the programs of scripts/real-programs.sh
#   report   the table and the chart of a result file again (written beside
#            it), without running anything
#   compare  one allocator (--alloc, default hakmem) in two result files of
#            one profile -- hakmem before and after a change: per workload
#            the medians in A and B, B/A for throughput and peak RSS (for a
#            workload timed in seconds, A/B of the times: > 1 is still
#            faster), and whether that is outside the noise; then the geometric mean of
#            the ratios. Exits 2, saying why, when a file is missing or no
#            result file, the profiles differ or the allocator is not in both
#
# Options:
#   --alloc LIST       comma-separated allocators, in run order (default
#                      hakmem,mimalloc,jemalloc,tcmalloc,glibc); "system" is
#                      glibc too; NAME=PATH adds any preloadable library, and
#                      NAME=PATH:VAR=VALUE[:VAR=VALUE] runs it with that
#                      environment (hakmem-bgoff=build/libhakmem.so:HAKMEM_BACKGROUND=0);
#                      PATH may be an allocator's name (hakmem-bgoff=hakmem:HAKMEM_BACKGROUND=0)
#   --reps N           measured runs per workload and allocator (default: 3
#                      for quick, 5 otherwise), after one warm-up round
#   --threads LIST     thread counts for the multi-threaded workloads (those
#                      shown as NAME:T<n>), e.g. 1,2,4 (default: per profile)
#   --scale F          multiply every run's length by F (0.1: a ten times
#                      shorter run, to try a profile out); real: the
#                      programs' element counts
#   --json FILE        where the results go (default
#                      <build dir>/larson/PROFILE.json); the table (.txt),
#                      the chart (.png) and gnuplot's data and script (.dat,
#                      .gp) are written next to it, with the same name
#   --csv FILE         also write the results as CSV
#   --ref NAME         the allocator the ratios are taken to (default
#                      mimalloc; glibc when mimalloc is not there)
#   --no-chart         do not draw the chart (.dat and .gp are still written)
#   --install-peers    apt-get install libmimalloc2.0 libjemalloc2
#                      libtcmalloc-minimal4 first
#   --build-dir DIR    CMake build directory (default $HAKMEM_BUILD_DIR, which
#                      is relative to the repository, or build)
#   --no-build         use what is built already
#   --timeout S        kill a run after S seconds (default 300)
#   --list             list the profiles and workloads, and exit
#   -h, --help
#
# How it measures (docs/BENCHMARKS.md): for each
# workload, one warm-up round (every allocator once, not counted), then N
# rounds, each running every allocator once in the same order (A B C A B C
# ...), so the drifts of a shared machine hit all of them alike. A run is
#   peakrss -o F timeout S env LD_PRELOAD=<lib> <build>/bench/bench_X ARGS
# (glibc: LD_PRELOAD unset). Throughput is the mops= of the benchmark's
# RESULT line, peak RSS is wait4()'s ru_maxrss (what /usr/bin/time -f %M
# prints). The real profile's runs are
#   peakrss -o F timeout S env LD_PRELOAD=<lib> sh -c '<program>'
# in a scratch directory (after an untimed setup, e.g. sort's input file),
# timed by the wall clock: the metric is seconds, lower is better, and the
# JSON says so per result ("metric": "seconds"; "programs": where PATH found
# them -- a wrapper such as pyenv's shim is timed with the program, so put
# the real one first in PATH). Its ratio is a speed,
# mimalloc's seconds / these seconds, so that x > 1 is faster everywhere.
# The table gives medians, the spread ((max-min)/median: how noisy the
# machine was) and the ratios to mimalloc: Mops (or speed) x > 1 is faster,
# RSS x < 1 is leaner. A run that fails (crash, timeout, no RESULT line, a
# program's non-zero exit) is reported, counted in the table and left out of
# the medians.
#
# Noise: a ratio X/R (X against the reference R, or B/A in compare) is
# "within noise" when its range over the runs contains 1:
#   min(X) / max(R)  <=  1  <=  max(X) / min(R)
# i.e. some run of X was as fast (as large) as some run of R, and the runs
# alone cannot tell them apart. The table marks such a ratio with "~"; the
# chart hatches its bar, and every bar's error bar is that range (the
# reference's own bar: min(R)/max(R) to max(R)/min(R)). Throughput and peak
# RSS alike; seconds too, by the speed R/X, whose range min(R)/max(X) to
# max(R)/min(X) contains 1 exactly when X/R's does (and a longer time is
# "slower" in compare). With one run per allocator only equal results are
# within noise.
#
# A peer that is not installed is reported at the start and in the table,
# and skipped; so is hakmem when it does not build (an older libhakmem.so in
# the build directory is used, with a warning, if there is one); so is a real
# program that is not on PATH. HAKMEM_REAL_HIDE=perl,sqlite3 takes those
# programs as missing (a way to see that on a machine that has them).
#
# The chart needs gnuplot; when it is missing the script tries
# `apt-get install gnuplot-nox` and, if that fails, says so and skips the
# chart. HAKMEM_PEER_DIR=DIR looks for the peers' libraries in DIR instead of
# /usr/lib/<multiarch> (a way to see what happens when they are missing).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$root/scripts/real-programs.sh"   # HK_REAL_*: the real profile's programs
usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }
abspath() { case $1 in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }
# repo_rel PATH: PATH relative to the repository when it lies inside it (what
# the results record must make sense on another machine)
repo_rel() { case $1 in "$root"/*) echo "${1#"$root"/}" ;; *) echo "$1" ;; esac; }
die() { echo "larson.sh: $*" >&2; exit 2; }
say() { echo "larson.sh: $*" >&2; }

# ---- workloads ----------------------------------------------------------------
# Each workload is a bench/ program with arguments. Its length (operations or
# seconds) is given at scale 1 -- about a second per run for the faster
# allocators on a 2-core machine -- and multiplied by the profile's scale
# (quick: 0.25) and by --scale. Names ending in ":T" take a thread count.
declare -A WL_DESC=(
  [tiny_hot]="1 thread, malloc+free of 32 B in LIFO batches of 100 (the TLS fast path)"
  [mid_hot]="1 thread, malloc+free of 16 KiB in LIFO batches of 100 (the medium fast path)"
  [random_mixed]="1 thread, 4096 blocks of 8-128 B replaced at random"
  [random_mid]="1 thread, 1000 blocks of 8-32 KiB replaced at random"
  [mid_mt:T]="T threads, each 1000 blocks of 8-32 KiB replaced at random, every page written"
  [mid_big_mt:T]="T threads, each 200 blocks of 128-256 KiB (the largest medium classes) replaced at random, every page written"
  [cross_thread]="producer/consumer, 16-512 B: every free is a remote free"
  [cross_thread_mid]="producer/consumer, 8-32 KiB: every free is a remote free"
  [larson:T]="Larson server benchmark, T threads, 5000 blocks of 8-1024 B each; each thread hands its blocks to a new thread after 100000 steps"
  [larson_mid:T]="Larson with 1000 blocks of 16-32 KiB, a new thread every 20000 steps"
  [realloc_growth]="64 buffers grown by realloc in steps of 1-256 B to targets of 64 B-1 MiB"
  [large]="1 thread, 32 blocks of 256 KiB-8 MiB replaced at random, every page written"
  [large_mt:T]="T threads, each 16 blocks of 256 KiB-8 MiB replaced at random, every page written"
  [phased]="4 phases (tiny 1 thread, mid 2, large 4, mixed 2) with new threads each; Mops = geometric mean of the phases"
  [many_to_one:T]="T threads allocate blocks of 4 B-2 MiB in turn and hand them in batches to one thread that frees them all"
  [alloc_test:T]="T threads, each 8192 blocks of 8 B-8 KiB (log-uniform: as many per octave) replaced at random (alloc-test's kind of churn)"
  [cache_scratch:T]="T threads free an 8 B object the main thread made, then malloc, write and free 8 B objects (passive false sharing, Hoard's cache-scratch)"
  [big_heap]="1 thread builds a heap of 1.9 GiB of address space in 16-256 KiB blocks (one byte of each written), then frees it: does a block cost more when the heap is large?"
)
WL_ORDER=(tiny_hot mid_hot random_mixed random_mid mid_mt:T mid_big_mt:T cross_thread cross_thread_mid
          larson:T larson_mid:T realloc_growth large large_mt:T phased many_to_one:T
          alloc_test:T cache_scratch:T big_heap)

# n BASE: BASE * scale, at least MIN (default 1), as an integer
n() { awk -v b="$1" -v s="$wl_scale" -v m="${2:-1}" 'BEGIN { v = int(b * s + 0.5); print (v < m ? m : v) }'; }
# secs BASE: BASE * scale seconds, at least 0.02
secs() { awk -v b="$1" -v s="$wl_scale" 'BEGIN { v = b * s; if (v < 0.02) v = 0.02; printf "%g", v }'; }

# wl_cmd WORKLOAD THREADS: set WL_CMD to the program and its arguments
wl_cmd() {
  local t=$2
  case $1 in
    tiny_hot)         WL_CMD=(bench_tiny_hot "$(n 1000000)" 32 100) ;;
    mid_hot)          WL_CMD=(bench_tiny_hot "$(n 30000)" 16384 100) ;;
    random_mixed)     WL_CMD=(bench_random_mixed "$(n 40000000)" 4096 8 128) ;;
    random_mid)       WL_CMD=(bench_random_mixed "$(n 8000000)" 1000 8192 32768) ;;
    mid_mt:T)         WL_CMD=(bench_mid_mt "$t" "$(n $(( 6000000 / t )))" 1000 8192 32768) ;;
    mid_big_mt:T)     WL_CMD=(bench_mid_mt "$t" "$(n $(( 400000 / t )))" 200 131073 262144) ;;
    cross_thread)     WL_CMD=(bench_cross_thread "$(n 3000000 64)") ;;
    cross_thread_mid) WL_CMD=(bench_cross_thread "$(n 1000000 64)" 64 8192 32768) ;;
    larson:T)         WL_CMD=(bench_larson "$(secs 1)" "$t" 8 1024 5000 100000) ;;
    larson_mid:T)     WL_CMD=(bench_larson "$(secs 1)" "$t" 16384 32768 1000 20000) ;;
    realloc_growth)   WL_CMD=(bench_realloc_growth "$(n 1500000)" 64 1048576 256) ;;
    large)            WL_CMD=(bench_large "$(n 2000)" 32 262144 8388608 1) ;;
    large_mt:T)       WL_CMD=(bench_large "$(n $(( 2000 / t )))" 16 262144 8388608 "$t") ;;
    phased)           WL_CMD=(bench_phased "$(secs 0.5)") ;;
    many_to_one:T)    WL_CMD=(bench_many_to_one "$t" "$(n $(( 80000 / t )) 20)") ;;
    alloc_test:T)     WL_CMD=(bench_alloc_test "$t" "$(n $(( 24000000 / t )))" 8192 8 8192) ;;
    cache_scratch:T)  WL_CMD=(bench_cache_scratch "$t" "$(n 1000 4)" 8 "$(( 200000 / t ))") ;;
    big_heap)         WL_CMD=(bench_big_heap "$(n 30)" 20000 16384 262144) ;;
    *) die "internal: no workload $1" ;;
  esac
}

# ---- profiles ---------------------------------------------------------------
# workloads | default threads | scale | default reps | description
declare -A PROFILE=(
  [quick]="tiny_hot random_mixed mid_mt:T cross_thread larson:T realloc_growth large phased|2|0.25|3|every kind of workload once, short runs (about a minute with 5 allocators)"
  [tiny]="tiny_hot random_mixed cross_thread larson:T cache_scratch:T|2|1|5|small blocks (<= 1 KiB): fast path, random sizes, remote frees, Larson, false sharing"
  [mid]="mid_hot random_mid mid_mt:T cross_thread_mid larson_mid:T|1,2|1|5|medium blocks (8-32 KiB): fast path, random, threads, remote frees, Larson"
  [mixed]="random_mixed realloc_growth phased larson:T alloc_test:T|2|1|5|mixed sizes: random small, realloc growth, the phased workload, Larson, alloc-test's churn"
  [large]="large large_mt:T mid_big_mt:T realloc_growth|2|1|5|large blocks (256 KiB-8 MiB), alone and in threads, the largest medium ones (128-256 KiB) in threads, and realloc growth to 1 MiB"
  [mt]="mid_mt:T larson:T larson_mid:T large_mt:T cross_thread many_to_one:T|1,2,4|1|5|thread sweep (--threads, default 1,2,4) of the multi-threaded workloads"
  [full]="tiny_hot mid_hot random_mixed random_mid mid_mt:T mid_big_mt:T cross_thread cross_thread_mid larson:T larson_mid:T realloc_growth large large_mt:T phased many_to_one:T alloc_test:T cache_scratch:T big_heap|1,2,4|1|5|every workload, every thread count, full-length runs (tens of minutes)"
  [real]="${HK_REAL_ORDER[*]}|1|1|5|real programs, wall seconds (lower is better); a missing one is skipped"
)
PROFILE_ORDER=(quick tiny mid mixed large mt full real)

list_profiles() {
  echo "profiles (scripts/larson.sh PROFILE):"
  local p f
  for p in "${PROFILE_ORDER[@]}"; do
    IFS='|' read -r -a f <<<"${PROFILE[$p]}"
    local th="threads ${f[1]}, "; [[ ${f[0]} == *:T* ]] || th=
    printf "  %-6s %s -- %s (%s%s reps)\n" "$p" "${f[4]}" "${f[0]}" "$th" "${f[3]}"
  done
  echo
  echo "workloads (:T = one run per thread count):"
  local w
  for w in "${WL_ORDER[@]}"; do printf "  %-17s %s\n" "$w" "${WL_DESC[$w]}"; done
  echo
  echo "real programs (profile real; a missing one is skipped):"
  local miss
  for w in "${HK_REAL_ORDER[@]}"; do
    miss=$(hk_real_missing "$w") && miss=" (not here: $miss not found)"
    printf "  %-17s %s%s\n" "$w" "${HK_REAL_DESC[$w]}" "$miss"
  done
}

# ---- reading results: the table and chart, compare ---------------------------------
# (need scripts/lib.sh sourced: hk_json_flat, hk_shown, hk_have_gnuplot,
# hk_gnuplot_term)

# render JSON CHART: from a result file, the table (JSON's name with .txt,
# printed too), gnuplot's data and script (.dat, .gp) and, when CHART is 1,
# the chart (.png)
render() {
  local json=$1 chart=$2 base=${1%.json} term err
  [ "$chart" = 0 ] || hk_have_gnuplot || chart=0
  term=$(hk_gnuplot_term)
  hk_json_flat <"$json" |
    awk -f "$root/scripts/larson-common.awk" -f "$root/scripts/larson-report.awk" -v dat="$base.dat" -v gp="$base.gp" \
        -v png="${base##*/}.png" -v term="$term" >"$base.txt"
  cat "$base.txt"
  echo "# results: $(hk_shown "$json"), table: $(hk_shown "$base.txt")${csv:+, CSV: $(hk_shown "$csv")}"
  [ "$chart" = 1 ] || return 0
  [ -s "$base.gp" ] || { echo "# no chart: the reference allocator was not measured"; return 0; }
  err=$(mktemp)
  if (cd "$(dirname "$base")" && gnuplot "${base##*/}.gp") 2>"$err"; then
    echo "# chart: $(hk_shown "$base.png") (gnuplot script: $(hk_shown "$base.gp"))"
  else
    echo "# no chart: gnuplot failed:"; sed 's/^/#   /' "$err" | head -n 10
  fi
  rm -f "$err"
}

# report FILE.json [--no-chart]: render a result file again
report_main() {
  local json= chart=1
  while [ $# -gt 0 ]; do
    case $1 in
      --no-chart) chart=0; shift ;;
      -h|--help) usage; exit 0 ;;
      -*) die "report: unknown option $1 (see --help)" ;;
      *) [ -z "$json" ] || die "report: one result file at a time"
         json=$1; shift ;;
    esac
  done
  [ -n "$json" ] || die "report wants a result file: scripts/larson.sh report FILE.json [--no-chart]"
  check_results "$json"
  [[ $json == *.json ]] || die "report: $json: the name must end in .json (the table and chart go beside it)"
  render "$(abspath "$json")" "$chart"
}

# check_results FILE: FILE exists and is a result file of larson.sh
check_results() {
  [ -e "$1" ] || die "$1: no such file"
  [ -f "$1" ] && [ -r "$1" ] || die "$1: not a readable file"
  hk_json_flat <"$1" | awk -F'\t' '$1 == "profile" { p = 1 } $1 ~ /^results\/0\// { r = 1 } END { exit !(p && r) }' ||
    die "$1 is not a result file of scripts/larson.sh (no profile or no results)"
}

# compare A.json B.json [--alloc NAME]: one allocator in two result files
compare_main() {
  local alloc=hakmem files=() tmpd f pa pb has
  while [ $# -gt 0 ]; do
    case $1 in
      --alloc) alloc=${2:?}; shift 2 ;;
      --alloc=*) alloc=${1#*=}; shift ;;
      -h|--help) usage; exit 0 ;;
      -*) die "compare: unknown option $1 (see --help)" ;;
      *) files+=("$1"); shift ;;
    esac
  done
  [ ${#files[@]} = 2 ] || die "compare wants two result files: scripts/larson.sh compare A.json B.json [--alloc NAME]"
  for f in "${files[@]}"; do check_results "$f"; done
  tmpd=$(mktemp -d "${TMPDIR:-/tmp}/larson-compare.XXXXXX")
  hk_json_flat <"${files[0]}" >"$tmpd/a"
  hk_json_flat <"${files[1]}" >"$tmpd/b"
  pa=$(awk -F'\t' '$1 == "profile" { print $2 }' "$tmpd/a")
  pb=$(awk -F'\t' '$1 == "profile" { print $2 }' "$tmpd/b")
  [ "$pa" = "$pb" ] || { rm -rf "$tmpd"
    die "compare: the profiles differ (${files[0]}: $pa, ${files[1]}: $pb); compare two runs of one profile"; }
  for f in a b; do
    has=$(awk -F'\t' '$1 ~ /^results\/[0-9]+\/allocator$/ && !seen[$2]++ { printf "%s%s", (n++ ? ", " : ""), $2 }' "$tmpd/$f")
    [[ ", $has, " == *", $alloc, "* ]] || { rm -rf "$tmpd"
      die "compare: $alloc is not in $([ $f = a ] && echo "${files[0]}" || echo "${files[1]}") (it has: $has); pick one with --alloc"; }
  done
  awk -f "$root/scripts/larson-common.awk" -f "$root/scripts/larson-compare.awk" -v alloc="$alloc" -v name_a="${files[0]}" -v name_b="${files[1]}" \
    "$tmpd/a" "$tmpd/b"
  rm -rf "$tmpd"
}

# ---- options --------------------------------------------------------------------
profile= alloc_list=hakmem,mimalloc,jemalloc,tcmalloc,glibc reps= threads= scale=1
json= csv= ref= chart=1 install_peers=0 do_build=1 run_timeout=300
cmdline="scripts/larson.sh $*"
case ${1:-} in
  report|compare)
    HK_ROOT=$root
    . "$root/scripts/lib.sh"
    "${1}_main" "${@:2}"
    exit 0 ;;
esac
while [ $# -gt 0 ]; do
  case $1 in
    --alloc|--allocators) alloc_list=${2:?}; shift 2 ;;
    --alloc=*|--allocators=*) alloc_list=${1#*=}; shift ;;
    --reps) reps=${2:?}; shift 2 ;;
    --reps=*) reps=${1#*=}; shift ;;
    --threads) threads=${2:?}; shift 2 ;;
    --threads=*) threads=${1#*=}; shift ;;
    --scale) scale=${2:?}; shift 2 ;;
    --scale=*) scale=${1#*=}; shift ;;
    --json) json=$(abspath "${2:?}"); shift 2 ;;
    --json=*) json=$(abspath "${1#*=}"); shift ;;
    --csv) csv=$(abspath "${2:?}"); shift 2 ;;
    --csv=*) csv=$(abspath "${1#*=}"); shift ;;
    --ref) ref=${2:?}; shift 2 ;;
    --ref=*) ref=${1#*=}; shift ;;
    --no-chart) chart=0; shift ;;
    --install-peers) install_peers=1; shift ;;
    --build-dir) HAKMEM_BUILD_DIR=$(abspath "${2:?}"); shift 2 ;;
    --build-dir=*) HAKMEM_BUILD_DIR=$(abspath "${1#*=}"); shift ;;
    --no-build) do_build=0; shift ;;
    --timeout) run_timeout=${2:?}; shift 2 ;;
    --timeout=*) run_timeout=${1#*=}; shift ;;
    --list) list_profiles; exit 0 ;;
    -h|--help) usage; exit 0 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) [ -z "$profile" ] || die "one profile at a time ('$profile', then '$1')"
       profile=$1; shift ;;
  esac
done
[ -n "$profile" ] || { usage >&2; echo >&2; list_profiles >&2; exit 2; }
[ -n "${PROFILE[$profile]+x}" ] || die "unknown profile '$profile' (--list shows them)"
IFS='|' read -r p_workloads p_threads p_scale p_reps _ <<<"${PROFILE[$profile]}"
reps=${reps:-$p_reps}
threads=${threads:-$p_threads}
[[ $reps =~ ^[1-9][0-9]*$ ]] || die "--reps wants a positive number"
[[ $threads =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] || die "--threads wants a list like 1,2,4"
[[ $scale =~ ^[0-9]*\.?[0-9]+$ ]] && awk -v s="$scale" 'BEGIN { exit !(s > 0) }' ||
  die "--scale wants a positive number"
[[ $run_timeout =~ ^[1-9][0-9]*$ ]] || die "--timeout wants a number of seconds"
wl_scale=$(awk -v a="$p_scale" -v b="$scale" 'BEGIN { printf "%g", a * b }')
IFS=, read -r -a wanted <<<"$alloc_list"
for a in "${wanted[@]}"; do   # names are checked before the build, libraries after
  case $a in hakmem|mimalloc|jemalloc|tcmalloc|glibc|system|?*=?*) ;;
    *) die "unknown allocator '$a' (hakmem, mimalloc, jemalloc, tcmalloc, glibc or NAME=PATH)" ;;
  esac
done


HK_ROOT=$root
. "$root/scripts/lib.sh"
cd "$root"
[ -n "$json" ] || json=$HK_BUILD/larson/$profile.json
base=${json%.json}
mkdir -p "$(dirname "$json")"
[ -z "$csv" ] || mkdir -p "$(dirname "$csv")"

# the runs: workload instances (NAME with :T replaced by :T<n>), commands and
# metrics (mops: a bench/ program's RESULT line; seconds: a real program's
# wall time, with a setup command); real programs that are missing are skipped
runs=() wl_skipped=() wl_skip_why=()
declare -A run_cmd run_setup run_metric run_progs
IFS=, read -r -a thread_list <<<"$threads"
for w in $p_workloads; do
  if [ -n "${HK_REAL_DESC[$w]+x}" ]; then
    if miss=$(hk_real_missing "$w"); then
      say "skipping $w: $miss not found${HAKMEM_REAL_HIDE:+ (or hidden by HAKMEM_REAL_HIDE)}"
      wl_skipped+=("$w"); wl_skip_why+=("$miss not found")
      continue
    fi
    hk_real_case "$w" "$wl_scale"
    runs+=("$w"); run_cmd[$w]=$HK_REAL_CMD run_setup[$w]=$HK_REAL_SETUP run_metric[$w]=seconds
    for p in $HK_REAL_NEEDS; do run_progs[$w]+="${run_progs[$w]:+ }$(command -v "$p")"; done
  elif [[ $w == *:T ]]; then
    for t in "${thread_list[@]}"; do
      wl_cmd "$w" "$t"; runs+=("${w%:T}:T$t"); run_cmd[${w%:T}:T$t]="${WL_CMD[*]}" run_metric[${w%:T}:T$t]=mops
    done
  else
    wl_cmd "$w" 1; runs+=("$w"); run_cmd[$w]="${WL_CMD[*]}" run_metric[$w]=mops
  fi
done
[ ${#runs[@]} -gt 0 ] || die "no workload to run (every program of the profile is missing)"
unset HAKMEM_REAL_HIDE   # the runner's, not an option: hakmem would warn about it in every run

[ $install_peers = 0 ] || hk_install_peers

# ---- build ------------------------------------------------------------------------
if [ $do_build = 1 ]; then
  log=$HK_BUILD/larson-build.log
  mkdir -p "$HK_BUILD"; : >"$log"
  say "building in $(hk_shown "$HK_BUILD") (log: $(hk_shown "$log"))"
  hk_build_benches "$log" || die "cannot build bench/"
  hakmem_built=1
  [[ ! ,$alloc_list, =~ ,([^,=]*=)?hakmem[:,] ]] || hk_build_lib "$log" || hakmem_built=0
else
  hk_find_benches
  hakmem_built=1
fi
[ -x "$HK_BENCH_BIN/peakrss" ] || die "$(hk_shown "$HK_BENCH_BIN/peakrss") not found (build first, or drop --no-build)"
for r in "${runs[@]}"; do
  [ "${run_metric[$r]}" = mops ] || continue
  read -r prog _ <<<"${run_cmd[$r]}"
  [ -x "$HK_BENCH_BIN/$prog" ] || die "$(hk_shown "$HK_BENCH_BIN/$prog") is missing (rebuild: drop --no-build)"
done

# ---- allocators -------------------------------------------------------------------
names=() libs=() skipped=() skip_why=()
for a in "${wanted[@]}"; do
  rc=0; why=$(HK_PWD=$root hk_alloc_lib "$a") || rc=$?   # recorded: relative to the repository
  [ $rc != 2 ] || exit 2
  if [ $rc != 0 ]; then
    say "$why"
    skipped+=("${a%%=*}"); skip_why+=("${why#skipping * }")
    continue
  fi
  hk_alloc_lib "$a" >/dev/null
  [ "$HK_NAME" != system ] || HK_NAME=glibc
  [[ " ${names[*]} " != *" $HK_NAME "* ]] || die "allocator $HK_NAME named twice"
  [ "$HK_NAME" != hakmem ] || [ $hakmem_built = 1 ] ||
    say "warning: hakmem did not rebuild; measuring the older $(hk_shown "$HK_LIB")"
  names+=("$HK_NAME"); libs+=("$HK_LIB")
done
[ ${#names[@]} -gt 0 ] || die "no allocator to run"
if [ -z "$ref" ]; then   # mimalloc, or when it is missing the first of glibc, the others
  for ref in mimalloc glibc "${names[0]}"; do [[ " ${names[*]} " != *" $ref "* ]] || break; done
  [ $ref = mimalloc ] || say "note: mimalloc is not measured: the ratios are to $ref instead"
fi
[ "$ref" != system ] || ref=glibc
[[ " ${names[*]} " == *" $ref "* ]] ||
  say "note: $ref (--ref) is not measured: no ratios, no chart"

# ---- runs ---------------------------------------------------------------------------
tmp=$(mktemp -d "${TMPDIR:-/tmp}/larson.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
declare -A samples rss fails last_result   # samples: Mops/s or seconds, by run_metric

total=$(( ${#runs[@]} * ${#names[@]} * (reps + 1) ))
done_runs=0 started=$(date +%s)
tty=0; [ -t 2 ] && tty=1
say "profile $profile: ${#runs[@]} workloads x ${#names[@]} allocators (${names[*]}) x (1 warm-up + $reps runs) = $total runs"

fmt_mops() { awk -v m="$1" 'BEGIN { if (m >= 100) printf "%.1f", m; else if (m >= 1) printf "%.2f", m; else if (m >= 0.01) printf "%.4f", m; else printf "%.6f", m }'; }
fmt_mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
# fmt_val RUN VALUE: a sample of RUN with its unit
fmt_val() { if [ "${run_metric[$1]}" = seconds ]; then echo "$2 s"; else echo "$(fmt_mops "$2") Mops/s"; fi; }

# progress RUN ALLOC WHAT RESULT
progress() {
  local el=$(( $(date +%s) - started ))
  local line
  line=$(printf "[%3d/%d %3ds] %-18s %-9s %-8s %s" "$done_runs" "$total" "$el" "$1" "$2" "$3" "$4")
  if [ $tty = 1 ]; then printf '\r\033[K%s' "$line" >&2; else echo "$line" >&2; fi
}

# run_one RUN ALLOC_INDEX ROUND(0 = warm-up)
run_one() {
  local run=$1 name=${names[$2]} lib=${libs[$2]} round=$3 what cmd ok=1 val
  what=warm-up; [ "$round" = 0 ] || what="run $round/$reps"
  [ $tty = 0 ] || progress "$run" "$name" "$what" "..."
  done_runs=$(( done_runs + 1 ))
  if [ "${run_metric[$run]}" = seconds ]; then
    hk_run_real "$tmp" "$run_timeout" "$lib" "$tmp/work" "${run_cmd[$run]}" || ok=0
    val=$HK_SECS
  else
    read -r -a cmd <<<"${run_cmd[$run]}"
    cmd[0]=$HK_BENCH_BIN/${cmd[0]}
    hk_run_bench "$tmp" "$run_timeout" "$lib" "${cmd[@]}" || ok=0
    val=$HK_MOPS
  fi
  if [ $ok = 0 ]; then
    fails[$run|$name]=$(( ${fails[$run|$name]:-0} + 1 ))
    progress "$run" "$name" "$what" "FAILED ($HK_RC)"
    [ $tty = 0 ] || echo >&2
    { echo "larson.sh: $run under $name failed (exit status $HK_RC): ${run_cmd[$run]}"
      tail -n 3 "$tmp/err" | sed 's/^/    /'; } >&2
    return 0
  fi
  progress "$run" "$name" "$what" "$(fmt_val "$run" "$val")  $(fmt_mib "$HK_RSS_KB") MiB"
  [ "$round" != 0 ] || return 0
  samples[$run|$name]+="$val "
  last_result[$run|$name]=$HK_RESULT
  rss[$run|$name]+="$HK_RSS_KB "
}

for run in "${runs[@]}"; do
  if [ "${run_metric[$run]}" = seconds ]; then   # a fresh scratch directory, set up once
    rm -rf "$tmp/work"; mkdir "$tmp/work"
    [ -z "${run_setup[$run]}" ] || (cd "$tmp/work" && sh -c "${run_setup[$run]}") ||
      die "$run: its setup failed: ${run_setup[$run]}"
  fi
  for ((r = 0; r <= reps; r++)); do
    for ((i = 0; i < ${#names[@]}; i++)); do run_one "$run" "$i" "$r"; done
  done
  if [ $tty = 1 ]; then   # one line per finished workload stays on the screen
    printf '\r\033[K%-18s' "$run" >&2
    for name in "${names[@]}"; do
      m=$(hk_median <<<"${samples[$run|$name]:-}")
      printf ' %s %s' "$name" "${m:+$(fmt_val "$run" "$m")}" >&2; [ -n "$m" ] || printf FAIL >&2
    done
    echo >&2
  fi
done
elapsed=$(( $(date +%s) - started ))

# ---- JSON, CSV ------------------------------------------------------------------------
machine=$(hk_machine)
revision=$(hk_revision)
date=$(date -u +%Y-%m-%dT%H:%MZ)
jstr() { local s=${1//\\/\\\\}; s=${s//\"/\\\"}; printf '"%s"' "$s"; }
jnum() { if [ -n "$1" ] && [ "$1" != - ]; then printf '%s' "$1"; else printf null; fi; }
jarr() { local v out= ; for v in $1; do out+="${out:+, }$v"; done; printf '[%s]' "$out"; }

# per metric: the name of the median and samples fields (median_mops,
# samples_mops), and the ratio's: Mops/s X / Mops/s R, or seconds R / seconds X
# (speed), so that a ratio > 1 is faster for both
declare -A ratio_name=([mops]=mops [seconds]=speed)
# CSV: one metric per profile (the real profile's is seconds)
csv_metric=${run_metric[${runs[0]}]}
[ -z "$csv" ] || echo "workload,allocator,command,runs,failed,median_$csv_metric,min_$csv_metric,max_$csv_metric,${ratio_name[$csv_metric]}_ratio_$ref,median_rss_kib,rss_ratio_$ref" >"$csv"
{
  echo "{"
  echo "  \"profile\": $(jstr "$profile"),"
  echo "  \"command\": $(jstr "$cmdline"),"
  echo "  \"date\": $(jstr "$date"),"
  echo "  \"machine\": $(jstr "$machine"),"
  echo "  \"hakmem_revision\": $(jstr "$revision"),"
  echo "  \"reps\": $reps, \"warmup\": 1, \"scale\": $wl_scale, \"reference\": $(jstr "$ref"),"
  echo "  \"seconds\": $elapsed,"
  printf '  "skipped": ['
  sep=
  for ((i = 0; i < ${#skipped[@]}; i++)); do
    printf '%s{"allocator": %s, "reason": %s}' "$sep" "$(jstr "${skipped[$i]}")" "$(jstr "${skip_why[$i]}")"; sep=', '
  done
  for ((i = 0; i < ${#wl_skipped[@]}; i++)); do
    printf '%s{"workload": %s, "reason": %s}' "$sep" "$(jstr "${wl_skipped[$i]}")" "$(jstr "${wl_skip_why[$i]}")"; sep=', '
  done
  echo "],"
  echo "  \"results\": ["
} >"$json"

first=1
for run in "${runs[@]}"; do
  metric=${run_metric[$run]}
  ref_m=$(hk_median <<<"${samples[$run|$ref]:-}")
  ref_r=$(hk_median <<<"${rss[$run|$ref]:-}")
  for ((ai = 0; ai < ${#names[@]}; ai++)); do
    name=${names[$ai]}
    vals=${samples[$run|$name]:-} rvals=${rss[$run|$name]:-}
    m=$(hk_median <<<"$vals") r=$(hk_median <<<"$rvals")
    nf=${fails[$run|$name]:-0}
    lo= hi= n=0 mx=- rx=-
    if [ -n "$m" ]; then
      read -r n lo hi < <(hk_values <<<"$vals" | awk 'NR == 1 { lo = $1 } { hi = $1 } END { print NR, lo, hi }')
      if [ "$metric" = seconds ]; then mx=$(hk_ratio "$ref_m" "$m"); else mx=$(hk_ratio "$m" "$ref_m"); fi
      rx=$(hk_ratio "$r" "$ref_r")
    fi
    [ -z "$csv" ] || echo "$run,$name,\"${run_cmd[$run]//\"/\"\"}\",$n,$nf,$m,$lo,$hi,${mx#-},$r,${rx#-}" >>"$csv"
    {
      [ $first = 1 ] || echo ","
      printf '    {"workload": %s, "allocator": %s, "metric": %s, "command": %s, "library": %s,\n' \
        "$(jstr "$run")" "$(jstr "$name")" "$(jstr "$metric")" "$(jstr "${run_cmd[$run]}")" "$(jstr "$(repo_rel "${libs[$ai]:-(none: glibc)}")")"
      [ -z "${run_progs[$run]:-}" ] ||
        printf '     "programs": %s, "setup": %s,\n' "$(jstr "${run_progs[$run]}")" "$(jstr "${run_setup[$run]}")"
      printf '     "median_%s": %s, "samples_%s": %s, "failed_runs": %s,\n' "$metric" "$(jnum "$m")" "$metric" "$(jarr "$vals")" "$nf"
      printf '     "peak_rss_kib": %s, "samples_rss_kib": %s,\n' "$(jnum "$r")" "$(jarr "$rvals")"
      printf '     "%s_ratio_%s": %s, "rss_ratio_%s": %s,\n' "${ratio_name[$metric]}" "$ref" "$(jnum "$mx")" "$ref" "$(jnum "$rx")"
      printf '     "last_result": %s}' "$(jstr "${last_result[$run|$name]:-}")"
    } >>"$json"
    first=0
  done
done
printf '\n  ]\n}\n' >>"$json"

# ---- table and chart, from the JSON --------------------------------------------------
[ $tty = 0 ] || printf '\r\033[K' >&2
echo
render "$json" "$chart"
