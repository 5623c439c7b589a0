/* bin_growth.c -- a thread that frees a batch of blocks and allocates it
 * again (issue 10, docs/analysis/batch-loops.md):
 *   1. a Tiny bin that overflows grows (HAKMEM_SLL_GROW_BYTES) until the
 *      batch fits, and then the rounds flush nothing;
 *      control: with SLL_GROW_BYTES at the starting size every round
 *      flushes -- what part 1 would see if bins did not grow;
 *   2. slabs that a round empties stay with their class, yet a heap that
 *      needs units for another class takes theirs before it maps another
 *      segment;
 *   3. hakmem_collect(1) releases them: nothing stays assigned.
 * Every block's contents are checked before it is freed.
 *
 * The API is looked up with dlsym, so the same binary runs preloaded and
 * linked; without hakmem the test has nothing to check. */
#include "test_util.h"

#include "../include/hakmem.h"

static void (*stats_get)(hakmem_stats *);
static size_t (*collect)(int);
static int (*option_set)(const char *, long long);

static hakmem_stats st;

static unsigned class_of(size_t size) {
    stats_get(&st);
    for (unsigned c = 0; c < HAKMEM_NUM_CLASSES; c++)
        if (st.classes[c].block_size >= size)
            return c;
    return HAKMEM_NUM_CLASSES - 1;
}

enum { MAXB = 4096 };
static unsigned char *blk[MAXB];

/* malloc n blocks of `size`, fill them, check them, free them in order */
static void round_trip(int n, size_t size, unsigned tag) {
    for (int i = 0; i < n; i++) {
        blk[i] = malloc(size);
        CHECK(blk[i], "malloc(%zu)", size);
        memset(blk[i], (int)((tag + (unsigned)i) & 0xff), size);
    }
    for (int i = 0; i < n; i++) {
        unsigned char want = (unsigned char)((tag + (unsigned)i) & 0xff);
        CHECK(blk[i][0] == want && blk[i][size / 2] == want && blk[i][size - 1] == want,
              "block %d of %zu B (%p) lost its contents", i, size, (void *)blk[i]);
    }
    for (int i = 0; i < n; i++)
        free(blk[i]);
}

int main(void) {
    hk_require_if_expected("bin_growth");
    if (!hk_active()) {
        NOTE("hakmem not loaded: nothing to check");
        return test_finish("bin_growth");
    }
    stats_get = (void (*)(hakmem_stats *))dlsym(RTLD_DEFAULT, "hakmem_stats_get");
    collect = (size_t (*)(int))dlsym(RTLD_DEFAULT, "hakmem_collect");
    option_set = (int (*)(const char *, long long))dlsym(RTLD_DEFAULT, "hakmem_option_set");
    CHECK(stats_get && collect && option_set, "the hakmem API does not resolve");

    /* 1. 400 blocks of 256 B: 100 KiB, more than a bin's first 32 KiB */
    unsigned c = class_of(256);
    round_trip(400, 256, 1);
    round_trip(400, 256, 2);
    stats_get(&st);
    uint64_t f0 = st.classes[c].flushes;
    uint32_t cap = st.classes[c].cache_cap;
    for (unsigned r = 3; r < 7; r++)
        round_trip(400, 256, r);
    stats_get(&st);
    NOTE("256 B: capacity %u after two rounds, %llu flushes in the next four", cap,
         (unsigned long long)(st.classes[c].flushes - f0));
    EXPECT(cap >= 400, "the 256 B bin holds %u blocks after two rounds of 400", cap);
    EXPECT(st.classes[c].flushes == f0, "%llu flushes once the bin had grown",
           (unsigned long long)(st.classes[c].flushes - f0));

    /* control: no room to grow (the starting 32 KiB) */
    CHECK(option_set("SLL_GROW_BYTES", 32768) == 0, "hakmem_option_set(SLL_GROW_BYTES)");
    round_trip(400, 256, 7);
    stats_get(&st);
    f0 = st.classes[c].flushes;
    for (unsigned r = 8; r < 12; r++)
        round_trip(400, 256, r);
    stats_get(&st);
    NOTE("control, SLL_GROW_BYTES=32768: capacity %u, %llu flushes in four rounds",
         st.classes[c].cache_cap, (unsigned long long)(st.classes[c].flushes - f0));
    EXPECT(st.classes[c].flushes - f0 >= 4, "without growth only %llu flushes in four rounds",
           (unsigned long long)(st.classes[c].flushes - f0));
    CHECK(option_set("SLL_GROW_BYTES", 131072) == 0, "hakmem_option_set(SLL_GROW_BYTES)");

    /* 2. 1600 blocks of 1 KiB empty some 25 slabs; 3200 of 512 B then need
     * as many: they must come from those slabs' units, not a new segment.
     * No purge meanwhile (it would release the empty slabs itself): the
     * heap never looks at the clock, and would find nothing due. */
    CHECK(option_set("PURGE_DELAY_MS", 3600000) == 0, "hakmem_option_set(PURGE_DELAY_MS)");
    CHECK(option_set("PURGE_CHECK_TICKS", 1 << 30) == 0, "hakmem_option_set(PURGE_CHECK_TICKS)");
    collect(1);
    round_trip(1600, 1024, 20);
    stats_get(&st);
    size_t seg0 = st.segments_tiny, active0 = st.active;
    NOTE("after 1600 x 1 KiB: %zu Tiny segments, %zu KiB of slabs assigned", seg0, active0 >> 10);
    EXPECT(active0 >= (size_t)16 << 16, "only %zu KiB of slabs stayed assigned: emptied slabs "
           "were released at once", active0 >> 10);
    round_trip(3200, 512, 21);
    stats_get(&st);
    NOTE("after 3200 x 512 B: %zu Tiny segments (%zu in all, %zu cached), %zu KiB assigned", st.segments_tiny, st.segments, st.segments_cached, st.active >> 10);
    EXPECT(st.segments_tiny <= seg0, "the 512 B slabs took %zu more segment(s) while empty 1 KiB "
           "slabs held %zu KiB", st.segments_tiny - seg0, active0 >> 10);

    /* 3. everything back: nothing stays assigned to a class */
    collect(1);
    stats_get(&st);
    NOTE("after hakmem_collect(1): %zu KiB of slabs and pages assigned", st.active >> 10);
    EXPECT(st.active < (size_t)256 << 10, "%zu KiB still assigned after hakmem_collect(1)",
           st.active >> 10);
    return test_finish("bin_growth");
}
