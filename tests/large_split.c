/* large_split.c -- a cached large span longer than the block that takes it
 * -- at least twice the block plus 4 MiB -- is split (src/large/large.c,
 * span_fit): the whole 2 MiB chunks past the block's last chunk go back to
 * the cache as a span of their own. Without it every span kept the length of the longest block it ever
 * held, its pages resident.
 *
 * Runs with HAKMEM_BACKGROUND=0 and HAKMEM_PURGE_DELAY_MS >= 600000 (CTest
 * sets both; the test checks them), so that no cached span expires.
 *
 *   1. an 8 MiB block X is written in full and freed: the cache keeps it;
 *   2. a 1 MiB block B takes X's span (B is where X was) and keeps 2 MiB of
 *      it at most (malloc_usable_size(B) < 2 MiB); the cache still holds at
 *      least 6 MiB (the tail, a span of its own). The code before: B kept
 *      all 8 MiB and the cache was empty;
 *   3. a 4 MiB block C takes the tail: C lies in X's old range, and writing
 *      all of it costs fewer than 64 page faults (its pages were resident;
 *      a fresh mapping faults 1024 times);
 *   4. with B and C freed and the cache emptied (hakmem_collect(1)), an
 *      8 MiB block D is written and freed, and a 6.5 MiB block E takes its
 *      span whole: a span less than twice the block plus 4 MiB is not cut
 *      (cutting closer -- 1 MiB of slack -- halved the throughput of
 *      bench_large with 2 threads: the next longer block faults the pages
 *      in again), so E is where D was and malloc_usable_size(E) >= 8 MiB;
 *   5. every block keeps its contents.
 * Under HAKMEM_SECURE=1 spans are guarded and keep their shape: steps 2-4
 * check contents only. Under a sanitizer the fault count is not checked.
 */
#include "test_util.h"

#include "../include/hakmem.h"

#define KIB ((size_t)1024)
#define MIB (KIB * KIB)

static void (*stats_get)(hakmem_stats *);
static size_t (*collect)(int);
static hakmem_stats st;   /* off the stack */

static size_t cached_bytes(void)
{
    stats_get(&st);
    return st.large_cached_bytes;
}

static int inside(const void *p, uintptr_t lo, uintptr_t hi)
{
    return (uintptr_t)p >= lo && (uintptr_t)p < hi;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    hk_require_if_expected("large_split");
    if (!hk_active()) {
        NOTE("hakmem not loaded: nothing to check");
        return test_finish("large_split");
    }
    *(void **)&stats_get = HK_HAKMEM_FN(hakmem_stats_get);
    *(void **)&collect = HK_HAKMEM_FN(hakmem_collect);
    CHECK(stats_get && collect, "hakmem_stats_get / hakmem_collect do not resolve");
    hk_require_nothing_expires();
    int plain = hk_option("secure") == 0;
    NOTE("secure mode %s", plain ? "off" : "on: spans keep their shape, contents checked only");
    collect(1);   /* an empty cache to start from */

    /* ---- 1. X, 8 MiB, written and cached ---------------------------------- */
    uint8_t *x = malloc(8 * MIB);
    CHECK(x != NULL, "malloc(8 MiB) failed");
    memset(x, 0xAB, 8 * MIB);
    uintptr_t x_lo = (uintptr_t)x, x_hi = x_lo + 8 * MIB;
    free(x);

    /* ---- 2. B, 1 MiB, takes X's span and keeps 2 MiB of it ---------------- */
    uint8_t *b = malloc(MIB);
    CHECK(b != NULL, "malloc(1 MiB) failed");
    pat_fill(b, MIB, 11);
    size_t cached_after_b = cached_bytes();
    NOTE("B at %p (X was at %p), usable %zu, cache %zu bytes", (void *)b, (void *)x_lo,
         malloc_usable_size(b), cached_after_b);
    if (plain) {
        EXPECT(inside(b, x_lo, x_hi), "B (%p) did not take X's cached span", (void *)b);
        EXPECT(malloc_usable_size(b) < 2 * MIB,
               "B (1 MiB) kept %zu bytes of X's 8 MiB span (at most its 2 MiB chunk)",
               malloc_usable_size(b));
        EXPECT(cached_after_b >= 6 * MIB,
               "after B took 2 MiB of X's span the cache holds %zu bytes (the 6 MiB tail "
               "expected, a span of its own)", cached_after_b);
    }

    /* ---- 3. C, 4 MiB, takes the tail: resident pages ---------------------- */
    long f0 = hk_minflt();
    uint8_t *c = malloc(4 * MIB);
    CHECK(c != NULL, "malloc(4 MiB) failed");
    pat_fill(c, 4 * MIB, 13);
    long faults = hk_minflt() - f0;
    NOTE("C at %p, writing 4 MiB cost %ld page faults", (void *)c, faults);
    if (plain) {
        EXPECT(inside(c, x_lo, x_hi), "C (%p) did not take the tail of X's span [%p, %p)",
               (void *)c, (void *)x_lo, (void *)x_hi);
        if (!HK_SANITIZED)
            EXPECT(faults < 64, "writing C (4 MiB in X's resident pages) cost %ld page faults",
                   faults);
    }
    EXPECT(pat_check(b, MIB, 11) == (size_t)-1, "B lost its contents");
    EXPECT(pat_check(c, 4 * MIB, 13) == (size_t)-1, "C lost its contents");
    free(b);
    free(c);
    collect(1);

    /* ---- 4. no chunk to spare: only the slack is cut ---------------------- */
    uint8_t *d = malloc(8 * MIB);
    CHECK(d != NULL, "malloc(8 MiB) failed");
    memset(d, 0xCD, 8 * MIB);
    uintptr_t d_lo = (uintptr_t)d;
    free(d);
    size_t e_size = 6 * MIB + 512 * KIB;
    uint8_t *e = malloc(e_size);
    CHECK(e != NULL, "malloc(%zu) failed", e_size);
    pat_fill(e, e_size, 17);
    NOTE("E at %p (D was at %p), usable %zu", (void *)e, (void *)d_lo, malloc_usable_size(e));
    if (plain) {
        EXPECT((uintptr_t)e == d_lo, "E (%p) did not take D's span (%p)", (void *)e,
               (void *)d_lo);
        EXPECT(malloc_usable_size(e) >= 8 * MIB,
               "E (6.5 MiB) kept only %zu bytes of D's 8 MiB span (a span under twice the "
               "block plus 4 MiB is taken whole)", malloc_usable_size(e));
    }
    EXPECT(malloc_usable_size(e) >= e_size, "E's usable size %zu is below its request",
           malloc_usable_size(e));
    EXPECT(pat_check(e, e_size, 17) == (size_t)-1, "E lost its contents");
    free(e);
    return test_finish("large_split");
}
