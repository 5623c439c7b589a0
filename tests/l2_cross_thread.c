/* l2_cross_thread.c -- every medium class, allocated in one thread and freed
 * in another (L2 pool, remote frees).
 *
 * For every medium class c (1280 .. 262144, four per doubling) and the
 * request sizes around its boundaries -- prev+1, prev+2, the middle, c-1, c
 * (the next class's prev+1 is c+1) -- plus the edges 1023/1024 (tiny) and
 * 262145 (large):
 *   1. thread A allocates N blocks (enough for two or more pages), checks
 *      malloc_usable_size (>= request; == class size under hakmem) and
 *      16-byte alignment, fills every usable byte with a per-block pattern,
 *      and checks that no two blocks (nor any block A keeps live across the
 *      whole test) overlap;
 *   2. A frees every 4th block itself (local frees), keeps one block for the
 *      rest of the test, and hands the others to thread B, which verifies
 *      their contents and frees them (remote frees);
 *   3. A allocates N blocks of the same size again: valid, disjoint from each
 *      other and from the kept blocks, pattern written over the whole usable
 *      size and read back intact (an overlap with any live block would
 *      corrupt one of the patterns); these go to B as well.
 * At the end the kept blocks (one per size, allocated long ago in pages that
 * since saw remote frees) are verified and freed by B.
 *
 * Usage: l2_cross_thread [rounds]   (default 4)
 */
#include "test_util.h"
#include "l2_common.h"

#include <pthread.h>

enum { MAX_N = 100, MAX_SIZES = 32 * 5 + 8, MAX_KEEP = MAX_SIZES * 4 };

static l2_freer fb;   /* thread B: verifies and frees what A gives it */

static bq_item keep[MAX_KEEP];
static size_t nkeep;

static size_t size_class_expect(size_t s)
{
    int ci = l2_class_of(s);
    return ci >= 0 ? l2_class_size[ci] : 0;
}

static size_t per_page(size_t c)
{
    size_t page = c <= 8192 ? 64 * 1024 : c <= 65536 ? 512 * 1024
                : c <= 131072 ? 1024 * 1024 : 31 * 64 * 1024;
    return page / c;
}

/* allocate n blocks of size s into it[], fill and check them */
static void alloc_batch(bq_item *it, size_t n, size_t s, uint64_t seed0,
                        const char *phase)
{
    int medium = s >= L2_MIN_SIZE && s <= L2_MAX_SIZE;
    for (size_t i = 0; i < n; i++) {
        void *p = malloc(s);
        CHECK(p != NULL, "%s: malloc(%zu) #%zu returned NULL", phase, s, i);
        CHECK(((uintptr_t)p & 15) == 0, "%s: malloc(%zu) = %p is not 16-byte "
              "aligned", phase, s, p);
        size_t u = malloc_usable_size(p);
        CHECK(u >= s, "%s: malloc_usable_size(malloc(%zu) = %p) = %zu < "
              "request", phase, s, p, u);
        if (medium && hk_active())
            CHECK(u == size_class_expect(s),
                  "%s: malloc_usable_size(malloc(%zu)) = %zu, expected the "
                  "class size %zu", phase, s, u, size_class_expect(s));
        it[i].p = p;
        it[i].n = u;
        it[i].seed = seed0 + i;
        l2_fill(p, u, it[i].seed);
    }
}

static void verify_batch(const bq_item *it, size_t n, const char *phase)
{
    for (size_t i = 0; i < n; i++) {
        if (!it[i].p)
            continue;
        size_t off = l2_check(it[i].p, it[i].n, it[i].seed);
        CHECK(off == (size_t)-1, "%s: block #%zu %p (%zu bytes) corrupted at "
              "offset %zu: another live block overlaps it, or it was handed "
              "out twice", phase, i, it[i].p, it[i].n, off);
    }
}

static l2_range ranges[MAX_N + MAX_KEEP];

static void check_disjoint(const bq_item *it, size_t n, const char *phase)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        ranges[k].lo = (uintptr_t)it[i].p;
        ranges[k++].hi = (uintptr_t)it[i].p + it[i].n;
    }
    for (size_t i = 0; i < nkeep; i++) {
        ranges[k].lo = (uintptr_t)keep[i].p;
        ranges[k++].hi = (uintptr_t)keep[i].p + keep[i].n;
    }
    CHECK(l2_check_disjoint(ranges, k, phase) == 0,
          "%s: live blocks overlap (see above)", phase);
}

static size_t sizes[MAX_SIZES];
static size_t nsizes;
static int rounds = 4;
static size_t total_reused, total_second;

static void *thread_a(void *arg)
{
    (void)arg;
    static bq_item first[MAX_N], second[MAX_N];
    char phase[128];
    for (int r = 0; r < rounds; r++) {
        for (size_t si = 0; si < nsizes; si++) {
            size_t s = sizes[si];
            int ci = l2_class_of(s);
            size_t c = ci >= 0 ? l2_class_size[ci] : s;
            size_t n = per_page(c) * 2 + 3;
            if (n > MAX_N)
                n = MAX_N;
            uint64_t seed = ((uint64_t)r << 48) ^ ((uint64_t)s << 16);

            snprintf(phase, sizeof phase, "round %d, size %zu, first batch", r, s);
            alloc_batch(first, n, s, seed, phase);
            check_disjoint(first, n, phase);
            verify_batch(first, n, phase);

            ptrset old;
            ptrset_init(&old, n);
            for (size_t i = 0; i < n; i++)
                ptrset_add(&old, first[i].p);
            /* local frees, one kept block, the rest to B */
            for (size_t i = 0; i < n; i += 4) {
                CHECK(l2_check(first[i].p, first[i].n, first[i].seed) == (size_t)-1,
                      "%s: block %p corrupted before its local free", phase, first[i].p);
                free(first[i].p);
                first[i].p = NULL;
            }
            if (nkeep < MAX_KEEP) {
                keep[nkeep++] = first[1];
                first[1].p = NULL;
            }
            for (size_t i = 0; i < n; i++)
                if (first[i].p)
                    l2_freer_give(&fb, first[i]);
            l2_freer_sync(&fb);

            snprintf(phase, sizeof phase, "round %d, size %zu, after B's frees", r, s);
            alloc_batch(second, n, s, seed ^ 0x5555000000ull, phase);
            check_disjoint(second, n, phase);
            verify_batch(second, n, phase);
            verify_batch(keep, nkeep, "kept blocks");
            for (size_t i = 0; i < n; i++)
                total_reused += ptrset_has(&old, second[i].p);
            total_second += n;
            ptrset_destroy(&old);
            for (size_t i = 0; i < n; i++)
                l2_freer_give(&fb, second[i]);
            l2_freer_sync(&fb);
        }
    }
    verify_batch(keep, nkeep, "kept blocks at the end");
    for (size_t i = 0; i < nkeep; i++)
        l2_freer_give(&fb, keep[i]);
    l2_freer_sync(&fb);
    return NULL;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 1)
        rounds = atoi(argv[1]);
    CHECK(rounds >= 1 && rounds <= 100, "usage: l2_cross_thread [rounds 1..100]");
    hk_require_if_expected("l2_cross_thread");
    l2_classes_init();

    sizes[nsizes++] = 1023;
    sizes[nsizes++] = 1024;
    for (int i = 0; i < l2_nclasses; i++) {
        size_t lo = l2_class_lo(i), c = l2_class_size[i];
        sizes[nsizes++] = lo;
        sizes[nsizes++] = lo + 1;
        sizes[nsizes++] = (lo + c) / 2;
        sizes[nsizes++] = c - 1;
        sizes[nsizes++] = c;
    }
    sizes[nsizes++] = L2_MAX_SIZE + 1;

    l2_freer_start(&fb, "l2_cross_thread", 256);
    uint64_t t0 = now_ms();
    pthread_t a = xspawn(thread_a, NULL);
    xjoin(a);
    l2_freer_stop(&fb);
    printf("l2_cross_thread: %d round(s) x %zu sizes in %llu ms; after B's "
           "frees A got %zu of %zu blocks at addresses B had freed\n",
           rounds, nsizes, (unsigned long long)(now_ms() - t0), total_reused,
           total_second);
    return test_finish("l2_cross_thread");
}
