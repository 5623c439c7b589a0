/* bench_learn_phases -- five phases of FIXED WORK, each favouring a
 * different allocator setting, for judging hakmem's learning layer: the
 * time each phase takes is the measurement (bench_phased instead gives each
 * phase a fixed time and counts operations).
 *
 *   phase     threads  work at SCALE 1                         favours
 *   tiny      1   20000 slots of 16-256 B, filled; 20M random  a fast small path
 *                 replacements (free, malloc, write the first
 *                 and last byte); all freed
 *   mid       1   24 bursts: 300 blocks of 16-32 KiB (a byte    deep medium caches
 *                 per 4 KiB written), freed LIFO
 *   large     1   5 rounds: 4 blocks of 6-24 MiB, every page   keeping freed
 *                 written, freed                                spans mapped
 *   prodcons  2   500000 blocks of 16 B-4 KiB, producer to     cheap remote frees
 *                 consumer through an SPSC ring; every free is
 *                 remote
 *   idle      1   ~256 MiB in blocks of 64 B-64 KiB (each       returning memory
 *                 octave alike), every page written, all        while idle
 *                 freed; the thread exits and the process
 *                 sleeps IDLE seconds
 *
 * The counts give 0.4-0.8 s per phase under glibc on a 2-core VM where a
 * page fault costs about 10 us: glibc gives a medium burst's and a large
 * round's memory back and faults it in again every time, so mid and large
 * get few bursts and rounds, and an allocator that keeps the memory mapped
 * finishes them in a few tens of milliseconds (mostly its first faults).
 * Every phase runs in freshly created threads, timed from their creation to
 * their join; idle's time is its burst's, not the sleep. During the sleep
 * the main thread samples its own RSS every 100 ms and reports the last
 * sample (idle_rss_mb) and when RSS first fell below the baseline (RSS
 * before the burst) plus a quarter of the burst's growth (returned_ms,
 * counted from the burst's last free; "never" if it did not within IDLE s).
 * An allocator that serves the burst from memory kept since the earlier
 * phases hardly grows, so its returned_ms is about 0: the PHASE line's
 * base_mb and peak_mb, and idle_rss_mb, tell that case apart.
 * The tables of pointers come from mmap, so they never perturb the
 * allocator; every block carries a pattern that is checked before it is
 * freed (a mismatch aborts with a message).
 *
 * Usage: bench_learn_phases [SCALE [CYCLES [SEED]]] [--phases LIST] [--idle SECONDS]
 *   SCALE    multiplies every phase's work (not the slots, not IDLE)  (1.0)
 *   CYCLES   times the sequence of phases is run                     (1)
 *   SEED     base seed                                               (42)
 *   --phases comma-separated subset, run in the order above   (all five)
 *   --idle   seconds of idle time after the idle burst               (3)
 * Prints "PHASE cycle=C name=NAME seconds=S ops=N" per phase and cycle (idle
 * also idle_rss_mb= returned_ms=), then the RESULT line (bench_common.h):
 * seconds = the sum of every phase's time; NAME=S the phase's time summed
 * over cycles ("-" when not run); idle_rss_mb and returned_ms those of the
 * last cycle; ops = malloc+free pairs; threads = 2 (prodcons's).
 */
#include "bench_common.h"
#include "bench_threads.h"
#include <stdatomic.h>
#include <sys/mman.h>

enum { P_TINY, P_MID, P_LARGE, P_PRODCONS, P_IDLE, NPHASES };
static const char *const phase_name[NPHASES] = { "tiny", "mid", "large", "prodcons", "idle" };

/* The work of each phase at SCALE 1 (see the table above). */
#define TINY_SLOTS 20000
#define TINY_REPLACEMENTS 20000000.0
#define MID_BURST 300
#define MID_BURSTS 24.0
#define LARGE_BLOCKS 4
#define LARGE_ROUNDS 5.0
#define PRODCONS_BLOCKS 500000.0
#define IDLE_BYTES (256.0 * 1048576)
#define RING_CAP 4096   /* prodcons ring: a power of 2 */
#define RING_BATCH 64   /* blocks the producer publishes at once */

static unsigned long long tiny_n, mid_n, large_n, prodcons_n, idle_bytes;

/* A table of n elements of size each, zeroed, from mmap (not the allocator
 * under test); reserved, so only the part used costs memory. */
static void *table(size_t n, size_t size)
{
    void *p = mmap(NULL, n * size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        bench_die("mmap of a table failed");
    return p;
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (!p)
        bench_die("malloc failed");
    return p;
}

/* The pattern of a block: its first byte, its last byte (the complement)
 * and, when stride > 0, a byte every stride bytes. check() aborts naming the
 * phase when a byte differs: the allocator handed out overlapping blocks or
 * wrote into a live one. */
static unsigned char tag_of(uint64_t key) { return (unsigned char)(key * 0x9E3779B97F4A7C15ull >> 56); }

static void mark(char *p, size_t n, unsigned char tag, size_t stride)
{
    if (stride)
        for (size_t off = 0; off < n; off += stride)
            p[off] = (char)tag;
    p[0] = (char)tag;
    p[n - 1] = (char)~tag;
}

static void check(const char *phase, const char *p, size_t n, unsigned char tag, size_t stride)
{
    int ok = (unsigned char)p[0] == tag && (unsigned char)p[n - 1] == (unsigned char)~tag;
    if (stride)
        for (size_t off = 0; ok && off < n - 1; off += stride)
            ok = (unsigned char)p[off] == tag;
    if (!ok) {
        fprintf(stderr, "bench_learn_phases: %s: block %p of %zu bytes does not hold its pattern "
                        "(tag 0x%02x)\n", phase, (const void *)p, n, tag);
        abort();
    }
}

struct worker {
    pthread_t tid;
    int role;              /* prodcons: 0 producer, 1 consumer */
    uint64_t seed;
    unsigned long long ops;
    double end;            /* idle: when the last block was freed */
    double peak_mib;       /* idle: RSS with every block live */
};

/* ---- tiny: random replacement among 20000 small slots ------------------- */
static void *tiny_main(void *arg)
{
    struct worker *w = arg;
    uint64_t rng = rng_seed(w->seed);
    char **slot = table(TINY_SLOTS, sizeof *slot);
    size_t *len = table(TINY_SLOTS, sizeof *len);
    for (size_t i = 0; i < TINY_SLOTS; i++) {
        len[i] = rng_range(&rng, 16, 256);
        slot[i] = xmalloc(len[i]);
        mark(slot[i], len[i], tag_of(i ^ len[i]), 0);
    }
    for (unsigned long long k = 0; k < tiny_n; k++) {
        size_t i = (size_t)(xorshift64(&rng) % TINY_SLOTS);
        check("tiny", slot[i], len[i], tag_of(i ^ len[i]), 0);
        free(slot[i]);
        len[i] = rng_range(&rng, 16, 256);
        slot[i] = xmalloc(len[i]);
        mark(slot[i], len[i], tag_of(i ^ len[i]), 0);
    }
    for (size_t i = 0; i < TINY_SLOTS; i++) {
        check("tiny", slot[i], len[i], tag_of(i ^ len[i]), 0);
        free(slot[i]);
    }
    munmap(slot, TINY_SLOTS * sizeof *slot);
    munmap(len, TINY_SLOTS * sizeof *len);
    w->ops = TINY_SLOTS + tiny_n;
    return NULL;
}

/* ---- mid: LIFO bursts of 300 medium blocks --------------------------------- */
static void *mid_main(void *arg)
{
    struct worker *w = arg;
    uint64_t rng = rng_seed(w->seed);
    char **blk = table(MID_BURST, sizeof *blk);
    size_t *len = table(MID_BURST, sizeof *len);
    for (unsigned long long b = 0; b < mid_n; b++) {
        for (size_t i = 0; i < MID_BURST; i++) {
            len[i] = rng_range(&rng, 16 << 10, 32 << 10);
            blk[i] = xmalloc(len[i]);
            mark(blk[i], len[i], tag_of(b * MID_BURST + i), 4096);
        }
        for (size_t i = MID_BURST; i-- > 0;) {
            check("mid", blk[i], len[i], tag_of(b * MID_BURST + i), 4096);
            free(blk[i]);
        }
    }
    munmap(blk, MID_BURST * sizeof *blk);
    munmap(len, MID_BURST * sizeof *len);
    w->ops = mid_n * MID_BURST;
    return NULL;
}

/* ---- large: rounds of 4 blocks of 6-24 MiB, every page written ------------ */
static void *large_main(void *arg)
{
    struct worker *w = arg;
    uint64_t rng = rng_seed(w->seed);
    char *blk[LARGE_BLOCKS];
    size_t len[LARGE_BLOCKS];
    for (unsigned long long r = 0; r < large_n; r++) {
        for (int i = 0; i < LARGE_BLOCKS; i++) {
            len[i] = rng_range(&rng, 6 << 20, 24 << 20);
            blk[i] = xmalloc(len[i]);
            mark(blk[i], len[i], tag_of(r * LARGE_BLOCKS + (uint64_t)i), 4096);
        }
        /* every 16th page checked: reading them all would add to the time
         * what the allocator did not cost */
        for (int i = 0; i < LARGE_BLOCKS; i++) {
            check("large", blk[i], len[i], tag_of(r * LARGE_BLOCKS + (uint64_t)i), 16 * 4096);
            free(blk[i]);
        }
    }
    w->ops = large_n * LARGE_BLOCKS;
    return NULL;
}

/* ---- prodcons: every free is remote ------------------------------------------
 * A single-producer single-consumer ring; the producer publishes RING_BATCH
 * blocks at a time and the consumer everything it finds, so the ring's
 * cache lines cross between the CPUs once per batch, not once per block.
 * The consumer draws the same sizes from the same seed, so it knows each
 * block's size and tag without them travelling through the ring. */
static struct {
    _Alignas(64) _Atomic size_t head;   /* next block the consumer takes */
    _Alignas(64) _Atomic size_t tail;   /* next slot the producer fills */
    _Alignas(64) char *slot[RING_CAP];
} ring;
static int cpu_for[2];

static void *producer_main(struct worker *w)
{
    uint64_t rng = rng_seed(w->seed);
    size_t tail = 0, head_seen = 0;
    for (unsigned long long done = 0; done < prodcons_n;) {
        size_t k = RING_BATCH;
        if (prodcons_n - done < k)
            k = (size_t)(prodcons_n - done);
        bench_ring_wait_room(&ring.head, &head_seen, tail + k, RING_CAP);
        for (size_t i = 0; i < k; i++) {
            size_t n = rng_range(&rng, 16, 4096);
            char *p = xmalloc(n);
            mark(p, n, tag_of(done + i), 0);
            ring.slot[(tail + i) & (RING_CAP - 1)] = p;
        }
        tail += k;
        done += k;
        atomic_store_explicit(&ring.tail, tail, memory_order_release);
    }
    return NULL;
}

static void *consumer_main(struct worker *w)
{
    uint64_t rng = rng_seed(w->seed);   /* the producer's seed: the same sizes */
    size_t head = 0;
    while (head < prodcons_n) {
        size_t tail = bench_ring_wait_items(&ring.tail, head);
        for (; head != tail; head++) {
            char *p = ring.slot[head & (RING_CAP - 1)];
            size_t n = rng_range(&rng, 16, 4096);
            check("prodcons", p, n, tag_of(head), 0);
            free(p);
        }
        atomic_store_explicit(&ring.head, head, memory_order_release);
    }
    return NULL;
}

static void *prodcons_main(void *arg)
{
    struct worker *w = arg;
    bench_pin_self(cpu_for[w->role]);
    if (w->role == 0)
        producer_main(w);
    else
        consumer_main(w);
    w->ops = w->role == 0 ? prodcons_n : 0;
    return NULL;
}

/* ---- idle: a burst of mixed sizes, then nothing ------------------------------- */
/* 64 B-64 KiB, each octave as likely as the others: many small blocks, most
 * of the bytes in the large ones. */
static size_t idle_size(uint64_t *rng)
{
    size_t lo = (size_t)64 << rng_range(rng, 0, 9);
    return rng_range(rng, lo, 2 * lo);
}

static void *idle_main(void *arg)
{
    struct worker *w = arg;
    uint64_t rng = rng_seed(w->seed);
    size_t cap = (size_t)(idle_bytes / 64) + 1;
    char **blk = table(cap, sizeof *blk);
    size_t *len = table(cap, sizeof *len);
    size_t n = 0;
    for (unsigned long long bytes = 0; bytes < idle_bytes && n < cap; n++) {
        len[n] = idle_size(&rng);
        blk[n] = xmalloc(len[n]);
        mark(blk[n], len[n], tag_of(n), 4096);
        bytes += len[n];
    }
    w->peak_mib = bench_rss_mib();
    for (size_t i = 0; i < n; i++) {
        check("idle", blk[i], len[i], tag_of(i), 4096);
        free(blk[i]);
    }
    w->end = bench_now();
    munmap(blk, cap * sizeof *blk);
    munmap(len, cap * sizeof *len);
    w->ops = n;
    return NULL;
}

static void *(*const phase_main[NPHASES])(void *) = {
    tiny_main, mid_main, large_main, prodcons_main, idle_main,
};

/* ---- main --------------------------------------------------------------------- */
static const char usage[] =
    "usage: bench_learn_phases [SCALE [CYCLES [SEED]]] [--phases LIST] [--idle SECONDS]\n"
    "  defaults: SCALE=1 CYCLES=1 SEED=42, every phase (tiny,mid,large,prodcons,idle), --idle 3\n";

static double parse_float(const char *s, const char *what, double min)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !(v >= min)) {
        fprintf(stderr, "bench_learn_phases: %s: want a number >= %g, got '%s'\n", what, min, s);
        exit(2);
    }
    return v;
}

/* LIST: comma-separated phase names -> want[] */
static void parse_phases(const char *list, int want[NPHASES])
{
    memset(want, 0, NPHASES * sizeof *want);
    for (const char *s = list; *s;) {
        size_t k = strcspn(s, ",");
        int found = 0;
        for (int ph = 0; ph < NPHASES; ph++)
            if (strlen(phase_name[ph]) == k && strncmp(s, phase_name[ph], k) == 0)
                want[ph] = found = 1;
        if (!found) {
            fprintf(stderr, "bench_learn_phases: --phases: unknown phase '%.*s' "
                            "(tiny, mid, large, prodcons, idle)\n", (int)k, s);
            exit(2);
        }
        s += k + (s[k] == ',');
    }
}

static unsigned long long scaled(double base, double scale)
{
    double v = base * scale + 0.5;
    return v < 1 ? 1 : (unsigned long long)v;
}

/* Sleep until the absolute time t (bench_now's clock). */
static void sleep_until(double t)
{
    double d = t - bench_now();
    if (d > 0)
        usleep((useconds_t)(d * 1e6));
}

/* The idle time after the burst: RSS every 100 ms up to idle_s; sets the
 * last sample and when RSS first fell to threshold (-1: never). */
static void idle_watch(double burst_end, double idle_s, double threshold,
                       double *last_mib, long *returned_ms)
{
    *returned_ms = -1;
    for (int k = 0; k <= (int)(idle_s * 10 + 1e-9); k++) {
        sleep_until(burst_end + k * 0.1);
        double now = bench_now();
        *last_mib = bench_rss_mib();
        if (*returned_ms < 0 && *last_mib <= threshold)
            *returned_ms = (long)((now - burst_end) * 1000 + 0.5);
    }
}

int main(int argc, char **argv)
{
    bench_usage(argc, argv, usage);
    char *pos[5] = { argv[0] };
    int npos = 1;
    int want[NPHASES] = { 1, 1, 1, 1, 1 };
    double idle_s = 3;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--phases") == 0 && i + 1 < argc)
            parse_phases(argv[++i], want);
        else if (strcmp(argv[i], "--idle") == 0 && i + 1 < argc)
            idle_s = parse_float(argv[++i], "--idle", 0);
        else if (argv[i][0] == '-' && argv[i][1] == '-') {
            fputs(usage, stderr);
            return 2;
        } else if (npos < 4)
            pos[npos++] = argv[i];
        else
            bench_die("too many arguments (see --help)");
    }
    double scale = npos > 1 && strcmp(pos[1], "-") != 0 ? parse_float(pos[1], "SCALE", 1e-9) : 1.0;
    unsigned long long cycles = bench_arg(npos, pos, 2, 1);
    uint64_t seed = bench_arg(npos, pos, 3, 42);
    if (cycles == 0)
        bench_die("need CYCLES >= 1");

    tiny_n = scaled(TINY_REPLACEMENTS, scale);
    mid_n = scaled(MID_BURSTS, scale);
    large_n = scaled(LARGE_ROUNDS, scale);
    prodcons_n = scaled(PRODCONS_BLOCKS, scale);
    idle_bytes = scaled(IDLE_BYTES, scale);
    bench_two_cpus(cpu_for);

    double secs[NPHASES] = { 0 }, total_s = 0, idle_mib = 0;
    long returned_ms = -1;
    unsigned long long total_ops = 0;
    for (unsigned long long c = 1; c <= cycles; c++) {
        for (int ph = 0; ph < NPHASES; ph++) {
            if (!want[ph])
                continue;
            int nt = ph == P_PRODCONS ? 2 : 1;
            struct worker w[2];
            atomic_store(&ring.head, 0);
            atomic_store(&ring.tail, 0);
            double base_mib = bench_rss_mib();
            double t0 = bench_now();
            for (int t = 0; t < nt; t++) {
                /* both prodcons threads share a seed: the consumer replays
                 * the producer's sizes */
                w[t] = (struct worker){ .role = t, .seed = seed + 1000 * c + 10 * (uint64_t)ph };
                if (pthread_create(&w[t].tid, NULL, phase_main[ph], &w[t]) != 0)
                    bench_die("pthread_create failed");
            }
            unsigned long long ops = 0;
            for (int t = 0; t < nt; t++) {
                pthread_join(w[t].tid, NULL);
                ops += w[t].ops;
            }
            double t1 = bench_now();
            secs[ph] += t1 - t0;
            total_s += t1 - t0;
            total_ops += ops;
            if (ph == P_IDLE)   /* before printing: stdio may allocate */
                idle_watch(w[0].end, idle_s, base_mib + 0.25 * (w[0].peak_mib - base_mib),
                           &idle_mib, &returned_ms);
            printf("PHASE cycle=%llu name=%s seconds=%.6f ops=%llu", c, phase_name[ph], t1 - t0, ops);
            if (ph == P_IDLE) {
                printf(" idle_rss_mb=%.1f returned_ms=", idle_mib);
                if (returned_ms < 0)
                    printf("never");
                else
                    printf("%ld", returned_ms);
                printf(" base_mb=%.1f peak_mb=%.1f", base_mib, w[0].peak_mib);
            }
            printf("\n");
            fflush(stdout);
        }
    }

    char extra[512];
    size_t k = 0;
    for (int ph = 0; ph < NPHASES; ph++)
        k += (size_t)(want[ph] ? snprintf(extra + k, sizeof extra - k, "%s=%.6f ", phase_name[ph], secs[ph])
                               : snprintf(extra + k, sizeof extra - k, "%s=- ", phase_name[ph]));
    if (!want[P_IDLE])
        snprintf(extra + k, sizeof extra - k, "idle_rss_mb=- returned_ms=- scale=%g cycles=%llu", scale, cycles);
    else if (returned_ms < 0)
        snprintf(extra + k, sizeof extra - k, "idle_rss_mb=%.1f returned_ms=never scale=%g cycles=%llu",
                 idle_mib, scale, cycles);
    else
        snprintf(extra + k, sizeof extra - k, "idle_rss_mb=%.1f returned_ms=%ld scale=%g cycles=%llu",
                 idle_mib, returned_ms, scale, cycles);
    bench_result("learn_phases", 2, total_ops, total_s, extra);
    return 0;
}
