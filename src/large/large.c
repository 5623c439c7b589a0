/* large.c -- blocks above HM_SMALL_MAX: one mapping each, header first, with
 * a bounded cache of freed mappings (reused best-fit, unmapped after
 * purge_delay_ms or when the cache is over its bounds). realloc grows in place
 * with mremap when the next addresses are free, else moves the pages with
 * mremap(MREMAP_FIXED) instead of copying.
 *
 * Layout: the mapping starts at a 2 MiB aligned header chunk, marked
 * HM_REGION_LARGE in the region map; the user pointer is at hdr + user_off,
 * user_off = 64 for plain requests and the alignment for aligned ones below
 * 2 MiB. For alignments of 2 MiB and more user_off is 2 MiB: the user
 * pointer's own chunk is marked HM_REGION_LARGE_HI ("header one below"). */
#include "hakmem_internal.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#define LARGE_DEFAULT_OFF 64
#define CACHE_SLOTS 64

typedef struct cached_span {
  hm_large_hdr *hdr;
  size_t size;
  uint64_t since_ms;
} cached_span;

static pthread_mutex_t large_lock = PTHREAD_MUTEX_INITIALIZER;
static cached_span cache[CACHE_SLOTS];
static unsigned cache_n;
static size_t cache_bytes;
static size_t live_count, live_bytes;   /* under large_lock */

static size_t page_up(size_t n) { return (n + 4095) & ~(size_t)4095; }

static size_t user_off_for(size_t align) {
  if (align <= LARGE_DEFAULT_OFF) return LARGE_DEFAULT_OFF;
  if (align < HM_REGION_SIZE) return align;
  return HM_REGION_SIZE;
}

/* Pull a cached span of at least `size` bytes (and at most 1.5x, so we do
 * not pin big mappings under small requests); best fit. Lock held. */
/* Any cached span can serve: the smallest one that fits (its tail is
 * unmapped if much too long), else the largest smaller one (grown with
 * mremap). Either way the pages it has stay: a fresh mapping would fault in
 * every page the program touches. Lock held. */
static hm_large_hdr *cache_take(size_t size, size_t *got) {
  int best = -1, below = -1;
  for (unsigned i = 0; i < cache_n; i++) {
    size_t s = cache[i].size;
    if (s >= size) {
      if (best < 0 || s < cache[best].size) best = (int)i;
    } else if (below < 0 || s > cache[below].size) {
      below = (int)i;
    }
  }
  if (best < 0) best = below;
  if (best < 0) return NULL;
  hm_large_hdr *h = cache[best].hdr;
  *got = cache[best].size;
  cache_bytes -= cache[best].size;
  cache[best] = cache[--cache_n];
  return h;
}

/* Unmap spans older than the purge delay (all with force). Lock held;
 * collects them into `out` to unmap after unlocking. */
static unsigned cache_expire(int force, cached_span *out) {
  uint64_t now = hm_os_now_ms();
  unsigned k = 0;
  for (unsigned i = 0; i < cache_n;) {
    if (force || now - cache[i].since_ms >= hm_param.purge_delay_ms) {
      out[k++] = cache[i];
      cache_bytes -= cache[i].size;
      cache[i] = cache[--cache_n];
    } else {
      i++;
    }
  }
  return k;
}

/* Grow the mapping at h from old to need bytes: in place when the next
 * addresses are free, else by moving its pages (no copy) to a fresh 2 MiB
 * aligned reservation. The caller updates the region map if h moved.
 * Returns the new header or NULL (the old mapping is intact). */
static hm_large_hdr *span_grow(hm_large_hdr *h, size_t old, size_t need) {
  void *r = mremap(h, old, need, 0);
  if (r != MAP_FAILED) return h;
  void *dst = hm_os_map_aligned(need, HM_REGION_SIZE, 0);
  if (!dst) return NULL;
  r = mremap(h, old, need, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
  if (r == MAP_FAILED) {
    hm_os_unmap(dst, need);
    return NULL;
  }
  return r;
}

static void unmap_spans(cached_span *s, unsigned n) {
  for (unsigned i = 0; i < n; i++) hm_os_unmap(s[i].hdr, s[i].size);
}

static void region_mark(hm_large_hdr *h, int live) {
  if (h->user_off == HM_REGION_SIZE)
    hm_region_set((uintptr_t)h + HM_REGION_SIZE, live ? HM_REGION_LARGE_HI : HM_REGION_NONE);
  else
    hm_region_set((uintptr_t)h, live ? HM_REGION_LARGE : HM_REGION_NONE);
}

void *hm_large_alloc(size_t size, size_t align, int zero) {
  hm_process_init();   /* a process may start with a large block: options first */
  HM_DBG(hm_tls_heap, early[HAKMEM_EARLY_ALLOC_LARGE], 1);
  if (align < 16) align = 16;
  size_t off = user_off_for(align);
  if (size > PTRDIFF_MAX - off - align - HM_REGION_SIZE) {
    errno = ENOMEM;
    return NULL;
  }
  size_t need = page_up(off + size);
  hm_large_hdr *h = NULL;
  size_t map_size = need;
  int fresh = 0;
  cached_span expired[CACHE_SLOTS];
  unsigned nexp = 0;
  if (align <= HM_REGION_SIZE) {
    hm_lock(&large_lock);
    h = cache_take(need, &map_size);
    nexp = cache_expire(0, expired);
    hm_unlock(&large_lock);
    unmap_spans(expired, nexp);
    if (h && map_size < need) {
      hm_large_hdr *g = span_grow(h, map_size, need);
      if (g) {
        map_size = need;
        h = g;
      } else {
        hm_os_unmap(h, map_size);
        h = NULL;
      }
    }
  }
  if (!h) {
    map_size = need;
    /* The header chunk is 2 MiB aligned; for alignments above 2 MiB the
     * user pointer h + 2 MiB must be aligned instead. */
    if (align > HM_REGION_SIZE)
      h = hm_os_map_aligned(map_size, align, HM_REGION_SIZE);
    else
      h = hm_os_map_aligned(map_size, HM_REGION_SIZE, 0);
    if (!h) {
      errno = ENOMEM;
      return NULL;
    }
    fresh = 1;
    hm_bg_note_mapped(map_size);
  }
  h->magic = HM_LARGE_MAGIC;
  h->map_size = map_size;
  h->user_off = off;
  hm_lock(&large_lock);
  live_count++;
  live_bytes += map_size;
  hm_unlock(&large_lock);
  region_mark(h, 1);
  void *p = (uint8_t *)h + off;
  if (zero && !fresh) memset(p, 0, size);
  hm_bg_check_attention();
  return p;
}

hm_large_hdr *hm_large_hdr_of(const void *p, const char *fn) {
  uintptr_t chunk = (uintptr_t)p & ~(uintptr_t)HM_REGION_MASK;
  if (hm_region_kind_at(chunk) == HM_REGION_LARGE_HI) chunk -= HM_REGION_SIZE;
  hm_large_hdr *h = (hm_large_hdr *)chunk;
  if (h->magic != HM_LARGE_MAGIC || (uint8_t *)h + h->user_off != (const uint8_t *)p)
    hm_fatal(fn, "invalid pointer", p);
  return h;
}

size_t hm_large_usable(const void *p, const char *fn) {
  hm_large_hdr *h = hm_large_hdr_of(p, fn);
  return h->map_size - h->user_off;
}

void hm_large_free(void *p, const char *fn) {
  hm_large_hdr *h = hm_large_hdr_of(p, fn);
  size_t size = h->map_size;
  region_mark(h, 0);   /* a second free is now detected */
  h->magic = 0;
  cached_span expired[CACHE_SLOTS + 1];
  unsigned nexp = 0;
  int keep = h->user_off != HM_REGION_SIZE && size <= hm_param.large_cache_bytes / 4;
  hm_lock(&large_lock);
  live_count--;
  live_bytes -= size;
  nexp = cache_expire(0, expired);
  if (keep) {
    while (cache_n > 0 &&
           (cache_n >= hm_param.large_cache_count || cache_n >= CACHE_SLOTS ||
            cache_bytes + size > hm_param.large_cache_bytes)) {
      /* evict the oldest */
      unsigned old = 0;
      for (unsigned i = 1; i < cache_n; i++)
        if (cache[i].since_ms < cache[old].since_ms) old = i;
      expired[nexp++] = cache[old];
      cache_bytes -= cache[old].size;
      cache[old] = cache[--cache_n];
    }
    cache[cache_n++] = (cached_span){h, size, hm_os_now_ms()};
    cache_bytes += size;
  }
  hm_unlock(&large_lock);
  unmap_spans(expired, nexp);
  if (!keep) hm_os_unmap(h, size);
  hm_bg_check_attention();   /* a sleeping background thread: a span waits for its delay */
}

void *hm_large_realloc(void *p, size_t size) {
  hm_large_hdr *h = hm_large_hdr_of(p, "realloc()");
  size_t off = h->user_off;
  if (size > PTRDIFF_MAX - off - HM_REGION_SIZE) {
    errno = ENOMEM;
    return NULL;
  }
  size_t need = page_up(off + size);
  size_t old = h->map_size;
  /* Grow by at least a quarter: a buffer that grows step by step costs
   * O(log n) mremaps, not one per page. Untouched pages cost no memory. */
  if (need > old && need < old + old / 4 && old + old / 4 <= PTRDIFF_MAX - HM_REGION_SIZE)
    need = page_up(old + old / 4);
  if (need <= old) {
    if (need < old / 2) {   /* shrink: give the tail back */
      hm_os_unmap((uint8_t *)h + need, old - need);
      h->map_size = need;
      hm_lock(&large_lock);
      live_bytes -= old - need;
      hm_unlock(&large_lock);
    }
    return p;
  }
  hm_large_hdr *r = span_grow(h, old, need);
  if (!r) {
    errno = ENOMEM;
    return NULL;
  }
  if (r != h) {
    /* The old header is unmapped now: clear its map entry by address. */
    if (off == HM_REGION_SIZE) hm_region_set((uintptr_t)h + HM_REGION_SIZE, HM_REGION_NONE);
    else hm_region_set((uintptr_t)h, HM_REGION_NONE);
    h = r;
    region_mark(h, 1);
  }
  h->map_size = need;
  hm_lock(&large_lock);
  live_bytes += need - old;
  hm_unlock(&large_lock);
  return (uint8_t *)h + off;
}

/* The background thread's purge of the span cache: 1 while spans wait. */
int hm_large_cache_purge(void) {
  cached_span expired[CACHE_SLOTS];
  hm_lock(&large_lock);
  unsigned n = cache_expire(0, expired);
  int pending = cache_n != 0;
  hm_unlock(&large_lock);
  unmap_spans(expired, n);
  return pending;
}

size_t hm_large_collect(int force) {
  cached_span expired[CACHE_SLOTS];
  hm_lock(&large_lock);
  unsigned n = cache_expire(force, expired);
  hm_unlock(&large_lock);
  size_t bytes = 0;
  for (unsigned i = 0; i < n; i++) bytes += expired[i].size;
  unmap_spans(expired, n);
  return bytes;
}

/* Live large blocks are not listed: they count as resident in full; the
 * cached spans are probed with mincore (when `resident`). */
void hm_large_usage(hm_usage *u, int resident) {
  hm_lock(&large_lock);
  u->large_count = live_count;
  u->large_bytes = live_bytes;
  u->large_cached_bytes = cache_bytes;
  u->mapped += live_bytes + cache_bytes;
  u->committed_est += live_bytes + cache_bytes;
  u->in_use += live_bytes;
  u->active += live_bytes;
  if (resident) {
    u->resident += live_bytes;
    for (unsigned i = 0; i < cache_n; i++) u->resident += hm_os_resident(cache[i].hdr, cache[i].size);
  }
  hm_unlock(&large_lock);
}

void hm_large_lock(void) { hm_lock(&large_lock); }
void hm_large_unlock(void) { hm_unlock(&large_lock); }
void hm_large_reinit_lock(void) { pthread_mutex_init(&large_lock, NULL); }
