/* thread_churn.c -- many short-lived threads must not make memory grow.
 *
 * Creates NTHREADS (default 10000) threads in batches of BATCH (8) concurrent
 * threads.  Each allocates a few hundred blocks of mixed sizes, verifies and
 * frees most of them, and leaves some allocated; the main thread verifies and
 * frees those after the next batch has been joined (so they are freed by a
 * different thread, after their allocating thread has exited).
 *
 * RSS is measured after the first 1000 threads and at the end; the test
 * fails if the final RSS exceeds the first measurement by more than 32 MiB
 * (per-thread caches / heaps of dead threads must be reclaimed or reused).
 *
 * Usage: thread_churn [nthreads] [batch]
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "test_util.h"

#include <pthread.h>

enum { PER_THREAD = 300, KEEP = 24, MAX_BATCH = 64 };

struct kept {
    unsigned char *p;
    size_t n;
    uint64_t seed;
};

struct targ {
    unsigned id;
    struct kept keep[KEEP];
    int nkeep;
    int failed;
};

/* Blocks up to 4 KiB get the full pattern; bigger ones the pattern on the
 * first and last 256 bytes plus one byte in every 4 KiB (every page is
 * touched, so leaked memory shows up in RSS, at a fraction of the cost). */
static void sparse_fill(unsigned char *p, size_t n, uint64_t seed)
{
    if (n <= 4096) {
        pat_fill(p, n, seed);
        return;
    }
    pat_fill(p, 256, seed);
    for (size_t i = 4096; i < n - 256; i += 4096)
        p[i] = pat_expected(seed, i);
    for (size_t i = n - 256; i < n; i++)
        p[i] = pat_expected(seed, i);
}

static size_t sparse_check(const unsigned char *p, size_t n, uint64_t seed)
{
    if (n <= 4096)
        return pat_check(p, n, seed);
    size_t off = pat_check(p, 256, seed);
    if (off != (size_t)-1)
        return off;
    for (size_t i = 4096; i < n - 256; i += 4096)
        if (p[i] != pat_expected(seed, i))
            return i;
    for (size_t i = n - 256; i < n; i++)
        if (p[i] != pat_expected(seed, i))
            return i;
    return (size_t)-1;
}

static size_t churn_size(uint64_t *rng)
{
    unsigned r = (unsigned)rng_range(rng, 0, 99);
    if (r < 75)
        return rng_range(rng, 1, 512);
    if (r < 95)
        return rng_range(rng, 513, 16384);
    return rng_range(rng, 16385, 300000);
}

static void *worker(void *arg)
{
    struct targ *a = arg;
    uint64_t rng = 0xC0FFEEull + a->id * 7919ull;
    unsigned char *blk[PER_THREAD];
    size_t len[PER_THREAD];
    a->nkeep = 0;
    a->failed = 0;
    for (int i = 0; i < PER_THREAD; i++) {
        len[i] = churn_size(&rng);
        blk[i] = malloc(len[i]);
        if (!blk[i]) {
            fprintf(stderr, "thread_churn: thread %u: malloc(%zu) = NULL\n",
                    a->id, len[i]);
            a->failed = 1;
            return NULL;
        }
        sparse_fill(blk[i], len[i], (uint64_t)a->id << 20 | (uint64_t)i);
        /* free some immediately (LIFO-ish churn) */
        if (i % 3 == 2) {
            int k = (int)rng_range(&rng, 0, (size_t)i);
            if (blk[k]) {
                size_t off = sparse_check(blk[k], len[k], (uint64_t)a->id << 20 | (uint64_t)k);
                if (off != (size_t)-1) {
                    fprintf(stderr, "thread_churn: thread %u: block %d (%p, "
                            "%zu bytes) corrupted at offset %zu\n", a->id, k,
                            (void *)blk[k], len[k], off);
                    a->failed = 1;
                }
                free(blk[k]);
                blk[k] = NULL;
            }
        }
    }
    for (int i = 0; i < PER_THREAD; i++) {
        if (!blk[i])
            continue;
        uint64_t seed = (uint64_t)a->id << 20 | (uint64_t)i;
        size_t off = sparse_check(blk[i], len[i], seed);
        if (off != (size_t)-1) {
            fprintf(stderr, "thread_churn: thread %u: block %d (%p, %zu "
                    "bytes) corrupted at offset %zu\n", a->id, i,
                    (void *)blk[i], len[i], off);
            a->failed = 1;
        }
        if (a->nkeep < KEEP && (i % 7) == 0) {
            a->keep[a->nkeep].p = blk[i];
            a->keep[a->nkeep].n = len[i];
            a->keep[a->nkeep].seed = seed;
            a->nkeep++;
        } else {
            free(blk[i]);
        }
    }
    return NULL;
}

static int free_kept(struct targ *a)
{
    int bad = 0;
    for (int k = 0; k < a->nkeep; k++) {
        size_t off = sparse_check(a->keep[k].p, a->keep[k].n, a->keep[k].seed);
        if (off != (size_t)-1) {
            fprintf(stderr, "thread_churn: block kept by dead thread %u (%p, "
                    "%zu bytes) corrupted at offset %zu\n", a->id,
                    (void *)a->keep[k].p, a->keep[k].n, off);
            bad = 1;
        }
        free(a->keep[k].p);
    }
    a->nkeep = 0;
    return bad;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    int nthreads = argc > 1 ? atoi(argv[1]) : 10000;
    int batch = argc > 2 ? atoi(argv[2]) : 8;
    CHECK(nthreads >= 1000 && batch >= 1 && batch <= MAX_BATCH,
          "usage: thread_churn [nthreads>=1000] [batch 1..%d]", MAX_BATCH);
    hk_require_if_expected("thread_churn");

    /* two alternating sets: batch N's kept blocks are freed after batch N+1
     * has been joined */
    static struct targ args[2][MAX_BATCH];
    pthread_t tids[MAX_BATCH];
    long rss_first = -1, rss_end;
    int failed = 0, cur = 0;
    unsigned id = 0;
    for (int done = 0; done < nthreads; done += batch, cur ^= 1) {
        int n = nthreads - done < batch ? nthreads - done : batch;
        for (int t = 0; t < n; t++) {
            args[cur][t].id = id++;
            int rc = pthread_create(&tids[t], NULL, worker, &args[cur][t]);
            CHECK(rc == 0, "pthread_create #%u: %s", id - 1, strerror(rc));
        }
        for (int t = 0; t < n; t++) {
            int rc = pthread_join(tids[t], NULL);
            CHECK(rc == 0, "pthread_join: %s", strerror(rc));
            failed |= args[cur][t].failed;
        }
        /* free what the previous batch left behind */
        for (int t = 0; t < MAX_BATCH; t++)
            failed |= free_kept(&args[cur ^ 1][t]);
        CHECK(!failed, "memory corruption detected (see above)");
        /* bail out early on runaway growth instead of exhausting the
         * machine's memory (the real criterion is checked at the end) */
        long rss_now = rss_kib();
        CHECK(rss_first >= 0 || rss_now < 2L * 1024 * 1024,
              "RSS reached %ld KiB after only %d threads (limit 2 GiB)",
              rss_now, done + n);
        CHECK(rss_first < 0 || rss_now - rss_first < 256L * 1024,
              "RSS grew from %ld KiB (after 1000 threads) to %ld KiB after %d "
              "threads: unbounded growth, stopping early", rss_first, rss_now,
              done + n);
        if (rss_first < 0 && done + n >= 1000) {
            rss_first = rss_kib();
            printf("thread_churn: RSS after %d threads: %ld KiB\n", done + n,
                   rss_first);
        }
    }
    for (int s = 0; s < 2; s++)
        for (int t = 0; t < MAX_BATCH; t++)
            failed |= free_kept(&args[s][t]);
    CHECK(!failed, "memory corruption detected (see above)");
    rss_end = rss_kib();
    printf("thread_churn: RSS after %d threads: %ld KiB (growth %+ld KiB, "
           "limit +32768 KiB)\n", nthreads, rss_end, rss_end - rss_first);
    EXPECT(rss_end - rss_first <= 32 * 1024,
           "RSS grew from %ld KiB (after 1000 threads) to %ld KiB (after %d "
           "threads): +%ld KiB > 32 MiB -- memory of exited threads is not "
           "reclaimed", rss_first, rss_end, nthreads, rss_end - rss_first);
    return test_finish("thread_churn");
}
