/* tiny_flush.c -- free's slow paths for both segment kinds (Tiny slabs and
 * L2 pages share the TLS SLL): a full bin is flushed back to its slabs or
 * pages (ss_local), a block of another thread's segment is posted to its
 * slab's or page's remote list (ss_remote), and pointers that are not live
 * blocks end in a diagnostic and abort. */
#include "tiny/tiny.h"
#include "l2/l2.h"
#include "superslab/superslab.h"



/* Return the first n blocks of a list (of this heap's segments) to their
 * slabs or pages; every block is validated on the way. Returns the rest of
 * the list. A flushed bin holds runs of blocks of one slab (a batch loop
 * frees them in the order it got them): the slab of the previous block is
 * kept with the range of its carved blocks, so that a block inside it needs
 * no segment, unit or slab lookup. Every block gets the fast path's check
 * against its slab's range (its address a multiple of the size, see "Block
 * placement", at or above the slab's first block and below its bump), which
 * is hm_slab_owns_block's for a slab in use: a block of another slab (a
 * bin emptied in hash order, perl's destruction) costs the lookup and one
 * computation of the range, not a second one for the check. */
static hm_block *return_list(hm_heap *h, hm_block *b, uint32_t n) {
  hm_slab *s = NULL;
  const uint8_t *lo = NULL, *hi = NULL;   /* s's carved blocks; empty: no slab */
  uint64_t mult = 0;
  for (; b && n; n--) {
    hm_block *next = hm_link_get(b);
    const uint8_t *a = (const uint8_t *)b;
    if (a < lo || a >= hi) {
      hm_superslab *ss = hm_ss_of(b);
      if (ss->kind == HM_SEG_L2) {
        hm_l2_return_block(h, hm_l2_page_of(ss, b), b);
        b = next;
        continue;
      }
      s = hm_slab_of(ss, b);
      if (hm_unlikely(hm_load_racy(s->state) == HM_SLAB_UNUSED)) hm_fatal("free()", "corrupted thread cache", b);
      lo = s->end - (size_t)s->capacity * s->block_size;
      hi = s->bump;
      mult = hm_class_mult[s->cls];
      if (hm_unlikely(a < lo || a >= hi)) hm_fatal("free()", "corrupted thread cache", b);
    }
    if (hm_unlikely((uint64_t)(uint32_t)(uintptr_t)a * mult >= mult))
      hm_fatal("free()", "corrupted thread cache", b);
    hm_slab_return_block(h, s, b);   /* never releases s: the range stays valid */
    b = next;
  }
  return b;
}

/* Return all but `keep` blocks of the bin: the most recently freed ones,
 * as tcmalloc's thread cache does. They were written by their free a
 * moment ago, so the walk finds them in cache, and the count comes from
 * the bin's invariant (cap - room blocks), so nothing else is walked.
 * Returning the older blocks instead meant walking past the `keep` newest
 * first: with a grown bin, up to 512 pointer chases into blocks freed long
 * ago, most of them cache misses (a perl hash's destruction spent 9 % of its
 * time there: docs/analysis/batch-loops.md). */
static void flush_bin(hm_heap *h, unsigned cls, uint32_t keep) {
  uint32_t len = (uint32_t)(h->cap[cls] - h->room[cls]);
  if (len <= keep) return;
  uint32_t n = len - keep;
  h->head[cls] = return_list(h, h->head[cls], n);
  h->room[cls] += n;
  hm_stats_flush(h, cls, n);
  HM_DBG(h, free_ss_local, n);
}

/* p (in segment ss) must be the start of a live block: a carved block of
 * its slab or page, not carrying its free mark. Else one line naming `fn`
 * and abort. Returns the block size. `freeing`: the caller frees p (a mark
 * then means a double free; for realloc or usable-size, a freed pointer). */
/* A free-list link that does not lead to a free block (secure build). */
void hm_link_corrupt(const void *at) {
  hm_fatal(NULL, "free list corrupted (a write after free, or an overflow into a free block) at", at);
}
void *hm_small_alloc_bad_link(const hm_block *at) { hm_link_corrupt(at); }

static HM_COLD void not_live(const void *p, const uint8_t *tail, const char *fn, int freeing) {
  /* A block freed twice after its slab or page was released still carries
   * its mark (the mark names its address: no other block left it there);
   * the slab's tail carries one too, but was never a block. */
  int marked = ((uintptr_t)p & (HM_MIN_BLOCK - 1)) == 0 && hm_is_marked_free(p);
  if (!marked || p == tail) hm_fatal(fn, "invalid pointer", p);
  hm_fatal(fn, freeing ? "double free detected" : "pointer to a freed block", p);
}

size_t hm_small_live_size(hm_superslab *ss, const void *p, const char *fn, int freeing) {
  size_t size;
  int block;
  const uint8_t *tail;   /* the aligned address after the last block */
  if (ss->kind == HM_SEG_L2) {
    hm_l2_page *pg = hm_l2_page_of(ss, p);
    block = hm_l2_block_ok(ss, pg, p);
    /* A released page has no size (its class is NONE) and no tail (a span
     * block's page starts at its block); only `block` is looked at then. */
    int released = hm_load_racy(pg->state) == HM_SLAB_UNUSED;
    size = released ? 0 : hm_l2_block_size(pg);
    tail = released ? NULL : hm_l2_page_start(ss, pg) + (size_t)pg->capacity * size;
  } else {
    hm_slab *s = hm_slab_of(ss, p);
    block = hm_slab_owns_block(s, p);
    size = s->block_size;
    tail = hm_load_racy(s->state) == HM_SLAB_UNUSED ? NULL : s->end;
  }
  if (hm_unlikely(!block || hm_is_marked_free(p))) not_live(p, tail, fn, freeing);
  return size;
}

/* The owner's slow path (the bin is full, or the fast path's block check
 * failed): validate, grow or flush the full bin, push. */
static HM_NOINLINE void free_local_slow(hm_heap *h, hm_superslab *ss, void *p, const char *fn) {
  unsigned cls = ss->page_cls[hm_page_of(p)];
  /* room == -1: the fast path checked p and found the bin full (its
   * decrement is undone here); else one of its checks failed: the exact
   * check decides (and aborts). */
  if ((int64_t)h->room[cls] < 0) h->room[cls] = 0;
  else hm_small_live_size(ss, p, fn, 1);
  hm_heap_enter(h);   /* the background handshake (hakmem_internal.h) */
  HM_DBG(h, early[HAKMEM_EARLY_FREE_FULL], 1);
  if (h->room[cls] == 0) {
    if (h->cap[cls] < h->cap_max[cls]) {
      HM_DBG(h, bin_grow, 1);
      /* A bin that overflows grows (up to cap_max) before it starts flushing. */
      uint32_t grow = h->cap[cls];
      if (grow > h->cap_max[cls] - h->cap[cls]) grow = h->cap_max[cls] - h->cap[cls];
      h->cap[cls] += grow;
      h->room[cls] += grow;
    } else {
      /* The bin is full: return the newer half of it to the slabs. */
      HM_DBG(h, flush_overflow, 1);
      flush_bin(h, cls, h->cap[cls] / 2);
    }
  }
  hm_block *b = (hm_block *)p;
  b->mark = hm_free_mark(p);
  hm_link_set(b, h->head[cls]);
  h->head[cls] = b;
  h->room[cls]--;
  HM_DBG(h, free_tls_sll, 1);
  if (h->retire_candidate) hm_heap_retire_empty(h);
  hm_heap_leave(h);
}

/* free's slow path: a block of another heap's segment goes to its remote
 * list (tail calls, no frame); our own goes through free_local_slow. */
void hm_small_free_slow(void *p, const char *fn) {
  hm_superslab *ss = hm_ss_of(p);
  hm_heap *h = hm_tls_heap;
  hm_heap *owner = hm_load_relaxed(&ss->owner);
  if (owner == HM_OWNER_ABANDONED && h->reclaim_credit) {
    hm_heap_enter(h);
    int ours = hm_seg_reclaim(h, ss);
    hm_heap_leave(h);
    if (ours) owner = h;
  }
  if (owner != h) {
    HM_DBG(h, early[h == &hm_heap_empty ? HAKMEM_EARLY_FREE_NO_HEAP : HAKMEM_EARLY_FREE_FOREIGN], 1);
    HM_DBG(h, free_ss_remote, 1);
    hm_remote_free(ss, p, fn);
    return;
  }
  free_local_slow(h, ss, p, fn);
}

/* Push a chain of blocks (head .. tail) onto slab s's remote list. */
void hm_slab_remote_push(hm_superslab *ss, hm_slab *s, hm_block *head, hm_block *tail) {
  hm_block *old = atomic_load_explicit(&s->remote, memory_order_relaxed);
  do {
    hm_link_set(tail, old);
  } while (!atomic_compare_exchange_weak_explicit(&s->remote, &old, head, memory_order_release,
                                                  memory_order_relaxed));
  /* First blocks on an empty list: tell the owner (see the remote-free
   * protocol in hakmem_internal.h). Nothing of ss is touched after this. */
  if (old == NULL)
    atomic_fetch_or_explicit(&ss->remote_units, 1u << hm_slab_index(ss, s), memory_order_release);
}

/* New capacities and batches from hm_param, the heap entered: excess
 * blocks are flushed. A bin that grew (slow start) keeps its size when it
 * lies within the new range. Called at a slow-path tick after the
 * learner published (hm_param_gen moved) and by hakmem_option_set. */
void hm_heap_adopt_params(hm_heap *h) {
  h->param_gen = atomic_load_explicit(&hm_param_gen, memory_order_acquire);
  if (!h->cap_max[0]) return;   /* a heap without bins (the collector) keeps none */
  for (unsigned c = 0; c < HM_NUM_CLASSES; c++) {
    uint32_t len = h->cap[c] - h->room[c];
    uint32_t cap = hm_params_bin_cap(c), cap_max = hm_params_bin_cap_max(c);
    if (h->cap[c] > cap && h->cap[c] <= cap_max) cap = h->cap[c];
    if (len > cap) {
      flush_bin(h, c, cap);
      len = h->cap[c] - h->room[c];
    }
    h->cap[c] = cap;
    h->room[c] = cap - len;
    h->batch[c] = hm_params_refill_batch(c);
    h->cap_max[c] = cap_max;
  }
}

/* hakmem_option_set of a cache parameter: the calling thread's bins take
 * the new capacities and batches at once. */
void hm_heap_apply_params(hm_heap *h) {
  hm_heap_enter(h);
  hm_heap_adopt_params(h);
  hm_heap_leave(h);
}

/* Thread exit or collection: empty every bin and retire the active slabs. */
void hm_heap_flush_all(hm_heap *h) {
  for (unsigned c = 0; c < HM_NUM_CLASSES; c++) {
    if (h->head[c]) flush_bin(h, c, 0);
    hm_slab *s = h->active[c];
    if (!s) continue;
    h->active[c] = NULL;
    if (s->used == 0) hm_ss_slab_release(h, s);
    else if (s->free || s->bump < s->end) hm_partial_push(h, s);
    else hm_store_racy(s->state, HM_SLAB_FULL);
  }
}
