/* tiny_refill.c -- malloc's slow path for the TLS SLL of every class: Tiny
 * classes refill from the active slab (bump carving first, then the slab's
 * free list, then the frees other threads posted), switching to a partial
 * slab or a new slab when the active one is exhausted; L2 classes refill from
 * their page queue (l2/l2.c). */
#include "tiny/tiny.h"
#include "superslab/superslab.h"

#include <errno.h>

/* Take up to `want` blocks out of slab s: never-used blocks first (carved in
 * address order, or at random with hm_param.secure), then the slab's free
 * list -- all of it when it is all that is left and fits in `room` (the
 * bin's), since taking it whole costs nothing per block. Returns the count
 * and the list in *first (NULL-terminated). */
static uint32_t slab_take(hm_heap *h, hm_slab *s, uint32_t want, uint32_t room, hm_block **first) {
  hm_block *head = NULL, *tail = NULL;
  uint32_t n = 0;
  size_t bs = s->block_size;
  uint32_t untouched = (uint32_t)((size_t)(s->end - s->bump) / bs);
  uint32_t fresh = untouched < want ? untouched : want;
  uint32_t listed = s->capacity - s->used - untouched;   /* length(free): the slab invariant */
  if (!fresh && listed && listed <= room) {
    /* All of the free list, as it is: no walk (a slab that emptied and
     * is filled again hands out its whole list at once). */
    *first = s->free;
    s->free = NULL;
    s->used += listed;
    return listed;
  }
  if (fresh) {
    hm_carve_chain(h, s->bump, fresh, bs, &head, &tail);
    hm_store_racy(s->bump, s->bump + (size_t)fresh * bs);
    n = fresh;
    if (s->bump >= s->end) {   /* carving done: mark the tail (block placement) */
      hm_superslab *ss = hm_ss_of_slab(s);
      hm_mark_tail(s->end, hm_seg_area_end(ss, hm_slab_index(ss, s) + s->span));
    }
  }
  hm_block *f = s->free;
  while (n < want && f) {
    if (tail) hm_link_set(tail, f);
    else head = f;
    tail = f;
    f = hm_link_get(f);
    n++;
  }
  s->free = f;
  if (tail) hm_link_set(tail, NULL);
  s->used += n;
  *first = head;
  return n;
}

/* Drain the remote frees of the owned superslabs; returns blocks recovered.
 * At most HM_FIT_VISIT_MAX of them per call, in turn from where the last
 * call stopped: a heap of thousands of segments would otherwise read every
 * header for each new slab (the owner's periodic purge, hm_ss_purge, drains
 * them all). */
static uint32_t heap_drain_some(hm_heap *h) {
  uint32_t n = 0;
  hm_superslab *ss = h->drain_cursor;
  uint32_t visits = h->seg_count[HM_SEG_TINY];
  if (visits > HM_FIT_VISIT_MAX) visits = HM_FIT_VISIT_MAX;
  for (; visits; visits--) {
    if (!ss) ss = h->segs[HM_SEG_TINY];
    if (hm_load_relaxed(&ss->remote_units)) n += (uint32_t)hm_ss_drain_remote(h, ss, HM_UNITS_ALL);
    ss = ss->next;
  }
  h->drain_cursor = ss;
  return n;
}

/* Debug counters record the refill's stage: the costliest step it took
 * (HAKMEM_STAGE_*, ordered by cost). */
static void *refill(hm_heap *h, unsigned cls) {
  uint32_t want = h->batch[cls];
  if (want > h->room[cls]) want = h->room[cls];
  if (want == 0) want = 1;   /* cannot happen with cap >= 1; keeps the loop honest */
  HM_DBG_ONLY(unsigned stage = HM_STAGE_BUMP;)
  for (;;) {
    hm_slab *s = h->active[cls];
    if (s) {
      hm_block *first;
      HM_DBG_ONLY(uint8_t *bump0 = s->bump;)
      uint32_t n = slab_take(h, s, want, h->room[cls], &first);
      if (n) {
        h->head[cls] = hm_link_get(first);
        h->room[cls] -= n - 1;
        hm_stats_refill(h, cls, n);
        HM_DBG_ONLY(if (stage == HM_STAGE_BUMP && s->bump == bump0) stage = HM_STAGE_FREELIST;)
        HM_DBG_ONLY(HM_DBG_REFILL(h, stage, n);)
        return first;
      }
      hm_superslab *ss = hm_ss_of_slab(s);
      uint32_t bit = 1u << hm_slab_index(ss, s);
      if ((hm_load_relaxed(&ss->remote_units) & bit) && hm_ss_drain_remote(h, ss, bit)) {
        HM_DBG_ONLY(stage = HM_DBG_MAX(stage, HM_STAGE_REMOTE);)
        continue;
      }
      hm_store_racy(s->state, HM_SLAB_FULL);   /* unlisted; a free brings it back to partial */
      h->active[cls] = NULL;
    }
    s = h->partial[cls];
    if (s) {
      hm_partial_remove(h, s);
      hm_store_racy(s->state, HM_SLAB_ACTIVE);
      h->active[cls] = s;
      HM_DBG_ONLY(stage = HM_DBG_MAX(stage, HM_STAGE_PARTIAL);)
      continue;
    }
    if (heap_drain_some(h) && h->partial[cls]) {
      HM_DBG_ONLY(stage = HM_DBG_MAX(stage, HM_STAGE_REMOTE);)
      continue;
    }
    HM_DBG_ONLY(h->dbg_seg_src = HM_STAGE_NEW_SLAB;)
    s = hm_ss_slab_new(h, cls);
    if (!s) return NULL;
    HM_DBG_ONLY(stage = HM_DBG_MAX(stage, h->dbg_seg_src);)
    h->active[cls] = s;
  }
}

/* malloc's slow path: the bin of cls was empty. Two entry points below, by
 * class and by request size (tiny.h says why). */
HM_INLINE void *small_alloc_slow(unsigned cls) {
  hm_heap *h = hm_tls_heap;
  if (hm_unlikely(h == &hm_heap_empty)) {
    h = hm_thread_heap_create();
    if (!h) {
      errno = ENOMEM;
      return NULL;
    }
    HM_DBG(h, early[HAKMEM_EARLY_ALLOC_NO_HEAP], 1);
    if (h->head[cls]) return hm_small_alloc(cls);
  } else {
    HM_DBG(h, early[HAKMEM_EARLY_ALLOC_EMPTY], 1);
  }
  hm_heap_enter(h);   /* the background handshake (hakmem_internal.h) */
  hm_heap_tick(h);
  /* HAKMEM_TINY_USE_SUPERSLAB=0 serves the tiny classes from L2 pages too
   * (kept for comparison; both kinds coexist, so it may change at run time). */
  hm_block *p = cls < HM_TINY_CLASSES && hm_param.tiny_use_superslab ? refill(h, cls)
                                                                      : hm_l2_refill(h, cls);
  if (h->retire_candidate) hm_heap_retire_empty(h);
  hm_heap_leave(h);
  if (hm_unlikely(!p)) {
    errno = ENOMEM;
    return NULL;
  }
  p->mark = 0;   /* live now (the free mark, hakmem_internal.h) */
  return p;
}

void *hm_small_alloc_slow(unsigned cls) { return small_alloc_slow(cls); }
void *hm_small_alloc_slow_size(size_t n) { return small_alloc_slow(hm_size_class(n)); }
