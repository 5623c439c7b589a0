/* unit_addrspace.c -- the mapping window (hakmem_internal.h, "Address
 * space"), white-box: linked with libhakmem.a, so malloc is hakmem's.
 *
 *   window   blocks of every size and alignment lie in [HM_ARENA_LO,
 *            HM_ARENA_HI) and the region map knows them
 *   foreign  the program maps 64 MiB exactly where hakmem's cursor would map
 *            next: hakmem maps around it, and the program's data stays intact
 *   full     (forked child) the program occupies every free byte of the
 *            window: segments then fail with ENOMEM, large blocks are "far"
 *            (outside the window, found through the far set) and are freed,
 *            reallocated and measured correctly; once the program unmaps part
 *            of the window, small blocks come again
 */
#include "hakmem_internal.h"
#include "test_util.h"

#include <malloc.h>
#include <sys/mman.h>
#include <sys/wait.h>

/* The test looks freed addresses up in the far set (never dereferences them). */
#pragma GCC diagnostic ignored "-Wpragmas"
#pragma GCC diagnostic ignored "-Wuse-after-free"

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

static int in_window(const void *p)
{
    return (uintptr_t)p >= HM_ARENA_LO && (uintptr_t)p < HM_ARENA_HI;
}

static unsigned map_kind(const void *p)
{
    return hm_region_in_map((uintptr_t)p) ? hm_region_kind_at((uintptr_t)p & ~HM_REGION_MASK)
                                          : HM_REGION_NONE;
}

static void *map_at(uintptr_t a, size_t len, int prot)
{
    void *r = mmap((void *)a, len, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE |
                   MAP_FIXED_NOREPLACE, -1, 0);
    if (r == MAP_FAILED)
        return NULL;
    if (r != (void *)a) {   /* a kernel before 4.17 took it as a hint */
        munmap(r, len);
        return NULL;
    }
    return r;
}

static void test_window(void)
{
    static const size_t sizes[] = {1, 16, 100, 1024, 3000, 65536, 200000, 262144,
                                   262145, 1u << 20, 5u << 20, 64u << 20};
    void *p[sizeof sizes / sizeof sizes[0]];
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        p[i] = malloc(sizes[i]);
        CHECK(p[i] != NULL, "malloc(%zu)", sizes[i]);
        EXPECT(in_window(p[i]), "malloc(%zu) = %p outside the window", sizes[i], p[i]);
        EXPECT(map_kind(p[i]) != HM_REGION_NONE, "malloc(%zu) = %p not in the map", sizes[i], p[i]);
        memset(p[i], 7, sizes[i]);
    }
    static const size_t aligns[] = {4096, 1u << 20, 2u << 20, 4u << 20, 64u << 20};
    for (size_t i = 0; i < sizeof aligns / sizeof aligns[0]; i++) {
        void *a = aligned_alloc(aligns[i], 3u << 20);
        CHECK(a != NULL, "aligned_alloc(%zu)", aligns[i]);
        EXPECT(((uintptr_t)a & (aligns[i] - 1)) == 0, "misaligned %p", a);
        EXPECT(in_window(a), "aligned_alloc(%zu) = %p outside the window", aligns[i], a);
        EXPECT(map_kind(a) != HM_REGION_NONE, "aligned_alloc(%zu) = %p not in the map", aligns[i], a);
        free(a);
    }
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        free(p[i]);
}

static void test_foreign(void)
{
    size_t len = 64u << 20;
    uintptr_t next = hm_os_window_next();
    uint8_t *mine = map_at(next, len, PROT_READ | PROT_WRITE);
    if (!mine) {
        NOTE("foreign: could not map at the cursor %#lx (%s); skipped", (unsigned long)next,
             strerror(errno));
        return;
    }
    memset(mine, 0xa5, len);
    enum { N = 200 };
    void *blocks[N];
    for (int i = 0; i < N; i++) {
        size_t sz = i % 2 ? (1u << 20) + (size_t)i * 4096 : 100000;
        blocks[i] = malloc(sz);
        CHECK(blocks[i] != NULL, "malloc(%zu) next to a foreign mapping", sz);
        uintptr_t b = (uintptr_t)blocks[i];
        EXPECT(b + sz <= (uintptr_t)mine || b >= (uintptr_t)mine + len,
               "block %p overlaps the program's mapping at %p", blocks[i], (void *)mine);
        EXPECT(in_window(blocks[i]), "%p outside the window", blocks[i]);
        memset(blocks[i], i, sz);
    }
    for (int i = 0; i < N; i++)
        free(blocks[i]);
    for (size_t i = 0; i < len; i += 4096)
        if (mine[i] != 0xa5 || mine[i + 4095] != 0xa5) {
            EXPECT(0, "the program's mapping was changed at offset %zu", i);
            break;
        }
    munmap(mine, len);
}

/* Occupy every free part of the window with PROT_NONE mappings (they cost
 * no memory); returns the number of mappings made. */
static size_t occupy_window(void)
{
    size_t made = 0;
    uintptr_t a = HM_ARENA_LO;
    while (a < HM_ARENA_HI) {
        size_t len = HM_ARENA_HI - a;
        while (len >= 4096 && !map_at(a, len, PROT_NONE))
            len = len / 2 & ~(size_t)4095;
        if (len >= 4096) {
            made++;
            a += len;
        } else {
            a += 4096;   /* occupied page */
        }
    }
    return made;
}

static void test_full_child(void)
{
    void *warm = malloc(64);   /* this thread has a heap */
    hm_release_cached_mappings();   /* no cached span leaves a hole */
    size_t made = occupy_window();
    NOTE("full: %zu mappings fill the window's free parts", made);
    /* large blocks: far, and handled like any other */
    void *big = malloc(8u << 20);
    CHECK(big != NULL, "malloc(8 MiB) with the window full: %s", strerror(errno));
    EXPECT(!in_window(big) && map_kind(big) == HM_REGION_NONE, "%p: not a far block", big);
    EXPECT(hm_large_far_kind(big) == HM_REGION_LARGE, "%p not in the far set", big);
    EXPECT(malloc_usable_size(big) >= (8u << 20), "usable %zu", malloc_usable_size(big));
    memset(big, 3, 8u << 20);
    void *al = aligned_alloc(4u << 20, 5u << 20);
    CHECK(al != NULL, "aligned_alloc(4 MiB) with the window full");
    EXPECT(((uintptr_t)al & ((4u << 20) - 1)) == 0, "misaligned %p", al);
    EXPECT(hm_large_far_kind(al) == HM_REGION_LARGE, "%p not in the far set", al);
    void *al2 = aligned_alloc(2u << 20, 3u << 20);   /* user_off 2 MiB */
    CHECK(al2 != NULL, "aligned_alloc(2 MiB) with the window full");
    EXPECT(hm_large_far_kind(al2) == HM_REGION_LARGE, "%p not in the far set", al2);
    EXPECT(malloc_usable_size(al2) >= (3u << 20), "usable %zu", malloc_usable_size(al2));
    free(al2);
    uintptr_t big_addr = (uintptr_t)big;
    uint8_t *g = realloc((void *)big_addr, 200u << 20);
    CHECK(g != NULL, "realloc of a far block to 200 MiB");
    EXPECT(g[0] == 3 && g[(8u << 20) - 1] == 3, "realloc lost the contents");
    EXPECT(hm_large_far_kind(g) == HM_REGION_LARGE, "grown block %p not in the far set", g);
    if ((uintptr_t)g != big_addr)   /* the old address is only looked up */
        EXPECT(hm_large_far_kind((void *)big_addr) == HM_REGION_NONE,
               "old address %#lx still in the far set", (unsigned long)big_addr);
    g = realloc(g, 100);   /* far large -> small: no segment can be mapped */
    if (g) {
        EXPECT(g[0] == 3 && g[99] == 3, "shrinking realloc lost the contents");
        free(g);
    } else {
        EXPECT(errno == ENOMEM, "realloc to small: errno %d", errno);
    }
    free(al);
    /* many far blocks: the far set grows (blocks freed above may have left
     * holes in the window: a block there is in the map instead) */
    enum { NFAR = 2000 };
    static void *far[NFAR];
    for (int i = 0; i < NFAR; i++) {
        far[i] = malloc(300000 + (size_t)i);
        CHECK(far[i] != NULL, "far block %d", i);
        EXPECT(hm_large_far_kind(far[i]) == HM_REGION_LARGE || map_kind(far[i]) == HM_REGION_LARGE,
               "large block %d = %p neither far nor in the map", i, far[i]);
    }
    for (int i = 0; i < NFAR; i += 2)
        free(far[i]);
    for (int i = 1; i < NFAR; i += 2)
        EXPECT(malloc_usable_size(far[i]) >= 300000 + (size_t)i, "far block %d lost", i);
    for (int i = 1; i < NFAR; i += 2)
        free(far[i]);
    /* small blocks: segments cannot be outside the window; eventually ENOMEM */
    void *chain = NULL;
    size_t n = 0;
    for (;;) {
        errno = 0;
        void **p = malloc(100000);
        if (!p) {
            EXPECT(errno == ENOMEM, "segment exhaustion: errno %d", errno);
            break;
        }
        EXPECT(in_window(p), "medium block %p outside the window", (void *)p);
        *p = chain;
        chain = p;
        CHECK(++n < 100000, "medium blocks never ran out with the window full");
    }
    NOTE("full: %zu medium blocks from segments mapped before, then ENOMEM", n);
    /* the program gives 64 MiB of the window back: segments come again
     * (after the window's "no room" memo expires: 1 s, or one of our unmaps) */
    uintptr_t hole = HM_ARENA_LO + (HM_ARENA_HI - HM_ARENA_LO) / 2;
    CHECK(munmap((void *)hole, 64u << 20) == 0, "munmap: %s", strerror(errno));
    usleep(1100 * 1000);
    void *q = malloc(100000);
    EXPECT(q != NULL, "no medium block after the program unmapped part of the window");
    EXPECT(q == NULL || ((uintptr_t)q >= hole && (uintptr_t)q < hole + (64u << 20)),
           "%p: not in the hole", q);
    free(q);
    while (chain) {
        void **p = chain;
        chain = *p;
        free(p);
    }
    free(warm);
}

static void test_full(void)
{
    fflush(stdout);
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        test_full_child();
        _exit(test_failures_ ? 1 : 0);
    }
    int st;
    CHECK(waitpid(pid, &st, 0) == pid, "waitpid");
    EXPECT(WIFEXITED(st) && WEXITSTATUS(st) == 0, "full: child status 0x%x", st);
}

int main(void)
{
    test_window();
    test_foreign();
    test_full();
    return test_finish("unit_addrspace");
}
