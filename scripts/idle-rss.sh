#!/usr/bin/env bash
# idle-rss.sh -- is freed memory given back while the program sleeps? Runs
# bench/bench_idle_rss (THREADS threads allocate TOTAL in blocks of one size,
# free it all, then stay alive without calling the allocator) under hakmem
# and its peers, and prints one table per thread count: for each block size
# and allocator, the RSS above the baseline at the end of the hold, and when
# it first came within 64 MiB of the baseline.
#
# Usage: scripts/idle-rss.sh [OPTIONS]
#   --alloc LIST     allocators in run order (default
#                    hakmem,mimalloc,jemalloc,tcmalloc,glibc; NAME=PATH adds one)
#   --sizes LIST     block sizes (default 64,4096,65536,1048576)
#   --threads LIST   thread counts (default 1,4)
#   --mode M         local (each thread frees its own blocks, default) or
#                    remote (another thread frees them)
#   --total BYTES    allocated per run, split over the threads (default 1g)
#   --hold MS        how long the threads sleep while RSS is sampled (default 5000)
#   --delay MS       HAKMEM_PURGE_DELAY_MS for hakmem (default: its default, 1000)
#   --env VAR=VALUE  more environment for hakmem (repeatable), e.g.
#                    --env HAKMEM_BACKGROUND=0
#   --install-peers  apt-get install the peers first
#   --no-build       use what is built already
#
# A cell reads "EXCESS MiB (T ms)": RSS minus the baseline (taken before the
# burst, with the benchmark's own pointer arrays already resident) at the end
# of the hold, and T the first sample (every 50 ms for the first second after
# the last free, then every 250 ms) within 64 MiB of the baseline, "never" if
# none was.
set -euo pipefail
HK_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$HK_ROOT/scripts/lib.sh"

alloc_list=hakmem,mimalloc,jemalloc,tcmalloc,glibc sizes=64,4096,65536,1048576 threads=1,4
mode=local total=1g hold=5000 delay= install=0 build=1 extra_env=()
while [ $# -gt 0 ]; do
  case $1 in
    --alloc) alloc_list=${2:?}; shift 2 ;;
    --sizes) sizes=${2:?}; shift 2 ;;
    --threads) threads=${2:?}; shift 2 ;;
    --mode) mode=${2:?}; shift 2 ;;
    --total) total=${2:?}; shift 2 ;;
    --hold) hold=${2:?}; shift 2 ;;
    --delay) delay=${2:?}; shift 2 ;;
    --env) extra_env+=("${2:?}"); shift 2 ;;
    --install-peers) install=1; shift ;;
    --no-build) build=0; shift ;;
    -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "idle-rss.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
case $mode in local|remote) ;; *) echo "idle-rss.sh: --mode is local or remote" >&2; exit 2 ;; esac
[ "$install" = 0 ] || hk_install_peers
if [ "$build" = 1 ]; then
  log=$HK_BUILD/idle-rss-build.log   # kept: the messages point at it
  mkdir -p "$HK_BUILD"; : >"$log"
  hk_build_lib "$log" || true
  hk_build_benches "$log"
else
  hk_find_benches
fi

IFS=, read -r -a allocs <<<"$alloc_list"
IFS=, read -r -a size_list <<<"$sizes"
IFS=, read -r -a thread_list <<<"$threads"
names=() libs=()
for a in "${allocs[@]}"; do
  if hk_alloc_lib "$a"; then names+=("$HK_NAME"); libs+=("$HK_LIB"); fi
done
hk_env=()
[ -z "$delay" ] || hk_env+=("HAKMEM_PURGE_DELAY_MS=$delay")
hk_env+=("${extra_env[@]}")

echo "# bench_idle_rss: $total in blocks of each size, mode $mode, hold ${hold} ms$([ -z "$delay" ] || echo ", hakmem purge delay $delay ms")${extra_env[*]:+, hakmem env ${extra_env[*]}}"
echo "# $(hk_machine); hakmem $(hk_revision)"
for t in "${thread_list[@]}"; do
  echo
  echo "threads=$t"
  printf '| block size |'; printf ' %s |' "${names[@]}"; echo
  printf '|---|'; for _ in "${names[@]}"; do printf -- '---|'; done; echo
  for s in "${size_list[@]}"; do
    printf '| %s |' "$s"
    for i in "${!names[@]}"; do
      if [ -n "${libs[$i]}" ]; then
        pre=(env "LD_PRELOAD=${libs[$i]}")
        [ "${names[$i]}" != hakmem ] || pre+=("${hk_env[@]}")
      else
        pre=(env -u LD_PRELOAD)
      fi
      line=$("${pre[@]}" "$HK_BENCH_BIN/bench_idle_rss" "$s" "$t" "$total" "$mode" "$hold" 2>/dev/null |
             grep '^RESULT ' || true)
      if [[ $line =~ baseline_mib=([0-9.]+).*rss_end_mib=([0-9.]+).*back_ms=(-?[0-9]+) ]]; then
        back=${BASH_REMATCH[3]}
        [ "$back" != -1 ] && back="$back ms" || back=never
        printf ' %s (%s) |' "$(awk -v a="${BASH_REMATCH[2]}" -v b="${BASH_REMATCH[1]}" \
          'BEGIN { d = a - b; printf "%.0f MiB", d < 0 ? 0 : d }')" "$back"
      else
        printf ' failed |'
      fi
    done
    echo
  done
done
