/* bench_realloc_growth -- string builders: many buffers grown by realloc in
 * small steps, from 16 bytes up to as much as MAXSIZE.
 *
 * BUFFERS buffers live at once. Each step picks one at random and appends
 * 1..STEP bytes to it (realloc to the new length, then write every new byte,
 * as a program appending text would). A buffer that reaches its target
 * length is freed and a new one started at 16 bytes. Targets are drawn
 * log-uniformly between 64 bytes and MAXSIZE, so most buffers stay small and
 * a few grow large -- and since large ones take the most steps, the run
 * crosses every size range: tiny, medium and large blocks, and the moves
 * (or in-place growth, or mremap) between them. Each step also checks that
 * the buffer's first and last old bytes survived the realloc.
 *
 * Usage: bench_realloc_growth [OPS [BUFFERS [MAXSIZE [STEP [SEED]]]]]
 *   OPS      reallocs in all                        (default 4000000)
 *   BUFFERS  buffers growing at once                (default 64)
 *   MAXSIZE  largest target length in bytes         (default 1m)
 *   STEP     most bytes appended per step           (default 256)
 *   SEED     xorshift64 seed                        (default 42)
 * ops = reallocs (the frees and the initial mallocs are not counted).
 * "-" keeps a default; numbers take k/m/g suffixes (x1024).
 */
#include "bench_common.h"
#include <math.h>

struct buf {
    unsigned char *p;
    size_t len, target;
    unsigned char tag;
};

static uint64_t rng;
static size_t max_target;

static void start(struct buf *b)
{
    /* log-uniform in [64, max_target] */
    double u = (double)(xorshift64(&rng) >> 11) * 0x1.0p-53;
    double lo = log(64.0), hi = log((double)max_target);
    b->target = (size_t)exp(lo + u * (hi - lo));
    if (b->target < 64)
        b->target = 64;
    b->len = 16;
    b->tag = (unsigned char)(xorshift64(&rng) | 1);
    if (!(b->p = malloc(b->len)))
        bench_die("malloc failed");
    memset(b->p, b->tag, b->len);
}

int main(int argc, char **argv)
{
    bench_usage(argc, argv, "usage: bench_realloc_growth [OPS [BUFFERS [MAXSIZE [STEP [SEED]]]]]\n"
                            "  defaults: OPS=4000000 BUFFERS=64 MAXSIZE=1m STEP=256 SEED=42\n");
    unsigned long long ops = bench_arg(argc, argv, 1, 4000000);
    size_t nbuf = bench_arg(argc, argv, 2, 64);
    max_target = bench_arg(argc, argv, 3, 1 << 20);
    size_t step = bench_arg(argc, argv, 4, 256);
    rng = rng_seed(bench_arg(argc, argv, 5, 42));
    if (nbuf == 0 || step == 0 || max_target < 64)
        bench_die("need BUFFERS >= 1, STEP >= 1, MAXSIZE >= 64");

    struct buf *b = calloc(nbuf, sizeof *b);
    if (!b)
        bench_die("out of memory");
    for (size_t i = 0; i < nbuf; i++)
        start(&b[i]);

    unsigned long long finished = 0;
    double t0 = bench_now();
    for (unsigned long long k = 0; k < ops; k++) {
        struct buf *x = &b[xorshift64(&rng) % nbuf];
        size_t add = rng_range(&rng, 1, step);
        unsigned char *p = realloc(x->p, x->len + add);
        if (!p)
            bench_die("realloc failed");
        if (p[0] != x->tag || p[x->len - 1] != x->tag)
            bench_die("realloc lost the old contents");
        memset(p + x->len, x->tag, add);
        x->p = p;
        x->len += add;
        if (x->len >= x->target) {
            free(x->p);
            finished++;
            start(x);
        }
    }
    double t1 = bench_now();

    for (size_t i = 0; i < nbuf; i++)
        free(b[i].p);
    free(b);

    char extra[128];
    snprintf(extra, sizeof extra, "buffers=%zu maxsize=%zu step=%zu finished=%llu",
             nbuf, max_target, step, finished);
    bench_result("realloc_growth", 1, ops, t1 - t0, extra);
    return 0;
}
