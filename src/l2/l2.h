/* l2.h -- inline helpers of the L2 pool (medium sizes, 1 KiB .. 256 KiB):
 * pointer -> segment by mask -> page by shift, and the exact block check.
 * The fast paths are the TLS SLL's (tiny/tiny.h), shared with Tiny: no
 * locks, no atomics, no per-block header, no lookup. */
#ifndef HAKMEM_L2_H
#define HAKMEM_L2_H

#include "hakmem_internal.h"


/* Units per page: ~64 KiB pages up to 8 KiB blocks, 512 KiB up to 64 KiB
 * (>= 8 blocks); above, a span block's own units. */
HM_INLINE unsigned hm_l2_page_span(unsigned cls) {
  uint32_t bs = hm_class_size[cls];
  if (hm_l2_is_span_class(cls)) return (unsigned)((bs + HM_UNIT_SIZE - 1) >> HM_UNIT_SHIFT);
  return bs <= 8192 ? 1 : 8;
}

HM_INLINE hm_l2_page *hm_l2_page_of(hm_superslab *seg, const void *p) {
  return &seg->pages[seg->pages[hm_unit_of(p)].head];
}

/* The page's area: from its head unit (after the segment header in unit 0)
 * to the end of its last unit. */
HM_INLINE uint8_t *hm_l2_page_area(hm_superslab *seg, const hm_l2_page *pg) {
  return hm_seg_area_start(seg, (unsigned)(pg - seg->pages));
}
HM_INLINE uint8_t *hm_l2_page_area_end(hm_superslab *seg, const hm_l2_page *pg) {
  return hm_seg_area_end(seg, (unsigned)(pg - seg->pages) + pg->span);
}
/* The page's first block (see "Block placement" in hakmem_internal.h). */
HM_INLINE uint8_t *hm_l2_page_start(hm_superslab *seg, const hm_l2_page *pg) {
  return hm_l2_page_area(seg, pg) + pg->origin;
}
HM_INLINE uint32_t hm_l2_block_size(const hm_l2_page *pg) { return hm_class_size[pg->cls]; }

/* Is p the start of a block this page has handed out? (one multiply) */
HM_INLINE int hm_l2_block_ok(hm_superslab *seg, const hm_l2_page *pg, const void *p) {
  if (hm_load_racy(pg->state) == HM_SLAB_UNUSED) return 0;
  return hm_block_index_ok((uintptr_t)p - (uintptr_t)hm_l2_page_start(seg, pg), pg->cls,
                           hm_load_racy(pg->bump));
}

#endif /* HAKMEM_L2_H */
