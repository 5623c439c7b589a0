# scripts/lib.sh -- shell functions shared by the scripts in this directory
# (sourced, not run). Owns: where the build lives, how the library and the
# benchmarks get built, where the peer allocators are, and gnuplot for the
# charts. Sets nothing but HK_* variables and hk_* functions.
#
# Needs HK_ROOT (the repository root) set by the caller.

: "${HK_ROOT:?set HK_ROOT before sourcing scripts/lib.sh}"

# Build directory: $HAKMEM_BUILD_DIR or build/; a relative one is taken from
# the repository root.
HK_BUILD=${HAKMEM_BUILD_DIR:-build}
case $HK_BUILD in /*) ;; *) HK_BUILD=$HK_ROOT/$HK_BUILD ;; esac

# Where the user ran the script from (the scripts source this file before
# they change directory), for hk_shown.
HK_PWD=${HK_PWD:-$PWD}

# hk_shown PATH: PATH as the scripts print it -- relative to where the user
# ran the script when it lies below that, relative to the repository when it
# lies in the repository, as it is otherwise (a system library, a file the
# user named elsewhere). No message names this machine's checkout.
hk_shown() {
  case $1 in
    "$HK_PWD"/*) echo "${1#"$HK_PWD"/}" ;;
    "$HK_ROOT"/*)
      case $HK_PWD in
        "$HK_ROOT"/*) realpath -m --relative-to="$HK_PWD" "$1" ;;
        *) echo "${1#"$HK_ROOT"/}" ;;
      esac ;;
    *) echo "$1" ;;
  esac
}

# Peer allocators, as Debian installs them. HAKMEM_PEER_DIR looks for them
# elsewhere (also a way to test what the scripts do when a peer is missing).
hk_multiarch=$(gcc -print-multiarch 2>/dev/null || true)
HK_PEER_LIBDIR=${HAKMEM_PEER_DIR:-/usr/lib/${hk_multiarch:-x86_64-linux-gnu}}
declare -A HK_PEER_LIB=(
  [mimalloc]=$HK_PEER_LIBDIR/libmimalloc.so.2
  [jemalloc]=$HK_PEER_LIBDIR/libjemalloc.so.2
  [tcmalloc]=$HK_PEER_LIBDIR/libtcmalloc_minimal.so.4)
declare -A HK_PEER_PKG=([mimalloc]=libmimalloc2.0 [jemalloc]=libjemalloc2 [tcmalloc]=libtcmalloc-minimal4)

hk_install_peers() {
  local sudo=
  [ "$(id -u)" = 0 ] || sudo=sudo
  echo "installing ${HK_PEER_PKG[*]}" >&2
  $sudo apt-get install -y "${HK_PEER_PKG[@]}" >&2 ||
    { $sudo apt-get update >&2 && $sudo apt-get install -y "${HK_PEER_PKG[@]}" >&2; } ||
    echo "apt-get failed; going on with what is installed" >&2
}

# hk_configure LOG: configure $HK_BUILD (Release) unless it already has
# build files (then `cmake --build` reconfigures by itself when needed).
hk_configure() {
  [ -f "$HK_BUILD/Makefile" ] || [ -f "$HK_BUILD/build.ninja" ] && return 0
  mkdir -p "$HK_BUILD"
  cmake -S "$HK_ROOT" -B "$HK_BUILD" -DCMAKE_BUILD_TYPE=Release >>"$1" 2>&1
}

# hk_build_lib LOG: build libhakmem.so; on failure show the errors on stderr.
hk_build_lib() {
  if hk_configure "$1" && cmake --build "$HK_BUILD" -j2 --target hakmem >>"$1" 2>&1; then
    return 0
  fi
  echo "the hakmem library does not build (full log: $(hk_shown "$1")):" >&2
  grep -E -A3 'error|Error' "$1" | head -n 40 >&2 || tail -n 30 "$1" >&2
  return 1
}

# hk_build_benches LOG: build bench/ and set HK_BENCH_BIN to where the
# programs are. Uses the project's build; if the project does not configure
# or build (library sources still missing, say), builds bench/ on its own in
# $HK_BUILD/bench-standalone so the peers can still be measured.
hk_build_benches() {
  local targets=(bench_tiny_hot bench_random_mixed bench_mid_mt bench_cross_thread
                 bench_larson bench_realloc_growth bench_large bench_phased bench_idle_rss
                 bench_many_to_one bench_learn_phases bench_alloc_test bench_cache_scratch
                 bench_big_heap peakrss)
  HK_BENCH_BIN=$HK_BUILD/bench
  if grep -q '^HAKMEM_BUILD_BENCH:BOOL=OFF' "$HK_BUILD/CMakeCache.txt" 2>/dev/null; then
    echo "note: $(hk_shown "$HK_BUILD") has HAKMEM_BUILD_BENCH=OFF; building bench/ on its own" >&2
  elif hk_configure "$1" && cmake --build "$HK_BUILD" -j2 --target "${targets[@]}" >>"$1" 2>&1; then
    return 0
  else
    echo "the project does not build its benchmarks (log: $(hk_shown "$1")); building bench/ on its own" >&2
  fi
  HK_BENCH_BIN=$HK_BUILD/bench-standalone
  if cmake -S "$HK_ROOT/bench" -B "$HK_BENCH_BIN" -DCMAKE_BUILD_TYPE=Release >>"$1" 2>&1 &&
     cmake --build "$HK_BENCH_BIN" -j2 >>"$1" 2>&1; then
    return 0
  fi
  tail -n 30 "$1" >&2
  return 1
}

# hk_find_benches: set HK_BENCH_BIN to already-built benchmarks, if any.
hk_find_benches() {
  HK_BENCH_BIN=$HK_BUILD/bench
  [ -x "$HK_BENCH_BIN/bench_tiny_hot" ] || [ ! -x "$HK_BUILD/bench-standalone/bench_tiny_hot" ] ||
    HK_BENCH_BIN=$HK_BUILD/bench-standalone
}

# hk_alloc_lib SPEC: set HK_LIB to the library to preload for allocator SPEC
# ("" for glibc) and HK_NAME to its display name. SPEC is hakmem, mimalloc,
# jemalloc, tcmalloc, or system/glibc (HK_NAME system), or NAME=LIB[:ENV],
# displayed as NAME, where LIB is one of those names or the path of any
# preloadable library and ENV is VAR=VALUE settings, separated by ":" or ","
# (hakmem-bgoff=build/libhakmem.so:HAKMEM_BACKGROUND=0,
# off=hakmem:HAKMEM_LEARN=off, hk=hakmem: with none); with settings HK_LIB
# is "PATH|VAR=VALUE ...", which hk_run_bench and hk_run_real understand.
# Returns 1, after saying why on stdout, when the library is not there, and
# 2, on stderr, for an unknown allocator.
hk_alloc_lib() {
  local lib=$1 env=
  HK_NAME=$1
  if [[ $1 == *=* ]]; then
    HK_NAME=${1%%=*} lib=${1#*=}
    if [[ $lib == *:* ]]; then env=${lib#*:} lib=${lib%%:*}; fi
  fi
  case $lib in
    hakmem) HK_LIB=$HK_BUILD/libhakmem.so
         [ -f "$HK_LIB" ] || { echo "skipping $HK_NAME: $(hk_shown "$HK_LIB") not found (the library did not build)"; return 1; } ;;
    mimalloc|jemalloc|tcmalloc) HK_LIB=${HK_PEER_LIB[$lib]}
         [ -f "$HK_LIB" ] || { echo "skipping $HK_NAME: $HK_LIB not found (apt-get install ${HK_PEER_PKG[$lib]}, or --install-peers)"; return 1; } ;;
    system|glibc) HK_LIB= ; [[ $1 == *=* ]] || HK_NAME=system ;;
    *) if [[ $1 != *=* ]]; then
         echo "unknown allocator '$1' (hakmem, mimalloc, jemalloc, tcmalloc, system or NAME=PATH)" >&2
         return 2
       fi
       case $lib in /*) HK_LIB=$lib ;; *) HK_LIB=$PWD/$lib ;; esac
       [ -f "$HK_LIB" ] || { echo "skipping $HK_NAME: $(hk_shown "$HK_LIB") not found"; return 1; } ;;
  esac
  env=${env//[:,]/ }
  read -r env <<<"$env"   # trimmed
  [ -z "$env" ] || HK_LIB="$HK_LIB|$env"
}

# hk_run_bench TMPDIR TIMEOUT LIB PROGRAM [ARG]...: run one benchmark with
# LIB preloaded ("" = glibc: LD_PRELOAD unset) under
#   peakrss -o TMPDIR/rss timeout TIMEOUT env LD_PRELOAD=LIB PROGRAM ARGS
# (stdout in TMPDIR/out, stderr in TMPDIR/err) and set
#   HK_MOPS    mops= of its RESULT line      HK_RESULT  that line
#   HK_RSS_KB  peak RSS in KiB (wait4's ru_maxrss, as /usr/bin/time -f %M)
#   HK_RC      0, the exit status, "timeout" or "preload" (ld.so ignored LIB,
#              so the run measured glibc)
# Returns 1 unless the run succeeded and printed a RESULT line.
# Needs HK_BENCH_BIN (for peakrss).
hk_run_bench() {
  local tmp=$1 tmo=$2 lib=$3 pre extra=(); shift 3
  if [[ $lib == *'|'* ]]; then read -r -a extra <<<"${lib#*|}"; lib=${lib%%|*}; fi
  if [ -n "$lib" ]; then pre=(env "LD_PRELOAD=$lib" "${extra[@]}"); else pre=(env -u LD_PRELOAD "${extra[@]}"); fi
  HK_RC=0 HK_MOPS= HK_RSS_KB= HK_RESULT=
  rm -f "$tmp/rss"
  "$HK_BENCH_BIN/peakrss" -o "$tmp/rss" timeout "$tmo" "${pre[@]}" "$@" \
    >"$tmp/out" 2>"$tmp/err" </dev/null || HK_RC=$?
  [ "$HK_RC" != 124 ] || HK_RC=timeout
  HK_RESULT=$(grep '^RESULT ' "$tmp/out" | tail -n 1 || true)
  [[ $HK_RESULT =~ \ mops=([0-9.]+) ]] && HK_MOPS=${BASH_REMATCH[1]}
  HK_RSS_KB=$(cat "$tmp/rss" 2>/dev/null || true)
  ! grep -q 'cannot be preloaded' "$tmp/err" || HK_RC=preload
  [ "$HK_RC" = 0 ] && [ -n "$HK_MOPS" ]
}

# hk_run_real TMPDIR TIMEOUT LIB DIR COMMAND: run the shell command COMMAND
# (sh -c) in DIR with LIB preloaded, as hk_run_bench runs a benchmark (under
# peakrss and timeout; stdout in TMPDIR/out, stderr in TMPDIR/err), and set
#   HK_SECS    its wall time in seconds (date +%s.%N around the run: the
#              shell's SECONDS is too coarse)
#   HK_RSS_KB  peak RSS in KiB, of the largest process of the command
#   HK_RESULT  the last line of its stdout
#   HK_RC      as hk_run_bench's
# Returns 1 unless the command exited 0. Needs HK_BENCH_BIN (for peakrss).
hk_run_real() {
  local tmp=$1 tmo=$2 lib=$3 dir=$4 cmd=$5 pre extra=() t0 t1
  if [[ $lib == *'|'* ]]; then read -r -a extra <<<"${lib#*|}"; lib=${lib%%|*}; fi
  if [ -n "$lib" ]; then pre=(env "LD_PRELOAD=$lib" "${extra[@]}"); else pre=(env -u LD_PRELOAD "${extra[@]}"); fi
  HK_RC=0 HK_SECS= HK_RSS_KB= HK_RESULT=
  rm -f "$tmp/rss"
  t0=$(date +%s.%N)
  (cd "$dir" && "$HK_BENCH_BIN/peakrss" -o "$tmp/rss" timeout "$tmo" "${pre[@]}" sh -c "$cmd" \
    >"$tmp/out" 2>"$tmp/err" </dev/null) || HK_RC=$?
  t1=$(date +%s.%N)
  [ "$HK_RC" != 124 ] || HK_RC=timeout
  HK_SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
  HK_RESULT=$(tail -n 1 "$tmp/out")
  HK_RSS_KB=$(cat "$tmp/rss" 2>/dev/null || true)
  ! grep -q 'cannot be preloaded' "$tmp/err" || HK_RC=preload
  [ "$HK_RC" = 0 ]
}

# Statistics on space-separated numbers given on stdin.
hk_values() { tr ' ' '\n' | { grep . || true; } | sort -g; }   # one per line, ascending
hk_median() { hk_values | awk '{v[NR]=$1} END {
  if (NR == 0) print ""; else if (NR % 2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2 }'; }
# hk_ratio A B: A/B with two decimals, "-" when either is missing or B is 0
hk_ratio() { if [ -n "$1" ] && [ -n "$2" ]; then awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a/b; else print "-" }'; else echo "-"; fi; }

# hk_machine: one line describing this machine (CPU, cores, memory, kernel, OS)
hk_machine() {
  local cpu mem os
  cpu=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null)
  mem=$(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo 2>/dev/null)
  os=$(. /etc/os-release 2>/dev/null && echo "${PRETTY_NAME:-}")
  echo "${cpu:-unknown CPU}, $(nproc) cpus, ${mem:-? GiB} RAM, $(uname -sr)${os:+, $os}"
}

# hk_revision: the hakmem commit, "+dirty" when src/ or include/ differ from it
hk_revision() {
  echo "$(git -C "$HK_ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$HK_ROOT" diff --quiet HEAD -- src include 2>/dev/null || echo '+dirty')"
}

# hk_json_flat: the JSON document on stdin (what larson.sh writes) as lines
# "PATH<TAB>VALUE", one per number, string, true/false or null, in document
# order. PATH joins object keys and array indices (from 0) with "/", e.g.
# results/3/samples_mops/0; strings are unescaped (\n and \t become spaces),
# null is an empty VALUE. Plain awk (mawk or gawk): no jq, no python.
hk_json_flat() {
  awk '
    { doc = doc $0 "\n" }
    function emit(v,   p, d) {
      p = key[1]; for (d = 2; d <= depth; d++) p = p "/" key[d]
      print p "\t" v
    }
    END {
      n = length(doc); i = 1; depth = 0
      while (i <= n) {
        c = substr(doc, i, 1)
        if (c == "{" || c == "[") {
          depth++; kind[depth] = c; key[depth] = (c == "[" ? 0 : ""); want_key[depth] = (c == "{"); i++
        } else if (c == "}" || c == "]") {
          depth--; i++
        } else if (c == ",") {
          if (kind[depth] == "[") key[depth]++; else want_key[depth] = 1
          i++
        } else if (c == ":") {
          want_key[depth] = 0; i++
        } else if (c == " " || c == "\t" || c == "\n" || c == "\r") {
          i++
        } else if (c == "\"") {
          v = ""; i++
          while (i <= n && (c = substr(doc, i, 1)) != "\"") {
            if (c == "\\") {
              i++; c = substr(doc, i, 1)
              if (c == "n" || c == "t" || c == "r") c = " "
              else if (c == "u") c = "\\u"
            }
            v = v c; i++
          }
          i++
          if (kind[depth] == "{" && want_key[depth]) key[depth] = v; else emit(v)
        } else {
          j = i
          while (j <= n && index(",}] \t\n\r", substr(doc, j, 1)) == 0) j++
          v = substr(doc, i, j - i); i = j
          emit(v == "null" ? "" : v)
        }
      }
    }'
}

# hk_have_gnuplot: gnuplot is there, or apt-get installed it (gnuplot-nox:
# no X libraries). When it cannot be had, says so on stdout as "# no chart:"
# lines (a report's last lines; redirect them where a script wants its
# errors) with the end of apt-get's log, and returns 1.
hk_have_gnuplot() {
  command -v gnuplot >/dev/null && return 0
  echo "${0##*/}: gnuplot is not installed; trying apt-get install gnuplot-nox" >&2
  local sudo= log; log=$(mktemp)
  [ "$(id -u)" = 0 ] || sudo=sudo
  { $sudo apt-get install -y gnuplot-nox || { $sudo apt-get update && $sudo apt-get install -y gnuplot-nox; }; } >"$log" 2>&1 || true
  command -v gnuplot >/dev/null && { rm -f "$log"; return 0; }
  echo "# no chart: gnuplot is missing and could not be installed (apt-get install gnuplot-nox; log below)"
  tail -n 3 "$log" | sed 's/^/#   /'
  rm -f "$log"
  return 1
}

# hk_gnuplot_term: the PNG terminal for the charts -- pngcairo (antialiased),
# or the plain png one of a gnuplot built without cairo. Without gnuplot,
# pngcairo: a script written now is for a gnuplot installed later.
hk_gnuplot_term() {
  if command -v gnuplot >/dev/null; then
    case $(gnuplot -e 'set terminal' 2>&1) in *pngcairo*) ;; *) echo png; return 0 ;; esac
  fi
  echo 'pngcairo font "sans,10"'
}
