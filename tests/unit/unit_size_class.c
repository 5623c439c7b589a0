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
  /* Sizes strictly increase; every class above 8 B is a multiple of 16. */
  for (unsigned c = 0; c < HM_NUM_CLASSES; c++) {
    if (c) CHECK(hm_class_size[c] > hm_class_size[c - 1], "class %u not increasing", c);
    if (hm_class_size[c] > 8) CHECK(hm_class_size[c] % 16 == 0, "class %u size %u not 16-aligned", c, hm_class_size[c]);
  }
  CHECK(hm_class_size[0] == 8, "smallest class is %u, want 8", hm_class_size[0]);
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
  for (unsigned c = 9; c < HM_NUM_CLASSES; c++)
    CHECK((hm_class_size[c] - hm_class_size[c - 1]) * 4 <= hm_class_size[c - 1],
          "class %u grows by more than 25%%", c);

  /* Slab / page spans: within a superslab, and >= 7 blocks per slab or page
   * (Tiny classes: one-unit slabs; medium classes: L2 pages). */
  for (unsigned c = 0; c < HM_NUM_CLASSES; c++) {
    unsigned span = c < HM_TINY_CLASSES ? HM_TINY_SLAB_UNITS : hm_l2_page_span(c);
    CHECK(span >= 1 && span < HM_UNITS, "class %u span %u", c, span);
    size_t area = (size_t)span * HM_UNIT_SIZE - HM_SS_HEADER_SIZE;
    CHECK(area / hm_class_size[c] >= 7, "class %u: only %zu blocks per slab", c, area / hm_class_size[c]);
  }
  if (failures) {
    fprintf(stderr, "unit_size_class: %d failure(s)\n", failures);
    return 1;
  }
  puts("unit_size_class: PASSED");
  return 0;
}
