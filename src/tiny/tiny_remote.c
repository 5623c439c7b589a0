/* tiny_remote.c -- free of a block of another heap's segment (Tiny slab or
 * L2 page): validate it, then push it onto the target's lock-free remote
 * list (one CAS; see the remote-free protocols in hakmem_internal.h).
 *
 * Batching these pushes on the freeing side (chains per target, one CAS per
 * chain) was tried and dropped: a thread that frees a burst and goes idle
 * keeps its last chains, so the owner cannot reuse that memory. Keeping
 * foreign blocks in the freeing thread's bin (tcmalloc's way) was tried too:
 * docs/analysis/handoff-footprint.md, fifth session. */
#include "tiny/tiny.h"
#include "l2/l2.h"
#include "superslab/superslab.h"

void hm_remote_free(hm_superslab *ss, void *p, const char *fn) {
  hm_block *b = (hm_block *)p;
  hm_small_live_size(ss, p, fn, 1);
  b->mark = hm_free_mark(p);   /* before the push publishes the block */
  if (ss->kind == HM_SEG_L2) hm_l2_remote_push(ss, hm_l2_page_of(ss, p), b, b);
  else hm_slab_remote_push(ss, hm_slab_of(ss, p), b, b);
  hm_bg_check_attention();   /* the owner may sleep: the background thread collects */
}
