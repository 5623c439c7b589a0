/* l2_rss_return.c -- memory of freed medium blocks goes back to the OS.
 *
 * Four phases, each starting from the RSS measured just before it:
 *   local   the main thread allocates ~TOTAL_MIB MiB (default 1024) of medium
 *           blocks of every class (every 4 KiB page written), checks that RSS
 *           rose accordingly, verifies and frees them all itself;
 *   remote  the main thread allocates the same, another thread verifies and
 *           frees them all (remote frees; full pages notify the main thread);
 *   trim    like remote, but the main thread calls malloc_trim(0) at once,
 *           without any activity before (path (b) only);
 *   exited  a thread allocates the same and exits; the main thread verifies
 *           and frees them all (remote frees into abandoned segments);
 * (run in the order local, remote, exited, trim).
 * After the frees, RSS must come back to within SLACK_MIB (64 MiB) of the
 * phase's start:
 *   (a) during up to ACTIVITY_MS (2000 ms) of further small activity of the
 *       main thread (bursts of medium and tiny allocations every 1 ms that
 *       reach the allocator's slow paths, where its periodic purge runs; the
 *       purge delay is 1 s), or, if (a) did not get there,
 *   (b) right after malloc_trim(0).
 * The test reports which path satisfied each phase, and fails if neither
 * did. After malloc_trim, ~64 MiB of new medium blocks must still be
 * allocatable, disjoint and intact.
 *
 * Usage: l2_rss_return [total-MiB]   (default 1024; >= 256)
 */
#include "test_util.h"
#include "l2_common.h"

#include <pthread.h>

#define SLACK_MIB 64
#define ACTIVITY_MS 2000

static size_t total_mib = 1024;
static bq_item *blk;
static size_t nblk;
static int corrupt;

static void alloc_all(uint64_t seed0, const char *phase)
{
    uint64_t rng = 0x55AA0000ull ^ seed0;
    size_t sum = 0;
    nblk = 0;
    while (sum < total_mib << 20) {
        size_t n = l2_random_size(&rng);
        void *p = malloc(n);
        CHECK(p != NULL, "%s: malloc(%zu) returned NULL after %zu MiB", phase,
              n, sum >> 20);
        blk[nblk] = (bq_item){p, n, seed0 + nblk};
        l2_fill(p, n, blk[nblk].seed);   /* writes every 4 KiB page */
        sum += n;
        nblk++;
    }
}

static void free_all(const char *who)
{
    for (size_t i = 0; i < nblk; i++) {
        size_t off = l2_check(blk[i].p, blk[i].n, blk[i].seed);
        if (off != (size_t)-1) {
            if (++corrupt <= 5)
                fprintf(stderr, "l2_rss_return: %s: block %p (%zu bytes) "
                        "corrupted at offset %zu\n", who, blk[i].p, blk[i].n, off);
        }
        free(blk[i].p);
    }
}

static void *remote_freer(void *arg)
{
    free_all(arg);
    return NULL;
}

static void *exiting_allocator(void *arg)
{
    alloc_all(0xE0000000ull, arg);
    return NULL;   /* exit with everything live */
}

/* A little allocation activity, round-robin over the medium classes: each
 * round a burst of 24 blocks of one class (only their first and last bytes
 * written) and a few tiny ones, all freed again, then 1 ms of sleep. Bursts
 * of the larger classes exceed what the thread cache keeps, so the
 * allocator's slow paths -- where its periodic purge runs -- are reached
 * regularly. Returns 1 once RSS <= target, 0 after ACTIVITY_MS. */
static int activity_until(long target_kib, long *rss_out, uint64_t *ms_out)
{
    uint64_t t0 = now_ms();
    void *p[24], *q[8];
    for (unsigned round = 0;; round++) {
        long rss = rss_kib();
        *rss_out = rss;
        *ms_out = now_ms() - t0;
        if (rss <= target_kib)
            return 1;
        if (*ms_out >= ACTIVITY_MS)
            return 0;
        size_t n = l2_class_size[round % (unsigned)l2_nclasses];
        for (int i = 0; i < 24; i++) {
            p[i] = malloc(n);
            CHECK(p[i] != NULL, "activity: malloc(%zu) returned NULL", n);
            memset(p[i], i, 64);
            ((char *)p[i])[n - 1] = (char)i;
        }
        for (int i = 0; i < 8; i++) {
            q[i] = malloc(100);
            CHECK(q[i] != NULL, "activity: malloc(100) returned NULL");
            memset(q[i], i, 100);
        }
        for (int i = 0; i < 24; i++)
            free(p[i]);
        for (int i = 0; i < 8; i++)
            free(q[i]);
        usleep(1000);
    }
}

/* after malloc_trim: new blocks are valid, disjoint and keep their contents */
static void check_after_trim(const char *phase)
{
    static l2_range r[8192];
    static bq_item it[8192];
    uint64_t rng = 0x7219ull;
    size_t sum = 0, n = 0;
    while (sum < (64u << 20) && n < 8192) {
        size_t s = l2_random_size(&rng);
        void *p = malloc(s);
        CHECK(p != NULL, "%s: after malloc_trim: malloc(%zu) returned NULL",
              phase, s);
        size_t u = malloc_usable_size(p);
        CHECK(u >= s, "%s: after malloc_trim: usable size %zu < %zu", phase, u, s);
        it[n] = (bq_item){p, u, 0x77770000ull + n};
        l2_fill(p, u, it[n].seed);
        r[n].lo = (uintptr_t)p;
        r[n].hi = (uintptr_t)p + u;
        sum += s;
        n++;
    }
    EXPECT(l2_check_disjoint(r, n, "after malloc_trim") == 0,
           "%s: blocks allocated after malloc_trim overlap", phase);
    for (size_t i = 0; i < n; i++) {
        size_t off = l2_check(it[i].p, it[i].n, it[i].seed);
        EXPECT(off == (size_t)-1, "%s: after malloc_trim: block %p (%zu bytes) "
               "corrupted at offset %zu", phase, it[i].p, it[i].n, off);
        free(it[i].p);
    }
}

static void phase(const char *name)
{
    long start = rss_kib();
    long target = start + SLACK_MIB * 1024L;
    uint64_t t0 = now_ms();
    int remote = strcmp(name, "remote") == 0 || strcmp(name, "trim") == 0;
    if (strcmp(name, "local") == 0) {
        alloc_all(0x10000000ull, name);
    } else if (remote) {
        alloc_all(0x20000000ull, name);
    } else {
        xjoin(xspawn(exiting_allocator, (void *)name));
    }
    long peak = rss_kib();
    uint64_t t_alloc = now_ms() - t0;
    CHECK(peak - start >= (long)(total_mib * 1024 * 7 / 8),
          "%s: RSS rose only from %ld to %ld KiB after allocating and writing "
          "%zu MiB: the measurement is meaningless", name, start, peak, total_mib);
    if (remote)
        xjoin(xspawn(remote_freer, "remote freer"));
    else
        free_all(name);
    CHECK(!corrupt, "%s: corrupted blocks (see above)", name);
    long after_free = rss_kib();

    long rss = after_free;
    uint64_t ms = 0;
    if (strcmp(name, "trim") != 0 && activity_until(target, &rss, &ms)) {
        printf("l2_rss_return: %-6s: RSS %ld KiB at start, %ld after %zu MiB "
               "(%zu blocks, %llu ms), %ld right after the frees, %ld after "
               "%llu ms of further activity: path (a), within %d MiB\n",
               name, start, peak, total_mib, nblk, (unsigned long long)t_alloc,
               after_free, rss, (unsigned long long)ms, SLACK_MIB);
    } else {
        int trimmed = hk_malloc_trim();
        long after_trim = rss_kib();
        printf("l2_rss_return: %-6s: RSS %ld KiB at start, %ld after %zu MiB "
               "(%zu blocks, %llu ms), %ld right after the frees, %ld after "
               "%llu ms of further activity (not within %d MiB), %ld after "
               "malloc_trim(0) (returned %d): path (b)%s\n",
               name, start, peak, total_mib, nblk, (unsigned long long)t_alloc,
               after_free, rss, (unsigned long long)ms, SLACK_MIB, after_trim,
               trimmed, after_trim <= target ? ", within the limit" : "");
        EXPECT(after_trim <= target,
               "%s: after freeing %zu MiB of medium blocks%s RSS stays at %ld "
               "KiB, %ld KiB above the %ld KiB at the start (limit %d MiB), "
               "after %llu ms of further activity and after malloc_trim(0)",
               name, total_mib, remote ? " in another thread" : "",
               after_trim, after_trim - start, start, SLACK_MIB,
               (unsigned long long)ms);
    }
    /* trim in any case: the next phase starts from a clean state, and
     * allocation must still work after it */
    hk_malloc_trim();
    check_after_trim(name);
    hk_malloc_trim();
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 1)
        total_mib = (size_t)atol(argv[1]);
    CHECK(total_mib >= 256 && total_mib <= 8192,
          "usage: l2_rss_return [total-MiB 256..8192]");
    hk_require_if_expected("l2_rss_return");
    l2_classes_init();
    blk = xmap((total_mib << 20) / L2_MIN_SIZE * sizeof *blk);
    /* warm up: the allocator and stdio are initialised before the baseline */
    free(malloc(2000));
    free(malloc(100));

    phase("local");
    phase("remote");
    phase("exited");
    phase("trim");   /* last: if trim fails, it leaves ~1 GiB behind */
    return test_finish("l2_rss_return");
}
