/* aligned_many.c -- more live aligned blocks than the kernel allows
 * mappings: every one of them is served, aligned, and keeps its contents.
 *
 * Up to 64 KiB an alignment is served by a block of a segment
 * (src/exports.c, aligned_alloc_pow2). Before, every alignment above 4 KiB
 * took a mapping of its own, and the kernel's limit on a process's mappings
 * (vm.max_map_count, 65530 by default) made the 65,500th live
 * posix_memalign(8192, 100) fail with ENOMEM, where glibc, mimalloc,
 * tcmalloc and jemalloc serve them all.
 *
 * The test holds max_map_count + 2000 blocks (at most 200,000; fewer than
 * needed to reach the limit is reported, not failed) of 8 KiB alignment and
 * 100-163 bytes, writes each one's index into it, checks every address is
 * aligned and every block kept its index, then frees them. About 300 MiB is
 * resident at the peak (each block has its own 8 KiB).
 *
 * Usage: aligned_many */
#include "test_util.h"

enum { ALIGN = 8192, EXTRA = 2000, MAX_BLOCKS = 200000 };

static void *blocks[MAX_BLOCKS];

static long max_map_count(void)
{
    char buf[32];
    if (hk_read_small_file("/proc/sys/vm/max_map_count", buf, sizeof buf) < 0)
        return -1;
    return strtol(buf, NULL, 10);
}

int main(void)
{
    hk_require_if_expected("aligned_many");
    long limit = max_map_count();
    long n = limit > 0 ? limit + EXTRA : 70000;
    if (n > MAX_BLOCKS) {
        NOTE("vm.max_map_count is %ld: %d blocks do not reach it", limit, MAX_BLOCKS);
        n = MAX_BLOCKS;
    }
    NOTE("vm.max_map_count %ld: %ld live blocks aligned to %d", limit, n, ALIGN);
    long failed = 0, misaligned = 0, changed = 0;
    for (long i = 0; i < n; i++) {
        void *p = NULL;
        int rc = posix_memalign(&p, ALIGN, 100 + (size_t)(i % 64));
        if (rc != 0) {
            if (!failed++)
                NOTE("posix_memalign #%ld failed: %s", i, strerror(rc));
            blocks[i] = NULL;
            continue;
        }
        if ((uintptr_t)p % ALIGN)
            misaligned++;
        *(long *)p = i;
        blocks[i] = p;
    }
    for (long i = 0; i < n; i++)
        if (blocks[i] && *(long *)blocks[i] != i)
            changed++;
    EXPECT(failed == 0, "%ld of %ld posix_memalign(%d, ~100) failed", failed, n, ALIGN);
    EXPECT(misaligned == 0, "%ld blocks not aligned to %d", misaligned, ALIGN);
    EXPECT(changed == 0, "%ld blocks lost their contents (overlapping blocks)", changed);
    for (long i = 0; i < n; i++)
        free(blocks[i]);
    return test_finish("aligned_many");
}
