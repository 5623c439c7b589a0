/* os.c -- the thin OS layer: every mmap/munmap/madvise/clock/write of hakmem
 * goes through here. Never calls malloc. */
#include "hakmem_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

hm_os_counts hm_os_count;

void *hm_os_map(size_t size) {
  int saved = errno;
  void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  errno = saved;
  if (p == MAP_FAILED) return NULL;
  HM_OS_COUNT(maps, 1);
  HM_OS_COUNT(map_bytes, size);
  return p;
}

/* Map `size` bytes at an address a with (a + phase) % align == 0.
 * Over-maps by `align` and trims both ends, so only `size` stays mapped. */
void *hm_os_map_aligned(size_t size, size_t align, size_t phase) {
  if (size + align < size) return NULL;
  size_t total = size + align;
  uint8_t *raw = hm_os_map(total);
  if (!raw) return NULL;
  uintptr_t a = (((uintptr_t)raw + phase + align - 1) & ~(uintptr_t)(align - 1)) - phase;
  if (a < (uintptr_t)raw) a += align;
  size_t head = a - (uintptr_t)raw;
  size_t tail = total - head - size;
  int saved = errno;   /* trimming the over-map returns nothing: plain munmap */
  if (head) munmap(raw, head);
  if (tail) munmap((uint8_t *)a + size, tail);
  errno = saved;
  return (void *)a;
}

/* ---- the window: where every segment and most large blocks are mapped ------- */
/* A cursor walks [HM_ARENA_LO, HM_ARENA_HI) in 2 MiB steps; each mapping
 * claims [a, a + size) past it with one CAS, so concurrent callers try
 * disjoint ranges, and asks the kernel for exactly that range with
 * MAP_FIXED_NOREPLACE, which fails (EEXIST) rather than replace anything:
 * a mapping of the program's, or one of ours still live after the cursor
 * wrapped. The cursor then moves on; over a run that is mapped through it
 * jumps in a few probes (run_end). Before Linux 4.17 the flag is unknown and
 * the address only a hint: a mapping elsewhere is undone and counts as
 * occupied. Each failed probe moves the cursor at least 2 MiB, so a sweep of
 * the window costs at most one failed probe per chunk; a call that sweeps
 * it all gives up (NULL), and remembers the size it failed for, so that the
 * next calls do not sweep again until something of ours was unmapped there
 * (or a second has passed: the program may have unmapped its own). */
#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif
#define WINDOW_SIZE (HM_ARENA_HI - HM_ARENA_LO)
#define NO_FIT_RETRY_MS 1000u

static _Atomic uintptr_t window_cursor;      /* 0 until the first mapping */
static _Atomic uint64_t window_unmaps;       /* our unmaps in the window so far */
static _Atomic size_t no_fit_size;           /* a full sweep found no room for this (0: none) */
static _Atomic uint64_t no_fit_unmaps, no_fit_ms;

static uintptr_t chunk_up(uintptr_t a) { return (a + HM_REGION_MASK) & ~(uintptr_t)HM_REGION_MASK; }

static int in_window(uintptr_t a) { return a >= HM_ARENA_LO && a < HM_ARENA_HI; }

/* The cursor starts at a random chunk of the window's first quarter, so
 * that heap addresses differ between runs as mmap's do (ASLR). */
static uintptr_t cursor_start(void) {
  uint64_t bits = hm_os_random64();
  return HM_ARENA_LO + ((uintptr_t)(bits % (WINDOW_SIZE / 4 / HM_REGION_SIZE)) << HM_REGION_SHIFT);
}

uintptr_t hm_os_window_next(void) {
  uintptr_t c = atomic_load_explicit(&window_cursor, memory_order_relaxed);
  return c ? c : HM_ARENA_LO;
}

/* Is every page of [a, a + len) mapped? msync(MS_ASYNC) does nothing else
 * than this check on Linux (ENOMEM for an unmapped page). */
static int range_mapped(uintptr_t a, size_t len) {
  return msync((void *)a, len, MS_ASYNC) == 0;
}

/* The end of the run of wholly mapped chunks that starts at a (a itself
 * when its chunk is not wholly mapped): doubling, then bisection. */
static uintptr_t run_end(uintptr_t a) {
  size_t lo = 0, hi = HM_REGION_SIZE;   /* [a, a + lo) mapped; [a, a + hi) maybe not */
  while (a + hi <= HM_ARENA_HI && range_mapped(a, hi)) {
    lo = hi;
    hi *= 2;
  }
  if (a + hi > HM_ARENA_HI) hi = HM_ARENA_HI - a + HM_REGION_SIZE;
  while (hi - lo > HM_REGION_SIZE) {
    size_t mid = lo + ((hi - lo) / 2 & ~(size_t)HM_REGION_MASK);
    if (range_mapped(a, mid)) lo = mid;
    else hi = mid;
  }
  return a + lo;
}

/* First address >= from with (a + phase) % align == 0. */
static uintptr_t place(uintptr_t from, size_t align, size_t phase) {
  return ((from + phase + align - 1) & ~(uintptr_t)(align - 1)) - phase;
}

void *hm_os_map_window(size_t size, size_t align, size_t phase) {
  if (HM_SANITIZER_LAYOUT) return hm_os_map_aligned(size, align, phase);   /* no window */
  if (size == 0 || size > WINDOW_SIZE / 2 || align > WINDOW_SIZE / 4 || phase > align) return NULL;
  size_t nf = atomic_load_explicit(&no_fit_size, memory_order_relaxed);
  if (nf && size >= nf &&
      atomic_load_explicit(&no_fit_unmaps, memory_order_relaxed) ==
          atomic_load_explicit(&window_unmaps, memory_order_relaxed) &&
      hm_os_now_ms() - atomic_load_explicit(&no_fit_ms, memory_order_relaxed) < NO_FIT_RETRY_MS)
    return NULL;
  uint64_t unmaps_before = atomic_load_explicit(&window_unmaps, memory_order_relaxed);
  int saved = errno;
  size_t swept = 0;
  uintptr_t c = atomic_load_explicit(&window_cursor, memory_order_relaxed);
  if (!c) {
    uintptr_t start = cursor_start();
    if (atomic_compare_exchange_strong(&window_cursor, &c, start)) c = start;
  }
  while (swept < WINDOW_SIZE) {
    uintptr_t a = place(c, align, phase);
    if (a + size > HM_ARENA_HI) a = place(HM_ARENA_LO, align, phase);   /* wrap: reuse holes */
    uintptr_t end = chunk_up(a + size);
    if (!atomic_compare_exchange_weak(&window_cursor, &c, end)) continue;   /* c reloaded */
    swept += end > c ? end - c : (HM_ARENA_HI - c) + (end - HM_ARENA_LO);
    void *r = mmap((void *)a, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (r == (void *)a) {
      HM_OS_COUNT(maps, 1);
      HM_OS_COUNT(map_bytes, size);
      errno = saved;
      return r;
    }
    if (r == MAP_FAILED && errno != EEXIST) {   /* no memory: not the window's fault */
      atomic_compare_exchange_strong(&window_cursor, &end, c);   /* give the range back */
      errno = saved;
      return NULL;
    }
    if (r != MAP_FAILED) munmap(r, size);   /* old kernel: the hint was not honoured */
    /* Occupied. Jump over a mapped run at a; else try the next chunk. */
    uintptr_t next = range_mapped(a, HM_REGION_SIZE) ? run_end(a) : a + HM_REGION_SIZE;
    uintptr_t e = end;   /* unless another caller claimed past us meanwhile: */
    if (next != end && atomic_compare_exchange_strong(&window_cursor, &e, next)) {
      /* forward over the run, or back to a + 2 MiB (the obstacle of a large
       * request may lie anywhere in it: the chunks before it are tried) */
      if (next > end) swept += next - end;
      else swept -= end - next;
    }
    c = atomic_load_explicit(&window_cursor, memory_order_relaxed);
  }
  /* Swept it all: remember, unless something of ours was unmapped meanwhile. */
  atomic_store_explicit(&no_fit_unmaps, unmaps_before, memory_order_relaxed);
  atomic_store_explicit(&no_fit_ms, hm_os_now_ms(), memory_order_relaxed);
  atomic_store_explicit(&no_fit_size, size, memory_order_relaxed);
  errno = saved;
  return NULL;
}

/* Bytes this thread gave back to the OS (unmapped or decommitted): the
 * background thread reads its own before and after each action. */
__thread uint64_t hm_os_released_by_thread;

void hm_os_unmap(void *p, size_t size) {
  int saved = errno;
  if (munmap(p, size) == 0) hm_os_released_by_thread += size;
  /* Unmapping from the middle of a mapping splits it, which the kernel
   * refuses at its limit on mappings (vm.max_map_count; adjacent large
   * spans merge into one: large.c, map_chunk): the pages at least go back,
   * the address space stays. */
  else if (errno == ENOMEM && madvise(p, size, MADV_DONTNEED) == 0)
    hm_os_released_by_thread += size;
  HM_OS_COUNT(unmaps, 1);
  HM_OS_COUNT(unmap_bytes, size);
  if (in_window((uintptr_t)p))   /* room for a size that found none: look again */
    atomic_fetch_add_explicit(&window_unmaps, 1, memory_order_relaxed);
  errno = saved;
}

/* Give the pages back to the OS but keep the mapping; they read as zero later. */
void hm_os_decommit(void *p, size_t size) {
  int saved = errno;
  if (madvise(p, size, MADV_DONTNEED) == 0) hm_os_released_by_thread += size;
  HM_OS_COUNT(decommits, 1);
  HM_OS_COUNT(decommit_bytes, size);
  errno = saved;
}

/* The learner's unit costs, measured on a scratch mapping of 64 pages (not
 * counted above): the first touch of each page (a fault), one madvise of
 * all of them, one mmap + munmap pair. The best of three rounds: the
 * unloaded cost, which is what a choice adds. */
void hm_os_calibrate(double *fault_ns, double *map_ns, double *decommit_ns) {
  enum { PAGES = 64, ROUNDS = 3 };
  double f = 1e30, m = 1e30, d = 1e30;
  int saved = errno;
  for (int r = 0; r < ROUNDS; r++) {
    uint64_t t0 = hm_os_now_ns();
    volatile char *p = mmap(NULL, PAGES * 4096, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) break;
    uint64_t t1 = hm_os_now_ns();
    for (int i = 0; i < PAGES; i++) p[i * 4096] = 1;
    uint64_t t2 = hm_os_now_ns();
    madvise((void *)p, PAGES * 4096, MADV_DONTNEED);
    uint64_t t3 = hm_os_now_ns();
    munmap((void *)p, PAGES * 4096);
    uint64_t t4 = hm_os_now_ns();
    if ((double)(t2 - t1) / PAGES < f) f = (double)(t2 - t1) / PAGES;
    if ((double)(t1 - t0 + t4 - t3) < m) m = (double)(t1 - t0 + t4 - t3);
    if ((double)(t3 - t2) < d) d = (double)(t3 - t2);
  }
  errno = saved;
  /* Without a measurement: typical figures of a virtual machine. */
  *fault_ns = f < 1e29 ? f : 1000;
  *map_ns = m < 1e29 ? m : 5000;
  *decommit_ns = d < 1e29 ? d : 5000;
}

/* A small /proc or /sys file, read without malloc (hakmem_internal.h). */
long hm_os_read_small(const char *path, char *buf, size_t cap) {
  int saved = errno;
  ssize_t n = -1;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    n = read(fd, buf, cap - 1);
    close(fd);
  }
  if (n <= 0) n = -1;
  else buf[n] = 0;
  errno = saved;
  return n;
}

/* Whether address space that holds no memory costs something here: a
 * finite RLIMIT_AS (mappings count whole against it), or strict overcommit
 * (vm.overcommit_memory = 2: a writable private mapping is charged to the
 * system's commit limit whether or not its pages are ever touched). Under
 * the default heuristic overcommit, an untouched page costs nothing but its
 * share of a page table. Read once (a later setrlimit is met by the ENOMEM
 * path: hm_release_cached_mappings). */
int hm_os_address_space_tight(void) {
  static _Atomic int tight = -1;
  int t = atomic_load_explicit(&tight, memory_order_relaxed);
  if (t >= 0) return t;
  int saved = errno;
  struct rlimit rl;
  t = getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY;
  char mode[8];
  t |= hm_os_read_small("/proc/sys/vm/overcommit_memory", mode, sizeof mode) > 0 && mode[0] == '2';
  errno = saved;
  atomic_store_explicit(&tight, t, memory_order_relaxed);
  return t;
}

/* Bytes of [p, p + size) resident in memory (mincore), page by page. */
size_t hm_os_resident(void *p, size_t size) {
  unsigned char vec[512];
  size_t total = 0;
  int saved = errno;
  for (size_t off = 0; off < size; off += sizeof vec * 4096) {
    size_t len = size - off < sizeof vec * 4096 ? size - off : sizeof vec * 4096;
    if (mincore((uint8_t *)p + off, len, vec) != 0) continue;
    for (size_t i = 0; i < (len + 4095) / 4096; i++) total += (vec[i] & 1) * 4096u;
  }
  errno = saved;
  return total;
}

/* Is transparent huge page support set to "always" (every 2 MiB-aligned
 * anonymous range may get a huge page on its first touch)? Read once from
 * sysfs (open/read: no malloc); 0 when unknown. */
int hm_os_thp_always(void) {
  static _Atomic int cached = -1;
  int v = atomic_load_explicit(&cached, memory_order_relaxed);
  if (v >= 0) return v;
  char buf[128];
  v = hm_os_read_small("/sys/kernel/mm/transparent_hugepage/enabled", buf, sizeof buf) > 0 &&
      strstr(buf, "[always]") != NULL;
  atomic_store_explicit(&cached, v, memory_order_relaxed);
  return v;
}

int hm_os_hugepage(void *p, size_t size, int on) {
#if defined(MADV_HUGEPAGE) && defined(MADV_NOHUGEPAGE)
  int saved = errno;
  int r = madvise(p, size, on ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
  errno = saved;
  return r;
#else
  (void)p, (void)size, (void)on;
  return -1;
#endif
}

uint64_t hm_os_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t hm_os_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* 64 unpredictable bits without a syscall that may block or fail: the
 * kernel's per-exec random bytes (AT_RANDOM, which glibc also draws its
 * stack guard from, hence mixed) with the clock and the address layout,
 * through the splitmix64 finaliser. Never 0. */
uint64_t hm_os_random64(void) {
  static _Atomic uint64_t calls;   /* each call draws a different value */
  const void *auxv_random = (const void *)getauxval(AT_RANDOM);
  uint64_t x = 0;
  if (auxv_random) memcpy(&x, (const uint8_t *)auxv_random + 8, sizeof x);   /* not 8-aligned */
  x ^= hm_os_now_ns() ^ ((uint64_t)(uintptr_t)&x << 16) ^ (uint64_t)(uintptr_t)hm_os_random64;
  x += (atomic_fetch_add_explicit(&calls, 1, memory_order_relaxed) + 1) * 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x ? x : 0x6861b2d3e4f5a697ull;
}

/* ---- thread synchronisation without libc locks ------------------------------- */
/* Sleep while *word == expected, at most timeout_ms (0: no limit); returns
 * early on a wake, a signal or a changed word. Private futex: no memory is
 * shared with other processes. */
void hm_os_futex_wait(_Atomic uint32_t *word, uint32_t expected, uint64_t timeout_ms) {
  int saved = errno;
  struct timespec ts = {(time_t)(timeout_ms / 1000), (long)(timeout_ms % 1000) * 1000000L};
  syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_PRIVATE, expected, timeout_ms ? &ts : NULL,
          NULL, 0);
  errno = saved;
}

void hm_os_futex_wake(_Atomic uint32_t *word) {
  int saved = errno;
  syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
  errno = saved;
}

/* membarrier(2), private expedited: every running thread of the process
 * executes a full memory barrier before the call returns (Linux >= 4.14).
 * Register once; 0 if it can be used. */
int hm_os_membarrier_register(void) {
  int saved = errno;
  long r = syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0);
  errno = saved;
  return r == 0 ? 0 : -1;
}

int hm_os_membarrier(void) {
  int saved = errno;
  long r = syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
  errno = saved;
  return r == 0 ? 0 : -1;
}


void hm_os_write_stderr(const char *msg) {
  size_t n = strlen(msg);
  while (n) {
    ssize_t w = write(2, msg, n);
    if (w <= 0) {
      if (w < 0 && errno == EINTR) continue;
      return;
    }
    msg += w;
    n -= (size_t)w;
  }
}

static char *fmt_hex(char *out, uintptr_t v) {
  static const char digits[] = "0123456789abcdef";
  char tmp[2 + 16];
  int n = 0;
  do { tmp[n++] = digits[v & 15]; v >>= 4; } while (v);
  *out++ = '0';
  *out++ = 'x';
  while (n) *out++ = tmp[--n];
  return out;
}

/* One clear line on stderr, then abort() -- as glibc does for heap misuse. */
static char *put_str(char *o, const char *s, size_t max) {
  size_t n = strlen(s);
  if (n > max) n = max;
  memcpy(o, s, n);
  return o + n;
}

void hm_fatal(const char *fn, const char *what, const void *ptr) {
  char line[256];
  char *o = put_str(line, "hakmem: ", 8);
  if (fn) {
    o = put_str(o, fn, 40);
    o = put_str(o, ": ", 2);
  }
  o = put_str(o, what, 160);
  if (ptr) {
    *o++ = ' ';
    o = fmt_hex(o, (uintptr_t)ptr);
  }
  *o++ = '\n';
  *o = 0;
  hm_os_write_stderr(line);
  abort();
}

/* Make [p, p + size) readable and writable, or inaccessible (a guard page:
 * secure mode). -1 when the kernel refuses, typically because splitting the
 * mapping would pass vm.max_map_count; the caller decides what that costs. */
int hm_os_protect(void *p, size_t size, int readable) {
  int saved = errno;
  int r = mprotect(p, size, readable ? PROT_READ | PROT_WRITE : PROT_NONE);
  errno = saved;
  return r == 0 ? 0 : -1;
}

/* ---- where hakmem was loaded from ------------------------------------------------ */
/* The file holding this code -- the shared library, or the executable that
 * libhakmem.a was linked into: the /proc/self/maps line whose address range
 * contains this function. No dlsym/dladdr (libdl, and they may allocate):
 * open/read into static buffers, computed once. "" if /proc is not mounted. */
static char self_path[4096];
static pthread_once_t self_path_once = PTHREAD_ONCE_INIT;

/* "START-END PERMS OFFSET DEV INODE   PATH": the path if [START, END) holds
 * `addr`, else NULL. */
static uintptr_t parse_hex(char **s) {
  uintptr_t v = 0;
  for (char c; (c = **s) && ((c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')); (*s)++)
    v = v * 16 + (uintptr_t)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
  return v;
}

static const char *maps_line_path(char *s, uintptr_t addr) {
  uintptr_t lo = parse_hex(&s);
  if (*s++ != '-') return NULL;
  uintptr_t hi = parse_hex(&s);
  if (addr < lo || addr >= hi) return NULL;
  for (int field = 0; field < 4; field++) {   /* perms, offset, dev, inode */
    while (*s == ' ') s++;
    while (*s && *s != ' ') s++;
  }
  while (*s == ' ') s++;
  return s;
}

static void self_path_find(void) {
  static char chunk[4096], line[sizeof self_path + 128];
  uintptr_t me = (uintptr_t)&maps_line_path;
  int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  size_t len = 0;
  for (;;) {
    ssize_t n = read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    for (ssize_t i = 0; i < n; i++) {
      if (chunk[i] != '\n') {
        if (len < sizeof line - 1) line[len++] = chunk[i];
        continue;
      }
      line[len] = 0;
      len = 0;
      const char *p = maps_line_path(line, me);
      if (p) {
        size_t k = strlen(p);
        if (k >= sizeof self_path) k = sizeof self_path - 1;
        memcpy(self_path, p, k);
        self_path[k] = 0;
        close(fd);
        return;
      }
    }
  }
  close(fd);
}

const char *hm_os_self_path(void) {
  int saved = errno;
  pthread_once(&self_path_once, self_path_find);
  errno = saved;
  return self_path;
}
