#!/usr/bin/env bash
# callgrind-pair.sh -- instructions per malloc+free pair, per allocator,
# counted by valgrind's callgrind (deterministic, unlike time on a shared box).
#
# Usage: scripts/callgrind-pair.sh [OPTIONS] [ALLOCATOR...]
#
#   ALLOCATOR: hakmem mimalloc jemalloc tcmalloc system (default: all five),
#              or NAME=PATH for any preloadable library.
# Options:
#   --mode M       what a "pair" is (default: tiny,mid; "all" = all four):
#                    tiny       bench_tiny_hot N 32 100          (LIFO, 32 B)
#                    mid        bench_tiny_hot N 16384 100       (LIFO, 16 KiB)
#                    mixed      bench_random_mixed 100N 4096 8 128
#                    mixed-mid  bench_random_mixed 100N 1000 8192 32768
#                  several comma-separated
#   --iters N      N (default 10000, i.e. 1,000,000 pairs in the short run)
#   --build-dir D  CMake build directory (default $HAKMEM_BUILD_DIR or build)
#   --no-build     use what is already built
#   --keep DIR     keep the callgrind output files in DIR
#
# Method: run the benchmark under callgrind with N and with 2N iterations and
# take the difference of the total instruction counts (the "summary:" line of
# --callgrind-out-file), which cancels start-up, dynamic linking and the
# allocator's initialisation: Ir/pair = (I(2N) - I(N)) / (100 N).
#   "total"  is that figure: the allocator's malloc and free, the PLT calls,
#            and the benchmark's own loop (touching the block, the RNG in the
#            mixed modes);
#   "bench"  is the part spent in the benchmark's main() alone (its self cost,
#            from callgrind_annotate), the same for every allocator;
#   "alloc"  = total - bench: what the allocator costs per pair.
# Only user-space instructions are counted: system calls (mmap, munmap,
# madvise, brk) and page faults cost nothing here, so an allocator that
# returns memory to the OS eagerly looks cheaper than it is -- read these
# figures beside bench-compare.sh's times. Counts are exact run to run except
# for allocators that act on the clock (jemalloc's decay: +-1% in mid).
#
# Preloading under valgrind: LD_PRELOAD set on the valgrind command itself
# reaches the program -- valgrind's launcher keeps it and prepends its own
# vgpreload libraries to it for the client -- and callgrind does not replace
# malloc (only memcheck-like tools do), so the preloaded allocator is what
# runs. Checked: glibc and mimalloc give clearly different counts (about 196
# vs 63 per tiny pair here), and the alternative
#   valgrind --tool=callgrind --trace-children=yes env LD_PRELOAD=lib ./bench
# gives the same per-pair figure. "system" runs with LD_PRELOAD unset.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
modes=tiny,mid
iters=10000
do_build=1
keep=
wanted=()

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }
abspath() { case $1 in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }
die() { echo "callgrind-pair: $*" >&2; exit 2; }

while [ $# -gt 0 ]; do
  case $1 in
    --mode) modes=${2:?}; shift 2 ;;
    --mode=*) modes=${1#*=}; shift ;;
    --iters) iters=${2:?}; shift 2 ;;
    --iters=*) iters=${1#*=}; shift ;;
    --build-dir) HAKMEM_BUILD_DIR=$(abspath "${2:?}"); shift 2 ;;
    --build-dir=*) HAKMEM_BUILD_DIR=$(abspath "${1#*=}"); shift ;;
    --keep) keep=${2:?}; shift 2 ;;
    --keep=*) keep=${1#*=}; shift ;;
    --no-build) do_build=0; shift ;;
    -h|--help) usage; exit 0 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) wanted+=("$1"); shift ;;
  esac
done
[[ $iters =~ ^[1-9][0-9]*$ ]] || die "--iters wants a positive number"
[ "$modes" != all ] || modes=tiny,mid,mixed,mixed-mid
[ ${#wanted[@]} -gt 0 ] || wanted=(hakmem mimalloc jemalloc tcmalloc system)
command -v valgrind >/dev/null || die "valgrind not found (apt-get install valgrind)"
if [ -n "$keep" ]; then mkdir -p "$keep"; keep=$(cd "$keep" && pwd); fi
HK_ROOT=$root
. "$root/scripts/lib.sh"
cd "$root"

if [ $do_build = 1 ]; then
  log=$HK_BUILD/callgrind-pair-build.log
  mkdir -p "$HK_BUILD"; : >"$log"
  hk_build_benches "$log" || die "cannot build bench/"
  [[ " ${wanted[*]} " != *" hakmem "* ]] || hk_build_lib "$log" ||
    echo "warning: hakmem did not rebuild; measuring whatever $(hk_shown "$HK_BUILD/libhakmem.so") there is" >&2
else
  hk_find_benches
fi

names=() libs=()
for a in "${wanted[@]}"; do
  rc=0; hk_alloc_lib "$a" || rc=$?
  [ $rc = 2 ] && exit 2
  [ $rc = 0 ] || continue
  names+=("$HK_NAME"); libs+=("$HK_LIB")
done
[ ${#names[@]} -gt 0 ] || die "no allocator to measure"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/callgrind-pair.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# command line of mode M with iteration count N (pairs = 100 N in every mode)
mode_cmd() {
  case $1 in
    tiny)      echo "$HK_BENCH_BIN/bench_tiny_hot $2 32 100" ;;
    mid)       echo "$HK_BENCH_BIN/bench_tiny_hot $2 16384 100" ;;
    mixed)     echo "$HK_BENCH_BIN/bench_random_mixed $(( $2 * 100 )) 4096 8 128" ;;
    mixed-mid) echo "$HK_BENCH_BIN/bench_random_mixed $(( $2 * 100 )) 1000 8192 32768" ;;
    *) die "unknown mode '$1' (tiny, mid, mixed, mixed-mid, all)" ;;
  esac
}

# callgrind LIB OUTFILE CMD... : run CMD under callgrind with LIB preloaded
callgrind() {
  local lib=$1 out=$2; shift 2
  local pre=(env -u LD_PRELOAD)
  [ -z "$lib" ] || pre=(env "LD_PRELOAD=$lib")
  "${pre[@]}" valgrind --tool=callgrind --callgrind-out-file="$out" "$@" >"$out.stdout" 2>"$out.log" </dev/null ||
    { echo "callgrind-pair: failed: LD_PRELOAD=$(hk_shown "$lib") valgrind ... $(hk_shown "$1") ${*:2}; its log ends:" >&2; tail -n 5 "$out.log" >&2; return 1; }
  grep -q '^RESULT ' "$out.stdout" || { echo "callgrind-pair: no RESULT line from $(hk_shown "$1") ${*:2}" >&2; return 1; }
  ! grep -q 'cannot be preloaded' "$out.log" ||
    { echo "callgrind-pair: ld.so could not preload $(hk_shown "$lib"):" >&2; grep -m 1 'cannot be preloaded' "$out.log" >&2; return 1; }
}
# (the awk scripts read all their input: an early exit would break the pipe)
total_ir() { awk '/^summary:/ && s == "" { s = $2 } /^totals:/ { t = $2 } END { print (s != "" ? s : t) }' "$1"; }
main_ir() { callgrind_annotate --threshold=100 "$1" 2>/dev/null |
            awk '/:main \[/ && m == "" { m = $1; gsub(",", "", m) } END { print m }' || true; }

IFS=, read -r -a mode_list <<<"$modes"
for mode in "${mode_list[@]}"; do mode_cmd "$mode" 1 >/dev/null; done   # dies on a bad mode
n1=$iters n2=$(( iters * 2 )) pairs=$(( iters * 100 ))
echo "# scripts/callgrind-pair.sh --iters $iters --mode $modes ${wanted[*]}"
echo "# instructions (Ir) per malloc+free pair = (I(2N) - I(N)) / $pairs, N = $iters"
fmt='%-10s %-10s %9s %9s %9s\n'
printf "$fmt" mode allocator total alloc bench
for mode in "${mode_list[@]}"; do
  read -r -a c1 <<<"$(mode_cmd "$mode" "$n1")"
  read -r -a c2 <<<"$(mode_cmd "$mode" "$n2")"
  for ((i = 0; i < ${#names[@]}; i++)); do
    f=$tmp/$mode.${names[$i]}
    if ! callgrind "${libs[$i]}" "$f.1" "${c1[@]}" || ! callgrind "${libs[$i]}" "$f.2" "${c2[@]}"; then
      printf "$fmt" "$mode" "${names[$i]}" FAIL - -
      continue
    fi
    t1=$(total_ir "$f.1") t2=$(total_ir "$f.2")
    m1=$(main_ir "$f.1") m2=$(main_ir "$f.2")
    row=$(awk -v t1="$t1" -v t2="$t2" -v m1="${m1:-0}" -v m2="${m2:-0}" -v p="$pairs" 'BEGIN {
      t = (t2 - t1) / p; m = (m2 - m1) / p
      printf "%.1f %.1f %.1f", t, t - m, m }')
    read -r tot alc bch <<<"$row"
    [ -n "$m1" ] || { alc=-; bch=-; }
    printf "$fmt" "$mode" "${names[$i]}" "$tot" "$alc" "$bch"
    [ -z "$keep" ] || cp "$f".[12] "$keep/"
  done
done
