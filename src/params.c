/* params.c -- runtime parameters, read only on slow paths.
 *
 * One struct so that the learning layer can tune them later; today they come
 * from defaults and a few HAKMEM_* environment variables read at start-up
 * (the full option table arrives with the observability issue). */
#include "hakmem_internal.h"

#include <stdlib.h>

hm_params hm_param = {
  .sll_cap_bytes = 32 * 1024,
  .sll_cap_min = 4,
  .sll_cap_max = 256,
  .refill_batch_bytes = 8 * 1024,
  .refill_batch_max = 64,
  .purge_delay_ms = 1000,
  .purge_check_ticks = 256,
  .heap_keep_empty_ss = 1,
  .l2_carve_max = 16,
  .l2_cap_bytes = 128 * 1024,
  .l2_cap_max_bytes = 512 * 1024,
  .l2_batch_bytes = 128 * 1024,
  .ss_cache_max = 16,
  .large_cache_bytes = 64u << 20,
  .large_cache_count = 32,
};

static void env_u32(const char *name, uint32_t *dst, uint32_t lo, uint32_t hi) {
  const char *v = getenv(name);
  if (!v || !*v) return;
  char *end;
  unsigned long x = strtoul(v, &end, 10);
  if (*end || x < lo || x > hi) {
    hm_os_write_stderr("hakmem: warning: ignoring invalid value of ");
    hm_os_write_stderr(name);
    hm_os_write_stderr(", using the default\n");
    return;
  }
  *dst = (uint32_t)x;
}

void hm_params_init(void) {
  env_u32("HAKMEM_SLL_CAP_MAX", &hm_param.sll_cap_max, 1, 65535);
  env_u32("HAKMEM_REFILL_BATCH_MAX", &hm_param.refill_batch_max, 1, 4096);
  env_u32("HAKMEM_PURGE_DELAY_MS", &hm_param.purge_delay_ms, 0, 3600000);
  if (hm_param.sll_cap_min > hm_param.sll_cap_max) hm_param.sll_cap_min = hm_param.sll_cap_max;
}

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
