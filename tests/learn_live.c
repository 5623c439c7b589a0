/* learn_live.c -- the learning layer in a live process (src/learn/): what
 * it publishes, what it must leave alone, and the allocator's correctness
 * while the parameters change under it.
 *
 * Usage: learn_live MODE   (CTest runs one mode per test, under LD_PRELOAD
 * of hakmem, with the HAKMEM_* environment the mode names; each mode checks
 * that it got that environment)
 *   observe  HAKMEM_LEARN=observe HAKMEM_LEARN_EPOCH_MS=10 HAKMEM_LEARN_LOG=F:
 *            two threads make the 256 B bins thrash (batches of 400 blocks
 *            malloc'd then freed) and cycle 1-4 MiB blocks for 1.5 s; the
 *            learner ran (> 10 epochs), the log has its header and one
 *            well-formed "observe" row per epoch (> 10), and every option
 *            the learner can own kept its default at each of ~300 samples,
 *            as did the workers' 256 B cache capacity (no cap_shift)
 *   on       the same with HAKMEM_LEARN=on and HAKMEM_PURGE_DELAY_MS=777
 *            (the user's): some owned option changed during the run, every
 *            sampled value is one the learner can publish, the purge delay
 *            stayed 777 at every sample, and SS_CACHE_MAX, set to 5 with
 *            hakmem_option_set half-way, stayed 5; then HAKMEM_LEARN set to
 *            off: every owned option is back at its default within 3 s,
 *            the user's two at the user's values
 *   stress   HAKMEM_LEARN=on HAKMEM_LEARN_EPOCH_MS=10 (log optional): four
 *            threads at a time for 2 s malloc/realloc/free tiny, medium and
 *            large blocks, each block's pattern checked before it is freed
 *            or reallocated, blocks passed between threads (remote frees and
 *            reallocs), threads exiting (after 1000-6000 operations or
 *            0.1-0.6 s) and new ones starting in their place; a fork() in
 *            the middle whose child allocates and verifies on 2 threads, runs
 *            its own learner, and exits 0. The parameters must have changed
 *            during the run (so that it really ran under changing ones).
 *   exit     re-executes itself 10 times (HAKMEM_LEARN=on, epoch 10 ms, a
 *            log): each child exit()s from main while 3 threads allocate, at
 *            a different point of the learner's life (as its thread starts,
 *            in or after its first epoch, which calibrates, or after 2-20
 *            epochs at different offsets into the 10 ms, the log open);
 *            every child must exit with status 0, and those that waited for
 *            3 epochs or more leave a log with a header and a row for each
 *            epoch but the first.
 *   fault_arm  HAKMEM_LEARN=on, epoch 10 ms, UCB1 off (the default): once
 *            the learner ran 3 epochs (two threads thrash as above), the
 *            purge delay and the segment cache are the default arm scaled
 *            to the fault cost: 100-1000 ms, and the cache 16 x delay / 1 s
 *            within 8-16 (hm_purge_arm_for_faults); with
 *            HAKMEM_PURGE_DELAY_MS=500 (the user's: argument "user") the
 *            delay stays 500 and the cache at its static 16
 * Every mode first checks that hakmem serves this process's memory.
 * learn_live_prefixed (HK_PREFIXED: the prefixed API, which
 * scripts/sanitize.sh runs under each sanitizer) runs the stress mode; under
 * ThreadSanitizer without the fork (a child that starts threads after a
 * multi-threaded fork dies there by design, as fork_mt's does).
 */
#include "test_util.h"
#include "l2_common.h"

#include "../include/hakmem.h"
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/wait.h>

#if defined(__SANITIZE_THREAD__)
#define HK_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define HK_TSAN 1
#endif
#endif
#ifndef HK_TSAN
#define HK_TSAN 0
#endif

typedef void (*stats_fn)(hakmem_stats *);
typedef int (*option_get_fn)(const char *, long long *);
typedef int (*option_set_fn)(const char *, long long);
static stats_fn stats_get;
static option_get_fn option_get;
static option_set_fn hakmem_option_set_;

static void require_env(const char *name, const char *want)
{
    const char *v = getenv(name);
    CHECK(v && !strcmp(v, want), "this mode runs with %s=%s (have %s)", name, want, v ? v : "(unset)");
}

static uint64_t learn_runs(void)
{
    static hakmem_stats st;   /* 20 KiB: off the stack; main thread only */
    stats_get(&st);
    return st.background.runs[HAKMEM_BG_LEARN];
}

/* ---- the options the learner owns -------------------------------------------------------- */
enum { O_PURGE, O_SS_CACHE, O_LARGE, O_REFILL, O_L2_BATCH, O_CARVE, O_KEEP, O_HUGE, N_OWNED };
static const char *const owned[N_OWNED] = {"PURGE_DELAY_MS",     "SS_CACHE_MAX",   "LARGE_CACHE_BYTES",
                                           "REFILL_BATCH_BYTES", "L2_BATCH_BYTES", "L2_CARVE_MAX",
                                           "HEAP_KEEP_EMPTY",    "HUGE_PAGES"};
/* their static defaults (src/options.c) */
static const long long owned_default[N_OWNED] = {1000, 16, 256ll << 20, 8192, 131072, 16, 1, 0};

static void read_owned(long long *v)
{
    for (int i = 0; i < N_OWNED; i++)
        CHECK(option_get(owned[i], &v[i]) == 0, "hakmem_option_get(%s) failed", owned[i]);
}

static int in_set(long long v, const long long *set, int n)
{
    for (int i = 0; i < n; i++)
        if (set[i] == v)
            return 1;
    return 0;
}

/* Is v a value the learner can publish for option i (its arms, its
 * strategies, ACE's large cache: a power of two of MiB, 64 MiB .. 4 GiB)? */
static int publishable(int i, long long v)
{
    static const long long purge[] = {50, 250, 1000, 4000, 15000}, ss[] = {4, 8, 16, 32, 64},
                           refill[] = {2048, 4096, 8192, 16384, 32768},
                           l2b[] = {32768, 65536, 131072, 262144, 524288},
                           carve[] = {4, 8, 16, 32, 64, 128}, keep[] = {0, 1, 2, 4};
    switch (i) {
    /* ... or, while UCB1 is off, the default arm scaled to the fault cost:
     * 100-1000 ms, 8-16 segments (hm_purge_arm_for_faults) */
    case O_PURGE: return in_set(v, purge, 5) || (v >= 100 && v <= 1000);
    case O_SS_CACHE: return in_set(v, ss, 5) || (v >= 8 && v <= 16);
    case O_LARGE: {
        long long mb = v >> 20;
        return (v & ((1 << 20) - 1)) == 0 && mb >= 64 && mb <= 4096 && (mb & (mb - 1)) == 0;
    }
    case O_REFILL: return in_set(v, refill, 5);
    case O_L2_BATCH: return in_set(v, l2b, 5);
    case O_CARVE: return in_set(v, carve, 6);
    case O_KEEP: return in_set(v, keep, 4);
    case O_HUGE: return v >= 0 && v <= 7 && v != 4;   /* 4 (a trial of nothing) is never published */
    }
    return 0;
}

/* Samples of the owned options taken by the main thread while workers run. */
typedef struct sampler {
    long long last[N_OWNED];
    long samples, transitions, changed[N_OWNED], bad[N_OWNED];
    int user[N_OWNED];            /* set by the user: it must stay ... */
    long long user_value[N_OWNED];/* ... at this value */
    long user_moved[N_OWNED];
    int must_stay_default;   /* observe: every option keeps its default */
    long not_default[N_OWNED];
} sampler;

static void sample(sampler *s)
{
    long long v[N_OWNED];
    read_owned(v);
    for (int i = 0; i < N_OWNED; i++) {
        if (s->samples && v[i] != s->last[i] && !s->user[i]) {   /* the learner's change */
            s->transitions++;
            s->changed[i]++;
        }
        if (s->must_stay_default && v[i] != owned_default[i] && s->not_default[i]++ == 0)
            EXPECT(0, "observe: %s is %lld, its default is %lld (sample %ld)", owned[i], v[i],
                   owned_default[i], s->samples);
        if (s->user[i]) {
            if (v[i] != s->user_value[i] && s->user_moved[i]++ == 0)
                EXPECT(0, "%s set by the user to %lld is %lld (sample %ld)", owned[i],
                       s->user_value[i], v[i], s->samples);
        } else if (!publishable(i, v[i]) && s->bad[i]++ == 0) {
            EXPECT(0, "%s is %lld: not a value the learner publishes", owned[i], v[i]);
        }
        s->last[i] = v[i];
    }
    s->samples++;
}

static void sampler_note(const sampler *s, const char *what)
{
    NOTE("%s: %ld samples, %ld changes (purge %ld, ss_cache %ld, large %ld, refill %ld, l2_batch "
         "%ld, carve %ld, keep %ld, huge pages %ld)",
         what, s->samples, s->transitions, s->changed[O_PURGE], s->changed[O_SS_CACHE],
         s->changed[O_LARGE], s->changed[O_REFILL], s->changed[O_L2_BATCH], s->changed[O_CARVE],
         s->changed[O_KEEP], s->changed[O_HUGE]);
}

/* ---- the learning log ------------------------------------------------------------------------ */
/* The log's path: HAKMEM_LEARN_LOG with %p made the pid (as the learner
 * does); "" when unset. */
static void log_path(char *out, size_t cap, const char *pattern, long pid)
{
    size_t n = 0;
    for (const char *p = pattern; p && *p && n + 24 < cap; p++) {
        if (p[0] == '%' && p[1] == 'p') {
            n += (size_t)snprintf(out + n, cap - n, "%ld", pid);
            p++;
        } else {
            out[n++] = *p;
        }
    }
    out[n] = 0;
}

static char log_buf[4 << 20];

/* Reads the log; checks the header and that every row is well formed, of
 * mode `mode`, and numbered 1, 2, 3, ...; returns the number of rows (-1:
 * no file). An empty file has no rows: a process that exit()s while its
 * learner opens the log (mode exit) ends it between the open and the
 * header's write. */
static long read_log(const char *path, const char *mode)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t n = 0;
    ssize_t r;
    while (n < sizeof log_buf - 1 && (r = read(fd, log_buf + n, sizeof log_buf - 1 - n)) > 0)
        n += (size_t)r;
    close(fd);
    log_buf[n] = 0;
    if (n == 0)
        return 0;
    EXPECT(!strncmp(log_buf, "t_ms,epoch,mode,", 16), "%s: no header (starts \"%.40s\")", path,
           log_buf);
    const char *nl = strchr(log_buf, '\n');
    if (!nl)
        return 0;
    int fields = 1;
    for (const char *p = log_buf; p < nl; p++)
        fields += *p == ',';
    EXPECT(strstr(log_buf, ",elo_default,") || strstr(log_buf, ",elo_default\n"),
           "%s: the header names no ELO rating", path);
    long rows = 0, bad = 0;
    for (const char *l = nl + 1; *l;) {
        const char *e = strchr(l, '\n');
        if (!e) {
            EXPECT(0, "%s: row %ld is cut short: \"%.60s\"", path, rows + 1, l);
            break;
        }
        int f = 1;
        for (const char *p = l; p < e; p++)
            f += *p == ',';
        unsigned long long t, epoch;
        char m[16] = "";
        int ok = sscanf(l, "%llu,%llu,%15[a-z],", &t, &epoch, m) == 3;
        rows++;
        if ((!ok || f != fields || strcmp(m, mode) || epoch != (unsigned long long)rows) && bad++ < 3)
            EXPECT(0, "%s: row %ld (%d fields, header %d, epoch %llu, mode %s): \"%.80s\"", path,
                   rows, f, fields, ok ? epoch : 0ull, m, l);
        l = e + 1;
    }
    return rows;
}

/* ---- the thrashing workload (observe, on) ------------------------------------------------------ */
/* Batches of 1600 blocks of 256 B: three times what a 256 B bin grows to by
 * itself on overflow (SLL_GROW_BYTES, 128 KiB), so that it thrashes until
 * ACE grows it further. */
enum { BATCH = 1600, BATCH_SIZE = 256 };
static atomic_int stop;
static atomic_long batches;
static int class_256 = -1;
static atomic_long cap_samples, cap_other;   /* observe: the workers' 256 B capacity */
static atomic_uint cap_max, cap_first;

static void *thrash_worker(void *arg)
{
    uint64_t rng = (uintptr_t)arg;
    void **b = xmap(BATCH * sizeof *b);
    hakmem_stats *st = xmap(sizeof *st);
    long n = 0;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        for (int i = 0; i < BATCH; i++) {
            b[i] = malloc(BATCH_SIZE);
            CHECK(b[i], "malloc(%d)", BATCH_SIZE);
            ((uint64_t *)b[i])[0] = (uintptr_t)b[i] ^ 0x5a5a;
            ((uint64_t *)b[i])[BATCH_SIZE / 8 - 1] = ~(uintptr_t)b[i];
        }
        for (int i = 0; i < BATCH; i++) {
            CHECK(((uint64_t *)b[i])[0] == ((uintptr_t)b[i] ^ 0x5a5a) &&
                      ((uint64_t *)b[i])[BATCH_SIZE / 8 - 1] == ~(uintptr_t)b[i],
                  "256 B block %p corrupted", b[i]);
            free(b[i]);
        }
        if (++n % 64 == 0) {   /* large blocks: the large cache's hits, misses, drops */
            void *big[3];
            size_t sz[3];
            for (int i = 0; i < 3; i++) {
                sz[i] = rng_range(&rng, 1, 4) << 20;
                big[i] = malloc(sz[i]);
                CHECK(big[i], "malloc(%zu)", sz[i]);
                l2_fill(big[i], sz[i], sz[i] + (uint64_t)i);
            }
            for (int i = 0; i < 3; i++) {
                CHECK(l2_check(big[i], sz[i], sz[i] + (uint64_t)i) == (size_t)-1,
                      "large block %p corrupted", big[i]);
                free(big[i]);
            }
        }
        if (n % 256 == 0 && class_256 >= 0) {   /* this thread's own cache capacity */
            stats_get(st);
            unsigned cap = st->classes[class_256].cache_cap;
            unsigned first = 0;
            atomic_compare_exchange_strong(&cap_first, &first, cap);
            if (cap != atomic_load(&cap_first))
                atomic_fetch_add(&cap_other, 1);
            unsigned m = atomic_load(&cap_max);
            while (cap > m && !atomic_compare_exchange_weak(&cap_max, &m, cap))
                ;
            atomic_fetch_add(&cap_samples, 1);
        }
    }
    atomic_fetch_add(&batches, n);
    xunmap(st, sizeof *st);
    xunmap(b, BATCH * sizeof *b);
    return NULL;
}

/* observe and on: the workload for 1.5 s, sampling the options every 5 ms. */
static int mode_thrash(int on)
{
    require_env("HAKMEM_LEARN", on ? "on" : "observe");
    require_env("HAKMEM_LEARN_EPOCH_MS", "10");
    if (on)
        require_env("HAKMEM_PURGE_DELAY_MS", "777");
    const char *pattern = getenv("HAKMEM_LEARN_LOG");
    CHECK(pattern && *pattern, "this mode runs with HAKMEM_LEARN_LOG set");
    char path[4096];
    log_path(path, sizeof path, pattern, (long)getpid());
    unlink(path);   /* a log left by an earlier run would be appended to */

    sampler s;
    memset(&s, 0, sizeof s);
    s.must_stay_default = !on;
    s.user[O_PURGE] = on;
    s.user_value[O_PURGE] = 777;
    long long v[N_OWNED];
    read_owned(v);   /* before any thread: the learner has not run */
    for (int i = 0; i < N_OWNED; i++)
        CHECK(v[i] == (on && i == O_PURGE ? 777 : owned_default[i]), "%s starts at %lld", owned[i],
              v[i]);

    static hakmem_stats before, after;
    stats_get(&before);
    pthread_t w[2];
    for (int i = 0; i < 2; i++)
        w[i] = xspawn(thrash_worker, (void *)(uintptr_t)(i + 1));
    uint64_t t0 = now_ms();
    while (now_ms() - t0 < 1500) {
        if (on && !s.user[O_SS_CACHE] && now_ms() - t0 >= 750) {
            /* the user sets an owned option while the learner runs: from
             * now on it is the user's */
            CHECK(hakmem_option_set_("SS_CACHE_MAX", 5) == 0, "hakmem_option_set(SS_CACHE_MAX, 5)");
            s.user[O_SS_CACHE] = 1;
            s.user_value[O_SS_CACHE] = 5;
        }
        sample(&s);
        usleep(5000);
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < 2; i++)
        xjoin(w[i]);
    sample(&s);
    stats_get(&after);
    const hakmem_class_stats *b0 = &before.classes[class_256], *b1 = &after.classes[class_256];
    uint64_t runs = after.background.runs[HAKMEM_BG_LEARN];
    long rows = read_log(path, on ? "on" : "observe");
    NOTE("256 B class: %llu blocks allocated, %llu refills, %llu flushes during the run",
         (unsigned long long)(b1->allocated - b0->allocated),
         (unsigned long long)(b1->refills - b0->refills), (unsigned long long)(b1->flushes - b0->flushes));
    /* hakmem served the workload, and its bins thrashed as meant. Hundreds
     * of refills and flushes, not a thousand: with the learner on, ACE grows
     * the class and it flushes less, and a loaded machine runs fewer rounds
     * in the 1.5 s (968 flushes seen under ctest -j2). */
    EXPECT(b1->allocated - b0->allocated > 10000 && b1->refills - b0->refills > 200 &&
               b1->flushes - b0->flushes > 200,
           "the 256 B bins did not thrash (allocated %llu, refills %llu, flushes %llu)",
           (unsigned long long)(b1->allocated - b0->allocated),
           (unsigned long long)(b1->refills - b0->refills), (unsigned long long)(b1->flushes - b0->flushes));
    sampler_note(&s, on ? "on" : "observe");
    NOTE("%ld batches of %d x %d B, %llu learner epochs, %ld log rows; 256 B cache capacity: "
         "first %u, max %u, %ld of %ld samples differ",
         (long)atomic_load(&batches), BATCH, BATCH_SIZE, (unsigned long long)runs, rows,
         atomic_load(&cap_first), atomic_load(&cap_max), (long)atomic_load(&cap_other),
         (long)atomic_load(&cap_samples));
    EXPECT(atomic_load(&batches) > 100, "the workload ran only %ld batches", (long)atomic_load(&batches));
    EXPECT(runs > 10, "the learner ran %llu epochs in 1.5 s at 10 ms", (unsigned long long)runs);
    EXPECT(rows > 10, "the log %s has %ld rows", path, rows);
    EXPECT(rows + 1 >= (long)runs, "%llu epochs ran (the first only takes the baseline) but the log "
                                   "has %ld rows", (unsigned long long)runs, rows);
    EXPECT(s.samples > 100, "only %ld samples", s.samples);
    if (on) {
        long moved = 0;
        for (int i = 0; i < N_OWNED; i++)
            moved += s.changed[i];
        EXPECT(moved > 0, "HAKMEM_LEARN=on changed no option it owns in %ld samples", s.samples);
        /* the learner switched off: everything it owns back to the static
         * value, the user's options as the user set them */
        CHECK(hakmem_option_set_("LEARN", 0) == 0, "hakmem_option_set(LEARN, 0)");
        uint64_t t1 = now_ms();
        long long v2[N_OWNED];
        int back = 0;
        while (!back && now_ms() - t1 < 3000) {
            void *p = malloc((size_t)5 << 20);   /* activity: the background thread stays awake */
            free(p);
            usleep(5000);
            read_owned(v2);
            back = 1;
            for (int i = 0; i < N_OWNED; i++)
                back &= v2[i] == (s.user[i] ? s.user_value[i] : owned_default[i]);
        }
        for (int i = 0; i < N_OWNED; i++)
            EXPECT(v2[i] == (s.user[i] ? s.user_value[i] : owned_default[i]),
                   "LEARN switched off: %s is %lld %ld ms later, want %lld", owned[i], v2[i],
                   (long)(now_ms() - t1), s.user[i] ? s.user_value[i] : owned_default[i]);
    } else {
        EXPECT(s.transitions == 0, "observe: the options changed %ld times", s.transitions);
        EXPECT(atomic_load(&cap_samples) > 0, "no capacity sample");
        EXPECT(atomic_load(&cap_other) == 0,
               "observe: a worker's 256 B cache capacity changed (first %u, max %u)",
               atomic_load(&cap_first), atomic_load(&cap_max));
    }
    if (!test_failures_)
        unlink(path);
    return test_finish(on ? "learn_live on" : "learn_live observe");
}

/* ---- stress --------------------------------------------------------------------------------- */
enum { SLOTS = 256, LIVE_WORKERS = 4, MAILBOX = 2048 };
static bq mailbox;   /* blocks on their way to another thread */
static atomic_long st_ops, st_remote, st_reallocs, st_threads;

static size_t stress_size(uint64_t *rng)
{
    unsigned r = (unsigned)rng_range(rng, 0, 99);
    return r < 60 ? rng_range(rng, 1, 1024)
         : r < 98 ? rng_range(rng, 1025, 262144)
                  : rng_range(rng, 262145, (size_t)1 << 20);
}

static void verify(const bq_item *it, const char *when)
{
    size_t bad = l2_check(it->p, it->n, it->seed);
    CHECK(bad == (size_t)-1, "block %p (%zu B) corrupted at byte %zu %s", it->p, it->n, bad, when);
}

typedef struct worker {
    pthread_t tid;
    uint64_t seed;
    long ops;           /* it exits after this many operations ... */
    uint64_t until_ms;  /* ... or at this time, whichever comes first */
    atomic_int done;
} worker;

static void *stress_worker(void *arg)
{
    worker *w = arg;
    uint64_t rng = w->seed;
    bq_item *slot = xmap(SLOTS * sizeof *slot);
    long ops = 0, remote = 0, reallocs = 0;
    for (; ops < w->ops && !atomic_load_explicit(&stop, memory_order_relaxed); ops++) {
        if (ops % 64 == 0 && now_ms() >= w->until_ms)
            break;
        bq_item *it = &slot[rng_range(&rng, 0, SLOTS - 1)];
        unsigned what = (unsigned)rng_range(&rng, 0, 99);
        if (it->p && what < 15) {   /* realloc, prefix kept */
            verify(it, "before realloc");
            size_t n = stress_size(&rng);
            void *q = realloc(it->p, n);
            CHECK(q, "realloc(%zu)", n);
            size_t keep = n < it->n ? n : it->n;
            size_t bad = l2_check_prefix(q, it->n, keep, it->seed);
            CHECK(bad == (size_t)-1, "realloc %zu -> %zu lost byte %zu", it->n, n, bad);
            it->p = q;
            it->n = n;
            it->seed = rng_next(&rng);
            l2_fill(q, n, it->seed);
            reallocs++;
            continue;
        }
        if (it->p) {
            verify(it, "before free");
            if (what < 25 && bq_try_push(&mailbox, *it))   /* freed by another thread */
                it->p = NULL;
            else {
                free(it->p);
                it->p = NULL;
            }
        }
        bq_item in;
        if (what >= 85 && bq_try_pop(&mailbox, &in)) {   /* another thread's block */
            verify(&in, "received from another thread");
            if (what >= 93) {   /* keep it, reallocated */
                size_t n = stress_size(&rng);
                void *q = realloc(in.p, n);
                CHECK(q, "realloc(%zu) of a remote block", n);
                size_t bad = l2_check_prefix(q, in.n, n < in.n ? n : in.n, in.seed);
                CHECK(bad == (size_t)-1, "remote realloc %zu -> %zu lost byte %zu", in.n, n, bad);
                in.p = q;
                in.n = n;
                in.seed = rng_next(&rng);
                l2_fill(q, n, in.seed);
                *it = in;
                reallocs++;
                remote++;
                continue;
            }
            free(in.p);
            remote++;
        }
        it->n = stress_size(&rng);
        it->seed = rng_next(&rng);
        it->p = malloc(it->n);
        CHECK(it->p, "malloc(%zu)", it->n);
        l2_fill(it->p, it->n, it->seed);
    }
    /* exiting: half to the mailbox (freed by threads still running, into
     * this exited thread's segments), the rest here */
    for (unsigned i = 0; i < SLOTS; i++)
        if (slot[i].p) {
            verify(&slot[i], "at thread exit");
            if (!(i & 1) || !bq_try_push(&mailbox, slot[i]))
                free(slot[i].p);
        }
    xunmap(slot, SLOTS * sizeof *slot);
    atomic_fetch_add(&st_ops, ops);
    atomic_fetch_add(&st_remote, remote);
    atomic_fetch_add(&st_reallocs, reallocs);
    atomic_store(&w->done, 1);
    return NULL;
}

static void spawn(worker *w, uint64_t *rng)
{
    w->seed = rng_next(rng);
    w->ops = (long)rng_range(rng, 1000, 6000);
    w->until_ms = now_ms() + rng_range(rng, 100, 600);
    atomic_store(&w->done, 0);
    w->tid = xspawn(stress_worker, w);
    atomic_fetch_add(&st_threads, 1);
}

/* The forked child: two threads allocate and verify; its own learner runs. */
static void *child_worker(void *arg)
{
    uint64_t rng = (uintptr_t)arg;
    bq_item *slot = xmap(128 * sizeof *slot);
    for (int op = 0; op < 20000; op++) {
        bq_item *it = &slot[rng_range(&rng, 0, 127)];
        if (it->p) {
            if (l2_check(it->p, it->n, it->seed) != (size_t)-1)
                _exit(6);
            free(it->p);
        }
        it->n = stress_size(&rng);
        it->seed = rng_next(&rng);
        it->p = malloc(it->n);
        if (!it->p)
            _exit(7);
        l2_fill(it->p, it->n, it->seed);
    }
    for (int i = 0; i < 128; i++)
        if (slot[i].p) {
            if (l2_check(slot[i].p, slot[i].n, slot[i].seed) != (size_t)-1)
                _exit(6);
            free(slot[i].p);
        }
    return NULL;
}

static void fork_child(void)
{
    alarm(30);
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        if (pthread_create(&t[i], NULL, child_worker, (void *)(uintptr_t)(900 + i)) != 0)
            _exit(8);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    /* the child's learner: started on its growth, from its own baseline */
    static hakmem_stats st;
    uint64_t t0 = now_ms();
    for (;;) {
        stats_get(&st);
        if (st.background.runs[HAKMEM_BG_LEARN] >= 3)
            break;
        if (now_ms() - t0 > 3000)
            _exit(9);
        void *p = malloc(300);   /* keep it busy */
        free(p);
        usleep(2000);
    }
    _exit(0);
}

static int mode_stress(void)
{
    require_env("HAKMEM_LEARN", "on");
    require_env("HAKMEM_LEARN_EPOCH_MS", "10");
    const char *pattern = getenv("HAKMEM_LEARN_LOG");
    char path[4096] = "", child_path[4096] = "";
    if (pattern && *pattern) {
        log_path(path, sizeof path, pattern, (long)getpid());
        unlink(path);
    }
    sampler s;
    memset(&s, 0, sizeof s);
    bq_init(&mailbox, MAILBOX);
    uint64_t rng = 0x1ea4ull;
    worker *w = xmap(LIVE_WORKERS * sizeof *w);
    for (int i = 0; i < LIVE_WORKERS; i++)
        spawn(&w[i], &rng);
    uint64_t t0 = now_ms();
    pid_t child = -1;
    while (now_ms() - t0 < 2000) {
        for (int i = 0; i < LIVE_WORKERS; i++)
            if (atomic_load(&w[i].done)) {   /* churn: a new thread in its place */
                xjoin(w[i].tid);
                spawn(&w[i], &rng);
            }
        if (!HK_TSAN && child < 0 && now_ms() - t0 >= 1000) {   /* fork with the workers and the learner busy */
            fflush(stdout);
            fflush(stderr);
            child = fork();
            CHECK(child >= 0, "fork: %s", strerror(errno));
            if (child == 0)
                fork_child();
        }
        sample(&s);
        usleep(2000);
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < LIVE_WORKERS; i++)
        xjoin(w[i].tid);
    bq_item it;
    long drained = 0;
    while (bq_try_pop(&mailbox, &it)) {
        verify(&it, "left in the mailbox");
        free(it.p);
        drained++;
    }
    sample(&s);
    if (HK_TSAN) {
        NOTE("TSan build: no fork (a child that starts threads after a multi-threaded fork dies there)");
    } else {
        int status = 0;
        CHECK(waitpid(child, &status, 0) == child, "waitpid: %s", strerror(errno));
        EXPECT(WIFEXITED(status) && WEXITSTATUS(status) == 0,
               "the forked child: status %#x (exit 6: corrupted block, 7: malloc failed, 8: "
               "pthread_create, 9: its learner did not run 3 epochs in 3 s, SIGALRM: hung)",
               status);
    }
    uint64_t runs = learn_runs();
    sampler_note(&s, "stress");
    NOTE("%ld ops by %ld threads, %ld blocks passed between threads, %ld reallocs, %ld drained "
         "at the end, %llu learner epochs",
         (long)atomic_load(&st_ops), (long)atomic_load(&st_threads), (long)atomic_load(&st_remote),
         (long)atomic_load(&st_reallocs), drained, (unsigned long long)runs);
    EXPECT(atomic_load(&st_threads) > LIVE_WORKERS, "no thread exited and was replaced (%ld threads)",
           (long)atomic_load(&st_threads));
    EXPECT(atomic_load(&st_remote) > 100, "only %ld blocks passed between threads",
           (long)atomic_load(&st_remote));
    EXPECT(runs > 20, "the learner ran %llu epochs in 2 s at 10 ms", (unsigned long long)runs);
    EXPECT(s.transitions >= 3, "the owned options changed %ld times in 2 s: the stress did not run "
                               "under changing parameters", s.transitions);
    if (path[0]) {
        long rows = read_log(path, "on");
        EXPECT(rows > 20, "the log %s has %ld rows", path, rows);
        log_path(child_path, sizeof child_path, pattern, (long)child);
        if (child > 0 && strcmp(child_path, path)) {   /* %p: the child wrote its own */
            long crows = read_log(child_path, "on");
            EXPECT(crows >= 1, "the child's log %s has %ld rows", child_path, crows);
            unlink(child_path);
        }
        if (!test_failures_)
            unlink(path);
    }
    bq_destroy(&mailbox);
    xunmap(w, LIVE_WORKERS * sizeof *w);
    return test_finish("learn_live stress");
}

/* ---- exit ----------------------------------------------------------------------------------- */
/* The child: exit() once the learner has run `epochs` epochs (0: once the
 * background thread runs, whose first round starts the learner: calibration
 * of its unit costs, the longest epoch), `us` later. */
static int exit_child(long epochs, long us)
{
    alarm(20);
    if (!hk_active())
        return 3;
    /* Tiny, up to medium, up to large blocks */
    static hk_churn churn[3] = {{1, 1024}, {2, 65536}, {3, (size_t)4 << 20}};
    for (int i = 0; i < 3; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, hk_churn_forever, &churn[i]) != 0)
            return 4;
    }
    static hakmem_stats st;
    uint64_t t0 = now_ms();
    for (;;) {
        stats_get(&st);
        if (epochs ? st.background.runs[HAKMEM_BG_LEARN] >= (uint64_t)epochs : st.background.running)
            break;
        if (now_ms() - t0 > 5000)
            return 5;
        usleep(epochs ? 200 : 20);
    }
    if (us)
        usleep((useconds_t)us);
    exit(0);
}

static int mode_exit(const char *self)
{
    char dir[] = "/tmp/learn_live_exit_XXXXXX";
    CHECK(mkdtemp(dir), "mkdtemp: %s", strerror(errno));
    char logvar[256];
    snprintf(logvar, sizeof logvar, "HAKMEM_LEARN_LOG=%s/exit_%%p.csv", dir);
    const char *vars[] = {"HAKMEM_LEARN=on", "HAKMEM_LEARN_EPOCH_MS=10", logvar, NULL};
    /* the point of exit: the learner's first epoch (calibration) or its
     * start, then after a few epochs at different offsets into the 10 ms */
    static const long epochs[] = {0, 0, 1, 2, 3, 5, 8, 12, 16, 20};
    static const long us[] = {0, 150, 0, 1100, 4700, 2300, 9100, 500, 6300, 7700};
    for (int round = 0; round < 10; round++) {
        char e[24], u[24];
        snprintf(e, sizeof e, "%ld", epochs[round]);
        snprintf(u, sizeof u, "%ld", us[round]);
        char *argv[] = {(char *)self, "exit-child", e, u, NULL};
        static char out[8192], err[8192];
        pid_t pid;
        int rc = hk_exec_self(argv, vars, NULL, out, sizeof out, err, sizeof err, &pid);
        EXPECT(rc == 0, "round %d (exit after %ld epochs + %ld us): status %d (3: not hakmem, 5: the "
                        "learner did not run, 128+n: signal n)\nstdout: %s\nstderr: %s",
               round, epochs[round], us[round], rc, out, err);
        char path[512];
        snprintf(path, sizeof path, "%s/exit_%ld.csv", dir, (long)pid);
        long rows = read_log(path, "on");
        if (epochs[round] >= 3)   /* it logged epochs 1 .. runs - 1 before exit */
            EXPECT(rows >= epochs[round] - 1, "round %d: the log %s has %ld rows, want >= %ld", round,
                   path, rows, epochs[round] - 1);
        NOTE("round %d: exit after %ld epochs + %ld us: status %d, %ld log rows", round, epochs[round],
             us[round], rc, rows);
        unlink(path);
    }
    rmdir(dir);
    return test_finish("learn_live exit");
}

/* fault_arm: the purge arm the learner publishes while UCB1 is off. */
static int mode_fault_arm(int user)
{
    require_env("HAKMEM_LEARN", "on");
    require_env("HAKMEM_LEARN_EPOCH_MS", "10");
    if (user)
        require_env("HAKMEM_PURGE_DELAY_MS", "500");
    CHECK(!getenv("HAKMEM_LEARN_UCB") && !getenv("HAKMEM_SS_CACHE_MAX"),
          "this mode runs with UCB1 and the segment cache at their defaults");
    pthread_t w[2];
    for (int i = 0; i < 2; i++)
        w[i] = xspawn(thrash_worker, (void *)(uintptr_t)(i + 1));
    uint64_t t0 = now_ms();
    while (learn_runs() < 3 && now_ms() - t0 < 20000)
        usleep(5000);
    long long delay = -1, cache = -1;
    CHECK(learn_runs() >= 3, "the learner ran %llu epochs in 20 s", (unsigned long long)learn_runs());
    for (int k = 0; k < 20; k++) {   /* 100 ms of samples: the values hold */
        CHECK(option_get("PURGE_DELAY_MS", &delay) == 0 && option_get("SS_CACHE_MAX", &cache) == 0,
              "hakmem_option_get");
        if (user) {
            EXPECT(delay == 500 && cache == 16, "user's delay 500: published %lld ms / %lld", delay, cache);
        } else {
            long long want = delay * 16 / 1000;
            if (want < 8)
                want = 8;
            EXPECT(delay >= 100 && delay <= 1000 && cache == want,
                   "fault arm: %lld ms / %lld segments (want 100-1000 ms, %lld segments)", delay, cache, want);
        }
        usleep(5000);
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < 2; i++)
        xjoin(w[i]);
    NOTE("fault arm%s: %lld ms / %lld segments after %llu epochs", user ? " (user's delay)" : "", delay, cache,
         (unsigned long long)learn_runs());
    return test_finish(user ? "learn_live fault_arm user" : "learn_live fault_arm");
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    stats_get = (stats_fn)dlsym(RTLD_DEFAULT, "hakmem_stats_get");
    option_get = (option_get_fn)dlsym(RTLD_DEFAULT, "hakmem_option_get");
    hakmem_option_set_ = (option_set_fn)dlsym(RTLD_DEFAULT, "hakmem_option_set");
    if (!strcmp(mode, "exit-child") && argc > 3) {
        if (!stats_get)
            return 3;
        return exit_child(strtol(argv[2], NULL, 10), strtol(argv[3], NULL, 10));
    }
    hk_require_if_expected("learn_live");
    CHECK(stats_get && option_get && hakmem_option_set_,
          "hakmem_stats_get / hakmem_option_get / hakmem_option_set do not resolve");
    CHECK(hk_active(), "hakmem does not serve this process's malloc");
    /* hakmem really serves this process's memory: its statistics count the
     * blocks */
    void *probe = malloc(BATCH_SIZE);
    static hakmem_stats s0;
    stats_get(&s0);
    uint64_t served = 0;
    for (int c = 0; c < HAKMEM_NUM_CLASSES; c++) {
        served += s0.classes[c].allocated;
        if (s0.classes[c].block_size == BATCH_SIZE)
            class_256 = c;
    }
    CHECK(served > 0, "hakmem's statistics count no block: it did not serve malloc");
    CHECK(class_256 >= 0, "no 256 B class");
    free(probe);
    if (!strcmp(mode, "observe")) return mode_thrash(0);
    if (!strcmp(mode, "on")) return mode_thrash(1);
    if (!strcmp(mode, "stress")) return mode_stress();
    if (!strcmp(mode, "exit")) return mode_exit(argv[0]);
    if (!strcmp(mode, "fault_arm")) return mode_fault_arm(argc > 2 && !strcmp(argv[2], "user"));
    fprintf(stderr, "usage: learn_live observe | on | stress | exit | fault_arm [user]\n");
    return 2;
}
