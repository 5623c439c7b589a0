/* bench_larson -- the Larson server benchmark (Larson & Krishnan, "Memory
 * allocation for long-running server applications", ISMM 1998), written
 * afresh for hakmem.
 *
 * THREADS slots each own an array of BLOCKS blocks. The thread working a
 * slot repeats STEPS times: pick a random block, read it, free it, malloc a
 * random size in [MIN, MAX] in its place and write its first and last byte.
 * That is one round. At the end of its round the thread creates a new thread,
 * hands it the slot (array, blocks and RNG) and exits: the blocks it
 * allocated are freed by its successor, threads come and go all the time,
 * and an allocator's per-thread state is born and retired thousands of
 * times -- as in a server that serves each connection on a fresh thread.
 * The initial blocks are allocated by the main thread, so the first round's
 * frees are cross-thread too.
 *
 * The run stops after SECONDS of wall time (checked by every thread after
 * each step) or when every slot has done ROUNDS rounds, whichever comes
 * first (0 = no limit; at least one of the two must be set).
 *
 * Usage: bench_larson [SECONDS [THREADS [MIN [MAX [BLOCKS [STEPS [ROUNDS [SEED]]]]]]]]
 *   SECONDS  run time, decimals allowed, 0 = until ROUNDS   (default 2)
 *   THREADS  threads alive at any time (slots)              (default 2)
 *   MIN/MAX  block size range in bytes                      (default 8 / 1024)
 *   BLOCKS   blocks per slot                                (default 5000)
 *   STEPS    free+malloc replacements per round             (default 100000)
 *   ROUNDS   rounds per slot, 0 = until SECONDS             (default 0)
 *   SEED     base seed (slot t uses SEED+t)                 (default 42)
 * ops = free+malloc replacements done by all threads; seconds = wall time
 * from starting the first threads to the last one finishing. The RESULT line
 * also gives rounds= (threads created in all). "-" keeps a default; numbers
 * (except SECONDS) take k/m/g suffixes (x1024).
 */
#include "bench_common.h"
#include <pthread.h>
#include <stdatomic.h>

static size_t min_size, max_size, nblocks;
static unsigned long long steps, max_rounds;
static atomic_int stop;

struct slot {
    char **blk;
    size_t *len;
    uint64_t rng;
    unsigned long long ops, rounds, sum;
    int done;                   /* under done_lock */
};

static pthread_mutex_t done_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t done_cond = PTHREAD_COND_INITIALIZER;
static int slots_done;
static pthread_attr_t detached;

static void finish(struct slot *s)
{
    pthread_mutex_lock(&done_lock);
    s->done = 1;
    slots_done++;
    pthread_cond_signal(&done_cond);
    pthread_mutex_unlock(&done_lock);
}

static void *round_main(void *arg)
{
    struct slot *s = arg;
    uint64_t rng = s->rng;
    unsigned long long sum = s->sum, k;
    for (k = 0; k < steps; k++) {
        size_t i = (size_t)(xorshift64(&rng) % nblocks);
        sum += (unsigned char)s->blk[i][s->len[i] - 1];
        free(s->blk[i]);
        size_t n = rng_range(&rng, min_size, max_size);
        char *p = malloc(n);
        if (!p)
            bench_die("malloc failed");
        p[0] = (char)k;
        p[n - 1] = (char)n;
        s->blk[i] = p;
        s->len[i] = n;
        if (atomic_load_explicit(&stop, memory_order_relaxed)) {
            k++;
            break;
        }
    }
    s->rng = rng;
    s->sum = sum;
    s->ops += k;
    s->rounds++;

    if (!atomic_load_explicit(&stop, memory_order_relaxed) &&
        (max_rounds == 0 || s->rounds < max_rounds)) {
        pthread_t next;
        if (pthread_create(&next, &detached, round_main, s) == 0)
            return NULL;        /* the successor owns the slot now */
        fprintf(stderr, "bench_larson: pthread_create failed; slot stops early\n");
    }
    finish(s);
    return NULL;
}

int main(int argc, char **argv)
{
    bench_usage(argc, argv,
                "usage: bench_larson [SECONDS [THREADS [MIN [MAX [BLOCKS [STEPS [ROUNDS [SEED]]]]]]]]\n"
                "  defaults: SECONDS=2 THREADS=2 MIN=8 MAX=1024 BLOCKS=5000 STEPS=100000 ROUNDS=0 SEED=42\n");
    double seconds = 2;
    if (argc > 1 && strcmp(argv[1], "-") != 0) {
        char *end;
        seconds = strtod(argv[1], &end);
        if (end == argv[1] || *end || seconds < 0)
            bench_die("SECONDS: want a number >= 0");
    }
    int threads = (int)bench_arg(argc, argv, 2, 2);
    min_size = bench_arg(argc, argv, 3, 8);
    max_size = bench_arg(argc, argv, 4, 1024);
    nblocks = bench_arg(argc, argv, 5, 5000);
    steps = bench_arg(argc, argv, 6, 100000);
    max_rounds = bench_arg(argc, argv, 7, 0);
    uint64_t seed = bench_arg(argc, argv, 8, 42);
    if (threads < 1 || threads > 1024 || nblocks == 0 || steps == 0 || min_size == 0 ||
        max_size < min_size || (seconds == 0 && max_rounds == 0))
        bench_die("need 1 <= THREADS <= 1024, BLOCKS >= 1, STEPS >= 1, 1 <= MIN <= MAX, "
                  "SECONDS > 0 or ROUNDS > 0");

    struct slot *slot = calloc((size_t)threads, sizeof *slot);
    if (!slot)
        bench_die("out of memory");
    for (int t = 0; t < threads; t++) {
        struct slot *s = &slot[t];
        s->rng = rng_seed(seed + (uint64_t)t);
        s->blk = calloc(nblocks, sizeof *s->blk);
        s->len = calloc(nblocks, sizeof *s->len);
        if (!s->blk || !s->len)
            bench_die("out of memory");
        for (size_t i = 0; i < nblocks; i++) {
            s->len[i] = rng_range(&s->rng, min_size, max_size);
            if (!(s->blk[i] = malloc(s->len[i])))
                bench_die("malloc failed");
            s->blk[i][0] = s->blk[i][s->len[i] - 1] = 1;
        }
    }

    pthread_attr_init(&detached);
    pthread_attr_setdetachstate(&detached, PTHREAD_CREATE_DETACHED);
    double t0 = bench_now();
    for (int t = 0; t < threads; t++) {
        pthread_t tid;
        if (pthread_create(&tid, &detached, round_main, &slot[t]) != 0)
            bench_die("pthread_create failed");
    }

    /* wait for the deadline (or for every slot to finish its rounds) */
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    double whole = (double)(long long)seconds;
    deadline.tv_sec += (time_t)whole;
    deadline.tv_nsec += (long)((seconds - whole) * 1e9);
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&done_lock);
    while (slots_done < threads) {
        if (seconds > 0 && !atomic_load(&stop)) {
            if (pthread_cond_timedwait(&done_cond, &done_lock, &deadline) != 0)
                atomic_store(&stop, 1);     /* time is up: each thread stops after its step */
        } else {
            pthread_cond_wait(&done_cond, &done_lock);
        }
    }
    pthread_mutex_unlock(&done_lock);
    double t1 = bench_now();
    atomic_store(&stop, 1);

    unsigned long long ops = 0, rounds = 0, sum = 0;
    for (int t = 0; t < threads; t++) {
        struct slot *s = &slot[t];
        ops += s->ops;
        rounds += s->rounds;
        sum += s->sum;
        for (size_t i = 0; i < nblocks; i++)
            free(s->blk[i]);
        free(s->blk);
        free(s->len);
    }
    free(slot);

    char extra[192];
    snprintf(extra, sizeof extra, "min=%zu max=%zu blocks=%zu steps=%llu rounds=%llu check=%llu",
             min_size, max_size, nblocks, steps, rounds, sum & 0xff);
    bench_result("larson", threads, ops, t1 - t0, extra);
    return 0;
}
