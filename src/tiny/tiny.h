/* tiny.h -- the inline fast paths of the superslab engine (Tiny and the
 * interim medium classes): pop from / push onto the thread's TLS SLL.
 *
 * No locks, no atomics, no initialised-check: a thread without a heap points
 * at hm_heap_empty, whose bins are empty with no room, so both paths miss into
 * their noinline slow path, which creates the heap. */
#ifndef HAKMEM_TINY_H
#define HAKMEM_TINY_H

#include "hakmem_internal.h"

/* malloc fast path for class `cls`. */
HM_INLINE void *hm_small_alloc(unsigned cls) {
  hm_heap *h = hm_tls_heap;
  hm_block *b = h->head[cls];
  if (hm_unlikely(b == NULL)) return hm_small_alloc_slow(cls);
  h->head[cls] = b->next;
  h->room[cls]++;
  HM_DBG_FAST(h->dbg.alloc_tls_sll++);   /* nothing unless HAKMEM_DEBUG_COUNTERS */
  return b;
}

/* free fast path for a block `p` of superslab `ss`: a block of our own
 * superslab goes onto the TLS SLL while there is room; everything else
 * (full bin, other owner, unassigned unit) takes the slow path. */
HM_INLINE void hm_small_free(void *p, hm_superslab *ss) {
  hm_heap *h = hm_tls_heap;
  size_t cls = ss->slabs[hm_unit_of(p)].cls;
  hm_block *head = h->head[cls];
  uint32_t room = h->room[cls];
  /* owner is read plainly (a relaxed load) so that it folds into the compare;
   * only the owner thread ever stores its own heap there. head != p catches
   * the immediate double free (free(p); free(p)) for one compare. */
  if (hm_likely(ss->owner_plain == h && room != 0 && head != p)) {
    ((hm_block *)p)->next = head;
    h->head[cls] = (hm_block *)p;
    h->room[cls] = room - 1;
    HM_DBG_FAST(h->dbg.free_tls_sll++);
    return;
  }
  hm_small_free_slow(p);   /* recomputes what it needs: no argument shuffling here */
}

#endif /* HAKMEM_TINY_H */
