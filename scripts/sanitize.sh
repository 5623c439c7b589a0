#!/usr/bin/env bash
# sanitize.sh -- hakmem under ThreadSanitizer, AddressSanitizer and UBSan, and
# a bounded libFuzzer run.
#
# For each sanitizer (thread, address, undefined) builds hakmem itself and the
# tests' _prefixed variants with -fsanitize=<it>, each in its own directory
# (build-tsan/, build-asan/, build-ubsan/), and runs `ctest -L prefixed`: the
# unit and stress tests and the fuzz corpus, all through libhakmem_api (the
# prefixed API), so that the sanitizer runtime keeps its own malloc and
# hakmem's code and memory are what gets checked. The stress tests run with
# smaller arguments there (SAN_ARGS in tests/CMakeLists.txt).
# Then (clang only) builds the libFuzzer target in build-fuzz/ -- hakmem with
# AddressSanitizer and coverage -- and fuzzes for HAKMEM_FUZZ_SECONDS; new
# inputs go to build-fuzz/corpus, a crash to build-fuzz/crashes/ (turn it into
# a regression test: copy it into tests/fuzz/corpus/).
# Exits non-zero on any build failure, failed test or sanitizer report.
#
# Usage: scripts/sanitize.sh [thread|address|undefined|fuzz]...  (default: all)
# Environment:
#   HAKMEM_SAN_CC         compiler: clang or gcc (default: clang; installed
#                         with apt-get when missing, else gcc, which has all
#                         three sanitizers but no libFuzzer)
#   HAKMEM_FUZZ_SECONDS   fuzzing time (default 60; 0 skips the fuzzer)
# Needs gcc, g++, cmake; the build directories are relative to the repository.
set -euo pipefail

HK_ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=(thread address undefined fuzz)
fuzz_seconds=${HAKMEM_FUZZ_SECONDS:-60}
jobs=$(nproc 2>/dev/null || echo 2)

# ---- the compiler -----------------------------------------------------------
pick_compiler() {
  local want=${HAKMEM_SAN_CC:-clang}
  if [ "$want" = clang ] && ! command -v clang >/dev/null 2>&1; then
    local sudo=
    [ "$(id -u)" = 0 ] || sudo="sudo -n"
    echo "sanitize.sh: clang not found; trying apt-get install -y clang" >&2
    $sudo apt-get install -y clang >&2 ||
      { $sudo apt-get update >&2 && $sudo apt-get install -y clang >&2; } ||
      echo "sanitize.sh: could not install clang; using gcc (no libFuzzer run)" >&2
    command -v clang >/dev/null 2>&1 || want=gcc
  fi
  if [ "$want" = clang ]; then CC=clang CXX=clang++; else CC=gcc CXX=g++; fi
  echo "sanitize.sh: compiler $($CC --version | head -n 1)"
}

# ---- one sanitizer ------------------------------------------------------------
# The runtime options make every report fatal; the log is searched too, so a
# report that did not change an exit status still fails the run.
san_env() {
  case $1 in
    thread) echo "TSAN_OPTIONS=halt_on_error=1 exitcode=66 second_deadlock_stack=1 suppressions=$HK_ROOT/tests/sanitize/tsan.supp" ;;
    address) echo "ASAN_OPTIONS=halt_on_error=1 detect_leaks=1 strict_string_checks=1 check_initialization_order=1" ;;
    undefined) echo "UBSAN_OPTIONS=halt_on_error=1 print_stacktrace=1" ;;
  esac
}
san_flags() {
  case $1 in
    thread) echo "-fsanitize=thread" ;;
    address) echo "-fsanitize=address" ;;
    undefined) echo "-fsanitize=undefined -fno-sanitize-recover=all" ;;
  esac
}
san_dir() { case $1 in thread) echo tsan ;; address) echo asan ;; undefined) echo ubsan ;; esac; }

configure() {   # configure DIR FLAGS [cmake args...]
  local dir=$1 flags="$2 -g -fno-omit-frame-pointer"; shift 2
  cmake -S "$HK_ROOT" -B "$dir" -DCMAKE_BUILD_TYPE=Release -DHAKMEM_BUILD_BENCH=OFF \
    -DCMAKE_C_COMPILER="$CC" -DCMAKE_CXX_COMPILER="$CXX" \
    -DCMAKE_C_FLAGS="$flags" -DCMAKE_CXX_FLAGS="$flags" \
    -DCMAKE_EXE_LINKER_FLAGS="$flags" -DCMAKE_SHARED_LINKER_FLAGS="$flags" "$@" >/dev/null
}

reports_in() {   # reports_in LOG: sanitizer reports found in LOG (printed), status 0 if any
  grep -E "(ThreadSanitizer|AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer)|runtime error:" "$1"
}

run_sanitizer() {
  local san=$1 dir=$HK_ROOT/build-$(san_dir "$1") start=$SECONDS rc=0
  echo "== $san: building in ${dir#"$HK_ROOT"/}"
  configure "$dir" "$(san_flags "$san")"
  cmake --build "$dir" -j"$jobs" --target prefixed_tests >"$dir/build.log" 2>&1 ||
    { tail -n 40 "$dir/build.log"; echo "sanitize.sh: $san: build failed"; return 1; }
  echo "== $san: ctest -L prefixed"
  env "$(san_env "$san")" ctest --test-dir "$dir" -L prefixed --output-on-failure -j2 \
    --no-tests=error || rc=$?
  if reports_in "$dir/Testing/Temporary/LastTest.log" >/dev/null; then
    echo "sanitize.sh: $san: sanitizer reports in the test log:"
    reports_in "$dir/Testing/Temporary/LastTest.log" | head -n 20
    rc=1
  fi
  echo "== $san: $([ $rc = 0 ] && echo passed || echo FAILED) in $((SECONDS - start)) s"
  return $rc
}

# ---- libFuzzer ------------------------------------------------------------------
run_fuzzer() {
  local dir=$HK_ROOT/build-fuzz start=$SECONDS rc=0
  if [ "$CC" != clang ]; then
    echo "== fuzz: skipped (libFuzzer needs clang; the corpus ran under every sanitizer)"
    return 0
  fi
  if [ "$fuzz_seconds" = 0 ]; then
    echo "== fuzz: skipped (HAKMEM_FUZZ_SECONDS=0)"
    return 0
  fi
  echo "== fuzz: building in build-fuzz"
  configure "$dir" "-fsanitize=address,fuzzer-no-link" -DHAKMEM_FUZZ_LIBFUZZER=ON
  cmake --build "$dir" -j"$jobs" --target fuzz_alloc >"$dir/build.log" 2>&1 ||
    { tail -n 40 "$dir/build.log"; echo "sanitize.sh: fuzz: build failed"; return 1; }
  mkdir -p "$dir/corpus" "$dir/crashes"
  echo "== fuzz: $fuzz_seconds s (new inputs: build-fuzz/corpus; crashes: build-fuzz/crashes)"
  env "$(san_env address)" "$dir/tests/fuzz/fuzz_alloc" -max_total_time="$fuzz_seconds" \
    -rss_limit_mb=4096 -timeout=60 -print_final_stats=1 -artifact_prefix="$dir/crashes/" \
    "$dir/corpus" "$HK_ROOT/tests/fuzz/corpus" >"$dir/fuzz.log" 2>&1 || rc=$?
  grep -E "^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)" \
    "$dir/fuzz.log" || true
  if [ $rc != 0 ] || reports_in "$dir/fuzz.log" >/dev/null; then
    tail -n 40 "$dir/fuzz.log"
    echo "sanitize.sh: fuzz: the fuzzer found a failure (log: build-fuzz/fuzz.log; input: build-fuzz/crashes/)"
    rc=1
  fi
  echo "== fuzz: $([ $rc = 0 ] && echo passed || echo FAILED) in $((SECONDS - start)) s"
  return $rc
}

pick_compiler
failed=()
for step in "${steps[@]}"; do
  case $step in
    thread|address|undefined) run_sanitizer "$step" || failed+=("$step") ;;
    fuzz) run_fuzzer || failed+=(fuzz) ;;
    *) echo "usage: $0 [thread|address|undefined|fuzz]..." >&2; exit 2 ;;
  esac
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "sanitize.sh: FAILED: ${failed[*]}"
  exit 1
fi
echo "sanitize.sh: all passed (${steps[*]}) in $SECONDS s"
