/* large_reuse.c -- new segments carved out of cached large spans
 * (hm_large_take_chunk, src/large/large.c, called first by map_new in
 * src/superslab/superslab.c): a heap that needs a fresh 2 MiB segment takes
 * the last whole 2 MiB chunk of a freed, cached large span instead of
 * mapping one; the span stays cached, shorter (what lay beyond the chunk is
 * unmapped), and a span of one chunk goes whole. Never in secure mode.
 *
 * Runs with HAKMEM_BACKGROUND=0 and HAKMEM_PURGE_DELAY_MS >= 600000 (CTest
 * sets both; the test checks them with hakmem_option_get), so that no cached
 * span expires and nothing is decommitted while it measures.
 *
 *   1. four 8 MiB large blocks, every byte written with 0xAB, are freed:
 *      large_cached_bytes grows by at least 32 MiB (the cache keeps them);
 *   2. 24 MiB of small and medium blocks (64 B .. 16 KiB, every 8th one a
 *      calloc) are allocated -- and more, until one span is partly carved
 *      (at most 15 of the 16 chunks) -- each written in full with its own
 *      pattern:
 *      (i)   large_cached_bytes shrank by whole 2 MiB chunks -- plus at most
 *            the sub-chunk tail of each span (an 8 MiB block's span is
 *            8 MiB + 4 KiB: the first chunk taken from it unmaps the 4 KiB
 *            beyond it) -- and by at least one chunk; the segment count grew
 *            by at least as many segments as chunks were taken;
 *      (ii)  some of the new blocks lie inside the address ranges of the
 *            freed large blocks (which stay mapped while cached: nothing
 *            else can be placed there), and the process RSS grew by less
 *            than half the bytes written (see rss_signal below);
 *      (iii) every block keeps its pattern, and the blocks do not overlap
 *            (their [p, p + usable) ranges, sorted);
 *      (v)   every calloc'd block was zero, among them some inside the old
 *            large blocks (whose pages still held 0xAB);
 *   3. (iv) with the small blocks still live, large blocks of 1, 3 and
 *      8 MiB are allocated until the cache is empty: each reuses a cached
 *      span -- the first one the shortened span (best fit), which ends where
 *      a carved segment begins -- and has malloc_usable_size >= its request
 *      and ends within the span it took (the cache's drop); all its usable
 *      bytes are written, and the small blocks' patterns must survive (a
 *      span whose size still counted the carved chunk would run into the
 *      live segment), all ranges stay disjoint, every block is intact;
 *      then everything is freed, hakmem_collect(1) empties the large cache,
 *      and a new 8 MiB block is allocated, written in full and freed.
 * Under HAKMEM_SECURE=1 nothing is carved: large_cached_bytes stays the
 * same, no new block lies inside an old large block, and the RSS check is
 * skipped (the segments are fresh mappings); every correctness part holds.
 * Under a sanitizer (the _prefixed variants of scripts/sanitize.sh) the RSS
 * check is skipped too: ThreadSanitizer writes shadow memory for every byte
 * the test writes.
 *
 * Usage: large_reuse [small-MiB]   (default 24; 4..28: the four spans hold
 * 16 chunks, and step 3 wants one left over)
 */
#include "test_util.h"
#include "l2_common.h"

#include "../include/hakmem.h"

#define MIB ((size_t)1 << 20)
#define CHUNK (2 * MIB)
#define NLARGE 4
#define LARGE_SIZE (8 * MIB)
#define SMALL_MIN 64
#define SMALL_MAX 16384
#define MAX_BLOCKS 65536
#define MAX_REUSE 8

typedef struct blk {
    void *p;
    size_t n;        /* requested */
    size_t usable;   /* malloc_usable_size: the whole range is written */
    uint64_t seed;
    int zeroed;      /* calloc'd */
} blk;

static void (*stats_get)(hakmem_stats *);
static size_t (*collect)(int);
static int (*owns)(const void *);

static hakmem_stats st;   /* 20 KiB: off the stack */
static blk *small;
static size_t nsmall;
static l2_range *ranges;
static uintptr_t old_lo[NLARGE], old_hi[NLARGE];   /* the freed large blocks' spans */

static size_t cached_bytes(void)
{
    stats_get(&st);
    return st.large_cached_bytes;
}

static int in_old_span(const void *p)
{
    for (int i = 0; i < NLARGE; i++)
        if ((uintptr_t)p >= old_lo[i] && (uintptr_t)p < old_hi[i])
            return 1;
    return 0;
}

/* a small or medium request: an octave 64 << 0..8, then uniform in it */
static size_t small_size(uint64_t *rng)
{
    size_t lo = (size_t)SMALL_MIN << rng_range(rng, 0, 8);
    size_t hi = 2 * lo - 1;
    if (hi > SMALL_MAX)
        hi = SMALL_MAX;
    return rng_range(rng, lo, hi);
}

static size_t is_zero(const void *p, size_t n)   /* offset of the first non-zero byte, or -1 */
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return i;
    return (size_t)-1;
}

static void check_all(const blk *b, size_t n, const char *when)
{
    for (size_t i = 0; i < n; i++) {
        size_t off = pat_check(b[i].p, b[i].usable, b[i].seed);
        EXPECT(off == (size_t)-1, "%s: block %p (%zu bytes, usable %zu%s) corrupted at offset %zu",
               when, b[i].p, b[i].n, b[i].usable, in_old_span(b[i].p) ? ", in a carved chunk" : "",
               off);
    }
}

/* No two of the small blocks and the `nl` large ones overlap. */
static void check_disjoint(const blk *large, size_t nl, const char *when)
{
    size_t n = 0;
    for (size_t i = 0; i < nsmall; i++)
        ranges[n++] = (l2_range){(uintptr_t)small[i].p, (uintptr_t)small[i].p + small[i].usable};
    for (size_t i = 0; i < nl; i++)
        ranges[n++] = (l2_range){(uintptr_t)large[i].p, (uintptr_t)large[i].p + large[i].usable};
    EXPECT(l2_check_disjoint(ranges, n, when) == 0, "%s: blocks overlap (see above)", when);
}

static blk new_block(size_t n, int zeroed, uint64_t seed, const char *what)
{
    blk b = {zeroed ? calloc(1, n) : malloc(n), n, 0, seed, zeroed};
    CHECK(b.p != NULL, "%s: %s(%zu) returned NULL", what, zeroed ? "calloc" : "malloc", n);
    CHECK(owns(b.p), "%s: hakmem does not own the %zu-byte block %p", what, n, b.p);
    b.usable = malloc_usable_size(b.p);
    EXPECT(b.usable >= n, "%s: malloc_usable_size(%p) = %zu < the %zu requested", what, b.p, b.usable,
           n);
    if (b.usable < n)
        b.usable = n;
    return b;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    size_t small_mib = argc > 1 ? (size_t)atol(argv[1]) : 24;
    CHECK(small_mib >= 4 && small_mib <= 28, "usage: large_reuse [small-MiB 4..28]");
    hk_require_if_expected("large_reuse");
    if (!hk_active()) {
        NOTE("hakmem not loaded: nothing to check");
        return test_finish("large_reuse");
    }
    *(void **)&stats_get = HK_HAKMEM_FN(hakmem_stats_get);
    *(void **)&collect = HK_HAKMEM_FN(hakmem_collect);
    *(void **)&owns = HK_HAKMEM_FN(hakmem_owns);
    CHECK(stats_get && collect && owns,
          "hakmem_stats_get / hakmem_collect / hakmem_owns do not resolve");
    hk_require_nothing_expires();
    CHECK(hk_option("large_cache_bytes") >= (long long)(NLARGE * (LARGE_SIZE + CHUNK)) &&
              hk_option("large_cache_count") >= NLARGE,
          "the large cache (%lld bytes, %lld spans) cannot keep %d blocks of %zu MiB",
          hk_option("large_cache_bytes"), hk_option("large_cache_count"), NLARGE, LARGE_SIZE / MIB);
    int secure = hk_option("secure") != 0;
    NOTE("secure mode %s, %zu MiB of small blocks%s", secure ? "on: nothing may be carved" : "off",
         small_mib, HK_SANITIZED ? ", sanitizer build: no RSS check" : "");

    /* bookkeeping from mmap, touched now so that it is in the baseline RSS */
    small = xmap(MAX_BLOCKS * sizeof *small);
    ranges = xmap((MAX_BLOCKS + MAX_REUSE) * sizeof *ranges);
    memset(small, 0, MAX_BLOCKS * sizeof *small);
    memset(ranges, 0, (MAX_BLOCKS + MAX_REUSE) * sizeof *ranges);
    free(malloc(100));   /* the allocator and stdio initialised */
    free(malloc(3000));

    /* ---- 1. four large blocks, written in full, freed into the cache ------- */
    size_t cached0 = cached_bytes();
    void *lb[NLARGE];
    for (int i = 0; i < NLARGE; i++) {
        blk b = new_block(LARGE_SIZE, 0, 0, "large block");
        lb[i] = b.p;
        memset(b.p, 0xAB, LARGE_SIZE);
        /* its span: from the 2 MiB aligned header chunk to the block's end */
        old_lo[i] = (uintptr_t)b.p & ~(uintptr_t)(CHUNK - 1);
        old_hi[i] = (uintptr_t)b.p + LARGE_SIZE;
    }
    for (int i = 0; i < NLARGE; i++)
        free(lb[i]);
    stats_get(&st);
    size_t cached1 = st.large_cached_bytes, segments1 = st.segments;
    CHECK(cached1 >= cached0 + NLARGE * LARGE_SIZE,
          "freeing %d blocks of %zu MiB: large_cached_bytes went from %zu to %zu only -- the "
          "cache did not keep them, nothing to carve", NLARGE, LARGE_SIZE / MIB, cached0, cached1);
    long rss1 = rss_kib(), vm1 = vm_kib();

    /* ---- 2. small and medium blocks: new segments ---------------------------- */
    uint64_t rng = 0x1a7e5e05ull;
    size_t requested = 0, written = 0, in_old = 0, in_old_bytes = 0, zeroed_in_old = 0, ncalloc = 0;
    /* At least small_mib MiB; then, unless in secure mode, on until one span
     * is partly carved (the cached bytes are no whole number of spans), so
     * that step 3 reuses a shortened span, at most until 15 chunks are taken. */
    size_t span = (cached1 - cached0) / NLARGE;   /* the four are alike */
    for (;;) {
        if (requested >= small_mib * MIB && (secure || nsmall % 16 == 0)) {
            size_t c = secure ? 0 : cached_bytes();
            if (secure || c % span != 0 || (cached1 - c) / CHUNK >= 15)
                break;
        }
        CHECK(nsmall < MAX_BLOCKS, "too many blocks");
        size_t n = small_size(&rng);
        int z = (nsmall % 8) == 7;
        blk b = new_block(n, z, 0x5EED0000ull + nsmall, "small block");
        if (z) {
            size_t off = is_zero(b.p, n);
            EXPECT(off == (size_t)-1, "calloc(1, %zu) = %p%s: byte %zu is %#x, not 0", n, b.p,
                   in_old_span(b.p) ? " (inside an old large block)" : "", off,
                   off == (size_t)-1 ? 0 : ((uint8_t *)b.p)[off]);
            ncalloc++;
        }
        if (in_old_span(b.p)) {
            in_old++;
            in_old_bytes += b.usable;
            zeroed_in_old += z;
        }
        pat_fill(b.p, b.usable, b.seed);
        small[nsmall++] = b;
        requested += n;
        written += b.usable;
    }
    stats_get(&st);
    size_t cached2 = st.large_cached_bytes, segments2 = st.segments;
    long rss2 = rss_kib(), vm2 = vm_kib();
    size_t shrink = cached1 - cached2;   /* cached2 > cached1 is caught below */
    size_t chunks = shrink / CHUNK, tails = shrink % CHUNK;
    NOTE("%zu blocks (%zu calloc'd), %zu MiB requested, %zu KiB written; large cache %zu -> %zu KiB "
         "(%zu chunks + %zu KiB of tails), segments %zu -> %zu; %zu blocks (%zu KiB, %zu calloc'd) "
         "inside the old large blocks; RSS %ld -> %ld KiB, VmSize %ld -> %ld KiB",
         nsmall, ncalloc, requested / MIB, written / 1024, cached1 / 1024, cached2 / 1024, chunks,
         tails / 1024, segments1, segments2, in_old, in_old_bytes / 1024, zeroed_in_old, rss1, rss2,
         vm1, vm2);
    CHECK(cached2 <= cached1, "large_cached_bytes grew from %zu to %zu while no large block was freed",
          cached1, cached2);

    /* (i) */
    if (secure) {
        EXPECT(shrink == 0, "secure mode: large_cached_bytes shrank by %zu bytes: a segment was "
                            "carved out of a cached span", shrink);
    } else {
        EXPECT(chunks >= 1, "large_cached_bytes shrank by %zu bytes only: no 2 MiB chunk of the %zu "
                            "cached bytes became a segment", shrink, cached1);
        EXPECT(tails % 4096 == 0 && tails <= NLARGE * (size_t)4096,
               "large_cached_bytes shrank by %zu bytes: %zu chunks of 2 MiB and %zu bytes more, which "
               "are not the sub-chunk tails (a page each at most) of the %d spans",
               shrink, chunks, tails, NLARGE);
        EXPECT(segments2 >= segments1 + chunks, "%zu chunks were taken from the large cache but only "
                                                "%zu segments were added", chunks, segments2 - segments1);
        EXPECT(cached2 >= CHUNK, "every chunk of the large cache was carved (%zu KiB left): run with "
                                 "fewer small MiB, step 3 wants a shortened span", cached2 / 1024);
    }
    /* (ii) Where the blocks lie is the direct signal: the old large blocks'
     * address ranges stay mapped while their spans are cached, so a new block
     * there can only sit in a chunk carved from them. RSS is the kernel's
     * confirmation that the chunks' pages were reused, not faulted in afresh:
     * every new block is written in full, so fresh segments would add at
     * least `written` bytes to RSS (they are touched page by page), while the
     * chunks' pages became resident when the large blocks were written and
     * stayed so (no background thread, a purge delay of an hour: nothing is
     * decommitted). Half of `written` leaves room for segment headers, the
     * partly used pages of the classes and the odd fresh segment. The count
     * of hakmem's mmaps would be the other signal, but it is only kept in
     * the debug-counter build; VmSize is printed above for information. */
    if (secure) {
        EXPECT(in_old == 0, "secure mode: %zu blocks lie inside the old large blocks", in_old);
    } else {
        EXPECT(in_old > 0 && in_old_bytes >= CHUNK / 2,
               "only %zu blocks (%zu KiB) lie inside the old large blocks: the new segments were "
               "not carved out of the cached spans", in_old, in_old_bytes / 1024);
        EXPECT(zeroed_in_old > 0, "no calloc'd block lies inside an old large block");
        if (!HK_SANITIZED)
            EXPECT(rss2 - rss1 < (long)(written / 1024 / 2),
                   "RSS grew by %ld KiB for %zu KiB of new blocks written in full: the chunks' "
                   "resident pages were not reused", rss2 - rss1, written / 1024);
    }
    /* (iii) */
    check_all(small, nsmall, "after allocating");
    check_disjoint(NULL, 0, "small and medium blocks");

    /* ---- 3. (iv) the cached spans, the shortened ones among them, reused --- */
    static const size_t reuse_size[MAX_REUSE] = {1 * MIB, 3 * MIB, 8 * MIB, 8 * MIB,
                                                 8 * MIB, 8 * MIB, 8 * MIB, 8 * MIB};
    blk large[MAX_REUSE];
    size_t nl = 0;
    size_t shortened = 0;
    for (size_t before = cached_bytes(); nl < MAX_REUSE && before > 0; nl++) {
        blk *b = &large[nl];
        *b = new_block(reuse_size[nl], 0, 0x1A26E000ull + nl, "reuse of a cached span");
        size_t after = cached_bytes(), got = before - after;
        /* The span it took (`got` bytes, the cache's drop) was long enough
         * for it unless it had to grow: then the block ends within it. */
        uintptr_t hdr = (uintptr_t)b->p & ~(uintptr_t)(CHUNK - 1);
        if (got >= b->n + 4096) {
            EXPECT((uintptr_t)b->p + b->usable <= hdr + got,
                   "a %zu-byte block on a cached span of %zu bytes at %#lx: usable size %zu runs "
                   "%zu bytes past the span's end", b->n, got, (unsigned long)hdr, b->usable,
                   (size_t)((uintptr_t)b->p + b->usable - hdr - got));
        }
        if (got && got < span && got % CHUNK == 0) {   /* a span that lost chunks */
            shortened++;
            EXPECT(in_old_span(b->p), "the %zu-byte block on a shortened span of %zu bytes lies at "
                                      "%p, outside the old large blocks", b->n, got, b->p);
        }
        NOTE("reuse: %zu MiB block at %p, usable %zu, on a cached span of %zu KiB%s", b->n / MIB,
             b->p, b->usable, got / 1024, got && got < span && got % CHUNK == 0 ? " (shortened)" : "");
        pat_fill(b->p, b->usable, b->seed);   /* every usable byte */
        before = after;
    }
    if (!secure)
        EXPECT(shortened >= 1, "no large block reused a shortened span");
    EXPECT(cached_bytes() == 0, "%zu large blocks left %zu bytes in the large cache", nl,
           cached_bytes());
    check_all(small, nsmall, "after reusing the cached spans");
    check_all(large, nl, "large blocks on reused spans");
    check_disjoint(large, nl, "small, medium and reused large blocks");
    for (size_t i = 0; i < nl; i++)
        free(large[i].p);
    for (size_t i = 0; i < nsmall; i++)
        free(small[i].p);
    nsmall = 0;
    collect(1);
    EXPECT(cached_bytes() == 0, "hakmem_collect(1) left %zu bytes in the large cache",
           cached_bytes());
    blk last = new_block(LARGE_SIZE, 0, 0x1A57ull, "8 MiB block after hakmem_collect(1)");
    pat_fill(last.p, last.usable, last.seed);
    check_all(&last, 1, "8 MiB block after hakmem_collect(1)");
    free(last.p);
    /* and small blocks still come (from the segments left, or fresh ones) */
    void *q = calloc(100, 64);
    CHECK(q != NULL, "calloc(100, 64) after hakmem_collect(1) returned NULL");
    EXPECT(is_zero(q, 6400) == (size_t)-1, "calloc(100, 64) after hakmem_collect(1) is not zero");
    free(q);
    stats_get(&st);
    EXPECT(!st.background.running, "the background thread ran (HAKMEM_BACKGROUND=0)");
    xunmap(small, MAX_BLOCKS * sizeof *small);
    xunmap(ranges, (MAX_BLOCKS + MAX_REUSE) * sizeof *ranges);
    return test_finish("large_reuse");
}
