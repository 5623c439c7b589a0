/* exports.c -- the exported malloc family and glibc aliases.
 *
 * Every entry point is defined once, under its hakmem_ name (include/hakmem.h,
 * the prefixed API). The overriding libraries (HAKMEM_OVERRIDE=1, the default)
 * add malloc, free, ... and glibc's __libc_* names as aliases of those
 * definitions: the same code under a second symbol, so the standard names cost
 * nothing more. libhakmem_api (HAKMEM_OVERRIDE=0) exports only the hakmem_
 * names and serves one subsystem beside glibc's malloc; nothing in the library
 * calls malloc or free by their standard names, so its own blocks never reach
 * glibc.
 *
 * hakmem_malloc and hakmem_free are the two fast paths; everything else routes
 * through them or through the noinline helpers below. Semantics follow glibc:
 * ENOMEM + NULL on overflow and exhaustion, EINVAL for bad alignments,
 * realloc(p, 0) frees and returns NULL, malloc(0) returns a unique pointer,
 * and a pointer hakmem did not hand out ends in one line on stderr + abort. */
#include "tiny/tiny.h"
#include "l2/l2.h"
#include "superslab/superslab.h"
#include "hakmem.h"

#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAGE 4096u

#ifndef HAKMEM_OVERRIDE
#define HAKMEM_OVERRIDE 1
#endif
/* The name a fatal message gives the function the program called: "free" in
 * the overriding library, "hakmem_free" in libhakmem_api. Chosen at compile
 * time, so the fast paths do not change; only cold paths use it. */
#if HAKMEM_OVERRIDE
#define API_NAME(fn) fn
#define USABLE_SIZE_NAME "malloc_usable_size"
#else
#define API_NAME(fn) "hakmem_" fn
#define USABLE_SIZE_NAME "hakmem_usable_size"
#endif

HM_EXPORT void *hakmem_malloc(size_t n) {
  if (hm_likely(n <= HM_TINY_MAX)) return hm_small_alloc_impl(hm_tiny_class_lut[n], n, 1);
  if (hm_likely(n <= HM_SMALL_MAX)) return hm_small_alloc_impl(hm_mid_class_lut[(n + 255) >> 8], n, 1);
  return hm_large_alloc(n, 0, 0);
}

static HM_COLD void free_other(void *p, uintptr_t idx, const char *fn) {
  HM_DBG(hm_tls_heap, early[HAKMEM_EARLY_FREE_NOT_SMALL], 1);
  if (p == NULL) return;
  unsigned k = idx < HM_MAP_ENTRIES ? hm_region_map[idx] : hm_large_far_kind(p);
  if (k == HM_REGION_LARGE || k == HM_REGION_LARGE_HI) {
    hm_large_free(p, fn);
    return;
  }
  hm_fatal(fn, "invalid pointer", p);
}

/* free and its variants: one map byte says "segment", then the small fast
 * path (tiny.h); `fn` only reaches the cold paths, for the diagnostic. */
HM_INLINE void free_named(void *p, const char *fn) {
  uintptr_t idx = (uintptr_t)p >> HM_REGION_SHIFT;
  if (hm_likely(idx < HM_MAP_ENTRIES)) {
    if (hm_likely(hm_region_is_segment(hm_region_map[idx]))) {
      /* The segment from idx, not p & ~mask: one shift instead of a copy and
       * an and (the empty asm hides that idx came from p). */
      __asm__("" : "+r"(idx));
      hm_small_free(p, (hm_superslab *)(idx << HM_REGION_SHIFT), fn);
      return;
    }
  }
  free_other(p, idx, fn);
}

HM_EXPORT void hakmem_free(void *p) { free_named(p, API_NAME("free") "()"); }

/* Kind of the region holding p, or abort naming fn if p is not ours. */
static unsigned kind_of(const void *p, const char *fn) {
  uintptr_t idx = (uintptr_t)p >> HM_REGION_SHIFT;
  unsigned k = idx < HM_MAP_ENTRIES ? hm_region_map[idx] : hm_large_far_kind(p);
  if (k == HM_REGION_NONE) hm_fatal(fn, "invalid pointer", p);
  return k == HM_REGION_LARGE_HI ? HM_REGION_LARGE : k;
}

/* Usable size of a live block, validating it (a freed block is an error). */
static size_t usable_size(const void *p, const char *fn) {
  if (kind_of(p, fn) == HM_REGION_LARGE) return hm_large_usable(p, fn);
  return hm_small_live_size(hm_ss_of(p), p, fn, 0);
}

HM_EXPORT size_t hakmem_usable_size(void *p) {
  if (!p) return 0;
  return usable_size(p, USABLE_SIZE_NAME "()");
}

HM_EXPORT void *hakmem_calloc(size_t n, size_t size) {
  size_t total;
  if (hm_unlikely(__builtin_mul_overflow(n, size, &total))) {
    errno = ENOMEM;
    return NULL;
  }
  if (total > HM_SMALL_MAX) return hm_large_alloc(total, 0, 1);
  void *p = hakmem_malloc(total);
  if (hm_likely(p != NULL)) memset(p, 0, total);
  return p;
}

/* A span block (above 64 KiB) of the calling thread grows into the free
 * units after it, to the class of `want` (hm_l2_span_grow). */
static int grow_in_place(void *p, size_t want) {
  unsigned to = hm_size_class(want);
  hm_superslab *ss = hm_ss_of(p);
  hm_heap *h = hm_tls_heap;
  if (!hm_l2_is_span_class(to) || ss->kind != HM_SEG_L2 || hm_load_relaxed(&ss->owner) != h) return 0;
  hm_heap_enter(h);   /* the background handshake (hakmem_internal.h) */
  int grown = hm_l2_span_grow(h, ss, p, to);
  hm_heap_leave(h);
  return grown;
}

HM_EXPORT void *hakmem_realloc(void *p, size_t n) {
  if (p == NULL) return hakmem_malloc(n);
  if (n == 0) {
    hakmem_free(p);
    return NULL;
  }
  size_t old;
  int large = kind_of(p, API_NAME("realloc") "()") == HM_REGION_LARGE;
  if (large) {
    if (n > HM_SMALL_MAX) return hm_large_realloc(p, n);
    old = hm_large_usable(p, API_NAME("realloc") "()");
  } else {
    old = hm_small_live_size(hm_ss_of(p), p, API_NAME("realloc") "()", 0);
    if (n <= old && n >= old / 2) return p;   /* same or next-smaller class: stay */
  }
  /* A block that grows out of its class is likely to grow again (string
   * builders, vectors): give it a class of headroom, so the next few growths
   * stay in place instead of copying again. */
  size_t want = n;
  if (n > old && n <= HM_SMALL_MAX && n < old + old / 2) want = old + old / 2;
  if (want > HM_SMALL_MAX) want = n;
  /* (only a segment's block: a large block's "segment" would be its data) */
  if (!large && n > old && want <= HM_SMALL_MAX && old > hm_class_size[HM_L2_SPAN_CLASS - 1] &&
      grow_in_place(p, want))
    return p;
  void *q = hakmem_malloc(want);
  if (!q) return NULL;
  memcpy(q, p, n < old ? n : old);
  hakmem_free(p);
  return q;
}

HM_EXPORT void *hakmem_reallocarray(void *p, size_t n, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(n, size, &total)) {
    errno = ENOMEM;
    return NULL;
  }
  return hakmem_realloc(p, total);
}

/* ---- aligned allocation ------------------------------------------------------------ */
/* `align` is a power of two. Up to 64 KiB a block of a segment serves it:
 * the low 32 bits of a block's address are a multiple of its size (block
 * placement, hakmem_internal.h), so a class whose size is a multiple of
 * align is aligned to it, and a span block (above 64 KiB) starts on a unit
 * boundary. Above, a large mapping: one per block, which the kernel's
 * limit on mappings (vm.max_map_count, 65530) bounds -- below 64 KiB, each
 * such block took one too, and the 65,500th posix_memalign(8192, 100)
 * failed with ENOMEM (glibc, mimalloc, tcmalloc and jemalloc serve
 * 100,000 of them). */
static void *aligned_alloc_pow2(size_t align, size_t size) {
  if (align > 16) HM_DBG(hm_tls_heap, early[HAKMEM_EARLY_ALLOC_ALIGNED], 1);
  if (align <= 16) {
    if (align == 16 && size < 16) size = 16;
    return hakmem_malloc(size);
  }
  if (align <= HM_MAX_ALIGN_IN_SLAB && size <= HM_SMALL_MAX) {
    unsigned c = hm_size_class(size < align ? align : size);
    while (!hm_l2_is_span_class(c) && (hm_class_size[c] & (align - 1))) c++;
    return hm_small_alloc(c);
  }
  if (align > (size_t)PTRDIFF_MAX / 2) {
    errno = ENOMEM;
    return NULL;
  }
  return hm_large_alloc(size, align, 0);
}

static int pow2(size_t x) { return x && !(x & (x - 1)); }

HM_EXPORT int hakmem_posix_memalign(void **out, size_t align, size_t size) {
  if (!pow2(align) || align % sizeof(void *)) return EINVAL;
  int saved = errno;
  void *p = aligned_alloc_pow2(align, size);
  if (!p) {
    errno = saved;
    return ENOMEM;
  }
  *out = p;
  return 0;
}

HM_EXPORT void *hakmem_aligned_alloc(size_t align, size_t size) {
  if (!pow2(align)) {
    errno = EINVAL;
    return NULL;
  }
  return aligned_alloc_pow2(align, size);
}

HM_EXPORT void *hakmem_memalign(size_t align, size_t size) {
  if (align > (SIZE_MAX >> 1) + 1) {
    errno = EINVAL;
    return NULL;
  }
  if (!pow2(align)) {   /* glibc rounds a non-power-of-two up */
    size_t a = 1;
    while (a < align) a <<= 1;
    align = a;
  }
  return aligned_alloc_pow2(align, size);
}

HM_EXPORT void *hakmem_valloc(size_t size) { return aligned_alloc_pow2(PAGE, size); }

HM_EXPORT void *hakmem_pvalloc(size_t size) {
  if (size > SIZE_MAX - PAGE) {
    errno = ENOMEM;
    return NULL;
  }
  size_t rounded = (size + PAGE - 1) & ~(size_t)(PAGE - 1);
  return aligned_alloc_pow2(PAGE, rounded ? rounded : PAGE);
}

HM_EXPORT void hakmem_free_sized(void *p, size_t size) {
  (void)size;
  free_named(p, API_NAME("free_sized") "()");
}
HM_EXPORT void hakmem_free_aligned_sized(void *p, size_t align, size_t size) {
  (void)align;
  (void)size;
  free_named(p, API_NAME("free_aligned_sized") "()");
}

/* ---- the standard names: aliases of the definitions above --------------------------- */
#if HAKMEM_OVERRIDE
#pragma GCC diagnostic ignored "-Wmissing-attributes"   /* aliases need not repeat them */
#define HM_ALIAS(name, target) \
  __typeof__(target) name __attribute__((alias(#target), visibility("default")))
HM_ALIAS(malloc, hakmem_malloc);
HM_ALIAS(free, hakmem_free);
HM_ALIAS(calloc, hakmem_calloc);
HM_ALIAS(realloc, hakmem_realloc);
HM_ALIAS(reallocarray, hakmem_reallocarray);
HM_ALIAS(posix_memalign, hakmem_posix_memalign);
HM_ALIAS(aligned_alloc, hakmem_aligned_alloc);
HM_ALIAS(memalign, hakmem_memalign);
HM_ALIAS(valloc, hakmem_valloc);
HM_ALIAS(pvalloc, hakmem_pvalloc);
HM_ALIAS(malloc_usable_size, hakmem_usable_size);
HM_ALIAS(cfree, hakmem_free);
HM_ALIAS(free_sized, hakmem_free_sized);
HM_ALIAS(free_aligned_sized, hakmem_free_aligned_sized);
/* glibc's internal names, used by some programs and by LD_PRELOAD shims. */
HM_ALIAS(__libc_malloc, hakmem_malloc);
HM_ALIAS(__libc_free, hakmem_free);
HM_ALIAS(__libc_calloc, hakmem_calloc);
HM_ALIAS(__libc_realloc, hakmem_realloc);
HM_ALIAS(__libc_memalign, hakmem_memalign);
HM_ALIAS(__libc_valloc, hakmem_valloc);
HM_ALIAS(__libc_pvalloc, hakmem_pvalloc);
HM_ALIAS(__posix_memalign, hakmem_posix_memalign);

/* ---- introspection ----------------------------------------------------------------- */
/* glibc's names, so only in the overriding library. All from the statistics
 * (stats.c); glibc's fields mapped as closely as hakmem's structure allows. */
HM_EXPORT struct mallinfo2 mallinfo2(void) {
  static hakmem_stats st;   /* 4 KiB, off the stack; guarded below */
  static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
  struct mallinfo2 mi;
  memset(&mi, 0, sizeof mi);
  hm_lock(&lock);
  hm_stats_get_fast(&st);
  size_t small_held = st.allocated - st.large_bytes;            /* in the application's hands */
  size_t small_out = small_held + st.cached;                      /* ... and in thread caches */
  size_t in_segments = st.committed - st.large_bytes - st.large_cached_bytes;
  mi.arena = st.segments * HM_REGION_SIZE;                        /* non-mmapped-per-block space */
  mi.ordblks = st.segments_cached + st.segments_abandoned;        /* whole free / ownerless segments */
  mi.hblks = st.large_count;                                      /* one mapping per large block */
  mi.hblkhd = st.large_bytes;
  mi.uordblks = small_held;                                       /* small blocks allocated */
  mi.fsmblks = st.cached;                                         /* free blocks in thread caches */
  mi.fordblks = in_segments > small_out ? in_segments - small_out : 0;   /* committed, free */
  mi.keepcost = st.large_cached_bytes;                            /* releasable by malloc_trim */
  hm_unlock(&lock);
  return mi;
}

static int clamp_int(size_t v) { return v > 0x7fffffff ? 0x7fffffff : (int)v; }

HM_EXPORT struct mallinfo mallinfo(void) {
  struct mallinfo2 m = mallinfo2();
  struct mallinfo r;
  r.arena = clamp_int(m.arena);
  r.ordblks = clamp_int(m.ordblks);
  r.smblks = clamp_int(m.smblks);
  r.hblks = clamp_int(m.hblks);
  r.hblkhd = clamp_int(m.hblkhd);
  r.usmblks = clamp_int(m.usmblks);
  r.fsmblks = clamp_int(m.fsmblks);
  r.uordblks = clamp_int(m.uordblks);
  r.fordblks = clamp_int(m.fordblks);
  r.keepcost = clamp_int(m.keepcost);
  return r;
}

/* hakmem has no per-arena thresholds that glibc's mallopt knobs map onto;
 * 0 tells the caller the setting was not applied (glibc's "error"). */
HM_EXPORT int mallopt(int param, int value) {
  (void)param;
  (void)value;
  return 0;
}

/* Everything free goes back to the OS now (hakmem_collect(1)); 1 if any
 * memory was released, as glibc. */
HM_EXPORT int malloc_trim(size_t pad) {
  (void)pad;
  return hakmem_collect(1) > 0;
}

/* glibc prints its arenas to stderr; hakmem prints its statistics. */
HM_EXPORT void malloc_stats(void) { hakmem_stats_print(); }
#endif /* HAKMEM_OVERRIDE */

HM_EXPORT const char *hakmem_version(void) { return "0.1.0"; }
