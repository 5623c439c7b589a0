/* bench_many_to_one.c -- many threads allocate, one thread frees it all.
 *
 * Usage: bench_many_to_one [threads] [iterations] [max_shift] [batch]
 *   defaults: 4 producers, 100000 iterations each, max_shift 19, batch 100.
 *
 * Each producer, at iteration i, allocates 8 blocks of 4 << (i % (max_shift
 * + 1)) bytes (4 B .. 2 MiB with the default: small, medium and large
 * blocks in turn), writes their first word, and keeps the pointers in a
 * local batch; a full batch is appended to one shared list under a mutex.
 * One consumer thread takes the list's lock, frees every block on it (after
 * reading its usable size and checking the word), and empties it -- holding
 * the lock while it frees, so producers wait on a slow free. Every free is a
 * free by another thread. The pattern of snmalloc's "lotsofthread" test (a
 * report against mimalloc's remote frees): how an allocator copes when one
 * thread returns the memory of many, in bursts, large blocks included.
 *
 * ops = blocks allocated (and freed); seconds = until the consumer freed the
 * last one. threads= in the RESULT line counts the producers. */
#include "bench_common.h"

#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>

enum { MAX_PRODUCERS = 64, PER_ITER = 8 };

static pthread_mutex_t list_lock = PTHREAD_MUTEX_INITIALIZER;
static void **list;            /* the shared list: a fixed array, no malloc */
static size_t list_len, list_cap;
static size_t iterations, batch_max;
static unsigned max_shift;
static atomic_int producers_left;
static unsigned long long bad_words, bytes_freed;

/* Appends a batch; if the consumer lags far behind, waits for room. */
static void publish(void **batch, size_t n)
{
    for (;;) {
        pthread_mutex_lock(&list_lock);
        if (list_len + n <= list_cap) {
            memcpy(list + list_len, batch, n * sizeof *batch);
            list_len += n;
            pthread_mutex_unlock(&list_lock);
            return;
        }
        pthread_mutex_unlock(&list_lock);
        sched_yield();
    }
}

static void *producer(void *arg)
{
    void **batch = arg;
    size_t n = 0;
    for (size_t i = 0; i < iterations; i++) {
        size_t size = (size_t)4 << (i % (max_shift + 1));
        for (int j = 0; j < PER_ITER; j++) {
            int *p = malloc(size);
            if (!p)
                bench_die("malloc failed");
            *p = 1523;
            batch[n++] = p;
            if (n == batch_max) {
                publish(batch, n);
                n = 0;
            }
        }
    }
    if (n)
        publish(batch, n);
    atomic_fetch_sub(&producers_left, 1);
    return NULL;
}

static void *consumer(void *arg)
{
    (void)arg;
    for (;;) {
        int last = atomic_load(&producers_left) == 0;   /* before the final sweep */
        pthread_mutex_lock(&list_lock);
        for (size_t k = 0; k < list_len; k++) {
            int *p = list[k];
            bytes_freed += malloc_usable_size(p);
            bad_words += *p != 1523;
            free(p);
        }
        list_len = 0;
        pthread_mutex_unlock(&list_lock);
        if (last)
            return NULL;
    }
}

int main(int argc, char **argv)
{
    bench_usage(argc, argv,
                "usage: bench_many_to_one [threads] [iterations] [max_shift] [batch]\n");
    int threads = (int)bench_arg(argc, argv, 1, 4);
    iterations = bench_arg(argc, argv, 2, 100000);
    max_shift = (unsigned)bench_arg(argc, argv, 3, 19);
    batch_max = bench_arg(argc, argv, 4, 100);
    if (threads < 1 || threads > MAX_PRODUCERS || max_shift > 24 || batch_max < 1)
        bench_die("threads 1..64, max_shift <= 24, batch >= 1");
    /* The list and the batches are the harness's own memory: mmap'd by the
     * C library's calloc before the clock starts would be measured as the
     * allocator's; take them from a static-sized pool instead. */
    static void *pool[(1u << 22)];
    list_cap = sizeof pool / sizeof pool[0] - (size_t)threads * batch_max;
    if (list_cap < 64 * batch_max)
        bench_die("batch too large");
    list = pool;
    pthread_t prod[MAX_PRODUCERS], cons;
    atomic_store(&producers_left, threads);
    double t0 = bench_now();
    if (pthread_create(&cons, NULL, consumer, NULL) != 0)
        bench_die("pthread_create");
    for (int t = 0; t < threads; t++)
        if (pthread_create(&prod[t], NULL, producer, pool + list_cap + (size_t)t * batch_max) != 0)
            bench_die("pthread_create");
    for (int t = 0; t < threads; t++)
        pthread_join(prod[t], NULL);
    pthread_join(cons, NULL);
    double t1 = bench_now();
    if (bad_words)
        bench_die("a block's first word changed before its free");
    char extra[160];
    snprintf(extra, sizeof extra, "iterations=%zu max_shift=%u batch=%zu freed_mib=%.0f", iterations,
             max_shift, batch_max, (double)bytes_freed / 1048576.0);
    bench_result("many_to_one", threads, (unsigned long long)threads * iterations * PER_ITER,
                 t1 - t0, extra);
    return 0;
}
