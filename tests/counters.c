/* counters.c -- the debug counters (issue #5), against libhakmem_counters
 * (the library built with HAKMEM_DEBUG_COUNTERS): every small malloc is a
 * fast-path pop or a refill, every small free a push onto the owner's cache
 * or a remote post; refill stages add up to the refills and their blocks to
 * the classes' `allocated`; the early-exit reasons count what they name;
 * the stages seen include the OS (first segment) and adoption. */
#include "test_util.h"

#include <pthread.h>

#include "../include/hakmem.h"

static hakmem_stats a, b;

static uint64_t sum(const uint64_t *v, int n) {
    uint64_t s = 0;
    for (int i = 0; i < n; i++) s += v[i];
    return s;
}

/* Quiescent invariants of the totals. */
static void check_totals(const hakmem_stats *s, const char *when) {
    const hakmem_debug_counters *d = &s->debug;
    uint64_t allocated = 0, freed = 0, remote = 0;
    for (int c = 0; c < HAKMEM_NUM_CLASSES; c++) {
        allocated += s->classes[c].allocated;
        freed += s->classes[c].freed;
        remote += s->classes[c].remote_freed;
    }
    EXPECT(sum(d->refill_stage, HAKMEM_REFILL_STAGES) == d->refills,
           "%s: refill stages sum to %llu, refills %llu", when,
           (unsigned long long)sum(d->refill_stage, HAKMEM_REFILL_STAGES),
           (unsigned long long)d->refills);
    EXPECT(sum(d->refill_stage_blocks, HAKMEM_REFILL_STAGES) == allocated,
           "%s: stage blocks sum to %llu, classes' allocated %llu", when,
           (unsigned long long)sum(d->refill_stage_blocks, HAKMEM_REFILL_STAGES),
           (unsigned long long)allocated);
    uint64_t refills = 0;
    for (int c = 0; c < HAKMEM_NUM_CLASSES; c++) refills += s->classes[c].refills;
    EXPECT(refills == d->refills, "%s: classes' refills %llu, debug refills %llu", when,
           (unsigned long long)refills, (unsigned long long)d->refills);
    EXPECT(d->free_ss_local == freed - remote, "%s: free_ss_local %llu, flushed blocks %llu",
           when, (unsigned long long)d->free_ss_local, (unsigned long long)(freed - remote));
}

#define D(field) ((long long)(b.debug.field - a.debug.field))

#define N 5000
static void *p[N];

static void *exit_with_blocks(void *arg) {
    (void)arg;
    for (int i = 0; i < 300; i++) p[i] = malloc(96);   /* live when the thread exits */
    return NULL;
}
static void *free_them(void *arg) {
    (void)arg;
    for (int i = 0; i < 300; i++) free(p[i]);   /* remote: the owner is main */
    return NULL;
}
static void *alloc_once(void *arg) {
    *(void **)arg = malloc(96);   /* a new thread: adopts the exited thread's segment */
    return NULL;
}

int main(void) {
    hk_require_if_expected("counters");
    void (*get)(hakmem_stats *) = (void (*)(hakmem_stats *))dlsym(RTLD_DEFAULT, "hakmem_stats_get");
    CHECK(get, "hakmem_stats_get does not resolve (libhakmem_counters not linked?)");
    get(&a);
    CHECK(a.debug_counters == 1, "library built without HAKMEM_DEBUG_COUNTERS");
    check_totals(&a, "start");
    EXPECT(a.debug.refill_stage[HAKMEM_STAGE_OS] >= 1, "the first segment did not come from the OS");

    /* mallocs: fast-path pops + refills, exactly */
    get(&a);
    uint64_t seed = 11;
    for (int i = 0; i < N; i++) p[i] = malloc(i % 7 == 0 ? rng_range(&seed, 1025, 65536)
                                                         : rng_range(&seed, 1, 1024));
    get(&b);
    EXPECT(D(alloc_tls_sll) + D(refills) == N, "%d mallocs: %lld pops + %lld refills", N,
           D(alloc_tls_sll), D(refills));
    EXPECT(D(early[HAKMEM_EARLY_ALLOC_EMPTY]) == D(refills), "alloc_empty %lld, refills %lld",
           D(early[HAKMEM_EARLY_ALLOC_EMPTY]), D(refills));
    check_totals(&b, "after mallocs");

    /* frees: pushes onto the own cache (fast or after a flush/grow) */
    get(&a);
    for (int i = 0; i < N; i++) free(p[i]);
    get(&b);
    EXPECT(D(free_tls_sll) + D(free_ss_remote) == N, "%d frees: %lld pushes + %lld remote", N,
           D(free_tls_sll), D(free_ss_remote));
    EXPECT(D(free_ss_remote) == 0, "remote frees in one thread: %lld", D(free_ss_remote));
    EXPECT(D(flush_overflow) + D(bin_grow) == D(early[HAKMEM_EARLY_FREE_FULL]),
           "full-cache exits %lld != flushes %lld + grows %lld", D(early[HAKMEM_EARLY_FREE_FULL]),
           D(flush_overflow), D(bin_grow));
    EXPECT(D(flush_overflow) > 0, "freeing %d blocks never flushed a cache", N);
    check_totals(&b, "after frees");

    /* remote frees from another thread */
    for (int i = 0; i < 300; i++) p[i] = malloc(96);
    get(&a);
    pthread_t t;
    pthread_create(&t, NULL, free_them, NULL);
    pthread_join(t, NULL);
    get(&b);
    EXPECT(D(free_ss_remote) == 300, "300 remote frees counted as %lld", D(free_ss_remote));
    EXPECT(D(early[HAKMEM_EARLY_FREE_FOREIGN]) + D(early[HAKMEM_EARLY_FREE_NO_HEAP]) == 300,
           "foreign-block exits %lld + %lld", D(early[HAKMEM_EARLY_FREE_FOREIGN]),
           D(early[HAKMEM_EARLY_FREE_NO_HEAP]));

    /* other early exits */
    get(&a);
    free(NULL);
    void *al = aligned_alloc(64, 64);
    void *big = malloc(1u << 20);
    free(big);
    free(al);
    get(&b);
    EXPECT(D(early[HAKMEM_EARLY_FREE_NOT_SMALL]) == 2, "free(NULL) + large free: %lld",
           D(early[HAKMEM_EARLY_FREE_NOT_SMALL]));
    EXPECT(D(early[HAKMEM_EARLY_ALLOC_ALIGNED]) == 1, "aligned_alloc(64): %lld",
           D(early[HAKMEM_EARLY_ALLOC_ALIGNED]));
    EXPECT(D(early[HAKMEM_EARLY_ALLOC_LARGE]) == 1, "malloc(1 MiB): %lld",
           D(early[HAKMEM_EARLY_ALLOC_LARGE]));

    /* adoption: a thread exits with live blocks, a new thread adopts */
    get(&a);
    pthread_create(&t, NULL, exit_with_blocks, NULL);
    pthread_join(t, NULL);
    void *q = NULL;
    pthread_create(&t, NULL, alloc_once, &q);
    pthread_join(t, NULL);
    get(&b);
    EXPECT(D(refill_stage[HAKMEM_STAGE_ADOPT]) >= 1, "no refill by adoption (stages %lld os, %lld cache)",
           D(refill_stage[HAKMEM_STAGE_OS]), D(refill_stage[HAKMEM_STAGE_CACHE]));
    EXPECT(D(early[HAKMEM_EARLY_ALLOC_NO_HEAP]) == 2, "two new threads' first mallocs: %lld",
           D(early[HAKMEM_EARLY_ALLOC_NO_HEAP]));
    free(q);
    for (int i = 0; i < 300; i++) free(p[i]);
    get(&b);
    check_totals(&b, "end");
    NOTE("stages (refills/blocks): bump %llu/%llu freelist %llu/%llu partial %llu/%llu "
         "remote %llu/%llu new_slab %llu/%llu adopt %llu/%llu cache %llu/%llu os %llu/%llu",
         (unsigned long long)b.debug.refill_stage[0], (unsigned long long)b.debug.refill_stage_blocks[0],
         (unsigned long long)b.debug.refill_stage[1], (unsigned long long)b.debug.refill_stage_blocks[1],
         (unsigned long long)b.debug.refill_stage[2], (unsigned long long)b.debug.refill_stage_blocks[2],
         (unsigned long long)b.debug.refill_stage[3], (unsigned long long)b.debug.refill_stage_blocks[3],
         (unsigned long long)b.debug.refill_stage[4], (unsigned long long)b.debug.refill_stage_blocks[4],
         (unsigned long long)b.debug.refill_stage[5], (unsigned long long)b.debug.refill_stage_blocks[5],
         (unsigned long long)b.debug.refill_stage[6], (unsigned long long)b.debug.refill_stage_blocks[6],
         (unsigned long long)b.debug.refill_stage[7], (unsigned long long)b.debug.refill_stage_blocks[7]);
    return test_finish("counters");
}
