/* region_map.c -- the address-space map: one byte per 2 MiB chunk of
 * [0, HM_ARENA_HI), the range that holds hakmem's mapping window, telling
 * which kind of hakmem region has its header at that chunk base (see
 * "Address space" in hakmem_internal.h). It lives in .bss: 2 MiB of virtual
 * zero pages, of which only the pages covering our regions are ever written,
 * so a lookup of any foreign pointer reads a shared zero page and costs no
 * memory. */
#include "hakmem_internal.h"

uint8_t hm_region_map[HM_MAP_ENTRIES] __attribute__((aligned(4096)));
