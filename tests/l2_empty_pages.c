/* l2_empty_pages.c -- when a heap's purge gives its empty medium pages back
 * to their segments (src/l2/l2.c, hm_l2_release_empty): a periodic pass
 * releases a page only when it found it empty at the pass before too, with
 * no block taken from it in between (docs/analysis/many-to-one.md, ninth
 * session); a forced purge releases every empty page at once.
 *
 * With a purge delay of a minute and no background thread (CTest's
 * environment), only the test's own calls purge: hakmem_collect(0) is one
 * periodic pass of the calling thread's heap, hakmem_collect(1) a forced
 * one. Each round allocates BLOCKS blocks of 16 KiB (pages of 512 KiB, 32
 * blocks each) in a thread of its own, writes them, frees them all, and
 * reads the statistics' `active` (bytes of slabs and pages assigned):
 *   1. hakmem_collect(0): no medium page released yet (active falls by less
 *      than one page: Tiny slabs have no such rule);
 *      hakmem_collect(0) again: the empty pages go (at least MIN_PAGES);
 *   2. hakmem_collect(1) at once: the empty pages go in the first call.
 * The build before the rule releases them at the first pass (step 1 fails).
 *
 * Usage: l2_empty_pages */
#include "test_util.h"

#include <pthread.h>

#include "../include/hakmem.h"

enum { BLOCKS = 320, SIZE = 16 << 10, PAGE = 512 << 10, MIN_PAGES = 4 };

/* hakmem's API, looked up (the preloaded build is not linked to it) */
static void (*stats_get)(hakmem_stats *);
static size_t (*collect)(int);

static size_t active(void)
{
    static hakmem_stats st;
    stats_get(&st);
    return st.active;
}

static void fill_and_free(void)
{
    static char *p[BLOCKS];
    for (int i = 0; i < BLOCKS; i++) {
        p[i] = malloc(SIZE);
        CHECK(p[i] != NULL, "malloc #%d", i);
        memset(p[i], i, SIZE);
    }
    for (int i = 0; i < BLOCKS; i++)
        free(p[i]);
}

static void *periodic(void *arg)
{
    (void)arg;
    fill_and_free();
    size_t a0 = active();
    collect(0);
    size_t a1 = active();
    collect(0);
    size_t a2 = active();
    NOTE("periodic passes: active %zu -> %zu -> %zu KiB", a0 >> 10, a1 >> 10, a2 >> 10);
    if (hk_active()) {
        EXPECT(a0 - a1 < PAGE, "the first pass released %zu KiB of pages found empty for the first time",
               (a0 - a1) >> 10);
        EXPECT(a1 - a2 >= (size_t)MIN_PAGES * PAGE, "the second pass released %zu KiB (want >= %d pages)",
               (a1 - a2) >> 10, MIN_PAGES);
    }
    return NULL;
}

static void *forced(void *arg)
{
    (void)arg;
    fill_and_free();
    size_t a0 = active();
    collect(1);
    size_t a1 = active();
    NOTE("forced purge: active %zu -> %zu KiB", a0 >> 10, a1 >> 10);
    if (hk_active())
        EXPECT(a0 - a1 >= (size_t)MIN_PAGES * PAGE, "a forced purge released %zu KiB (want >= %d pages)",
               (a0 - a1) >> 10, MIN_PAGES);
    return NULL;
}

int main(void)
{
    hk_require_if_expected("l2_empty_pages");
    if (!hk_active()) {
        NOTE("hakmem not loaded: nothing to check");
        return test_finish("l2_empty_pages");
    }
#ifdef HK_PREFIXED
    stats_get = hakmem_stats_get;
    collect = hakmem_collect;
#else
    *(void **)&stats_get = dlsym(RTLD_DEFAULT, "hakmem_stats_get");
    *(void **)&collect = dlsym(RTLD_DEFAULT, "hakmem_collect");
#endif
    CHECK(stats_get && collect, "hakmem_stats_get / hakmem_collect do not resolve");
    void *(*cases[])(void *) = {periodic, forced};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pthread_t t;
        CHECK(pthread_create(&t, NULL, cases[i], NULL) == 0 && pthread_join(t, NULL) == 0,
              "case thread %zu", i);
    }
    return test_finish("l2_empty_pages");
}
