/* huge_pages.c -- transparent huge pages (HAKMEM_HUGE_PAGES, set by the
 * learner in mode on) and the L2 pages that fill a segment.
 *
 * What the kernel records is checked, not timing: the VmFlags of the mapping
 * holding a block (/proc/self/smaps: "hg" after MADV_HUGEPAGE, "nh" after
 * MADV_NOHUGEPAGE). Whether the kernel then backs it with 2 MiB pages
 * (AnonHugePages) depends on the system's setting and free memory: printed,
 * not asserted.
 *
 * Run with HAKMEM_HUGE_PAGES=3 (CTest sets it, with HAKMEM_BACKGROUND=0 and
 * an hour's purge delay: nothing is decommitted behind the test's back):
 *   1. one thread allocates 16 KiB blocks (L2), every byte written, until
 *      its heap holds MIN_SEGS + 8 L2 segments: the segments it took while
 *      it held fewer than MIN_SEGS of both kinds together (the library's
 *      HM_HUGE_MIN_SEGS, 32; the thread's Tiny segments count too) have no
 *      huge-page advice (a small heap would commit 2 MiB for a few pages),
 *      most taken later have it;
 *   2. a second thread allocating a few blocks of each size gets segments
 *      without the advice (its heap is small), although the first heap's
 *      have it;
 *   3. an 8 MiB block lies in a mapping with the advice (a large span);
 *   4. everything of step 1 is freed and hakmem_collect(1) decommits the
 *      free units: no segment that held those blocks keeps the advice
 *      (khugepaged, which collapses a range with a single resident page by
 *      default, would commit the freed memory again) -- but the one whose
 *      page still holds the blocks in this thread's cache;
 *   5. blocks of the 64 KiB class (8-unit pages: three per segment after the
 *      header unit) fill the last 7 units of a segment with a shorter page
 *      before a new segment with huge pages is mapped (once the heap holds
 *      MIN_SEGS): of 1240 blocks, the first MIN_SEGS x 24 take MIN_SEGS
 *      segments, the rest 31 a segment (24 before): at most MIN_SEGS + 17
 *      segments in all, and at least 4 x 7 blocks lie in units 25-31 of
 *      their segment (where a full page does not fit);
 *   6. the same program run again with HAKMEM_HUGE_PAGES=0: no block of
 *      steps 1-3 lies in a mapping with the advice;
 *   7. a thread that grows its heap as step 1 does but writes one word of
 *      each 16 KiB block (most of its pages never touched) gets no advice
 *      for the segments it takes once it holds MIN_SEGS: a 2 MiB page would
 *      commit four times what the blocks touch (hm_seg_want_huge measures
 *      the density of the heap's recent segments);
 *   8. step 1 run again with HAKMEM_HUGE_PAGES=7 (the learner's trial: one
 *      in four), in a fresh process: a quarter of the later segments get
 *      the advice (one more or less), the first ones none; of eight new
 *      8 MiB blocks, two.
 * Every block keeps its contents throughout. Exit 77 (skipped) where the
 * kernel has no transparent huge pages (madvise(MADV_HUGEPAGE) fails).
 */
#include "test_util.h"

#include <pthread.h>
#include <sys/mman.h>

#include "../include/hakmem.h"

#define MIB ((size_t)1 << 20)
#define MID 16384
#define MAX_MID 8192
#define MIN_SEGS 32   /* HM_HUGE_MIN_SEGS (src/hakmem_internal.h) */

/* The VmFlags of the mapping holding p: 1 with "hg", 0 without, -1 when no
 * mapping holds it; *anon_huge_kb: its AnonHugePages. Reads smaps with
 * read(2) into a static buffer (no allocation between the checks). */
static char smaps[4 << 20];
static int advised(const void *p, long *anon_huge_kb) {
  int fd = open("/proc/self/smaps", O_RDONLY);
  if (fd < 0) return -1;
  size_t n = 0;
  ssize_t r;
  while (n < sizeof smaps - 1 && (r = read(fd, smaps + n, sizeof smaps - 1 - n)) > 0) n += (size_t)r;
  close(fd);
  smaps[n] = 0;
  uintptr_t a = (uintptr_t)p;
  int inside = 0, result = -1;
  for (char *line = smaps; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
    unsigned long lo, hi;
    if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
      inside = a >= lo && a < hi;
      continue;
    }
    if (!inside) continue;
    if (!strncmp(line, "AnonHugePages:", 14) && anon_huge_kb) *anon_huge_kb = strtol(line + 14, NULL, 10);
    if (!strncmp(line, "VmFlags:", 8)) {
      char *end = strchr(line, '\n');
      result = 0;
      for (char *f = line + 8; f && f < (end ? end : f + strlen(f)); f += 3)
        if (f[0] == ' ' && f[1] == 'h' && f[2] == 'g') result = 1;
      return result;
    }
  }
  return result;
}

static void fill(unsigned char *p, size_t n, unsigned tag) {
  for (size_t i = 0; i < n; i++) p[i] = (unsigned char)(tag + i / 4096);
}
static int intact(const unsigned char *p, size_t n, unsigned tag) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != (unsigned char)(tag + i / 4096)) return 0;
  return 1;
}

static void *mid[MAX_MID];
static size_t mid_n;
static int first_unadvised_checked;

/* Step 2: a small heap's segments. */
static void *small_heap(void *arg) {
  (void)arg;
  void *p[8];
  int bad = 0;
  for (int i = 0; i < 8; i++) {
    p[i] = malloc(i % 2 ? MID : 256);
    fill(p[i], i % 2 ? MID : 256, 7u * (unsigned)i);
  }
  for (int i = 0; i < 8; i++) {
    long kb = 0;
    if (advised(p[i], &kb) == 1) bad++;
    if (!intact(p[i], i % 2 ? MID : 256, 7u * (unsigned)i)) bad += 100;
  }
  for (int i = 0; i < 8; i++) free(p[i]);
  return (void *)(intptr_t)bad;
}

static size_t l2_segments(void) {
  static hakmem_stats st;
  hakmem_stats_get(&st);
  return st.segments_l2;
}

/* Step 7: a growing heap that touches one word of each block. Returns the
 * advised late segments + 1000 x damaged blocks, or -1 when too few late
 * segments were taken to tell. */
static void *sparse[MAX_MID];
static void *sparse_heap(void *arg) {
  (void)arg;
  size_t s0 = l2_segments(), n = 0;
  long late = 0, advised_late = 0, bad = 0;
  while (n < MAX_MID && l2_segments() < s0 + MIN_SEGS + 8) {
    size_t before = l2_segments();
    sparse[n] = malloc(MID);
    CHECK(sparse[n], "malloc(%d)", MID);
    *(size_t *)sparse[n] = n;
    size_t after = l2_segments();
    if (after > before && after - s0 > MIN_SEGS) {   /* the heap held MIN_SEGS when it took it */
      late++;
      advised_late += advised(sparse[n], NULL) == 1;
    }
    n++;
  }
  NOTE("sparse heap: %zu blocks, %ld later segments, %ld of them advised", n, late, advised_late);
  for (size_t i = 0; i < n; i++) {
    bad += *(size_t *)sparse[i] != i;
    free(sparse[i]);
  }
  return (void *)(intptr_t)(late < 6 ? -1 : advised_late + 1000 * bad);
}

static size_t tiny_segments(void) {
  static hakmem_stats st;
  hakmem_stats_get(&st);
  return st.segments_tiny;
}

static int run_checks(int expect_huge) {
  /* 1. a growing heap */
  /* Only this thread has a heap here: the process's Tiny segments are its own. */
  size_t segs0 = l2_segments(), early = 0, tiny0 = tiny_segments();
  CHECK(tiny0 < MIN_SEGS, "%zu Tiny segments before the heap grows", tiny0);
  int advised_late = 0, advised_early = 0, late = 0;
  long huge_kb = 0;
  while (mid_n < MAX_MID && l2_segments() < segs0 + MIN_SEGS + 8) {
    size_t before = l2_segments();
    mid[mid_n] = malloc(MID);
    CHECK(mid[mid_n], "malloc(%d)", MID);
    fill(mid[mid_n], MID, (unsigned)mid_n);
    size_t after = l2_segments();
    if (after > before) {   /* this block opened a new segment */
      long kb = 0;
      int a = advised(mid[mid_n], &kb);
      if (after - segs0 + tiny0 <= MIN_SEGS - 1) {   /* the heap held fewer than MIN_SEGS when it took it */
        early++;
        advised_early += a == 1;
      } else {
        late++;
        if (a == 1) {
          advised_late++;
          huge_kb += kb;
        }
      }
    }
    mid_n++;
  }
  CHECK(l2_segments() >= segs0 + MIN_SEGS + 8, "only %zu new L2 segments after %zu blocks", l2_segments() - segs0,
        mid_n);
  NOTE("growing heap: %zu blocks, %zu early segments (%d advised), %d of %d later ones advised, "
       "AnonHugePages %ld kB in them",
       mid_n, early, advised_early, advised_late, late, huge_kb);
  EXPECT(advised_early == 0, "%d of the first segments got huge pages", advised_early);
  if (expect_huge == 2) {   /* 8. the trial */
    EXPECT(advised_late >= late / 4 - 1 && advised_late <= late / 4 + 1,
           "a trial advised %d of %d later segments (want a quarter)", advised_late, late);
    enum { SPANS = 8 };
    void *span[SPANS];
    int spans_advised = 0;
    for (int i = 0; i < SPANS; i++) {
      span[i] = malloc(8 * MIB);
      CHECK(span[i], "malloc(8 MiB)");
      fill(span[i], 8 * MIB, (unsigned)i);
      spans_advised += advised((char *)span[i] + 4 * MIB, NULL) == 1;
    }
    EXPECT(spans_advised == SPANS / 4, "a trial advised %d of %d new 8 MiB blocks (want %d)", spans_advised,
           SPANS, SPANS / 4);
    for (int i = 0; i < SPANS; i++) {
      EXPECT(intact(span[i], 8 * MIB, (unsigned)i), "8 MiB block %d damaged", i);
      free(span[i]);
    }
    for (size_t i = 0; i < mid_n; i++) EXPECT(intact(mid[i], MID, (unsigned)i), "block %zu damaged", i);
    return 0;
  }
  if (expect_huge)
    EXPECT(advised_late >= 6, "only %d of the later segments of a growing heap got huge pages", advised_late);
  else
    EXPECT(advised_late == 0, "HAKMEM_HUGE_PAGES=0, yet %d segments got huge pages", advised_late);
  first_unadvised_checked = 1;

  /* 2. a small heap beside it */
  pthread_t t;
  void *bad;
  CHECK(pthread_create(&t, NULL, small_heap, NULL) == 0, "pthread_create");
  pthread_join(t, &bad);
  EXPECT(bad == NULL, "the small heap: %ld (advised blocks + 100 x damaged ones)", (long)(intptr_t)bad);

  /* 3. a large span */
  unsigned char *big = malloc(8 * MIB);
  CHECK(big, "malloc(8 MiB)");
  fill(big, 8 * MIB, 3);
  long big_kb = 0;
  int big_advised = advised(big + 4 * MIB, &big_kb);
  NOTE("8 MiB block: advice %d, AnonHugePages %ld kB", big_advised, big_kb);
  EXPECT(big_advised == (expect_huge ? 1 : 0), "8 MiB block: advice %d, want %d", big_advised, expect_huge);
  EXPECT(intact(big, 8 * MIB, 3), "8 MiB block damaged");
  free(big);

  for (size_t i = 0; i < mid_n; i++) EXPECT(intact(mid[i], MID, (unsigned)i), "block %zu damaged", i);
  if (!expect_huge) return 0;

  /* 4. freed and decommitted: the advice goes */
  for (size_t i = 0; i < mid_n; i++) free(mid[i]);
  hakmem_collect(1);
  /* Segments (2 MiB aligned) of freed blocks that keep the advice: at most
   * one, the one whose page still holds the blocks left in this thread's
   * cache (a bin's worth of 16 KiB blocks: one page). */
  int still = 0;
  uintptr_t seen = 0;
  for (size_t i = 0; i < mid_n; i++) {
    uintptr_t seg = (uintptr_t)mid[i] & ~(uintptr_t)(2 * MIB - 1);
    if (seg != seen && advised(mid[i], NULL) == 1) {
      still++;
      seen = seg;
    }
  }
  EXPECT(still <= 1, "%d segments of freed blocks keep the huge-page advice after hakmem_collect(1)", still);
  mid_n = 0;

  /* 5. the 64 KiB class fills segments */
  size_t s0 = l2_segments();
  enum { N64 = 1240, SZ64 = 60000 };
  static void *b64[N64];
  for (int i = 0; i < N64; i++) {
    b64[i] = malloc(SZ64);
    CHECK(b64[i], "malloc(%d)", SZ64);
    fill(b64[i], SZ64, (unsigned)i);
  }
  size_t used = l2_segments() - s0;
  int tail_blocks = 0;   /* blocks in units 25..31: only a shorter page puts any there */
  for (int i = 0; i < N64; i++) tail_blocks += (((uintptr_t)b64[i] >> 16) & 31) >= 25;
  NOTE("%d blocks of %d B: %zu new L2 segments, %d blocks in units 25-31", N64, SZ64, used, tail_blocks);
  EXPECT(used <= MIN_SEGS + 17, "%d blocks of the 64 KiB class took %zu segments (want <= %d)", N64, used,
         MIN_SEGS + 17);
  EXPECT(tail_blocks >= 7 * 4, "only %d of %d blocks in the last 7 units of their segments", tail_blocks, N64);
  for (int i = 0; i < N64; i++) {
    EXPECT(intact(b64[i], SZ64, (unsigned)i), "64 KiB-class block %d damaged", i);
    free(b64[i]);
  }

  /* 7. a growing heap that leaves its pages untouched */
  CHECK(pthread_create(&t, NULL, sparse_heap, NULL) == 0, "pthread_create");
  pthread_join(t, &bad);
  EXPECT((intptr_t)bad == 0, "the sparse heap: %ld (-1: too few segments to tell; else advised "
         "later segments + 1000 x damaged blocks)", (long)(intptr_t)bad);
  return 0;
}

int main(int argc, char **argv) {
  hk_require_if_expected("huge_pages");
  if (!hk_active()) {
    printf("SKIP: hakmem is not serving this process\n");
    return 77;
  }
  void *probe = mmap(NULL, 4 * MIB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(probe != MAP_FAILED, "mmap");
  int thp = madvise(probe, 4 * MIB, MADV_HUGEPAGE) == 0;
  munmap(probe, 4 * MIB);
  if (!thp) {
    printf("SKIP: no transparent huge pages (madvise(MADV_HUGEPAGE) fails)\n");
    return 77;
  }
  if (argc > 1 && !strcmp(argv[1], "off")) {   /* step 6, in a fresh process */
    run_checks(0);
    return test_finish("huge_pages off");
  }
  if (argc > 1 && !strcmp(argv[1], "trial")) {   /* step 8, in a fresh process */
    run_checks(2);
    return test_finish("huge_pages trial");
  }
  long long v = -1, delay = -1;
  CHECK(hakmem_option_get("HUGE_PAGES", &v) == 0 && v == 3, "run with HAKMEM_HUGE_PAGES=3 (is %lld)", v);
  CHECK(hakmem_option_get("PURGE_DELAY_MS", &delay) == 0 && delay >= 600000,
        "run with HAKMEM_PURGE_DELAY_MS >= 600000 (is %lld)", delay);
  run_checks(1);
  /* 6. */
  static char out[8192], err[8192];
  char arg0[] = "huge_pages", arg1[] = "off";
  char *const args[] = {arg0, arg1, NULL};
  const char *vars[] = {"HAKMEM_HUGE_PAGES=0", "HAKMEM_BACKGROUND=0", "HAKMEM_PURGE_DELAY_MS=3600000",
                        "HAKMEM_LEARN=off", NULL};
  int st = hk_exec_self(args, vars, NULL, out, sizeof out, err, sizeof err, NULL);
  fputs(out, stdout);
  fputs(err, stderr);
  EXPECT(st == 0, "the run with HAKMEM_HUGE_PAGES=0 failed (status %d)", st);
  /* 8. */
  char arg_trial[] = "trial";
  char *const args_trial[] = {arg0, arg_trial, NULL};
  const char *vars_trial[] = {"HAKMEM_HUGE_PAGES=7", "HAKMEM_BACKGROUND=0", "HAKMEM_PURGE_DELAY_MS=3600000",
                              "HAKMEM_LEARN=off", NULL};
  st = hk_exec_self(args_trial, vars_trial, NULL, out, sizeof out, err, sizeof err, NULL);
  fputs(out, stdout);
  fputs(err, stderr);
  EXPECT(st == 0, "the run with HAKMEM_HUGE_PAGES=7 failed (status %d)", st);
  return test_finish("huge_pages");
}
