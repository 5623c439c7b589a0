#!/usr/bin/env bash
# learn-bench.sh -- bench/bench_learn_phases (five fixed-work phases, each
# favouring another setting: tiny, mid, large, prodcons, idle) under several
# configurations of hakmem and its peers, interleaved; a markdown table of
# the medians: the seconds of each phase and in all, peak RSS, the RSS after
# the idle time, when the idle burst's memory went back, and the total time
# against a reference configuration. Made for judging the learning layer
# (HAKMEM_LEARN): the same library with it off and on, beside the peers.
#
# Usage: scripts/learn-bench.sh [OPTIONS]
#
# Options:
#   --config SPEC     a configuration (repeatable, in run order):
#                     NAME=LIB[:VAR=VALUE[,VAR=VALUE...]] or just LIB, where
#                     LIB is hakmem, glibc, mimalloc, tcmalloc, jemalloc or
#                     the path of a preloadable library, and the settings
#                     are the run's environment (hakmem: with none). Default:
#                       off=hakmem:HAKMEM_LEARN=off on=hakmem:HAKMEM_LEARN=on
#                       tcmalloc mimalloc glibc
#   --reps N          runs per configuration (default 3)
#   --scale S         the benchmark's SCALE: every phase's work (default 1:
#                     0.4-0.8 s per phase under glibc on a 2-core machine)
#   --cycles C        times the benchmark runs its phases (default 1); a
#                     phase's time is then the sum over the cycles
#   --idle S          seconds the idle phase sleeps (default 3)
#   --json FILE       also write every run and the medians as JSON
#   --ref NAME        the configuration the ratios are taken to (default the
#                     first)
#   --build-dir DIR   CMake build directory (default $HAKMEM_BUILD_DIR, which
#                     is relative to the repository, or build)
#   --no-build        use what is built already
#   --timeout S       kill a run after S seconds (default 300)
#   -h, --help
#
# How it measures: every run is
#   peakrss -o F timeout S env LD_PRELOAD=<lib> VAR=VALUE... \
#     bench_learn_phases SCALE CYCLES 42 --idle IDLE
# (glibc: LD_PRELOAD unset), rep 1 of every configuration, then rep 2, ...,
# so the drifts of a shared machine hit them all alike. The table's values
# are medians over the runs that succeeded: seconds from the benchmark's
# RESULT line, peak RSS from wait4's ru_maxrss; returned ms is the time from
# the idle burst's last free until RSS fell to a quarter of the burst's
# growth ("never": not within the idle time; the median of runs where some
# never returned counts those as longest). A run that fails is counted in
# the table and its stderr shown; stderr of the runs that succeed is not
# (hakmem warns there about HAKMEM_* settings it does not know). A
# configuration whose library is missing is skipped with a message.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }
abspath() { case $1 in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }
# repo_rel PATH: PATH relative to the repository when it lies inside it (what
# the JSON records must make sense on another machine)
repo_rel() { case $1 in "$root"/*) echo "${1#"$root"/}" ;; *) echo "$1" ;; esac; }
die() { echo "learn-bench.sh: $*" >&2; exit 2; }
say() { echo "learn-bench.sh: $*" >&2; }

# The phases, in the benchmark's order, and the fields of its RESULT line
# that the table shows.
PHASES=(tiny mid large prodcons idle)
FIELDS=("${PHASES[@]}" seconds idle_rss_mb returned_ms)

# ---- options --------------------------------------------------------------------
specs=() reps=3 scale=1 cycles=1 idle=3 json= ref= do_build=1 run_timeout=300
cmdline="scripts/learn-bench.sh${*:+ $*}"
args=()   # --OPTION=VALUE as --OPTION VALUE
for a in "$@"; do case $a in --*=*) args+=("${a%%=*}" "${a#*=}") ;; *) args+=("$a") ;; esac; done
set -- "${args[@]}"
while [ $# -gt 0 ]; do
  case $1 in
    --config) specs+=("${2:?--config wants NAME=LIB[:VAR=VALUE,...]}"); shift 2 ;;
    --reps) reps=${2:?}; shift 2 ;;
    --scale) scale=${2:?}; shift 2 ;;
    --cycles) cycles=${2:?}; shift 2 ;;
    --idle) idle=${2:?}; shift 2 ;;
    --json) json=$(abspath "${2:?}"); shift 2 ;;
    --ref) ref=${2:?}; shift 2 ;;
    --build-dir) HAKMEM_BUILD_DIR=$(abspath "${2:?}"); shift 2 ;;
    --no-build) do_build=0; shift ;;
    --timeout) run_timeout=${2:?}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done
[ ${#specs[@]} -gt 0 ] ||
  specs=(off=hakmem:HAKMEM_LEARN=off on=hakmem:HAKMEM_LEARN=on tcmalloc mimalloc glibc)
[[ $reps =~ ^[1-9][0-9]*$ ]] || die "--reps wants a positive number"
[[ $cycles =~ ^[1-9][0-9]*$ ]] || die "--cycles wants a positive number"
[[ $run_timeout =~ ^[1-9][0-9]*$ ]] || die "--timeout wants a number of seconds"
positive() { [[ $1 =~ ^[0-9]*\.?[0-9]+$ ]] && awk -v s="$1" 'BEGIN { exit !(s > 0) }'; }
positive "$scale" || die "--scale wants a positive number"
positive "$idle" || [[ $idle =~ ^0*\.?0*$ ]] || die "--idle wants a number of seconds"

HK_ROOT=$root
. "$root/scripts/lib.sh"
cd "$root"

# ---- build ------------------------------------------------------------------------
uses_hakmem=0
for s in "${specs[@]}"; do [[ ! $s =~ ^([^=]*=)?hakmem(:|$) ]] || uses_hakmem=1; done
if [ $do_build = 1 ]; then
  log=$HK_BUILD/learn-bench-build.log
  mkdir -p "$HK_BUILD"; : >"$log"
  say "building in $(hk_shown "$HK_BUILD") (log: $(hk_shown "$log"))"
  hk_build_benches "$log" || die "cannot build bench/"
  [ $uses_hakmem = 0 ] || hk_build_lib "$log" ||
    say "warning: hakmem did not build; measuring whatever $(hk_shown "$HK_BUILD/libhakmem.so") there is"
else
  hk_find_benches
fi
bench=$HK_BENCH_BIN/bench_learn_phases
for f in "$HK_BENCH_BIN/peakrss" "$bench"; do
  [ -x "$f" ] || die "$(hk_shown "$f") not found (build first, or drop --no-build)"
done

# ---- configurations -------------------------------------------------------------
names=() libs=() skipped=()
for s in "${specs[@]}"; do
  rc=0; why=$(hk_alloc_lib "$s") || rc=$?
  [ $rc != 2 ] || exit 2
  if [ $rc != 0 ]; then say "$why"; skipped+=("$why"); continue; fi
  hk_alloc_lib "$s" >/dev/null
  [ "$HK_NAME" != system ] || HK_NAME=glibc
  [[ " ${names[*]} " != *" $HK_NAME "* ]] || die "configuration $HK_NAME named twice"
  names+=("$HK_NAME"); libs+=("$HK_LIB")
done
[ ${#names[@]} -gt 0 ] || die "no configuration to run"
ref=${ref:-${names[0]}}
[[ " ${names[*]} " == *" $ref "* ]] || say "note: $ref (--ref) is not measured: no ratios"

# ---- runs -----------------------------------------------------------------------------
tmp=$(mktemp -d "${TMPDIR:-/tmp}/learn-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
declare -A fails results
: >"$tmp/values"   # a line "NAME|FIELD VALUE" per field of every successful run

# result_field LINE KEY: set REPLY to the value of KEY= in a RESULT line;
# returns 1 when it has none. (No subshell: forks are slow on small VMs.)
result_field() { [[ " $1 " =~ \ $2=([^ ]+)\  ]] && REPLY=${BASH_REMATCH[1]}; }

# run_one INDEX REP
run_one() {
  local name=${names[$1]} f
  if ! hk_run_bench "$tmp" "$run_timeout" "${libs[$1]}" "$bench" "$scale" "$cycles" 42 --idle "$idle"; then
    fails[$name]=$(( ${fails[$name]:-0} + 1 ))
    { echo "learn-bench.sh: $name, run $2/$reps failed (exit status $HK_RC); its stderr:"
      tail -n 20 "$tmp/err" | sed 's/^/    /'; } >&2
    return 0
  fi
  for f in "${FIELDS[@]}"; do
    result_field "$HK_RESULT" "$f" || die "$name: no $f= in its RESULT line: $HK_RESULT"
    echo "$name|$f $REPLY" >>"$tmp/values"
  done
  echo "$name|rss_kb $HK_RSS_KB" >>"$tmp/values"
  results[$name]+="$HK_RESULT"$'\n'
  result_field "$HK_RESULT" seconds
  say "$name run $2/$reps: $REPLY s, peak RSS $(( HK_RSS_KB / 1024 )) MiB"
}

say "${#names[@]} configurations (${names[*]}) x $reps runs, scale $scale, $cycles cycle(s), idle $idle s"
for ((r = 1; r <= reps; r++)); do
  for ((i = 0; i < ${#names[@]}; i++)); do run_one "$i" "$r"; done
done

# ---- medians ------------------------------------------------------------------------------
# med["NAME|FIELD"]: the median of the runs' values, rss_kb as rss_mb (MB,
# one decimal); vals["NAME|FIELD"]: the values, space-separated, in run
# order. returned_ms's "never" counts as longer than any time and is the
# median when a middle value is.
declare -A med vals
while read -r key v; do vals[$key]+="$v "; done <"$tmp/values"
while read -r key v; do med[$key]=$v; done < <(
  sed 's/ never$/ 1e18/' "$tmp/values" | sort -k1,1 -k2,2g | awk '
    function flush(   m) {
      if (n == 0) return
      m = n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
      if (key ~ /\|rss_kb$/) { sub(/rss_kb$/, "rss_mb", key); m = sprintf("%.1f", m / 1024) }
      else if (m >= 1e17) m = "never"
      print key, m
    }
    $1 != key { flush(); key = $1; n = 0 }
    { v[++n] = $2 + 0 }
    END { flush() }')

num_re='^[0-9]*\.?[0-9]+([eE][+-]?[0-9]+)?$'   # a value that is a number

# ---- the table ------------------------------------------------------------------------------
echo "| config | tiny s | mid s | large s | prodcons s | idle s | total s | peak RSS MB | idle RSS MB | returned ms | total / $ref |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for name in "${names[@]}"; do
  row="| $name"
  for f in "${PHASES[@]}" seconds; do   # "-": no successful run
    v=${med[$name|$f]:--}
    [[ ! $v =~ $num_re ]] || printf -v v '%.3f' "$v"
    row+=" | $v"
  done
  for f in rss_mb:%.1f idle_rss_mb:%.1f returned_ms:%.0f; do   # "never" and "-" as they are
    v=${med[$name|${f%:*}]:--}
    [[ ! $v =~ $num_re ]] || printf -v v "${f#*:}" "$v"
    row+=" | $v"
  done
  row+=" | $(hk_ratio "${med[$name|seconds]:-}" "${med[$ref|seconds]:-}") |"
  echo "$row"
done
echo
echo "\`$cmdline\`: $reps rep(s) per configuration; values are medians of interleaved runs" \
     "(rep 1 of every configuration, then rep 2, ...); scale $scale, $cycles cycle(s), idle $idle s;" \
     "total / $ref > 1: slower than $ref. $(hk_machine); hakmem $(hk_revision)."
for name in "${names[@]}"; do
  [ -z "${fails[$name]:-}" ] || echo "- $name: ${fails[$name]} of $reps runs failed (left out of the medians)"
done
for s in "${skipped[@]}"; do echo "- $s"; done

# ---- JSON -------------------------------------------------------------------------------------
# every run's values (runs, in run order; rss_kb: peak RSS in KiB), the
# medians (median) and each run's RESULT line (results), per configuration
[ -n "$json" ] || exit 0
mkdir -p "$(dirname "$json")"
# These print (no command substitution: a fork per value is slow).
jstr() { local s=${1//\\/\\\\}; s=${s//\"/\\\"}; printf '"%s"' "$s"; }
jval() { if [[ $1 =~ $num_re ]]; then printf '%s' "$1"; elif [ -z "$1" ] || [ "$1" = - ]; then printf null; else jstr "$1"; fi; }
jarr() { local v sep=; printf '['; for v in $1; do printf '%s' "$sep"; jval "$v"; sep=', '; done; printf ']'; }
# jobj WHAT NAME FIELD...: {"FIELD": value, ...}, each value the median
# (WHAT med) or the list of the runs' values (WHAT vals) of NAME
jobj() {
  local what=$1 name=$2 f sep=; shift 2
  printf '{'
  for f in "$@"; do
    printf '%s"%s": ' "$sep" "$f"; sep=', '
    if [ "$what" = med ]; then jval "${med[$name|$f]:-}"; else jarr "${vals[$name|$f]:-}"; fi
  done
  printf '}'
}
{
  printf '{\n  "command": '; jstr "$cmdline"
  printf ',\n  "date": "%s",\n  "machine": ' "$(date -u +%Y-%m-%dT%H:%MZ)"; jstr "$(hk_machine)"
  printf ',\n  "hakmem_revision": "%s",\n' "$(hk_revision)"
  printf '  "reps": %s, "scale": %s, "cycles": %s, "idle_seconds": %s, "reference": ' "$reps" "$scale" "$cycles" "$idle"
  jstr "$ref"
  printf ',\n  "skipped": ['
  sep=; for s in "${skipped[@]}"; do printf '%s' "$sep"; jstr "$s"; sep=', '; done
  printf '],\n  "configs": [\n'
  for ((i = 0; i < ${#names[@]}; i++)); do
    name=${names[$i]} lib=${libs[$i]%%|*} env=
    [[ ${libs[$i]} != *'|'* ]] || env=${libs[$i]#*|}
    [ $i = 0 ] || printf ',\n'
    printf '    {"name": '; jstr "$name"
    printf ', "library": '; jstr "$(repo_rel "${lib:-(none: glibc)}")"
    printf ', "env": '; jstr "$env"
    printf ', "failed_runs": %s,\n     "median": ' "${fails[$name]:-0}"
    jobj med "$name" "${FIELDS[@]}" rss_mb
    printf ',\n     "runs": '
    jobj vals "$name" "${FIELDS[@]}" rss_kb
    printf ',\n     "results": ['
    sep=; while IFS= read -r line; do [ -z "$line" ] || { printf '%s' "$sep"; jstr "$line"; sep=', '; }; done <<<"${results[$name]:-}"
    printf ']}'
  done
  printf '\n  ]\n}\n'
} >"$json"
say "runs and medians: $(hk_shown "$json")"
