/* large_from_segments.c -- one pool of 2 MiB chunks for every size: a large
 * block shorter than 2 MiB takes an empty cached segment before mapping a
 * chunk of its own (hm_seg_cache_take_chunk, src/superslab/superslab.c,
 * called by map_chunk in src/large/large.c), and such a block, freed into
 * the large cache, becomes a segment again when a heap needs one
 * (hm_large_take_chunk). Never in secure mode (guard pages inside segments).
 *
 * Runs with HAKMEM_BACKGROUND=0 and an hour's HAKMEM_PURGE_DELAY_MS (CTest
 * sets both; the test checks them), so that nothing expires while it looks.
 *
 *   1. a thread allocates 12 MiB of 16 KiB blocks, writes every byte with
 *      0xCD, frees them and exits: its emptied segments go to the
 *      process-wide cache (segments_cached >= 1, or the test fails);
 *   2. calloc(300 KiB) as many times as segments were cached (and one
 *      more): each block is all zero although the segments held 0xCD, and
 *      (not in secure mode) the cache gave up one segment per block --
 *      segments_cached fell to 0 and at least one block lies in a 2 MiB
 *      range that held the thread's blocks; every block is then written in
 *      full, one of them grown by realloc to 1.5 MiB (its chunk's room:
 *      the first 300 KiB must survive), and no two overlap;
 *   3. the large blocks are freed (into the large cache), and a new thread
 *      allocates 16 KiB blocks, a calloc every 4th, until one lies in a
 *      chunk of step 2's blocks (at most 12 MiB): in secure mode none may;
 *      otherwise one must, the large cache must have shrunk, and every
 *      calloc'd block must be zero and every block keep its pattern.
 */
#include "test_util.h"
#include "l2_common.h"

#include "../include/hakmem.h"

#include <pthread.h>

#define KIB ((size_t)1 << 10)
#define MIB ((size_t)1 << 20)
#define CHUNK (2 * MIB)
#define MID 16384
#define MID_BYTES (12 * MIB)
#define NMID (MID_BYTES / MID)
#define LARGE (300 * KIB)
#define GROWN (1536 * KIB)
#define MAX_LARGE 64

static void (*stats_get)(hakmem_stats *);
static int (*owns)(const void *);
static hakmem_stats st;   /* off the stack */

static uintptr_t seg_chunks[NMID];   /* step 1: the chunks its blocks lay in */
static size_t nseg_chunks;
static uintptr_t large_chunks[MAX_LARGE + 1];
static size_t nlarge_chunks;

static int in_list(uintptr_t chunk, const uintptr_t *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (list[i] == chunk)
            return 1;
    return 0;
}

static size_t zero_check(const void *p, size_t n)   /* the first non-zero byte, or -1 */
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return i;
    return (size_t)-1;
}

static uintptr_t chunk_of(const void *p) { return (uintptr_t)p & ~(uintptr_t)(CHUNK - 1); }

static void *fill_and_exit(void *arg)
{
    (void)arg;
    static void *b[NMID];
    for (size_t i = 0; i < NMID; i++) {
        b[i] = malloc(MID);
        CHECK(b[i] && owns(b[i]), "step 1: malloc(%d) #%zu: %p, not hakmem's", MID, i, b[i]);
        memset(b[i], 0xCD, MID);
        if (!in_list(chunk_of(b[i]), seg_chunks, nseg_chunks))
            seg_chunks[nseg_chunks++] = chunk_of(b[i]);
    }
    for (size_t i = 0; i < NMID; i++)
        free(b[i]);
    return NULL;
}

typedef struct step3 {
    int found;          /* a block in one of step 2's chunks */
    size_t blocks;
} step3;

static void *refill_segments(void *arg)
{
    step3 *s = arg;
    static void *b[NMID];
    static uint64_t seed[NMID];
    size_t n = 0;
    for (; n < NMID && !s->found; n++) {
        int zeroed = n % 4 == 0;
        b[n] = zeroed ? calloc(1, MID) : malloc(MID);
        CHECK(b[n] && owns(b[n]), "step 3: block #%zu: %p, not hakmem's", n, b[n]);
        if (zeroed)
            EXPECT(zero_check(b[n], MID) == (size_t)-1,
                   "step 3: calloc(%d) = %p is not zero (a chunk of an old large block?)", MID, b[n]);
        seed[n] = 0x5151 + n;
        pat_fill(b[n], MID, seed[n]);
        if (in_list(chunk_of(b[n]), large_chunks, nlarge_chunks))
            s->found = 1;
    }
    for (size_t i = 0; i < n; i++) {
        EXPECT(pat_check(b[i], MID, seed[i]) == (size_t)-1, "step 3: block %p lost its pattern", b[i]);
        free(b[i]);
    }
    s->blocks = n;
    return NULL;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    hk_require_if_expected("large_from_segments");
    if (!hk_active()) {
        NOTE("hakmem not loaded: nothing to check");
        return test_finish("large_from_segments");
    }
    *(void **)&stats_get = HK_HAKMEM_FN(hakmem_stats_get);
    *(void **)&owns = HK_HAKMEM_FN(hakmem_owns);
    CHECK(stats_get && owns, "hakmem_stats_get / hakmem_owns do not resolve");
    hk_require_nothing_expires();
    int secure = hk_option("secure") != 0;
    NOTE("secure mode %s", secure ? "on: no segment may become a large chunk, nor the reverse" : "off");

    /* ---- 1. a thread's emptied segments go to the process-wide cache ------- */
    pthread_t t;
    CHECK(pthread_create(&t, NULL, fill_and_exit, NULL) == 0, "pthread_create");
    pthread_join(t, NULL);
    stats_get(&st);
    size_t cached1 = st.segments_cached, large1 = st.large_count;
    NOTE("step 1: %zu blocks of %d bytes lay in %zu chunks; after the thread's exit: %zu segments, "
         "%zu cached", (size_t)NMID, MID, nseg_chunks, st.segments, cached1);
    CHECK(cached1 >= 1, "step 1: the exited thread left no empty segment in the cache: nothing to test");

    /* ---- 2. large blocks take the cached segments -------------------------- */
    size_t nlarge = cached1 + 1 > MAX_LARGE ? MAX_LARGE : cached1 + 1;
    void *lb[MAX_LARGE];
    size_t in_old = 0;
    for (size_t i = 0; i < nlarge; i++) {
        lb[i] = calloc(1, LARGE);
        CHECK(lb[i] && owns(lb[i]), "step 2: calloc(%zu) #%zu: %p, not hakmem's", LARGE, i, lb[i]);
        EXPECT(zero_check(lb[i], LARGE) == (size_t)-1,
               "step 2: calloc(%zu) = %p is not zero (the cached segment's old bytes)", LARGE, lb[i]);
        uintptr_t c = chunk_of(lb[i]);
        in_old += in_list(c, seg_chunks, nseg_chunks);
        large_chunks[nlarge_chunks++] = c;
    }
    stats_get(&st);
    NOTE("step 2: %zu blocks of %zu KiB, %zu of them in the thread's old chunks; segments cached "
         "%zu -> %zu, large blocks %zu -> %zu", nlarge, LARGE / KIB, in_old, cached1,
         st.segments_cached, large1, st.large_count);
    EXPECT(st.large_count == large1 + nlarge, "step 2: large_count %zu, expected %zu", st.large_count,
           large1 + nlarge);
    if (secure) {
        EXPECT(in_old == 0 && st.segments_cached == cached1,
               "step 2, secure mode: %zu large blocks lie in old segments, cached segments %zu -> %zu",
               in_old, cached1, st.segments_cached);
    } else {
        EXPECT(in_old >= 1, "step 2: no large block took one of the %zu cached segments", cached1);
        EXPECT(st.segments_cached == 0, "step 2: %zu segments still cached after %zu large blocks",
               st.segments_cached, nlarge);
    }
    for (size_t i = 0; i < nlarge; i++)
        pat_fill(lb[i], LARGE, 0x77 + i);
    lb[0] = realloc(lb[0], GROWN);
    CHECK(lb[0] != NULL, "step 2: realloc to %zu KiB failed", GROWN / KIB);
    EXPECT(pat_check(lb[0], LARGE, 0x77) == (size_t)-1, "step 2: realloc lost the block's first bytes");
    large_chunks[nlarge_chunks++] = chunk_of(lb[0]);
    pat_fill(lb[0], GROWN, 0x99);
    l2_range r[MAX_LARGE];
    for (size_t i = 0; i < nlarge; i++) {
        size_t n = i == 0 ? GROWN : LARGE;
        EXPECT(pat_check(lb[i], n, i == 0 ? 0x99 : 0x77 + i) == (size_t)-1, "step 2: block %zu corrupted", i);
        r[i] = (l2_range){(uintptr_t)lb[i], (uintptr_t)lb[i] + n};
    }
    EXPECT(l2_check_disjoint(r, nlarge, "step 2") == 0, "step 2: large blocks overlap");

    /* ---- 3. freed, they become segments again ------------------------------ */
    for (size_t i = 0; i < nlarge; i++)
        free(lb[i]);
    stats_get(&st);
    size_t lcached3 = st.large_cached_bytes;
    step3 s = {0, 0};
    CHECK(pthread_create(&t, NULL, refill_segments, &s) == 0, "pthread_create");
    pthread_join(t, NULL);
    stats_get(&st);
    NOTE("step 3: %zu blocks of %d bytes; one in an old large block's chunk: %s; large cache "
         "%zu -> %zu bytes", s.blocks, MID, s.found ? "yes" : "no", lcached3, st.large_cached_bytes);
    if (secure)
        EXPECT(!s.found, "step 3, secure mode: a segment took a large block's chunk");
    else {
        EXPECT(s.found, "step 3: no segment took the chunk of a freed large block");
        EXPECT(st.large_cached_bytes < lcached3, "step 3: the large cache did not shrink (%zu -> %zu)",
               lcached3, st.large_cached_bytes);
    }
    return test_finish("large_from_segments");
}
