/* idle_fragments.c -- a fragmented medium heap gives its free blocks' pages
 * back when it goes idle, and on a forced collection.
 *
 * The main thread allocates BLOCKS blocks of SIZE bytes (default 2000 x
 * 24 KiB, every page written) and frees nine in ten of them at random, so
 * that every medium page keeps a few survivors and no unit becomes free:
 * only the pages inside the free blocks can go back. Then:
 *   idle    it sleeps; within IDLE_MS the background thread, purging the idle
 *           heap after the purge delay (CTest sets 100 ms), must bring
 *           hakmem's resident bytes (hakmem_stats_get: mincore) down to the
 *           live bytes + one page per free block (the page that holds its
 *           link and free mark stays) + SLACK;
 *   reuse   every survivor is intact; the freed blocks are allocated again,
 *           written whole and checked (their decommitted pages come back
 *           zeroed, which is no concern of malloc's), and freed;
 *   forced  the same pattern again, then hakmem_collect(1) at once, with no
 *           wait: the same bound right after it, and its answer (bytes
 *           released) at least half of what resident memory fell by;
 *   exited  a thread makes the same pattern and exits, leaving its segments
 *           (and the survivors, which the main thread keeps) abandoned: the
 *           background thread's collector must give back the pages inside
 *           their free blocks once nobody has owned them for the delay --
 *           the same bound within IDLE_MS.
 * Before the free blocks of assigned pages were purged, resident stayed at
 * the full heap (about 10 times the bound). Other allocators keep it all
 * too; under them the phases run (contents checked) and nothing is asserted.
 *
 * Usage: idle_fragments [blocks [size]] */
#include "test_util.h"

#include "../include/hakmem.h"
#include <pthread.h>

#define IDLE_MS 5000
#define SLACK ((size_t)6 << 20)   /* the thread's bin of the class, page tails, headers */
#define KEEP_PER_MILLE 100

static unsigned char **blk;
static uint64_t *seed_of;

static void stamp(unsigned char *p, size_t n, uint64_t seed)
{
    pat_fill(p, 16, seed);
    for (size_t i = 4096; i + 16 < n; i += 4096)
        p[i] = (unsigned char)(seed >> (i >> 12 & 31));
    pat_fill(p + n - 16, 16, seed ^ 0x5a5a);
}

static int intact(const unsigned char *p, size_t n, uint64_t seed)
{
    if (pat_check(p, 16, seed) != (size_t)-1)
        return 0;
    for (size_t i = 4096; i + 16 < n; i += 4096)
        if (p[i] != (unsigned char)(seed >> (i >> 12 & 31)))
            return 0;
    return pat_check(p + n - 16, 16, seed ^ 0x5a5a) == (size_t)-1;
}

/* Allocate all, free nine in ten at random; returns the survivors. */
static size_t fragment(size_t blocks, size_t size, uint64_t *rng)
{
    for (size_t i = 0; i < blocks; i++) {
        blk[i] = malloc(size);
        CHECK(blk[i], "malloc(%zu) #%zu", size, i);
        seed_of[i] = rng_next(rng);
        memset(blk[i], 0x11, size);   /* every page resident */
        stamp(blk[i], size, seed_of[i]);
    }
    size_t kept = 0;
    for (size_t i = 0; i < blocks; i++) {
        if (rng_next(rng) % 1000 < KEEP_PER_MILLE) {
            kept++;
            continue;
        }
        free(blk[i]);
        blk[i] = NULL;
    }
    return kept;
}

static size_t bound(size_t blocks, size_t kept, size_t size)
{
    return kept * size + (blocks - kept) * 4096 + SLACK;
}

static void check_survivors(size_t blocks, size_t size, const char *phase)
{
    for (size_t i = 0; i < blocks; i++)
        if (blk[i])
            EXPECT(intact(blk[i], size, seed_of[i]), "%s: survivor %zu changed", phase, i);
}

/* Allocate the freed slots again, write and check them whole, then free all. */
static void reuse_and_free(size_t blocks, size_t size, uint64_t *rng)
{
    unsigned char *again = calloc(blocks, 1);
    CHECK(again, "bookkeeping");
    for (size_t i = 0; i < blocks; i++) {
        if (blk[i])
            continue;
        blk[i] = malloc(size);
        CHECK(blk[i], "malloc(%zu) again #%zu", size, i);
        seed_of[i] = rng_next(rng);
        pat_fill(blk[i], size, seed_of[i]);
        again[i] = 1;
    }
    for (size_t i = 0; i < blocks; i++) {
        if (again[i])
            EXPECT(pat_check(blk[i], size, seed_of[i]) == (size_t)-1, "reuse: block %zu changed", i);
        else
            EXPECT(intact(blk[i], size, seed_of[i]), "reuse: survivor %zu changed", i);
        free(blk[i]);
        blk[i] = NULL;
    }
    free(again);
}

/* Wait until resident <= limit (at most IDLE_MS); the last figures in *st. */
static long wait_resident(void (*stats_get)(hakmem_stats *), hakmem_stats *st, size_t limit)
{
    long waited = 0;
    stats_get(st);
    while (st->resident > limit && waited < IDLE_MS) {
        usleep(50 * 1000);
        waited += 50;
        stats_get(st);
    }
    return waited;
}

struct job {
    size_t blocks, size, kept;
    uint64_t *rng;
};

static void *exiting_thread(void *arg)
{
    struct job *j = arg;
    j->kept = fragment(j->blocks, j->size, j->rng);
    return NULL;
}

int main(int argc, char **argv)
{
    size_t blocks = argc > 1 ? strtoul(argv[1], NULL, 0) : 2000;
    size_t size = argc > 2 ? strtoul(argv[2], NULL, 0) : 24576;
    CHECK(blocks >= 100 && size >= 8192 && size <= 65536, "blocks >= 100, size 8-64 KiB");
    hk_require_if_expected("idle_fragments");
    void (*stats_get)(hakmem_stats *) = NULL;
    size_t (*collect)(int) = NULL;
    if (hk_active()) {
        *(void **)&stats_get = dlsym(RTLD_DEFAULT, "hakmem_stats_get");
        *(void **)&collect = dlsym(RTLD_DEFAULT, "hakmem_collect");
        CHECK(stats_get && collect, "hakmem_stats_get / hakmem_collect do not resolve");
    } else {
        NOTE("hakmem not loaded: the phases run, resident memory is not checked");
    }
    blk = calloc(blocks, sizeof *blk);
    seed_of = calloc(blocks, sizeof *seed_of);
    CHECK(blk && seed_of, "bookkeeping");
    uint64_t rng = 0x1d1e5eedull;

    /* idle */
    size_t kept = fragment(blocks, size, &rng);
    hakmem_stats st;
    if (stats_get) {
        size_t limit = bound(blocks, kept, size);
        stats_get(&st);
        size_t before = st.resident;
        long waited = wait_resident(stats_get, &st, limit);
        NOTE("idle: %zu of %zu blocks of %zu B live (%.1f MiB); resident %.1f MiB after the "
             "frees, %.1f MiB after %ld ms idle (bound %.1f MiB)",
             kept, blocks, size, kept * (double)size / 1048576, before / 1048576.0,
             st.resident / 1048576.0, waited, limit / 1048576.0);
        EXPECT(st.resident <= limit, "idle: %zu bytes resident after %d ms, bound %zu",
               st.resident, IDLE_MS, limit);
    }
    check_survivors(blocks, size, "idle");

    /* reuse */
    reuse_and_free(blocks, size, &rng);

    /* forced */
    kept = fragment(blocks, size, &rng);
    if (collect) {
        size_t limit = bound(blocks, kept, size);
        stats_get(&st);
        size_t before = st.resident;
        size_t said = collect(1);
        stats_get(&st);
        NOTE("forced: resident %.1f MiB before hakmem_collect(1), %.1f MiB after (bound %.1f MiB); "
             "it says it released %.1f MiB",
             before / 1048576.0, st.resident / 1048576.0, limit / 1048576.0, said / 1048576.0);
        /* Its answer counts the pages inside free blocks too. */
        EXPECT(st.resident >= before || said >= (before - st.resident) / 2,
               "forced: hakmem_collect(1) says %zu bytes released, resident fell by %zu",
               said, before - st.resident);
        EXPECT(st.resident <= limit, "forced: %zu bytes resident after hakmem_collect(1), bound %zu",
               st.resident, limit);
    }
    check_survivors(blocks, size, "forced");
    reuse_and_free(blocks, size, &rng);

    /* exited */
    struct job j = { blocks, size, 0, &rng };
    pthread_t t;
    CHECK(pthread_create(&t, NULL, exiting_thread, &j) == 0, "pthread_create");
    CHECK(pthread_join(t, NULL) == 0, "pthread_join");
    if (stats_get) {
        size_t limit = bound(blocks, j.kept, size);
        long waited = wait_resident(stats_get, &st, limit);
        NOTE("exited: resident %.1f MiB %ld ms after the thread exited (bound %.1f MiB)",
             st.resident / 1048576.0, waited, limit / 1048576.0);
        EXPECT(st.resident <= limit, "exited: %zu bytes resident after %d ms, bound %zu",
               st.resident, IDLE_MS, limit);
    }
    check_survivors(blocks, size, "exited");
    reuse_and_free(blocks, size, &rng);
    free(blk);
    free(seed_of);
    return test_finish("idle_fragments");
}
