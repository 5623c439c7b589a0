/* bench_threads.h -- helpers for benchmarks whose threads hand blocks to
 * each other (header only).
 *
 * Owns: where a producer and a consumer run (pinned to two different CPUs)
 * and how one waits for the other (spin, then yield), also at the two ends
 * of a single-producer single-consumer ring whose positions (head: next
 * item the consumer takes, tail: next slot the producer fills) only grow.
 * Never: allocates memory.
 *
 * Why pin: unpinned, the scheduler sometimes puts both threads on one CPU;
 * they then take turns filling and draining the ring, every free is
 * cache-hot and nothing is concurrent, and the figure jumps by 2-5x between
 * runs.
 */
#ifndef HAKMEM_BENCH_THREADS_H
#define HAKMEM_BENCH_THREADS_H

#include <pthread.h>
#include <sched.h>
#include <stdint.h>

#include "bench_common.h"   /* bench_now */
#include <stdatomic.h>
#include <stddef.h>

/* Pin the calling thread to cpu; -1: leave it where it is. Best effort. */
static inline void bench_pin_self(int cpu)
{
    if (cpu < 0)
        return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

/* The first two CPUs this process may run on in cpu[0] and cpu[1], or -1 in
 * both when it may run on fewer. */
static inline void bench_two_cpus(int cpu[2])
{
    cpu[0] = cpu[1] = -1;
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0)
        return;
    int n = 0;
    for (int c = 0; c < CPU_SETSIZE && n < 2; c++)
        if (CPU_ISSET(c, &set))
            cpu[n++] = c;
    if (n < 2)
        cpu[0] = cpu[1] = -1;
}

/* Spin briefly, then let the other thread run (2-core machines are shared).
 * Start each wait with *spins = 0. */
static inline void bench_backoff(unsigned *spins)
{
    if (++*spins < 64) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
    } else {
        sched_yield();
    }
}

/* Producer: wait until the ring of cap slots has room for every slot before
 * end, i.e. the consumer's head is at least end - cap. *head_seen caches the
 * head last read, so the consumer's cache line is read only when needed. */
static inline void bench_ring_wait_room(_Atomic size_t *head, size_t *head_seen,
                                        size_t end, size_t cap)
{
    unsigned spins = 0;
    while (end - *head_seen > cap) {
        *head_seen = atomic_load_explicit(head, memory_order_acquire);
        if (end - *head_seen > cap)
            bench_backoff(&spins);
    }
}

/* Consumer: wait until the producer has published an item at or after head;
 * returns its tail (every slot before it is filled). */
static inline size_t bench_ring_wait_items(_Atomic size_t *tail, size_t head)
{
    unsigned spins = 0;
    size_t t;
    while ((t = atomic_load_explicit(tail, memory_order_acquire)) == head)
        bench_backoff(&spins);
    return t;
}

/* Run fn(i) on n new threads (i = 0 .. n-1) and wait for them; returns the
 * seconds from the first create to the last join. Exits if a thread cannot
 * be created. */
static inline double bench_run_threads(size_t n, void *(*fn)(void *))
{
    pthread_t tid[1024];
    if (n > 1024) {
        fputs("bench: more than 1024 threads\n", stderr);
        exit(1);
    }
    double t0 = bench_now();
    for (size_t i = 0; i < n; i++)
        if (pthread_create(&tid[i], NULL, fn, (void *)(uintptr_t)i) != 0) {
            fputs("bench: pthread_create failed\n", stderr);
            exit(1);
        }
    for (size_t i = 0; i < n; i++)
        pthread_join(tid[i], NULL);
    return bench_now() - t0;
}

#endif
