/* bench_alloc_test -- random sizes skewed to small ones, single-threaded
 * churn per thread, in the manner of the alloc-test benchmark: each thread
 * keeps a working set of SLOTS blocks and replaces one at random each step.
 *
 *   each thread: fill SLOTS slots (not timed apart: the fill is part of the
 *   run, as a program's start is); loop STEPS times: pick a random slot,
 *   free its block, malloc a new size into it, write its first and last
 *   byte; free everything.
 *   Sizes are log-uniform in [MIN, MAX]: an octave is drawn uniformly, then
 *   a size uniformly within it, so each octave gets as many blocks (small
 *   blocks are the most frequent by count, large ones hold the bytes).
 *
 * The threads share nothing (no block crosses threads): what this measures
 * is each thread's malloc and free with sizes that defeat a single class,
 * and a working set that outgrows the thread caches.
 *
 * Usage: bench_alloc_test [THREADS [STEPS [SLOTS [MIN [MAX [SEED]]]]]]
 *   THREADS  threads, each with its own working set  (default 1)
 *   STEPS    replacements per thread                 (default 10000000)
 *   SLOTS    working-set size per thread             (default 8192)
 *   MIN      smallest size in bytes                  (default 8)
 *   MAX      largest size in bytes                   (default 8192)
 *   SEED     xorshift64 seed (thread i: SEED + i)     (default 42)
 * ops = THREADS x STEPS (each step one free + one malloc).
 */
#include "bench_common.h"
#include "bench_threads.h"

static unsigned long long steps;
static size_t slots, min_size, max_size;
static uint64_t seed;

/* Log-uniform in [lo, hi]: the octave first, then the size within it. */
static size_t draw(uint64_t *rng, unsigned octaves)
{
    unsigned o = (unsigned)(xorshift64(rng) % octaves);
    size_t lo = min_size << o, hi = (lo << 1) - 1;
    if (hi > max_size)
        hi = max_size;
    return rng_range(rng, lo, hi);
}

static void *worker(void *arg)
{
    uint64_t rng = rng_seed(seed + (uint64_t)(uintptr_t)arg);
    unsigned octaves = 1;
    while ((min_size << octaves) <= max_size)
        octaves++;
    char **slot = calloc(slots, sizeof *slot);
    size_t *len = calloc(slots, sizeof *len);
    if (!slot || !len)
        bench_die("out of memory");
    for (size_t i = 0; i < slots; i++) {
        len[i] = draw(&rng, octaves);
        if (!(slot[i] = malloc(len[i])))
            bench_die("out of memory");
        slot[i][0] = slot[i][len[i] - 1] = (char)i;
    }
    for (unsigned long long s = 0; s < steps; s++) {
        size_t i = (size_t)(xorshift64(&rng) % slots);
        free(slot[i]);
        len[i] = draw(&rng, octaves);
        if (!(slot[i] = malloc(len[i])))
            bench_die("out of memory");
        slot[i][0] = slot[i][len[i] - 1] = (char)s;
    }
    for (size_t i = 0; i < slots; i++)
        free(slot[i]);
    free(slot);
    free(len);
    return NULL;
}

int main(int argc, char **argv)
{
    bench_usage(argc, argv, "usage: bench_alloc_test [THREADS [STEPS [SLOTS [MIN [MAX [SEED]]]]]]\n"
                            "  defaults: THREADS=1 STEPS=10000000 SLOTS=8192 MIN=8 MAX=8192 SEED=42\n");
    size_t threads = bench_arg(argc, argv, 1, 1);
    steps = bench_arg(argc, argv, 2, 10000000);
    slots = bench_arg(argc, argv, 3, 8192);
    min_size = bench_arg(argc, argv, 4, 8);
    max_size = bench_arg(argc, argv, 5, 8192);
    seed = bench_arg(argc, argv, 6, 42);
    if (threads == 0 || threads > 1024 || slots == 0 || min_size == 0 || max_size < min_size)
        bench_die("need 1 <= THREADS <= 1024, SLOTS >= 1 and 1 <= MIN <= MAX");
    double t = bench_run_threads(threads, worker);
    char extra[96];
    snprintf(extra, sizeof extra, "slots=%zu min=%zu max=%zu", slots, min_size, max_size);
    bench_result("alloc_test", (int)threads, (unsigned long long)threads * steps, t, extra);
    return 0;
}
