/* oom.c -- out of memory: every entry point fails cleanly and the process
 * recovers.
 *
 * Each case runs in a forked child under a low RLIMIT_AS (the child's VmSize
 * at the start + 128 MiB). It fills the address space with blocks (1 MiB,
 * then 64 KiB, 1 KiB and 32 bytes, until NULL), then calls every entry point
 * and expects a valid block or NULL with errno ENOMEM (posix_memalign:
 * ENOMEM returned), never a crash; a call that fails must not grow VmSize
 * (no half-made segment or mapping left behind). Large requests, which
 * cannot fit, must fail. Then it frees everything and allocates again: that
 * must succeed.
 *   single   the main thread alone
 *   threads  4 threads fill together, free, and allocate again; 32 more
 *            threads, started before the limit, make their first allocation
 *            (which creates their heap) only when memory is exhausted
 *
 * Usage: oom [single|threads]   (default: both)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "test_util.h"

#include <malloc.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/wait.h>

/* The entry points, through volatile pointers: the compiler must not fold
 * a failing call away. */
static void *(*volatile v_malloc)(size_t) = malloc;
static void *(*volatile v_calloc)(size_t, size_t) = calloc;
static void *(*volatile v_realloc)(void *, size_t) = realloc;
static void *(*volatile v_aligned_alloc)(size_t, size_t) = aligned_alloc;
static void *(*volatile v_memalign)(size_t, size_t) = memalign;
static int (*volatile v_posix_memalign)(void **, size_t, size_t) = posix_memalign;

static void limit_as(long extra_kib)
{
    struct rlimit rl;
    rl.rlim_cur = rl.rlim_max = (rlim_t)(vm_kib() + extra_kib) * 1024;
    CHECK(setrlimit(RLIMIT_AS, &rl) == 0, "setrlimit: %s", strerror(errno));
}

/* Blocks are chained through their first word: the fill needs no memory of
 * its own. */
typedef struct chain {
    void *head;
    size_t count;
} chain;

static const size_t fill_sizes[] = {1u << 20, 64u << 10, 1u << 10, 32};

static void fill(chain *c)
{
    for (size_t i = 0; i < sizeof fill_sizes / sizeof fill_sizes[0]; i++) {
        for (;;) {
            errno = 0;
            void **p = v_malloc(fill_sizes[i]);
            if (!p) {
                EXPECT(errno == ENOMEM, "malloc(%zu) failed with errno %d, not ENOMEM",
                       fill_sizes[i], errno);
                break;
            }
            *p = c->head;
            c->head = p;
            c->count++;
        }
    }
}

static void drain(chain *c)
{
    while (c->head) {
        void **p = c->head;
        c->head = *p;
        free(p);
    }
    c->count = 0;
}

/* One call under exhaustion: a block (freed) or NULL + ENOMEM with VmSize
 * unchanged. must_fail: the request cannot fit in what is left. */
#define TRY(must_fail, call)                                                   \
    do {                                                                       \
        long vm0_ = vm_kib();                                                  \
        errno = 0;                                                             \
        void *p_ = (call);                                                     \
        int e_ = errno;                                                        \
        if (p_) {                                                              \
            EXPECT(!(must_fail), "%s succeeded although it cannot fit", #call);\
            memset(p_, 1, 1);                                                  \
            free(p_);                                                          \
        } else {                                                               \
            EXPECT(e_ == ENOMEM, "%s: NULL with errno %d, not ENOMEM", #call,  \
                   e_);                                                        \
            EXPECT(vm_kib() <= vm0_, /* the background thread may unmap */     \
                   "%s failed but VmSize went from %ld to %ld KiB", #call,     \
                   vm0_, vm_kib());                                            \
        }                                                                      \
    } while (0)

static void *pm(size_t align, size_t size)
{
    void *p = NULL;
    int r = v_posix_memalign(&p, align, size);
    if (r != 0) {
        EXPECT(r == ENOMEM, "posix_memalign(%zu, %zu) returned %d", align, size, r);
        errno = r;
        return NULL;
    }
    return p;
}

/* Every entry point under exhaustion; then realloc of live blocks. */
static void battery(void)
{
    TRY(0, v_malloc(16));
    TRY(0, v_malloc(200));
    TRY(0, v_malloc(1000));
    TRY(0, v_malloc(3000));          /* medium: 1 KiB .. 256 KiB */
    TRY(0, v_malloc(100 << 10));
    TRY(0, v_malloc(256 << 10));
    TRY(1, v_malloc(64u << 20));     /* large */
    TRY(1, v_malloc(1u << 30));
    TRY(0, v_calloc(1, 48));
    TRY(0, v_calloc(100, 1000));
    TRY(1, v_calloc(1, 64u << 20));
    TRY(1, v_calloc(1u << 16, 1u << 16));
    TRY(1, v_aligned_alloc(4u << 20, 4u << 20));
    TRY(1, v_aligned_alloc(64u << 20, 1u << 20));
    TRY(1, v_memalign(2u << 20, 64u << 20));
    TRY(1, pm(8u << 20, 8u << 20));
    TRY(0, pm(4096, 4096));
}

/* realloc that cannot grow keeps the old block, intact. */
static void realloc_checks(chain *c)
{
    /* a small block from the fill (the last one: 32 bytes) into a large one */
    void **small = c->head;
    CHECK(small != NULL, "nothing was allocated");
    void *keep = *small;
    memset(small + 1, 0x5a, 16);
    long vm0 = vm_kib();
    errno = 0;
    void *r = v_realloc(small, 64u << 20);
    EXPECT(r == NULL && errno == ENOMEM, "realloc(small, 64 MiB): %p errno %d", r, errno);
    EXPECT(vm_kib() <= vm0, "failed realloc grew VmSize %ld -> %ld KiB", vm0, vm_kib());
    EXPECT(*small == keep && ((unsigned char *)(small + 1))[15] == 0x5a,
           "a failed realloc changed the block");
    /* a large block (from the 1 MiB fill: the chain's tail part) grown */
    void **p = c->head;
    while (p && malloc_usable_size(p) < (1u << 20))
        p = *p;
    CHECK(p != NULL, "no 1 MiB block in the fill");
    keep = *p;
    errno = 0;
    vm0 = vm_kib();
    r = v_realloc(p, 512u << 20);
    EXPECT(r == NULL && errno == ENOMEM, "realloc(large, 512 MiB): %p errno %d", r, errno);
    EXPECT(vm_kib() <= vm0, "failed realloc grew VmSize %ld -> %ld KiB", vm0, vm_kib());
    EXPECT(*p == keep, "a failed realloc changed the large block");
}

/* After everything is freed: each kind of request succeeds again. */
static void recovered(const char *who)
{
    static const size_t sizes[] = {16, 1000, 3000, 100 << 10, 1u << 20, 16u << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        void *p = v_malloc(sizes[i]);
        EXPECT(p != NULL, "%s: malloc(%zu) fails after everything was freed", who, sizes[i]);
        if (p) {
            memset(p, 2, sizes[i]);
            free(p);
        }
    }
    void *a = v_aligned_alloc(4u << 20, 4u << 20);
    EXPECT(a != NULL, "%s: aligned_alloc(4 MiB, 4 MiB) fails after recovery", who);
    free(a);
}

static void case_single(void)
{
    limit_as(128 << 10);
    chain c = {NULL, 0};
    fill(&c);
    EXPECT(c.count > 100, "only %zu blocks before exhaustion", c.count);
    battery();
    realloc_checks(&c);
    drain(&c);
    recovered("single");
}

/* ---- threads ------------------------------------------------------------- */
#define FILLERS 4
#define LATE 32

static pthread_barrier_t start_bar, filled_bar, freed_bar;
static pthread_barrier_t late_bar;
static _Atomic int late_null, late_ok;

static void *filler(void *arg)
{
    (void)arg;
    chain c = {NULL, 0};
    pthread_barrier_wait(&start_bar);
    fill(&c);
    pthread_barrier_wait(&filled_bar);   /* all exhausted: the late threads run */
    pthread_barrier_wait(&freed_bar);
    drain(&c);
    recovered("filler thread");
    return NULL;
}

/* Its first allocation happens while memory is exhausted. */
static void *late(void *arg)
{
    (void)arg;
    pthread_barrier_wait(&late_bar);
    errno = 0;
    void *p = v_malloc(64);
    if (p) {
        late_ok++;
        free(p);
    } else {
        EXPECT(errno == ENOMEM, "late thread: NULL with errno %d", errno);
        late_null++;
    }
    return p ? (void *)1 : NULL;
}

static void case_threads(void)
{
    pthread_t f[FILLERS], l[LATE];
    pthread_barrier_init(&start_bar, NULL, FILLERS + 1);
    pthread_barrier_init(&filled_bar, NULL, FILLERS + 1);
    pthread_barrier_init(&freed_bar, NULL, FILLERS + 1);
    pthread_barrier_init(&late_bar, NULL, LATE + 1);
    for (int i = 0; i < FILLERS; i++)
        CHECK(pthread_create(&f[i], NULL, filler, NULL) == 0, "pthread_create");
    for (int i = 0; i < LATE; i++)
        CHECK(pthread_create(&l[i], NULL, late, NULL) == 0, "pthread_create");
    limit_as(128 << 10);
    pthread_barrier_wait(&start_bar);
    pthread_barrier_wait(&filled_bar);
    /* exhausted: the main thread takes what the fillers' races left */
    chain c = {NULL, 0};
    fill(&c);
    pthread_barrier_wait(&late_bar);
    for (int i = 0; i < LATE; i++)
        pthread_join(l[i], NULL);
    NOTE("late threads: %d got memory, %d got NULL + ENOMEM", late_ok, late_null);
    drain(&c);
    pthread_barrier_wait(&freed_bar);
    for (int i = 0; i < FILLERS; i++)
        pthread_join(f[i], NULL);
    recovered("main thread");
    /* threads whose first allocation failed can allocate now (small
     * stacks: 32 default ones would not fit under the limit) */
    pthread_attr_t small;
    pthread_attr_init(&small);
    pthread_attr_setstacksize(&small, 256 << 10);
    for (int i = 0; i < LATE; i++)
        CHECK(pthread_create(&l[i], &small, late, NULL) == 0, "pthread_create");
    late_ok = late_null = 0;
    pthread_barrier_wait(&late_bar);
    for (int i = 0; i < LATE; i++)
        pthread_join(l[i], NULL);
    EXPECT(late_ok == LATE, "after recovery only %d of %d new threads could allocate",
           late_ok, LATE);
}

static int run_case(const char *name, void (*fn)(void))
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    CHECK(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        struct rlimit core = {0, 0};
        setrlimit(RLIMIT_CORE, &core);
        fn();
        _exit(test_failures_ ? 1 : 0);
    }
    int st;
    CHECK(waitpid(pid, &st, 0) == pid, "waitpid");
    if (WIFSIGNALED(st)) {
        fprintf(stderr, "oom %s: killed by signal %d\n", name, WTERMSIG(st));
        return 1;
    }
    if (WEXITSTATUS(st) != 0) {
        fprintf(stderr, "oom %s: failed (exit %d)\n", name, WEXITSTATUS(st));
        return 1;
    }
    printf("oom %s: ok\n", name);
    return 0;
}

int main(int argc, char **argv)
{
    hk_require_if_expected("oom");
    int all = argc < 2, bad = 0;
    for (int i = 1; i < argc || all; i++) {
        const char *m = all ? NULL : argv[i];
        if (all || !strcmp(m, "single"))
            bad |= run_case("single", case_single);
        if (all || !strcmp(m, "threads"))
            bad |= run_case("threads", case_threads);
        if (all)
            break;
    }
    if (bad)
        test_failures_++;
    return test_finish("oom");
}
