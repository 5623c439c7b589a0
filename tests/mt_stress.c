/* mt_stress.c -- multi-threaded allocation stress with cross-thread frees.
 *
 * THREADS threads x ROUNDS rounds; threads are created anew every round.
 * Each thread keeps a working set of blocks (sizes: 70% 1..1 KiB, 25%
 * 1 KiB..64 KiB, 5% 64 KiB..1 MiB), every block filled with a pattern derived
 * from its address and a serial number.  Random operations: allocate, free
 * (after verifying the pattern), realloc (verifying the kept prefix), calloc
 * (verifying zeroes), and passing blocks to other threads through a shared
 * mutex-protected exchange queue -- so many frees happen on a thread other
 * than the one that allocated.  At the end of a round each thread hands its
 * working set to the next round's threads (freed by threads that did not
 * exist when the block was allocated).  Any pattern mismatch is a failure.
 *
 * Usage: mt_stress [threads] [rounds] [ops_per_thread_per_round]
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "test_util.h"

#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>

struct blk {
    unsigned char *p;
    size_t n;
    uint64_t seed;
    unsigned owner; /* unique id of the allocating thread (round*T + t) */
};

static int T = 4, ROUNDS = 20, OPS = 5000;
enum { WS = 400, QCAP = 8192 };

static pthread_mutex_t qlock = PTHREAD_MUTEX_INITIALIZER;
static struct blk queue[QCAP];
static size_t qhead, qlen;

static pthread_mutex_t llock = PTHREAD_MUTEX_INITIALIZER;
static struct blk *leftover;
static size_t nleft, capleft;

static atomic_ulong n_alloc, n_free, n_cross_free, n_realloc, n_bytes;

struct targ {
    int round, t;
    uint64_t rng;
};

static void fail_block(const char *what, const struct targ *a,
                       const struct blk *b, size_t off, size_t checked)
{
    fprintf(stderr,
            "mt_stress: CORRUPTION (%s) round %d thread %d: block %p size %zu "
            "seed %#llx allocated by thread-id %u: byte %zu of %zu checked = "
            "0x%02x, expected 0x%02x\n",
            what, a ? a->round : -1, a ? a->t : -1, (void *)b->p, b->n,
            (unsigned long long)b->seed, b->owner, off, checked, b->p[off],
            pat_expected(b->seed, off));
    fflush(stderr);
    _exit(1);
}

static void verify(const char *what, const struct targ *a, const struct blk *b)
{
    size_t off = pat_check(b->p, b->n, b->seed);
    if (off != (size_t)-1)
        fail_block(what, a, b, off, b->n);
}

static size_t pick_size(uint64_t *rng)
{
    unsigned r = (unsigned)rng_range(rng, 0, 99);
    if (r < 70)
        return rng_range(rng, 1, 1024);
    if (r < 95)
        return rng_range(rng, 1025, 65536);
    return rng_range(rng, 65537, 1u << 20);
}

static uint64_t make_seed(const void *p, uint64_t serial)
{
    return (uint64_t)(uintptr_t)p * 0x100000001B3ull ^
           serial * 0x9E3779B97F4A7C15ull;
}

static void free_blk(const struct targ *a, unsigned me, struct blk *b,
                     const char *why)
{
    verify(why, a, b);
    if (b->owner != me)
        atomic_fetch_add_explicit(&n_cross_free, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&n_free, 1, memory_order_relaxed);
    free(b->p);
    b->p = NULL;
}

static void *worker(void *arg)
{
    struct targ *a = arg;
    unsigned me = (unsigned)(a->round * T + a->t);
    uint64_t serial = (uint64_t)me << 32;
    struct blk ws[WS];
    int n = 0;

    /* adopt blocks left over by the previous round's threads */
    pthread_mutex_lock(&llock);
    while (nleft > 0 && n < WS)
        ws[n++] = leftover[--nleft];
    pthread_mutex_unlock(&llock);
    for (int i = 0; i < n; i++)
        verify("leftover from previous round", a, &ws[i]);

    for (int op = 0; op < OPS; op++) {
        unsigned r = (unsigned)rng_range(&a->rng, 0, 99);
        if (r < 45 || n == 0) { /* allocate */
            if (n == WS) {
                int k = (int)rng_range(&a->rng, 0, WS - 1);
                free_blk(a, me, &ws[k], "own block before free");
                ws[k] = ws[--n];
            }
            struct blk b;
            b.n = pick_size(&a->rng);
            int use_calloc = rng_range(&a->rng, 0, 19) == 0;
            b.p = use_calloc ? calloc(1, b.n) : malloc(b.n);
            if (!b.p) {
                fprintf(stderr, "mt_stress: %s(%zu) returned NULL\n",
                        use_calloc ? "calloc" : "malloc", b.n);
                _exit(1);
            }
            if (use_calloc) {
                for (size_t i = 0; i < b.n; i++)
                    if (b.p[i]) {
                        fprintf(stderr, "mt_stress: calloc(1, %zu) = %p byte "
                                "%zu = 0x%02x, expected 0 (round %d thread "
                                "%d)\n", b.n, (void *)b.p, i, b.p[i],
                                a->round, a->t);
                        _exit(1);
                    }
            }
            b.seed = make_seed(b.p, ++serial);
            b.owner = me;
            pat_fill(b.p, b.n, b.seed);
            ws[n++] = b;
            atomic_fetch_add_explicit(&n_alloc, 1, memory_order_relaxed);
            atomic_fetch_add_explicit(&n_bytes, b.n, memory_order_relaxed);
        } else if (r < 68) { /* free own */
            int k = (int)rng_range(&a->rng, 0, (size_t)n - 1);
            free_blk(a, me, &ws[k], "own block before free");
            ws[k] = ws[--n];
        } else if (r < 80) { /* give away */
            int k = (int)rng_range(&a->rng, 0, (size_t)n - 1);
            verify("own block before handing it over", a, &ws[k]);
            pthread_mutex_lock(&qlock);
            int queued = 0;
            if (qlen < QCAP) {
                queue[(qhead + qlen) % QCAP] = ws[k];
                qlen++;
                queued = 1;
            }
            pthread_mutex_unlock(&qlock);
            if (!queued)
                free_blk(a, me, &ws[k], "own block (queue full)");
            ws[k] = ws[--n];
        } else if (r < 93) { /* take from the queue */
            struct blk b;
            int got = 0;
            pthread_mutex_lock(&qlock);
            if (qlen) {
                b = queue[qhead];
                qhead = (qhead + 1) % QCAP;
                qlen--;
                got = 1;
            }
            pthread_mutex_unlock(&qlock);
            if (!got)
                continue;
            if ((rng_next(&a->rng) & 1) || n == WS) {
                free_blk(a, me, &b, "block received from another thread");
            } else {
                verify("block received from another thread", a, &b);
                ws[n++] = b;
            }
        } else { /* realloc */
            int k = (int)rng_range(&a->rng, 0, (size_t)n - 1);
            struct blk *b = &ws[k];
            verify("block before realloc", a, b);
            size_t nn = (rng_next(&a->rng) & 1) ? pick_size(&a->rng)
                                                : b->n / 2 + 1;
            unsigned char *q = realloc(b->p, nn);
            if (!q) {
                fprintf(stderr, "mt_stress: realloc(%p, %zu) returned NULL\n",
                        (void *)b->p, nn);
                _exit(1);
            }
            struct blk old = *b;
            b->p = q;
            size_t keep = old.n < nn ? old.n : nn;
            size_t off = pat_check(q, keep, old.seed);
            if (off != (size_t)-1) {
                struct blk tmp = {q, keep, old.seed, old.owner};
                fprintf(stderr, "mt_stress: realloc %p (%zu) -> %p (%zu) did "
                        "not preserve contents\n", (void *)old.p, old.n,
                        (void *)q, nn);
                fail_block("after realloc", a, &tmp, off, keep);
            }
            if (b->owner != me)
                atomic_fetch_add_explicit(&n_cross_free, 1,
                                          memory_order_relaxed);
            b->n = nn;
            b->seed = make_seed(q, ++serial);
            b->owner = me;
            pat_fill(q, nn, b->seed);
            atomic_fetch_add_explicit(&n_realloc, 1, memory_order_relaxed);
        }
    }

    /* hand the working set to the next round */
    pthread_mutex_lock(&llock);
    for (int i = 0; i < n; i++) {
        if (nleft == capleft) {
            fprintf(stderr, "mt_stress: leftover list overflow\n");
            _exit(1);
        }
        leftover[nleft++] = ws[i];
    }
    pthread_mutex_unlock(&llock);
    return NULL;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 1)
        T = atoi(argv[1]);
    if (argc > 2)
        ROUNDS = atoi(argv[2]);
    if (argc > 3)
        OPS = atoi(argv[3]);
    CHECK(T > 0 && T <= 64 && ROUNDS > 0 && OPS > 0, "bad arguments");
    hk_require_if_expected("mt_stress");
    printf("mt_stress: %d threads x %d rounds x %d ops\n", T, ROUNDS, OPS);

    capleft = (size_t)T * WS + 16;
    leftover = malloc(capleft * sizeof *leftover);
    CHECK(leftover != NULL, "malloc leftover list");
    struct targ *args = malloc((size_t)T * sizeof *args);
    pthread_t *tids = malloc((size_t)T * sizeof *tids);
    CHECK(args && tids, "malloc");

    long rss_peak = 0;
    for (int round = 0; round < ROUNDS; round++) {
        for (int t = 0; t < T; t++) {
            args[t].round = round;
            args[t].t = t;
            args[t].rng = 0x1234567ull * (uint64_t)(round * T + t + 1);
            int rc = pthread_create(&tids[t], NULL, worker, &args[t]);
            CHECK(rc == 0, "pthread_create: %s", strerror(rc));
        }
        for (int t = 0; t < T; t++)
            pthread_join(tids[t], NULL);
        long rss = rss_kib();
        if (rss > rss_peak)
            rss_peak = rss;
    }

    /* drain: the main thread frees everything that is left */
    struct targ mainarg = {ROUNDS, -1, 1};
    unsigned me = 0xffffffffu;
    size_t drained = 0;
    for (size_t i = 0; i < nleft; i++, drained++)
        free_blk(&mainarg, me, &leftover[i], "leftover at exit");
    while (qlen) {
        free_blk(&mainarg, me, &queue[qhead], "queued block at exit");
        qhead = (qhead + 1) % QCAP;
        qlen--;
        drained++;
    }
    free(leftover);
    free(args);
    free(tids);

    unsigned long fr = atomic_load(&n_free), cross = atomic_load(&n_cross_free);
    printf("mt_stress: %lu allocs (%lu MiB), %lu reallocs, %lu frees, %lu by "
           "another thread (%.1f%%), %zu drained at exit, peak RSS %ld MiB\n",
           atomic_load(&n_alloc), atomic_load(&n_bytes) >> 20,
           atomic_load(&n_realloc), fr, cross, fr ? 100.0 * cross / fr : 0.0,
           drained, rss_peak / 1024);
    /* self-check: the test really exercised cross-thread frees */
    CHECK(fr == atomic_load(&n_alloc), "every allocated block must have been "
          "freed exactly once: %lu allocs, %lu frees", atomic_load(&n_alloc), fr);
    CHECK(cross * 10 >= fr, "only %lu of %lu frees were cross-thread (test "
          "harness problem)", cross, fr);
    return test_finish("mt_stress");
}
