/* l2_common.h -- helpers shared by the L2 (medium-size pool) tests
 * (l2_cross_thread.c, l2_prodcons.c, l2_adoption.c, l2_full_page.c,
 * l2_rss_return.c, l2_stress.c). Header only; include after test_util.h.
 *
 *   l2_nclasses / l2_class_size[i]   the medium classes, 1280 .. 262144
 *                                    (four per doubling), computed here --
 *                                    independent of the library's tables.
 *   l2_class_lo(i)                   smallest request served by class i
 *                                    (previous class size + 1).
 *   l2_fill / l2_check               pattern over a block; full for blocks up
 *                                    to 16 KiB, above that the first and last
 *                                    1 KiB plus one 8-byte word every 512 B
 *                                    (every 4 KiB page is written).
 *   l2_check_prefix                  the first m bytes of such a block
 *                                    (what realloc must preserve).
 *   xmap / xunmap                    bookkeeping memory straight from mmap,
 *                                    so the tests' own arrays never perturb
 *                                    the allocator state they observe.
 *   ptrset_*                         open-addressing set of addresses (mmap).
 *   l2_check_disjoint                no two [p, p + usable) ranges overlap.
 *   bq_*                             bounded blocking queue (mutex + condvar)
 *                                    of {pointer, size, seed} items, with
 *                                    non-blocking bq_try_push / bq_try_pop.
 *   l2_random_size                   a medium request: class chosen uniformly,
 *                                    size uniform within it, 1/8 exactly the
 *                                    class size or its lower boundary.
 *   now_ms                           CLOCK_MONOTONIC in milliseconds.
 *   hk_malloc_trim                   malloc_trim(0) if the process has one.
 *   hk_churn_forever                 a thread body that frees and mallocs
 *                                    blocks of 1 .. max bytes until the
 *                                    process ends (tests of exit()).
 */
#ifndef HAKMEM_L2_COMMON_H
#define HAKMEM_L2_COMMON_H

#include "test_util.h"

#include <malloc.h>
#include <pthread.h>
#include <sys/mman.h>
#include <time.h>

#define L2_MIN_SIZE 1025u
#define L2_MAX_SIZE (256u * 1024u)
#define L2_MAX_CLASSES 32

static size_t l2_class_size[L2_MAX_CLASSES];
static int l2_nclasses;

static inline void l2_classes_init(void)
{
    l2_nclasses = 0;
    for (size_t base = 1024; base < L2_MAX_SIZE; base *= 2)
        for (size_t q = 5; q <= 8; q++)
            l2_class_size[l2_nclasses++] = base * q / 4;
    CHECK(l2_nclasses == 32 && l2_class_size[0] == 1280 &&
              l2_class_size[31] == L2_MAX_SIZE,
          "medium class table: %d classes, first %zu, last %zu", l2_nclasses,
          l2_class_size[0], l2_class_size[l2_nclasses - 1]);
}

static inline size_t l2_class_lo(int i)
{
    return i == 0 ? L2_MIN_SIZE : l2_class_size[i - 1] + 1;
}

/* index of the class serving a medium request of n bytes */
static inline int l2_class_of(size_t n)
{
    for (int i = 0; i < l2_nclasses; i++)
        if (n <= l2_class_size[i])
            return i;
    return -1;
}

static inline size_t l2_random_size(uint64_t *rng)
{
    int ci = (int)rng_range(rng, 0, (size_t)l2_nclasses - 1);
    size_t lo = l2_class_lo(ci), hi = l2_class_size[ci];
    switch (rng_range(rng, 0, 15)) {
    case 0:
        return hi;
    case 1:
        return lo;
    default:
        return rng_range(rng, lo, hi);
    }
}

/* ---- patterns --------------------------------------------------------------- */
#define L2_FULL_PATTERN_MAX (16u * 1024u)
#define L2_EDGE 1024u
#define L2_STRIDE 512u

static inline void l2_fill(void *p, size_t n, uint64_t seed)
{
    unsigned char *b = p;
    if (n <= L2_FULL_PATTERN_MAX) {
        pat_fill(b, n, seed);
        return;
    }
    pat_fill(b, L2_EDGE, seed);
    for (size_t i = L2_EDGE; i + 8 <= n - L2_EDGE; i += L2_STRIDE) {
        uint64_t v = pat_word(seed, i);
        memcpy(b + i, &v, 8);
    }
    for (size_t i = n - L2_EDGE; i < n; i++)
        b[i] = pat_expected(seed, i);
}

/* offset of the first wrong byte, or (size_t)-1 */
static inline size_t l2_check(const void *p, size_t n, uint64_t seed)
{
    const unsigned char *b = p;
    if (n <= L2_FULL_PATTERN_MAX)
        return pat_check(b, n, seed);
    size_t off = pat_check(b, L2_EDGE, seed);
    if (off != (size_t)-1)
        return off;
    for (size_t i = L2_EDGE; i + 8 <= n - L2_EDGE; i += L2_STRIDE) {
        uint64_t v = pat_word(seed, i), got;
        memcpy(&got, b + i, 8);
        if (got != v)
            for (size_t k = 0; k < 8; k++)
                if (b[i + k] != pat_expected(seed, i + k))
                    return i + k;
    }
    for (size_t i = n - L2_EDGE; i < n; i++)
        if (b[i] != pat_expected(seed, i))
            return i;
    return (size_t)-1;
}

/* Checks the first m bytes of a block that l2_fill wrote with length n (for
 * realloc: the preserved prefix); offset of the first wrong byte or -1. */
static inline size_t l2_check_prefix(const void *p, size_t n, size_t m,
                                     uint64_t seed)
{
    const unsigned char *b = p;
    if (m > n)
        m = n;
    if (n <= L2_FULL_PATTERN_MAX)
        return pat_check(b, m, seed);
    size_t off = pat_check(b, m < L2_EDGE ? m : L2_EDGE, seed);
    if (off != (size_t)-1)
        return off;
    for (size_t i = L2_EDGE; i + 8 <= n - L2_EDGE && i + 8 <= m; i += L2_STRIDE)
        for (size_t k = 0; k < 8; k++)
            if (b[i + k] != pat_expected(seed, i + k))
                return i + k;
    for (size_t i = n - L2_EDGE; i < m; i++)
        if (b[i] != pat_expected(seed, i))
            return i;
    return (size_t)-1;
}

/* ---- bookkeeping memory -------------------------------------------------------- */
static inline void *xmap(size_t bytes)
{
    void *p = mmap(NULL, bytes ? bytes : 1, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED, "mmap(%zu) for test bookkeeping: %s", bytes,
          strerror(errno));
    return p;
}

static inline void xunmap(void *p, size_t bytes)
{
    munmap(p, bytes ? bytes : 1);
}

static inline uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- address set ------------------------------------------------------------------ */
typedef struct ptrset {
    uintptr_t *slot;
    size_t mask;
    size_t count;
} ptrset;

static inline void ptrset_init(ptrset *s, size_t max_items)
{
    size_t cap = 16;
    while (cap < max_items * 2 + 16)
        cap *= 2;
    s->slot = xmap(cap * sizeof(uintptr_t));
    s->mask = cap - 1;
    s->count = 0;
}

static inline void ptrset_destroy(ptrset *s)
{
    xunmap(s->slot, (s->mask + 1) * sizeof(uintptr_t));
    s->slot = NULL;
}

static inline size_t ptrset_hash_(uintptr_t k)
{
    uint64_t x = (uint64_t)k * 0x9E3779B97F4A7C15ull;
    return (size_t)(x ^ (x >> 29));
}

/* 1 if added, 0 if it was already there */
static inline int ptrset_add(ptrset *s, const void *p)
{
    uintptr_t k = (uintptr_t)p;
    CHECK(k != 0, "ptrset_add(NULL)");
    CHECK(s->count * 2 < s->mask, "ptrset full (%zu items)", s->count);
    for (size_t i = ptrset_hash_(k) & s->mask;; i = (i + 1) & s->mask) {
        if (s->slot[i] == k)
            return 0;
        if (s->slot[i] == 0) {
            s->slot[i] = k;
            s->count++;
            return 1;
        }
    }
}

static inline int ptrset_has(const ptrset *s, const void *p)
{
    uintptr_t k = (uintptr_t)p;
    for (size_t i = ptrset_hash_(k) & s->mask;; i = (i + 1) & s->mask) {
        if (s->slot[i] == k)
            return 1;
        if (s->slot[i] == 0)
            return 0;
    }
}

/* ---- overlap check ------------------------------------------------------------------- */
typedef struct l2_range {
    uintptr_t lo, hi; /* [lo, hi) */
} l2_range;

static inline void l2_range_sift_(l2_range *a, size_t i, size_t n)
{
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            return;
        if (c + 1 < n && a[c + 1].lo > a[c].lo)
            c++;
        if (a[i].lo >= a[c].lo)
            return;
        l2_range t = a[i];
        a[i] = a[c];
        a[c] = t;
        i = c;
    }
}

/* Sorts r[0..n) in place (heap sort: no allocation) and reports the first
 * overlapping pair; returns the number of overlaps found. */
static inline size_t l2_check_disjoint(l2_range *r, size_t n, const char *what)
{
    for (size_t i = n / 2; i-- > 0;)
        l2_range_sift_(r, i, n);
    for (size_t end = n; end-- > 1;) {
        l2_range t = r[0];
        r[0] = r[end];
        r[end] = t;
        l2_range_sift_(r, 0, end);
    }
    size_t bad = 0;
    for (size_t i = 1; i < n; i++) {
        if (r[i].lo < r[i - 1].hi) {
            if (++bad <= 5)
                fprintf(stderr,
                        "%s: blocks overlap: [%#lx, %#lx) and [%#lx, %#lx)\n",
                        what, (unsigned long)r[i - 1].lo,
                        (unsigned long)r[i - 1].hi, (unsigned long)r[i].lo,
                        (unsigned long)r[i].hi);
        }
    }
    return bad;
}

/* ---- blocking queue ------------------------------------------------------------------ */
typedef struct bq_item {
    void *p;
    size_t n;
    uint64_t seed;
} bq_item;

typedef struct bq {
    pthread_mutex_t mu;
    pthread_cond_t not_empty, not_full;
    bq_item *ring;
    size_t cap, head, len;
    int closed;
} bq;

static inline void bq_init(bq *q, size_t cap)
{
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->not_empty, NULL);
    pthread_cond_init(&q->not_full, NULL);
    q->ring = xmap(cap * sizeof(bq_item));
    q->cap = cap;
    q->head = q->len = 0;
    q->closed = 0;
}

static inline void bq_destroy(bq *q)
{
    xunmap(q->ring, q->cap * sizeof(bq_item));
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->not_empty);
    pthread_cond_destroy(&q->not_full);
}

static inline void bq_push(bq *q, bq_item it)
{
    pthread_mutex_lock(&q->mu);
    while (q->len == q->cap)
        pthread_cond_wait(&q->not_full, &q->mu);
    q->ring[(q->head + q->len) % q->cap] = it;
    q->len++;
    pthread_cond_signal(&q->not_empty);
    pthread_mutex_unlock(&q->mu);
}

/* Pops up to max items (blocking until at least one is there or the queue
 * is closed); returns how many, 0 = closed and drained. */
static inline size_t bq_pop_some(bq *q, bq_item *out, size_t max)
{
    pthread_mutex_lock(&q->mu);
    while (q->len == 0 && !q->closed)
        pthread_cond_wait(&q->not_empty, &q->mu);
    size_t n = 0;
    while (n < max && q->len) {
        out[n++] = q->ring[q->head];
        q->head = (q->head + 1) % q->cap;
        q->len--;
    }
    pthread_cond_broadcast(&q->not_full);
    pthread_mutex_unlock(&q->mu);
    return n;
}

/* non-blocking variants: 1 on success, 0 if full / empty */
static inline int bq_try_push(bq *q, bq_item it)
{
    pthread_mutex_lock(&q->mu);
    int ok = q->len < q->cap;
    if (ok) {
        q->ring[(q->head + q->len) % q->cap] = it;
        q->len++;
        pthread_cond_signal(&q->not_empty);
    }
    pthread_mutex_unlock(&q->mu);
    return ok;
}

static inline int bq_try_pop(bq *q, bq_item *out)
{
    pthread_mutex_lock(&q->mu);
    int ok = q->len > 0;
    if (ok) {
        *out = q->ring[q->head];
        q->head = (q->head + 1) % q->cap;
        q->len--;
        pthread_cond_broadcast(&q->not_full);
    }
    pthread_mutex_unlock(&q->mu);
    return ok;
}

static inline void bq_close(bq *q)
{
    pthread_mutex_lock(&q->mu);
    q->closed = 1;
    pthread_cond_broadcast(&q->not_empty);
    pthread_mutex_unlock(&q->mu);
}

/* ---- misc ------------------------------------------------------------------------------ */
static inline int hk_malloc_trim(void)
{
    return malloc_trim(0);
}

static inline void xjoin(pthread_t t)
{
    int rc = pthread_join(t, NULL);
    CHECK(rc == 0, "pthread_join: %s", strerror(rc));
}

static inline pthread_t xspawn(void *(*fn)(void *), void *arg)
{
    pthread_t t;
    int rc = pthread_create(&t, NULL, fn, arg);
    CHECK(rc == 0, "pthread_create: %s", strerror(rc));
    return t;
}

/* arg: an hk_churn, which must outlive the thread */
typedef struct hk_churn {
    uint64_t seed;
    size_t max;
} hk_churn;

static inline void *hk_churn_forever(void *arg)
{
    const hk_churn *c = arg;
    uint64_t rng = c->seed;
    void *slot[64] = {0};
    for (;;) {
        unsigned i = (unsigned)rng_range(&rng, 0, 63);
        free(slot[i]);
        slot[i] = malloc(rng_range(&rng, 1, c->max));
        if (slot[i])
            memset(slot[i], 3, 16);
    }
    return NULL;
}

/* ---- a remote freer thread ("B") ------------------------------------------------------
 * B verifies (l2_check) and frees every block given to it, so every free is
 * a remote free; a NULL item ends a batch and is acknowledged, so that
 * l2_freer_sync() returns once B has freed everything given before it. */
typedef struct l2_freer {
    bq to_b, to_a;
    int failed;          /* B found a corrupted block */
    const char *test;    /* prefix of B's diagnostics */
    pthread_t tid;
} l2_freer;

static void *l2_freer_main(void *arg)
{
    l2_freer *f = arg;
    bq_item it[64];
    size_t n;
    while ((n = bq_pop_some(&f->to_b, it, 64)) > 0) {
        for (size_t i = 0; i < n; i++) {
            if (it[i].p == NULL) {   /* end of a batch: acknowledge */
                bq_push(&f->to_a, it[i]);
                continue;
            }
            size_t off = l2_check(it[i].p, it[i].n, it[i].seed);
            if (off != (size_t)-1) {
                fprintf(stderr,
                        "%s: B: block %p (%zu usable bytes, seed %#llx) is "
                        "corrupted at offset %zu before B freed it\n",
                        f->test, it[i].p, it[i].n, (unsigned long long)it[i].seed, off);
                f->failed = 1;
            }
            free(it[i].p);
        }
    }
    return NULL;
}

static inline void l2_freer_start(l2_freer *f, const char *test, size_t cap)
{
    f->failed = 0;
    f->test = test;
    bq_init(&f->to_b, cap);
    bq_init(&f->to_a, 4);
    f->tid = xspawn(l2_freer_main, f);
}

static inline void l2_freer_give(l2_freer *f, bq_item it)
{
    bq_push(&f->to_b, it);
}

static inline void l2_freer_sync(l2_freer *f)
{
    bq_item end = {NULL, 0, 0}, ack;
    bq_push(&f->to_b, end);
    CHECK(bq_pop_some(&f->to_a, &ack, 1) == 1 && ack.p == NULL,
          "B did not acknowledge the batch");
    CHECK(!f->failed, "B found corrupted blocks (see above)");
}

static inline void l2_freer_stop(l2_freer *f)
{
    bq_close(&f->to_b);
    xjoin(f->tid);
    CHECK(!f->failed, "B found corrupted blocks (see above)");
    bq_destroy(&f->to_b);
    bq_destroy(&f->to_a);
}

#endif /* HAKMEM_L2_COMMON_H */
