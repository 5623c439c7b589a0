/* workingset.h -- the "random replacement in a per-thread working set"
 * benchmark body shared by bench_mid_mt and bench_large:
 *
 *   each thread: fill SLOTS slots (not timed); wait for all threads;
 *   loop STEPS times: pick a random slot, free it, malloc a random size in
 *   [MIN, MAX], touch it; then free everything (not timed).
 *
 * Touching: the first and last byte always; with PAGES=1 also one byte in
 * every 4 KiB page, as a program that fills its buffers would, so peak RSS
 * (and the cost of fresh pages) reflects what the allocator really does --
 * the byte OFFSET bytes into each page after the first (from the block's
 * start: where that lands in the page depends on the block's alignment).
 * ops = THREADS * STEPS; seconds = wall time from the common start to the
 * last thread finishing its steps. */
#ifndef WORKINGSET_H
#define WORKINGSET_H

#include "bench_common.h"
#include <pthread.h>

struct ws_params {
    const char *name;           /* bench= in the RESULT line */
    int threads;
    unsigned long long steps;   /* per thread */
    size_t nslots, min_size, max_size;
    int touch_pages;
    size_t touch_offset;        /* where in each page the touch writes (< 4096) */
    uint64_t seed;              /* thread t uses seed + t */
    int mops_decimals;          /* 3, or 6 for workloads of a few kops/s */
};

struct ws_worker {
    pthread_t tid;
    const struct ws_params *p;
    pthread_barrier_t *start;
    int index;
    double end;                 /* bench_now() when its steps were done */
    unsigned long long sum;     /* keeps the reads alive */
};

static void ws_touch(char *b, size_t n, unsigned char v, int pages, size_t at)
{
    b[0] = (char)v;
    if (pages)
        for (size_t off = 4096 + at; off < n; off += 4096)
            b[off] = (char)v;
    b[n - 1] = (char)v;
}

static void *ws_worker_main(void *arg)
{
    struct ws_worker *w = arg;
    const struct ws_params *p = w->p;
    uint64_t rng = rng_seed(p->seed + (uint64_t)w->index);
    char **slot = calloc(p->nslots, sizeof *slot);
    size_t *len = calloc(p->nslots, sizeof *len);
    if (!slot || !len)
        bench_die("out of memory");
    for (size_t i = 0; i < p->nslots; i++) {
        len[i] = rng_range(&rng, p->min_size, p->max_size);
        if (!(slot[i] = malloc(len[i])))
            bench_die("malloc failed");
        ws_touch(slot[i], len[i], 1, p->touch_pages, p->touch_offset);
    }

    pthread_barrier_wait(w->start);
    unsigned long long sum = 0;
    for (unsigned long long s = 0; s < p->steps; s++) {
        size_t i = (size_t)(xorshift64(&rng) % p->nslots);
        sum += (unsigned char)slot[i][len[i] - 1];
        free(slot[i]);
        size_t n = rng_range(&rng, p->min_size, p->max_size);
        char *b = malloc(n);
        if (!b)
            bench_die("malloc failed");
        ws_touch(b, n, (unsigned char)s, p->touch_pages, p->touch_offset);
        slot[i] = b;
        len[i] = n;
    }
    w->end = bench_now();
    w->sum = sum;

    for (size_t i = 0; i < p->nslots; i++)
        free(slot[i]);
    free(slot);
    free(len);
    return NULL;
}

/* Runs the workload and prints its RESULT line. */
static int ws_run(const struct ws_params *p)
{
    if (p->threads < 1 || p->threads > 1024 || p->nslots == 0 || p->min_size == 0 ||
        p->max_size < p->min_size)
        bench_die("need 1 <= THREADS <= 1024, SLOTS >= 1, 1 <= MIN <= MAX");
    struct ws_worker *w = calloc((size_t)p->threads, sizeof *w);
    pthread_barrier_t start;
    if (!w)
        bench_die("out of memory");
    pthread_barrier_init(&start, NULL, (unsigned)p->threads + 1);
    for (int t = 0; t < p->threads; t++) {
        w[t] = (struct ws_worker){.p = p, .start = &start, .index = t};
        if (pthread_create(&w[t].tid, NULL, ws_worker_main, &w[t]) != 0)
            bench_die("pthread_create failed");
    }
    pthread_barrier_wait(&start);
    double t0 = bench_now(), t1 = t0;
    unsigned long long sum = 0;
    for (int t = 0; t < p->threads; t++) {
        pthread_join(w[t].tid, NULL);
        if (w[t].end > t1)
            t1 = w[t].end;
        sum += w[t].sum;
    }
    pthread_barrier_destroy(&start);
    free(w);

    unsigned long long ops = (unsigned long long)p->threads * p->steps;
    printf("RESULT bench=%s threads=%d ops=%llu seconds=%.6f mops=%.*f "
           "slots=%zu min=%zu max=%zu pages=%d check=%llu\n",
           p->name, p->threads, ops, t1 - t0, p->mops_decimals,
           t1 > t0 ? (double)ops / (t1 - t0) / 1e6 : 0.0, p->nslots, p->min_size,
           p->max_size, p->touch_pages, sum & 0xff);
    fflush(stdout);
    return 0;
}

#endif
