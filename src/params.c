/* params.c -- parameters derived from hm_param (the struct is declared in
 * hakmem_internal.h; its defaults, ranges and the HAKMEM_* environment
 * variables that set it are the one table in options.c). Read only on slow
 * paths: a thread's bin capacities and refill batches are computed here when
 * its heap is created (or re-applied, hm_heap_apply_params). */
#include "hakmem_internal.h"

static uint32_t clamp_u32(uint32_t v, uint32_t lo, uint32_t hi) {
  return v < lo ? lo : v > hi ? hi : v;
}

uint32_t hm_params_bin_cap(unsigned cls) {
  uint32_t bytes = cls < HM_TINY_CLASSES ? hm_param.sll_cap_bytes : hm_param.l2_cap_bytes;
  return clamp_u32(bytes / hm_class_size[cls], hm_param.sll_cap_min, hm_param.sll_cap_max);
}

/* The most a bin may grow to (L2 bins start at hm_params_bin_cap and double
 * each time they overflow, like a TCP slow start). */
uint32_t hm_params_bin_cap_max(unsigned cls) {
  if (cls < HM_TINY_CLASSES) return hm_params_bin_cap(cls);
  return clamp_u32(hm_param.l2_cap_max_bytes / hm_class_size[cls], hm_param.sll_cap_min,
                   hm_param.sll_cap_max);
}

uint32_t hm_params_refill_batch(unsigned cls) {
  uint32_t bytes = cls < HM_TINY_CLASSES ? hm_param.refill_batch_bytes : hm_param.l2_batch_bytes;
  uint32_t b = clamp_u32(bytes / hm_class_size[cls], 1, hm_param.refill_batch_max);
  uint32_t cap = hm_params_bin_cap(cls);
  return b > cap ? cap : b;
}
