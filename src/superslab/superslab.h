/* superslab.h -- owner-side slab bookkeeping shared by the refill, flush and
 * superslab code: the heap's partial lists and the return of one block to
 * its slab. Only the owning thread calls these. */
#ifndef HAKMEM_SUPERSLAB_H
#define HAKMEM_SUPERSLAB_H

#include "hakmem_internal.h"

#include <string.h>


HM_INLINE void hm_partial_push(hm_heap *h, hm_slab *s) {
  hm_slab *head = h->partial[s->cls];
  s->prev = NULL;
  s->next = head;
  if (head) head->prev = s;
  h->partial[s->cls] = s;
  hm_store_racy(s->state, HM_SLAB_PARTIAL);
}

HM_INLINE void hm_partial_remove(hm_heap *h, hm_slab *s) {
  if (s->prev) s->prev->next = s->next;
  else h->partial[s->cls] = s->next;
  if (s->next) s->next->prev = s->prev;
  s->next = s->prev = NULL;
}

/* Is p the start of a block that slab s has handed out? */
HM_INLINE int hm_slab_owns_block(const hm_slab *s, const void *p) {
  const uint8_t *b = (const uint8_t *)p;
  uint8_t *start = s->end - (size_t)s->capacity * s->block_size;
  if (hm_load_racy(s->state) == HM_SLAB_UNUSED || b >= hm_load_racy(s->bump)) return 0;
  return hm_block_index_ok((uintptr_t)(b - start), s->cls, s->capacity);
}

/* The owner takes block b back into slab s (after a flush or a remote
 * drain). A slab that empties stays assigned to its class, on the partial
 * list, with its free list whole: a batch loop that empties its slabs and
 * fills them again reuses them without carving them afresh (as L2 keeps its
 * empty pages). hm_tiny_release_empty gives them up: at the heap's purge,
 * when the heap needs units for another slab, and at thread exit; a remote
 * drain that empties a slab releases it at once (hm_ss_drain_remote). */
HM_INLINE void hm_slab_return_block(hm_heap *h, hm_slab *s, hm_block *b) {
  if (hm_unlikely(s->used == 0)) hm_fatal("free()", "double free detected", b);
  hm_link_set(b, s->free);
  s->free = b;
  /* An emptied listed slab is worth a look by hm_ss_slab_new (the active
   * slab is not one it would release). */
  if (--s->used == 0 && s->state != HM_SLAB_ACTIVE) h->tiny_emptied = 1;
  if (s->state == HM_SLAB_FULL) hm_partial_push(h, s);
}

#endif /* HAKMEM_SUPERSLAB_H */
