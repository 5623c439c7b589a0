#!/usr/bin/env bash
# real-compare.sh -- time real programs under several allocators, in
# alternation: `scripts/larson.sh real` with the ratios taken to the first
# allocator of the list (as this script always did), for the commands
# recorded in docs/BENCHMARKS.md. The programs are listed once, in
# scripts/real-programs.sh.
#
# Usage: scripts/real-compare.sh [--reps N] [--alloc LIST] [--no-build]
#                                [any other option of scripts/larson.sh]
#   --alloc LIST  allocators in run order (default hakmem,mimalloc,jemalloc,
#                 tcmalloc,glibc); NAME=PATH[:VAR=VALUE...] adds a library run
#                 with that environment, e.g.
#                 hakmem-bgoff=build/libhakmem.so:HAKMEM_BACKGROUND=0
#   --reps N      measured runs of each program per allocator (default 5),
#                 after one warm-up round
#
# The table: median wall seconds, the speed ratio to the first allocator
# (its seconds / these: > 1 is faster), the spread and peak RSS, each ratio
# marked ~ when within noise (scripts/larson.sh --help); the results as JSON
# in <build dir>/larson/real.json unless --json says otherwise.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

alloc_list=hakmem,mimalloc,jemalloc,tcmalloc,glibc ref= args=()
while [ $# -gt 0 ]; do
  case $1 in
    --alloc) alloc_list=${2:?}; shift 2 ;;
    --alloc=*) alloc_list=${1#*=}; shift ;;
    --ref) ref=${2:?}; shift 2 ;;
    --ref=*) ref=${1#*=}; shift ;;
    -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) args+=("$1"); shift ;;
  esac
done
first=${alloc_list%%,*}
exec "$here/larson.sh" real --alloc "$alloc_list" --ref "${ref:-${first%%=*}}" "${args[@]}"
