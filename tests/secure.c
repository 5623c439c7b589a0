/* secure.c -- secure mode (issue 11): what it must turn into a clean abort or
 * a fault, and what it changes in the layout.
 *
 * Usage: secure build|runtime
 *   build    under libhakmem_secure.so (-DHAKMEM_SECURE=ON): every case;
 *   runtime  under libhakmem.so with HAKMEM_SECURE=1: the slow-path parts
 *            only (guard pages, random carve order).
 *
 * Each case runs in a forked child (stderr into a pipe) and must end as
 * expected:
 *   link cases (build): a write after free, or an overflow into a free
 *     neighbour, clobbers a free block's link (all of it, or one bit of
 *     it); the next allocation that follows it must abort with "free list
 *     corrupted" -- today (default build) it crashes in a later malloc or
 *     hands a block out twice;
 *   guard cases: a write into the guard page after a segment's header must
 *     fault (SIGSEGV), and nothing hakmem hands out may lie on a guard page;
 *   random order: 1000 fresh blocks of one class are not handed out in
 *     address order (the default build hands them out ascending);
 *   controls: normal use, also across threads, exits 0 with no output.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "test_util.h"

#include <pthread.h>
#include <signal.h>

#define SEG ((uintptr_t)2 << 20)
#define DONE 42

static void *(*volatile v_malloc)(size_t) = malloc;
static void (*volatile v_free)(void *) = free;

/* ---- link cases -------------------------------------------------------------- */
static void uaf_write(size_t n, size_t bytes)
{
    char *p = v_malloc(n), *q = v_malloc(n);
    v_free(q);
    v_free(p);                  /* p is the head of the thread cache, q next */
    memset(p, 0x41, bytes);     /* the bug: a write after free */
    void *a = v_malloc(n);      /* pops p: its link is garbage now */
    void *b = v_malloc(n);
    (void)a, (void)b;
}
static void case_uaf16_32(void) { uaf_write(32, 16); }
static void case_uaf8_32(void) { uaf_write(32, 8); }
static void case_uaf16_4k(void) { uaf_write(4096, 16); }
static void case_uaf16_64k(void) { uaf_write(65536, 16); }

/* A one-byte write that flips bit 4 of a free block's stored link: decoded,
 * the link still points 16-aligned into the same slab, 16 bytes into a
 * block (what a partial overwrite does, unlike the garbage above). Only the
 * target's missing free mark can catch it, when the target is popped. */
static void case_link_bit_flip(void)
{
    char *p = v_malloc(32), *q = v_malloc(32);
    v_free(q);
    v_free(p);                  /* p's link points at q */
    p[0] ^= 0x10;               /* the bug: one byte of p changed after free */
    (void)v_malloc(32);         /* pops p (intact itself), installs the link */
    (void)v_malloc(32);         /* pops the bad target: must abort, not hand it out */
}

/* An overflow of 16 bytes past a live block into its free neighbour. */
static void case_overflow_into_free(void)
{
    enum { N = 512 };
    static char *b[N];
    for (int i = 0; i < N; i++)
        b[i] = v_malloc(48);
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++)
            if (b[j] == b[i] + 48) {       /* b[j] follows b[i] in memory */
                v_free(b[j]);
                memset(b[i], 0x42, 48 + 16);   /* the bug: 16 bytes too many */
                for (int k = 0; k < 4; k++)
                    (void)v_malloc(48);
                _exit(DONE);
            }
    _exit(DONE + 1);   /* no neighbours found: cannot test */
}

/* The clobbered block sits in its slab's free list (after a flush), not in
 * the thread cache: the refill that takes it must abort. */
static void case_uaf_slab_list(void)
{
    enum { N = 3000 };
    static char *b[N];
    char *p = v_malloc(64), *keep = v_malloc(64);
    (void)keep;
    for (int i = 0; i < N; i++)
        b[i] = v_malloc(64);
    v_free(p);
    for (int i = 0; i < N; i++)
        v_free(b[i]);
    memset(p, 0x43, 16);
    for (int i = 0; i < 2 * N; i++)
        (void)v_malloc(64);
}

/* The clobbered block was freed by another thread (remote list). */
static void *free_it(void *p) { v_free(p); return NULL; }
static void case_uaf_remote(void)
{
    char *p = v_malloc(64), *q = v_malloc(64);
    pthread_t t;
    if (pthread_create(&t, NULL, free_it, q) || pthread_join(t, NULL) ||
        pthread_create(&t, NULL, free_it, p) || pthread_join(t, NULL))
        _exit(3);
    memset(p, 0x44, 16);
    for (int i = 0; i < 20000; i++)
        (void)v_malloc(64);
}

/* ---- guard pages --------------------------------------------------------------- */
static void case_header_guard(void)
{
    char *p = v_malloc(64);
    volatile char *guard = (char *)(((uintptr_t)p & ~(SEG - 1)) + 4096);
    *guard = 1;   /* the page after the segment header */
}

/* Blocks never lie on a guard page: fill every class's blocks entirely. */
static void case_no_block_on_guard(void)
{
    static const size_t sizes[] = {16, 48, 112, 1024, 1280, 8192, 20480, 65536, 262144};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
        for (int i = 0; i < (sizes[s] > 65536 ? 40 : 3000); i++)
            memset(v_malloc(sizes[s]), 0x45, sizes[s]);   /* a guard would fault */
    _exit(DONE);
}

/* ---- random carve order -------------------------------------------------------- */
static void *count_descents(void *out)
{
    char *prev = v_malloc(64);
    int descents = 0;
    for (int i = 0; i < 1000; i++) {
        char *p = v_malloc(64);
        descents += p < prev;
        prev = p;
    }
    *(int *)out = descents;
    return NULL;
}
static int descents_in_fresh_thread(void)
{
    int d = -1;
    pthread_t t;
    if (pthread_create(&t, NULL, count_descents, &d) || pthread_join(t, NULL))
        _exit(3);
    return d;
}
static void case_random_order(void)
{
    int d = descents_in_fresh_thread();
    printf("random order: %d of 1000 fresh blocks below their predecessor\n", d);
    /* runs of 4 blocks in random order: about 1000 / 4 / 2 = 125; ~0 in order */
    _exit(d > 60 ? DONE : DONE + 2);
}

/* ---- control ---------------------------------------------------------------------- */
static void case_control(void)
{
    enum { N = 20000 };
    static char *b[N];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < N; i++) {
            size_t n = 16 + (size_t)(i * 37) % 9000;
            b[i] = v_malloc(n);
            memset(b[i], i & 0xff, n);
        }
        pthread_t t;
        if (pthread_create(&t, NULL, free_it, b[0]) || pthread_join(t, NULL))
            _exit(3);
        for (int i = 1; i < N; i++) {
            size_t n = 16 + (size_t)(i * 37) % 9000;
            if ((unsigned char)b[i][n - 1] != (i & 0xff))
                _exit(4);
            v_free(b[i]);
        }
    }
    _exit(DONE);
}

struct scase {
    const char *name;
    void (*fn)(void);
    int build_only; /* needs the secure build (encoded links) */
    int signal;     /* expected signal (0: exits DONE) */
    const char *expect;
};

static const struct scase cases[] = {
    {"control", case_control, 0, 0, NULL},
    {"uaf16_32B", case_uaf16_32, 1, SIGABRT, "free list corrupted"},
    {"uaf8_32B", case_uaf8_32, 1, SIGABRT, "free list corrupted"},
    {"uaf16_4KiB", case_uaf16_4k, 1, SIGABRT, "free list corrupted"},
    {"uaf16_64KiB", case_uaf16_64k, 1, SIGABRT, "free list corrupted"},
    {"link_bit_flip", case_link_bit_flip, 1, SIGABRT, "free list corrupted"},
    {"overflow_into_free", case_overflow_into_free, 1, SIGABRT, "free list corrupted"},
    {"uaf_slab_list", case_uaf_slab_list, 1, SIGABRT, "free list corrupted"},
    {"uaf_remote", case_uaf_remote, 1, SIGABRT, "free list corrupted"},
    {"header_guard", case_header_guard, 0, SIGSEGV, NULL},
    {"no_block_on_guard", case_no_block_on_guard, 0, 0, NULL},
    {"random_order", case_random_order, 0, 0, NULL},
};

static void call_case(const void *c) { ((const struct scase *)c)->fn(); }

static int run(const struct scase *c)
{
    char buf[2048];
    fflush(stdout);
    int st = hk_run_child(call_case, c, 30, DONE, buf, sizeof buf);
    size_t len = strlen(buf);
    int ok;
    if (c->signal)
        ok = WIFSIGNALED(st) && WTERMSIG(st) == c->signal && (!c->expect || strstr(buf, c->expect));
    else
        ok = WIFEXITED(st) && WEXITSTATUS(st) == DONE && len == 0;
    if (WIFEXITED(st) && WEXITSTATUS(st) == DONE + 1) {
        printf("%-20s skip: no adjacent blocks found\n", c->name);
        return 1;
    }
    printf("%-20s %s: %s %d | stderr: %s%s", c->name, ok ? "ok  " : "FAIL",
           WIFSIGNALED(st) ? "signal" : "exit", WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st),
           buf, len && buf[len - 1] == '\n' ? "" : "\n");
    return ok;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    int build = argc > 1 && strcmp(argv[1], "build") == 0;
    CHECK(argc > 1 && (build || strcmp(argv[1], "runtime") == 0), "usage: secure build|runtime");
    hk_require_if_expected("secure");
    if (!hk_active()) {
        printf("secure: SKIP: hakmem is not loaded\n");
        return 77;
    }
    int failed = 0, ran = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (cases[i].build_only && !build)
            continue;
        ran++;
        failed += !run(&cases[i]);
    }
    if (failed) {
        fprintf(stderr, "secure: FAILED (%d of %d cases)\n", failed, ran);
        return 1;
    }
    printf("secure: PASSED (%d cases)\n", ran);
    return 0;
}
