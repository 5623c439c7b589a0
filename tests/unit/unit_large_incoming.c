/* unit_large_incoming.c -- a large free that finds the span cache's lock
 * taken does not wait for it (src/large/large.c, "incoming"), white-box:
 * linked with libhakmem.a, so malloc is hakmem's and the test can hold the
 * cache's lock itself (hm_large_lock, as the fork handler does).
 *
 *   1. While the test holds the lock, another thread frees BLOCKS large
 *      blocks: the first INCOMING_MAX (64) return at once, their spans
 *      left on the incoming list; the next one waits for the lock, and
 *      once it has the lock the rest follow.
 *   2. Again with FEW blocks, all of which wait on the list when the lock
 *      is given back and nobody frees after them: the statistics count
 *      every one of them cached (they admit the list first), and
 *      hakmem_collect(1) unmaps them all (the virtual size falls by their
 *      total). Run with HAKMEM_BACKGROUND=0 (CTest sets it), so that no
 *      purge admits them in between.
 * The blocks (300 KiB) are written in full, so the cache counts each
 * whole whatever its density samples found; 64 of them are well under the
 * incoming list's memory bound (an eighth of the cache's 256 MiB).
 * Nothing may allocate while the test holds the lock (a new segment may
 * take a chunk of a cached span under it): threads are made first and
 * wait for `go`; checks and notes come after the unlock.
 */
#include "hakmem_internal.h"
#include "test_util.h"

#include "../include/hakmem.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#define BLOCK ((size_t)300 << 10)
#define BLOCKS 70
#define FEW 32
#define WAITING_MAX 64   /* large.c's INCOMING_MAX */

static unsigned char *blocks[BLOCKS];
static atomic_int freed, go, to_free;
static hakmem_stats st;

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void *freer(void *arg)
{
    (void)arg;
    while (!atomic_load(&go))
        sleep_ms(1);
    for (int i = 0; i < atomic_load(&to_free); i++) {
        EXPECT(blocks[i][BLOCK - 1] == (unsigned char)i, "block %d's last byte changed", i);
        free(blocks[i]);
        atomic_store(&freed, i + 1);
    }
    return NULL;
}

/* Wait up to 5 s for `freed` to reach n. */
static int wait_freed(int n)
{
    for (int i = 0; i < 500 && atomic_load(&freed) < n; i++)
        sleep_ms(10);
    return atomic_load(&freed);
}

static void alloc_blocks(int n)
{
    for (int i = 0; i < n; i++) {
        blocks[i] = malloc(BLOCK);
        CHECK(blocks[i] && hakmem_owns(blocks[i]), "malloc(%zu) %d", BLOCK, i);
        memset(blocks[i], i, BLOCK);
    }
}

/* A thread frees blocks[0 .. n) while this one holds the cache's lock for
 * as long as it takes `expect` frees to return, and 200 ms more. Returns
 * the frees that had returned then; the thread is joined. */
static int free_under_lock(int n, int expect)
{
    atomic_store(&freed, 0);
    atomic_store(&go, 0);
    atomic_store(&to_free, n);
    pthread_t th;
    CHECK(pthread_create(&th, NULL, freer, NULL) == 0, "pthread_create");
    hm_large_lock();
    atomic_store(&go, 1);
    wait_freed(expect);
    sleep_ms(200);
    int held = atomic_load(&freed);
    hm_large_unlock();
    pthread_join(th, NULL);
    EXPECT(atomic_load(&freed) == n, "%d of %d frees done", atomic_load(&freed), n);
    return held;
}

static size_t cached_bytes(void)
{
    hakmem_stats_get(&st);
    return st.large_cached_bytes;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    free(malloc(BLOCK));   /* the options read */
    if (HM_PARAM(large_cache_count) < 2 * BLOCKS || HM_PARAM(large_cache_bytes) < ((size_t)256 << 20) ||
        HM_PARAM(purge_delay_ms) < 1000 || HM_PARAM(background)) {
        NOTE("needs the default large cache bounds and purge delay, and HAKMEM_BACKGROUND=0: skipped");
        return test_finish("unit_large_incoming");
    }

    /* 1. the lock held: the first 64 frees return, the 65th waits */
    hakmem_collect(1);
    alloc_blocks(BLOCKS);
    NOTE("%d blocks of %zu KiB allocated", BLOCKS, BLOCK >> 10);
    int held = free_under_lock(BLOCKS, WAITING_MAX);
    NOTE("lock held: %d of %d frees returned", held, BLOCKS);
    EXPECT(held == WAITING_MAX, "with the cache's lock taken %d frees returned (want %d: the incoming list's bound)",
           held, WAITING_MAX);
    size_t cached = cached_bytes();
    EXPECT(cached >= (size_t)BLOCKS * BLOCK, "%zu bytes cached for %d freed blocks of %zu bytes", cached,
           BLOCKS, BLOCK);
    hakmem_collect(1);

    /* 2. all of them left waiting: counted, and unmapped by a forced collect */
    CHECK(cached_bytes() == 0, "hakmem_collect(1) left %zu bytes cached", cached_bytes());
    alloc_blocks(FEW);
    held = free_under_lock(FEW, FEW);
    EXPECT(held == FEW, "with the cache's lock taken %d of %d frees returned", held, FEW);
    cached = cached_bytes();
    long vm_before = vm_kib();
    hakmem_collect(1);
    long fell = vm_before - vm_kib();
    NOTE("%d spans left waiting: %zu KiB cached; hakmem_collect(1): the virtual size fell by %ld KiB", FEW,
         cached >> 10, fell);
    EXPECT(cached >= (size_t)FEW * BLOCK, "%zu bytes cached for %d waiting spans of %zu bytes: not admitted",
           cached, FEW, BLOCK);
    EXPECT(cached_bytes() == 0, "%zu bytes still cached after hakmem_collect(1)", cached_bytes());
    EXPECT(fell >= (long)(FEW * (BLOCK >> 10)), "the virtual size fell by %ld KiB, want >= %zu", fell,
           FEW * (BLOCK >> 10));
    return test_finish("unit_large_incoming");
}
