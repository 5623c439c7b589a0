/* bench_phased -- a program whose behaviour changes every few seconds: four
 * phases with different size mixes and thread counts, run one after the
 * other (CYCLES times). An allocator tuned for one phase meets the next;
 * hakmem's learning layer is judged on how it follows the changes.
 *
 *   phase  sizes                                    threads  slots/thread
 *   tiny   16 - 128 B                                  1        4096
 *   mid    1 - 32 KiB                                  2        1024
 *   large  256 KiB - 2 MiB                             4          16
 *   mixed  85% 16-512 B, 14% 512 B-32 KiB,             2        2048
 *          1% 256 KiB-1 MiB
 *
 * In each phase every thread fills its slots, then replaces a random slot
 * (free, malloc, touch: one byte per 4 KiB page and the last byte) until the
 * phase's time is up, then frees everything and exits; the next phase starts
 * new threads. Only the replacements are counted and timed.
 *
 * Usage: bench_phased [PHASE_SECONDS [CYCLES [SEED]]]
 *   PHASE_SECONDS  length of each phase, decimals allowed   (default 2)
 *   CYCLES         times the four phases are run            (default 1)
 *   SEED           base seed                                (default 42)
 * Prints one "PHASE ..." line per phase, then the RESULT line, in which
 *   mops = the GEOMETRIC MEAN of the phases' Mops/s -- every phase counts
 *          the same, although the tiny phase does a thousand times more
 *          operations than the large one;
 *   ops, seconds = totals over all phases, and total_mops = ops/seconds;
 *   <phase>_mops = each phase's rate (the mean over cycles).
 */
#include "bench_common.h"
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>

enum { P_TINY, P_MID, P_LARGE, P_MIXED, NPHASES };

static const struct phase {
    const char *name;
    int threads;
    size_t slots;
} phases[NPHASES] = {
    [P_TINY] = { "tiny", 1, 4096 },
    [P_MID] = { "mid", 2, 1024 },
    [P_LARGE] = { "large", 4, 16 },
    [P_MIXED] = { "mixed", 2, 2048 },
};

static size_t draw_size(int phase, uint64_t *rng)
{
    switch (phase) {
    case P_TINY:
        return rng_range(rng, 16, 128);
    case P_MID:
        return rng_range(rng, 1 << 10, 32 << 10);
    case P_LARGE:
        return rng_range(rng, 256 << 10, 2 << 20);
    default: {
        unsigned r = (unsigned)(xorshift64(rng) % 100);
        if (r < 85)
            return rng_range(rng, 16, 512);
        if (r < 99)
            return rng_range(rng, 512, 32 << 10);
        return rng_range(rng, 256 << 10, 1 << 20);
    }
    }
}

static void touch(char *p, size_t n, unsigned char v)
{
    for (size_t off = 0; off < n; off += 4096)
        p[off] = (char)v;
    p[n - 1] = (char)v;
}

static atomic_int stop;
static pthread_barrier_t barrier;

struct worker {
    pthread_t tid;
    int phase;
    uint64_t seed;
    unsigned long long ops, sum;
    double end;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    uint64_t rng = rng_seed(w->seed);
    size_t n = phases[w->phase].slots;
    char **slot = calloc(n, sizeof *slot);
    size_t *len = calloc(n, sizeof *len);
    if (!slot || !len)
        bench_die("out of memory");
    for (size_t i = 0; i < n; i++) {
        len[i] = draw_size(w->phase, &rng);
        if (!(slot[i] = malloc(len[i])))
            bench_die("malloc failed");
        touch(slot[i], len[i], 1);
    }

    pthread_barrier_wait(&barrier);
    unsigned long long ops = 0, sum = 0;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        for (int k = 0; k < 16; k++) {
            size_t i = (size_t)(xorshift64(&rng) % n);
            sum += (unsigned char)slot[i][len[i] - 1];
            free(slot[i]);
            size_t sz = draw_size(w->phase, &rng);
            char *p = malloc(sz);
            if (!p)
                bench_die("malloc failed");
            touch(p, sz, (unsigned char)k);
            slot[i] = p;
            len[i] = sz;
        }
        ops += 16;
    }
    w->end = bench_now();
    w->ops = ops;
    w->sum = sum;

    for (size_t i = 0; i < n; i++)
        free(slot[i]);
    free(slot);
    free(len);
    return NULL;
}

static void sleep_for(double s)
{
    struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };
    while (nanosleep(&ts, &ts) != 0)
        ;
}

int main(int argc, char **argv)
{
    bench_usage(argc, argv, "usage: bench_phased [PHASE_SECONDS [CYCLES [SEED]]]\n"
                            "  defaults: PHASE_SECONDS=2 CYCLES=1 SEED=42\n");
    double phase_s = 2;
    if (argc > 1 && strcmp(argv[1], "-") != 0) {
        char *end;
        phase_s = strtod(argv[1], &end);
        if (end == argv[1] || *end || !(phase_s > 0))
            bench_die("PHASE_SECONDS: want a number > 0");
    }
    unsigned long long cycles = bench_arg(argc, argv, 2, 1);
    uint64_t seed = bench_arg(argc, argv, 3, 42);
    if (cycles == 0)
        bench_die("need CYCLES >= 1");

    double rate_sum[NPHASES] = { 0 };
    unsigned long long total_ops = 0, sum = 0;
    double total_s = 0, log_sum = 0;
    int max_threads = 0;
    for (unsigned long long c = 0; c < cycles; c++) {
        for (int ph = 0; ph < NPHASES; ph++) {
            int nt = phases[ph].threads;
            if (nt > max_threads)
                max_threads = nt;
            struct worker w[8];
            atomic_store(&stop, 0);
            pthread_barrier_init(&barrier, NULL, (unsigned)nt + 1);
            for (int t = 0; t < nt; t++) {
                w[t] = (struct worker){ .phase = ph,
                                        .seed = seed + 1000 * c + 10 * (uint64_t)ph + (uint64_t)t };
                if (pthread_create(&w[t].tid, NULL, worker_main, &w[t]) != 0)
                    bench_die("pthread_create failed");
            }
            pthread_barrier_wait(&barrier);
            double t0 = bench_now();
            sleep_for(phase_s);
            atomic_store(&stop, 1);
            double t1 = t0;
            unsigned long long ops = 0;
            for (int t = 0; t < nt; t++) {
                pthread_join(w[t].tid, NULL);
                ops += w[t].ops;
                sum += w[t].sum;
                if (w[t].end > t1)
                    t1 = w[t].end;
            }
            pthread_barrier_destroy(&barrier);
            double mops = (double)ops / (t1 - t0) / 1e6;
            printf("PHASE cycle=%llu phase=%s threads=%d ops=%llu seconds=%.6f mops=%.4f\n",
                   c + 1, phases[ph].name, nt, ops, t1 - t0, mops);
            fflush(stdout);
            rate_sum[ph] += mops;
            log_sum += log(mops > 0 ? mops : 1e-9);
            total_ops += ops;
            total_s += t1 - t0;
        }
    }

    double geo = exp(log_sum / (double)(cycles * NPHASES));
    printf("RESULT bench=phased threads=%d ops=%llu seconds=%.6f mops=%.4f total_mops=%.3f "
           "cycles=%llu phase_seconds=%g",
           max_threads, total_ops, total_s, geo, (double)total_ops / total_s / 1e6, cycles, phase_s);
    for (int ph = 0; ph < NPHASES; ph++)
        printf(" %s_mops=%.4f", phases[ph].name, rate_sum[ph] / (double)cycles);
    printf(" check=%llu\n", sum & 0xff);
    return 0;
}
