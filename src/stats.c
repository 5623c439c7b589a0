/* stats.c -- statistics: per-class counts kept on the slow paths, their
 * merge over thread heaps, the public hakmem_stats_get/print/collect API,
 * and the HAKMEM_STATS=1 report at exit. Never on a fast path; never
 * allocates (reports are formatted into a fixed buffer and written with
 * write(2)).
 *
 * Where the numbers come from:
 *   per heap (hm_heap_stats, hakmem_internal.h): blocks into a bin by refill,
 *     out of it by flush, remote frees drained -- stored by the owner alone,
 *     as relaxed atomics (count() below);
 *     an exiting heap adds them into `merged` under the heap registry lock;
 *   per class, process-wide: blocks out of the slabs/pages and their peak,
 *     one relaxed atomic add per refill/flush/drain (not per block);
 *   on request: a scan of the segments (used counts, committed and resident
 *     units) and of the large blocks, and the live heaps' bin lengths. */
#include "hakmem_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static hm_heap_stats merged;   /* exited heaps; under the heap registry lock */

/* Blocks out of the slabs/pages per class, and the peak: own cache lines. */
static struct {
  _Atomic int64_t out;
  _Atomic int64_t peak;
} __attribute__((aligned(64))) class_out[HM_NUM_CLASSES];

#ifdef HAKMEM_DEBUG_COUNTERS
hm_dbg_counters hm_dbg_global;
#endif

_Static_assert(HM_NUM_CLASSES == HAKMEM_NUM_CLASSES, "public class count");

static void out_add(unsigned cls, int64_t n) {
  int64_t now = atomic_fetch_add_explicit(&class_out[cls].out, n, memory_order_relaxed) + n;
  if (n <= 0) return;
  int64_t peak = atomic_load_explicit(&class_out[cls].peak, memory_order_relaxed);
  while (now > peak && !atomic_compare_exchange_weak_explicit(&class_out[cls].peak, &peak, now,
                                                              memory_order_relaxed,
                                                              memory_order_relaxed)) {
  }
}

/* field += n by the heap's owner, its only writer. The background thread
 * (heap_activity) and hakmem_stats_get read the counters while the owner
 * runs, so the store is a relaxed atomic: the same mov on x86, and no data
 * race for the C memory model (or ThreadSanitizer). */
static inline void count(uint64_t *field, uint64_t n) {
  __atomic_store_n(field, *field + n, __ATOMIC_RELAXED);
}

void hm_stats_refill(hm_heap *h, unsigned cls, uint32_t n) {
  count(&h->stats.refill_blocks[cls], n);
  count(&h->stats.refills[cls], 1);
  out_add(cls, n);
}

void hm_stats_flush(hm_heap *h, unsigned cls, uint32_t n) {
  count(&h->stats.flush_blocks[cls], n);
  count(&h->stats.flushes[cls], 1);
  out_add(cls, -(int64_t)n);
}

void hm_stats_drained(hm_heap *h, unsigned cls, uint32_t n) {
  count(&h->stats.remote_blocks[cls], n);
  out_add(cls, -(int64_t)n);
}

static void add_counts(uint64_t *dst, const uint64_t *src, size_t words, int relaxed_src) {
  for (size_t i = 0; i < words; i++)
    dst[i] += relaxed_src ? __atomic_load_n(&src[i], __ATOMIC_RELAXED) : src[i];
}

/* Thread exit, registry lock held: the heap's counts join the totals. */
void hm_stats_heap_exit(hm_heap *h) {
  add_counts((uint64_t *)&merged, (const uint64_t *)&h->stats, sizeof merged / 8, 0);
#ifdef HAKMEM_DEBUG_COUNTERS
  uint64_t *g = (uint64_t *)&hm_dbg_global;
  const uint64_t *d = (const uint64_t *)&h->dbg;
  for (size_t i = 0; i < sizeof h->dbg / 8; i++) __atomic_fetch_add(&g[i], d[i], __ATOMIC_RELAXED);
  memset(&h->dbg, 0, sizeof h->dbg);
#endif
  memset(&h->stats, 0, sizeof h->stats);
}

static size_t process_rss(void) {
  char buf[128];
  int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return 0;
  buf[n] = 0;
  char *p = buf;
  while (*p && *p != ' ') p++;   /* skip "size" */
  return (size_t)strtoull(p, NULL, 10) * 4096;
}

/* Everything but the scan of the segments. */
static HM_RACY_READER void gather(hakmem_stats *st, int resident) {
  hm_process_init();
  memset(st, 0, sizeof *st);
  static hm_heap_stats sum;   /* 2 KiB: off the stack; under the registry lock */
  uint64_t cached[HM_NUM_CLASSES] = {0};

  hm_heap_registry_lock();
  sum = merged;
#ifdef HAKMEM_DEBUG_COUNTERS
  add_counts((uint64_t *)&st->debug, (const uint64_t *)&hm_dbg_global, sizeof st->debug / 8, 1);
#endif
  for (hm_heap *h = hm_heap_registry_first(); h; h = h->all_next) {
    if (!__atomic_load_n(&h->live, __ATOMIC_RELAXED)) continue;
    st->heaps++;
    /* Other threads keep running: their counters are read as they are. */
    add_counts((uint64_t *)&sum, (const uint64_t *)&h->stats, sizeof sum / 8, 1);
#ifdef HAKMEM_DEBUG_COUNTERS
    add_counts((uint64_t *)&st->debug, (const uint64_t *)&h->dbg, sizeof st->debug / 8, 1);
#endif
    for (unsigned c = 0; c < HM_NUM_CLASSES; c++) {
      uint64_t cap = HM_RACY_LOAD(h->cap[c]);
      uint64_t room = HM_RACY_LOAD(h->room[c]);   /* -1 for a moment: full */
      cached[c] += room < cap ? cap - room : (int64_t)room < 0 ? cap : 0;
    }
  }
  hm_heap_registry_unlock();

  hm_usage u;
  memset(&u, 0, sizeof u);
  hm_ss_usage(&u, resident);
  hm_large_usage(&u, resident);

  hm_heap *me = hm_tls_heap;
  size_t live_bytes = 0, cached_bytes = 0;
  for (unsigned c = 0; c < HM_NUM_CLASSES; c++) {
    hakmem_class_stats *k = &st->classes[c];
    size_t bs = hm_class_size[c];
    k->block_size = bs;
    k->allocated = sum.refill_blocks[c];
    k->remote_freed = sum.remote_blocks[c];
    k->freed = sum.flush_blocks[c] + sum.remote_blocks[c];
    k->refills = sum.refills[c];
    k->flushes = sum.flushes[c];
    k->cached = cached[c];
    uint64_t out = k->allocated > k->freed ? k->allocated - k->freed : 0;
    k->live = out > k->cached ? out - k->cached : 0;
    k->blocks_out = u.class_out[c];
    k->current_bytes = out * bs;
    int64_t peak = atomic_load_explicit(&class_out[c].peak, memory_order_relaxed);
    k->peak_bytes = peak > 0 ? (size_t)peak * bs : 0;
    if (k->peak_bytes < k->current_bytes) k->peak_bytes = k->current_bytes;
    k->cache_cap = me != &hm_heap_empty ? me->cap[c] : 0;
    live_bytes += k->live * bs;
    cached_bytes += k->cached * bs;
    st->remote_frees += k->remote_freed;
  }
  st->allocated = live_bytes + u.large_bytes;
  st->cached = cached_bytes;
  st->active = u.active;
  st->committed = u.committed_est;
  st->resident = u.resident;
  st->mapped = u.mapped;
  st->segments = u.superslabs;
  st->segments_tiny = u.seg_kind[HM_SEG_TINY];
  st->segments_l2 = u.seg_kind[HM_SEG_L2];
  st->segments_abandoned = u.abandoned;
  st->segments_cached = u.cached_ss;
  st->large_count = u.large_count;
  st->large_bytes = u.large_bytes;
  st->large_cached_bytes = u.large_cached_bytes;
  st->process_resident = resident ? process_rss() : 0;
#ifdef HAKMEM_DEBUG_COUNTERS
  st->debug_counters = 1;
#endif
  hm_bg_stats(&st->background);
}

HM_EXPORT void hakmem_stats_get(hakmem_stats *st) {
  if (st) gather(st, 1);
}

/* Cheaper figures for mallinfo2/malloc_stats: no mincore. */
void hm_stats_get_fast(hakmem_stats *st) { gather(st, 0); }

/* ---- the report --------------------------------------------------------------------- */
/* Lines are formatted with snprintf into a fixed buffer (no allocation for
 * these conversions) and written with write(2). */
typedef struct outbuf { char b[4096]; size_t n; int fd; } outbuf;

static void ob_flush(outbuf *o) {
  const char *p = o->b;
  size_t n = o->n;
  while (n) {
    ssize_t w = write(o->fd, p, n);
    if (w <= 0) {
      if (w < 0 && errno == EINTR) continue;
      break;
    }
    p += w;
    n -= (size_t)w;
  }
  o->n = 0;
}

__attribute__((format(printf, 2, 3))) static void ob_printf(outbuf *o, const char *fmt, ...) {
  va_list ap;
  if (o->n > sizeof o->b - 512) ob_flush(o);
  va_start(ap, fmt);
  int k = vsnprintf(o->b + o->n, sizeof o->b - o->n, fmt, ap);
  va_end(ap);
  if (k > 0) o->n += (size_t)k < sizeof o->b - o->n ? (size_t)k : sizeof o->b - o->n - 1;
}

static const char *const stage_names[HAKMEM_REFILL_STAGES] = {
    "bump", "freelist", "partial", "remote", "new_slab", "adopt", "cache", "os"};
static const char *const early_names[HAKMEM_EARLY_REASONS] = {
    "alloc_empty", "alloc_no_heap", "alloc_large", "alloc_aligned",
    "free_full",   "free_foreign",  "free_no_heap", "free_not_small"};

static void print_stats(const hakmem_stats *st, int fd) {
  static outbuf o;   /* off the stack; reports are rare */
  static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
  pthread_mutex_lock(&lock);
  o.n = 0;
  o.fd = fd;
  ob_printf(&o, "hakmem stats: pid=%ld version=%s debug_counters=%d\n", (long)getpid(),
            hakmem_version(), st->debug_counters);
  ob_printf(&o, "%5s %7s %12s %12s %12s %10s %10s %14s %14s %10s %10s\n", "class", "size",
            "allocated", "freed", "remote_freed", "live", "cached", "current_bytes",
            "peak_bytes", "refills", "flushes");
  uint64_t ta = 0, tf = 0, tr = 0, tl = 0, tc = 0, trf = 0, tfl = 0;
  size_t tcur = 0, tpeak = 0;
  for (unsigned c = 0; c < HAKMEM_NUM_CLASSES; c++) {
    const hakmem_class_stats *k = &st->classes[c];
    if (!k->allocated && !k->freed && !k->peak_bytes) continue;
    ob_printf(&o, "%5u %7zu %12llu %12llu %12llu %10llu %10llu %14zu %14zu %10llu %10llu\n", c,
              k->block_size, (unsigned long long)k->allocated, (unsigned long long)k->freed,
              (unsigned long long)k->remote_freed, (unsigned long long)k->live,
              (unsigned long long)k->cached, k->current_bytes, k->peak_bytes,
              (unsigned long long)k->refills, (unsigned long long)k->flushes);
    ta += k->allocated, tf += k->freed, tr += k->remote_freed, tl += k->live, tc += k->cached;
    trf += k->refills, tfl += k->flushes, tcur += k->current_bytes, tpeak += k->peak_bytes;
  }
  ob_printf(&o, "%5s %7s %12llu %12llu %12llu %10llu %10llu %14zu %14zu %10llu %10llu\n", "all",
            "-", (unsigned long long)ta, (unsigned long long)tf, (unsigned long long)tr,
            (unsigned long long)tl, (unsigned long long)tc, tcur, tpeak,
            (unsigned long long)trf, (unsigned long long)tfl);
  ob_printf(&o, "bytes: allocated=%zu active=%zu cached=%zu committed=%zu resident=%zu mapped=%zu\n",
            st->allocated, st->active, st->cached, st->committed, st->resident, st->mapped);
  ob_printf(&o, "segments: total=%zu tiny=%zu l2=%zu abandoned=%zu cached=%zu\n", st->segments,
            st->segments_tiny, st->segments_l2, st->segments_abandoned, st->segments_cached);
  ob_printf(&o, "large: count=%zu bytes=%zu cached_bytes=%zu\n", st->large_count, st->large_bytes,
            st->large_cached_bytes);
  ob_printf(&o, "threads: heaps=%zu remote_frees=%llu process_resident=%zu\n", st->heaps,
            (unsigned long long)st->remote_frees, st->process_resident);
  const hakmem_background_stats *bg = &st->background;
  ob_printf(&o, "background: running=%d heaps_supported=%d wakeups=%llu heaps_purged=%llu "
                "heaps_busy=%llu owner_waits=%llu\n",
            bg->running, bg->heaps_supported, (unsigned long long)bg->wakeups,
            (unsigned long long)bg->heaps_purged, (unsigned long long)bg->heaps_busy,
            (unsigned long long)bg->owner_waits);
  for (unsigned i = 0; i < HAKMEM_BG_ACTIONS; i++)
    ob_printf(&o, "background action %s: runs=%llu bytes_returned=%llu time_ms=%.3f\n",
              hm_bg_action_name(i), (unsigned long long)bg->runs[i],
              (unsigned long long)bg->bytes_returned[i], (double)bg->time_ns[i] / 1e6);
  if (st->debug_counters) {
    const hakmem_debug_counters *d = &st->debug;
    ob_printf(&o, "debug: refills=%llu alloc_tls_sll=%llu free_tls_sll=%llu free_ss_local=%llu "
                  "free_ss_remote=%llu flush_overflow=%llu bin_grow=%llu\n",
              (unsigned long long)d->refills, (unsigned long long)d->alloc_tls_sll,
              (unsigned long long)d->free_tls_sll, (unsigned long long)d->free_ss_local,
              (unsigned long long)d->free_ss_remote, (unsigned long long)d->flush_overflow,
              (unsigned long long)d->bin_grow);
    ob_printf(&o, "refill_stage:");
    for (unsigned i = 0; i < HAKMEM_REFILL_STAGES; i++)
      ob_printf(&o, " %s=%llu/%llu", stage_names[i], (unsigned long long)d->refill_stage[i],
                (unsigned long long)d->refill_stage_blocks[i]);
    ob_printf(&o, "\nearly:");
    for (unsigned i = 0; i < HAKMEM_EARLY_REASONS; i++)
      ob_printf(&o, " %s=%llu", early_names[i], (unsigned long long)d->early[i]);
    ob_printf(&o, "\n");
  }
  ob_flush(&o);
  pthread_mutex_unlock(&lock);
}

static void print_to(int fd) {
  static hakmem_stats st;   /* 4 KiB: off the stack */
  static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
  pthread_mutex_lock(&lock);
  hakmem_stats_get(&st);
  print_stats(&st, fd);
  pthread_mutex_unlock(&lock);
}

HM_EXPORT void hakmem_stats_print(void) { print_to(2); }

/* The exit report goes to a copy of stderr taken at registration: programs
 * such as coreutils close stderr in their own atexit handler, which runs
 * before ours (registered earlier, at the first allocation). */
static int exit_fd = 2;

static void print_at_exit(void) {
  if (__atomic_load_n(&hm_param.stats, __ATOMIC_RELAXED)) print_to(exit_fd);
}

void hm_stats_atexit_register(void) {
  static _Atomic int registered;
  if (atomic_exchange(&registered, 1)) return;
  int fd = fcntl(2, F_DUPFD_CLOEXEC, 64);
  if (fd >= 0) exit_fd = fd;
  atexit(print_at_exit);
}

/* ---- collection --------------------------------------------------------------------- */
HM_EXPORT size_t hakmem_collect(int force) {
  hm_process_init();
  hm_usage u0, u1;
  memset(&u0, 0, sizeof u0);
  hm_ss_usage(&u0, 0);
  hm_large_usage(&u0, 0);
  hm_heap *h = hm_tls_heap;
  if (h == &hm_heap_empty) h = NULL;
  if (h) hm_heap_enter(h);
  if (force) {
    if (h) hm_heap_flush_all(h);
    hm_heap_collect(h, 1);   /* adopts abandoned segments, drains, purges everything */
  } else {
    hm_ss_purge(h, 0);       /* what stayed free for the purge delay */
  }
  if (h) hm_heap_leave(h);
  hm_large_collect(force);
  memset(&u1, 0, sizeof u1);
  hm_ss_usage(&u1, 0);
  hm_large_usage(&u1, 0);
  return u0.committed_est > u1.committed_est ? u0.committed_est - u1.committed_est : 0;
}
