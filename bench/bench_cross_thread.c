/* bench_cross_thread -- producer/consumer: every free is a remote free.
 *
 * A producer thread mallocs blocks of MIN..MAX bytes (random), writes their
 * first and last byte, and hands them to a consumer thread through a
 * lock-free single-producer single-consumer ring, publishing BATCH blocks at
 * a time. The consumer reads the last byte, writes the first, and frees the
 * block -- on a thread that did not allocate it. This is the pattern of
 * pipelines and work queues, and the case where allocators differ most.
 *
 * Usage: bench_cross_thread [BLOCKS [BATCH [MIN [MAX [RING [PIN [SEED]]]]]]]
 *   BLOCKS  blocks passed in total                (default 20000000)
 *   BATCH   blocks published per ring update      (default 64)
 *   MIN/MAX block size range in bytes             (default 16 / 512)
 *   RING    ring capacity, power of 2, >= BATCH   (default 4096)
 *   PIN     1: pin producer and consumer to two different CPUs of the
 *           allowed set (when there are two), 0: let the scheduler place
 *           them                                  (default 1)
 *   SEED    xorshift64 seed                       (default 42)
 * ops = BLOCKS (each a malloc on the producer + a free on the consumer);
 * seconds = wall time until the consumer has freed the last block.
 * threads=2 in the RESULT line. PIN: see bench_threads.h for why.
 * "-" keeps a default; numbers take k/m/g suffixes (x1024).
 */
#include "bench_common.h"
#include "bench_threads.h"
#include <stdatomic.h>

static int cpu_for[2] = { -1, -1 };     /* producer, consumer; -1: not pinned */

struct item {
    char *p;
    size_t n;
};

#define CACHE_LINE 64
static struct {
    _Alignas(CACHE_LINE) _Atomic size_t head;  /* next item the consumer reads */
    _Alignas(CACHE_LINE) _Atomic size_t tail;  /* next item the producer writes */
    _Alignas(CACHE_LINE) struct item *buf;
    size_t mask;
} ring;

static unsigned long long nblocks;
static size_t batch, min_size, max_size;
static uint64_t seed;

static void *producer_main(void *arg)
{
    (void)arg;
    bench_pin_self(cpu_for[0]);
    uint64_t rng = rng_seed(seed);
    size_t cap = ring.mask + 1;
    size_t tail = 0;
    size_t head_seen = 0;
    for (unsigned long long done = 0; done < nblocks;) {
        size_t k = batch;
        if (nblocks - done < k)
            k = (size_t)(nblocks - done);
        bench_ring_wait_room(&ring.head, &head_seen, tail + k, cap);
        for (size_t i = 0; i < k; i++) {
            size_t n = rng_range(&rng, min_size, max_size);
            char *p = malloc(n);
            if (!p)
                bench_die("malloc failed");
            p[0] = 1;
            p[n - 1] = (char)n;
            ring.buf[(tail + i) & ring.mask] = (struct item){ p, n };
        }
        tail += k;
        atomic_store_explicit(&ring.tail, tail, memory_order_release);
        done += k;
    }
    return NULL;
}

static void *consumer_main(void *arg)
{
    unsigned long long *sum_out = arg;
    bench_pin_self(cpu_for[1]);
    unsigned long long sum = 0;
    size_t head = 0;
    for (unsigned long long done = 0; done < nblocks;) {
        size_t tail = bench_ring_wait_items(&ring.tail, head);
        for (; head != tail; head++, done++) {
            struct item it = ring.buf[head & ring.mask];
            sum += (unsigned char)it.p[it.n - 1];
            it.p[0] = 2;
            free(it.p);
        }
        atomic_store_explicit(&ring.head, head, memory_order_release);
    }
    *sum_out = sum;
    return NULL;
}

int main(int argc, char **argv)
{
    bench_usage(argc, argv,
                "usage: bench_cross_thread [BLOCKS [BATCH [MIN [MAX [RING [PIN [SEED]]]]]]]\n"
                "  defaults: BLOCKS=20000000 BATCH=64 MIN=16 MAX=512 RING=4096 PIN=1 SEED=42\n");
    nblocks = bench_arg(argc, argv, 1, 20000000);
    batch = bench_arg(argc, argv, 2, 64);
    min_size = bench_arg(argc, argv, 3, 16);
    max_size = bench_arg(argc, argv, 4, 512);
    size_t cap = bench_arg(argc, argv, 5, 4096);
    int pin = (int)bench_arg(argc, argv, 6, 1);
    seed = bench_arg(argc, argv, 7, 42);
    if (batch == 0 || cap < batch || (cap & (cap - 1)) != 0 || min_size == 0 || max_size < min_size)
        bench_die("need 1 <= BATCH <= RING, RING a power of 2, 1 <= MIN <= MAX");

    ring.buf = calloc(cap, sizeof *ring.buf);
    if (!ring.buf)
        bench_die("out of memory");
    ring.mask = cap - 1;
    if (pin)
        bench_two_cpus(cpu_for);

    unsigned long long sum = 0;
    pthread_t prod, cons;
    double t0 = bench_now();
    if (pthread_create(&cons, NULL, consumer_main, &sum) != 0 ||
        pthread_create(&prod, NULL, producer_main, NULL) != 0)
        bench_die("pthread_create failed");
    pthread_join(prod, NULL);
    pthread_join(cons, NULL);
    double t1 = bench_now();
    free(ring.buf);

    char extra[160];
    snprintf(extra, sizeof extra, "batch=%zu min=%zu max=%zu ring=%zu pinned=%d check=%llu",
             batch, min_size, max_size, cap, cpu_for[0] >= 0, sum & 0xff);
    bench_result("cross_thread", 2, nblocks, t1 - t0, extra);
    return 0;
}
