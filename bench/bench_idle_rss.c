/* bench_idle_rss.c -- is freed memory given back while its threads sleep?
 *
 * Usage: bench_idle_rss SIZE [THREADS=1] [TOTAL=1g] [MODE=local] [HOLD_MS=5000] [KEEP=0]
 *   THREADS threads each allocate TOTAL/THREADS bytes in blocks of SIZE and
 *   write every page of them; then the blocks are freed -- MODE local: by the
 *   thread that allocated them; remote: by another thread (the next one, or
 *   a freer thread when THREADS is 1) -- and every thread stays alive and
 *   sleeps without calling the allocator again. KEEP (per mille, default 0)
 *   of the blocks, picked at random, are not freed: a fragmented heap, whose
 *   free memory lies between live blocks. The main thread (which does
 *   not allocate either) samples RSS (/proc/self/statm) at fixed delays after
 *   the last free, up to HOLD_MS.
 *
 * Samples every 50 ms for the first second, every 250 ms up to 5 s, then
 * every second. Prints one "SAMPLE ms=<t> rss_mib=<r>" line per sample and
 * the RESULT line
 * with baseline_mib (RSS before the burst), peak_mib (all blocks live),
 * rss_end_mib (the last sample), kept_mib (the blocks KEEP left live),
 * back_ms (the first sample within 64 MiB of the baseline plus kept_mib; -1
 * if none). mops is the burst's malloc+free rate.
 *
 * The pointer arrays come from mmap and are written before the baseline, so
 * they are in it and never perturb the allocator.
 */
#include "bench_common.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <unistd.h>

static const char usage[] =
    "usage: bench_idle_rss SIZE [THREADS=1] [TOTAL=1g] [MODE=local|remote] [HOLD_MS=5000] [KEEP=0]\n";

typedef struct worker {
    pthread_t t;
    size_t n;
    void **blocks;          /* this thread's allocations */
    struct worker *freer;   /* who frees them (itself when local) */
} worker;

static size_t block_size;
static atomic_int go_alloc, allocated, go_free, freed, finish;
static int nworkers;
static unsigned keep_per_mille;

/* Block i of worker w stays live (KEEP): a fixed pseudo-random choice. */
static int kept(int w, size_t i)
{
    uint64_t x = (uint64_t)i * 0x9e3779b97f4a7c15ull ^ (uint64_t)(w + 1) * 0xbf58476d1ce4e5b9ull;
    x ^= x >> 31;
    return x % 1000 < keep_per_mille;
}

static void wait_for(atomic_int *v, int want)
{
    while (atomic_load(v) < want)
        usleep(1000);
}

static worker *workers;

/* Allocate this worker's blocks (if any), wait for main, free the blocks of
 * every worker whose freer this one is, then sleep. */
static void *thread_main(void *arg)
{
    worker *w = arg;
    wait_for(&go_alloc, 1);
    if (w->n) {
        for (size_t i = 0; i < w->n; i++) {
            char *p = malloc(block_size);
            if (!p)
                bench_die("malloc failed");
            for (size_t off = 0; off < block_size; off += 4096)
                p[off] = (char)i;
            p[block_size - 1] = (char)i;
            w->blocks[i] = p;
        }
        atomic_fetch_add(&allocated, 1);
    }
    wait_for(&go_free, 1);
    for (int k = 0; k < nworkers; k++) {
        worker *v = &workers[k];
        if (v->freer != w)
            continue;
        for (size_t i = 0; i < v->n; i++)
            if (!kept(k, i))
                free(v->blocks[i]);
    }
    atomic_fetch_add(&freed, 1);
    wait_for(&finish, 1);   /* asleep: no allocator call until the end */
    return NULL;
}

int main(int argc, char **argv)
{
    bench_usage(argc, argv, usage);
    if (argc < 2) {
        fputs(usage, stderr);
        return 2;
    }
    block_size = bench_arg(argc, argv, 1, 64);
    int nthreads = (int)bench_arg(argc, argv, 2, 1);
    size_t total = bench_arg(argc, argv, 3, (size_t)1 << 30);
    const char *mode = argc > 4 ? argv[4] : "local";
    unsigned long hold = bench_arg(argc, argv, 5, 5000);
    keep_per_mille = (unsigned)bench_arg(argc, argv, 6, 0);
    int remote = !strcmp(mode, "remote");
    if (!remote && strcmp(mode, "local"))
        bench_die("MODE is local or remote");
    if (block_size == 0 || nthreads < 1 || nthreads > 256 || keep_per_mille > 1000)
        bench_die("bad SIZE, THREADS or KEEP");

    /* With one thread, remote frees need a second (freer) thread. */
    int nw = nthreads + (remote && nthreads == 1);
    workers = mmap(NULL, sizeof(worker) * (size_t)nw, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    size_t per = total / block_size / (size_t)nthreads;
    for (int i = 0; i < nw; i++) {
        worker *w = &workers[i];
        w->n = i < nthreads ? per : 0;
        w->freer = remote ? &workers[(i + 1) % nw] : w;
        if (w->n) {
            w->blocks = mmap(NULL, w->n * sizeof(void *), PROT_READ | PROT_WRITE,
                             MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (w->blocks == MAP_FAILED)
                bench_die("mmap");
            memset(w->blocks, 0, w->n * sizeof(void *));
        }
    }
    nworkers = nw;
    size_t kept_blocks = 0;
    for (int i = 0; i < nw; i++)
        for (size_t k = 0; k < workers[i].n; k++)
            kept_blocks += (size_t)kept(i, k);
    double kept_mib = (double)kept_blocks * (double)block_size / 1048576.0;
    for (int i = 0; i < nw; i++)
        pthread_create(&workers[i].t, NULL, thread_main, &workers[i]);
    usleep(100000);
    double base = bench_rss_mib();
    double t0 = bench_now();
    atomic_store(&go_alloc, 1);
    wait_for(&allocated, nthreads);
    double peak = bench_rss_mib();
    atomic_store(&go_free, 1);
    wait_for(&freed, nw);
    double t1 = bench_now();

    /* every 50 ms for the first second, every 250 ms up to 5 s, then every
     * second; printed after the hold, so the main thread stays off the
     * allocator while it samples */
    enum { MAX_SAMPLES = 128 };
    unsigned long at[MAX_SAMPLES];
    double rss[MAX_SAMPLES];
    unsigned ns = 0;
    for (unsigned long t = 50; t <= hold && ns < MAX_SAMPLES; ns++) {
        at[ns] = t;
        t += t < 1000 ? 50 : t < 5000 ? 250 : 1000;
    }
    double last = 0;
    long back = -1;
    for (unsigned k = 0; k < ns; k++) {
        double wait = t1 + at[k] / 1000.0 - bench_now();
        if (wait > 0)
            usleep((useconds_t)(wait * 1e6));
        rss[k] = last = bench_rss_mib();
        if (back < 0 && last <= base + kept_mib + 64)
            back = (long)at[k];
    }
    for (unsigned k = 0; k < ns; k++)
        printf("SAMPLE ms=%lu rss_mib=%.1f\n", at[k], rss[k]);
    atomic_store(&finish, 1);
    for (int i = 0; i < nw; i++)
        pthread_join(workers[i].t, NULL);
    char extra[256];
    snprintf(extra, sizeof extra,
             "size=%zu mode=%s total=%zu baseline_mib=%.1f peak_mib=%.1f rss_end_mib=%.1f kept_mib=%.1f back_ms=%ld",
             block_size, mode, total, base, peak, last, kept_mib, back);
    bench_result("idle_rss", nthreads, per * (size_t)nthreads * 2, t1 - t0, extra);
    return 0;
}
