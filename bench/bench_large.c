/* bench_large -- large blocks (256 KiB - 8 MiB): a working set of SLOTS
 * blocks per thread, replaced at random, each new block written page by
 * page as a program filling a buffer would.
 *
 *   each thread: fill SLOTS slots (not timed); wait for all threads;
 *   loop STEPS times: pick a random slot, free it, malloc a random size in
 *   [MIN, MAX], touch it; then free everything (not timed).
 *
 * Touching: with PAGES=1 (default) one byte in every 4 KiB page, so the cost
 * of fresh pages (the page faults after mmap or MADV_DONTNEED) is part of
 * the figure -- that is where large-block allocators differ: caching and
 * reusing mappings vs returning them to the OS. PAGES=0 writes the first and
 * last byte only. Peak RSS shows what the caching costs.
 *
 * Usage: bench_large [STEPS [SLOTS [MIN [MAX [THREADS [PAGES [SEED]]]]]]]
 *   STEPS    replacements per thread          (default 20000)
 *   SLOTS    working-set size per thread      (default 32)
 *   MIN/MAX  size range in bytes              (default 256k / 8m)
 *   THREADS  threads                          (default 1)
 *   PAGES    1: touch every page, 0: ends only (default 1)
 *   SEED     base seed (thread t uses SEED+t) (default 42)
 * ops = THREADS * STEPS; seconds = wall time from the common start to the
 * last thread finishing its steps; mops has six decimals here. "-" keeps a default; numbers take k/m/g
 * suffixes (x1024).
 */
#include "bench_common.h"
#include <pthread.h>

static unsigned long long steps;
static size_t nslots, min_size, max_size;
static int touch_pages;
static uint64_t base_seed;
static pthread_barrier_t start_barrier;

struct worker {
    pthread_t tid;
    int index;
    double end;
    unsigned long long sum;
};

static void touch(char *p, size_t n, unsigned char v)
{
    p[0] = (char)v;
    if (touch_pages)
        for (size_t off = 4096; off < n; off += 4096)
            p[off] = (char)v;
    p[n - 1] = (char)v;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    uint64_t rng = rng_seed(base_seed + (uint64_t)w->index);
    char **slot = calloc(nslots, sizeof *slot);
    size_t *len = calloc(nslots, sizeof *len);
    if (!slot || !len)
        bench_die("out of memory");
    for (size_t i = 0; i < nslots; i++) {
        len[i] = rng_range(&rng, min_size, max_size);
        if (!(slot[i] = malloc(len[i])))
            bench_die("malloc failed");
        touch(slot[i], len[i], 1);
    }

    pthread_barrier_wait(&start_barrier);
    unsigned long long sum = 0;
    for (unsigned long long s = 0; s < steps; s++) {
        size_t i = (size_t)(xorshift64(&rng) % nslots);
        sum += (unsigned char)slot[i][len[i] - 1];
        free(slot[i]);
        size_t n = rng_range(&rng, min_size, max_size);
        char *p = malloc(n);
        if (!p)
            bench_die("malloc failed");
        touch(p, n, (unsigned char)s);
        slot[i] = p;
        len[i] = n;
    }
    w->end = bench_now();
    w->sum = sum;

    for (size_t i = 0; i < nslots; i++)
        free(slot[i]);
    free(slot);
    free(len);
    return NULL;
}

int main(int argc, char **argv)
{
    bench_usage(argc, argv,
                "usage: bench_large [STEPS [SLOTS [MIN [MAX [THREADS [PAGES [SEED]]]]]]]\n"
                "  defaults: STEPS=20000 SLOTS=32 MIN=256k MAX=8m THREADS=1 PAGES=1 SEED=42\n");
    steps = bench_arg(argc, argv, 1, 20000);
    nslots = bench_arg(argc, argv, 2, 32);
    min_size = bench_arg(argc, argv, 3, 256 << 10);
    max_size = bench_arg(argc, argv, 4, 8 << 20);
    int threads = (int)bench_arg(argc, argv, 5, 1);
    touch_pages = (int)bench_arg(argc, argv, 6, 1);
    base_seed = bench_arg(argc, argv, 7, 42);
    if (threads < 1 || threads > 1024 || nslots == 0 || min_size == 0 || max_size < min_size)
        bench_die("need 1 <= THREADS <= 1024, SLOTS >= 1, 1 <= MIN <= MAX");

    struct worker *w = calloc((size_t)threads, sizeof *w);
    if (!w)
        bench_die("out of memory");
    pthread_barrier_init(&start_barrier, NULL, (unsigned)threads + 1);
    for (int t = 0; t < threads; t++) {
        w[t].index = t;
        if (pthread_create(&w[t].tid, NULL, worker_main, &w[t]) != 0)
            bench_die("pthread_create failed");
    }
    pthread_barrier_wait(&start_barrier);
    double t0 = bench_now();
    double t1 = t0;
    unsigned long long sum = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join(w[t].tid, NULL);
        if (w[t].end > t1)
            t1 = w[t].end;
        sum += w[t].sum;
    }
    pthread_barrier_destroy(&start_barrier);
    free(w);

    /* bench_result()'s format, but with more decimals: a few thousand
     * operations per second is 0.00x Mops/s */
    unsigned long long ops = (unsigned long long)threads * steps;
    printf("RESULT bench=large threads=%d ops=%llu seconds=%.6f mops=%.6f "
           "slots=%zu min=%zu max=%zu pages=%d check=%llu\n",
           threads, ops, t1 - t0, t1 > t0 ? (double)ops / (t1 - t0) / 1e6 : 0.0,
           nslots, min_size, max_size, touch_pages, sum & 0xff);
    return 0;
}
