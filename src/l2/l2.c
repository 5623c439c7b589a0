/* l2.c -- the L2 pool's slow paths: medium classes (1 KiB .. 256 KiB) served
 * from pages of thread-owned segments, in the spirit of mimalloc, behind the
 * same bounded TLS SLL as Tiny (LIFO reuse of the hottest block; see
 * docs/analysis/l2-tls-front.md for why).
 *
 * Per heap and class: a queue of pages with free space whose head is the
 * current page (h->l2_page[cls]); the SLL refills from it in batches. Per
 * page: free (refill source), local_free (owner frees flushed from the SLL),
 * thread_free (remote frees + notify state, see hakmem_internal.h). A full page leaves the queue; the first remote free
 * into it pushes the page onto the owner's l2_delayed list, which the owner
 * drains on its next slow path -- the owner never scans for such pages.
 * Empty pages are released to their segment (units dirty, decommitted after
 * purge_delay_ms). A span block (above 64 KiB) is a page of its own,
 * released as soon as its block comes back to it, so that its units serve
 * the next request of any size. Thread exit stops notifications
 * (HM_TF_NEVER) and abandons the segments; other threads adopt them. */
#include "l2/l2.h"

#include <errno.h>
#include <sched.h>
#include <string.h>

const hm_l2_page hm_l2_page_empty;

#define TF_STATE(tf) ((tf) & (uintptr_t)3)
#define TF_LIST(tf) ((hm_block *)((tf) & ~(uintptr_t)3))

/* ---- class queue ------------------------------------------------------------ */
static int queue_empty(hm_heap *h, unsigned cls) {
  return h->l2_page[cls] == &hm_l2_page_empty;
}

static void queue_push_front(hm_heap *h, hm_l2_page *pg) {
  unsigned c = pg->cls;
  pg->prev = NULL;
  if (queue_empty(h, c)) {
    pg->next = NULL;
    h->l2_tail[c] = pg;
  } else {
    pg->next = h->l2_page[c];
    pg->next->prev = pg;
  }
  h->l2_page[c] = pg;
}

static void queue_push_back(hm_heap *h, hm_l2_page *pg) {
  unsigned c = pg->cls;
  if (queue_empty(h, c)) {
    queue_push_front(h, pg);
    return;
  }
  pg->next = NULL;
  pg->prev = h->l2_tail[c];
  pg->prev->next = pg;
  h->l2_tail[c] = pg;
}

static void queue_remove(hm_heap *h, hm_l2_page *pg) {
  unsigned c = pg->cls;
  if (pg->prev) pg->prev->next = pg->next;
  else h->l2_page[c] = pg->next ? pg->next : (hm_l2_page *)&hm_l2_page_empty;
  if (pg->next) pg->next->prev = pg->prev;
  else h->l2_tail[c] = pg->prev;
  pg->next = pg->prev = NULL;
}

/* ---- pages -------------------------------------------------------------------- */
static hm_superslab *seg_of_page(const hm_l2_page *pg) {
  return (hm_superslab *)((uintptr_t)pg & ~(uintptr_t)HM_REGION_MASK);
}

/* Take the remote frees; returns how many. */
static uint32_t collect_thread_free(hm_heap *h, hm_l2_page *pg) {
  uintptr_t tf = atomic_load_explicit(&pg->thread_free, memory_order_relaxed);
  do {
    if (!TF_LIST(tf)) return 0;
  } while (!atomic_compare_exchange_weak_explicit(&pg->thread_free, &tf, TF_STATE(tf),
                                                  memory_order_acquire, memory_order_relaxed));
  hm_block *list = TF_LIST(tf), *tail = list, *next;
  uint32_t n = 1;
  while ((next = hm_link_get(tail)) != NULL) {
    tail = next;
    n++;
  }
  hm_link_set(tail, pg->free);
  pg->free = list;
  if (hm_unlikely(n > pg->used)) hm_fatal("free()", "double free detected (remote)", list);
  pg->used = (uint16_t)(pg->used - n);
  hm_stats_drained(h, pg->cls, n);
  return n;
}

/* Every block of a list must be a block this page handed out. */
static void validate_list(hm_l2_page *pg, hm_block *b) {
  if (pg->state == HM_SLAB_UNUSED && b) hm_fatal("free()", "corrupted free list", b);
  uintptr_t start = (uintptr_t)hm_l2_page_start(seg_of_page(pg), pg);
  uint64_t inv = hm_class_div_tab[pg->cls].inv, count = pg->bump;
  unsigned s = hm_class_div_tab[pg->cls].shift;
  for (; b; b = hm_link_get(b)) {
    uint64_t x = ((uintptr_t)b - start) * inv;
    if (hm_unlikely(((x >> s) | (x << ((64 - s) & 63))) >= count))
      hm_fatal("free()", "corrupted free list", b);
  }
}

/* Make pg->free non-empty if the page has anything left; 0 if it is full,
 * else 1 + the refill stage that filled it (HM_STAGE_*, debug counters). */
static int page_extend(hm_heap *h, hm_l2_page *pg) {
  if (pg->free) return 1 + HM_STAGE_FREELIST;
  if (pg->local_free) {   /* validated when flushed into it */
    pg->free = pg->local_free;
    pg->local_free = NULL;
    return 1 + HM_STAGE_FREELIST;
  }
  if (collect_thread_free(h, pg)) return 1 + HM_STAGE_REMOTE;
  if (pg->bump < pg->capacity) {
    hm_superslab *seg = seg_of_page(pg);
    uint32_t bs = hm_l2_block_size(pg);
    uint32_t n = pg->capacity - pg->bump;
    if (n > HM_PARAM(l2_carve_max)) n = HM_PARAM(l2_carve_max);
    hm_block *first, *last;
    hm_carve_chain(h, hm_l2_page_start(seg, pg) + (size_t)pg->bump * bs, n, bs, &first, &last);
    hm_link_set(last, NULL);
    pg->free = first;
    hm_store_racy(pg->bump, (uint16_t)(pg->bump + n));
    if (pg->bump == pg->capacity && !hm_l2_is_span_class(pg->cls))   /* a span's tail has class NONE */
      hm_mark_tail(hm_l2_page_start(seg, pg) + (size_t)pg->capacity * bs, hm_l2_page_area_end(seg, pg));
    return 1 + HM_STAGE_BUMP;
  }
  return 0;
}

static hm_l2_page *page_init(hm_heap *h, hm_superslab *seg, unsigned u, unsigned cls, unsigned span) {
  for (unsigned i = u; i < u + span; i++) {
    seg->pages[i].cls = (uint8_t)cls;
    seg->pages[i].head = (uint8_t)u;
  }
  hm_l2_page *pg = &seg->pages[u];
  pg->span = (uint8_t)span;
  uint32_t bs = hm_class_size[cls];
  uint8_t *area = hm_l2_page_area(seg, pg), *origin;
  if (hm_l2_is_span_class(cls)) {   /* block placement: hakmem_internal.h */
    origin = area;
    seg->page_cls[hm_page_of(area)] = (uint8_t)cls;
  } else {
    origin = hm_block_origin(area, bs);
    hm_seg_set_page_cls(seg, u, span, cls);
  }
  pg->free = pg->local_free = NULL;
  atomic_store_explicit(&pg->thread_free, HM_TF_NORMAL, memory_order_relaxed);
  pg->next = pg->prev = pg->delayed_next = NULL;
  pg->used = 0;
  hm_store_racy(pg->bump, 0);
  pg->origin = (uint32_t)(origin - area);
  pg->capacity = (uint16_t)((size_t)(hm_l2_page_area_end(seg, pg) - origin) / bs);
  pg->in_full = 0;
  pg->found_empty = 0;
  hm_store_racy(pg->state, HM_SLAB_ACTIVE);
  hm_seg_units_take(h, seg, u, span);
  return pg;
}

static void page_release(hm_heap *h, hm_l2_page *pg) {
  hm_superslab *seg = seg_of_page(pg);
  unsigned u = (unsigned)(pg - seg->pages), span = pg->span;
  hm_store_racy(pg->state, HM_SLAB_UNUSED);
  pg->span = 0;
  pg->free = pg->local_free = NULL;
  pg->used = pg->capacity = 0;
  hm_store_racy(pg->bump, 0);
  pg->in_full = 0;
  atomic_store_explicit(&pg->thread_free, HM_TF_NORMAL, memory_order_relaxed);
  for (unsigned i = u; i < u + span; i++) {
    seg->pages[i].cls = HM_CLASS_NONE;
    seg->pages[i].head = (uint8_t)i;
  }
  hm_seg_set_page_cls(seg, u, span, HM_CLASS_NONE);
  hm_seg_units_return(h, seg, u, span);
}

/* The page has nothing to give: unqueue it and ask remote freers to notify
 * us. If remote frees arrived meanwhile, keep it queued instead. */
static void page_to_full(hm_heap *h, hm_l2_page *pg) {
  queue_remove(h, pg);
  uintptr_t tf = atomic_load_explicit(&pg->thread_free, memory_order_relaxed);
  for (;;) {
    if (TF_LIST(tf) || TF_STATE(tf) != HM_TF_NORMAL) {
      /* blocks arrived, or a notification of an earlier life is finishing */
      queue_push_back(h, pg);
      return;
    }
    pg->in_full = 1;
    if (atomic_compare_exchange_weak_explicit(&pg->thread_free, &tf, HM_TF_FULL,
                                              memory_order_release, memory_order_relaxed))
      return;
    pg->in_full = 0;
  }
}

static void check_empty_page(hm_l2_page *pg);

/* A span block's page goes back to its segment as soon as the block is
 * back in it (a flush or a drain), unless a remote free is still being
 * posted to it (its thread_free not plain NORMAL: it stays queued, and the
 * next refill of its class or the purge takes it). */
static void span_release_if_empty(hm_heap *h, hm_l2_page *pg) {
  if (pg->state == HM_SLAB_UNUSED || pg->used != 0 || pg->in_full) return;
  if (atomic_load_explicit(&pg->thread_free, memory_order_acquire) != HM_TF_NORMAL) return;
  check_empty_page(pg);
  queue_remove(h, pg);
  page_release(h, pg);
}

/* Full pages that received remote frees go back to their queues; empty span
 * blocks go back to their segments. */
void hm_l2_drain_delayed(hm_heap *h) {
  hm_l2_page *pg = atomic_exchange_explicit(&h->l2_delayed, NULL, memory_order_acquire);
  while (pg) {
    hm_l2_page *next = pg->delayed_next;
    pg->delayed_next = NULL;
    if (pg->in_full) {
      pg->in_full = 0;
      queue_push_back(h, pg);
      if (hm_l2_is_span_class(pg->cls)) {
        collect_thread_free(h, pg);
        span_release_if_empty(h, pg);
      }
    }
    pg = next;
  }
}

/* The owner takes a page back from the full state itself (a local free). */
static void page_unfull(hm_heap *h, hm_l2_page *pg) {
  uintptr_t tf = atomic_load_explicit(&pg->thread_free, memory_order_relaxed);
  for (;;) {
    if (!pg->in_full) return;
    uintptr_t st = TF_STATE(tf);
    if (st == HM_TF_FULL) {
      if (atomic_compare_exchange_weak_explicit(&pg->thread_free, &tf, (uintptr_t)TF_LIST(tf),
                                                memory_order_acq_rel, memory_order_relaxed)) {
        pg->in_full = 0;
        queue_push_back(h, pg);
        return;
      }
    } else if (st == HM_TF_NOTIFYING) {
      sched_yield();   /* a freer is pushing this page onto our delayed list */
      tf = atomic_load_explicit(&pg->thread_free, memory_order_relaxed);
    } else {
      hm_l2_drain_delayed(h);   /* notified: the page is on the delayed list */
      tf = atomic_load_explicit(&pg->thread_free, memory_order_relaxed);
    }
  }
}

/* A page about to be released must hold exactly its carved blocks, each
 * valid: an unchecked invalid or double free would otherwise release memory
 * that is still in use. */
static void check_empty_page(hm_l2_page *pg) {
  uint32_t n = 0;
  validate_list(pg, pg->local_free);
  for (hm_block *b = pg->local_free; b && n <= pg->bump; b = hm_link_get(b)) n++;
  for (hm_block *b = pg->free; b && n <= pg->bump; b = hm_link_get(b)) n++;
  if (n != pg->bump) hm_fatal("free()", "double free or invalid pointer detected", pg->local_free);
}

/* Empty pages stay in their queue (the best place to allocate from) until
 * the heap's periodic purge has found them empty twice, with no block taken
 * in between (or at once: a forced purge, or the background thread's purge
 * of an idle heap): then every such page but the current one of its class
 * is released to its segment, whose units are decommitted after
 * purge_delay_ms.
 * Once was too soon: the purge runs every purge_delay_ms / 2 (50 ms where
 * faults are cheap), and a page that other threads' frees empty while its
 * owner keeps allocating in the class was released and carved again at
 * every pass (docs/analysis/many-to-one.md, ninth session). */
void hm_l2_release_empty(hm_heap *h, int at_once) {
  hm_l2_drain_delayed(h);
  for (unsigned c = 0; c < HM_NUM_CLASSES; c++) {   /* tiny too: HAKMEM_TINY_USE_SUPERSLAB=0 */
    hm_l2_page *pg = h->l2_page[c], *next;
    if (pg == &hm_l2_page_empty) continue;
    if (!hm_l2_is_span_class(c)) pg = pg->next;   /* the current page stays (a span block's goes) */
    for (; pg; pg = next) {
      next = pg->next;
      collect_thread_free(h, pg);   /* remote frees may be all that keeps it in use */
      if (pg->used != 0 ||
          TF_STATE(atomic_load_explicit(&pg->thread_free, memory_order_acquire)) != HM_TF_NORMAL)
        continue;   /* in use, or a notifier of an earlier life may still touch it */
      if (!at_once && !pg->found_empty && !hm_l2_is_span_class(c)) {
        pg->found_empty = 1;   /* released at the next pass if nothing is taken meanwhile */
        continue;
      }
      check_empty_page(pg);
      queue_remove(h, pg);
      page_release(h, pg);
    }
  }
}

/* Where a span block may lie: never in unit 0 (the header: its start would
 * not be a unit boundary), nor in the last unit when a guard page ends the
 * segment (secure mode: the block would not fit). */
static uint32_t span_units_allowed(void) {
  uint32_t last = hm_seg_data_end < HM_REGION_SIZE ? 1u << (HM_UNITS - 1) : 0u;
  return HM_UNITS_ALL & ~1u & ~last;
}

/* A new page of class cls; NULL with *adopted set when an adopted segment
 * brought pages of the class (look at the queue again), NULL otherwise when
 * out of memory. */
static hm_l2_page *page_new(hm_heap *h, unsigned cls, int *adopted) {
  unsigned span = hm_l2_page_span(cls);
  uint32_t allowed = hm_l2_is_span_class(cls) ? span_units_allowed() : HM_UNITS_ALL;
  *adopted = 0;
  hm_seg_earn_reclaim(h);
  for (;;) {
    /* Resident memory before memory that is not, as hm_ss_slab_new does:
     * units freed earlier (the front of the fit lists), the segments of
     * exited threads, the empty segments other heaps retired, then units
     * never used (or decommitted). */
    unsigned u;
    hm_superslab *seg = hm_seg_fit_find(h, HM_SEG_L2, span, allowed, 1, &u);
    if (seg) return page_init(h, seg, u, cls, span);
    seg = hm_seg_abandoned_pop(HM_SEG_L2);
    if (seg) {
      HM_DBG_ONLY(h->dbg_seg_src = HM_DBG_MAX(h->dbg_seg_src, HM_STAGE_ADOPT);)
      hm_l2_adopt(h, seg);
      if (!queue_empty(h, cls)) {   /* adoption brought pages of this class */
        *adopted = 1;
        return NULL;
      }
      continue;
    }
    if (hm_seg_acquire_dirty(h, HM_SEG_L2)) continue;
    if ((seg = hm_seg_fit_find(h, HM_SEG_L2, span, allowed, 0, &u))) return page_init(h, seg, u, cls, span);
    /* A shorter page (at least half the span) before a new segment that
     * would get huge pages: the runs that full spans leave -- the 31 units
     * after the header hold three 8-unit pages and 7 units -- would stay
     * empty, committed with the 2 MiB, while the heap maps more segments.
     * Only then: with 4 KiB pages empty units cost nothing, and the shorter
     * pages cost Larson with 16-32 KiB blocks 4-5 % of its peak RSS. */
    if (span > 1 && allowed == HM_UNITS_ALL && hm_seg_want_huge(h)) {
      /* No segment holds the span (the search above took any that does):
       * the ones with the longest runs left are on the fit lists below. */
      for (seg = hm_seg_fit_next(h, HM_SEG_L2, (span + 1) / 2, NULL); seg;
           seg = hm_seg_fit_next(h, HM_SEG_L2, (span + 1) / 2, seg)) {
        unsigned at = 0, len = hm_seg_longest_run(seg->free_units, &at);
        if (len >= (span + 1) / 2) return page_init(h, seg, at, cls, len < span ? len : span);
      }
    }
    if (!hm_seg_acquire(h, HM_SEG_L2)) {
      errno = ENOMEM;
      return NULL;
    }
  }
}

/* Move up to `want` blocks of pg->free into the TLS SLL of h; returns the
 * first (the caller hands it out) and links the others as the SLL. `stage`
 * is for the debug counters. */
static void *take(hm_heap *h, hm_l2_page *pg, unsigned cls, uint32_t want, unsigned stage) {
  hm_block *first = pg->free, *last = first, *next;
  uint32_t n = 1;
  while (n < want && (next = hm_link_get(last)) != NULL) {
    last = next;
    n++;
  }
  pg->free = hm_link_get(last);
  hm_link_set(last, NULL);
  pg->used = (uint16_t)(pg->used + n);
  pg->found_empty = 0;
  h->head[cls] = hm_link_get(first);
  h->room[cls] -= n - 1;
  hm_stats_refill(h, cls, n);
  HM_DBG_ONLY(HM_DBG_REFILL(h, stage, n);)
  (void)stage;
  return first;
}

/* take(), and a span block's page, which has nothing more to give, goes
 * to the full state at once: the free of its block, local or remote, then
 * brings it back to its owner, who releases it (span_release_if_empty). */
static void *take_from(hm_heap *h, hm_l2_page *pg, unsigned cls, uint32_t want, unsigned stage) {
  void *b = take(h, pg, cls, want, stage);
  if (hm_l2_is_span_class(cls) && !pg->free && !pg->local_free) page_to_full(h, pg);
  return b;
}

#define QUEUE_VISIT_MAX 8

/* malloc's slow path for an L2 class: the SLL is empty. */
void *hm_l2_refill(hm_heap *h, unsigned cls) {
  uint32_t want = h->batch[cls];
  if (want > h->room[cls]) want = h->room[cls];
  if (want == 0) want = 1;
  if (atomic_load_explicit(&h->l2_delayed, memory_order_relaxed)) hm_l2_drain_delayed(h);
  unsigned stage = 0;   /* debug counters: the costliest step taken (HM_STAGE_*) */
  for (;;) {
    hm_l2_page *pg = h->l2_page[cls];
    if (pg != &hm_l2_page_empty && !pg->free && pg->next) {
      /* Round robin: the current page ran dry, so go on with the page after
       * it, which has collected frees for a whole turn of the queue. */
      queue_remove(h, pg);
      queue_push_back(h, pg);
      pg = h->l2_page[cls];
      HM_DBG_ONLY(stage = HM_DBG_MAX(stage, HM_STAGE_PARTIAL);)
    }
    int visited = 0;
    for (; pg && pg != &hm_l2_page_empty && visited < QUEUE_VISIT_MAX; visited++) {
      hm_l2_page *next = pg->next;
      int got = page_extend(h, pg);
      if (got) {
        if (h->l2_page[cls] != pg) {
          queue_remove(h, pg);
          queue_push_front(h, pg);
        }
        HM_DBG_ONLY(stage = HM_DBG_MAX(stage, (unsigned)got - 1);)
        HM_DBG_ONLY(if (visited) stage = HM_DBG_MAX(stage, HM_STAGE_PARTIAL);)
        return take_from(h, pg, cls, want, stage);
      }
      page_to_full(h, pg);
      pg = next;
    }
    /* Every page visited so far was full and left the queue: look further
     * before taking a new page (each full page is visited once per fill). */
    if (visited == QUEUE_VISIT_MAX && !queue_empty(h, cls)) continue;
    HM_DBG_ONLY(h->dbg_seg_src = HM_STAGE_NEW_SLAB;)
    int adopted;
    pg = page_new(h, cls, &adopted);
    HM_DBG_ONLY(stage = HM_DBG_MAX(stage, h->dbg_seg_src);)
    if (pg) {
      queue_push_front(h, pg);
      page_extend(h, pg);
      return take_from(h, pg, cls, want, stage);
    }
    if (!adopted) return NULL;   /* out of memory */
  }
}

/* The owner takes a block back into its page (a flush of the TLS SLL). */
void hm_l2_return_block(hm_heap *h, hm_l2_page *pg, hm_block *b) {
  if (hm_unlikely(!hm_l2_block_ok(seg_of_page(pg), pg, b))) hm_fatal("free()", "corrupted thread cache", b);
  if (hm_unlikely(pg->used == 0 || pg->local_free == b))
    hm_fatal("free()", "double free detected", b);
  hm_link_set(b, pg->local_free);
  pg->local_free = b;
  pg->used--;
  if (pg->in_full) page_unfull(h, pg);
  if (hm_l2_is_span_class(pg->cls)) span_release_if_empty(h, pg);
}

/* Push a chain of blocks (head .. tail) of another heap's page (or an
 * abandoned one) onto its thread_free, and notify the owner if the page was
 * full. */
void hm_l2_remote_push(hm_superslab *seg, hm_l2_page *pg, hm_block *head, hm_block *tail) {
  uintptr_t tf = atomic_load_explicit(&pg->thread_free, memory_order_relaxed);
  uintptr_t st;
  do {
    st = TF_STATE(tf);
    hm_link_set(tail, TF_LIST(tf));
  } while (!atomic_compare_exchange_weak_explicit(
      &pg->thread_free, &tf, (uintptr_t)head | (st == HM_TF_FULL ? HM_TF_NOTIFYING : st),
      memory_order_acq_rel, memory_order_relaxed));
  /* acq_rel, not release: seeing FULL must also see what the owner wrote
   * before it set FULL -- its last write of pg->delayed_next among them,
   * which the notification below overwrites (ThreadSanitizer found the
   * race; on x86 the locked cmpxchg is the same instruction either way). */
  if (st != HM_TF_FULL) return;   /* nothing of the page is touched after the push */
  /* We own the notification: the owner cannot leave or requeue the page
   * until we set NORMAL again. */
  hm_heap *owner = atomic_load_explicit(&seg->owner, memory_order_acquire);
  hm_l2_page *old = atomic_load_explicit(&owner->l2_delayed, memory_order_relaxed);
  do {
    pg->delayed_next = old;
  } while (!atomic_compare_exchange_weak_explicit(&owner->l2_delayed, &old, pg,
                                                  memory_order_release, memory_order_relaxed));
  tf = atomic_load_explicit(&pg->thread_free, memory_order_relaxed);
  while (!atomic_compare_exchange_weak_explicit(&pg->thread_free, &tf,
                                                (uintptr_t)TF_LIST(tf) | HM_TF_NORMAL,
                                                memory_order_release, memory_order_relaxed)) {
  }
}

/* malloc_trim: take every page's remote frees, so that pages emptied by
 * other threads can be released (hm_l2_release_empty runs next). */
void hm_l2_collect_all(hm_heap *h) {
  hm_l2_drain_delayed(h);
  for (hm_superslab *seg = h->segs[HM_SEG_L2]; seg; seg = seg->next) {
    for (unsigned u = 0; u < HM_UNITS; u++) {
      hm_l2_page *pg = &seg->pages[u];
      if (pg->state == HM_SLAB_UNUSED || pg->head != u) continue;
      if (!collect_thread_free(h, pg) || !pg->in_full) continue;
      page_unfull(h, pg);   /* it has free blocks again: back into its queue */
    }
  }
}

/* ---- span blocks growing in place --------------------------------------------- */
/* realloc of a span block p (segment seg, owned by h, heap entered) to the
 * larger span class `to`: when the units after its span are free in its
 * segment, they join it, and the block changes class where it lies -- no
 * second block, no copy. A buffer that grows keeps growing: each step
 * would otherwise hold the old block and the new one at once and copy it.
 * Only a block whose page is full and unqueued (the state a span page is
 * in while its block is out); returns 1 if p grew. */
int hm_l2_span_grow(hm_heap *h, hm_superslab *seg, void *p, unsigned to) {
  hm_l2_page *pg = hm_l2_page_of(seg, p);
  unsigned from = pg->cls;
  if (!hm_l2_is_span_class(from) || !hm_l2_is_span_class(to) || to <= from || !pg->in_full)
    return 0;
  unsigned u = (unsigned)(pg - seg->pages), span = pg->span, grown = hm_l2_page_span(to);
  if (grown > span) {
    if (u + grown > HM_UNITS || !((span_units_allowed() >> (u + grown - 1)) & 1u)) return 0;
    uint32_t more = ((1u << (grown - span)) - 1u) << (u + span);   /* spans are 2-4 units */
    if ((seg->free_units & more) != more) return 0;
    hm_seg_units_take(h, seg, u + span, grown - span);
  }
  for (unsigned i = u; i < u + grown; i++) {
    seg->pages[i].cls = (uint8_t)to;
    seg->pages[i].head = (uint8_t)u;
  }
  pg->span = (uint8_t)grown;
  seg->page_cls[hm_page_of(p)] = (uint8_t)to;
  hm_stats_moved(h, from, to);
  return 1;
}

/* ---- free blocks of idle pages ---------------------------------------------- */
/* A page that keeps a few live blocks keeps all of its memory: free units
 * are given back, an assigned page is not. With medium blocks that is most
 * of a fragmented heap (90 % of 24 KiB blocks freed at random: no unit is
 * free, every page holds survivors). So once a heap has been idle for the
 * purge delay, or on a forced purge, the whole OS pages inside each free
 * block larger than a page are decommitted: everything but the page holding
 * the block's first words (its link, its free mark and the tag below), so
 * a 5-7 KiB block gives back a page only when it is placed across two. A
 * block handed out again faults its pages back in, zeroed.
 *   The tag, in word 2, says the block's pages went back already, so that
 * the next purge does not repeat the madvise. It is only a hint: a program
 * may have written the same value there while the block was live, and the
 * block is then skipped once, its memory kept -- never the reverse, since
 * only blocks on a page's free lists are looked at. hm_seg_decommit drops
 * a segment's huge-page advice first, as for free units. */
#define L2_OS_PAGE ((uintptr_t)1 << HM_PAGE_SHIFT)
#define L2_PURGED_SALT 0x70757267656421ull   /* "purged!" */

static inline uint64_t *purged_tag(hm_block *b) { return &((uint64_t *)b)[2]; }
static inline uint64_t purged_value(const hm_block *b) { return (uintptr_t)b ^ L2_PURGED_SALT ^ hm_free_key; }

static size_t purge_list(hm_superslab *seg, hm_block *b, size_t bs) {
  size_t released = 0;
  for (; b; b = hm_link_get(b)) {
    if (*purged_tag(b) == purged_value(b)) continue;
    uintptr_t from = ((uintptr_t)b + 3 * sizeof(uint64_t) + L2_OS_PAGE - 1) & ~(L2_OS_PAGE - 1);
    uintptr_t to = ((uintptr_t)b + bs) & ~(L2_OS_PAGE - 1);
    if (to <= from) continue;
    hm_seg_decommit(seg, (void *)from, to - from);
    *purged_tag(b) = purged_value(b);
    released += to - from;
  }
  return released;
}

size_t hm_l2_purge_seg_free_blocks(hm_heap *h, hm_superslab *seg) {
  size_t released = 0;
  for (unsigned u = 0; u < HM_UNITS; u++) {
    hm_l2_page *pg = &seg->pages[u];
    if (pg->state == HM_SLAB_UNUSED || pg->head != u) continue;
    size_t bs = hm_l2_block_size(pg);
    if (bs <= L2_OS_PAGE) continue;   /* no whole page past the first words */
    if (atomic_load_explicit(&h->bg_claim, memory_order_relaxed) == 2) break;
    released += purge_list(seg, pg->free, bs);
    released += purge_list(seg, pg->local_free, bs);
  }
  if (released) atomic_fetch_add_explicit(&hm_l2_block_bytes_released, released, memory_order_relaxed);
  return released;
}

size_t hm_l2_purge_free_blocks(hm_heap *h) {
  size_t released = 0;
  for (hm_superslab *seg = h->segs[HM_SEG_L2]; seg; seg = seg->next)
    released += hm_l2_purge_seg_free_blocks(h, seg);
  return released;
}

_Atomic uint64_t hm_l2_block_bytes_released;

/* ---- adoption and abandonment -------------------------------------------------- */
void hm_l2_adopt(hm_heap *h, hm_superslab *seg) {
  hm_seg_heap_add(h, seg);
  for (unsigned u = 0; u < HM_UNITS; u++) {
    hm_l2_page *pg = &seg->pages[u];
    if (pg->state == HM_SLAB_UNUSED || pg->head != u) continue;
    /* The previous owner set HM_TF_NEVER: take the list, back to NORMAL. */
    uintptr_t tf = atomic_load_explicit(&pg->thread_free, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&pg->thread_free, &tf,
                                                  (uintptr_t)TF_LIST(tf) | HM_TF_NORMAL,
                                                  memory_order_acq_rel, memory_order_relaxed)) {
    }
    collect_thread_free(h, pg);
    pg->in_full = 0;
    pg->next = pg->prev = pg->delayed_next = NULL;
    if (pg->used == 0) page_release(h, pg);
    else if (pg->free || pg->local_free || pg->bump < pg->capacity) queue_push_back(h, pg);
    else {
      queue_push_back(h, pg);
      page_to_full(h, pg);
    }
  }
}

void hm_l2_abandon_all(hm_heap *h) {
  hm_l2_drain_delayed(h);
  /* Stop notifications: every page goes to NEVER, waiting out a notifier. */
  for (hm_superslab *seg = h->segs[HM_SEG_L2]; seg; seg = seg->next) {
    for (unsigned u = 0; u < HM_UNITS; u++) {
      hm_l2_page *pg = &seg->pages[u];
      if (pg->state == HM_SLAB_UNUSED || pg->head != u) continue;
      uintptr_t tf = atomic_load_explicit(&pg->thread_free, memory_order_relaxed);
      for (;;) {
        if (TF_STATE(tf) == HM_TF_NOTIFYING) {
          sched_yield();
          tf = atomic_load_explicit(&pg->thread_free, memory_order_relaxed);
          continue;
        }
        if (atomic_compare_exchange_weak_explicit(&pg->thread_free, &tf,
                                                  (uintptr_t)TF_LIST(tf) | HM_TF_NEVER,
                                                  memory_order_acq_rel, memory_order_relaxed))
          break;
      }
    }
  }
  hm_l2_drain_delayed(h);
  /* No notification can reach this heap now. Release empty pages, forget
   * the queues, give the segments up. */
  for (hm_superslab *seg = h->segs[HM_SEG_L2]; seg; seg = seg->next) {
    for (unsigned u = 0; u < HM_UNITS; u++) {
      hm_l2_page *pg = &seg->pages[u];
      if (pg->state == HM_SLAB_UNUSED || pg->head != u) continue;
      pg->next = pg->prev = NULL;
      pg->in_full = 0;
      collect_thread_free(h, pg);   /* as the Tiny side does: empty pages go now */
      if (pg->used == 0) page_release(h, pg);
    }
  }
  for (unsigned c = 0; c < HM_NUM_CLASSES; c++) {
    h->l2_page[c] = (hm_l2_page *)&hm_l2_page_empty;
    h->l2_tail[c] = NULL;
  }
  h->retire_candidate = NULL;
  hm_superslab *seg;
  while ((seg = h->segs[HM_SEG_L2]) != NULL) hm_seg_abandon(h, seg);
}
