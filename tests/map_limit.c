/* map_limit.c -- more live blocks than the kernel allows a process
 * mappings (vm.max_map_count, 65530 by default): every one of them is
 * served, aligned, and keeps its contents.
 *
 * Two kinds of block took a mapping each, so the 65,500th live one failed
 * with ENOMEM, where glibc, mimalloc, tcmalloc and jemalloc serve them all:
 *   aligned  posix_memalign(8192, 100-163): alignments above 4 KiB went to
 *            the large path. Up to 64 KiB they are now blocks of a segment
 *            (src/exports.c, aligned_alloc_pow2).
 *   large    malloc(300 KiB): a large span is 2 MiB-aligned, and the gap
 *            after a short span kept every span a mapping of its own. A
 *            span shorter than its chunk now maps the whole chunk, and the
 *            kernel merges adjacent ones (src/large/large.c, map_chunk).
 *   shrunk   malloc(1 MiB), then realloc to 300 KiB: the shrink unmapped the
 *            tail, splitting the merged run again; inside its chunk it now
 *            decommits it (span_cut).
 *
 * Each case holds max_map_count + 2000 blocks (at most 200,000; a limit
 * that many blocks do not reach is reported, not failed), writes each one's
 * index into it, checks every block is aligned and kept its index, then
 * frees them. Peak RSS about 550 MiB (the large case: a header page and a
 * data page per block). The large cases are skipped under a sanitizer: with
 * ThreadSanitizer's shadow mappings the kernel's limit came at 13,176
 * blocks, whatever the allocator does.
 *
 * Usage: map_limit [aligned|large|shrunk] (all by default) */
#include "test_util.h"

enum { EXTRA = 2000, MAX_BLOCKS = 200000 };

static void *blocks[MAX_BLOCKS];

static long max_map_count(void)
{
    char buf[32];
    if (hk_read_small_file("/proc/sys/vm/max_map_count", buf, sizeof buf) < 0)
        return -1;
    return strtol(buf, NULL, 10);
}

/* n blocks from alloc(i) (NULL on failure), each aligned to `align`. */
static void hold(const char *what, long n, size_t align, void *(*alloc)(long))
{
    long failed = 0, misaligned = 0, changed = 0;
    for (long i = 0; i < n; i++) {
        void *p = alloc(i);
        blocks[i] = p;
        if (!p) {
            if (!failed++)
                NOTE("%s: block #%ld failed: %s", what, i, strerror(errno));
            continue;
        }
        if ((uintptr_t)p % align)
            misaligned++;
        *(long *)p = i;
    }
    for (long i = 0; i < n; i++)
        if (blocks[i] && *(long *)blocks[i] != i)
            changed++;
    EXPECT(failed == 0, "%s: %ld of %ld blocks failed", what, failed, n);
    EXPECT(misaligned == 0, "%s: %ld blocks not aligned to %zu", what, misaligned, align);
    EXPECT(changed == 0, "%s: %ld blocks lost their contents (overlapping blocks)", what,
           changed);
    for (long i = 0; i < n; i++)
        free(blocks[i]);
    NOTE("%s: %ld live blocks", what, n - failed);
}

static void *alloc_aligned(long i)
{
    void *p = NULL;
    int rc = posix_memalign(&p, 8192, 100 + (size_t)(i % 64));
    if (rc)
        errno = rc;
    return rc ? NULL : p;
}

static void *alloc_large(long i)
{
    return malloc((300 << 10) + (size_t)(i % 64) * 16);
}

static void *alloc_shrunk(long i)
{
    char *p = malloc(1 << 20);
    if (!p)
        return NULL;
    p[(1 << 20) - 1] = 1;   /* the tail that goes back is resident */
    char *q = realloc(p, (300 << 10) + (size_t)(i % 64) * 16);
    if (!q)
        free(p);
    return q;
}

int main(int argc, char **argv)
{
    hk_require_if_expected("map_limit");
    long limit = max_map_count();
    long n = limit > 0 ? limit + EXTRA : 70000;
    if (n > MAX_BLOCKS) {
        NOTE("vm.max_map_count is %ld: %d blocks do not reach it", limit, MAX_BLOCKS);
        n = MAX_BLOCKS;
    }
    NOTE("vm.max_map_count %ld: %ld live blocks of each kind", limit, n);
    if (hk_selected(argc, argv, "aligned"))
        hold("posix_memalign(8192, ~100)", n, 8192, alloc_aligned);
    if (HK_SANITIZED) {
        NOTE("large, shrunk: skipped under a sanitizer (its shadow mappings count too)");
        return test_finish("map_limit");
    }
    if (hk_selected(argc, argv, "large"))
        hold("malloc(~300 KiB)", n, 16, alloc_large);
    if (hk_selected(argc, argv, "shrunk"))
        hold("malloc(1 MiB) shrunk to ~300 KiB", n, 16, alloc_shrunk);
    return test_finish("map_limit");
}
