/* unit_size_class -- the size-class tables agree with each other and with
 * the documented rules (linked against the static library's internals). */
#include "hakmem_internal.h"
#include "l2/l2.h"

#include <stdio.h>
#include <stdlib.h>

static int failures;
#define CHECK(c, ...)                                   \
  do {                                                  \
    if (!(c)) {                                         \
      fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
      fprintf(stderr, __VA_ARGS__);                     \
      fputc('\n', stderr);                              \
      failures++;                                       \
    }                                                   \
  } while (0)

int main(void) {
  /* Sizes strictly increase; every class is a multiple of 16 (16-byte
   * alignment, and room for a free block's link and free mark). */
  for (unsigned c = 0; c < HM_NUM_CLASSES; c++) {
    if (c) CHECK(hm_class_size[c] > hm_class_size[c - 1], "class %u not increasing", c);
    CHECK(hm_class_size[c] % 16 == 0, "class %u size %u not 16-aligned", c, hm_class_size[c]);
  }
  CHECK(hm_class_size[0] == HM_MIN_BLOCK, "smallest class is %u, want %u", hm_class_size[0], HM_MIN_BLOCK);

  /* free()'s block check: n * mult < mult exactly for the multiples of the
   * class size, for every 32-bit n (all n below 2^20, then samples spread
   * over the range and the neighbours of multiples near 2^32). */
  hm_class_div_init();
  CHECK(hm_class_mult[HM_CLASS_NONE] == 0, "class NONE must fail the block check");
  for (unsigned c = 0; c < HM_NUM_CLASSES && failures < 20; c++) {
    /* a span block's start is a multiple of HM_SPAN_ALIGN, not of its size */
    uint64_t m = hm_class_mult[c], bs = hm_l2_is_span_class(c) ? HM_SPAN_ALIGN : hm_class_size[c];
    for (uint64_t n = 0; n < (1u << 20); n++)
      if ((n * m < m) != (n % bs == 0)) {
        CHECK(0, "class %u: block check wrong for n=%llu", c, (unsigned long long)n);
        break;
      }
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < 200000; i++) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      uint64_t n = (i & 1) ? (x & 0xffffffffu) : ((0xffffffffu / bs - (x % 64)) * bs + (x >> 40) % 3 - 1) & 0xffffffffu;
      if ((n * m < m) != (n % bs == 0)) {
        CHECK(0, "class %u: block check wrong for n=%llu", c, (unsigned long long)n);
        break;
      }
    }
  }
  /* Block placement: the origin is the first address >= area whose low 32
   * bits are a multiple of the size. */
  for (unsigned c = 0; c < HM_NUM_CLASSES; c++) {
    uint32_t bs = hm_class_size[c];
    for (uintptr_t area = 0x7f0000000000ull + 4096; area < 0x7f0000000000ull + (8u << 20); area += 61440 + 4096) {
      uint8_t *o = hm_block_origin((uint8_t *)area, bs);
      CHECK((uintptr_t)o >= area && (uintptr_t)o - area < bs && (uint32_t)(uintptr_t)o % bs == 0,
            "class %u: origin %p for area %p", c, (void *)o, (void *)area);
    }
  }
  CHECK(hm_class_size[HM_TINY_CLASSES - 1] == HM_TINY_MAX, "last tiny class %u", hm_class_size[HM_TINY_CLASSES - 1]);
  CHECK(hm_class_size[HM_NUM_CLASSES - 1] == HM_SMALL_MAX, "last class %u", hm_class_size[HM_NUM_CLASSES - 1]);

  /* hm_size_class(n) is the smallest class that fits n, for every size. */
  for (size_t n = 0; n <= HM_SMALL_MAX; n++) {
    unsigned c = hm_size_class(n);
    CHECK(c < HM_NUM_CLASSES, "size %zu -> class %u out of range", n, c);
    if (c >= HM_NUM_CLASSES) break;
    CHECK(hm_class_size[c] >= n, "size %zu -> class %u of %u bytes", n, c, hm_class_size[c]);
    CHECK(c == 0 || hm_class_size[c - 1] < n, "size %zu -> class %u but class %u (%u B) fits", n, c,
          c - 1, hm_class_size[c - 1]);
    if (failures > 20) break;
  }

  /* At most 25% internal waste above 128 B (about four classes per doubling). */
  for (unsigned c = 8; c < HM_NUM_CLASSES; c++)
    CHECK((hm_class_size[c] - hm_class_size[c - 1]) * 4 <= hm_class_size[c - 1],
          "class %u grows by more than 25%%", c);

  /* Slab / page spans: within a superslab, and >= 7 blocks per slab or page
   * (Tiny classes: one-unit slabs; medium classes: L2 pages) wherever the
   * block placement puts the first block -- except a page in unit 0 (after
   * the header), which may hold one block less (>= 6); L2 places multi-unit
   * pages elsewhere when it can. Segments are 2 MiB aligned: sample many.
   * A span block's page is its own block, from a unit boundary after unit 0:
   * its units hold it exactly, with less than a unit to spare. */
  for (unsigned c = 0; c < HM_NUM_CLASSES; c++) {
    unsigned span = c < HM_TINY_CLASSES ? HM_TINY_SLAB_UNITS : hm_l2_page_span(c);
    CHECK(span >= 1 && span < HM_UNITS, "class %u span %u", c, span);
    uint32_t bs = hm_class_size[c];
    if (hm_l2_is_span_class(c)) {
      CHECK((size_t)span * HM_UNIT_SIZE >= bs && (size_t)span * HM_UNIT_SIZE - bs < HM_UNIT_SIZE,
            "class %u: span of %u units for %u bytes", c, span, bs);
      CHECK(c > HM_TINY_CLASSES && hm_class_size[c - 1] >= HM_UNIT_SIZE,
            "class %u: span blocks of a size below a unit", c);
      continue;
    }
    for (uintptr_t seg = 0x7f0000000000ull; seg < 0x7f0000000000ull + 97 * HM_REGION_SIZE; seg += HM_REGION_SIZE)
      for (unsigned u = 0; u + span <= HM_UNITS; u++) {
        uint8_t *area = (uint8_t *)seg + (size_t)u * HM_UNIT_SIZE + (u == 0 ? HM_SS_HEADER_SIZE : 0);
        uint8_t *end = (uint8_t *)seg + (size_t)(u + span) * HM_UNIT_SIZE;
        size_t cap = (size_t)(end - hm_block_origin(area, bs)) / bs;
        CHECK(cap >= (u == 0 ? 6u : 7u), "class %u: only %zu blocks in a slab/page at unit %u of %p", c, cap, u, (void *)seg);
        if (failures > 20) goto done;
      }
  }
done:
  if (failures) {
    fprintf(stderr, "unit_size_class: %d failure(s)\n", failures);
    return 1;
  }
  puts("unit_size_class: PASSED");
  return 0;
}
