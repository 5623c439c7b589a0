#!/usr/bin/env bash
# bench-compare.sh -- run the bench/ programs under hakmem and its peers, in
# alternation, and print median throughput and peak RSS side by side.
#
# Usage: scripts/bench-compare.sh [OPTIONS] [BENCH[:ARG,ARG...]]...
#
#   BENCH is a bench/bench_<name> program (tiny_hot, random_mixed, mid_mt,
#   cross_thread, larson, realloc_growth, large, phased); ARGs after ':'
#   are its positional arguments, comma-separated ("mid_mt:4" = 4 threads,
#   "tiny_hot:500000,64" = 500000 iterations of 64 B). See the top of
#   bench/bench_<name>.c for the arguments.
#   Default list: tiny_hot random_mixed mid_mt:1 mid_mt:2 mid_mt:4 cross_thread
#
# Options:
#   --reps N           measured runs per allocator and benchmark (default 5),
#                      after one warm-up round that is not counted
#   --allocators LIST  comma-separated, in run order (default
#                      hakmem,mimalloc,jemalloc,tcmalloc,system); NAME=PATH
#                      adds any preloadable library, e.g. old=/tmp/libhakmem.so
#   --csv FILE         also write the table as CSV
#   --build-dir DIR    CMake build directory (default $HAKMEM_BUILD_DIR, which is
#                      relative to the repository, or build)
#   --no-build         do not configure/build; use what is in the build dir
#   --timeout S        kill a run after S seconds (default 300)
#   --install-peers    apt-get install libmimalloc2.0 libjemalloc2
#                      libtcmalloc-minimal4 first
#   -h, --help
#
# How it measures: every round runs each allocator once, in the same order
# (A B C D E A B C D E ...), so slow drifts of a shared machine hit all of
# them alike. Each run is
#   peakrss -o F timeout S env LD_PRELOAD=<lib> build/bench/bench_X ARGS
# ("system" unsets LD_PRELOAD: glibc malloc). Mops/s comes from the
# benchmark's RESULT line, peak RSS from wait4()'s ru_maxrss (bench/peakrss.c,
# the same figure as /usr/bin/time -f %M). The table shows the medians and the
# ratio to mimalloc: Mops x>1 is faster than mimalloc, RSS x<1 is leaner.
# A run that fails (crash, no RESULT line) is reported and left out.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
reps=5
allocators=hakmem,mimalloc,jemalloc,tcmalloc,system
csv=
do_build=1
install_peers=0
run_timeout=300
benches=()

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }
abspath() { case $1 in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }
die() { echo "bench-compare: $*" >&2; exit 2; }

while [ $# -gt 0 ]; do
  case $1 in
    --reps) reps=${2:?}; shift 2 ;;
    --reps=*) reps=${1#*=}; shift ;;
    --allocators) allocators=${2:?}; shift 2 ;;
    --allocators=*) allocators=${1#*=}; shift ;;
    --csv) csv=${2:?}; shift 2 ;;
    --csv=*) csv=${1#*=}; shift ;;
    --build-dir) HAKMEM_BUILD_DIR=$(abspath "${2:?}"); shift 2 ;;
    --build-dir=*) HAKMEM_BUILD_DIR=$(abspath "${1#*=}"); shift ;;
    --timeout) run_timeout=${2:?}; shift 2 ;;
    --timeout=*) run_timeout=${1#*=}; shift ;;
    --no-build) do_build=0; shift ;;
    --install-peers) install_peers=1; shift ;;
    -h|--help) usage; exit 0 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) benches+=("$1"); shift ;;
  esac
done
[[ $reps =~ ^[1-9][0-9]*$ ]] || die "--reps wants a positive number"
[ ${#benches[@]} -gt 0 ] || benches=(tiny_hot random_mixed mid_mt:1 mid_mt:2 mid_mt:4 cross_thread)
if [ -n "$csv" ]; then case $csv in /*) ;; *) csv=$PWD/$csv ;; esac; fi
HK_ROOT=$root
. "$root/scripts/lib.sh"
cd "$root"

[ $install_peers = 0 ] || hk_install_peers

# ---- build ----------------------------------------------------------------
if [ $do_build = 1 ]; then
  log=$HK_BUILD/bench-compare-build.log
  mkdir -p "$HK_BUILD"; : >"$log"
  hk_build_benches "$log" || die "cannot build bench/"
  hakmem_built=1
  [[ ,$allocators, != *,hakmem,* ]] || hk_build_lib "$log" || hakmem_built=0
else
  hk_find_benches
  hakmem_built=1
fi
bindir=$HK_BENCH_BIN
[ -x "$bindir/peakrss" ] || die "$(hk_shown "$bindir/peakrss") not found (build first, or drop --no-build)"

# ---- allocators -------------------------------------------------------------
names=() libs=()
IFS=, read -r -a wanted <<<"$allocators"
for a in "${wanted[@]}"; do
  rc=0; hk_alloc_lib "$a" || rc=$?
  [ $rc = 2 ] && exit 2
  [ $rc = 0 ] || continue
  [ "$HK_NAME" != hakmem ] || [ $hakmem_built = 1 ] ||
    echo "warning: hakmem did not rebuild; measuring the older $(hk_shown "$HK_LIB")"
  names+=("$HK_NAME"); libs+=("$HK_LIB")
done
[ ${#names[@]} -gt 0 ] || die "no allocator to run"

# ---- runs -----------------------------------------------------------------
tmp=$(mktemp -d "${TMPDIR:-/tmp}/bench-compare.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
declare -A mops rss fails   # key "bench|alloc" -> space-separated values / count

# run_one BENCH_SPEC ALLOC_INDEX MEASURED(0/1)
run_one() {
  local spec=$1 name=${names[$2]} lib=${libs[$2]} keep=$3
  local bench=${spec%%:*} args=()
  [[ $spec == *:* ]] && IFS=, read -r -a args <<<"${spec#*:}"
  if ! hk_run_bench "$tmp" "$run_timeout" "$lib" "$bindir/bench_$bench" "${args[@]}"; then
    fails[$spec|$name]=$(( ${fails[$spec|$name]:-0} + 1 ))
    { echo "bench-compare: $spec under $name failed (exit status: $HK_RC):"; tail -n 5 "$tmp/err"; } >&2
    return 0
  fi
  [ "$keep" = 1 ] || return 0
  mops[$spec|$name]+="$HK_MOPS "
  rss[$spec|$name]+="$HK_RSS_KB "
}

for spec in "${benches[@]}"; do
  [ -x "$bindir/bench_${spec%%:*}" ] || die "no benchmark '${spec%%:*}' ($(hk_shown "$bindir/bench_${spec%%:*}"))"
done

for spec in "${benches[@]}"; do
  echo "bench-compare: $spec: warm-up + $reps rounds of ${names[*]}" >&2
  for ((i = 0; i < ${#names[@]}; i++)); do run_one "$spec" "$i" 0; done
  for ((r = 0; r < reps; r++)); do
    for ((i = 0; i < ${#names[@]}; i++)); do run_one "$spec" "$i" 1; done
  done
done

# ---- table ----------------------------------------------------------------
values() { hk_values; }
median() { hk_median; }
ratio() { hk_ratio "$@"; }

echo
echo "# scripts/bench-compare.sh --reps $reps --allocators $allocators ${benches[*]}"
echo "# $(date -u +%Y-%m-%dT%H:%MZ)  $(uname -srm)  $(nproc) cpus  hakmem $(hk_revision)"
echo "# medians of $reps runs; x = ratio to mimalloc (Mops x>1: faster; RSS x<1: smaller);"
echo "# spread = (max - min) / median of the Mops runs: how noisy the machine was"
w=16; for spec in "${benches[@]}"; do [ ${#spec} -lt $w ] || w=$(( ${#spec} + 1 )); done
fmt="%-${w}s %-10s %10s %7s %7s %10s %7s %s\n"
printf "$fmt" benchmark allocator Mops/s x spread RSS_MiB x ""
[ -n "$csv" ] && echo "benchmark,allocator,runs,failed,median_mops,min_mops,max_mops,mops_ratio_mimalloc,median_rss_mib,rss_ratio_mimalloc" >"$csv"
for spec in "${benches[@]}"; do
  ref_m=$(median <<<"${mops[$spec|mimalloc]:-}")
  ref_r=$(median <<<"${rss[$spec|mimalloc]:-}")
  for name in "${names[@]}"; do
    vals=${mops[$spec|$name]:-}
    m=$(median <<<"$vals")
    r=$(median <<<"${rss[$spec|$name]:-}")
    nf=${fails[$spec|$name]:-0}
    note=; [ "$nf" = 0 ] || note="($nf failed runs)"
    if [ -z "$m" ]; then
      printf "$fmt" "$spec" "$name" FAIL - - - - "$note"
      [ -n "$csv" ] && echo "\"$spec\",$name,0,$nf,,,,,," >>"$csv"
      continue
    fi
    rmib=$(awk -v k="$r" 'BEGIN { printf "%.1f", k/1024 }')
    mx=$(ratio "$m" "$ref_m"); rx=$(ratio "$r" "$ref_r")
    read -r n lo hi < <(values <<<"$vals" | awk 'NR == 1 { lo = $1 } { hi = $1 } END { print NR, lo, hi }')
    spread=$(awk -v lo="$lo" -v hi="$hi" -v m="$m" 'BEGIN { printf "%.0f%%", (m > 0 ? (hi - lo) / m * 100 : 0) }')
    printf "$fmt" "$spec" "$name" "$(printf %.2f "$m")" "$mx" "$spread" "$rmib" "$rx" "$note"
    [ -z "$csv" ] || echo "\"$spec\",$name,$n,$nf,$m,$lo,$hi,${mx#-},$rmib,${rx#-}" >>"$csv"
  done
done
[ -z "$csv" ] || echo "# CSV written to $(hk_shown "$csv")"
