/* bench_mid_mt -- T threads, each replacing blocks of 8..32 KiB at random in
 * its own working set: mid-size classes under multi-thread load, with no
 * sharing between threads (every free is local).
 *
 *   each thread: fill SLOTS slots (not timed); wait for all threads;
 *   loop STEPS times: pick a random slot, free it, malloc a random size in
 *   [MIN, MAX], touch it; then free everything (not timed).
 *
 * Touching: the first and last byte always; with PAGES=1 (default) also one
 * byte in every 4 KiB page, as a program that fills its buffers would, so
 * peak RSS reflects what the allocator really keeps resident.
 *
 * Usage: bench_mid_mt [THREADS [STEPS [SLOTS [MIN [MAX [PAGES [SEED]]]]]]]
 *   THREADS  threads                          (default 1)
 *   STEPS    replacements per thread          (default 5000000)
 *   SLOTS    working-set size per thread      (default 1000)
 *   MIN/MAX  size range in bytes              (default 8192 / 32768)
 *   PAGES    1: touch every page, 0: ends only (default 1)
 *   SEED     base seed (thread t uses SEED+t) (default 42)
 * ops = THREADS * STEPS; seconds = wall time from the common start to the
 * last thread finishing its steps (the body is bench/workingset.h, shared
 * with bench_large). "-" keeps a default; numbers take k/m/g
 * suffixes (x1024).
 */
#include "workingset.h"

int main(int argc, char **argv)
{
    bench_usage(argc, argv,
                "usage: bench_mid_mt [THREADS [STEPS [SLOTS [MIN [MAX [PAGES [SEED]]]]]]]\n"
                "  defaults: THREADS=1 STEPS=5000000 SLOTS=1000 MIN=8192 MAX=32768 PAGES=1 SEED=42\n");
    struct ws_params p = {
        .name = "mid_mt",
        .threads = (int)bench_arg(argc, argv, 1, 1),
        .steps = bench_arg(argc, argv, 2, 5000000),
        .nslots = bench_arg(argc, argv, 3, 1000),
        .min_size = bench_arg(argc, argv, 4, 8192),
        .max_size = bench_arg(argc, argv, 5, 32768),
        .touch_pages = (int)bench_arg(argc, argv, 6, 1),
        .seed = bench_arg(argc, argv, 7, 42),
        .mops_decimals = 3,
    };
    return ws_run(&p);
}
