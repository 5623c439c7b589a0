/* bench_large -- large blocks (256 KiB - 8 MiB): a working set of SLOTS
 * blocks per thread, replaced at random, each new block written page by
 * page as a program filling a buffer would.
 *
 *   each thread: fill SLOTS slots (not timed); wait for all threads;
 *   loop STEPS times: pick a random slot, free it, malloc a random size in
 *   [MIN, MAX], touch it; then free everything (not timed).
 *
 * Touching: with PAGES=1 (default) one byte in every 4 KiB page, so the cost
 * of fresh pages (the page faults after mmap or MADV_DONTNEED) is part of
 * the figure -- that is where large-block allocators differ: caching and
 * reusing mappings vs returning them to the OS. PAGES=0 writes the first and
 * last byte only. Peak RSS shows what the caching costs.
 *
 * Usage: bench_large [STEPS [SLOTS [MIN [MAX [THREADS [PAGES [SEED [OFFSET]]]]]]]]
 *   STEPS    replacements per thread          (default 20000)
 *   SLOTS    working-set size per thread      (default 32)
 *   MIN/MAX  size range in bytes              (default 256k / 8m)
 *   THREADS  threads                          (default 1)
 *   PAGES    1: touch every page, 0: ends only (default 1)
 *   SEED     base seed (thread t uses SEED+t) (default 42)
 *   OFFSET   bytes into each page (after the first) the touch writes,
 *            from the block's start, < 4096       (default 0)
 * ops = THREADS * STEPS; seconds = wall time from the common start to the
 * last thread finishing its steps; mops has six decimals here (the body is
 * bench/workingset.h, shared with bench_mid_mt). "-" keeps a default; numbers take k/m/g
 * suffixes (x1024).
 */
#include "workingset.h"

int main(int argc, char **argv)
{
    bench_usage(argc, argv,
                "usage: bench_large [STEPS [SLOTS [MIN [MAX [THREADS [PAGES [SEED [OFFSET]]]]]]]]\n"
                "  defaults: STEPS=20000 SLOTS=32 MIN=256k MAX=8m THREADS=1 PAGES=1 SEED=42 OFFSET=0\n");
    struct ws_params p = {
        .name = "large",
        .threads = (int)bench_arg(argc, argv, 5, 1),
        .steps = bench_arg(argc, argv, 1, 20000),
        .nslots = bench_arg(argc, argv, 2, 32),
        .min_size = bench_arg(argc, argv, 3, 256 << 10),
        .max_size = bench_arg(argc, argv, 4, 8 << 20),
        .touch_pages = (int)bench_arg(argc, argv, 6, 1),
        .seed = bench_arg(argc, argv, 7, 42),
        .touch_offset = bench_arg(argc, argv, 8, 0) % 4096,
        .mops_decimals = 6,
    };
    return ws_run(&p);
}
