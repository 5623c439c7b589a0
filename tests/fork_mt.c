/* fork_mt.c -- fork() while other threads are inside malloc/free.
 *
 * 4 background threads allocate/verify/free in a loop while the main thread
 * forks NFORKS (50) times.  Each child: mallocs/frees a few thousand blocks
 * of mixed sizes (including 1 MiB), verifies their contents, frees blocks it
 * inherited from the parent, creates a thread that also allocates, and exits
 * with _exit(0).  Children run under alarm(): a deadlock (allocator lock held
 * by a thread that does not exist in the child) turns into SIGALRM.  The
 * parent requires exit status 0 from every child.
 *
 * Usage: fork_mt [nforks]
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "test_util.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>

enum { BG_THREADS = 4, BG_SLOTS = 256 };

static atomic_int stop;
static atomic_long bg_ops;

static size_t mixed_size(uint64_t *rng)
{
    unsigned r = (unsigned)rng_range(rng, 0, 99);
    if (r < 70)
        return rng_range(rng, 1, 1024);
    if (r < 96)
        return rng_range(rng, 1025, 32768);
    if (r < 99)
        return rng_range(rng, 32769, 256 * 1024);
    return (size_t)1 << 20;
}

/* parent-side background thread */
struct bg {
    int id;
    unsigned char *p[BG_SLOTS];
    size_t n[BG_SLOTS];
    uint64_t seed[BG_SLOTS];
};
static struct bg bgs[BG_THREADS];

static void *bg_thread(void *arg)
{
    struct bg *b = arg;
    uint64_t rng = 0xBEEFull + (uint64_t)b->id * 101;
    uint64_t serial = (uint64_t)b->id << 40;
    unsigned long local_ops = 0;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        int k = (int)rng_range(&rng, 0, BG_SLOTS - 1);
        if (b->p[k]) {
            size_t off = pat_check(b->p[k], b->n[k], b->seed[k]);
            if (off != (size_t)-1) {
                fprintf(stderr, "fork_mt: parent thread %d: block %p (%zu "
                        "bytes) corrupted at offset %zu\n", b->id,
                        (void *)b->p[k], b->n[k], off);
                _exit(1);
            }
            /* clear the slot before freeing, so a child forked in between
             * never sees an already-freed pointer */
            unsigned char *old = b->p[k];
            b->p[k] = NULL;
            free(old);
        }
        size_t n = mixed_size(&rng);
        if (n > 4096 && (rng_next(&rng) & 7))
            n = 100; /* mostly small: many lock/cache operations per second */
        b->p[k] = malloc(n);
        if (!b->p[k]) {
            fprintf(stderr, "fork_mt: parent thread: malloc(%zu) NULL\n", n);
            _exit(1);
        }
        b->n[k] = n;
        b->seed[k] = ++serial;
        pat_fill(b->p[k], n, b->seed[k]);
        /* bursts of work with short pauses: the threads are inside the
         * allocator a good part of the time without starving the children
         * on a 2-core machine */
        atomic_fetch_add_explicit(&bg_ops, 1, memory_order_relaxed);
        if (++local_ops % 50 == 0)
            usleep(300);
    }
    return NULL;
}

/* ---- child side --------------------------------------------------------- */
static int child_work(uint64_t seed, int blocks)
{
    enum { LIVE = 128 };
    unsigned char *p[LIVE] = {0};
    size_t n[LIVE];
    uint64_t s[LIVE];
    uint64_t rng = seed;
    for (int i = 0; i < blocks; i++) {
        int k = (int)rng_range(&rng, 0, LIVE - 1);
        if (p[k]) {
            size_t off = pat_check(p[k], n[k], s[k]);
            if (off != (size_t)-1) {
                fprintf(stderr, "fork_mt child %d: block %p (%zu bytes) "
                        "corrupted at offset %zu\n", (int)getpid(),
                        (void *)p[k], n[k], off);
                return 1;
            }
            free(p[k]);
        }
        n[k] = mixed_size(&rng);
        p[k] = (i % 5 == 0) ? calloc(1, n[k]) : malloc(n[k]);
        if (!p[k]) {
            fprintf(stderr, "fork_mt child: malloc(%zu) NULL\n", n[k]);
            return 1;
        }
        if (i % 5 == 0) {
            for (size_t j = 0; j < n[k]; j += 61)
                if (p[k][j]) {
                    fprintf(stderr, "fork_mt child: calloc(1, %zu) byte %zu "
                            "not zero\n", n[k], j);
                    return 1;
                }
        }
        s[k] = seed ^ (uint64_t)i;
        pat_fill(p[k], n[k], s[k]);
    }
    for (int k = 0; k < LIVE; k++) {
        if (!p[k])
            continue;
        size_t off = pat_check(p[k], n[k], s[k]);
        if (off != (size_t)-1) {
            fprintf(stderr, "fork_mt child: block %p (%zu bytes) corrupted at "
                    "offset %zu\n", (void *)p[k], n[k], off);
            return 1;
        }
        free(p[k]);
    }
    return 0;
}

static void *child_thread(void *arg)
{
    uint64_t seed = (uint64_t)(uintptr_t)arg;
    return (void *)(intptr_t)child_work(seed, 600);
}

static void child_main(int iter)
{
    alarm(20);
    /* free (some of) what the parent's threads had at fork time: those
     * blocks were allocated by threads that do not exist in the child */
    for (int t = 0; t < BG_THREADS; t++)
        for (int k = iter % 4; k < BG_SLOTS; k += 4)
            if (bgs[t].p[k]) {
                /* contents are not checked: the parent thread may have been
                 * filling the block at fork time */
                free(bgs[t].p[k]);
                bgs[t].p[k] = NULL;
            }
    int rc = child_work(0xF00Dull * (uint64_t)(iter + 1), 2000);
    if (rc)
        _exit(10);
    pthread_t th;
    if (pthread_create(&th, NULL, child_thread,
                       (void *)(uintptr_t)(0xABCull + (uint64_t)iter))) {
        fprintf(stderr, "fork_mt child: pthread_create failed\n");
        _exit(11);
    }
    void *ret = NULL;
    pthread_join(th, &ret);
    if (ret)
        _exit(12);
    /* big blocks once more after the thread exited */
    for (int i = 0; i < 20; i++) {
        unsigned char *b = malloc((size_t)1 << 20);
        if (!b)
            _exit(13);
        pat_fill(b, (size_t)1 << 20, (uint64_t)i);
        if (pat_check(b, (size_t)1 << 20, (uint64_t)i) != (size_t)-1)
            _exit(14);
        free(b);
    }
    _exit(0);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    int nforks = argc > 1 ? atoi(argv[1]) : 50;
    CHECK(nforks > 0, "bad nforks");
    hk_require_if_expected("fork_mt");

    pthread_t th[BG_THREADS];
    for (int t = 0; t < BG_THREADS; t++) {
        bgs[t].id = t;
        int rc = pthread_create(&th[t], NULL, bg_thread, &bgs[t]);
        CHECK(rc == 0, "pthread_create: %s", strerror(rc));
    }
    /* let the threads get going */
    while (atomic_load(&bg_ops) < 20000)
        usleep(1000);

    int failures = 0;
    for (int i = 0; i < nforks; i++) {
        fflush(stdout);
        fflush(stderr);
        pid_t pid = fork();
        CHECK(pid >= 0, "fork #%d: %s", i, strerror(errno));
        if (pid == 0)
            child_main(i);
        /* parent keeps allocating while the child runs */
        void *tmp[64];
        for (int k = 0; k < 64; k++) {
            tmp[k] = malloc((size_t)(k * 97 % 3000) + 1);
            CHECK(tmp[k] != NULL, "parent malloc NULL");
        }
        for (int k = 0; k < 64; k++)
            free(tmp[k]);
        int st = 0;
        CHECK(waitpid(pid, &st, 0) == pid, "waitpid: %s", strerror(errno));
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
            continue;
        failures++;
        if (WIFSIGNALED(st))
            fprintf(stderr, "fork_mt: child #%d killed by signal %d (%s)%s\n",
                    i, WTERMSIG(st), strsignal(WTERMSIG(st)),
                    WTERMSIG(st) == SIGALRM ? " -- hung for 20 s, probably a "
                    "deadlock on an allocator lock held at fork time" : "");
        else
            fprintf(stderr, "fork_mt: child #%d exited with status %d, "
                    "expected 0\n", i, WEXITSTATUS(st));
        if (failures >= 3) {
            fprintf(stderr, "fork_mt: giving up after %d failed children\n",
                    failures);
            nforks = i + 1;
            break;
        }
    }
    atomic_store(&stop, 1);
    for (int t = 0; t < BG_THREADS; t++)
        pthread_join(th[t], NULL);
    for (int t = 0; t < BG_THREADS; t++)
        for (int k = 0; k < BG_SLOTS; k++)
            if (bgs[t].p[k]) {
                size_t off = pat_check(bgs[t].p[k], bgs[t].n[k], bgs[t].seed[k]);
                EXPECT(off == (size_t)-1, "parent block %p corrupted at %zu",
                       (void *)bgs[t].p[k], off);
                free(bgs[t].p[k]);
            }
    printf("fork_mt: %d forks, %d failed children, %ld background ops\n",
           nforks, failures, atomic_load(&bg_ops));
    EXPECT(failures == 0, "%d of %d children did not exit with status 0",
           failures, nforks);
    return test_finish("fork_mt");
}
