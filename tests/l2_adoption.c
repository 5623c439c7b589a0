/* l2_adoption.c -- a thread exits with medium blocks still live; other
 * threads free them; a later thread must reuse (adopt) that memory.
 *
 * Each of ROUNDS rounds:
 *   A  allocates ~TOTAL_MIB MiB of medium blocks (deterministic sizes over
 *      all classes, every page touched, per-block pattern). With every 3rd
 *      block it also allocates a transient block of the same size that goes
 *      at once to thread D, which verifies and frees it while A is still
 *      allocating -- and while A exits (remote frees racing with A's
 *      abandonment of its segments). A exits with all its other blocks live.
 *   B  (created after A was joined) verifies and frees all of A's blocks
 *      except every 50th ("survivors", kept live to the end of the round).
 *   C  (created after B was joined) allocates the same sizes again with new
 *      patterns. Checks:
 *        - RSS after C <= RSS before C + BOUND_MIB: the memory A left is
 *          reused (the abandoned segments are adopted), not mapped anew;
 *        - under hakmem, >= 90% of C's blocks lie in 2 MiB segments that A
 *          allocated from (direct evidence of adoption);
 *        - C's blocks and the survivors are pairwise disjoint and all
 *          patterns intact after C wrote all of its blocks.
 *      C exits with its blocks live; the main thread verifies and frees them
 *      and the survivors (remote frees into abandoned segments again).
 * Finally RSS at the end must not exceed RSS after the first round's C by
 * more than BOUND_MIB (no ratchet from round to round: from the second round
 * on, each A adopts the segments C left).
 *
 * glibc fails this test (a new thread may get a fresh arena): its baseline
 * variant is registered DISABLED.
 *
 * Usage: l2_adoption [rounds] [total-MiB]   (default 4, 96)
 */
#include "test_util.h"
#include "l2_common.h"

#include <pthread.h>

#define BOUND_MIB 24
#define SEG ((uintptr_t)2 << 20)

static int rounds = 4;
static size_t total_mib = 96;

static size_t nblocks;           /* blocks per round */
static size_t *sizes;            /* request sizes (the same for A and C) */
static bq_item *a_items;         /* A's blocks (p = NULL once freed) */
static bq_item *c_items;
static int round_no;
static bq to_d;
static int failed;
static ptrset a_segs;

static void gen_sizes(void)
{
    uint64_t rng = 0xAD0F7105ull;
    size_t cap = total_mib * 1024 * 1024 / 1025 + 16, sum = 0;
    sizes = xmap(cap * sizeof *sizes);
    nblocks = 0;
    while (sum < total_mib * 1024 * 1024) {
        CHECK(nblocks < cap, "size table overflow");
        /* half of the blocks from the page-sized classes (<= 8 KiB), half
         * over all classes: many pages of every geometry */
        size_t s = rng_range(&rng, 0, 1)
                       ? rng_range(&rng, L2_MIN_SIZE, 8192)
                       : l2_random_size(&rng);
        sizes[nblocks++] = s;
        sum += s;
    }
}

static uint64_t seed_of(char who, size_t i)
{
    return ((uint64_t)(unsigned char)who << 56) ^ ((uint64_t)round_no << 40) ^ i;
}

static int verify(const bq_item *it, const char *who, size_t i)
{
    size_t off = l2_check(it->p, it->n, it->seed);
    if (off == (size_t)-1)
        return 0;
    fprintf(stderr,
            "l2_adoption: round %d: %s: block #%zu %p (%zu bytes) corrupted at "
            "offset %zu (byte %#x, expected %#x)\n",
            round_no, who, i, it->p, it->n, off, ((unsigned char *)it->p)[off],
            pat_expected(it->seed, off));
    return 1;
}

static void *thread_d(void *arg)
{
    (void)arg;
    bq_item it[32];
    size_t n;
    int bad = 0;
    while ((n = bq_pop_some(&to_d, it, 32)) > 0)
        for (size_t k = 0; k < n; k++) {
            bad |= verify(&it[k], "D (freeing A's blocks while A runs)", 0);
            free(it[k].p);
        }
    if (bad)
        failed = 1;
    return NULL;
}

static void *thread_a(void *arg)
{
    (void)arg;
    for (size_t i = 0; i < nblocks; i++) {
        void *p = malloc(sizes[i]);
        CHECK(p != NULL, "round %d: A: malloc(%zu) returned NULL", round_no, sizes[i]);
        bq_item it = {p, sizes[i], seed_of('A', i)};
        l2_fill(p, it.n, it.seed);
        ptrset_add(&a_segs, (void *)((uintptr_t)p & ~(SEG - 1)));
        a_items[i] = it;
        if (i % 3 == 0) {
            /* a transient block of the same size for D to free */
            void *t = malloc(sizes[i]);
            CHECK(t != NULL, "round %d: A: malloc(%zu) returned NULL", round_no, sizes[i]);
            bq_item ti = {t, sizes[i], seed_of('T', i)};
            l2_fill(t, ti.n, ti.seed);
            ptrset_add(&a_segs, (void *)((uintptr_t)t & ~(SEG - 1)));
            bq_push(&to_d, ti);
        }
    }
    bq_close(&to_d);   /* D may still be freeing while we exit */
    return NULL;
}

static void *thread_b(void *arg)
{
    (void)arg;
    int bad = 0;
    for (size_t i = 0; i < nblocks; i++) {
        bad |= verify(&a_items[i], "B (A's block after A exited)", i);
        if (i % 50 != 1) {
            free(a_items[i].p);
            a_items[i].p = NULL;
        }
    }
    if (bad)
        failed = 1;
    return NULL;
}

static size_t in_a_segs;

static void *thread_c(void *arg)
{
    (void)arg;
    in_a_segs = 0;
    for (size_t i = 0; i < nblocks; i++) {
        void *p = malloc(sizes[i]);
        CHECK(p != NULL, "round %d: C: malloc(%zu) returned NULL", round_no, sizes[i]);
        c_items[i] = (bq_item){p, sizes[i], seed_of('C', i)};
        l2_fill(p, sizes[i], c_items[i].seed);
        in_a_segs += ptrset_has(&a_segs, (void *)((uintptr_t)p & ~(SEG - 1)));
    }
    int bad = 0;
    for (size_t i = 0; i < nblocks; i++)
        bad |= verify(&c_items[i], "C (own block, after all were written)", i);
    for (size_t i = 0; i < nblocks; i++)
        if (a_items[i].p)
            bad |= verify(&a_items[i], "C (survivor of A, after C's allocations)", i);
    if (bad)
        failed = 1;
    return NULL;   /* exits with its blocks live */
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 1)
        rounds = atoi(argv[1]);
    if (argc > 2)
        total_mib = (size_t)atol(argv[2]);
    CHECK(rounds >= 1 && total_mib >= 16 && total_mib <= 4096,
          "usage: l2_adoption [rounds >= 1] [total-MiB 16..4096]");
    hk_require_if_expected("l2_adoption");
    l2_classes_init();
    gen_sizes();
    a_items = xmap(nblocks * sizeof *a_items);
    c_items = xmap(nblocks * sizeof *c_items);
    l2_range *ranges = xmap(2 * nblocks * sizeof *ranges);
    const long bound = BOUND_MIB * 1024L;
    long rss_ref = -1, rss_start = rss_kib();
    printf("l2_adoption: %zu blocks (~%zu MiB) per round, RSS at start %ld KiB\n",
           nblocks, total_mib, rss_start);

    for (round_no = 0; round_no < rounds; round_no++) {
        ptrset_init(&a_segs, nblocks);
        bq_init(&to_d, 256);
        pthread_t d = xspawn(thread_d, NULL);
        xjoin(xspawn(thread_a, NULL));
        xjoin(d);
        bq_destroy(&to_d);
        long rss_peak = rss_kib();
        CHECK(!failed, "round %d: corrupted blocks (see above)", round_no);

        xjoin(xspawn(thread_b, NULL));
        CHECK(!failed, "round %d: corrupted blocks (see above)", round_no);
        long rss_before_c = rss_kib();

        xjoin(xspawn(thread_c, NULL));
        long rss_after_c = rss_kib();
        if (rss_ref < 0)
            rss_ref = rss_after_c;
        CHECK(!failed, "round %d: corrupted blocks (see above)", round_no);

        size_t k = 0, survivors = 0;
        for (size_t i = 0; i < nblocks; i++) {
            ranges[k].lo = (uintptr_t)c_items[i].p;
            ranges[k++].hi = (uintptr_t)c_items[i].p + c_items[i].n;
            if (a_items[i].p) {
                survivors++;
                ranges[k].lo = (uintptr_t)a_items[i].p;
                ranges[k++].hi = (uintptr_t)a_items[i].p + a_items[i].n;
            }
        }
        EXPECT(l2_check_disjoint(ranges, k, "C's blocks + survivors") == 0,
               "round %d: C got memory overlapping live blocks", round_no);

        printf("l2_adoption: round %d: RSS %ld KiB after A (peak), %ld KiB "
               "after B's frees, %ld KiB after C (%+ld KiB, limit +%ld); %zu of "
               "%zu of C's blocks in A's %zu segments; %zu survivors\n",
               round_no, rss_peak, rss_before_c, rss_after_c,
               rss_after_c - rss_before_c, bound, in_a_segs, nblocks,
               a_segs.count, survivors);
        EXPECT(rss_after_c - rss_before_c <= bound,
               "round %d: RSS grew by %ld KiB while thread C allocated the same "
               "sizes that exited thread A had held (limit %ld KiB): the "
               "abandoned memory was not reused", round_no,
               rss_after_c - rss_before_c, bound);
        if (hk_active())
            EXPECT(in_a_segs * 10 >= nblocks * 9,
                   "round %d: only %zu of %zu of C's blocks lie in the segments "
                   "that exited thread A used (expected >= 90%%): abandoned "
                   "segments are not adopted", round_no, in_a_segs, nblocks);

        /* main frees C's blocks (C has exited) and the survivors */
        int bad = 0;
        for (size_t i = 0; i < nblocks; i++) {
            bad |= verify(&c_items[i], "main (C's block after C exited)", i);
            free(c_items[i].p);
            if (a_items[i].p) {
                bad |= verify(&a_items[i], "main (survivor)", i);
                free(a_items[i].p);
                a_items[i].p = NULL;
            }
        }
        CHECK(!bad, "round %d: corrupted blocks (see above)", round_no);
        ptrset_destroy(&a_segs);
    }
    long rss_end = rss_kib();
    printf("l2_adoption: RSS at end %ld KiB (after the first round's C %ld "
           "KiB, limit +%ld KiB)\n", rss_end, rss_ref, bound);
    EXPECT(rss_end - rss_ref <= bound,
           "RSS ratchets from round to round: %ld KiB at the end vs %ld KiB "
           "after the first round's C", rss_end, rss_ref);
    return test_finish("l2_adoption");
}
