/* large.c -- blocks above HM_SMALL_MAX: one mapping each, header first, with
 * a bounded cache of freed mappings (reused from the smallest size class
 * that fits, unmapped after purge_delay_ms or when the cache is over its
 * bounds: a count, the memory its spans hold, and their address space).
 * One lock guards the cache; a free that finds it taken leaves its span on
 * a lock-free list for the next holder to admit ("incoming"). realloc
 * grows into a cached span that fits when there is one (a copy onto
 * resident pages), else in place with mremap when the next addresses are
 * free, else moves the pages with mremap(MREMAP_FIXED) instead of copying;
 * it gives the tail back only when a block shrinks below half of its last
 * size.
 *
 * Layout: the mapping starts at a 2 MiB aligned header chunk, marked
 * HM_REGION_LARGE in the region map; the user pointer is at hdr + user_off,
 * user_off = 4096 (the header has its own page) for plain requests and the
 * alignment for aligned ones above that and below 2 MiB. For alignments of
 * 2 MiB and more user_off is 2 MiB: the user pointer's own chunk is marked
 * HM_REGION_LARGE_HI ("header one below").
 *
 * Mappings are asked for in the window (hakmem_internal.h, "Address
 * space"); when it has no room, anywhere. A block whose user pointer lies
 * beyond the region map ("far") is recorded in a small hash set of user
 * pointers instead, looked up only where the map has no entry; far spans are
 * never cached (they are the exception, and leave the window's room to
 * blocks the map can find).
 *
 * Secure mode (hm_param.secure, read at each allocation; the block records
 * its own shape in hdr->guard): the mapping ends with one PROT_NONE page
 * past the page-rounded user region, so an overrun faults instead of running
 * into the next mapping (the header has a page of its own in every mode);
 * the pages between the header page and the user data, when
 * user_off leaves any (alignments of 8 KiB and more), are PROT_NONE too. The
 * header page stays read/write (free and realloc write it). map_size counts
 * the guard page (it is address space the block holds); usable sizes do
 * not. A freed span keeps its guards in the cache and serves only a guarded
 * block with the same user offset (its end guard moves if it must grow). */
#include "hakmem_internal.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#define PAGE_SIZE_ 4096
/* The header has its page, the user data starts on the next: large blocks
 * are page-aligned, as mimalloc's, jemalloc's and tcmalloc's are. With the
 * user data at +64 (the header's size) a program that writes one byte per
 * page of its buffers wrote at page offset 64, which on the Intel VM costs
 * 20 % more than offset 0 for any allocator (bench_large: 1.19x mimalloc's
 * time, then level; docs/analysis/large-page-aligned.md). The cost: one
 * page per block (at most 1.6 % of a 256 KiB one). */
#define LARGE_DEFAULT_OFF PAGE_SIZE_
_Static_assert(sizeof(hm_large_hdr) <= LARGE_DEFAULT_OFF, "the header fits before the user data");
#define GUARD_SIZE PAGE_SIZE_   /* secure mode: PROT_NONE bytes ending a mapping */
#define CACHE_SLOTS 4096
#define CACHE_CLASSES 64   /* four per doubling from 256 KiB: 256 KiB .. 16 GiB and up */

/* The cache of freed spans. Each span is on two lists, by index into
 * cache[]: its size class's (newest first; take is O(1): a mask of the
 * classes that hold spans) and the age list (expiry and eviction take the
 * oldest, O(1) each). `resident` is what the memory bound counts: the span's
 * size, or what mincore found when the bound was near (a span whose pages
 * the program never touched costs its address space, not memory). */
typedef struct cached_span {
  hm_large_hdr *hdr;
  size_t size;
  size_t resident;
  uint64_t since_ms;
  int32_t next, prev;       /* class list */
  int32_t older, newer;     /* age list */
} cached_span;

/* glibc's adaptive mutex spins a little before it sleeps: every thread
 * takes this lock for every large malloc and free, briefly, and a sleep
 * and a wake-up per contended take cost more than the section it guards
 * (bench_many_to_one 4 20000: 0.56-0.61 s with a plain mutex, 0.37-0.44 s
 * with this one; docs/analysis/many-to-one.md). */
#ifdef PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP
static pthread_mutex_t large_lock = PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP;
#else
static pthread_mutex_t large_lock = PTHREAD_MUTEX_INITIALIZER;
#endif
static cached_span cache[CACHE_SLOTS];
static int32_t class_head[CACHE_CLASSES];
static uint64_t class_mask;            /* bit c: class c holds a span */
static int32_t age_oldest = -1, age_newest = -1;
static int32_t free_slot = -1;         /* unused slots, through `next` */
static unsigned slots_made;            /* cache[0 .. slots_made) have been used */
static unsigned cache_n;
static size_t cache_bytes;             /* their sizes (address space) */
static size_t cache_resident;          /* their `resident`: what the bound counts */
/* The learner's signals (hm_large_counts): written under large_lock,
 * read with relaxed loads. */
static uint64_t count_hits, count_misses, count_drops;
#define BUMP(c) __atomic_store_n(&(c), (c) + 1, __ATOMIC_RELAXED)   /* lock held: one writer */
/* Live blocks: relaxed atomic adds, so that a malloc takes the lock once
 * (cache_take), not twice; the statistics read them as they are. */
static _Atomic size_t live_count, live_bytes;
#define LIVE_ADD(v, n) atomic_fetch_add_explicit(&(v), (n), memory_order_relaxed)
#define LIVE_SUB(v, n) atomic_fetch_sub_explicit(&(v), (n), memory_order_relaxed)
/* Freed spans' resident share, sampled (resident_estimate below). */
#define SAMPLE_PAGES 64u   /* pages one sample looks at */
static _Atomic uint32_t resident_seq;         /* samples taken: where the next one looks */
static _Atomic size_t unsampled_bytes;        /* sizes of the spans freed since the last */
static _Atomic uint32_t density_q16 = 65536;   /* resident / size, x 2^16 */

/* ---- far blocks: a hash set of user pointers (large_lock) ------------------- */
/* Open addressing with linear probing; FAR_GONE marks an erased slot. The
 * table is mmap'd and doubles at half full, so a probe sequence stays short
 * and an insert fails only when the mapping of a bigger table fails. */
#define FAR_EMPTY ((uintptr_t)0)
#define FAR_GONE ((uintptr_t)1)
#define FAR_MIN_CAP 512u

static uintptr_t *far_tab;
static size_t far_cap, far_fill;   /* slots; used slots (live or gone) */

static size_t far_hash(uintptr_t p, size_t cap) {
  return (size_t)(((uint64_t)p * 0x9E3779B97F4A7C15ull) >> 32) & (cap - 1);
}

static size_t far_find(uintptr_t p) {   /* slot of p, or far_cap */
  if (!far_cap) return 0;
  for (size_t i = far_hash(p, far_cap);; i = (i + 1) & (far_cap - 1)) {
    if (far_tab[i] == p) return i;
    if (far_tab[i] == FAR_EMPTY) return far_cap;
  }
}

static int far_insert(uintptr_t p) {
  if (2 * (far_fill + 1) > far_cap) {   /* rehash into a table twice as big */
    size_t cap = far_cap ? 2 * far_cap : FAR_MIN_CAP;
    uintptr_t *tab = hm_os_map(cap * sizeof *tab);
    if (!tab) return -1;
    size_t fill = 0;
    for (size_t i = 0; i < far_cap; i++) {
      if (far_tab[i] <= FAR_GONE) continue;
      size_t j = far_hash(far_tab[i], cap);
      while (tab[j] != FAR_EMPTY) j = (j + 1) & (cap - 1);
      tab[j] = far_tab[i];
      fill++;
    }
    if (far_tab) hm_os_unmap(far_tab, far_cap * sizeof *far_tab);
    far_tab = tab;
    far_cap = cap;
    far_fill = fill;
  }
  size_t i = far_hash(p, far_cap);
  while (far_tab[i] > FAR_GONE) i = (i + 1) & (far_cap - 1);
  if (far_tab[i] == FAR_EMPTY) far_fill++;
  far_tab[i] = p;
  return 0;
}

static int far_erase(uintptr_t p) {   /* 1 if p was in the set */
  size_t i = far_find(p);
  if (i == far_cap) return 0;
  far_tab[i] = FAR_GONE;
  return 1;
}

unsigned hm_large_far_kind(const void *p) {
  if (!p || hm_region_in_map((uintptr_t)p)) return HM_REGION_NONE;
  hm_lock(&large_lock);
  int found = far_find((uintptr_t)p) != far_cap;
  hm_unlock(&large_lock);
  return found ? HM_REGION_LARGE : HM_REGION_NONE;
}

static int is_far(const hm_large_hdr *h) {
  return !hm_region_in_map((uintptr_t)h + h->user_off);
}

/* Record a far block (before it may be freed): -1 if the set cannot grow. */
static int far_add(uintptr_t user) {
  hm_lock(&large_lock);
  int r = far_insert(user);
  hm_unlock(&large_lock);
  return r;
}

static void far_remove(uintptr_t user) {
  hm_lock(&large_lock);
  int found = far_erase(user);
  hm_unlock(&large_lock);
  if (!found) hm_fatal("free()", "invalid pointer (a large block freed twice?)", (void *)user);
}

/* Huge pages for a new span when the learner has seen the program touch its
 * large blocks (hm_large_density_take) and pay for their faults; during its
 * trial (HM_HUGE_TRIAL), one span in HM_HUGE_TRIAL_EVERY. */
static int want_huge_span(void) {
  return (HM_PARAM(huge_pages) & HM_HUGE_SPANS) && hm_huge_trial_pick();
}

/* A fresh mapping: in the window if it has room, else anywhere. Out of
 * memory, every cached mapping is given back and both are tried once more.
 * No advice: span_grow moves a span's pages over it (they keep theirs).
 * Called without large_lock (the release takes it). */
static void *map_plain(size_t size, size_t align, size_t phase) {
  for (int attempt = 0;; attempt++) {
    void *p = hm_os_map_window(size, align, phase);
    if (!p) p = hm_os_map_aligned(size, align, phase);
    if (p || attempt || !hm_release_cached_mappings()) return p;
  }
}

/* Fresh bytes of a span for the learner (hm_os_counts), by its advice. */
static void count_fresh(size_t bytes, size_t huge) {
  if (huge) HM_OS_COUNT(fresh_span_huge_bytes, bytes);
  else HM_OS_COUNT(fresh_span_bytes, bytes);
}

/* A new span: a fresh mapping, with huge-page advice if the learner asks
 * for it (*huge: 1 if given); all of it counted fresh. */
static void *map_span(size_t size, size_t align, size_t phase, size_t *huge) {
  void *p = map_plain(size, align, phase);
  *huge = 0;
  if (!p) return NULL;
  if (size >= HM_REGION_SIZE && want_huge_span() && hm_os_hugepage(p, size, 1) == 0) *huge = 1;
  count_fresh(size, *huge);
  return p;
}

static size_t page_up(size_t n) { return (n + 4095) & ~(size_t)4095; }

/* A span of `size` bytes (below 2 MiB) in a mapping of its whole 2 MiB
 * chunk. The chunks of such spans are adjacent where the window hands them
 * out in turn, and the kernel merges adjacent mappings of the same kind
 * into one; with a gap after each span, each was a mapping of its own, and
 * the 65,500th live large block failed with ENOMEM at the kernel's limit
 * (vm.max_map_count, 65530), where glibc and the peers serve 70,000 blocks
 * of 300 KiB (docs/analysis/heap-scaling.md). The rest of the chunk is
 * address space until the span grows into it (span_grow: no system call).
 * No huge-page advice: the span is what is used; where huge pages are
 * "always", the chunk is advised against them, or its first touch could
 * commit 2 MiB for a span of 300 KiB (such chunks still merge with each
 * other: one advice, one kind of mapping). */
static void *map_chunk(size_t size, size_t *huge, int *reused) {
  /* First an empty cached segment: the same 2 MiB, no system call but the
   * decommit of what lies past the span, and the memory small and medium
   * blocks gave back serves large ones too (hm_large_take_chunk is the
   * other direction). Its contents are not zero. */
  int seg_huge = 0;
  void *p = hm_seg_cache_take_chunk(size, &seg_huge);
  *reused = p != NULL;
  if (p) {
    *huge = (size_t)seg_huge;
    return p;
  }
  p = map_plain(HM_REGION_SIZE, HM_REGION_SIZE, 0);
  *huge = 0;
  if (p && hm_os_thp_always()) (void)hm_os_hugepage(p, HM_REGION_SIZE, 0);
  if (p) count_fresh(size, 0);
  return p;
}

/* What unmapping span h takes: its map_size, or the whole chunk it fills. */
static size_t span_extent(const hm_large_hdr *h) {
  return h->mapped > h->map_size ? h->mapped : h->map_size;
}

/* Span h, `size` bytes now, keeps its first `keep`: the pages of the rest
 * go back to the OS. Within the 2 MiB chunk map_chunk made the mapping
 * stays whole -- decommitted, the rest becomes chunk space the span may
 * grow into again -- so that no cut splits a run of merged chunks (a split
 * is a mapping more: 70,000 blocks of 1 MiB shrunk to 300 KiB met the
 * kernel's limit). A longer span is unmapped from `keep` on, the rest of
 * its chunk with it (a hole would be grown over later). */
static void span_cut(hm_large_hdr *h, size_t size, size_t keep) {
  size_t end = h->mapped > size ? h->mapped : size;
  if (h->mapped == HM_REGION_SIZE && end == HM_REGION_SIZE) {   /* map_chunk's */
    hm_os_decommit((uint8_t *)h + keep, size - keep);
    return;
  }
  hm_os_unmap((uint8_t *)h + keep, end - keep);
  h->mapped = 0;
}

/* The header alone on its page (secure mode relies on it: no user write
 * reaches the header). */
static size_t user_off_for(size_t align) {
  if (align <= LARGE_DEFAULT_OFF) return LARGE_DEFAULT_OFF;
  if (align < HM_REGION_SIZE) return align;
  return HM_REGION_SIZE;
}

/* Secure mode: protect the pages between the header page and the user data
 * (if any) and the last GUARD_SIZE bytes of the span [h, h + total). -1 when
 * the kernel cannot split the mapping (out of map entries). */
static int guard_set(hm_large_hdr *h, size_t total, size_t off) {
  if (off > PAGE_SIZE_ && hm_os_protect((uint8_t *)h + PAGE_SIZE_, off - PAGE_SIZE_, 0) != 0)
    return -1;
  return hm_os_protect((uint8_t *)h + total - GUARD_SIZE, GUARD_SIZE, 0);
}

/* The end guard of [h, h + total) on (1) or off (0): off while mremap grows
 * the user part, so that it is one mapping again (the guard page was never
 * touched, or was user data of the same mapping: the kernel merges it). */
static int guard_end(hm_large_hdr *h, size_t total, int on) {
  return hm_os_protect((uint8_t *)h + total - GUARD_SIZE, GUARD_SIZE, !on);
}

/* Size class of a span: the largest class whose lower bound it reaches
 * (class c starts at (4 + c % 4) << (16 + c / 4) bytes); smaller spans (a
 * shrunk block) are in class 0 too, so a span taken from class 0 is
 * checked against the request. */
static unsigned span_class(size_t size) {
  if (size < ((size_t)1 << 18)) return 0;
  unsigned e = 63u - (unsigned)__builtin_clzll(size);   /* 2^e <= size */
  unsigned c = 4 * (e - 18) + (unsigned)((size >> (e - 2)) & 3);
  return c < CACHE_CLASSES ? c : CACHE_CLASSES - 1;
}
static size_t class_min(unsigned c) { return (size_t)(4 + c % 4) << (16 + c / 4); }

static void cache_link(int32_t i) {
  cached_span *c = &cache[i];
  unsigned k = span_class(c->size);
  c->prev = -1;
  c->next = (class_mask >> k) & 1 ? class_head[k] : -1;
  if (c->next >= 0) cache[c->next].prev = i;
  class_head[k] = i;
  class_mask |= 1ull << k;
}

static void cache_unlink_class(int32_t i) {
  cached_span *c = &cache[i];
  unsigned k = span_class(c->size);
  if (c->prev >= 0) cache[c->prev].next = c->next;
  else class_head[k] = c->next;
  if (c->next >= 0) cache[c->next].prev = c->prev;
  if (class_head[k] < 0) class_mask &= ~(1ull << k);
}

/* Span h (size bytes, `resident` counted) joins the cache; a free slot must
 * exist (cache_n < CACHE_SLOTS). */
static void cache_insert(hm_large_hdr *h, size_t size, size_t resident, uint64_t now) {
  int32_t i;
  if (free_slot >= 0) {
    i = free_slot;
    free_slot = cache[i].next;
  } else {
    i = (int32_t)slots_made++;
  }
  h->map_size = size;
  cache[i] = (cached_span){h, size, resident, now, -1, -1, age_newest, -1};
  if (age_newest >= 0) cache[age_newest].newer = i;
  else age_oldest = i;
  age_newest = i;
  cache_link(i);
  cache_n++;
  cache_bytes += size;
  /* read without the lock by hm_large_free's estimate: a relaxed store */
  __atomic_store_n(&cache_resident, cache_resident + resident, __ATOMIC_RELAXED);
}

/* Off both lists, its slot freed. */
static void cache_remove(int32_t i) {
  cached_span *c = &cache[i];
  cache_unlink_class(i);
  if (c->older >= 0) cache[c->older].newer = c->newer;
  else age_oldest = c->newer;
  if (c->newer >= 0) cache[c->newer].older = c->older;
  else age_newest = c->older;
  cache_n--;
  cache_bytes -= c->size;
  __atomic_store_n(&cache_resident, cache_resident - c->resident, __ATOMIC_RELAXED);
  c->next = free_slot;
  free_slot = i;
}

/* Spans on their way out are chained through their headers (`asked`
 * holds the next one, map_size the span's size) and unmapped after the
 * lock is dropped: no array on the stack, however many go at once. */
static hm_large_hdr *chain_push(hm_large_hdr *chain, int32_t i) {
  hm_large_hdr *h = cache[i].hdr;
  h->map_size = cache[i].size;
  h->asked = (size_t)(uintptr_t)chain;
  cache_remove(i);
  return h;
}

static void unmap_chain(hm_large_hdr *h) {
  while (h) {
    hm_large_hdr *next = (hm_large_hdr *)(uintptr_t)h->asked;
    hm_os_unmap(h, span_extent(h));
    h = next;
  }
}

/* ---- incoming: spans freed while another thread held the lock ------------- */
/* A free that finds large_lock taken does not wait for it: it pushes the
 * span here (one CAS) and returns, and whoever takes the lock next admits
 * the waiting spans into the cache (incoming_admit) before it looks at the
 * cache -- a large malloc, a locked free, the background thread's purge, a
 * statistics read. Frees are the side that can always wait: one thread
 * freeing what others allocated (bench_many_to_one) held the benchmark's
 * own lock while it queued on large_lock behind the producers' mallocs.
 * Bounded: at most INCOMING_MAX spans and an eighth of the memory bound
 * wait; past that a free takes the lock. Pushed by any thread, emptied
 * whole by exchange (never popped one by one): no ABA. Linked through
 * `asked` (as a chain), sized by map_size (as every span) and `resident`. */
#define INCOMING_MAX 64u
static _Atomic(hm_large_hdr *) incoming;
static _Atomic uint32_t incoming_n;
static _Atomic size_t incoming_resident;

static int incoming_push(hm_large_hdr *h, size_t resident) {
  uint32_t n = atomic_fetch_add_explicit(&incoming_n, 1, memory_order_relaxed);
  size_t r = atomic_fetch_add_explicit(&incoming_resident, resident, memory_order_relaxed);
  if (n >= INCOMING_MAX || r + resident > HM_PARAM(large_cache_bytes) / 8) {
    atomic_fetch_sub_explicit(&incoming_n, 1, memory_order_relaxed);
    atomic_fetch_sub_explicit(&incoming_resident, resident, memory_order_relaxed);
    return 0;
  }
  h->resident = resident;
  hm_large_hdr *head = atomic_load_explicit(&incoming, memory_order_relaxed);
  do {
    h->asked = (size_t)(uintptr_t)head;
  } while (!atomic_compare_exchange_weak_explicit(&incoming, &head, h, memory_order_release,
                                                  memory_order_relaxed));
  return 1;
}

/* The address space cached spans may hold, in multiples of the memory
 * bound. Barely touched spans cost little memory, but where address space
 * is tight (hm_os_address_space_tight: an RLIMIT_AS, or strict overcommit,
 * which charges every writable mapping to the whole system's commit limit)
 * their mappings count; elsewhere they cost a page table page per 2 MiB
 * touched and a kernel VMA each. bench_many_to_one 4 20000 keeps 1.0-1.4
 * GiB of spans, about 8 MiB of them resident: with 4x the default 256 MiB
 * bound its spans were unmapped and mapped afresh by the thousand
 * (docs/analysis/many-to-one.md, eighth session). */
#define CACHE_SPACE_FACTOR 16u
#define CACHE_SPACE_FACTOR_TIGHT 4u
/* Whether a span of `size` bytes, `resident` of them counted, fits the
 * cache's bounds: its count (the option, at most the table), its memory
 * and its address space. Lock held. */
static int cache_has_room(size_t size, size_t resident) {
  size_t bound = HM_PARAM(large_cache_bytes);
  size_t space = (hm_os_address_space_tight() ? CACHE_SPACE_FACTOR_TIGHT : CACHE_SPACE_FACTOR) * bound;
  return cache_n < CACHE_SLOTS && cache_n < HM_PARAM(large_cache_count) &&
         cache_resident + resident <= bound && cache_bytes + size <= space;
}

/* Freed span h (`resident` of its map_size counted) joins the cache, the
 * oldest spans making room; they, and h itself if it still does not fit (a
 * count bound of 0), are chained onto `out` for unmapping. Lock held. */
static hm_large_hdr *cache_admit(hm_large_hdr *h, size_t resident, uint64_t now, hm_large_hdr *out) {
  size_t size = h->map_size;
  while (cache_n > 0 && !cache_has_room(size, resident)) {
    BUMP(count_drops);   /* the oldest goes: the cache is too small */
    out = chain_push(out, age_oldest);
  }
  if (cache_has_room(size, resident)) {
    cache_insert(h, size, resident, now);
    return out;
  }
  BUMP(count_drops);
  h->asked = (size_t)(uintptr_t)out;
  return h;
}

/* The waiting spans join the cache, as each would have in its free. Lock
 * held; what leaves is chained onto `out`. */
static hm_large_hdr *incoming_admit(hm_large_hdr *out) {
  if (!atomic_load_explicit(&incoming, memory_order_relaxed)) return out;
  hm_large_hdr *h = atomic_exchange_explicit(&incoming, NULL, memory_order_acquire);
  uint64_t now = hm_os_now_ms();
  while (h) {
    hm_large_hdr *next = (hm_large_hdr *)(uintptr_t)h->asked;
    atomic_fetch_sub_explicit(&incoming_n, 1, memory_order_relaxed);
    atomic_fetch_sub_explicit(&incoming_resident, h->resident, memory_order_relaxed);
    out = cache_admit(h, h->resident, now, out);
    h = next;
  }
  return out;
}

#define CLASS_WALK 8   /* spans looked at in one class (for one that fits, or an unguarded one) */

/* Any cached span can serve: one of the smallest class that fits (the
 * newest there), else the largest smaller one (grown with mremap). Either
 * way the pages it has stay: a fresh mapping would fault in every page the
 * program touches. `plain_fit`: only a span that fits and has no guard
 * pages (realloc's growth). Lock held. */
static hm_large_hdr *cache_take(size_t size, size_t *got, int plain_fit) {
  unsigned floor_c = span_class(size);
  unsigned first = class_min(floor_c) >= size ? floor_c : floor_c + 1;
  int32_t pick = -1;
  /* The request's own class first: its spans are at most a quarter
   * longer, and some may fit (the smallest of the first few that do). */
  if (first != floor_c && ((class_mask >> floor_c) & 1)) {
    int32_t i = class_head[floor_c];
    for (unsigned n = 0; i >= 0 && n < CLASS_WALK; i = cache[i].next, n++)
      if (cache[i].size >= size && !(plain_fit && cache[i].hdr->guard) &&
          (pick < 0 || cache[i].size < cache[pick].size))
        pick = i;
  }
  /* Classes from `first` up hold spans of at least `size` (class 0 may
   * hold shorter ones: checked). */
  uint64_t m = first < CACHE_CLASSES ? class_mask & (~0ull << first) : 0;
  while (m && pick < 0) {
    unsigned k = (unsigned)__builtin_ctzll(m);
    m &= m - 1;
    int32_t i = class_head[k];
    for (unsigned n = 0; i >= 0 && n < CLASS_WALK; i = cache[i].next, n++) {
      if (cache[i].size < size || (plain_fit && cache[i].hdr->guard)) continue;
      pick = i;
      break;
    }
  }
  if (pick < 0 && !plain_fit) {
    /* the largest class below: its newest span (grown by the caller) */
    uint64_t below = class_mask & ((first >= 64 ? ~0ull : (1ull << first) - 1));
    if (below) pick = class_head[63 - __builtin_clzll(below)];
  }
  if (pick < 0) return NULL;
  hm_large_hdr *h = cache[pick].hdr;
  *got = cache[pick].size;
  cache_remove(pick);
  return h;
}

/* Chain the spans older than the purge delay (all with force), oldest
 * first: O(1) when none is due. Lock held. */
static hm_large_hdr *cache_expire(int force, hm_large_hdr *chain) {
  uint64_t now = hm_os_now_ms();
  while (age_oldest >= 0 &&
         (force || now - cache[age_oldest].since_ms >= HM_PARAM(purge_delay_ms)))
    chain = chain_push(chain, age_oldest);
  return chain;
}

/* Grow the mapping at h from old to need bytes: in place when the next
 * addresses are free, else by moving its pages (no copy) to a fresh 2 MiB
 * aligned reservation. A far destination is recorded (user offset `off`)
 * before the move; the caller marks an in-map one and forgets the old
 * location if h moved. Returns the new header or NULL (the old mapping is
 * intact).
 *   A guarded span (secure mode; its end guard made readable first) is
 * several kernel mappings -- header page, guarded gap, user data -- which
 * mremap does not take as one, and which do not merge again once their pages
 * were touched apart (each then has its own anon_vma). So only the user part
 * [h + off, h + old) is resized or moved; a moved header is copied into the
 * fresh reservation's first page, and the old header page and gap unmapped.
 * The caller protects the new gap and end. */
static hm_large_hdr *span_grow(hm_large_hdr *h, size_t old, size_t need, size_t off,
                               int guarded) {
  size_t from = guarded ? off : 0;   /* where the part that mremap takes starts */
  size_t huge = h->huge;   /* the grown part has the span's advice, moved or not */
  if (h->mapped > old) {
    if (need <= h->mapped) return h;   /* the rest of its chunk is mapped already */
    old = h->mapped;                   /* mremap takes the whole mapping */
  }
  void *r = mremap((uint8_t *)h + from, old - from, need - from, 0);
  if (r != MAP_FAILED) {
    h->mapped = 0;
    count_fresh(need - old, huge);
    return h;
  }
  uint8_t *dst = map_plain(need, HM_REGION_SIZE, 0);
  if (!dst) return NULL;
  uintptr_t user = (uintptr_t)dst + off;
  if (!hm_region_in_map(user) && far_add(user) != 0) {
    hm_os_unmap(dst, need);
    return NULL;
  }
  r = mremap((uint8_t *)h + from, old - from, need - from, MREMAP_MAYMOVE | MREMAP_FIXED,
             dst + from);
  if (r == MAP_FAILED) {
    if (!hm_region_in_map(user)) far_remove(user);
    hm_os_unmap(dst, need);
    return NULL;
  }
  if (from) {
    memcpy(dst, h, sizeof *h);
    hm_os_unmap(h, from);
  }
  ((hm_large_hdr *)dst)->mapped = 0;
  count_fresh(need - old, huge);
  return (hm_large_hdr *)dst;
}

/* A cached span much longer than the block that takes it -- at least twice
 * `need` plus `slack` (page multiples) -- gives the whole 2 MiB chunks past
 * the block's last chunk back to the cache as a span of their own (a header
 * at a 2 MiB boundary; their pages stay resident for the next block of any
 * size); what remains past need + slack, if anything (only when slack is
 * under 2 MiB), is unmapped. Returns the size kept. Without this a span
 * keeps its length as it is recycled: a 1 MiB block took an 8 MiB span
 * whole, and spans drifted towards the largest size ever asked, their pages
 * resident (bench_large: 245 MB of spans for about 132 MB requested, peak
 * RSS 1.30x mimalloc's). Cutting closer to the block costs page faults: the
 * next longer block faults in again what was cut (1 MiB of slack halved
 * bench_large's throughput with 2 threads). What this costs and saves:
 * docs/analysis/realloc-growth.md. A guarded span (secure mode) is cut
 * the same way: the tail it gives up keeps the old end guard, and its kept
 * part gets a new one at its end (one mprotect). Guarded spans reused whole
 * drifted as plain ones did (bench_large in secure mode: 13 % more page
 * faults and peak RSS than the default). Lock not held. Returns the size
 * kept, or 0 when the new guard could not be set (the kept part is then
 * unmapped). */
#define SLACK_MAX ((size_t)4 << 20)

static size_t span_fit(hm_large_hdr *h, size_t got, size_t need, size_t slack) {
  if (got < 2 * need + slack) return got;
  size_t whole = got;
  size_t end = (need + HM_REGION_MASK) & ~(size_t)HM_REGION_MASK;   /* the block's last chunk */
  if (got >= end + HM_REGION_SIZE) {
    hm_large_hdr *t = (hm_large_hdr *)((uint8_t *)h + end);
    size_t tsize = got - end;
    t->magic = 0;
    t->map_size = tsize;
    t->user_off = LARGE_DEFAULT_OFF;
    t->guard = h->guard;   /* the old end guard is its end now */
    t->asked = 0;
    t->huge = h->huge;   /* one mapping, one advice */
    t->mapped = 0;
    hm_lock(&large_lock);
    int cached = cache_has_room(tsize, tsize);
    if (cached) cache_insert(t, tsize, tsize, hm_os_now_ms());
    hm_unlock(&large_lock);
    if (!cached) hm_os_unmap(t, tsize);
    got = end;
  }
  if (got > need + slack) {
    span_cut(h, got, need + slack);
    got = need + slack;
  }
  if (h->guard && got != whole && guard_end(h, got, 1) != 0) {
    hm_os_unmap(h, got);
    return 0;
  }
  return got;
}

/* A span taken from the cache (*size bytes) for a new block of `need`
 * bytes, user data at `off`, guard `g`: cut if much too long (span_fit),
 * grown if short. Its old shape is still in its header (free clears only
 * the magic). A guarded span serves only a guarded block with the same user
 * offset (its end guard moves when it is cut or grown); moving guards
 * between parts that may not merge is not worth it for the rare other case,
 * which gets a fresh mapping. Returns the header (perhaps moved; *size
 * updated) or NULL, the span then unmapped. */
static hm_large_hdr *span_reuse(hm_large_hdr *h, size_t *size, size_t need, size_t off, size_t g) {
  size_t got = *size;
  if (h->guard != g || (g && h->user_off != off)) goto fail;
  if (got >= need) {
    *size = span_fit(h, got, need, SLACK_MAX);
    return *size ? h : NULL;
  }
  if (g && guard_end(h, got, 0) != 0) goto fail;
  hm_large_hdr *grown = span_grow(h, got, need, off, g != 0);
  if (!grown) goto fail;
  if (g && (grown != h ? guard_set(grown, need, off) : guard_end(grown, need, 1)) != 0) {
    /* span_grow recorded a far destination (cached spans are never far) */
    if (!hm_region_in_map((uintptr_t)grown + off)) far_remove((uintptr_t)grown + off);
    hm_os_unmap(grown, need);
    return NULL;
  }
  *size = need;
  return grown;
fail:
  h->map_size = got;
  hm_os_unmap(h, span_extent(h));
  return NULL;
}

/* In-map blocks only (far ones are in the far set). */
static void region_mark(hm_large_hdr *h, int live) {
  if (h->user_off == HM_REGION_SIZE)
    hm_region_set((uintptr_t)h + HM_REGION_SIZE, live ? HM_REGION_LARGE_HI : HM_REGION_NONE);
  else
    hm_region_set((uintptr_t)h, live ? HM_REGION_LARGE : HM_REGION_NONE);
}

/* Span h (map_size bytes) becomes a live block of `size` bytes at h + off. */
static void *span_attach(hm_large_hdr *h, size_t map_size, size_t off, size_t g, size_t size) {
  h->magic = HM_LARGE_MAGIC;
  h->map_size = map_size;
  h->user_off = off;
  h->guard = g;
  h->asked = size;
  LIVE_ADD(live_count, 1);
  LIVE_ADD(live_bytes, map_size);
  if (!is_far(h)) region_mark(h, 1);   /* a far block was recorded when mapped */
  return (uint8_t *)h + off;
}

void *hm_large_alloc(size_t size, size_t align, int zero) {
  hm_process_init();   /* a process may start with a large block: options first */
  HM_DBG(hm_tls_heap, early[HAKMEM_EARLY_ALLOC_LARGE], 1);
  if (align < 16) align = 16;
  size_t g = hm_param.secure ? GUARD_SIZE : 0;
  size_t off = user_off_for(align);
  if (size > PTRDIFF_MAX - off - align - HM_REGION_SIZE) {
    errno = ENOMEM;
    return NULL;
  }
  size_t need = page_up(off + size) + g;
  hm_large_hdr *h = NULL;
  size_t map_size = need;
  int fresh = 0;
  if (align <= HM_REGION_SIZE) {
    hm_lock(&large_lock);
    hm_large_hdr *expired = incoming_admit(NULL);
    h = cache_take(need, &map_size, 0);
    if (h) BUMP(count_hits);
    else BUMP(count_misses);
    expired = cache_expire(0, expired);
    hm_unlock(&large_lock);
    unmap_chain(expired);
    if (h) h = span_reuse(h, &map_size, need, off, g);
  }
  if (!h) {
    map_size = need;
    /* The header chunk is 2 MiB aligned; for alignments above 2 MiB the
     * user pointer h + 2 MiB must be aligned instead. A plain span shorter
     * than its chunk maps the whole chunk (map_chunk). */
    size_t huge, mapped = map_size;
    int reused = 0;
    if (align > HM_REGION_SIZE)
      h = map_span(map_size, align, HM_REGION_SIZE, &huge);
    else if (!g && map_size < HM_REGION_SIZE && !hm_os_address_space_tight())
      h = map_chunk(map_size, &huge, &reused), mapped = HM_REGION_SIZE;
    else
      h = map_span(map_size, HM_REGION_SIZE, 0, &huge);
    if (h) {
      h->huge = huge;
      h->mapped = mapped > map_size ? mapped : 0;
    }
    if (h && g && guard_set(h, map_size, off) != 0) {
      hm_os_unmap(h, map_size);
      h = NULL;
    }
    if (!h || (!hm_region_in_map((uintptr_t)h + off) && far_add((uintptr_t)h + off) != 0)) {
      if (h) hm_os_unmap(h, mapped);
      errno = ENOMEM;
      return NULL;
    }
    fresh = !reused;
    if (!reused) hm_bg_note_mapped(map_size);
  }
  void *p = span_attach(h, map_size, off, g, size);
  if (zero && !fresh) memset(p, 0, size);
  hm_bg_check_attention();
  return p;
}

hm_large_hdr *hm_large_hdr_of(const void *p, const char *fn) {
  uintptr_t chunk = (uintptr_t)p & ~(uintptr_t)HM_REGION_MASK;
  if (hm_region_in_map((uintptr_t)p)) {
    if (hm_region_kind_at(chunk) == HM_REGION_LARGE_HI) chunk -= HM_REGION_SIZE;
  } else {
    if (hm_large_far_kind(p) != HM_REGION_LARGE)
      hm_fatal(fn, "invalid pointer", p);
    if (chunk == (uintptr_t)p) chunk -= HM_REGION_SIZE;   /* user_off == 2 MiB */
  }
  hm_large_hdr *h = (hm_large_hdr *)chunk;
  if (h->magic != HM_LARGE_MAGIC || (uint8_t *)h + h->user_off != (const uint8_t *)p)
    hm_fatal(fn, "invalid pointer", p);
  return h;
}

size_t hm_large_usable(const void *p, const char *fn) {
  hm_large_hdr *h = hm_large_hdr_of(p, fn);
  return h->map_size - h->guard - h->user_off;
}

/* Density samples for the learner (huge pages for spans, ace.c): the
 * resident share of a few freed spans -- a freed block's resident pages are
 * those the program touched, so this says whether it touches the large
 * blocks it allocates (near 1) or uses them sparsely (a big calloc'd table:
 * near 0). Taken in free while the learner asks (one relaxed load
 * otherwise), at most `n` frees per request: each costs mincore calls, one
 * per 2 MiB. */
static _Atomic int density_wanted;
static _Atomic uint64_t density_bytes, density_resident;

static void density_sample(hm_large_hdr *h, size_t size) {
  if (atomic_fetch_sub_explicit(&density_wanted, 1, memory_order_relaxed) <= 0) return;
  atomic_fetch_add_explicit(&density_resident, hm_os_resident(h, size), memory_order_relaxed);
  atomic_fetch_add_explicit(&density_bytes, size, memory_order_relaxed);
}

double hm_large_density_take(unsigned next_samples) {
  uint64_t bytes = atomic_exchange_explicit(&density_bytes, 0, memory_order_relaxed);
  uint64_t resident = atomic_exchange_explicit(&density_resident, 0, memory_order_relaxed);
  atomic_store_explicit(&density_wanted, (int)next_samples, memory_order_relaxed);
  return bytes ? (double)resident / (double)bytes : -1.0;
}

/* A freed span's resident bytes, for the cache's memory bound: every span
 * is counted as its size scaled by the density that mincore samples found.
 * The density starts at 1; a sample that finds more raises it at once, one
 * that finds less lowers it by an eighth of the difference -- so spans are
 * assumed sparse only after a run of samples says so.
 *   A sample is taken once the spans freed since the last one add up to a
 * sixteenth of the bound (their sizes): a program that starts filling the
 * blocks it frees is counted whole again before that much more of them is
 * counted sparse (tests/large_burst: a slowly rising average let 300 MiB of
 * dense spans stay in a 256 MiB bound). Each sample is a system call, in
 * bench_many_to_one paid by the one thread that frees every block while
 * the producers wait for it; one free in eight took one before, one in
 * about fourteen there now. A sample asks mincore about SAMPLE_PAGES of
 * the span, at an offset that wanders from sample to sample: over whole
 * spans its page-table walk was 4 % of that benchmark's time. Relaxed
 * atomics: concurrent freers may lose an update, which only delays it. */
static size_t resident_estimate(hm_large_hdr *h, size_t size) {
  uint32_t d = atomic_load_explicit(&density_q16, memory_order_relaxed);
  size_t since = atomic_fetch_add_explicit(&unsampled_bytes, size, memory_order_relaxed) + size;
  if (since >= HM_PARAM(large_cache_bytes) / 16 &&
      atomic_exchange_explicit(&unsampled_bytes, 0, memory_order_relaxed) != 0) {
    uint32_t seq = atomic_fetch_add_explicit(&resident_seq, 1, memory_order_relaxed);
    size_t pages = size / PAGE_SIZE_, win = pages < SAMPLE_PAGES ? pages : SAMPLE_PAGES;
    size_t first = (size_t)(seq * 2654435761u) % (pages - win + 1);
    size_t r = hm_os_resident((uint8_t *)h + first * PAGE_SIZE_, win * PAGE_SIZE_);
    uint32_t now = (uint32_t)((double)r / (double)(win * PAGE_SIZE_) * 65536.0);
    atomic_store_explicit(&density_q16, now > d ? now : (7 * d + now) / 8, memory_order_relaxed);
    d = now;
  }
  size_t est = (size_t)((double)size * (double)d / 65536.0);
  return est > PAGE_SIZE_ ? est : PAGE_SIZE_;
}

void hm_large_free(void *p, const char *fn) {
  hm_large_hdr *h = hm_large_hdr_of(p, fn);
  size_t size = h->map_size;
  if (atomic_load_explicit(&density_wanted, memory_order_relaxed) > 0 && size >= HM_REGION_SIZE)
    density_sample(h, size);
  int far = is_far(h);
  if (far) far_remove((uintptr_t)p);   /* a second free is now detected */
  else region_mark(h, 0);
  h->magic = 0;
  int keep = !far && h->user_off != HM_REGION_SIZE && size <= HM_PARAM(large_cache_bytes) / 4;
  /* What the memory bound counts: the span's resident bytes, estimated
   * (before the lock): a program that touches a word of each big block it
   * hands on (a producer filling headers, a pool of buffers) frees spans
   * that cost address space but almost no memory, and a burst of them
   * overflowed a bound on their sizes into munmap/mmap pairs. Every kept
   * span is estimated, not only those that arrive near the bound: spans
   * counted whole while there was room kept the cache at its bound with a
   * tenth of that resident (bench_many_to_one: 547 spans counted as 255 MiB). */
  size_t resident = keep ? resident_estimate(h, size) : size;
  LIVE_SUB(live_count, 1);
  LIVE_SUB(live_bytes, size);
  if (keep && pthread_mutex_trylock(&large_lock) != 0) {
    if (incoming_push(h, resident)) {
      hm_bg_check_attention();
      return;
    }
    hm_lock(&large_lock);
  } else if (!keep) {
    hm_lock(&large_lock);
  }
  hm_large_hdr *out = cache_expire(0, incoming_admit(NULL));
  if (keep) out = cache_admit(h, resident, hm_os_now_ms(), out);   /* h on out if no room */
  else if (!far) BUMP(count_drops);
  hm_unlock(&large_lock);
  unmap_chain(out);
  if (!keep) hm_os_unmap(h, span_extent(h));
  hm_bg_check_attention();   /* a sleeping background thread: a span waits for its delay */
}

/* realloc's growth, before mremap: a cached span that holds `need` bytes
 * (user offset included) takes the block, which is copied there, and the
 * old span goes to the cache. The cached span's pages are resident, whereas
 * growing in place faults in fresh ones; and memory the cache holds is used
 * before more is touched, as everywhere else in hakmem. On this VM a page
 * fault costs 12-24 us, so copying a 1 MiB block (tens of microseconds)
 * costs less than the faults of its growth by a quarter (64 pages, about a
 * millisecond). On bare metal, where a fault costs a fraction of a
 * microsecond, the copy can cost a few times the faults it saves, but the
 * footprint does not grow while the cache holds pages; mimalloc, jemalloc
 * and tcmalloc always copy. Not above GROW_COPY_MAX: a bigger block moves
 * with mremap (page-table work, no copy) rather than making
 * one realloc copy tens of megabytes. Plain blocks only: a guarded span
 * (secure mode) or a 2 MiB aligned one keeps its own path. NULL: no cached
 * span fits. */
#define GROW_COPY_MAX ((size_t)16 << 20)

static void *grow_into_cached(hm_large_hdr *h, size_t size, size_t need) {
  size_t off = h->user_off;
  if (h->guard || off >= HM_REGION_SIZE || h->map_size > GROW_COPY_MAX) return NULL;
  size_t got;
  hm_lock(&large_lock);
  hm_large_hdr *out = incoming_admit(NULL);
  hm_large_hdr *n = cache_take(need, &got, 1);
  if (n) BUMP(count_hits);
  hm_unlock(&large_lock);
  unmap_chain(out);
  if (!n) return NULL;
  void *p = (uint8_t *)h + off;
  size_t usable = h->map_size - off;   /* all of it may hold data: below `size` (growth) */
  got = span_fit(n, got, need, need);   /* room to double: a growing block grows on */
  void *q = span_attach(n, got, off, 0, size);
  memcpy(q, p, usable);
  hm_large_free(p, "realloc()");
  return q;
}

void *hm_large_realloc(void *p, size_t size) {
  hm_large_hdr *h = hm_large_hdr_of(p, "realloc()");
  size_t off = h->user_off, g = h->guard;
  if (size > PTRDIFF_MAX - off - HM_REGION_SIZE) {
    errno = ENOMEM;
    return NULL;
  }
  /* need and old: where the user data ends (the guard page follows) */
  size_t need = page_up(off + size);
  size_t old = h->map_size - g;
  size_t asked = h->asked;
  h->asked = size;
  /* Grow by at least a quarter: a buffer that grows step by step costs
   * O(log n) mremaps, not one per page. Untouched pages cost no memory. */
  if (need > old && need < old + old / 4 && old + old / 4 <= PTRDIFF_MAX - HM_REGION_SIZE)
    need = page_up(old + old / 4);
  if (need <= old) {
    /* Shrink: give the tail back, but only when the block shrinks to less
     * than half of what it was asked to be. A span taken from the cache may
     * be longer than its first request, its pages resident: a buffer that
     * grows into them costs no page fault, whereas cutting them at the first
     * realloc (as the old test against the mapping's size did) threw them
     * away and faulted in fresh ones as it grew (bench_realloc_growth: 24300
     * faults against mimalloc's 8700). */
    if (need < page_up(off + asked) / 2) {
      /* The new guard first: if the mapping cannot be split, keep the size. */
      if (g && hm_os_protect((uint8_t *)h + need, g, 0) != 0) return p;
      span_cut(h, old + g, need + g);
      h->map_size = need + g;
      LIVE_SUB(live_bytes, old - need);
    }
    return p;
  }
  void *q = grow_into_cached(h, size, need);
  if (q) return q;
  if (g && guard_end(h, old + g, 0) != 0) {
    h->asked = asked;   /* the block stays as it was */
    errno = ENOMEM;
    return NULL;
  }
  hm_large_hdr *r = span_grow(h, old + g, need + g, off, g != 0);
  if (!r) {
    if (g) guard_end(h, old + g, 1);   /* splits again: see below on failure */
    h->asked = asked;
    errno = ENOMEM;
    return NULL;
  }
  int moved = r != h;
  if (moved) {
    /* The old header is unmapped now: forget it by address. */
    if (!hm_region_in_map((uintptr_t)p)) far_remove((uintptr_t)p);
    else if (off == HM_REGION_SIZE) hm_region_set((uintptr_t)h + HM_REGION_SIZE, HM_REGION_NONE);
    else hm_region_set((uintptr_t)h, HM_REGION_NONE);
    h = r;
    if (!is_far(h)) region_mark(h, 1);   /* a far one was recorded by span_grow */
  }
  /* Out of map entries a guard stays readable: the block is whole, its
   * usable size still ends before the guard page; only the fault is lost. */
  if (g) {
    if (moved) guard_set(h, need + g, off);
    else guard_end(h, need + g, 1);
  }
  h->map_size = need + g;
  LIVE_ADD(live_bytes, need - old);
  return (uint8_t *)h + off;
}

/* The background thread's purge of the span cache: 1 while spans wait. */
int hm_large_cache_purge(void) {
  hm_lock(&large_lock);
  hm_large_hdr *expired = cache_expire(0, incoming_admit(NULL));
  int pending = cache_n != 0;
  hm_unlock(&large_lock);
  unmap_chain(expired);
  return pending;
}

size_t hm_large_collect(int force) {
  hm_lock(&large_lock);
  hm_large_hdr *expired = cache_expire(force, incoming_admit(NULL));
  hm_unlock(&large_lock);
  size_t bytes = 0;
  for (hm_large_hdr *h = expired; h; h = (hm_large_hdr *)(uintptr_t)h->asked) bytes += h->map_size;
  unmap_chain(expired);
  return bytes;
}

/* Live large blocks are not listed: they count as resident in full; the
 * cached spans are probed with mincore (when `resident`). */
void hm_large_usage(hm_usage *u, int resident) {
  hm_lock(&large_lock);
  hm_large_hdr *out = incoming_admit(NULL);
  size_t live = atomic_load_explicit(&live_bytes, memory_order_relaxed);
  u->large_count = atomic_load_explicit(&live_count, memory_order_relaxed);
  u->large_bytes = live;
  u->large_cached_bytes = cache_bytes;
  u->mapped += live + cache_bytes;
  u->committed_est += live + cache_bytes;
  u->in_use += live;
  u->active += live;
  if (resident) {
    u->resident += live;
    for (int32_t i = age_oldest; i >= 0; i = cache[i].newer)
      u->resident += hm_os_resident(cache[i].hdr, cache[i].size);
  }
  hm_unlock(&large_lock);
  unmap_chain(out);
}

/* What a cached span covers: its size, or for a shorter span the whole
 * chunk map_chunk mapped for it (the rest of it is address space). */
static size_t cached_extent(const cached_span *c) {
  return c->size < HM_REGION_SIZE && c->hdr->mapped == HM_REGION_SIZE ? HM_REGION_SIZE : c->size;
}

/* A segment's worth of a cached span, for a heap that would otherwise map a
 * fresh segment (hm_seg_acquire): the span's pages are already resident,
 * a fresh segment's would be faulted in one by one, and a span kept for
 * large blocks that stopped coming would otherwise hold memory that small
 * and medium blocks cannot use (tcmalloc's page heap shares its pages
 * between sizes the same way). Spans are 2 MiB aligned at their header; the
 * last whole 2 MiB chunk is taken, what lies beyond it is unmapped, and the
 * span stays cached, shorter. A span of one chunk goes whole, and so does
 * a shorter one that map_chunk gave its whole chunk. Never in
 * secure mode (its guards sit inside spans). NULL when no span has a whole
 * chunk. *huge: whether the span was mapped with huge-page advice. */
void *hm_large_take_chunk(int *huge) {
  if (hm_param.secure) return NULL;
  hm_lock(&large_lock);
  hm_large_hdr *out = incoming_admit(NULL);
  int32_t best = age_oldest;   /* the oldest span with a whole chunk the region map covers */
  size_t extent = 0;
  for (; best >= 0; best = cache[best].newer) {
    const cached_span *c = &cache[best];
    extent = cached_extent(c);
    uintptr_t last = (uintptr_t)c->hdr + extent / HM_REGION_SIZE * HM_REGION_SIZE - 1;
    if (extent >= HM_REGION_SIZE && hm_region_in_map(last)) break;
  }
  if (best < 0) {
    hm_unlock(&large_lock);
    unmap_chain(out);
    return NULL;
  }
  cached_span *c = &cache[best];
  *huge = c->hdr->huge != 0;   /* the whole span's advice (one mapping, one advice) */
  size_t chunks = extent / HM_REGION_SIZE, keep = (chunks - 1) * HM_REGION_SIZE;
  uint8_t *chunk = (uint8_t *)c->hdr + keep, *tail = chunk + HM_REGION_SIZE;
  size_t tail_size = extent - keep - HM_REGION_SIZE;
  if (keep) {   /* shorter now: another class, the same age */
    cache_unlink_class(best);
    cache_bytes -= c->size - keep;
    size_t res = c->resident < keep ? c->resident : keep;
    __atomic_store_n(&cache_resident, cache_resident - (c->resident - res), __ATOMIC_RELAXED);
    c->resident = res;
    c->size = keep;
    c->hdr->map_size = keep;
    cache_link(best);
  } else {
    cache_remove(best);
  }
  hm_unlock(&large_lock);
  unmap_chain(out);
  if (tail_size) hm_os_unmap(tail, tail_size);
  return chunk;
}

void hm_large_counts(uint64_t *hits, uint64_t *misses, uint64_t *drops) {
  *hits = __atomic_load_n(&count_hits, __ATOMIC_RELAXED);
  *misses = __atomic_load_n(&count_misses, __ATOMIC_RELAXED);
  *drops = __atomic_load_n(&count_drops, __ATOMIC_RELAXED);
}

void hm_large_lock(void) { hm_lock(&large_lock); }
void hm_large_unlock(void) { hm_unlock(&large_lock); }
void hm_large_reinit_lock(void) {
  pthread_mutexattr_t a;
  pthread_mutexattr_init(&a);
#ifdef PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP
  (void)pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ADAPTIVE_NP);
#endif
  pthread_mutex_init(&large_lock, &a);
  pthread_mutexattr_destroy(&a);
}
