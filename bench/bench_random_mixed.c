/* bench_random_mixed -- one thread, a working set of small blocks replaced
 * at random: frees and mallocs of different sizes interleave in no order,
 * which defeats pure LIFO caching and exercises size-class lookup.
 *
 *   fill SLOTS slots with random-size blocks (not timed);
 *   loop STEPS times:
 *       pick a random slot, free its block, malloc a random size in
 *       [MIN, MAX] into it, write the first and last byte;
 *   free everything (not timed).
 *
 * Usage: bench_random_mixed [STEPS [SLOTS [MIN [MAX [SEED]]]]]
 *   STEPS  replacements                    (default 40000000)
 *   SLOTS  working-set size                (default 4096)
 *   MIN    smallest size in bytes          (default 8)
 *   MAX    largest size in bytes           (default 128)
 *   SEED   xorshift64 seed, fixed per run  (default 42)
 * ops = STEPS (each step is one free + one malloc). "-" keeps a default;
 * numbers take k/m/g suffixes (x1024).
 */
#include "bench_common.h"

int main(int argc, char **argv)
{
    bench_usage(argc, argv, "usage: bench_random_mixed [STEPS [SLOTS [MIN [MAX [SEED]]]]]\n"
                            "  defaults: STEPS=40000000 SLOTS=4096 MIN=8 MAX=128 SEED=42\n");
    unsigned long long steps = bench_arg(argc, argv, 1, 40000000);
    size_t slots = bench_arg(argc, argv, 2, 4096);
    size_t min = bench_arg(argc, argv, 3, 8);
    size_t max = bench_arg(argc, argv, 4, 128);
    uint64_t rng = rng_seed(bench_arg(argc, argv, 5, 42));
    if (slots == 0 || min == 0 || max < min)
        bench_die("need SLOTS >= 1 and 1 <= MIN <= MAX");

    char **slot = calloc(slots, sizeof *slot);
    size_t *len = calloc(slots, sizeof *len);
    if (!slot || !len)
        bench_die("out of memory");
    for (size_t i = 0; i < slots; i++) {
        len[i] = rng_range(&rng, min, max);
        if (!(slot[i] = malloc(len[i])))
            bench_die("malloc failed");
        slot[i][0] = slot[i][len[i] - 1] = 1;
    }

    unsigned long long sum = 0;
    double t0 = bench_now();
    for (unsigned long long s = 0; s < steps; s++) {
        size_t i = (size_t)(xorshift64(&rng) % slots);
        sum += (unsigned char)slot[i][len[i] - 1];
        free(slot[i]);
        size_t n = rng_range(&rng, min, max);
        char *p = malloc(n);
        if (!p)
            bench_die("malloc failed");
        p[0] = (char)s;
        p[n - 1] = (char)n;
        slot[i] = p;
        len[i] = n;
    }
    double t1 = bench_now();

    for (size_t i = 0; i < slots; i++)
        free(slot[i]);
    free(slot);
    free(len);

    char extra[128];
    snprintf(extra, sizeof extra, "slots=%zu min=%zu max=%zu check=%llu",
             slots, min, max, sum & 0xff);
    bench_result("random_mixed", 1, steps, t1 - t0, extra);
    return 0;
}
