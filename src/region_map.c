/* region_map.c -- the address-space map: one byte per 2 MiB chunk of
 * [0, HM_ARENA_HI), the range that holds hakmem's mapping window, telling
 * which kind of hakmem region has its header at that chunk base (see
 * "Address space" in hakmem_internal.h). It lives in .bss: 2 MiB of virtual
 * zero pages, of which only the pages covering our regions are ever written,
 * so a lookup of any foreign pointer reads a shared zero page and costs no
 * memory. */
#include "hakmem_internal.h"

uint8_t hm_region_map[HM_MAP_ENTRIES] __attribute__((aligned(4096)));

/* Any block start hakmem hands out has a region header at its chunk base
 * (HM_REGION_SS, HM_REGION_L2, HM_REGION_LARGE) or is a 2 MiB aligned large
 * block (HM_REGION_LARGE_HI). */
HM_EXPORT int hakmem_owns(const void *p) {
  uintptr_t idx = (uintptr_t)p >> HM_REGION_SHIFT;
  return p != NULL && idx < HM_MAP_ENTRIES &&
         __atomic_load_n(&hm_region_map[idx], __ATOMIC_RELAXED) != HM_REGION_NONE;
}
