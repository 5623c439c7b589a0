/* params.c -- parameters derived from hm_param (the struct is declared in
 * hakmem_internal.h; its defaults, ranges and the HAKMEM_* environment
 * variables that set it are the one table in options.c). Read only on slow
 * paths: a thread's bin capacities and refill batches are computed here when
 * its heap is created, and again when the learner publishes new values
 * (hm_heap_adopt_params, at the heap's next slow-path tick) or an option is
 * set (hm_heap_apply_params).
 *
 * A class's capacity and refill batch are the options' (bytes / block
 * size, clamped to SLL_CAP_MIN..SLL_CAP_MAX and REFILL_BATCH_MAX) scaled by
 * 2^cap_shift[class]: the learner's ACE sets the shifts (src/learn/ace.c);
 * 0, the static value, otherwise. */
#include "hakmem_internal.h"

_Atomic uint32_t hm_param_gen;

static uint32_t clamp_u32(uint32_t v, uint32_t lo, uint32_t hi) {
  return v < lo ? lo : v > hi ? hi : v;
}

/* Bins count blocks in 32 bits, but one class never holds more than this. */
#define CAP_LIMIT 65535u

static uint32_t scaled(uint32_t blocks, int shift) {
  uint64_t v = shift >= 0 ? (uint64_t)blocks << shift : blocks >> -shift;
  return v < 1 ? 1 : v > CAP_LIMIT ? CAP_LIMIT : (uint32_t)v;
}

static int shift_of(unsigned cls) { return __atomic_load_n(&hm_param.cap_shift[cls], __ATOMIC_RELAXED); }

static uint32_t base_cap(unsigned cls) {
  uint32_t bytes = cls < HM_TINY_CLASSES ? HM_PARAM(sll_cap_bytes) : HM_PARAM(l2_cap_bytes);
  return clamp_u32(bytes / hm_class_size[cls], HM_PARAM(sll_cap_min), HM_PARAM(sll_cap_max));
}

static uint32_t base_cap_max(unsigned cls) {
  uint32_t bytes = cls < HM_TINY_CLASSES ? HM_PARAM(sll_grow_bytes) : HM_PARAM(l2_cap_max_bytes);
  uint32_t max = clamp_u32(bytes / hm_class_size[cls], HM_PARAM(sll_cap_min), HM_PARAM(sll_cap_max));
  uint32_t start = base_cap(cls);
  return max > start ? max : start;   /* growth bytes below the start: no growth */
}

uint32_t hm_params_bin_cap(unsigned cls) { return scaled(base_cap(cls), shift_of(cls)); }

/* The most a bin may grow to (bins start at hm_params_bin_cap and double
 * each time they overflow, like a TCP slow start). */
uint32_t hm_params_bin_cap_max(unsigned cls) { return scaled(base_cap_max(cls), shift_of(cls)); }

/* The same with another shift: what the learner's budget counts. */
uint32_t hm_params_bin_cap_max_shifted(unsigned cls, int shift) {
  return scaled(base_cap_max(cls), shift);
}

/* A refill brings the options' batch, scaled with the class's capacity
 * (a class ACE grew takes proportionally fewer, larger refills), never
 * more than the capacity. */
uint32_t hm_params_refill_batch(unsigned cls) {
  uint32_t bytes = cls < HM_TINY_CLASSES ? HM_PARAM(refill_batch_bytes) : HM_PARAM(l2_batch_bytes);
  uint32_t b = scaled(clamp_u32(bytes / hm_class_size[cls], 1, HM_PARAM(refill_batch_max)), shift_of(cls));
  uint32_t cap = hm_params_bin_cap(cls);
  return b > cap ? cap : b;
}
