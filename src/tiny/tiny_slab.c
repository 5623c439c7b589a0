/* tiny_slab.c -- Tiny slabs inside SuperSlabs: assignment of a run of units
 * to a size class, release of an empty slab, draining of remote frees (see
 * the protocol in hakmem_internal.h), adoption of an abandoned SuperSlab and
 * abandonment at thread exit. Runs on the owner thread only. */
#include "superslab/superslab.h"

/* The blocks of one remote list back into slab s; their count. */
static uint32_t drain_list(hm_heap *h, hm_slab *s, hm_block *b) {
  uint32_t k = 0;
  while (b) {
    hm_block *next = hm_link_get(b);   /* the block was validated by its freer */
    hm_slab_return_block(h, s, b);
    b = next;
    k++;
  }
  return k;
}

/* After k blocks of slab s (of class cls) came back from its remote list. */
static void drained(hm_heap *h, hm_slab *s, unsigned cls, uint32_t k) {
  if (!k) return;
  /* Emptied by other threads' frees: the blocks went to another thread,
   * which is not coming back for them here (a hand-off, a consumer), so the
   * slab goes now instead of waiting for the purge. */
  if (s->used == 0 && s->state == HM_SLAB_PARTIAL) {
    hm_partial_remove(h, s);
    hm_ss_slab_release(h, s);
  }
  hm_stats_drained(h, cls, k);
}

/* Each remote list is a chain of dependent loads, mostly of lines the
 * freeing core wrote last. In address order (the default carve) one walk
 * runs at the prefetchers' pace. In the shuffled order of secure mode nothing
 * predicts the next line and one walk waits for one miss per block: there up
 * to DRAIN_LANES lists are walked in lockstep, so that their misses overlap
 * (docs/analysis/free-checks-cost.md, thirteenth session). In address order
 * the lockstep walk measured 8 % slower on producer/consumer churn. */
#define DRAIN_LANES 4
static uint32_t drain_lanes(hm_heap *h, hm_superslab *ss, uint32_t bits) {
  uint32_t n = 0;
  while (bits) {
    hm_slab *slab[DRAIN_LANES];
    hm_block *b[DRAIN_LANES];
    unsigned cls[DRAIN_LANES];   /* a slab may be released on the way */
    uint32_t k[DRAIN_LANES];
    unsigned lanes = 0;
    for (; bits && lanes < DRAIN_LANES; lanes++) {
      unsigned u = (unsigned)__builtin_ctz(bits);
      bits &= bits - 1;
      slab[lanes] = &ss->slabs[u];
      cls[lanes] = slab[lanes]->cls;
      k[lanes] = 0;
      b[lanes] = atomic_exchange_explicit(&slab[lanes]->remote, NULL, memory_order_acquire);
    }
    for (unsigned live = lanes; live;) {
      live = 0;
      for (unsigned i = 0; i < lanes; i++) {
        if (!b[i]) continue;
        hm_block *next = hm_link_get(b[i]);
        hm_slab_return_block(h, slab[i], b[i]);
        b[i] = next;
        k[i]++;
        live++;
      }
    }
    for (unsigned i = 0; i < lanes; i++) {
      drained(h, slab[i], cls[i], k[i]);
      n += k[i];
    }
  }
  return n;
}

/* The lists of `units` that have frees posted. In secure mode every posted
 * list of the segment comes too, walked in lockstep (drain_lanes); in
 * address order one list walks at the prefetchers' pace, and taking the
 * other lists early measured 10 % slower on producer/consumer churn. */
int hm_ss_drain_remote(hm_heap *h, hm_superslab *ss, uint32_t units) {
  if (hm_param.secure) units = HM_UNITS_ALL;
  uint32_t bits =
      atomic_fetch_and_explicit(&ss->remote_units, ~units, memory_order_acquire) & units;
  if (hm_param.secure) return (int)drain_lanes(h, ss, bits);
  uint32_t n = 0;
  while (bits) {
    hm_slab *s = &ss->slabs[__builtin_ctz(bits)];
    bits &= bits - 1;
    unsigned cls = s->cls;   /* the slab may be released on the way */
    uint32_t k = drain_list(h, s, atomic_exchange_explicit(&s->remote, NULL, memory_order_acquire));
    drained(h, s, cls, k);
    n += k;
  }
  return (int)n;
}

void hm_tiny_adopt(hm_heap *h, hm_superslab *ss) {
  hm_seg_heap_add(h, ss);
  /* The previous owner's partial lists are gone: start every slab unlisted,
   * take the posted frees, then list what has room. */
  for (unsigned u = 0; u < HM_UNITS; u++) {
    hm_slab *s = &ss->slabs[u];
    if (s->state != HM_SLAB_UNUSED && s->head == u) {
      hm_store_racy(s->state, HM_SLAB_FULL);
      s->next = s->prev = NULL;
    }
  }
  hm_ss_drain_remote(h, ss, HM_UNITS_ALL);
  for (unsigned u = 0; u < HM_UNITS; u++) {
    hm_slab *s = &ss->slabs[u];
    if (s->state != HM_SLAB_FULL || s->head != u) continue;
    if (s->used == 0) hm_ss_slab_release(h, s);
    else if (s->free || s->bump < s->end) hm_partial_push(h, s);
  }
}

unsigned hm_tiny_release_empty(hm_heap *h) {
  unsigned n = 0;
  h->tiny_emptied = 0;
  for (unsigned c = 0; c < HM_TINY_CLASSES; c++) {
    hm_slab *next;
    for (hm_slab *s = h->partial[c]; s; s = next) {
      next = s->next;
      if (s->used) continue;
      hm_partial_remove(h, s);
      hm_ss_slab_release(h, s);
      n++;
    }
  }
  return n;
}

void hm_tiny_drain_all(hm_heap *h) {
  for (hm_superslab *ss = h->segs[HM_SEG_TINY]; ss; ss = ss->next)
    if (hm_load_relaxed(&ss->remote_units)) hm_ss_drain_remote(h, ss, HM_UNITS_ALL);
}

void hm_tiny_abandon_all(hm_heap *h) {
  hm_superslab *ss;
  /* What other threads freed to us so far goes back into our slabs first,
   * and every empty slab is released: a segment left with no block goes to
   * the cache instead of waiting, ownerless, for a drain. */
  hm_tiny_drain_all(h);
  hm_tiny_release_empty(h);
  while ((ss = h->segs[HM_SEG_TINY]) != NULL) hm_seg_abandon(h, ss);
}

static hm_slab *slab_init(hm_heap *h, hm_superslab *ss, unsigned u, unsigned cls) {
  unsigned span = HM_TINY_SLAB_UNITS;
  uint8_t *area = hm_seg_area_start(ss, u), *area_end = hm_seg_area_end(ss, u + span);
  uint32_t bs = hm_class_size[cls];
  uint8_t *origin = hm_block_origin(area, bs);   /* block placement: hakmem_internal.h */
  uint32_t cap = (uint32_t)((size_t)(area_end - origin) / bs);
  for (unsigned i = u; i < u + span; i++) {
    ss->slabs[i].cls = (uint8_t)cls;
    ss->slabs[i].head = (uint8_t)u;
  }
  hm_seg_set_page_cls(ss, u, span, cls);
  hm_slab *s = &ss->slabs[u];
  s->free = NULL;
  hm_store_racy(s->bump, origin);
  s->end = origin + (size_t)cap * bs;
  s->next = s->prev = NULL;
  s->used = 0;
  s->block_size = bs;
  s->span = (uint8_t)span;
  s->capacity = cap;
  hm_store_racy(s->state, HM_SLAB_ACTIVE);
  hm_seg_units_take(h, ss, u, span);
  return s;
}

/* A slab for class cls to carve: a run of resident free units in an owned
 * SuperSlab, else (after releasing the empty slabs kept for other classes) a
 * partial slab of cls in an adopted abandoned SuperSlab or a run of its
 * units, else a cached SuperSlab with resident units, else never-used units
 * of an owned one, else a new SuperSlab. */
hm_slab *hm_ss_slab_new(hm_heap *h, unsigned cls) {
  unsigned span = HM_TINY_SLAB_UNITS;
  hm_seg_earn_reclaim(h);
  for (;;) {
    /* Resident memory before memory that is not: units freed earlier, then
     * the empty slabs kept for other classes, the segments of exited threads
     * (resident, and holding the frees posted to them) and the empty
     * segments other heaps retired, before units never used or decommitted,
     * which cost page faults and add to the RSS. */
    unsigned u;
    hm_superslab *ss = hm_seg_fit_find(h, HM_SEG_TINY, span, HM_UNITS_ALL, 1, &u);
    if (ss) return slab_init(h, ss, u, cls);
    /* Only when a slab emptied since the last look: the partial lists of a
     * large heap are long, and this runs for every new slab. */
    if (h->tiny_emptied && hm_tiny_release_empty(h)) continue;
    ss = hm_seg_abandoned_pop(HM_SEG_TINY);
    if (ss) {
      HM_DBG_ONLY(h->dbg_seg_src = HM_DBG_MAX(h->dbg_seg_src, HM_STAGE_ADOPT);)
      hm_tiny_adopt(h, ss);
      hm_slab *p = h->partial[cls];
      if (p) {   /* the adopted segment has room in this class: fill it first */
        hm_partial_remove(h, p);
        hm_store_racy(p->state, HM_SLAB_ACTIVE);
        return p;
      }
      continue;
    }
    if (hm_seg_acquire_dirty(h, HM_SEG_TINY)) continue;
    if ((ss = hm_seg_fit_find(h, HM_SEG_TINY, span, HM_UNITS_ALL, 0, &u))) return slab_init(h, ss, u, cls);
    if (!hm_seg_acquire(h, HM_SEG_TINY)) return NULL;
  }
}

void hm_ss_slab_release(hm_heap *h, hm_slab *s) {
  hm_superslab *ss = hm_ss_of_slab(s);
  unsigned u = hm_slab_index(ss, s);
  unsigned span = s->span;
  for (unsigned i = u; i < u + span; i++) {
    ss->slabs[i].cls = HM_CLASS_NONE;
    ss->slabs[i].head = (uint8_t)i;
  }
  hm_seg_set_page_cls(ss, u, span, HM_CLASS_NONE);
  hm_store_racy(s->state, HM_SLAB_UNUSED);
  s->span = 0;
  s->free = NULL;
  hm_store_racy(s->bump, NULL);
  s->end = NULL;
  s->capacity = 0;
  s->used = 0;
  hm_seg_units_return(h, ss, u, span);
}
