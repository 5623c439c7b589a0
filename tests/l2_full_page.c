/* l2_full_page.c -- full L2 pages receiving remote frees (the delayed-free
 * notification path) must come back to their owner.
 *
 * For each case (class size x count, e.g. 64 x 16 KiB and 200 x 2 KiB: several
 * pages of one class, all but the last full), in a fresh thread A:
 *   1. "handoff", HANDOFF_ROUNDS times: A allocates `count` blocks and fills
 *      them; all go to thread B, which verifies and frees them (remote frees
 *      into full pages: each page's first one pushes it onto A's delayed
 *      list); after B is done, A allocates again. From the third round on,
 *      at least 90% of A's blocks must be at addresses A had been handed
 *      before (and B freed) -- the full pages came back into A's queues
 *      without a scan, instead of A carving new pages -- and all contents
 *      intact. From the second round on, at least `count` minus one page's
 *      worth of blocks must be at addresses of the *last* batch: this share
 *      can be below 90% by design, because A first gets the blocks its
 *      current (not full) page had already carved and never handed out --
 *      15 of 64 for 16 KiB blocks -- but never more than one page of them.
 *   2. "mixed", ITERS times: A allocates `count` blocks, sends the odd ones
 *      to B and frees the even ones itself while B frees concurrently (local
 *      frees into pages that are full or being notified race with B's
 *      notifications); >= 90% of each iteration's blocks must be at
 *      addresses A had been handed before (A's pages are recycled, none
 *      carved anew).
 *   3. "overlap", ITERS times without waiting for B: A keeps allocating while
 *      B is still freeing the previous batch (notifications racing with A's
 *      slow path draining its delayed list); contents are checked by B.
 *   4. "exit": A allocates `count` blocks, hands them all to B and exits at
 *      once (B's remote frees race with A's abandonment); a new thread then
 *      allocates `count` blocks of the class (the segments are adopted) and
 *      checks them. Reuse is reported, not required.
 *
 * Usage: l2_full_page [iters]   (default 200)
 */
#include "test_util.h"
#include "l2_common.h"

#include <pthread.h>

enum { MAX_COUNT = 256, HANDOFF_ROUNDS = 4 };

struct tcase {
    size_t size, count;
};
static const struct tcase cases[] = {
    {16384, 64}, {2048, 200}, {1280, 160}, {5120, 100}, {49152, 40},
    {98304, 40}, {196608, 24}, {262144, 20},
};
#define NCASES (sizeof cases / sizeof cases[0])

static int iters = 200;
static l2_freer fb;   /* thread B: verifies and frees what A gives it */

static const struct tcase *cur;
static uint64_t seed_ctr;

static void alloc_n(bq_item *it, size_t n, const char *phase)
{
    for (size_t i = 0; i < n; i++) {
        void *p = malloc(cur->size);
        CHECK(p != NULL, "%zu B x %zu, %s: malloc #%zu returned NULL",
              cur->size, cur->count, phase, i);
        it[i] = (bq_item){p, cur->size, ++seed_ctr};
        l2_fill(p, cur->size, it[i].seed);
    }
}

static void check_n(const bq_item *it, size_t n, const char *phase)
{
    for (size_t i = 0; i < n; i++) {
        if (!it[i].p)
            continue;
        size_t off = l2_check(it[i].p, it[i].n, it[i].seed);
        CHECK(off == (size_t)-1, "%zu B x %zu, %s: block #%zu %p corrupted at "
              "offset %zu (overlaps another live block?)", cur->size,
              cur->count, phase, i, it[i].p, off);
    }
}

static size_t count_in(const ptrset *s, const bq_item *it, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += ptrset_has(s, it[i].p);
    return k;
}

static void expect_reuse(size_t reused, size_t n, const char *phase, int iter)
{
    if (!hk_active())
        return;   /* glibc: informational only */
    EXPECT(reused * 10 >= n * 9,
           "%zu B x %zu, %s (iteration %d): only %zu of %zu blocks A allocated "
           "after B's remote frees are at addresses A had been handed before "
           "(expected >= 90%%): the full pages that received remote frees did "
           "not come back into A's queues, A carved new pages", cur->size,
           cur->count, phase, iter, reused, n);
}

/* blocks per L2 page of class size c (the documented geometry: 64 KiB pages
 * up to 8 KiB blocks, 512 KiB up to 64 KiB, 1 MiB up to 128 KiB, 31 units of
 * 64 KiB above) */
static size_t blocks_per_page(size_t c)
{
    size_t page = c <= 8192 ? 64 * 1024 : c <= 65536 ? 512 * 1024
                : c <= 131072 ? 1024 * 1024 : 31 * 64 * 1024;
    return page / c;
}

static size_t handoff_last[HANDOFF_ROUNDS], handoff_seen[HANDOFF_ROUNDS];
static size_t mixed_min_reused, seen_total;

static void *thread_a(void *arg)
{
    (void)arg;
    static bq_item a[MAX_COUNT];
    size_t n = cur->count;
    ptrset last, seen;   /* the previous batch; every address A was handed */
    ptrset_init(&seen, n * (HANDOFF_ROUNDS + (size_t)iters + 2));

    /* 1. handoff */
    ptrset_init(&last, n);
    for (int r = 0; r < HANDOFF_ROUNDS; r++) {
        alloc_n(a, n, "handoff");
        check_n(a, n, "handoff");
        handoff_last[r] = count_in(&last, a, n);
        handoff_seen[r] = count_in(&seen, a, n);
        if (r >= 2)
            expect_reuse(handoff_seen[r], n, "handoff", r);
        if (r >= 1 && hk_active())
            EXPECT(handoff_last[r] + blocks_per_page(cur->size) >= n,
                   "%zu B x %zu, handoff round %d: only %zu of %zu blocks are "
                   "at addresses of the batch B just freed; more than one page "
                   "(%zu blocks) of other memory: the full pages that received "
                   "remote frees did not come back into A's queues", cur->size,
                   n, r, handoff_last[r], n, blocks_per_page(cur->size));
        ptrset_destroy(&last);
        ptrset_init(&last, n);
        for (size_t i = 0; i < n; i++) {
            ptrset_add(&last, a[i].p);
            ptrset_add(&seen, a[i].p);
        }
        for (size_t i = 0; i < n; i++)
            l2_freer_give(&fb, a[i]);
        l2_freer_sync(&fb);
    }
    ptrset_destroy(&last);

    /* 2. mixed local + remote frees */
    mixed_min_reused = (size_t)-1;
    for (int it = 0; it < iters; it++) {
        alloc_n(a, n, "mixed");
        check_n(a, n, "mixed");
        size_t r = count_in(&seen, a, n);
        if (r < mixed_min_reused)
            mixed_min_reused = r;
        expect_reuse(r, n, "mixed", it);
        for (size_t i = 0; i < n; i++)
            ptrset_add(&seen, a[i].p);
        for (size_t i = 1; i < n; i += 2)
            l2_freer_give(&fb, a[i]);
        for (size_t i = 0; i < n; i += 2) {
            CHECK(l2_check(a[i].p, a[i].n, a[i].seed) == (size_t)-1,
                  "%zu B x %zu, mixed: block %p corrupted before A freed it",
                  cur->size, cur->count, a[i].p);
            free(a[i].p);
        }
        l2_freer_sync(&fb);
    }
    seen_total = seen.count;
    ptrset_destroy(&seen);

    /* 3. overlap: no waiting for B between batches */
    for (int it = 0; it < iters; it++) {
        alloc_n(a, n, "overlap");
        for (size_t i = 0; i < n; i++)
            l2_freer_give(&fb, a[i]);
    }
    l2_freer_sync(&fb);
    return NULL;
}

static void *thread_exit_early(void *arg)
{
    bq_item *a = arg;
    alloc_n(a, cur->count, "exit");
    for (size_t i = 0; i < cur->count; i++)
        l2_freer_give(&fb, a[i]);
    return NULL;   /* exit while B frees */
}

static ptrset exit_old;
static size_t exit_reused;

static void *thread_after_exit(void *arg)
{
    bq_item *a = arg;
    alloc_n(a, cur->count, "after exit");
    check_n(a, cur->count, "after exit");
    exit_reused = count_in(&exit_old, a, cur->count);
    for (size_t i = 0; i < cur->count; i++)
        free(a[i].p);
    return NULL;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 1)
        iters = atoi(argv[1]);
    CHECK(iters >= 1, "usage: l2_full_page [iters >= 1]");
    hk_require_if_expected("l2_full_page");
    l2_classes_init();
    l2_freer_start(&fb, "l2_full_page", 1024);
    uint64_t t0 = now_ms();
    static bq_item ex[MAX_COUNT];

    for (size_t c = 0; c < NCASES; c++) {
        cur = &cases[c];
        CHECK(cur->count <= MAX_COUNT, "case too large");
        xjoin(xspawn(thread_a, NULL));

        xjoin(xspawn(thread_exit_early, ex));
        ptrset_init(&exit_old, cur->count);
        for (size_t i = 0; i < cur->count; i++)
            ptrset_add(&exit_old, ex[i].p);
        /* a fence through B: every block of the exited thread is freed */
        l2_freer_sync(&fb);
        static bq_item ex2[MAX_COUNT];
        xjoin(xspawn(thread_after_exit, ex2));
        ptrset_destroy(&exit_old);

        printf("l2_full_page: %6zu B x %3zu: handoff rounds 1..%d: from the "
               "last batch", cur->size, cur->count, HANDOFF_ROUNDS - 1);
        for (int r = 1; r < HANDOFF_ROUNDS; r++)
            printf(" %zu", handoff_last[r]);
        printf(", seen before");
        for (int r = 1; r < HANDOFF_ROUNDS; r++)
            printf(" %zu", handoff_seen[r]);
        printf("; mixed: >= %zu seen before over %d iterations; %zu distinct "
               "addresses; after owner exit %zu/%zu\n", mixed_min_reused,
               iters, seen_total, exit_reused, cur->count);
    }
    l2_freer_stop(&fb);
    printf("l2_full_page: %llu ms\n", (unsigned long long)(now_ms() - t0));
    return test_finish("l2_full_page");
}
