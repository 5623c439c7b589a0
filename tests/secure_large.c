/* secure_large.c -- secure mode's guard pages around large blocks (issue 11).
 *
 * Runs only where secure mode is on (libhakmem_secure.so, or libhakmem.so
 * with HAKMEM_SECURE=1; CTest registers both): it checks that with
 * hakmem_option_get("SECURE") and fails if the option is off.
 *
 * Fault cases fork a child that sets a block up, checks what must work
 * (writing its whole usable size, contents kept across realloc), prints a
 * marker line on stderr and then makes the one bad access. The child must be
 * killed by SIGSEGV *after* the marker: a fault anywhere before it, or no
 * fault at all, fails. Covered:
 *   overrun_*        one byte past the page-rounded end of a fresh block of
 *                    256 KiB + 1, 1 MiB, 8 MiB + 100 and 4 MiB aligned to 2 MiB
 *                    (there, p + malloc_usable_size(p): usable ends at the guard)
 *   underrun_*       the byte before the user data of a block aligned to
 *                    64 KiB or 2 MiB (the pages between header and data)
 *   realloc_*        grow/shrink cycles (in place and moved past a blocker),
 *                    contents checked; the byte past the new end faults
 *   reuse_*          spans taken from the cache: the same shape, another
 *                    alignment, a smaller span grown, a much longer span cut
 *                    (the kept part and the tail it gave up each end in a
 *                    guard)
 * Non-fault checks in the parent: in secure mode the user data of a plain
 * large block starts on a page of its own (not the header's); 10 000
 * alloc/free/realloc cycles of random large sizes keep VmSize flat.
 *
 * What secure mode off does past the end is not asserted: the byte may
 * belong to another mapping and be writable.
 *
 * Usage: secure_large [case-name ...]   (default: all cases)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "test_util.h"

#include <malloc.h>
#include <signal.h>

#define KiB ((size_t)1024)
#define MiB (1024 * KiB)
#define PAGE ((size_t)4096)

static void *(*volatile v_malloc)(size_t) = malloc;
static void *(*volatile v_realloc)(void *, size_t) = realloc;

/* The byte the child must fault on; written through a volatile pointer. */
static void poke(void *at)
{
    fprintf(stderr, "about to poke %p\n", at);
    fflush(stderr);
    *(volatile char *)at = 1;
}

/* Every usable byte of p is writable (none reaches into the guard), and p +
 * usable is where the guard page starts: page-aligned. Returns that end. */
static char *fill_usable(void *p, uint64_t seed)
{
    size_t u = malloc_usable_size(p);
    pat_fill(p, u, seed);
    char *end = (char *)p + u;
    if ((uintptr_t)end % PAGE) {
        fprintf(stderr, "usable end %p of %p not page-aligned\n", (void *)end, p);
        _exit(3);
    }
    return end;
}

static void overrun(size_t size, size_t align)
{
    void *p = align ? aligned_alloc(align, size) : v_malloc(size);
    if (!p) _exit(3);
    char *end = fill_usable(p, 1);
    if (end != (char *)(((uintptr_t)p + size + PAGE - 1) & ~(PAGE - 1))) {
        fprintf(stderr, "usable end %p is not the page-rounded end of a fresh block\n",
                (void *)end);
        _exit(3);
    }
    poke(end);
}

static void case_overrun_256k1(void) { overrun(256 * KiB + 1, 0); }
static void case_overrun_1m(void) { overrun(1 * MiB, 0); }
static void case_overrun_8m100(void) { overrun(8 * MiB + 100, 0); }
static void case_overrun_4m_al2m(void) { overrun(4 * MiB, 2 * MiB); }

static void underrun(size_t size, size_t align)
{
    char *p = aligned_alloc(align, size);
    if (!p) _exit(3);
    fill_usable(p, 2);
    poke(p - 1);
}

static void case_underrun_al64k(void) { underrun(300 * KiB, 64 * KiB); }
static void case_underrun_al2m(void) { underrun(3 * MiB, 2 * MiB); }

/* realloc through sizes in both directions; after each step the kept prefix
 * must hold its pattern and the whole new usable size must be writable.
 * `blocker`: a block allocated after the first one, so that a grow past its
 * chunk has to move the span. Pokes past the end after `steps` steps. */
static const size_t realloc_sizes[] = {
    300 * KiB, 1 * MiB, 5 * MiB + 7, 600 * KiB, 20 * MiB, 2 * MiB + 1, 280 * KiB, 9 * MiB,
};
#define NSTEPS (sizeof realloc_sizes / sizeof realloc_sizes[0])

static void realloc_steps(size_t steps, int blocker)
{
    char *p = v_malloc(realloc_sizes[0]);
    if (!p) _exit(3);
    void *b = blocker ? v_malloc(400 * KiB) : NULL;
    size_t have = realloc_sizes[0];
    pat_fill(p, have, 7);
    for (size_t i = 1; i <= steps && i < NSTEPS; i++) {
        size_t n = realloc_sizes[i];
        char *q = v_realloc(p, n);
        if (!q) _exit(3);
        size_t keep = have < n ? have : n;
        size_t bad = pat_check(q, keep, 7);
        if (bad != (size_t)-1) {
            fprintf(stderr, "step %zu: byte %zu of %zu lost\n", i, bad, keep);
            _exit(4);
        }
        p = q;
        have = n;
        pat_fill(p, have, 7);
        /* the whole usable size is ours, and its end page-aligned */
        size_t u = malloc_usable_size(p);
        memset(p + have, 0x5a, u - have);
        if ((uintptr_t)(p + u) % PAGE) _exit(5);
    }
    poke(p + malloc_usable_size(p));
    free(b);
}

static void case_realloc_grow(void) { realloc_steps(1, 0); }
static void case_realloc_grow_big(void) { realloc_steps(2, 0); }
static void case_realloc_shrink(void) { realloc_steps(3, 0); }
static void case_realloc_moved(void) { realloc_steps(4, 1); }
static void case_realloc_shrink_moved(void) { realloc_steps(6, 1); }
static void case_realloc_all(void) { realloc_steps(NSTEPS, 1); }

/* An aligned block moved by realloc keeps its user offset: the gap between
 * the (copied) header page and the data is guarded at the new place, and so
 * is the new end. */
static char *aligned_moved(void)
{
    char *p = aligned_alloc(64 * KiB, 512 * KiB);
    if (!p) _exit(3);
    void *b = v_malloc(400 * KiB);   /* blocks growth in place */
    pat_fill(p, 512 * KiB, 9);
    char *q = v_realloc(p, 6 * MiB);
    if (!q) _exit(3);
    if (pat_check(q, 512 * KiB, 9) != (size_t)-1) _exit(4);
    fprintf(stderr, "%s\n", q == p ? "grown in place" : "moved");
    fill_usable(q, 10);
    (void)b;
    return q;
}

static void case_realloc_aligned_moved_end(void)
{
    char *q = aligned_moved();
    poke(q + malloc_usable_size(q));
}
static void case_realloc_aligned_moved_gap(void) { poke(aligned_moved() - 1); }

/* Spans reused from the cache. */
static void case_reuse_same(void)
{
    void *p = v_malloc(1 * MiB);
    if (!p) _exit(3);
    free(p);
    void *q = v_malloc(1 * MiB);
    if (!q) _exit(3);
    fprintf(stderr, "%s\n", q == p ? "span reused" : "span not reused");
    poke(fill_usable(q, 3));
}

static void case_reuse_smaller_request(void)
{
    void *p = v_malloc(2 * MiB);
    if (!p) _exit(3);
    free(p);
    void *q = v_malloc(600 * KiB);   /* the 2 MiB span serves it */
    if (!q) _exit(3);
    poke(fill_usable(q, 4));
}

static void case_reuse_aligned(void)
{
    void *p = v_malloc(1 * MiB);
    if (!p) _exit(3);
    free(p);
    char *q = aligned_alloc(64 * KiB, 700 * KiB);   /* another user offset */
    if (!q) _exit(3);
    fill_usable(q, 5);
    poke(q - 1);   /* between header page and data: now guarded */
}

static void case_reuse_aligned_end(void)
{
    void *p = aligned_alloc(64 * KiB, 1 * MiB);
    if (!p) _exit(3);
    free(p);
    void *q = v_malloc(700 * KiB);   /* the guarded gap becomes user data */
    if (!q) _exit(3);
    poke(fill_usable(q, 6));
}

static void case_reuse_grown(void)
{
    void *p = v_malloc(512 * KiB);
    if (!p) _exit(3);
    free(p);
    void *q = v_malloc(3 * MiB);   /* the smaller span grown with mremap */
    if (!q) _exit(3);
    poke(fill_usable(q, 7));
}

/* A cached span of at least twice the request + 4 MiB is cut (as plain
 * spans are): the kept part gets a new end guard, and the tail it gives up
 * keeps the old one and serves a later block. Both fail (exit 4 / 5) if the
 * span was reused whole, as before the cut existed. */
static void *cut_setup(char **tail_lo, char **tail_hi)
{
    char *p = v_malloc(8 * MiB);
    if (!p) _exit(3);
    free(p);
    char *q = v_malloc(1 * MiB);   /* the 8 MiB span, cut at its first 2 MiB */
    if (!q) _exit(3);
    if (q != p) {
        fprintf(stderr, "span not reused: %p then %p\n", (void *)p, (void *)q);
        _exit(4);
    }
    if (malloc_usable_size(q) >= 2 * MiB) {
        fprintf(stderr, "span not cut: usable %zu\n", malloc_usable_size(q));
        _exit(4);
    }
    *tail_lo = p + 2 * MiB - PAGE;   /* the tail's header page (p is its span + 4 KiB) */
    *tail_hi = p + 8 * MiB + PAGE;
    return q;
}

static void case_reuse_cut_kept(void)
{
    char *lo, *hi;
    poke(fill_usable(cut_setup(&lo, &hi), 8));
}

static void case_reuse_cut_tail(void)
{
    char *lo, *hi;
    cut_setup(&lo, &hi);
    char *r = v_malloc(5 * MiB);   /* the 6 MiB tail serves it */
    if (!r) _exit(3);
    if (r < lo || r >= hi) {
        fprintf(stderr, "tail not reused: %p outside [%p, %p)\n", (void *)r, (void *)lo, (void *)hi);
        _exit(5);
    }
    poke(fill_usable(r, 9));
}

struct tcase {
    const char *name;
    void (*fn)(void);
};

static const struct tcase cases[] = {
    {"overrun_256k_plus_1", case_overrun_256k1},
    {"overrun_1m", case_overrun_1m},
    {"overrun_8m_plus_100", case_overrun_8m100},
    {"overrun_4m_align_2m", case_overrun_4m_al2m},
    {"underrun_align_64k", case_underrun_al64k},
    {"underrun_align_2m", case_underrun_al2m},
    {"realloc_grow", case_realloc_grow},
    {"realloc_grow_big", case_realloc_grow_big},
    {"realloc_shrink", case_realloc_shrink},
    {"realloc_moved", case_realloc_moved},
    {"realloc_shrink_moved", case_realloc_shrink_moved},
    {"realloc_all", case_realloc_all},
    {"realloc_aligned_moved_end", case_realloc_aligned_moved_end},
    {"realloc_aligned_moved_gap", case_realloc_aligned_moved_gap},
    {"reuse_same", case_reuse_same},
    {"reuse_smaller_request", case_reuse_smaller_request},
    {"reuse_aligned", case_reuse_aligned},
    {"reuse_aligned_end", case_reuse_aligned_end},
    {"reuse_grown", case_reuse_grown},
    {"reuse_cut_kept", case_reuse_cut_kept},
    {"reuse_cut_tail", case_reuse_cut_tail},
};

static void child_case(const void *arg) { ((const struct tcase *)arg)->fn(); }

static int run_case(const struct tcase *c)
{
    char buf[4096];
    int st = hk_run_child(child_case, c, 30, 0, buf, sizeof buf);
    size_t len = strlen(buf);
    char how[128];
    if (WIFSIGNALED(st))
        snprintf(how, sizeof how, "killed by signal %d (%s)", WTERMSIG(st),
                 strsignal(WTERMSIG(st)));
    else
        snprintf(how, sizeof how, "exited with status %d", WEXITSTATUS(st));
    int ok = WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV && strstr(buf, "about to poke");
    for (size_t i = 0; i < len; i++)
        if (buf[i] == '\n')
            buf[i] = ' ';
    printf("%-28s %s: %s | stderr: \"%s\"\n", c->name, ok ? "ok  " : "FAIL", how, buf);
    if (!ok)
        fprintf(stderr, "FAIL %s: expected SIGSEGV at the poke, the child %s\n", c->name, how);
    return ok;
}

/* Plain large blocks start on a page of their own, after the header's. */
static void check_layout(void)
{
    static const size_t sizes[] = {256 * KiB + 1, 1 * MiB, 8 * MiB + 100};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        void *p = v_malloc(sizes[i]);
        CHECK(p, "malloc(%zu)", sizes[i]);
        EXPECT((uintptr_t)p % PAGE == 0, "malloc(%zu) = %p: user data shares the header's page",
               sizes[i], p);
        EXPECT(malloc_usable_size(p) >= sizes[i], "usable %zu < %zu", malloc_usable_size(p),
               sizes[i]);
        free(p);
    }
}

/* 10 000 alloc/free cycles of random large sizes (some aligned, some
 * reallocated, a few kept alive at a time) must not leak mappings: VmSize
 * after the cache is emptied matches the one after a warm-up. */
static void check_no_leak(void)
{
    size_t (*collect)(int) = (size_t (*)(int))dlsym(RTLD_DEFAULT, "hakmem_collect");
    CHECK(collect, "hakmem_collect not found");
    uint64_t rng = 0x5ecu;
    enum { SLOTS = 8, ROUNDS = 10000, WARMUP = 1000 };
    char *slot[SLOTS] = {0};
    long vm_warm = 0;
    for (int r = 0; r < ROUNDS; r++) {
        if (r == WARMUP) {   /* the same empty state as at the end */
            for (unsigned k = 0; k < SLOTS; k++) {
                free(slot[k]);
                slot[k] = NULL;
            }
            collect(1);
            vm_warm = vm_kib();
        }
        unsigned i = (unsigned)rng_range(&rng, 0, SLOTS - 1);
        size_t n = rng_range(&rng, 256 * KiB + 1, 8 * MiB);
        unsigned what = (unsigned)rng_range(&rng, 0, 9);
        if (slot[i] && what < 3) {
            char *q = v_realloc(slot[i], n);
            CHECK(q, "realloc(%zu)", n);
            slot[i] = q;
        } else {
            free(slot[i]);
            slot[i] = NULL;
            if (what == 9)
                CHECK(posix_memalign((void **)&slot[i], (size_t)1 << rng_range(&rng, 13, 22),
                                     n) == 0, "posix_memalign(%zu)", n);
            else
                slot[i] = v_malloc(n);
            CHECK(slot[i], "alloc(%zu)", n);
        }
        /* touch both ends: the last usable byte is not the guard */
        slot[i][0] = 1;
        slot[i][malloc_usable_size(slot[i]) - 1] = 1;
    }
    for (unsigned i = 0; i < SLOTS; i++)
        free(slot[i]);
    collect(1);
    long vm_end = vm_kib();
    NOTE("VmSize after warm-up %ld KiB, at the end %ld KiB", vm_warm, vm_end);
    /* both points hold no block and an empty cache: a leaked span of the
     * 9000 cycles between them would be 256 KiB at least */
    EXPECT(vm_end <= vm_warm + 128, "VmSize grew by %ld KiB over %d cycles",
           vm_end - vm_warm, ROUNDS - WARMUP);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    hk_require_if_expected("secure_large");
    int (*option_get)(const char *, long long *) =
        (int (*)(const char *, long long *))dlsym(RTLD_DEFAULT, "hakmem_option_get");
    long long secure = 0;
    CHECK(option_get && option_get("SECURE", &secure) == 0 && secure == 1,
          "secure mode is off: run with libhakmem_secure.so or HAKMEM_SECURE=1");
    int failed = 0, ran = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (!hk_selected(argc, argv, cases[i].name))
            continue;
        ran++;
        if (!run_case(&cases[i]))
            failed++;
    }
    if (argc == 1) {
        check_layout();
        check_no_leak();
    }
    if (failed)
        fprintf(stderr, "secure_large: %d of %d fault cases failed\n", failed, ran);
    return test_finish("secure_large") || failed;
}
