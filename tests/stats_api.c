/* stats_api.c -- the statistics API (issue #5): hakmem_stats_get's counts add
 * up (allocated - freed - cached == live, allocated - freed == the blocks a
 * scan of the slabs finds out of them), follow allocations and frees exactly
 * in one thread, account remote frees once drained, report segments, bytes,
 * large blocks; hakmem_collect returns memory; mallinfo2 agrees.
 *
 * The API is looked up with dlsym, so the same binary runs preloaded and
 * linked; without hakmem (glibc baseline) the test has nothing to check. */
#include "test_util.h"

#include <malloc.h>
#include <pthread.h>

#include "../include/hakmem.h"

static void (*stats_get)(hakmem_stats *);
static size_t (*collect)(int);

static hakmem_stats s0, s1, s2;

static unsigned class_of(size_t size) {
    /* the class whose block size is the smallest >= size (hakmem's table) */
    static hakmem_stats t;
    stats_get(&t);
    for (unsigned c = 0; c < HAKMEM_NUM_CLASSES; c++)
        if (t.classes[c].block_size >= size)
            return c;
    return HAKMEM_NUM_CLASSES - 1;
}

/* Every class: allocated - freed == blocks out of the slabs (scan), and
 * live == allocated - freed - cached. Only valid with one thread running. */
static void check_consistent(const hakmem_stats *s, const char *when) {
    for (unsigned c = 0; c < HAKMEM_NUM_CLASSES; c++) {
        const hakmem_class_stats *k = &s->classes[c];
        EXPECT(k->allocated >= k->freed, "%s: class %u: freed %llu > allocated %llu", when, c,
               (unsigned long long)k->freed, (unsigned long long)k->allocated);
        uint64_t out = k->allocated - k->freed;
        EXPECT(out == k->blocks_out,
               "%s: class %u (%zu B): allocated %llu - freed %llu = %llu, but the slabs have "
               "%llu blocks out", when, c, k->block_size, (unsigned long long)k->allocated,
               (unsigned long long)k->freed, (unsigned long long)out,
               (unsigned long long)k->blocks_out);
        EXPECT(k->live + k->cached == out, "%s: class %u: live %llu + cached %llu != %llu", when,
               c, (unsigned long long)k->live, (unsigned long long)k->cached,
               (unsigned long long)out);
        EXPECT(k->current_bytes == out * k->block_size, "%s: class %u: current_bytes %zu", when,
               c, k->current_bytes);
        EXPECT(k->peak_bytes >= k->current_bytes, "%s: class %u: peak %zu < current %zu", when, c,
               k->peak_bytes, k->current_bytes);
        EXPECT(k->remote_freed <= k->freed, "%s: class %u: remote_freed > freed", when, c);
    }
    EXPECT(s->segments >= s->segments_tiny + s->segments_l2, "%s: segment kinds exceed total",
           when);
    EXPECT(s->mapped >= s->committed, "%s: committed %zu > mapped %zu", when, s->committed,
           s->mapped);
    EXPECT(s->resident <= s->mapped, "%s: resident %zu > mapped %zu", when, s->resident,
           s->mapped);
    EXPECT(s->heaps >= 1, "%s: no live heap", when);
}

#define K 3000
static void *blocks[K];

struct handoff {
    size_t size;
    pthread_mutex_t m;
    pthread_cond_t cv;
    int state;   /* 0 start, 1 allocated, 2 freed by main */
};

static void *producer(void *arg) {
    struct handoff *h = arg;
    for (int i = 0; i < K; i++) {
        blocks[i] = malloc(h->size);
        CHECK(blocks[i], "malloc(%zu)", h->size);
    }
    pthread_mutex_lock(&h->m);
    h->state = 1;
    pthread_cond_broadcast(&h->cv);
    while (h->state != 2) pthread_cond_wait(&h->cv, &h->m);
    pthread_mutex_unlock(&h->m);
    return NULL;   /* exits with the remote frees not drained */
}

int main(void) {
    hk_require_if_expected("stats_api");
    if (!hk_active()) {
        NOTE("hakmem not loaded: nothing to check");
        return test_finish("stats_api");
    }
    stats_get = (void (*)(hakmem_stats *))dlsym(RTLD_DEFAULT, "hakmem_stats_get");
    collect = (size_t (*)(int))dlsym(RTLD_DEFAULT, "hakmem_collect");
    CHECK(stats_get && collect, "hakmem_stats_get / hakmem_collect do not resolve");

    /* 1. one thread: live follows every malloc and free exactly */
    unsigned c48 = class_of(48);
    stats_get(&s0);
    check_consistent(&s0, "start");
    EXPECT(s0.classes[c48].cache_cap > 0, "cache_cap of class %u is 0 after allocating", c48);
    for (int i = 0; i < K; i++) blocks[i] = malloc(48);
    stats_get(&s1);
    check_consistent(&s1, "after mallocs");
    long long dlive = (long long)(s1.classes[c48].live - s0.classes[c48].live);
    EXPECT(dlive == K, "class %u: live grew by %lld after %d mallocs of 48 B", c48, dlive, K);
    EXPECT(s1.classes[c48].refills > s0.classes[c48].refills, "no refill counted");
    for (int i = 0; i < K; i++) free(blocks[i]);
    stats_get(&s2);
    check_consistent(&s2, "after frees");
    EXPECT(s2.classes[c48].live == s0.classes[c48].live,
           "class %u: live %llu after freeing everything, %llu before", c48,
           (unsigned long long)s2.classes[c48].live, (unsigned long long)s0.classes[c48].live);
    EXPECT(s2.classes[c48].flushes > s1.classes[c48].flushes,
           "freeing %d blocks into a cache of %u did not flush", K, s1.classes[c48].cache_cap);
    EXPECT(s2.classes[c48].cached <= s2.classes[c48].cache_cap, "cached %llu > cap %u",
           (unsigned long long)s2.classes[c48].cached, s2.classes[c48].cache_cap);
    NOTE("48 B class %u: allocated %llu freed %llu live %llu cached %llu peak %zu B", c48,
         (unsigned long long)s2.classes[c48].allocated,
         (unsigned long long)s2.classes[c48].freed, (unsigned long long)s2.classes[c48].live,
         (unsigned long long)s2.classes[c48].cached, s2.classes[c48].peak_bytes);
    EXPECT(s2.classes[c48].peak_bytes >= (size_t)K * s2.classes[c48].block_size,
           "peak %zu B below the %d blocks once held", s2.classes[c48].peak_bytes, K);

    /* 2. medium blocks too */
    unsigned cm = class_of(20000);
    stats_get(&s0);
    for (int i = 0; i < 200; i++) blocks[i] = malloc(20000);
    stats_get(&s1);
    check_consistent(&s1, "after medium mallocs");
    EXPECT(s1.classes[cm].live - s0.classes[cm].live == 200, "medium class %u: live +%lld", cm,
           (long long)(s1.classes[cm].live - s0.classes[cm].live));
    EXPECT(s1.segments_l2 >= 1, "no L2 segment after medium allocations");
    for (int i = 0; i < 200; i++) free(blocks[i]);

    /* 3. remote frees: counted once their owner (here: main, adopting the
     * exited producer's segments) drains them */
    struct handoff h = {.size = 736, .m = PTHREAD_MUTEX_INITIALIZER,
                        .cv = PTHREAD_COND_INITIALIZER, .state = 0};
    unsigned cr = class_of(736);
    stats_get(&s0);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, producer, &h) == 0, "pthread_create");
    pthread_mutex_lock(&h.m);
    while (h.state != 1) pthread_cond_wait(&h.cv, &h.m);
    pthread_mutex_unlock(&h.m);
    for (int i = 0; i < K; i++) free(blocks[i]);   /* remote: the producer owns them */
    pthread_mutex_lock(&h.m);
    h.state = 2;
    pthread_cond_broadcast(&h.cv);
    pthread_mutex_unlock(&h.m);
    pthread_join(t, NULL);
    collect(1);   /* adopt the producer's segments, drain */
    stats_get(&s1);
    check_consistent(&s1, "after remote frees + collect");
    EXPECT(s1.classes[cr].remote_freed - s0.classes[cr].remote_freed == K,
           "class %u: remote_freed +%llu after %d remote frees", cr,
           (unsigned long long)(s1.classes[cr].remote_freed - s0.classes[cr].remote_freed), K);
    EXPECT(s1.classes[cr].live == s0.classes[cr].live, "class %u: live %llu, was %llu", cr,
           (unsigned long long)s1.classes[cr].live, (unsigned long long)s0.classes[cr].live);
    EXPECT(s1.remote_frees >= s0.remote_frees + K, "total remote_frees did not grow by %d", K);

    /* 4. large blocks */
    stats_get(&s0);
    void *big = malloc(3u << 20);
    CHECK(big, "malloc(3 MiB)");
    memset(big, 1, 3u << 20);
    stats_get(&s1);
    EXPECT(s1.large_count == s0.large_count + 1, "large_count %zu -> %zu", s0.large_count,
           s1.large_count);
    EXPECT(s1.large_bytes >= s0.large_bytes + (3u << 20), "large_bytes %zu -> %zu",
           s0.large_bytes, s1.large_bytes);
    EXPECT(s1.allocated >= s0.allocated + (3u << 20), "allocated %zu -> %zu", s0.allocated,
           s1.allocated);
    EXPECT(s1.resident >= (3u << 20), "resident %zu below a touched 3 MiB block", s1.resident);
    EXPECT(s1.process_resident >= s1.resident / 2, "process RSS %zu vs resident %zu",
           s1.process_resident, s1.resident);
#ifndef HK_PREFIXED   /* mallinfo2 is glibc's beside the prefixed API */
    struct mallinfo2 mi = mallinfo2();
    EXPECT(mi.hblks == s1.large_count, "mallinfo2 hblks %zu, large_count %zu", mi.hblks,
           s1.large_count);
    EXPECT(mi.uordblks == s1.allocated - s1.large_bytes, "mallinfo2 uordblks %zu, stats %zu",
           mi.uordblks, s1.allocated - s1.large_bytes);
#endif
    free(big);

    /* 5. collect returns what is free */
    for (int i = 0; i < K; i++) blocks[i] = malloc(1000);   /* ~3 MiB of small blocks */
    for (int i = 0; i < K; i++) memset(blocks[i], 2, 1000);
    for (int i = 0; i < K; i++) free(blocks[i]);
    stats_get(&s0);
    size_t released = collect(1);
    stats_get(&s1);
    check_consistent(&s1, "after collect");
    NOTE("collect(1) released %zu B; committed %zu -> %zu, resident %zu -> %zu", released,
         s0.committed, s1.committed, s0.resident, s1.resident);
    EXPECT(released > 0 && s1.committed < s0.committed,
           "hakmem_collect(1) released %zu B (committed %zu -> %zu)", released, s0.committed,
           s1.committed);
    EXPECT(s1.resident < s0.resident, "resident %zu -> %zu after collect", s0.resident,
           s1.resident);
    EXPECT(collect(0) == 0 || 1, "collect(0)");   /* must simply not crash */
    return test_finish("stats_api");
}
