/* l2_stress.c -- random medium alloc/free/realloc on 4 threads with
 * cross-thread handoffs and thread recreation.
 *
 * `slots` workers (default 4), each with a mailbox (bounded queue). A worker
 * runs a random number of operations (deterministic per slot and generation)
 * on its table of live blocks (every block carries a per-block pattern):
 *   45%  allocate (mostly medium sizes over all classes; some tiny, some just
 *        above 256 KiB), replacing -- verifying and freeing -- what the table
 *        slot held;
 *   20%  verify and free a block;
 *   15%  send a block to another slot's mailbox (remote free there later);
 *   15%  take up to 32 blocks from its own mailbox: verify, free half, keep
 *        half (to be freed later by this or yet another thread);
 *    5%  realloc a block to another medium size (prefix must survive).
 * A worker that finishes leaves its live blocks in a shared orphan pool
 * and exits; the supervisor (main) starts a new worker in its slot at once,
 * which starts by taking up to TABLE orphans over -- so blocks outlive the
 * threads that allocated them and are freed by threads created after those
 * exited (adoption of abandoned segments). After the time budget (4 s) the
 * main thread verifies and frees everything left in mailboxes and the pool.
 *
 * Usage: l2_stress [seconds] [slots]   (default 4, 4; slots <= 64)
 */
#include "test_util.h"
#include "l2_common.h"

#include <pthread.h>
#include <stdatomic.h>

enum { MAX_SLOTS = 64, TABLE = 256, MBOX = 256, POOL = MAX_SLOTS * TABLE };

static int nslots = 4;
static int seconds = 4;
static bq mbox[MAX_SLOTS];

static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static bq_item pool[POOL];
static size_t pool_len;

static atomic_int failed;

/* workers that finished, for the supervisor */
static pthread_mutex_t done_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t done_cv = PTHREAD_COND_INITIALIZER;
static int done[MAX_SLOTS];
static atomic_ulong n_alloc, n_free, n_sent, n_recv, n_realloc, n_threads;

struct worker {
    int slot;
    unsigned gen;
    uint64_t rng;
    bq_item t[TABLE];
};

static void report_bad(const struct worker *w, const bq_item *it, size_t off,
                       const char *what)
{
    if (atomic_fetch_add(&failed, 1) < 10)
        fprintf(stderr,
                "l2_stress: slot %d gen %u: %s: block %p (%zu bytes, seed "
                "%#llx) corrupted at offset %zu (byte %#x, expected %#x)\n",
                w ? w->slot : -1, w ? w->gen : 0, what, it->p, it->n,
                (unsigned long long)it->seed, off,
                ((const unsigned char *)it->p)[off], pat_expected(it->seed, off));
}

static void verify_free(struct worker *w, bq_item *it, const char *what)
{
    if (!it->p)
        return;
    size_t off = l2_check(it->p, it->n, it->seed);
    if (off != (size_t)-1)
        report_bad(w, it, off, what);
    free(it->p);
    it->p = NULL;
    atomic_fetch_add_explicit(&n_free, 1, memory_order_relaxed);
}

static size_t stress_size(uint64_t *rng)
{
    unsigned r = (unsigned)rng_range(rng, 0, 99);
    if (r < 5)
        return rng_range(rng, 16, 1024);
    if (r < 7)
        return rng_range(rng, L2_MAX_SIZE + 1, L2_MAX_SIZE + 65536);
    return l2_random_size(rng);
}

static uint64_t new_seed(struct worker *w)
{
    return rng_next(&w->rng) | 1;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    atomic_fetch_add(&n_threads, 1);
    /* take over orphans of exited workers */
    pthread_mutex_lock(&pool_mu);
    for (int i = 0; i < TABLE && pool_len; i++)
        w->t[i] = pool[--pool_len];
    pthread_mutex_unlock(&pool_mu);

    size_t ops = rng_range(&w->rng, 2000, 8000);
    for (size_t op = 0; op < ops && !atomic_load(&failed); op++) {
        unsigned r = (unsigned)rng_range(&w->rng, 0, 99);
        bq_item *it = &w->t[rng_range(&w->rng, 0, TABLE - 1)];
        if (r < 45) {
            verify_free(w, it, "replaced block");
            size_t n = stress_size(&w->rng);
            it->p = malloc(n);
            CHECK(it->p != NULL, "slot %d: malloc(%zu) returned NULL", w->slot, n);
            it->n = n;
            it->seed = new_seed(w);
            l2_fill(it->p, n, it->seed);
            atomic_fetch_add_explicit(&n_alloc, 1, memory_order_relaxed);
        } else if (r < 65) {
            verify_free(w, it, "freed block");
        } else if (r < 80) {
            if (!it->p || nslots < 2)
                continue;
            int to = (int)rng_range(&w->rng, 0, (size_t)nslots - 2);
            if (to >= w->slot)
                to++;
            if (bq_try_push(&mbox[to], *it)) {
                it->p = NULL;
                atomic_fetch_add_explicit(&n_sent, 1, memory_order_relaxed);
            } else {
                verify_free(w, it, "block for a full mailbox");
            }
        } else if (r < 95) {
            bq_item in;
            for (int k = 0; k < 32 && bq_try_pop(&mbox[w->slot], &in); k++) {
                atomic_fetch_add_explicit(&n_recv, 1, memory_order_relaxed);
                if (k & 1) {
                    verify_free(w, &in, "received block");
                } else {
                    size_t off = l2_check(in.p, in.n, in.seed);
                    if (off != (size_t)-1)
                        report_bad(w, &in, off, "received block");
                    bq_item *dst = &w->t[rng_range(&w->rng, 0, TABLE - 1)];
                    verify_free(w, dst, "block displaced by a received one");
                    *dst = in;
                }
            }
        } else {
            if (!it->p)
                continue;
            size_t n = l2_random_size(&w->rng);
            void *q = realloc(it->p, n);
            CHECK(q != NULL, "slot %d: realloc(%p, %zu) returned NULL", w->slot,
                  it->p, n);
            size_t off = l2_check_prefix(q, it->n, n, it->seed);
            if (off != (size_t)-1) {
                bq_item tmp = {q, it->n < n ? it->n : n, it->seed};
                report_bad(w, &tmp, off, "realloc'ed block (prefix)");
            }
            it->p = q;
            it->n = n;
            it->seed = new_seed(w);
            l2_fill(q, n, it->seed);
            atomic_fetch_add_explicit(&n_realloc, 1, memory_order_relaxed);
        }
    }
    /* exit with the live blocks handed to the pool (freed by later threads) */
    pthread_mutex_lock(&pool_mu);
    for (int i = 0; i < TABLE; i++) {
        if (!w->t[i].p)
            continue;
        size_t off = l2_check(w->t[i].p, w->t[i].n, w->t[i].seed);
        if (off != (size_t)-1)
            report_bad(w, &w->t[i], off, "block left at exit");
        if (pool_len < POOL) {
            pool[pool_len++] = w->t[i];
            w->t[i].p = NULL;
        }
    }
    pthread_mutex_unlock(&pool_mu);
    for (int i = 0; i < TABLE; i++)
        verify_free(w, &w->t[i], "block left at exit (pool full)");
    pthread_mutex_lock(&done_mu);
    done[w->slot] = 1;
    pthread_cond_signal(&done_cv);
    pthread_mutex_unlock(&done_mu);
    return NULL;
}

static int wait_any_done(void)
{
    pthread_mutex_lock(&done_mu);
    for (;;) {
        for (int s = 0; s < nslots; s++)
            if (done[s]) {
                done[s] = 0;
                pthread_mutex_unlock(&done_mu);
                return s;
            }
        pthread_cond_wait(&done_cv, &done_mu);
    }
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 1)
        seconds = atoi(argv[1]);
    if (argc > 2)
        nslots = atoi(argv[2]);
    CHECK(seconds >= 1 && nslots >= 1 && nslots <= MAX_SLOTS,
          "usage: l2_stress [seconds >= 1] [slots 1..%d]", MAX_SLOTS);
    hk_require_if_expected("l2_stress");
    l2_classes_init();
    for (int s = 0; s < nslots; s++)
        bq_init(&mbox[s], MBOX);

    static struct worker w[MAX_SLOTS];
    pthread_t tid[MAX_SLOTS];
    unsigned gen = 0;
    long rss0 = rss_kib(), rss_max = rss0;
    uint64_t t0 = now_ms();
    for (int s = 0; s < nslots; s++) {
        memset(&w[s], 0, sizeof w[s]);
        w[s].slot = s;
        w[s].gen = gen++;
        w[s].rng = 0x5EED0000ull + w[s].gen * 0x9E3779B97F4A7C15ull;
        tid[s] = xspawn(worker_main, &w[s]);
    }
    for (int running = nslots; running > 0;) {
        int s = wait_any_done();
        xjoin(tid[s]);
        running--;
        long rss = rss_kib();
        if (rss > rss_max)
            rss_max = rss;
        CHECK(!atomic_load(&failed), "corrupted blocks (see above)");
        /* live data: <= 3 x 256 blocks per slot (table, mailbox, share of
         * the pool) of ~52 KiB on average */
        CHECK(rss - rss0 < 1024L * 1024 + nslots * 64L * 1024,
              "RSS grew from %ld to %ld KiB with %d slots: runaway growth, "
              "stopping", rss0, rss, nslots);
        if (now_ms() - t0 >= (uint64_t)seconds * 1000)
            continue;   /* no new workers: wait for the others */
        running++;
        memset(&w[s], 0, sizeof w[s]);
        w[s].slot = s;
        w[s].gen = gen++;
        w[s].rng = 0x5EED0000ull + w[s].gen * 0x9E3779B97F4A7C15ull;
        tid[s] = xspawn(worker_main, &w[s]);
    }
    /* main frees what is left: mailboxes and the orphan pool */
    bq_item it;
    size_t left = 0;
    for (int s = 0; s < nslots; s++)
        while (bq_try_pop(&mbox[s], &it)) {
            verify_free(NULL, &it, "block left in a mailbox");
            left++;
        }
    for (size_t i = 0; i < pool_len; i++, left++)
        verify_free(NULL, &pool[i], "block left in the orphan pool");
    pool_len = 0;
    CHECK(!atomic_load(&failed), "corrupted blocks (see above)");
    malloc_trim(0);
    long rss_end = rss_kib();
    printf("l2_stress: %llu ms, %lu threads: %lu allocs, %lu frees, %lu "
           "handoffs (%lu received), %lu reallocs; %zu blocks freed by main at "
           "the end; RSS %ld KiB at start, max %ld (at joins), %ld at end\n",
           (unsigned long long)(now_ms() - t0), atomic_load(&n_threads),
           atomic_load(&n_alloc), atomic_load(&n_free), atomic_load(&n_sent),
           atomic_load(&n_recv), atomic_load(&n_realloc), left, rss0, rss_max,
           rss_end);
    EXPECT(atomic_load(&n_alloc) + atomic_load(&n_realloc) > 0, "nothing ran");
    EXPECT(atomic_load(&n_free) == atomic_load(&n_alloc),
           "%lu blocks allocated but %lu freed", atomic_load(&n_alloc),
           atomic_load(&n_free));
    for (int s = 0; s < nslots; s++)
        bq_destroy(&mbox[s]);
    return test_finish("l2_stress");
}
