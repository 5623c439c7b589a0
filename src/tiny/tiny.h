/* tiny.h -- the inline fast paths of the small front, shared by the Tiny
 * slabs and the L2 pages: pop from / push onto the thread's TLS SLL bin of
 * the block's class.
 *
 * No locks, no atomics, no initialised-check: a thread without a heap points
 * at hm_heap_empty, whose bins are empty with no room, so both paths miss into
 * their noinline slow path, which creates the heap. */
#ifndef HAKMEM_TINY_H
#define HAKMEM_TINY_H

#include "hakmem_internal.h"

/* malloc fast path for class `cls`. Word 1 of the block held its free mark:
 * clearing it makes the block live (hakmem_internal.h, "the free mark").
 * malloc itself passes its request `n` too (by_size 1): its slow path then
 * takes n, still in the first argument register, and finds the class again,
 * so that the fast path does not move cls there for a call it rarely makes. */
HM_INLINE void *hm_small_alloc_impl(unsigned cls, size_t n, int by_size) {
  hm_heap *h = hm_tls_heap;
  hm_block *b = h->head[cls];
  if (hm_unlikely(b == NULL)) return by_size ? hm_small_alloc_slow_size(n) : hm_small_alloc_slow(cls);
  hm_block *next;
#if HM_SECURE_BUILD
  /* A bad link is a tail call, so that the fast path needs no stack frame
   * (a call to the noreturn report would). */
  if (hm_unlikely(!hm_link_pop_ok(b, &next))) return hm_small_alloc_bad_link(b);
#else
  next = b->next;
#endif
  h->head[cls] = next;
  h->room[cls]++;
  b->mark = 0;
  HM_DBG_FAST(h->dbg.alloc_tls_sll++);   /* nothing unless HAKMEM_DEBUG_COUNTERS */
  return b;
}
HM_INLINE void *hm_small_alloc(unsigned cls) { return hm_small_alloc_impl(cls, 0, 0); }

/* free fast path for a pointer `p` into segment `ss`, called by `fn` (named
 * in the diagnostic if p is bad). The block goes onto the TLS SLL when all
 * of these hold, else the slow path decides (remote free, full bin, or a
 * diagnostic):
 *   - the segment is ours: owner is read plainly (HM_OWNER_PLAIN: only the
 *     owner thread ever stores its own heap there) so it folds into the compare;
 *   - p is the start of a block of its page's class: the low 32 bits of p are
 *     a multiple of the size (block placement; header pages and unassigned
 *     units have class NONE, whose multiplier 0 always fails);
 *   - p does not carry its free mark (not freed already, wherever it sits);
 *   - the bin has room (room, decremented, is still >= 0).
 * The block check comes before word 1 is read: a misaligned p near the end
 * of the segment must not be dereferenced. */
HM_INLINE void hm_small_free(void *p, hm_superslab *ss, const char *fn) {
  hm_heap *h = hm_tls_heap;
  size_t cls = ss->page_cls[hm_page_of(p)];
  uint64_t mark = hm_free_mark(p);
  uint64_t prod = (uint32_t)(uintptr_t)p;
#if defined(__x86_64__)
  /* The multiplier as a memory operand of both the multiply and the compare:
   * no register load (gcc would load it once for the two uses). */
  __asm__("imulq %1, %0" : "+r"(prod) : "m"(h->block_mult[cls]));
#else
  prod *= h->block_mult[cls];
#endif
  if (hm_likely(HM_OWNER_PLAIN(ss) == h && prod < h->block_mult[cls] &&
                ((hm_block *)p)->mark != mark)) {
    /* Decrement first, test the sign: one read-modify-write and a branch. A
     * full bin is left at -1 for the slow path, which restores it. */
    if (hm_likely((int64_t)--h->room[cls] >= 0)) {
      hm_link_set((hm_block *)p, h->head[cls]);
      ((hm_block *)p)->mark = mark;
      h->head[cls] = (hm_block *)p;
      HM_DBG_FAST(h->dbg.free_tls_sll++);
      return;
    }
  }
  hm_small_free_slow(p, fn);   /* recomputes what it needs */
}

#endif /* HAKMEM_TINY_H */
