/* waves.c -- threads that hand their blocks to the next wave and exit must
 * not make memory pile up (issue 10: Larson-style server churn).
 *
 * WAVES waves of THREADS threads run one after another. Thread i of a wave
 * inherits the BLOCKS blocks that thread i of the previous wave left, and
 * replaces them at random, STEPS times (free one -- written by the other,
 * exited thread; its contents are checked first -- then malloc a new one of
 * a random size, 16 B - 1 KiB and, one in eight, up to 32 KiB). Then it
 * exits; its blocks stay live for the next wave. So every wave frees into
 * segments of threads that exited, as a server whose workers come and go
 * does.
 *
 * After each wave the test compares the bytes of hakmem's memory that are
 * resident (hakmem_stats_get: mincore over its segments and large blocks)
 * with the live bytes it holds (every page of a live block is touched), with
 * HAKMEM_PURGE_DELAY_MS=0 and without the background thread (CTest sets
 * both): free memory is given back at the owner's next purge check, so what
 * stays resident is what the allocator cannot give back -- fragmentation,
 * and memory stranded in segments no thread uses -- not the free memory a
 * purge delay keeps on purpose, and nothing depends on a timer on a loaded
 * machine. Past a warm-up, resident must stay within RATIO x live + SLACK,
 * and must not grow with the number of waves (the last wave at most GROWTH
 * times the most resident of waves GROWTH_FROM .. GROWTH_FROM + 7): a
 * pile-up of abandoned or stranded segments grows with every wave.
 *   Measured with the defaults (50 waves of 2 threads, 8000 blocks each,
 * 41 MiB live; 3 runs): worst 1.70-1.75x, flat after wave 8. The code before
 * reclaim on free (6b08e95) measured 1.88-2.04x: this test does not tell the
 * two apart (the peak-RSS gain is in docs/analysis/handoff-footprint.md);
 * what it catches is a pile-up: reclaim on free without its credits fails
 * the growth check (66 MB resident after wave 8, 86 MB after wave 49).
 *
 *   With four threads a wave and 2000 blocks each (`waves 100 4 2000 3.0`,
 * the waves_4t tests: 21.5 MiB live, more threads exiting per live byte),
 * what an exiting thread leaves matters more: before threads purged at exit
 * (the owner's last purge, init.c), resident grew from 2.15-2.35x after
 * wave 8 to 2.91-3.25x after wave 99 (growth 1.36-1.38, failing the growth
 * check); with it, 2.06-2.18x to 2.33-2.41x, worst 2.66-2.71x. The code of
 * 6b08e95 measured 2.37x to 2.64x, worst 2.98x.
 *
 * Usage: waves [waves] [threads] [blocks] [ratio] (ratio: the RATIO bound,
 * 2.2 unless given) */
#include "test_util.h"

#include "../include/hakmem.h"
#include <pthread.h>

enum { MAX_THREADS = 16, MAX_BLOCKS = 20000, WARMUP = 4 };
#define RATIO 2.2
#define SLACK ((size_t)2 << 20)
#define GROWTH 1.25   /* the last wave over waves GROWTH_FROM.., at most */
enum { GROWTH_FROM = 8, GROWTH_WINDOW = 8 };

struct slot {
    unsigned char *p[MAX_BLOCKS];
    uint32_t n[MAX_BLOCKS];
    uint64_t seed[MAX_BLOCKS];
    uint64_t rng;
    unsigned blocks, steps;
    int failed;
};

static struct slot slots[MAX_THREADS];

/* The first and last 16 bytes carry a pattern, and one byte in every 4 KiB
 * in between: enough to see a block handed out twice or overwritten, and
 * every page of a live block is resident (so live bytes are resident bytes),
 * at a fraction of a full fill. */
static void stamp(unsigned char *p, size_t n, uint64_t seed)
{
    size_t k = n < 16 ? n : 16;
    pat_fill(p, k, seed);
    for (size_t i = 4096; i + 16 < n; i += 4096)
        p[i] = (unsigned char)(seed >> (i >> 12 & 31));
    if (n > 32)
        pat_fill(p + n - 16, 16, seed ^ 0x5a5a);
}

static int intact(const unsigned char *p, size_t n, uint64_t seed)
{
    size_t k = n < 16 ? n : 16;
    if (pat_check(p, k, seed) != (size_t)-1)
        return 0;
    for (size_t i = 4096; i + 16 < n; i += 4096)
        if (p[i] != (unsigned char)(seed >> (i >> 12 & 31)))
            return 0;
    return n <= 32 || pat_check(p + n - 16, 16, seed ^ 0x5a5a) == (size_t)-1;
}

static size_t pick_size(uint64_t *rng)
{
    if (rng_next(rng) % 8 == 0)
        return rng_range(rng, 1025, 32768);
    return rng_range(rng, 16, 1024);
}

static void *worker(void *arg)
{
    struct slot *s = arg;
    for (unsigned k = 0; k < s->steps; k++) {
        unsigned i = (unsigned)(rng_next(&s->rng) % s->blocks);
        if (s->p[i]) {
            if (!intact(s->p[i], s->n[i], s->seed[i]))
                s->failed = 1;
            free(s->p[i]);
        }
        size_t n = pick_size(&s->rng);
        s->p[i] = malloc(n);
        if (!s->p[i]) {
            s->failed = 2;
            return NULL;
        }
        s->n[i] = (uint32_t)n;
        s->seed[i] = rng_next(&s->rng);
        stamp(s->p[i], n, s->seed[i]);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    unsigned waves = argc > 1 ? (unsigned)atoi(argv[1]) : 50;
    unsigned threads = argc > 2 ? (unsigned)atoi(argv[2]) : 2;
    unsigned blocks = argc > 3 ? (unsigned)atoi(argv[3]) : 8000;
    double ratio_max = argc > 4 ? atof(argv[4]) : RATIO;
    CHECK(ratio_max >= 1.0, "ratio at least 1");
    CHECK(threads >= 1 && threads <= MAX_THREADS, "threads in 1..%d", MAX_THREADS);
    CHECK(blocks >= 1 && blocks <= MAX_BLOCKS, "blocks in 1..%d", MAX_BLOCKS);
    CHECK(waves > WARMUP, "more than %d waves", WARMUP);

    hk_require_if_expected("waves");
    /* Under another allocator the waves run all the same (contents checked),
     * so that its peak RSS can be compared: peakrss -o F env LD_PRELOAD=...
     * build/tests/waves. Only hakmem's own figures are asserted. */
    void (*stats_get)(hakmem_stats *) = NULL;
    if (hk_active()) {
        *(void **)&stats_get = dlsym(RTLD_DEFAULT, "hakmem_stats_get");
        CHECK(stats_get, "hakmem_stats_get does not resolve");
    } else {
        NOTE("hakmem not loaded: the waves run, resident memory is not checked");
    }

    for (unsigned t = 0; t < threads; t++) {
        slots[t].rng = 0x9e3779b97f4a7c15ull * (t + 1);
        slots[t].blocks = blocks;
        slots[t].steps = 3 * blocks;
    }
    static hakmem_stats st;
    double worst = 0;
    size_t resident_from = 0;
    for (unsigned w = 0; w < waves; w++) {
        pthread_t tid[MAX_THREADS];
        for (unsigned t = 0; t < threads; t++)
            CHECK(pthread_create(&tid[t], NULL, worker, &slots[t]) == 0, "pthread_create");
        for (unsigned t = 0; t < threads; t++) {
            pthread_join(tid[t], NULL);
            CHECK(!slots[t].failed, "wave %u thread %u: %s", w, t,
                  slots[t].failed == 1 ? "a live block was overwritten" : "malloc failed");
        }
        if (!stats_get)
            continue;
        size_t live = 0;
        for (unsigned t = 0; t < threads; t++)
            for (unsigned i = 0; i < blocks; i++)
                if (slots[t].p[i])
                    live += malloc_usable_size(slots[t].p[i]);
        stats_get(&st);
        double ratio = (double)st.resident / (double)live;
        if (w % 8 == 0 || w + 1 == waves)
            NOTE("wave %3u: live %5.1f MiB, resident %5.1f MiB (%.2fx), committed %5.1f MiB, "
                 "segments %zu", w, live / 1048576.0, st.resident / 1048576.0, ratio,
                 st.committed / 1048576.0, st.segments);
        /* The early level is the most resident of a few waves, not one
         * sample: a single wave can end low when its threads happened to
         * overlap less (a loaded machine). */
        if (w >= GROWTH_FROM && w < GROWTH_FROM + GROWTH_WINDOW && st.resident > resident_from)
            resident_from = st.resident;
        if (w + 1 == waves && resident_from)
            EXPECT(st.resident <= (size_t)(GROWTH * (double)resident_from) + SLACK,
                   "resident memory grows with the waves: %zu bytes after wave %u, at most %zu "
                   "after waves %u-%u (allowed %.2fx + %zu MiB)", st.resident, w, resident_from,
                   (unsigned)GROWTH_FROM, (unsigned)(GROWTH_FROM + GROWTH_WINDOW - 1), GROWTH,
                   SLACK >> 20);
        if (w < WARMUP)
            continue;
        if (ratio > worst)
            worst = ratio;
        EXPECT(st.resident <= (size_t)(ratio_max * (double)live) + SLACK,
               "wave %u: %zu bytes resident for %zu live (%.2fx; allowed %.2fx + %zu MiB)", w,
               st.resident, live, ratio, ratio_max, SLACK >> 20);
    }
    NOTE("worst resident / live after warm-up: %.2fx", worst);
    for (unsigned t = 0; t < threads; t++)
        for (unsigned i = 0; i < blocks; i++)
            free(slots[t].p[i]);
    return test_finish("waves");
}
