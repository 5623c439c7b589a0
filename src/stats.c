/* stats.c -- statistics: per-class counts kept on the slow paths, their
 * merge over thread heaps, the public hakmem_stats_get/print/print_json/
 * collect API, and the HAKMEM_STATS report at exit (text or JSON, to stderr
 * or to HAKMEM_STATS_FILE). Never on a fast path; never allocates (reports
 * are formatted into a fixed buffer and written with write(2)).
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
#include <sys/stat.h>
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

/* A block changed class where it lies (a span block grown by realloc):
 * its blocks move, no bin event happened (the learner reads those). */
void hm_stats_moved(hm_heap *h, unsigned from, unsigned to) {
  count(&h->stats.flush_blocks[from], 1);
  count(&h->stats.refill_blocks[to], 1);
  out_add(from, -1);
  out_add(to, 1);
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
  if (hm_os_read_small("/proc/self/statm", buf, sizeof buf) < 0) return 0;
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
    if (!__atomic_load_n(&h->live, __ATOMIC_ACQUIRE)) continue;
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

/* The learner's per-class signals: exited heaps' counts plus live ones'. */
HM_RACY_READER void hm_stats_bin_events(uint64_t *refills, uint64_t *flushes) {
  hm_heap_registry_lock();
  for (unsigned c = 0; c < HM_NUM_CLASSES; c++) {
    refills[c] = merged.refills[c];
    flushes[c] = merged.flushes[c];
  }
  for (hm_heap *h = hm_heap_registry_first(); h; h = h->all_next) {
    if (!__atomic_load_n(&h->live, __ATOMIC_ACQUIRE)) continue;
    for (unsigned c = 0; c < HM_NUM_CLASSES; c++) {
      refills[c] += __atomic_load_n(&h->stats.refills[c], __ATOMIC_RELAXED);
      flushes[c] += __atomic_load_n(&h->stats.flushes[c], __ATOMIC_RELAXED);
    }
  }
  hm_heap_registry_unlock();
}

size_t hm_stats_process_rss(void) { return process_rss(); }

size_t hm_stats_committed(void) {
  hm_usage u;
  memset(&u, 0, sizeof u);
  hm_ss_usage(&u, 0);
  hm_large_usage(&u, 0);
  return u.committed_est;
}

/* ---- the reports ------------------------------------------------------------------- */
/* Text for people, JSON for programs. Formatted with snprintf into a fixed
 * buffer (no allocation for these conversions) and written with write(2). */
typedef struct outbuf { char b[4096]; size_t n; int fd; int err; } outbuf;

static void ob_flush(outbuf *o) {
  const char *p = o->b;
  size_t n = o->n;
  while (n) {
    ssize_t w = write(o->fd, p, n);
    if (w <= 0) {
      if (w < 0 && errno == EINTR) continue;
      if (!o->err) o->err = w < 0 ? errno : EIO;
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

/* The text report. Its columns, for a person (hakmem_class_stats's field in
 * brackets): from_slabs [allocated], to_slabs [freed], remote [remote_freed],
 * in_use [live], in_caches [cached], out_bytes [current_bytes],
 * peak_out_bytes [peak_bytes], refills, flushes. */
static void print_text(const hakmem_stats *st, outbuf *o) {
  ob_printf(o, "hakmem stats: pid=%ld version=%s debug_counters=%d\n", (long)getpid(),
            hakmem_version(), st->debug_counters);
  ob_printf(o, "per size class, counted per batch (a thread cache's refill or flush), not per "
               "malloc/free call:\n"
               "  from_slabs: blocks taken from slabs/pages into thread caches; to_slabs: blocks "
               "given back; remote: of to_slabs, freed by another thread\n"
               "  in_use = from_slabs - to_slabs - in_caches: approximate (exact when other "
               "threads are idle and remote frees drained)\n"
               "  out_bytes = (in_use + in_caches) * block_size; peak_out_bytes: its peak, "
               "cached blocks included (no peak of in_use alone)\n");
  ob_printf(o, "%5s %10s %12s %12s %12s %10s %10s %14s %14s %10s %10s\n", "class", "block_size",
            "from_slabs", "to_slabs", "remote", "in_use", "in_caches", "out_bytes",
            "peak_out_bytes", "refills", "flushes");
  uint64_t ta = 0, tf = 0, tr = 0, tl = 0, tc = 0, trf = 0, tfl = 0;
  size_t tcur = 0, tpeak = 0;
  for (unsigned c = 0; c < HAKMEM_NUM_CLASSES; c++) {
    const hakmem_class_stats *k = &st->classes[c];
    if (!k->allocated && !k->freed && !k->peak_bytes) continue;
    ob_printf(o, "%5u %10zu %12llu %12llu %12llu %10llu %10llu %14zu %14zu %10llu %10llu\n", c,
              k->block_size, (unsigned long long)k->allocated, (unsigned long long)k->freed,
              (unsigned long long)k->remote_freed, (unsigned long long)k->live,
              (unsigned long long)k->cached, k->current_bytes, k->peak_bytes,
              (unsigned long long)k->refills, (unsigned long long)k->flushes);
    ta += k->allocated, tf += k->freed, tr += k->remote_freed, tl += k->live, tc += k->cached;
    trf += k->refills, tfl += k->flushes, tcur += k->current_bytes, tpeak += k->peak_bytes;
  }
  ob_printf(o, "%5s %10s %12llu %12llu %12llu %10llu %10llu %14zu %14zu %10llu %10llu\n", "all",
            "-", (unsigned long long)ta, (unsigned long long)tf, (unsigned long long)tr,
            (unsigned long long)tl, (unsigned long long)tc, tcur, tpeak,
            (unsigned long long)trf, (unsigned long long)tfl);
  ob_printf(o, "bytes: allocated=%zu active=%zu cached=%zu committed=%zu resident=%zu mapped=%zu\n",
            st->allocated, st->active, st->cached, st->committed, st->resident, st->mapped);
  ob_printf(o, "segments: total=%zu tiny=%zu l2=%zu abandoned=%zu cached=%zu\n", st->segments,
            st->segments_tiny, st->segments_l2, st->segments_abandoned, st->segments_cached);
  ob_printf(o, "large: count=%zu bytes=%zu cached_bytes=%zu\n", st->large_count, st->large_bytes,
            st->large_cached_bytes);
  ob_printf(o, "threads: heaps=%zu remote_frees=%llu process_resident=%zu\n", st->heaps,
            (unsigned long long)st->remote_frees, st->process_resident);
  const hakmem_background_stats *bg = &st->background;
  ob_printf(o, "background: running=%d heaps_supported=%d wakeups=%llu heaps_purged=%llu "
               "heaps_busy=%llu owner_waits=%llu\n",
            bg->running, bg->heaps_supported, (unsigned long long)bg->wakeups,
            (unsigned long long)bg->heaps_purged, (unsigned long long)bg->heaps_busy,
            (unsigned long long)bg->owner_waits);
  for (unsigned i = 0; i < HAKMEM_BG_ACTIONS; i++)
    ob_printf(o, "background action %s: runs=%llu bytes_returned=%llu time_ms=%.3f\n",
              hm_bg_action_name(i), (unsigned long long)bg->runs[i],
              (unsigned long long)bg->bytes_returned[i], (double)bg->time_ns[i] / 1e6);
  if (st->debug_counters) {
    const hakmem_debug_counters *d = &st->debug;
    ob_printf(o, "debug: refills=%llu alloc_tls_sll=%llu free_tls_sll=%llu free_ss_local=%llu "
                 "free_ss_remote=%llu flush_overflow=%llu bin_grow=%llu\n",
              (unsigned long long)d->refills, (unsigned long long)d->alloc_tls_sll,
              (unsigned long long)d->free_tls_sll, (unsigned long long)d->free_ss_local,
              (unsigned long long)d->free_ss_remote, (unsigned long long)d->flush_overflow,
              (unsigned long long)d->bin_grow);
    ob_printf(o, "refill_stage:");
    for (unsigned i = 0; i < HAKMEM_REFILL_STAGES; i++)
      ob_printf(o, " %s=%llu/%llu", stage_names[i], (unsigned long long)d->refill_stage[i],
                (unsigned long long)d->refill_stage_blocks[i]);
    ob_printf(o, "\nearly:");
    for (unsigned i = 0; i < HAKMEM_EARLY_REASONS; i++)
      ob_printf(o, " %s=%llu", early_names[i], (unsigned long long)d->early[i]);
    ob_printf(o, "\n");
  }
}

/* A JSON string: quotes, backslashes and control bytes escaped. */
static void json_str(outbuf *o, const char *s) {
  ob_printf(o, "\"");
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') ob_printf(o, "\\%c", c);
    else if (c < 0x20) ob_printf(o, "\\u%04x", c);
    else if (o->n < sizeof o->b - 8) o->b[o->n++] = (char)c;
    else ob_printf(o, "%c", c);
  }
  ob_printf(o, "\"");
}

#define U(x) ((unsigned long long)(x))
#define B(x) ((x) ? "true" : "false")

/* The JSON report: one object on one line (a file that collects several
 * reports is JSON Lines). The keys are hakmem_stats's field names, grouped
 * as in the text report; integers only. */
static void print_json(const hakmem_stats *st, outbuf *o) {
  ob_printf(o, "{\"version\":");
  json_str(o, hakmem_version());
  ob_printf(o, ",\"pid\":%ld,\"library\":", (long)getpid());
  json_str(o, hm_os_self_path());
  ob_printf(o, ",\"debug_counters\":%s,\"counted_per\":\"batch\"", B(st->debug_counters));
  ob_printf(o, ",\"bytes\":{\"allocated\":%zu,\"active\":%zu,\"cached\":%zu,\"committed\":%zu,"
               "\"resident\":%zu,\"mapped\":%zu,\"process_resident\":%zu}",
            st->allocated, st->active, st->cached, st->committed, st->resident, st->mapped,
            st->process_resident);
  ob_printf(o, ",\"segments\":{\"total\":%zu,\"tiny\":%zu,\"l2\":%zu,\"abandoned\":%zu,"
               "\"cached\":%zu}",
            st->segments, st->segments_tiny, st->segments_l2, st->segments_abandoned,
            st->segments_cached);
  ob_printf(o, ",\"large\":{\"count\":%zu,\"bytes\":%zu,\"cached_bytes\":%zu}", st->large_count,
            st->large_bytes, st->large_cached_bytes);
  ob_printf(o, ",\"threads\":{\"heaps\":%zu,\"remote_frees\":%llu}", st->heaps,
            U(st->remote_frees));
  const hakmem_background_stats *bg = &st->background;
  ob_printf(o, ",\"background\":{\"running\":%s,\"heaps_supported\":%s,\"wakeups\":%llu,"
               "\"heaps_purged\":%llu,\"heaps_busy\":%llu,\"owner_waits\":%llu,\"actions\":[",
            B(bg->running), B(bg->heaps_supported), U(bg->wakeups), U(bg->heaps_purged),
            U(bg->heaps_busy), U(bg->owner_waits));
  for (unsigned i = 0; i < HAKMEM_BG_ACTIONS; i++)
    ob_printf(o, "%s{\"name\":\"%s\",\"runs\":%llu,\"bytes_returned\":%llu,\"time_ns\":%llu}",
              i ? "," : "", hm_bg_action_name(i), U(bg->runs[i]), U(bg->bytes_returned[i]),
              U(bg->time_ns[i]));
  ob_printf(o, "]}");
  if (st->debug_counters) {
    const hakmem_debug_counters *d = &st->debug;
    ob_printf(o, ",\"debug\":{\"refills\":%llu,\"alloc_tls_sll\":%llu,\"free_tls_sll\":%llu,"
                 "\"free_ss_local\":%llu,\"free_ss_remote\":%llu,\"flush_overflow\":%llu,"
                 "\"bin_grow\":%llu,\"refill_stage\":{",
              U(d->refills), U(d->alloc_tls_sll), U(d->free_tls_sll), U(d->free_ss_local),
              U(d->free_ss_remote), U(d->flush_overflow), U(d->bin_grow));
    for (unsigned i = 0; i < HAKMEM_REFILL_STAGES; i++)
      ob_printf(o, "%s\"%s\":{\"refills\":%llu,\"blocks\":%llu}", i ? "," : "", stage_names[i],
                U(d->refill_stage[i]), U(d->refill_stage_blocks[i]));
    ob_printf(o, "},\"early\":{");
    for (unsigned i = 0; i < HAKMEM_EARLY_REASONS; i++)
      ob_printf(o, "%s\"%s\":%llu", i ? "," : "", early_names[i], U(d->early[i]));
    ob_printf(o, "}}");
  }
  ob_printf(o, ",\"classes\":[");
  for (unsigned c = 0; c < HAKMEM_NUM_CLASSES; c++) {
    const hakmem_class_stats *k = &st->classes[c];
    ob_printf(o, "%s{\"class\":%u,\"block_size\":%zu,\"allocated\":%llu,\"freed\":%llu,"
                 "\"remote_freed\":%llu,\"refills\":%llu,\"flushes\":%llu,\"cached\":%llu,"
                 "\"live\":%llu,\"blocks_out\":%llu,\"current_bytes\":%zu,\"peak_bytes\":%zu,"
                 "\"cache_cap\":%u}",
              c ? "," : "", c, k->block_size, U(k->allocated), U(k->freed), U(k->remote_freed),
              U(k->refills), U(k->flushes), U(k->cached), U(k->live), U(k->blocks_out),
              k->current_bytes, k->peak_bytes, (unsigned)k->cache_cap);
  }
  ob_printf(o, "]}\n");
}
#undef U
#undef B

/* Gather and write one report (json: 0 text, 1 JSON) to fd. 0, or -1 with
 * errno when a write failed. Static buffers (4 KiB each: off the stack),
 * one report at a time. */
static int report_to(int fd, int json) {
  static hakmem_stats st;
  static outbuf o;
  static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
  pthread_mutex_lock(&lock);
  hakmem_stats_get(&st);
  o.n = 0;
  o.fd = fd;
  o.err = 0;
  if (json) print_json(&st, &o);
  else print_text(&st, &o);
  ob_flush(&o);
  int err = o.err;
  pthread_mutex_unlock(&lock);
  if (err) errno = err;
  return err ? -1 : 0;
}

HM_EXPORT void hakmem_stats_print(void) {
  int saved = errno;
  report_to(2, 0);
  errno = saved;
}

HM_EXPORT int hakmem_stats_print_json(int fd) { return report_to(fd, 1); }

/* ---- the report at exit (HAKMEM_STATS, HAKMEM_STATS_FILE) ------------------------- */
/* It goes to a copy of stderr taken at registration: programs such as
 * coreutils close stderr in their own atexit handler, which runs before ours
 * (registered at load). A program may also close every descriptor and open
 * another file under the copy's number: then the copy is no longer the file
 * it was (device and inode), and fd 2 is used. */
static int exit_fd = 2;
static dev_t exit_fd_dev;
static ino_t exit_fd_ino;

static int stderr_at_exit(void) {
  struct stat sb;
  if (exit_fd != 2 && fstat(exit_fd, &sb) == 0 && sb.st_dev == exit_fd_dev &&
      sb.st_ino == exit_fd_ino)
    return exit_fd;
  return 2;
}

/* HAKMEM_STATS_FILE with %p replaced by the pid and %% by %. */
static int stats_file_path(char *out, size_t cap) {
  char pid[24];
  snprintf(pid, sizeof pid, "%ld", (long)getpid());
  size_t n = 0;
  for (const char *s = hm_param_stats_file; *s; s++) {
    const char *put = s;
    size_t len = 1;
    if (s[0] == '%' && s[1] == 'p') put = pid, len = strlen(pid), s++;
    else if (s[0] == '%' && s[1] == '%') s++;
    if (n + len >= cap) return -1;
    memcpy(out + n, put, len);
    n += len;
  }
  out[n] = 0;
  return 0;
}

static const char *errno_text(int e) {   /* strerror may allocate (translations) */
  switch (e) {
  case ENOENT: return "no such file or directory";
  case EACCES: return "permission denied";
  case ENOTDIR: return "a component of the path is not a directory";
  case EISDIR: return "is a directory";
  case EROFS: return "read-only file system";
  case ENOSPC: return "no space left on device";
  case EMFILE: case ENFILE: return "too many open files";
  case ENAMETOOLONG: return "name too long";
  default: return "cannot open";
  }
}

/* The file of this process (opened now, so a forked child writes its own),
 * or -1 after one warning on `err_fd` (the report then goes there). */
static int open_stats_file(int err_fd) {
  static char path[HM_STATS_FILE_MAX + 32];
  if (stats_file_path(path, sizeof path) == 0) {
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) return fd;
  } else {
    errno = ENAMETOOLONG;
  }
  outbuf *o = &(outbuf){.n = 0, .fd = err_fd};
  ob_printf(o, "hakmem: warning: cannot open HAKMEM_STATS_FILE %s: %s (errno %d); "
               "the statistics go to stderr\n", path, errno_text(errno), errno);
  ob_flush(o);
  return -1;
}

static void print_at_exit(void) {
  unsigned mode = __atomic_load_n(&hm_param.stats, __ATOMIC_RELAXED);
  if (!mode) return;
  int saved = errno;
  int fd = stderr_at_exit(), file = hm_param_stats_file[0] ? open_stats_file(fd) : -1;
  report_to(file >= 0 ? file : fd, mode == 2);
  if (file >= 0) close(file);
  errno = saved;
}

void hm_stats_atexit_register(void) {
  static _Atomic int registered;
  if (atomic_exchange(&registered, 1)) return;
  int fd = fcntl(2, F_DUPFD_CLOEXEC, 64);
  struct stat sb;
  if (fd >= 0 && fstat(fd, &sb) == 0) {
    exit_fd = fd;
    exit_fd_dev = sb.st_dev;
    exit_fd_ino = sb.st_ino;
  } else if (fd >= 0) {
    close(fd);
  }
  atexit(print_at_exit);
}

/* ---- collection --------------------------------------------------------------------- */
HM_EXPORT size_t hakmem_collect(int force) {
  hm_process_init();
  hm_usage u0, u1;
  memset(&u0, 0, sizeof u0);
  hm_ss_usage(&u0, 0);
  hm_large_usage(&u0, 0);
  uint64_t blocks0 = atomic_load_explicit(&hm_l2_block_bytes_released, memory_order_relaxed);
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
  size_t blocks = (size_t)(atomic_load_explicit(&hm_l2_block_bytes_released, memory_order_relaxed) - blocks0);
  return (u0.committed_est > u1.committed_est ? u0.committed_est - u1.committed_est : 0) + blocks;
}
