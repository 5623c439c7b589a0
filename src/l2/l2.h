/* l2.h -- the inline fast paths of the L2 pool (medium sizes, 1 KiB ..
 * 256 KiB): pop from the class's current page, push onto the page's
 * local_free. No locks, no atomics, no per-block header, no lookup: pointer
 * -> segment by mask -> page by shift. A thread without a heap points at the
 * constant empty heap, whose current pages are all hm_l2_page_empty (no free
 * blocks), so its first allocation misses into the slow path. */
#ifndef HAKMEM_L2_H
#define HAKMEM_L2_H

#include "hakmem_internal.h"


HM_INLINE void *hm_l2_alloc(unsigned cls) {
  hm_heap *h = hm_tls_heap;
  hm_l2_page *pg = h->l2_page[cls];
  hm_block *b = pg->free;
  if (hm_unlikely(b == NULL)) return hm_l2_alloc_slow(cls);
  pg->free = b->next;
  pg->used++;
  return b;
}

HM_INLINE hm_l2_page *hm_l2_page_of(hm_superslab *seg, const void *p) {
  return &seg->pages[seg->pages[hm_unit_of(p)].head];
}

HM_INLINE uint8_t *hm_l2_page_start(hm_superslab *seg, const hm_l2_page *pg) {
  unsigned u = (unsigned)(pg - seg->pages);
  return (uint8_t *)seg + (size_t)u * HM_UNIT_SIZE + (u == 0 ? HM_SS_HEADER_SIZE : 0);
}

/* Is p the start of a block this page has handed out? (one multiply) */
HM_INLINE int hm_l2_block_ok(hm_superslab *seg, const hm_l2_page *pg, const void *p) {
  if (pg->state == HM_SLAB_UNUSED) return 0;
  return hm_block_index_ok((uintptr_t)p - (uintptr_t)hm_l2_page_start(seg, pg), pg->cls, pg->bump);
}

/* free of an L2 block: the owner pushes onto local_free; a full page, a
 * foreign owner or anything suspicious takes the slow path. The block is
 * validated (hm_l2_block_ok) before it can be handed out again: when
 * local_free is moved to free, and when the page empties -- not here. */
HM_INLINE void hm_l2_free(void *p, hm_superslab *seg) {
  hm_heap *h = hm_tls_heap;
  hm_l2_page *pg = hm_l2_page_of(seg, p);
  if (hm_likely(seg->owner_plain == h && !pg->in_full && pg->used != 0 &&
                pg->local_free != p)) {
    ((hm_block *)p)->next = pg->local_free;
    pg->local_free = (hm_block *)p;
    pg->used--;   /* an empty page stays queued; purge releases it later */
    return;
  }
  hm_l2_free_slow(p);
}

#endif /* HAKMEM_L2_H */
