/* bench_big_heap.c -- one thread builds a heap of gigabytes out of medium
 * blocks, then frees it: does a malloc or free cost more when the heap is
 * large?
 *
 * Usage: bench_big_heap [rounds] [blocks] [min_size] [max_size]
 *   defaults: 8 rounds of 20000 blocks, sizes min_size << (i % k) up to
 *   max_size (16, 32, 64, 128, 256 KiB in turn: 1.9 GiB of address space).
 *
 * Each round allocates the blocks, writing one byte of each (so only a page
 * of each is resident: the heap is large in address space and in the
 * allocator's own structures, not in RAM), then frees them in the same
 * order. An allocator that walks its segments or pages to find room pays
 * in proportion to the heap there (hakmem before its fit lists: 70 us a
 * block with 2.5 GiB live, docs/analysis/heap-scaling.md).
 *
 * ops = blocks allocated + blocks freed. The RESULT line also gives the
 * microseconds per malloc over the first and the last tenth of the blocks
 * of the last round (malloc_us_early, malloc_us_late), and the same for free
 * (free_us_early: the heap at its largest), so that a cost that grows with
 * the heap shows as late/early far from 1. */
#include "bench_common.h"

enum { MAX_BLOCKS = 1 << 20 };

static char *blocks[MAX_BLOCKS];   /* the harness's own memory: not the allocator's */

int main(int argc, char **argv)
{
    bench_usage(argc, argv, "usage: bench_big_heap [rounds] [blocks] [min_size] [max_size]\n");
    size_t rounds = bench_arg(argc, argv, 1, 8);
    size_t n = bench_arg(argc, argv, 2, 20000);
    size_t min_size = bench_arg(argc, argv, 3, 16384);
    size_t max_size = bench_arg(argc, argv, 4, 262144);
    if (rounds < 1 || n < 10 || n > MAX_BLOCKS || min_size < 1 || max_size < min_size)
        bench_die("rounds >= 1, 10 <= blocks <= 1048576, 1 <= min_size <= max_size");
    unsigned steps = 1;
    while ((min_size << steps) <= max_size)
        steps++;
    size_t tenth = n / 10;
    double ma = 0, mb = 0, fa = 0, fb = 0;   /* last round's windows */
    double t0 = bench_now();
    for (size_t r = 0; r < rounds; r++) {
        double w0 = bench_now(), w1 = 0, w2 = 0;
        for (size_t i = 0; i < n; i++) {
            if (i == tenth)
                w1 = bench_now();
            if (i == n - tenth)
                w2 = bench_now();
            char *p = malloc(min_size << (i % steps));
            if (!p)
                bench_die("malloc failed");
            p[0] = (char)i;
            blocks[i] = p;
        }
        double w3 = bench_now();
        ma = (w1 - w0) / (double)tenth * 1e6;
        mb = (w3 - w2) / (double)tenth * 1e6;
        w0 = bench_now();
        for (size_t i = 0; i < n; i++) {
            if (i == tenth)
                w1 = bench_now();
            if (i == n - tenth)
                w2 = bench_now();
            if (blocks[i][0] != (char)i)
                bench_die("a block changed");
            free(blocks[i]);
        }
        w3 = bench_now();
        fa = (w1 - w0) / (double)tenth * 1e6;
        fb = (w3 - w2) / (double)tenth * 1e6;
    }
    double t1 = bench_now();
    char extra[200];
    snprintf(extra, sizeof extra,
             "rounds=%zu blocks=%zu min=%zu max=%zu malloc_us_early=%.2f malloc_us_late=%.2f "
             "free_us_early=%.2f free_us_late=%.2f",
             rounds, n, min_size, max_size, ma, mb, fa, fb);
    bench_result("big_heap", 1, (unsigned long long)(rounds * n * 2), t1 - t0, extra);
    return 0;
}
