/* large_burst.c -- the large cache keeps a burst of freed spans the program
 * barely touched, and still bounds the memory of spans it filled
 * (src/large/large.c: the cache's memory bound counts every span's
 * resident pages, estimated from mincore samples taken each time a
 * sixteenth of the bound has been freed).
 *
 * Runs with HAKMEM_BACKGROUND=0 and HAKMEM_PURGE_DELAY_MS >= 600000 (CTest
 * sets both; checked with hakmem_option_get): nothing expires meanwhile.
 *
 *   1. SPARSE blocks of 1 MiB, each written in its first word only (a
 *      buffer handed on with a header filled in), are all freed: the cache
 *      keeps all but a few of them (large_cached_bytes; the address-space
 *      bound, 4 GiB, or 1 GiB where address space is tight, may leave out
 *      a few), although their sizes add up to four times
 *      HAKMEM_LARGE_CACHE_BYTES (256 MiB). A bound on the spans' sizes
 *      kept 64 of them and unmapped the rest; a bound that counted spans
 *      whole until it was near kept about 770 (the first 256 counted at
 *      1 MiB each, then evicted one by one by the estimated ones).
 *   2. REUSE new blocks of 1 MiB, written in their first word, come from the
 *      cache: fewer than REUSE / 4 page faults for them (a fresh mapping
 *      faults on its first write; a cached span's first page is resident).
 *   3. DENSE blocks of 1 MiB, written in full, are freed: the process RSS
 *      afterwards exceeds what it was before them by at most the bound
 *      (256 MiB) plus 16 MiB -- the spans it keeps are counted whole.
 *   4. FREERS threads free PER_FREER sparse blocks each, all at once (a
 *      free that finds the cache's lock taken leaves its span on a
 *      lock-free list; tests/unit/unit_large_incoming forces that case):
 *      the statistics count all of them cached, and hakmem_collect(1)
 *      unmaps all of them (the process's virtual size falls by their
 *      total).
 * Every block is page-aligned (large blocks' user data starts on the page
 * after their header) and keeps its first word (its index) until it is
 * freed. The fault
 * and RSS checks are skipped under a sanitizer (shadow memory).
 */
#include "test_util.h"

#include <pthread.h>

#include "../include/hakmem.h"

#define MIB ((size_t)1 << 20)
#define BLOCK MIB
#define SPARSE 1024
#define KEPT (SPARSE - 8)
#define REUSE 400
#define DENSE 400
#define FREERS 4
#define PER_FREER 200   /* 800 spans in all: within the count bound (2,048) */

static void (*stats_get)(hakmem_stats *);
static size_t (*collect)(int);
static int (*owns)(const void *);
static hakmem_stats st;   /* off the stack */
static size_t *blocks[SPARSE];

static size_t cached_bytes(void)
{
    stats_get(&st);
    return st.large_cached_bytes;
}

static size_t *new_block(size_t i, const char *what)
{
    size_t *p = malloc(BLOCK);
    CHECK(p, "%s: malloc(%zu) returned NULL", what, BLOCK);
    CHECK(owns(p), "%s: hakmem does not own block %zu (%p)", what, i, (void *)p);
    EXPECT(((uintptr_t)p & 4095) == 0, "%s: block %zu (%p) is not page-aligned", what, i, (void *)p);
    p[0] = i;
    return p;
}

static void free_all(size_t n, const char *what)
{
    for (size_t i = 0; i < n; i++) {
        EXPECT(blocks[i][0] == i, "%s: block %zu's first word is %zu", what, i, blocks[i][0]);
        free(blocks[i]);
    }
}

static pthread_barrier_t start_freeing;

static void *freer(void *arg)
{
    size_t first = (size_t)arg * PER_FREER;
    pthread_barrier_wait(&start_freeing);
    for (size_t i = first; i < first + PER_FREER; i++) {
        EXPECT(blocks[i][0] == i, "freer: block %zu's first word is %zu", i, blocks[i][0]);
        free(blocks[i]);
    }
    return NULL;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    hk_require_if_expected("large_burst");
    if (!hk_active()) {
        NOTE("hakmem not loaded: nothing to check");
        return test_finish("large_burst");
    }
    *(void **)&stats_get = HK_HAKMEM_FN(hakmem_stats_get);
    *(void **)&collect = HK_HAKMEM_FN(hakmem_collect);
    *(void **)&owns = HK_HAKMEM_FN(hakmem_owns);
    CHECK(stats_get && collect && owns, "hakmem_stats_get / hakmem_collect / hakmem_owns do not resolve");
    hk_require_nothing_expires();
    long long bound = hk_option("large_cache_bytes");
    CHECK(bound == 256LL << 20, "run with the default large cache bound (256 MiB; is %lld bytes)",
          bound);
    NOTE("large cache: %lld bytes, %lld spans at most", bound, hk_option("large_cache_count"));
    free(malloc(100));   /* the allocator and stdio initialised */

    /* 1. a burst of sparse spans, freed */
    size_t cached0 = cached_bytes();
    for (size_t i = 0; i < SPARSE; i++)
        blocks[i] = new_block(i, "sparse");
    free_all(SPARSE, "sparse");
    size_t kept = (cached_bytes() - cached0) / BLOCK;
    NOTE("%d sparse blocks of 1 MiB freed: the cache kept %zu of them", SPARSE, kept);
    EXPECT(kept >= KEPT, "the cache kept %zu of %d freed sparse spans (want >= %d)", kept, SPARSE,
           KEPT);

    /* 2. reused without page faults */
    long f0 = hk_minflt();
    for (size_t i = 0; i < REUSE; i++)
        blocks[i] = new_block(i, "reuse");
    long faults = hk_minflt() - f0;
    NOTE("%d blocks of 1 MiB allocated and written again: %ld page faults", REUSE, faults);
    if (!HK_SANITIZED)
        EXPECT(faults < REUSE / 4, "%ld page faults for %d blocks the cache could serve (want < %d)",
               faults, REUSE, REUSE / 4);
    free_all(REUSE, "reuse");
    collect(1);

    /* 3. dense spans are counted whole */
    long rss0 = rss_kib();
    for (size_t i = 0; i < DENSE; i++) {
        blocks[i] = new_block(i, "dense");
        memset(blocks[i] + 1, 0x5A, BLOCK - sizeof(size_t));
    }
    long rss_full = rss_kib();
    free_all(DENSE, "dense");
    long rss_after = rss_kib();
    NOTE("%d dense blocks: RSS %ld MiB before, %ld MiB with them, %ld MiB after their free", DENSE,
         rss0 / 1024, rss_full / 1024, rss_after / 1024);
    if (!HK_SANITIZED)
        EXPECT(rss_after - rss0 <= (long)(bound / 1024) + 16 * 1024,
               "after freeing %d dense blocks of 1 MiB the RSS is %ld KiB above its level before "
               "them (the cache's bound is %lld KiB)", DENSE, rss_after - rss0, bound / 1024);
    collect(1);

    /* 4. freed by several threads at once: nothing lost on the incoming list */
    CHECK(cached_bytes() == 0, "hakmem_collect(1) left %zu cached bytes", cached_bytes());
    for (size_t i = 0; i < FREERS * PER_FREER; i++)
        blocks[i] = new_block(i, "shared");
    pthread_t th[FREERS];
    CHECK(pthread_barrier_init(&start_freeing, NULL, FREERS) == 0, "pthread_barrier_init");
    for (size_t t = 0; t < FREERS; t++)
        CHECK(pthread_create(&th[t], NULL, freer, (void *)t) == 0, "pthread_create");
    for (size_t t = 0; t < FREERS; t++)
        pthread_join(th[t], NULL);
    pthread_barrier_destroy(&start_freeing);
    size_t kept4 = cached_bytes() / BLOCK;
    long vm_full = vm_kib();
    size_t unmapped = collect(1);
    long vm_after = vm_kib();
    NOTE("%d blocks freed by %d threads at once: %zu cached; hakmem_collect(1) unmapped %zu MiB, "
         "the virtual size fell by %ld MiB", FREERS * PER_FREER, FREERS, kept4, unmapped >> 20,
         (vm_full - vm_after) / 1024);
    EXPECT(kept4 >= FREERS * PER_FREER - 8, "%zu of %d spans freed at once are cached (want >= %d)",
           kept4, FREERS * PER_FREER, FREERS * PER_FREER - 8);
    EXPECT(cached_bytes() == 0, "hakmem_collect(1) left %zu cached bytes", cached_bytes());
    if (!HK_SANITIZED)
        EXPECT(vm_full - vm_after >= (long)(kept4 * (BLOCK / 1024)),
               "the virtual size fell by %ld KiB when %zu cached spans of 1 MiB were unmapped",
               vm_full - vm_after, kept4);
    return test_finish("large_burst");
}
