/* l2_span_reuse.c -- memory freed as blocks of one size above 64 KiB must
 * serve the next blocks of another such size (issue 10: realloc_growth and
 * mid_big_mt kept a page per class; docs/analysis/span-blocks.md).
 *
 * Each wave runs in its own thread (a heap of its own) and allocates blocks
 * of one size, fills every byte with a pattern, checks that no two blocks
 * overlap and that every pattern is intact, and records the 64 KiB units
 * its blocks cover. The next wave, of another size, must place at least
 * REUSE_MIN of its units on units of the wave before:
 *   1. "local": one thread allocates 48 blocks of 80 KiB, frees them, then
 *      24 of 256 KiB, frees them, then 40 of 96 KiB: each wave on the units
 *      of the one before (the frees go through the thread's bin and back to
 *      the pages; what the bin keeps is the slack REUSE_MIN allows);
 *   2. "remote": a thread allocates 32 blocks of 160 KiB and hands them to
 *      another thread, which frees them all (remote frees); the owner then
 *      allocates 48 blocks of 96 KiB on the same units.
 *   3. "grow": in a thread of its own (its own segments, nothing after its
 *      first block), a 72 KiB block grows by realloc to 100, 150 and 250
 *      KiB: it stays where it is, its contents intact, usable size at least
 *      what was asked (the units after it joined it). A block allocated
 *      right after it then blocks the next growth: realloc moves it, with
 *      its contents. Both are freed -- the grown one by another thread --
 *      and the memory serves new blocks of another size (a second free of
 *      a grown block must abort: invalid_free checks that). Last, a 2 MiB-
 *      aligned block of 100 KiB (a mapping) grows to 150 KiB by copy.
 * Before span blocks, each class kept its own pages until the heap's purge:
 * no unit was reused (the test fails there). The purge delay is long and
 * the background thread off (CTest's environment), so only the frees
 * themselves can make the memory reusable.
 *
 * Usage: l2_span_reuse */
#include "test_util.h"

#include <malloc.h>
#include <pthread.h>

enum { MAX_BLOCKS = 64, UNIT_SHIFT = 16 };
#define REUSE_MIN 0.5   /* of the smaller wave's units */

typedef struct wave {
    size_t size, count;
    char *p[MAX_BLOCKS];
    uintptr_t units[MAX_BLOCKS * 8]; /* the units the blocks touch */
    size_t nunits;
} wave;

static uint64_t seed_of(const wave *w, size_t i) { return w->size * 131 + i + 1; }

static void wave_alloc(wave *w)
{
    w->nunits = 0;
    for (size_t i = 0; i < w->count; i++) {
        w->p[i] = malloc(w->size);
        CHECK(w->p[i] != NULL, "malloc(%zu) #%zu returned NULL", w->size, i);
        pat_fill(w->p[i], w->size, seed_of(w, i));
        uintptr_t a = (uintptr_t)w->p[i] >> UNIT_SHIFT, b = ((uintptr_t)w->p[i] + w->size - 1) >> UNIT_SHIFT;
        for (uintptr_t u = a; u <= b; u++)
            w->units[w->nunits++] = u;
    }
    for (size_t i = 0; i < w->count; i++) {
        size_t off = pat_check(w->p[i], w->size, seed_of(w, i));
        EXPECT(off == (size_t)-1, "%zu B block #%zu %p corrupted at offset %zu", w->size, i,
               (void *)w->p[i], off);
        for (size_t j = i + 1; j < w->count; j++)
            EXPECT(w->p[i] + w->size <= w->p[j] || w->p[j] + w->size <= w->p[i],
                   "%zu B blocks #%zu %p and #%zu %p overlap", w->size, i, (void *)w->p[i], j,
                   (void *)w->p[j]);
    }
}

static void wave_free(wave *w)
{
    for (size_t i = 0; i < w->count; i++)
        free(w->p[i]);
}

/* How many of w's units lie on units of `before`. */
static size_t reused(const wave *before, const wave *w)
{
    size_t n = 0;
    for (size_t i = 0; i < w->nunits; i++)
        for (size_t j = 0; j < before->nunits; j++)
            if (w->units[i] == before->units[j]) {
                n++;
                break;
            }
    return n;
}

static void expect_reuse(const char *name, const wave *before, const wave *w)
{
    size_t n = reused(before, w);
    size_t base = before->nunits < w->nunits ? before->nunits : w->nunits;
    NOTE("%s: %zu x %zu B after %zu x %zu B: %zu of %zu units reused (of %zu before)", name,
         w->count, w->size, before->count, before->size, n, w->nunits, before->nunits);
    if (hk_active())
        EXPECT(n >= REUSE_MIN * base, "%s: %zu B blocks reused %zu units of the %zu B blocks' %zu "
               "(want >= %.0f %%)", name, w->size, n, before->size, before->nunits, REUSE_MIN * 100);
}

static wave w1, w2, w3;

static void *local_case(void *arg)
{
    (void)arg;
    w1 = (wave){.size = 80 << 10, .count = 48};
    w2 = (wave){.size = 256 << 10, .count = 24};
    w3 = (wave){.size = 96 << 10, .count = 40};
    wave_alloc(&w1);
    wave_free(&w1);
    wave_alloc(&w2);
    expect_reuse("local", &w1, &w2);
    wave_free(&w2);
    wave_alloc(&w3);
    expect_reuse("local", &w2, &w3);
    wave_free(&w3);
    return NULL;
}

static void *free_all(void *arg)
{
    wave_free(arg);
    return NULL;
}

static void *remote_case(void *arg)
{
    (void)arg;
    w1 = (wave){.size = 160 << 10, .count = 32};
    w2 = (wave){.size = 96 << 10, .count = 48};
    wave_alloc(&w1);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, free_all, &w1) == 0 && pthread_join(t, NULL) == 0,
          "the freeing thread");
    wave_alloc(&w2);
    expect_reuse("remote", &w1, &w2);
    wave_free(&w2);
    return NULL;
}

static void *free_one(void *p)
{
    free(p);
    return NULL;
}

static void *grow_case(void *arg)
{
    (void)arg;
    static const size_t steps[] = {100 << 10, 150 << 10, 250 << 10};
    size_t n = 72 << 10;
    char *p = malloc(n);
    CHECK(p != NULL, "malloc(%zu)", n);
    pat_fill(p, n, 7);
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        char *q = realloc(p, steps[i]);
        CHECK(q != NULL, "realloc to %zu", steps[i]);
        size_t off = pat_check(q, n, 7);
        EXPECT(off == (size_t)-1, "grow: contents lost at offset %zu after realloc to %zu", off, steps[i]);
        EXPECT(malloc_usable_size(q) >= steps[i], "grow: usable %zu < %zu", malloc_usable_size(q), steps[i]);
        if (hk_active())
            EXPECT(q == p, "grow: realloc %zu -> %zu moved the block (%p -> %p) with free units after it",
                   n, steps[i], (void *)p, (void *)q);
        NOTE("grow: %zu -> %zu B %s", n, steps[i], q == p ? "in place" : "moved");
        p = q;
        n = steps[i];
        pat_fill(p, n, 7);
    }
    char *blocker = malloc(200 << 10);   /* the next free units, right after p's */
    CHECK(blocker != NULL, "malloc blocker");
    pat_fill(blocker, 200 << 10, 9);
    char *q = realloc(p, 1000 << 10);   /* (a large block, whatever lies after p) */
    CHECK(q != NULL, "realloc to 1000 KiB");
    EXPECT(pat_check(q, n, 7) == (size_t)-1, "grow: contents lost when moved");
    EXPECT(pat_check(blocker, 200 << 10, 9) == (size_t)-1, "grow: the block after it was overwritten");
    free(q);
    /* grown in place again, then freed by another thread */
    p = malloc(72 << 10);
    CHECK(p != NULL, "malloc");
    q = realloc(p, 200 << 10);
    CHECK(q != NULL, "realloc to 200 KiB");
    pat_fill(q, 200 << 10, 11);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, free_one, q) == 0 && pthread_join(t, NULL) == 0, "remote free");
    free(blocker);
    wave w = {.size = 96 << 10, .count = 8};   /* the freed memory serves new blocks */
    wave_alloc(&w);
    wave_free(&w);
    /* A 2 MiB-aligned block of span size is a mapping whose data starts
     * where a segment's header would: realloc must not take it for one. */
    char *a = aligned_alloc(2u << 20, 100 << 10);
    CHECK(a != NULL, "aligned_alloc(2 MiB, 100 KiB)");
    pat_fill(a, 100 << 10, 13);
    char *b = realloc(a, 150 << 10);
    CHECK(b != NULL, "realloc of the aligned block");
    EXPECT(malloc_usable_size(b) >= (150 << 10), "aligned block grown to %zu, usable %zu",
           (size_t)150 << 10, malloc_usable_size(b));
    EXPECT(pat_check(b, 100 << 10, 13) == (size_t)-1, "aligned block: contents lost");
    free(b);
    return NULL;
}

int main(void)
{
    hk_require_if_expected("l2_span_reuse");
    void *(*cases[])(void *) = {local_case, remote_case, grow_case};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pthread_t t;
        CHECK(pthread_create(&t, NULL, cases[i], NULL) == 0 && pthread_join(t, NULL) == 0,
              "case thread %zu", i);
    }
    return test_finish("l2_span_reuse");
}
