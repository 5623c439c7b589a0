/* bench_tiny_hot -- the hottest path: one thread, malloc and free of a small
 * size in LIFO batches, so every block is served from thread-local caches.
 *
 *   loop ITERS times:
 *       allocate BATCH blocks of SIZE bytes, write their first and last byte;
 *       free all BATCH blocks (in allocation order).
 *
 * Usage: bench_tiny_hot [ITERS [SIZE [BATCH]]]
 *   ITERS  outer iterations                (default 1000000)
 *   SIZE   block size in bytes             (default 32)
 *   BATCH  blocks per iteration, <= 4096   (default 100)
 * ops = ITERS * BATCH malloc+free pairs. "-" keeps a default; numbers take
 * k/m/g suffixes (x1024).
 *
 * Built with -fno-builtin-malloc/-free so the compiler cannot pair up and
 * delete the calls. scripts/callgrind-pair.sh runs this with N and 2N
 * iterations to get instructions per pair.
 */
#include "bench_common.h"

#define MAX_BATCH 4096

int main(int argc, char **argv)
{
    bench_usage(argc, argv, "usage: bench_tiny_hot [ITERS [SIZE [BATCH]]]\n"
                            "  defaults: ITERS=1000000 SIZE=32 BATCH=100\n");
    unsigned long long iters = bench_arg(argc, argv, 1, 1000000);
    size_t size = bench_arg(argc, argv, 2, 32);
    size_t batch = bench_arg(argc, argv, 3, 100);
    if (size == 0 || batch == 0 || batch > MAX_BATCH)
        bench_die("need SIZE >= 1 and 1 <= BATCH <= 4096");

    static void *blocks[MAX_BATCH];
    unsigned long long sum = 0;

    double t0 = bench_now();
    for (unsigned long long it = 0; it < iters; it++) {
        for (size_t i = 0; i < batch; i++) {
            char *p = malloc(size);
            if (!p)
                bench_die("malloc failed");
            p[0] = (char)i;
            p[size - 1] = (char)it;
            blocks[i] = p;
        }
        for (size_t i = 0; i < batch; i++) {
            sum += (unsigned char)((char *)blocks[i])[0];
            free(blocks[i]);
        }
    }
    double t1 = bench_now();

    char extra[96];
    snprintf(extra, sizeof extra, "size=%zu batch=%zu check=%llu", size, batch, sum & 0xff);
    bench_result("tiny_hot", 1, iters * batch, t1 - t0, extra);
    return 0;
}
