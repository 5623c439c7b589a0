/* superslab.c -- the segment layer: 2 MiB aligned regions ("SuperSlabs")
 * owned by one thread heap and cut into 64 KiB units, shared by the Tiny
 * engine (units -> slabs, src/tiny/tiny_slab.c) and the L2 pool (units ->
 * pages, src/l2/l2.c). This file owns what both need: mapping and the region
 * map, the registry, unit bookkeeping, delayed purge (MADV_DONTNEED), the
 * process-wide cache of empty segments, and the abandoned lists from which
 * threads adopt the segments of threads that exited.
 *
 * Locking: hm_ss_lock_ guards the abandoned lists, the empty cache and the
 * registry. Nothing here is on a fast path; everything that touches a
 * segment's units runs on its owner thread. */
#include "superslab/superslab.h"

static pthread_mutex_t hm_ss_lock_ = PTHREAD_MUTEX_INITIALIZER;
static hm_superslab *abandoned_head[HM_SEG_KINDS];
static size_t abandoned_count[HM_SEG_KINDS];
static hm_superslab *cache_head;          /* empty segments, most recent first */
static hm_superslab *cache_tail;          /* ... and the oldest */
static size_t cache_count;
static size_t cache_resident;             /* what their cache_est add up to */
static size_t cache_dirty;                /* how many have dirty units */
static hm_superslab *all_head;            /* registry, for statistics */
static size_t all_count;

static const uint8_t region_kind_of[HM_SEG_KINDS] = {HM_REGION_SS, HM_REGION_L2};

/* ---- lists ------------------------------------------------------------------ */
/* The head is stored as a relaxed atomic: cache_get peeks at cache_head
 * without the lock (a plain mov on x86; no data race for C11 or TSan). */
static void list_push(hm_superslab **head, hm_superslab *ss) {
  ss->prev = NULL;
  ss->next = *head;
  if (*head) (*head)->prev = ss;
  __atomic_store_n(head, ss, __ATOMIC_RELAXED);
}

static void list_remove(hm_superslab **head, hm_superslab *ss) {
  if (ss->prev) ss->prev->next = ss->next;
  else __atomic_store_n(head, ss->next, __ATOMIC_RELAXED);
  if (ss->next) ss->next->prev = ss->prev;
  ss->next = ss->prev = NULL;
}

/* ---- memory of free units ---------------------------------------------------- */
/* Pages given back inside a segment with huge-page advice: the advice goes
 * first. Otherwise khugepaged (which collapses a range with as little as
 * one resident page, by default) could commit the whole 2 MiB again while
 * the units are free. */
void hm_seg_decommit(hm_superslab *ss, void *p, size_t size) {
  if (ss->maybe_huge) {
    (void)hm_os_hugepage(ss, HM_REGION_SIZE, 0);
    ss->maybe_huge = 0;
  }
  hm_os_decommit(p, size);
}

static void decommit_units(hm_superslab *ss, uint32_t units) {
  while (units) {
    unsigned a = (unsigned)__builtin_ctz(units);
    unsigned b = a;
    while (b < HM_UNITS && (units >> b) & 1u) b++;
    uint8_t *from = hm_seg_area_start(ss, a), *to = hm_seg_area_end(ss, b);
    hm_seg_decommit(ss, from, (size_t)(to - from));
    units &= b >= HM_UNITS ? 0u : ~((1u << b) - 1u);
  }
}

static void purge_dirty(hm_superslab *ss) {
  if (!ss->dirty_units) return;
  decommit_units(ss, ss->dirty_units);
  ss->dirty_units = 0;
}

static uint32_t run_mask(unsigned u, unsigned span) {
  return (span >= 32 ? HM_UNITS_ALL : ((1u << span) - 1u)) << u;
}

int hm_seg_find_run(uint32_t free_units, unsigned span) {
  uint32_t m = free_units;
  for (unsigned i = 1; i < span && m; i++) m &= free_units >> i;
  return m ? __builtin_ctz(m) : -1;
}

/* The longest run of units set in `units`: its length, its first unit in *at. */
unsigned hm_seg_longest_run(uint32_t units, unsigned *at) {
  unsigned best = 0;
  while (units) {
    unsigned a = (unsigned)__builtin_ctz(units);
    unsigned len = (unsigned)__builtin_ctzll(~((uint64_t)units >> a));   /* the ones from a */
    if (len > best) {
      best = len;
      *at = a;
    }
    units = a + len >= 32 ? 0u : units & ~((1u << (a + len)) - 1u);
  }
  return best;
}

/* ---- fit lists (hakmem_internal.h, HM_FIT_LISTS) ------------------------------- */
static unsigned fit_list_of_run(unsigned run) {
  if (run == 0) return HM_FIT_NONE;
  if (run <= 3) return run - 1;
  if (run < 8) return 3;
  return run < HM_UNITS ? 4 : HM_FIT_EMPTY;
}

static void fit_unlink(hm_heap *h, hm_superslab *ss) {
  if (ss->fit == HM_FIT_NONE) return;
  if (ss->fit_prev) ss->fit_prev->fit_next = ss->fit_next;
  else h->fit[ss->kind][ss->fit] = ss->fit_next;
  if (ss->fit_next) ss->fit_next->fit_prev = ss->fit_prev;
  ss->fit_next = ss->fit_prev = NULL;
  ss->fit = HM_FIT_NONE;
}

/* To the front of the list its free units say (none if it has none). */
static void fit_place(hm_heap *h, hm_superslab *ss) {
  unsigned at = 0;
  unsigned list = fit_list_of_run(hm_seg_longest_run(ss->free_units, &at));
  if (list == ss->fit && !ss->fit_prev) return;   /* already there */
  fit_unlink(h, ss);
  if (list == HM_FIT_NONE) return;
  hm_superslab **head = &h->fit[ss->kind][list];
  ss->fit = (uint8_t)list;
  ss->fit_prev = NULL;
  ss->fit_next = *head;
  if (*head) (*head)->fit_prev = ss;
  *head = ss;
}

/* The segments of `kind` owned by h that may hold a run of `span` free
 * units, the tightest fit first (long runs stay for long pages, wholly free
 * segments for retirement): pass NULL, then the last one returned. A segment
 * found may still lack the run (list 3 holds runs of 4-7), or have it only
 * where the caller may not place it: the caller checks. */
hm_superslab *hm_seg_fit_next(hm_heap *h, unsigned kind, unsigned span, hm_superslab *after) {
  unsigned list;
  if (after) {
    if (after->fit_next) return after->fit_next;
    list = after->fit + 1u;
  } else {
    list = fit_list_of_run(span < HM_UNITS ? span : HM_UNITS);
  }
  for (; list < HM_FIT_LISTS; list++)
    if (h->fit[kind][list]) return h->fit[kind][list];
  return NULL;
}

/* Where in `units` a page of `span` units goes, or -1: a multi-unit page
 * avoids unit 0 when it can (after the header, the block placement may cost
 * it a block). */
static int place_run(uint32_t units, unsigned span) {
  int u = span > 1 ? hm_seg_find_run(units & ~1u, span) : -1;
  return u >= 0 ? u : hm_seg_find_run(units, span);
}

hm_superslab *hm_seg_fit_find(hm_heap *h, unsigned kind, unsigned span, uint32_t allowed,
                              int resident, unsigned *unit) {
  unsigned first = fit_list_of_run(span < HM_UNITS ? span : HM_UNITS);
  if (resident) {
    /* The front of every list that may fit: a segment just adopted, taken
     * from the cache or given units back is at the front of its list. */
    for (unsigned list = first; list < HM_FIT_LISTS; list++) {
      hm_superslab *ss = h->fit[kind][list];
      for (unsigned k = 0; ss && k < HM_FIT_VISIT_MAX; k++, ss = ss->fit_next) {
        int u = hm_seg_find_run(ss->free_units & ss->dirty_units & allowed, span);
        if (u >= 0) {
          *unit = (unsigned)u;
          return ss;
        }
      }
    }
    return NULL;
  }
  for (hm_superslab *ss = hm_seg_fit_next(h, kind, span, NULL); ss; ss = hm_seg_fit_next(h, kind, span, ss)) {
    int u = place_run(ss->free_units & allowed, span);
    if (u >= 0) {
      *unit = (unsigned)u;
      return ss;
    }
  }
  return NULL;
}

void hm_seg_units_take(hm_heap *h, hm_superslab *ss, unsigned u, unsigned span) {
  uint32_t mask = run_mask(u, span);
  uint32_t fresh = mask & ss->free_units & ~ss->dirty_units;   /* not committed: the learner's signal */
  if (fresh) {
    size_t bytes = (size_t)__builtin_popcount(fresh) * HM_UNIT_SIZE;
    if (ss->maybe_huge) HM_OS_COUNT(fresh_seg_huge_bytes, bytes);
    else HM_OS_COUNT(fresh_seg_bytes, bytes);
  }
  ss->free_units &= ~mask;
  ss->dirty_units &= ~mask;
  fit_place(h, ss);
}

/* Units go back free and dirty (committed); they are decommitted once they
 * stay unused for purge_delay_ms. A segment that became wholly free is
 * remembered and retired at the next safe point (hm_heap_retire_empty). */
void hm_seg_units_return(hm_heap *h, hm_superslab *ss, unsigned u, unsigned span) {
  uint32_t mask = run_mask(u, span);
  if (!ss->dirty_units) ss->dirty_since_ms = hm_os_now_ms();
  ss->dirty_units |= mask;
  ss->free_units |= mask;
  fit_place(h, ss);
  if (ss->free_units == HM_UNITS_ALL) h->retire_candidate = ss;
}

/* ---- carving ------------------------------------------------------------------ */
/* Link n never-used blocks [from, from + n * bs) into a chain: *first .. *last
 * (the caller sets *last's link). In address order; with hm_param.secure the
 * chain visits runs of CARVE_RUN consecutive blocks in random order (a
 * Fisher-Yates shuffle of the runs on the heap's xorshift generator), so that
 * where one fresh block lies says little about where the next one will --
 * while each run keeps its cache lines together: shuffling single blocks
 * measured 40 % slower on producer/consumer churn (docs/BENCHMARKS.md). In a
 * secure build each block gets its free mark, as every free block has. */
#define CARVE_RUN 4u
void hm_carve_chain(hm_heap *h, uint8_t *from, uint32_t n, size_t bs, hm_block **first,
                    hm_block **last) {
  uint16_t order[256];
  hm_block *prev = NULL;
  uint32_t runs = (n + CARVE_RUN - 1) / CARVE_RUN, done = 0;
  if (!hm_param.secure) runs = 1;   /* address order: one run of n */
  while (done < runs) {
    uint32_t k = runs - done < 256 ? runs - done : 256;
    for (uint32_t i = 0; i < k; i++) order[i] = (uint16_t)i;
    for (uint32_t i = k - 1; hm_param.secure && i > 0; i--) {
      h->rng ^= h->rng << 13, h->rng ^= h->rng >> 7, h->rng ^= h->rng << 17;
      uint32_t j = (uint32_t)(((h->rng >> 32) * (i + 1)) >> 32);   /* [0, i]: no division */
      uint16_t t = order[i];
      order[i] = order[j];
      order[j] = t;
    }
    for (uint32_t i = 0; i < k; i++) {
      uint32_t lo = hm_param.secure ? (done + order[i]) * CARVE_RUN : 0;
      uint32_t hi = hm_param.secure ? lo + CARVE_RUN : n;
      for (uint32_t x = lo; x < hi && x < n; x++) {
        hm_block *b = (hm_block *)(from + (size_t)x * bs);
        hm_carve_mark(b);
        if (prev) hm_link_set(prev, b);
        else *first = b;
        prev = b;
      }
    }
    done += k;
  }
  *last = prev;
}

/* ---- creation and destruction --------------------------------------------------- */
static void init_descriptors(hm_superslab *ss) {
  memset(ss->page_cls, HM_CLASS_NONE, sizeof ss->page_cls);
  for (unsigned u = 0; u < HM_UNITS; u++) {
    if (ss->kind == HM_SEG_TINY) {
      memset(&ss->slabs[u], 0, sizeof ss->slabs[u]);
      ss->slabs[u].cls = HM_CLASS_NONE;
      ss->slabs[u].head = (uint8_t)u;
    } else {
      memset(&ss->pages[u], 0, sizeof ss->pages[u]);
      ss->pages[u].cls = HM_CLASS_NONE;
      ss->pages[u].head = (uint8_t)u;
    }
  }
}

/* A fresh segment, always in the window: the region map must find it. Out
 * of memory (or of window room), the cached mappings are given back and the
 * mapping tried once more. */
static hm_superslab *map_new(int huge) {
  /* First a chunk of a cached large span: resident pages, not faulted in
   * again, and the large cache's memory serves small blocks too. Its old
   * contents are not zero: the header is cleared, and every unit is dirty
   * (committed, decommitted after the purge delay if unused). */
  int span_huge = 0;
  hm_superslab *ss = hm_large_take_chunk(&span_huge);
  if (ss) {
    memset(ss, 0, sizeof *ss);
    /* The span's advice: with none, no MADV_NOHUGEPAGE is owed before a
     * decommit or a reuse (one more syscall and a VMA split each; 657 of
     * them in bench_many_to_one 64 1250, when every carved chunk said so). */
    ss->maybe_huge = (uint8_t)span_huge;
    ss->dirty_units = HM_UNITS_ALL;
    ss->dirty_since_ms = hm_os_now_ms();
  } else {
    ss = hm_os_map_window(HM_REGION_SIZE, HM_REGION_SIZE, 0);
    if (!ss && hm_release_cached_mappings())
      ss = hm_os_map_window(HM_REGION_SIZE, HM_REGION_SIZE, 0);
    if (!ss) return NULL;
    hm_bg_note_mapped(HM_REGION_SIZE);
    /* Before the first touch (the header's): a page touched first maps the
     * 2 MiB through a page table, and every later fault is a 4 KiB one. */
    if (huge && hm_os_hugepage(ss, HM_REGION_SIZE, 1) == 0) ss->maybe_huge = 1;
  }
  /* Secure: the header is fenced off, and an overflow ends at the segment's
   * end (best effort: past the kernel's mapping count the pages stay open). */
  if (hm_seg_data_start > HM_SS_HEADER_SIZE)
    (void)hm_os_protect((uint8_t *)ss + HM_SS_HEADER_SIZE, hm_seg_data_start - HM_SS_HEADER_SIZE, 0);
  if (hm_seg_data_end < HM_REGION_SIZE)        /* ... and an overflow ends at the segment's end */
    (void)hm_os_protect((uint8_t *)ss + hm_seg_data_end, HM_REGION_SIZE - hm_seg_data_end, 0);
  /* Fresh (or cleared) header: owner NULL, no remote frees. */
  ss->free_units = HM_UNITS_ALL;
  hm_lock(&hm_ss_lock_);
  ss->all_prev = NULL;
  ss->all_next = all_head;
  if (all_head) all_head->all_prev = ss;
  all_head = ss;
  all_count++;
  hm_unlock(&hm_ss_lock_);
  return ss;
}

/* Off the list of all segments and out of the region map: no longer a
 * segment (hm_ss_lock_ held). */
static void forget_locked(hm_superslab *ss) {
  if (ss->all_prev) ss->all_prev->all_next = ss->all_next;
  else all_head = ss->all_next;
  if (ss->all_next) ss->all_next->all_prev = ss->all_prev;
  all_count--;
  hm_region_set((uintptr_t)ss, HM_REGION_NONE);
}

/* Called with hm_ss_lock_ held. */
static void unmap_locked(hm_superslab *ss) {
  forget_locked(ss);
  hm_os_unmap(ss, HM_REGION_SIZE);
}

/* ---- the empty-segment cache ---------------------------------------------------- *
 * Empty segments any heap may take, bounded by memory: what the cached
 * segments count for (cache_est, set as each enters) stays within
 * ss_cache_max whole segments, and their number within HM_SS_CACHE_SEGS_MAX
 * (ss_cache_max where address space is tight: an RLIMIT_AS, strict
 * overcommit). Beyond either bound the oldest goes back to the OS. A
 * segment counts whole, as when the bound was a count, except one of a heap
 * whose recent segments were found sparse (blocks written in a word or two:
 * hm_seg_want_huge's sample), which counts what mincore finds resident: a
 * program that frees gigabytes of such segments and allocates again reuses
 * more of the mappings instead of unmapping them and faulting them in
 * (bench_big_heap 2.1 -> 3.0 Mops/s; docs/analysis/heap-scaling.md). */
#define HM_SS_CACHE_SEGS_MAX 1024u

static void cache_link(hm_superslab *ss) {
  ss->prev = NULL;
  ss->next = cache_head;
  if (cache_head) cache_head->prev = ss;
  else cache_tail = ss;
  __atomic_store_n(&cache_head, ss, __ATOMIC_RELAXED);
  cache_count++;
  cache_resident += ss->cache_est;
  if (ss->dirty_units) cache_dirty++;
}

static void cache_unlink(hm_superslab *ss) {
  if (cache_tail == ss) cache_tail = ss->prev;
  list_remove(&cache_head, ss);
  cache_count--;
  cache_resident -= ss->cache_est;
  if (ss->dirty_units) cache_dirty--;
}

/* A cached segment's dirty units are decommitted (lock held). It keeps its
 * place in the count: a purged segment is reused before a new mapping, and
 * one that stays unused is unmapped by hm_ss_cache_purge. */
static void cache_purge_one(hm_superslab *ss) {
  if (!ss->dirty_units) return;
  cache_dirty--;
  purge_dirty(ss);
}

/* The resident bytes of an empty segment, whose pages can only be resident
 * in its dirty units: mincore over SEG_SAMPLE_UNITS of them, in turn from a
 * place that wanders from call to call, scaled to all; exact when they are
 * few. Walking the page table of whole segments was 9 % of bench_big_heap's
 * time (about 430 segments a round). */
#define SEG_SAMPLE_UNITS 4u
static size_t seg_resident_sampled(hm_superslab *ss) {
  static _Atomic uint32_t seq;
  uint32_t dirty = ss->dirty_units;
  unsigned total = (unsigned)__builtin_popcount(dirty);
  if (total <= SEG_SAMPLE_UNITS) return hm_os_resident(ss, HM_REGION_SIZE);
  unsigned skip = atomic_fetch_add_explicit(&seq, 1, memory_order_relaxed) % total;
  uint32_t left = dirty;
  while (skip--) left &= left - 1;   /* the sample starts at the skip-th dirty unit */
  size_t r = 0;
  for (unsigned k = 0; k < SEG_SAMPLE_UNITS; k++) {
    if (!left) left = dirty;   /* wrap around */
    unsigned u = (unsigned)__builtin_ctz(left);
    left &= left - 1;
    r += hm_os_resident((uint8_t *)ss + (size_t)u * HM_UNIT_SIZE, HM_UNIT_SIZE);
  }
  return r * total / SEG_SAMPLE_UNITS;
}

/* What an empty segment of heap h counts for in the cache: the whole
 * segment, as the count bound did -- counting only its dirty units kept
 * more segments of a churning heap (larson_mid at 4 threads: 7 % more peak
 * RSS) -- unless h's recent segments were found sparse (hm_seg_want_huge's
 * sample): then what is resident in it (sampled). */
static size_t seg_resident_est(const hm_heap *h, hm_superslab *ss) {
  if (ss->dirty_units && h && h->dense_segs && !h->dense) return seg_resident_sampled(ss);
  return HM_REGION_SIZE;
}

/* An empty segment of heap h (NULL: none to ask) goes to the cache; beyond
 * its bounds the oldest ones go back to the OS. */
static void cache_put(hm_heap *h, hm_superslab *ss) {
  atomic_store_explicit(&ss->owner, NULL, memory_order_release);
  ss->dirty_since_ms = hm_os_now_ms();
  ss->cache_est = seg_resident_est(h, ss);
  size_t max_bytes = (size_t)HM_PARAM(ss_cache_max) * HM_REGION_SIZE;
  size_t max_count = hm_os_address_space_tight() ? HM_PARAM(ss_cache_max) : HM_SS_CACHE_SEGS_MAX;
  if (max_count < HM_PARAM(ss_cache_max)) max_count = HM_PARAM(ss_cache_max);
  hm_lock(&hm_ss_lock_);
  cache_link(ss);
  while (cache_tail && (cache_count > max_count || cache_resident > max_bytes)) {
    hm_superslab *victim = cache_tail;
    cache_unlink(victim);
    unmap_locked(victim);
  }
  hm_unlock(&hm_ss_lock_);
}

/* A cached empty segment, the newest; with dirty_only, the newest that
 * still has resident units. NULL if none. */
static hm_superslab *cache_get(int dirty_only) {
  if (!__atomic_load_n(&cache_head, __ATOMIC_RELAXED)) return NULL;
  hm_lock(&hm_ss_lock_);
  hm_superslab *ss = dirty_only && !cache_dirty ? NULL : cache_head;
  while (dirty_only && ss && !ss->dirty_units) ss = ss->next;
  if (ss) cache_unlink(ss);
  hm_unlock(&hm_ss_lock_);
  return ss;
}

void hm_seg_heap_add(hm_heap *h, hm_superslab *ss) {
  atomic_store_explicit(&ss->owner, h, memory_order_release);
  list_push(&h->segs[ss->kind], ss);
  h->seg_count[ss->kind]++;
  ss->fit = HM_FIT_NONE;
  ss->fit_next = ss->fit_prev = NULL;
  fit_place(h, ss);
}

static void heap_remove(hm_heap *h, hm_superslab *ss) {
  fit_unlink(h, ss);
  if (h->drain_cursor == ss) h->drain_cursor = ss->next;
  list_remove(&h->segs[ss->kind], ss);
  h->seg_count[ss->kind]--;
}

/* Does heap h touch the memory it takes? The resident share of what its
 * recent segments commit (mincore), HM_HUGE_DENSITY_SAMPLE segments of each
 * kind after the newest (which is still being filled) and only those
 * without the advice (a huge page is resident whole, touched or not). A
 * program that writes a word of each block it allocates -- buffers handed
 * on, tables filled later -- leaves most pages of its slabs and pages
 * untouched: there a 2 MiB page commits what 4 KiB pages never would, and
 * costs more to zero than the one 4 KiB fault it replaces
 * (bench_many_to_one: peak RSS 50 -> 70-95 MB with the advice, no faster).
 * Carving writes a link into every block it carves, so a dense program
 * reads above 0.9 and a sparse one with 16 KiB blocks near 0.25; the bound
 * is half, as not-yet-carved tails of pages count as committed. Nothing
 * sampled (every recent segment advised already): the earlier answer
 * stands. Runs when a heap of HM_HUGE_MIN_SEGS segments takes another
 * (hm_seg_want_huge), whether or not the advice is given. */
#define HM_HUGE_DENSITY_SAMPLE 4
static int heap_dense(const hm_heap *h) {
  size_t resident = 0, committed = 0;
  for (unsigned k = 0; k < HM_SEG_KINDS; k++) {
    const hm_superslab *ss = h->segs[k];
    /* (at most 4 samples' worth of segments looked at: every segment of a
     * large heap may carry the advice already) */
    for (unsigned n = 0, seen = 0; ss && (ss = ss->next) != NULL && n < HM_HUGE_DENSITY_SAMPLE &&
                                   seen < 4 * HM_HUGE_DENSITY_SAMPLE;
         seen++) {
      if (ss->maybe_huge) continue;
      committed += (size_t)__builtin_popcount(~ss->free_units | ss->dirty_units) * HM_UNIT_SIZE;
      resident += hm_os_resident((void *)ss, HM_REGION_SIZE);
      n++;
    }
  }
  return committed == 0 || resident * 2 >= committed;
}

/* Huge pages for a heap that is growing big: it already holds
 * HM_HUGE_MIN_SEGS segments (64 MiB), of both kinds together. Counting per
 * kind advised one kind's new segments and not the other's, and a program
 * whose data lives in both (perl: hash entries in 4 KiB arenas, medium;
 * keys of 41 B, Tiny) then ran slower than with no huge pages at all: on
 * this VM a dependent random load that alternates between a huge-page and
 * a 4 KiB-page region costs 367-394 ns, against 239-273 when both are of
 * one size (docs/analysis/huge-pages.md, "perl"). Both kinds now switch
 * together, so blocks allocated at the same time share their page size.
 * It takes a segment only
 * when no run of a page's span
 * is free in its own, so a heap that grows fills the new one too, and one
 * fault per 2 MiB replaces 512. What huge pages commit for nothing is at
 * most the unfilled part of a heap's last segment: against 64 MiB or more,
 * a few per cent. Below, it weighed: Larson with 16-32 KiB blocks, whose
 * short-lived threads' heaps hold 12-20 segments, peaked 13 % higher for no
 * speed with a threshold of 4 segments, 10 % with 16, level with 32. A small heap's segment, mostly untouched, would
 * commit 2 MiB for a few slabs: it gets none, and a reused segment that has
 * the advice (from the cache, or carved from a large span) loses it. A
 * reused segment is not given the advice: its header page is resident, so
 * its faults stay 4 KiB ones until khugepaged comes by, whose collapse is
 * work for nothing here. Never in secure mode: the guard pages inside a
 * segment split its mapping. During the learner's trial (HM_HUGE_TRIAL)
 * seg_take gives it to one such segment in HM_HUGE_TRIAL_EVERY. */
/* heap_dense's answer for a heap of `segs` segments, refreshed when the
 * heap has taken or left a quarter of its segments (at least 8) since the
 * last sample, or after a second: sampled at every new segment, a heap
 * growing by gigabytes spent a sixth of its time in mincore
 * (bench_big_heap, docs/analysis/heap-scaling.md). Two readers: the advice
 * below, and the cache's count of a sparse heap's empty segments
 * (seg_resident_est) -- which is why it is refreshed whether or not the
 * advice may be given: counted whole, those segments overflowed the cache's
 * bound into an unmap and a fresh mapping each (bench_big_heap in secure
 * mode: 2.5 times the mappings, each with its two guard-page mprotects). */
static int heap_density_refresh(hm_heap *h, uint32_t segs) {
  uint32_t step = h->dense_segs / 4 > 8 ? h->dense_segs / 4 : 8;
  uint64_t now = hm_os_now_ms();
  if (!h->dense_segs || segs >= h->dense_segs + step || segs + step <= h->dense_segs ||
      now - h->dense_ms >= 1000) {
    h->dense = (uint8_t)heap_dense(h);
    h->dense_segs = segs;
    h->dense_ms = now;
  }
  return h->dense;
}

int hm_seg_want_huge(hm_heap *h) {
  uint32_t segs = h->seg_count[HM_SEG_TINY] + h->seg_count[HM_SEG_L2];
  if (segs < HM_HUGE_MIN_SEGS) return 0;
  int dense = heap_density_refresh(h, segs);
  return (HM_PARAM(huge_pages) & HM_HUGE_SEGMENTS) && !hm_param.secure && dense;
}

/* During the learner's trial (HM_HUGE_TRIAL), one segment or span the
 * advice would go to in HM_HUGE_TRIAL_EVERY gets it: counted process-wide,
 * since a heap that gives segments back and takes others keeps its count. */
int hm_huge_trial_pick(void) {
  static _Atomic uint32_t trial_count;
  if (!(HM_PARAM(huge_pages) & HM_HUGE_TRIAL)) return 1;
  return atomic_fetch_add_explicit(&trial_count, 1, memory_order_relaxed) % HM_HUGE_TRIAL_EVERY == 0;
}

/* Segment ss (NULL: a new mapping) joins heap h as a segment of `kind`. */
static hm_superslab *seg_take(hm_heap *h, unsigned kind, hm_superslab *ss) {
  /* asked only where it matters: a new mapping, or a reused one that may
   * carry the advice (hm_seg_want_huge may sample with mincore) */
  int huge = (!ss || ss->maybe_huge) && hm_seg_want_huge(h) && hm_huge_trial_pick();
  HM_DBG_ONLY(unsigned src = ss ? HM_STAGE_CACHE : HM_STAGE_OS;)
  if (!ss) ss = map_new(huge);
  if (ss && !huge && ss->maybe_huge && hm_os_hugepage(ss, HM_REGION_SIZE, 0) == 0) ss->maybe_huge = 0;
  if (!ss) return NULL;
  HM_DBG_ONLY(h->dbg_seg_src = HM_DBG_MAX(h->dbg_seg_src, src);)
  if (ss->kind != kind || hm_region_kind_at((uintptr_t)ss) != region_kind_of[kind]) {
    ss->kind = (uint8_t)kind;
    init_descriptors(ss);
    hm_region_set((uintptr_t)ss, region_kind_of[kind]);
  }
  hm_seg_heap_add(h, ss);
  return ss;
}

/* A segment for heap h of the given kind: from the empty cache, else the OS. */
hm_superslab *hm_seg_acquire(hm_heap *h, unsigned kind) { return seg_take(h, kind, cache_get(0)); }

/* Only a cached segment whose units are still resident, or NULL: a heap
 * takes it before the never-used units of its own segments, which would
 * cost page faults and add to the RSS while the cached one waits. */
hm_superslab *hm_seg_acquire_dirty(hm_heap *h, unsigned kind) {
  hm_superslab *ss = cache_get(1);
  return ss ? seg_take(h, kind, ss) : NULL;
}

/* An empty cached segment becomes the chunk of a large span of `used`
 * bytes (large.c, map_chunk): the other direction of hm_large_take_chunk,
 * so that memory the small and medium blocks gave back serves large blocks
 * too, without a mapping or the faults of a fresh one. It leaves the
 * segments (their list, the region map: large.c marks the chunk as its
 * own); its dirty units past the span are decommitted, the mapping stays
 * whole for the span to grow into. Never in secure mode (guard pages inside
 * segments). NULL when the cache is empty. *huge: its huge-page advice. */
void *hm_seg_cache_take_chunk(size_t used, int *huge) {
  if (hm_param.secure) return NULL;
  hm_superslab *ss = cache_get(0);   /* the newest: the likeliest resident */
  if (!ss) return NULL;
  hm_lock(&hm_ss_lock_);
  forget_locked(ss);
  hm_unlock(&hm_ss_lock_);
  unsigned first_past = (unsigned)((used + HM_UNIT_SIZE - 1) / HM_UNIT_SIZE);
  if (first_past < HM_UNITS)
    decommit_units(ss, ss->dirty_units & run_mask(first_past, HM_UNITS - first_past));
  *huge = ss->maybe_huge;
  return ss;
}

/* A heap that had to find a new slab or page may reclaim one more segment. */
void hm_seg_earn_reclaim(hm_heap *h) {
  if (h->reclaim_credit < HM_RECLAIM_CREDIT_MAX) h->reclaim_credit++;
}

/* ---- abandonment ----------------------------------------------------------------- */
/* Off the abandoned list (hm_ss_lock_ held), on its way to an adopter: the
 * owner leaves HM_OWNER_ABANDONED under the lock, so a reclaiming freer that
 * sees it under the lock knows the segment is still on the list. */
static void abandoned_take_locked(hm_superslab *ss) {
  list_remove(&abandoned_head[ss->kind], ss);
  abandoned_count[ss->kind]--;
  atomic_store_explicit(&ss->owner, NULL, memory_order_relaxed);
}

hm_superslab *hm_seg_abandoned_pop(unsigned kind) {
  if (!__atomic_load_n(&abandoned_head[kind], __ATOMIC_RELAXED)) return NULL;
  hm_lock(&hm_ss_lock_);
  hm_superslab *ss = abandoned_head[kind];
  if (ss) abandoned_take_locked(ss);
  hm_unlock(&hm_ss_lock_);
  return ss;
}

/* Reclaim on free: a thread that frees into an abandoned segment adopts it
 * (drains what others posted to it, releases what became empty) and its
 * frees into it become local. The thread that inherits an exited thread's
 * blocks -- a server's next worker, a consumer, a thread that cleans up --
 * thus reuses the memory they free at once, instead of leaving it in an
 * ownerless segment until the background collector comes by while it takes
 * fresh memory for its own blocks. Returns 0 if another thread (or the
 * collector) took the segment first.
 *   Only a thread that needs memory reclaims: each new slab or page it had to
 * find earns it one credit (at most HM_RECLAIM_CREDIT_MAX banked), each
 * reclaim spends one. A thread that mostly frees -- a main thread collecting
 * what exited workers left, one consumer of many producers -- would otherwise
 * collect segments it never allocates from, their free space lost to the
 * threads that do allocate (tests/thread_churn: 750 MB instead of 80). */
int hm_seg_reclaim(hm_heap *h, hm_superslab *ss) {
  h->reclaim_credit--;
  hm_lock(&hm_ss_lock_);
  int ours = hm_load_relaxed(&ss->owner) == HM_OWNER_ABANDONED;
  if (ours) abandoned_take_locked(ss);
  hm_unlock(&hm_ss_lock_);
  if (!ours) return 0;
  if (ss->kind == HM_SEG_TINY) hm_tiny_adopt(h, ss);
  else hm_l2_adopt(h, ss);
  return 1;
}

/* The background thread's collector heap (hm_seg_collect_abandoned): its
 * abandons hand segments back, they do not start their wait again. */
static hm_heap *collector_heap;

/* Thread exit: an empty segment goes to the cache, any other is marked
 * abandoned for another thread to adopt. */
void hm_seg_abandon(hm_heap *h, hm_superslab *ss) {
  heap_remove(h, ss);
  if (h != __atomic_load_n(&collector_heap, __ATOMIC_RELAXED)) {
    ss->abandoned_ms = hm_os_now_ms();   /* the collector's own abandon is no new start */
    ss->blocks_purged = 0;
  }
  if (ss->free_units == HM_UNITS_ALL && !hm_load_relaxed(&ss->remote_units)) {
    cache_put(h, ss);
    return;
  }
  /* Under the lock: a reclaiming freer (hm_seg_reclaim) that sees
   * HM_OWNER_ABANDONED under it must find the segment on the list. */
  hm_lock(&hm_ss_lock_);
  atomic_store_explicit(&ss->owner, HM_OWNER_ABANDONED, memory_order_release);
  list_push(&abandoned_head[ss->kind], ss);
  abandoned_count[ss->kind]++;
  hm_unlock(&hm_ss_lock_);
}

/* ---- retiring empty segments ------------------------------------------------------- */
static int retirable(hm_heap *h, hm_superslab *ss) {
  return ss->free_units == HM_UNITS_ALL && h->seg_count[ss->kind] > HM_PARAM(heap_keep_empty_ss) &&
         !hm_load_relaxed(&ss->remote_units);
}

/* Every empty segment beyond heap_keep_empty_ss per kind goes to the
 * process-wide cache, where any thread can take it. The wholly free ones
 * are on their own fit list: no walk of the others. */
static void retire_all_empty(hm_heap *h) {
  h->retire_candidate = NULL;
  for (unsigned k = 0; k < HM_SEG_KINDS; k++) {
    hm_superslab *next;
    for (hm_superslab *ss = h->fit[k][HM_FIT_EMPTY]; ss; ss = next) {
      next = ss->fit_next;
      if (retirable(h, ss)) {
        heap_remove(h, ss);
        cache_put(h, ss);
      }
    }
  }
}

/* At a point where nothing walks the segments. The candidate is the last
 * segment that became empty; others may have since the last safe point (a
 * drain or an adoption empties several at once), so all are taken: kept
 * in this heap, their memory would wait for the purge delay while other
 * threads map fresh segments. */
void hm_heap_retire_empty(hm_heap *h) {
  if (h->retire_candidate) retire_all_empty(h);
}

/* ---- purge ------------------------------------------------------------------------ */
/* Release the heap's empty slabs and L2 pages and retire its empty segments,
 * then decommit the free units that stayed unused for purge_delay_ms (all of
 * them when forced). Run by the owner, or by the background thread holding the
 * heap's claim: it stops early when the owner waits for it (bg_claim == 2).
 * free_since: units free now have been free at least since then (the
 * background thread knows it for an idle heap; UINT64_MAX: no knowledge).
 * Returns 1 if dirty memory is left waiting for its delay. */
static int purge_heap(hm_heap *h, uint64_t now, int force, uint64_t free_since) {
  int pending = 0;
  hm_tiny_release_empty(h);
  /* Forced, or the heap idle (the background thread knows since when):
   * every empty page goes now; else those found empty at the last pass. */
  hm_l2_release_empty(h, force || free_since != UINT64_MAX);
  retire_all_empty(h);
  for (unsigned k = 0; k < HM_SEG_KINDS; k++) {
    for (hm_superslab *ss = h->segs[k]; ss; ss = ss->next) {
      if (!ss->dirty_units) continue;
      if (ss->dirty_since_ms > free_since) ss->dirty_since_ms = free_since;
      if (!force && now - ss->dirty_since_ms < HM_PARAM(purge_delay_ms)) {
        pending = 1;
        continue;
      }
      if (atomic_load_explicit(&h->bg_claim, memory_order_relaxed) == 2) return 1;
      purge_dirty(ss);
    }
  }
  /* Idle for the delay (or forced): the free blocks inside assigned medium
   * pages too (hm_l2_purge_free_blocks says why only then). */
  if (force || (free_since != UINT64_MAX && now - free_since >= HM_PARAM(purge_delay_ms)))
    hm_l2_purge_free_blocks(h);
  return pending;
}

/* The owner's purge: its own heap, then the process-wide cache. */
void hm_ss_purge(hm_heap *h, int force) {
  if (h) {
    /* Frees posted to full slabs come back here at the latest: a refill
     * drains only a few segments (tiny_refill.c, heap_drain_some). */
    hm_tiny_drain_all(h);
    purge_heap(h, hm_os_now_ms(), force, UINT64_MAX);
  }
  hm_ss_collect_global(force);
}

/* The background thread's purge of a live heap whose owner is idle (claim
 * held): take the frees other threads posted -- a sleeping owner never
 * drains them -- then purge as the owner would. idle_since: the owner made
 * no refill or flush since then, so every block it freed, and every page or
 * slab that emptied, was free by then (UINT64_MAX: not idle). Frees posted by
 * other threads since then are counted from then too: the owner is idle, so
 * an early decommit costs it nothing it would notice. An exiting owner calls
 * it too (init.c, thread_exit), with idle_since UINT64_MAX: its last purge. */
int hm_heap_purge_idle(hm_heap *h, uint64_t now, uint64_t idle_since) {
  hm_tiny_drain_all(h);
  hm_l2_collect_all(h);
  return purge_heap(h, now, 0, idle_since);
}

/* Abandoned segments hold memory nobody reuses until some thread adopts
 * them: a heap that purges also adopts a few, which drains their remote frees
 * and releases what became empty. */
#define ADOPT_PER_PURGE 64

static void adopt_some(hm_heap *h) {
  hm_superslab *ss;
  for (int i = 0; i < ADOPT_PER_PURGE && (ss = hm_seg_abandoned_pop(HM_SEG_TINY)); i++)
    hm_tiny_adopt(h, ss);
  for (int i = 0; i < ADOPT_PER_PURGE && (ss = hm_seg_abandoned_pop(HM_SEG_L2)); i++)
    hm_l2_adopt(h, ss);
}

void hm_heap_tick_slow(hm_heap *h) {
  h->slow_ticks = 0;
  if (h->param_gen != atomic_load_explicit(&hm_param_gen, memory_order_relaxed))
    hm_heap_adopt_params(h);   /* the learner published */
  hm_bg_note_tick();
  uint64_t now = hm_os_now_ms();
  if (now - h->last_purge_ms < HM_PARAM(purge_delay_ms) / 2) return;
  __atomic_store_n(&h->last_purge_ms, now, __ATOMIC_RELAXED);   /* the background thread reads it */
  adopt_some(h);
  hm_ss_purge(h, 0);
}

/* Decommit the cached empty segments free for the delay; *pending is set
 * when some are still waiting. Lock held. */
static size_t cache_purge_locked(uint64_t now, int force, int *pending) {
  size_t released = 0;
  for (hm_superslab *ss = cache_head; ss; ss = ss->next) {
    if (!ss->dirty_units) continue;
    if (!force && now - ss->dirty_since_ms < HM_PARAM(purge_delay_ms)) {
      *pending = 1;
      continue;
    }
    released += (size_t)__builtin_popcount(ss->dirty_units) * HM_UNIT_SIZE;
    cache_purge_one(ss);
  }
  return released;
}

size_t hm_ss_collect_global(int force) {
  int pending = 0;
  if (force) hm_lock(&hm_ss_lock_);
  else if (pthread_mutex_trylock(&hm_ss_lock_) != 0) return 0;
  size_t released = cache_purge_locked(hm_os_now_ms(), force, &pending);
  hm_unlock(&hm_ss_lock_);
  return released;
}

/* The background thread's purge of the segment cache: decommit what was
 * cached for the delay, and unmap what stayed cached for another delay
 * (dirty_since_ms of a cached segment is when it entered the cache), so an
 * idle process gives back the address space too, while a busy one reuses
 * recently cached segments without mmap calls. */
int hm_ss_cache_purge(uint64_t now) {
  int pending = 0;
  hm_lock(&hm_ss_lock_);
  cache_purge_locked(now, 0, &pending);
  hm_superslab *next;
  for (hm_superslab *ss = cache_head; ss; ss = next) {
    next = ss->next;
    if (ss->dirty_units || now - ss->dirty_since_ms < 2 * (uint64_t)HM_PARAM(purge_delay_ms)) {
      pending = 1;
      continue;
    }
    cache_unlink(ss);
    unmap_locked(ss);
  }
  hm_unlock(&hm_ss_lock_);
  return pending;
}

/* Unmap every cached empty segment (out of memory: the address space is
 * what is short). Returns the bytes unmapped. */
size_t hm_ss_cache_unmap_all(void) {
  size_t released = 0;
  hm_lock(&hm_ss_lock_);
  hm_superslab *ss;
  while ((ss = cache_head) != NULL) {
    cache_unlink(ss);
    unmap_locked(ss);
    released += HM_REGION_SIZE;
  }
  hm_unlock(&hm_ss_lock_);
  return released;
}

size_t hm_release_cached_mappings(void) {
  return hm_ss_cache_unmap_all() + hm_large_collect(1);
}

/* ---- abandoned segments, by the background thread ---------------------------------- */
#define COLLECT_MAX 64   /* abandoned segments collected per kind and run */

/* Does an abandoned segment have anything to give back: frees posted to it,
 * or free units committed for longer than the delay? (hm_ss_lock_ held: it
 * stays mapped.) */
static int abandoned_has_work(hm_superslab *ss, uint64_t now, int *pending) {
  if (ss->dirty_units) {
    if (now - ss->dirty_since_ms >= HM_PARAM(purge_delay_ms)) return 1;
    *pending = 1;   /* decommitted on a later run */
  }
  if (ss->kind == HM_SEG_TINY) return hm_load_relaxed(&ss->remote_units) != 0;
  /* Its free medium blocks, once nobody has owned it for a delay: a thread
   * that exited leaves pages fragmented by the blocks it handed on. */
  if (!ss->blocks_purged) {
    if (now - ss->abandoned_ms >= HM_PARAM(purge_delay_ms)) return 1;
    *pending = 1;
  }
  for (unsigned u = 0; u < HM_UNITS; u++) {
    hm_l2_page *pg = &ss->pages[u];
    if (pg->state != HM_SLAB_UNUSED && pg->head == u &&
        (hm_load_relaxed(&pg->thread_free) & ~(uintptr_t)3))
      return 1;
  }
  return 0;
}

/* Adopt the abandoned segments that have work into the collector heap (whose
 * adoption drains their remote frees and releases what became empty), purge
 * it like any heap, and abandon what is left again. Returns 1 if memory
 * still waits (for its delay, or beyond this run's COLLECT_MAX). */
int hm_seg_collect_abandoned(hm_heap *c, uint64_t now) {
  int pending = 0;
  for (unsigned k = 0; k < HM_SEG_KINDS; k++) {
    hm_superslab *take[COLLECT_MAX];
    unsigned n = 0;
    hm_lock(&hm_ss_lock_);
    hm_superslab *next;
    for (hm_superslab *ss = abandoned_head[k]; ss; ss = next) {
      next = ss->next;
      if (!abandoned_has_work(ss, now, &pending)) continue;
      if (n == COLLECT_MAX) {
        pending = 1;
        break;
      }
      abandoned_take_locked(ss);
      take[n++] = ss;
    }
    hm_unlock(&hm_ss_lock_);
    for (unsigned i = 0; i < n; i++) {
      if (k == HM_SEG_TINY) hm_tiny_adopt(c, take[i]);
      else hm_l2_adopt(c, take[i]);
    }
  }
  __atomic_store_n(&collector_heap, c, __ATOMIC_RELAXED);
  pending |= purge_heap(c, now, 0, UINT64_MAX);
  /* The free blocks of segments nobody has owned for a delay, again after
   * each drain (blocks already given back carry a tag and are skipped):
   * hm_l2_purge_free_blocks says why. */
  for (hm_superslab *ss = c->segs[HM_SEG_L2]; ss; ss = ss->next) {
    if (now - ss->abandoned_ms < HM_PARAM(purge_delay_ms)) continue;
    hm_l2_purge_seg_free_blocks(c, ss);
    ss->blocks_purged = 1;
  }
  /* Give everything up again: the collector never keeps a segment (nor a
   * list of slabs in them: abandoning may still list slabs it drains). */
  hm_tiny_abandon_all(c);
  hm_l2_abandon_all(c);
  memset(c->partial, 0, sizeof c->partial);
  memset(c->active, 0, sizeof c->active);
  return pending;
}

/* malloc_trim: adopt every abandoned segment (draining its remote frees and
 * releasing what became empty), then purge everything free. */
void hm_heap_collect(hm_heap *h, int force) {
  if (h) {
    hm_superslab *ss;
    while ((ss = hm_seg_abandoned_pop(HM_SEG_TINY)) != NULL) hm_tiny_adopt(h, ss);
    while ((ss = hm_seg_abandoned_pop(HM_SEG_L2)) != NULL) hm_l2_adopt(h, ss);
    hm_l2_collect_all(h);
  }
  hm_ss_purge(h, force);   /* drains the Tiny segments' remote frees first */
}

/* ---- statistics ------------------------------------------------------------------ */
/* Under the lock, so no segment is unmapped meanwhile; the owners keep
 * running, so `used` counts are read as they are (exact when quiescent). */
HM_RACY_READER void hm_ss_usage(hm_usage *u, int resident) {
  hm_lock(&hm_ss_lock_);
  u->superslabs = all_count;
  u->abandoned = abandoned_count[0] + abandoned_count[1];
  u->cached_ss = cache_count;
  u->mapped += all_count * HM_REGION_SIZE;
  for (hm_superslab *ss = all_head; ss; ss = ss->all_next) {
    uint32_t free_units = HM_RACY_LOAD(ss->free_units);
    uint32_t dirty = HM_RACY_LOAD(ss->dirty_units);
    size_t committed_units = (size_t)__builtin_popcount(~free_units | dirty);
    u->committed_est += committed_units * HM_UNIT_SIZE;
    u->active += (size_t)__builtin_popcount(~free_units) * HM_UNIT_SIZE;
    if (resident) u->resident += hm_os_resident(ss, HM_REGION_SIZE);
    if (hm_load_relaxed(&ss->owner) != NULL) u->seg_kind[ss->kind & 1]++;   /* not cached */
    for (unsigned i = 0; i < HM_UNITS; i++) {
      if (ss->kind == HM_SEG_TINY) {
        hm_slab *s = &ss->slabs[i];
        if (HM_RACY_LOAD(s->state) != HM_SLAB_UNUSED && s->head == i) {
          uint32_t used = HM_RACY_LOAD(s->used);
          u->in_use += (size_t)used * s->block_size;
          if (s->cls < HM_NUM_CLASSES) u->class_out[s->cls] += used;
        }
      } else {
        hm_l2_page *pg = &ss->pages[i];
        if (HM_RACY_LOAD(pg->state) != HM_SLAB_UNUSED && pg->head == i) {
          uint16_t used = HM_RACY_LOAD(pg->used);
          u->in_use += (size_t)used * hm_class_size[pg->cls];
          if (pg->cls < HM_NUM_CLASSES) u->class_out[pg->cls] += used;
        }
      }
    }
  }
  hm_unlock(&hm_ss_lock_);
}

/* ---- fork -------------------------------------------------------------------------- */
void hm_ss_lock_all(void) { hm_lock(&hm_ss_lock_); }
void hm_ss_unlock_all(void) { hm_unlock(&hm_ss_lock_); }
void hm_ss_reinit_locks(void) { pthread_mutex_init(&hm_ss_lock_, NULL); }
