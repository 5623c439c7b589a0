#!/bin/sh
# perf_guard.sh -- fail when hakmem's malloc+free fast paths cost more
# instructions than tests/perf_guard/budgets.txt allows.
#
# Usage: perf_guard.sh LIBHAKMEM BENCH_TINY_HOT BUDGETS
#
# For each line of BUDGETS (mode, size, batch, budget, ...) runs
#   LD_PRELOAD=LIBHAKMEM valgrind --tool=callgrind BENCH_TINY_HOT N SIZE BATCH
# with N and 2N iterations and takes (I(2N) - I(N)) / (N * BATCH): the
# instructions per malloc+free pair, start-up and initialisation cancelled.
# Callgrind counts are deterministic (within a fraction of a percent where
# the allocator acts on the clock), so unlike a timing this can be a test.
# Prints measured vs budget per mode; exits 1 if any is over budget, 77 (CTest
# SKIP) when valgrind is missing or cannot run here, 2 on a setup error.
# PERF_GUARD_ITERS sets N (default 10000, i.e. 1000000 pairs with BATCH 100).
set -u
lib=${1:?usage: perf_guard.sh LIBHAKMEM BENCH_TINY_HOT BUDGETS}
bench=${2:?usage: perf_guard.sh LIBHAKMEM BENCH_TINY_HOT BUDGETS}
budgets=${3:?usage: perf_guard.sh LIBHAKMEM BENCH_TINY_HOT BUDGETS}
n1=${PERF_GUARD_ITERS:-10000}
n2=$((n1 * 2))

if ! command -v valgrind >/dev/null 2>&1; then
  echo "perf_guard: SKIP: valgrind is not installed (apt-get install valgrind)"
  exit 77
fi
if ! valgrind --tool=callgrind --callgrind-out-file=/dev/null true >/dev/null 2>&1; then
  echo "perf_guard: SKIP: valgrind is installed but cannot run here:"
  valgrind --tool=callgrind --callgrind-out-file=/dev/null true 2>&1 | tail -n 3
  exit 77
fi
for f in "$lib" "$bench" "$budgets"; do
  [ -f "$f" ] || { echo "perf_guard: $f not found"; exit 2; }
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/perf_guard.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT

# The learner off: it resizes the bins on a wall-clock epoch, so with it on
# the slow paths taken in the N and 2N runs (and the difference) depend on
# timing (medium: 72-125 Ir/pair on, 156 off). The fast paths are the same
# code either way; this guards them.
export HAKMEM_LEARN=off

# total_ir N SIZE BATCH: callgrind's instruction total of one run
total_ir() {
  out=$tmp/cg.$1.$2
  if ! LD_PRELOAD=$lib valgrind --tool=callgrind --callgrind-out-file="$out" \
         "$bench" "$1" "$2" "$3" >"$out.stdout" 2>"$out.log" </dev/null; then
    echo "perf_guard: valgrind run failed: LD_PRELOAD=$lib valgrind --tool=callgrind $bench $1 $2 $3" >&2
    tail -n 5 "$out.log" >&2
    return 1
  fi
  grep -q '^RESULT ' "$out.stdout" || { echo "perf_guard: no RESULT line from $bench" >&2; return 1; }
  # hakmem must really be what ran: ld.so only warns when it cannot preload,
  # and callgrind lists the objects whose code executed
  if grep -q 'cannot be preloaded' "$out.log" || ! grep -Eq "^c?ob=.*libhakmem" "$out"; then
    echo "perf_guard: $lib was not preloaded (or never called) in the callgrind run" >&2
    grep -m 1 'cannot be preloaded' "$out.log" >&2
    return 1
  fi
  awk '/^summary:/ && s == "" { s = $2 } /^totals:/ { t = $2 } END { print (s != "" ? s : t) }' "$out"
}

echo "perf_guard: callgrind instructions per malloc+free pair, hakmem = $lib"
echo "perf_guard: (I(2N) - I(N)) / pairs, N = $n1 iterations; figures include the 19-instruction bench loop"
status=0 checked=0
while read -r mode size batch budget recorded rest; do
  case $mode in ''|'#'*) continue ;; esac
  if ! i1=$(total_ir "$n1" "$size" "$batch") || ! i2=$(total_ir "$n2" "$size" "$batch"); then
    echo "perf_guard: $mode: FAIL: could not measure"
    status=1 checked=$((checked + 1))
    continue
  fi
  verdict=$(awk -v i1="$i1" -v i2="$i2" -v n="$n1" -v b="$batch" -v budget="$budget" -v rec="$recorded" '
    BEGIN {
      ir = (i2 - i1) / (n * b)
      v = (ir > budget) ? "FAIL: over budget" : "ok"
      if (ir <= budget && rec > 0 && ir < rec * 0.90)
        v = sprintf("ok -- %.0f%% below the recorded %.1f: lower the budget in budgets.txt", (1 - ir / rec) * 100, rec)
      printf "%.1f %s\n", ir, v }')
  ir=${verdict%% *} what=${verdict#* }
  printf 'perf_guard: %-7s %6s B: %6.1f Ir/pair  (budget %s, recorded %s)  %s\n' \
    "$mode" "$size" "$ir" "$budget" "$recorded" "$what"
  case $what in FAIL*) status=1 ;; esac
  checked=$((checked + 1))
done <"$budgets"
[ $checked -gt 0 ] || { echo "perf_guard: no budget in $budgets"; exit 2; }
[ $status = 0 ] || echo "perf_guard: FAILED (see above). A fast path over budget got slower: find out why; if the cost is deliberate, raise the budget in $budgets and say why in the commit"
exit $status
