/* options.c -- every tunable of hakmem in one table: its HAKMEM_* name, the
 * hm_params field it sets, default, range, when a change takes effect, and
 * what it trades. docs/TUNING.md is this table for people; keep them equal.
 *
 * The table also gives hm_param its static defaults, so the parameters are
 * valid before start-up. hm_params_init() (called once by process_init)
 * reads the environment; it must not allocate: getenv/environ only, and
 * every message goes through hm_os_write_stderr from a fixed buffer. An
 * invalid value is reported (variable, value, range, default used) and the
 * default kept; a HAKMEM_* variable that is not an option is reported too.
 * With HAKMEM_VERBOSE it then prints the version, the library's path (read
 * from /proc/self/maps, os.c) and the options in effect. process_init runs
 * it from the library's constructor, or from an allocation that came first:
 * once per process either way, so every message appears once. */
#include "hakmem_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* Kinds of value. OPT_REPORT: 0 (the boolean spellings of "off"), 1 (those
of "on", or "text"), 2 ("json"). OPT_MODE: off, observe, on (or 0, 1, 2). */
enum { OPT_NUM, OPT_BYTES, OPT_BOOL, OPT_REPORT, OPT_MODE };
/* When a change made by hakmem_option_set() takes effect. */
enum {
  AT_START,   /* read at start-up only (set later: see the description) */
  AT_USE,     /* read each time it is used: at once */
  AT_HEAP,    /* thread caches: the calling thread at once, threads created later */
};

/*   NAME (after HAKMEM_)    field               kind       default   min  max         when     trade-off */
#define HM_OPTION_TABLE(X)                                                                          \
  X(SLL_CAP_BYTES,      sll_cap_bytes,      OPT_BYTES, 32768,     64, 16u << 20,  AT_HEAP,          \
    "Tiny thread cache per class starts at about this many bytes: more is fewer refills/flushes, "  \
    "more memory idle in caches")                                                                   \
  X(SLL_GROW_BYTES,     sll_grow_bytes,     OPT_BYTES, 131072,    64, 64u << 20,  AT_HEAP,          \
    "Tiny thread cache per class doubles on each overflow up to about this many bytes: a batch "    \
    "of frees that fits stops cycling through the slabs; more memory a thread may keep cached")     \
  X(SLL_CAP_MIN,        sll_cap_min,        OPT_NUM,   4,         1,  65535,      AT_HEAP,          \
    "least blocks a thread cache holds (large classes); lowered to SLL_CAP_MAX if above it")        \
  X(SLL_CAP_MAX,        sll_cap_max,        OPT_NUM,   1024,      1,  65535,      AT_HEAP,          \
    "most blocks a thread cache holds (small classes), grown or not: bounds idle memory per "       \
    "thread and class")                                                                             \
  X(REFILL_BATCH_BYTES, refill_batch_bytes, OPT_BYTES, 8192,      8,  16u << 20,  AT_HEAP,          \
    "a Tiny refill brings about this many bytes: larger batches amortise the slow path, "           \
    "but fill caches with blocks that may stay unused")                                             \
  X(REFILL_BATCH_MAX,   refill_batch_max,   OPT_NUM,   64,        1,  4096,       AT_HEAP,          \
    "most blocks one refill brings (never more than the cache capacity)")                           \
  X(PURGE_DELAY_MS,     purge_delay_ms,     OPT_NUM,   1000,      0,  3600000,    AT_USE,           \
    "free memory stays committed this long before MADV_DONTNEED/munmap: shorter returns memory "    \
    "sooner, at the price of page faults when it is reused")                                        \
  X(PURGE_CHECK_TICKS,  purge_check_ticks,  OPT_NUM,   256,       1,  1u << 30,   AT_USE,           \
    "slow-path events of a thread between looks at the clock for purging")                          \
  X(HEAP_KEEP_EMPTY,    heap_keep_empty_ss, OPT_NUM,   1,         0,  1024,       AT_USE,           \
    "empty segments a thread keeps per kind before handing them to the process-wide cache")         \
  X(L2_CARVE_MAX,       l2_carve_max,       OPT_NUM,   16,        1,  65535,      AT_USE,           \
    "medium blocks carved from a page's never-used space at once (touches fewer pages when small)") \
  X(L2_CAP_BYTES,       l2_cap_bytes,       OPT_BYTES, 131072,    1024, 64u << 20, AT_HEAP,         \
    "medium thread cache per class starts at about this many bytes (doubling on overflow)")         \
  X(L2_CAP_MAX_BYTES,   l2_cap_max_bytes,   OPT_BYTES, 524288,    1024, 256u << 20, AT_HEAP,        \
    "medium thread cache per class grows up to about this many bytes")                              \
  X(L2_BATCH_BYTES,     l2_batch_bytes,     OPT_BYTES, 131072,    1024, 64u << 20, AT_HEAP,         \
    "a medium refill brings about this many bytes")                                                 \
  X(SS_CACHE_MAX,       ss_cache_max,       OPT_NUM,   16,        0,  65536,      AT_USE,           \
    "empty 2 MiB segments kept process-wide (decommitted after the purge delay) before munmap")     \
  X(LARGE_CACHE_BYTES,  large_cache_bytes,  OPT_BYTES, 256u << 20, 0, 1ull << 40, AT_USE,           \
    "resident bytes of freed large mappings kept for reuse (a span above a quarter is never kept)")       \
  X(LARGE_CACHE_COUNT,  large_cache_count,  OPT_NUM,   2048,      0,  4096,       AT_USE,           \
    "freed large mappings kept for reuse")                                                          \
  X(HUGE_PAGES,         huge_pages,         OPT_NUM,   0,         0,  7,          AT_USE,           \
    "transparent huge pages (where the system allows them on request): 1 for the new segments "    \
    "of a thread holding 32 or more, 2 for new large blocks, 3 both; + 4: only one in four (the "   \
    "learner's trial). One fault per 2 MiB instead of 512, but a touched page commits its 2 MiB; "  \
    "the learner tries them where faults cost and keeps them where the kernel's time drops")       \
  X(TINY_USE_SUPERSLAB, tiny_use_superslab, OPT_BOOL,  1,         0,  1,          AT_USE,           \
    "1: sizes up to 1 KiB come from Tiny slabs in SuperSlabs (the default); 0: from L2 pages, "     \
    "kept only for comparison (applies at each refill)")                                            \
  X(VERBOSE,            verbose,            OPT_NUM,   0,         0,  2,          AT_START,         \
    "1: when the library loads, print its version, its path and the options in effect; "           \
    "2: also each option's range, when a change applies and what it trades")                        \
  X(STATS,              stats,              OPT_REPORT, 0,        0,  2,          AT_USE,           \
    "1 (or text): print the statistics report at exit; json: the same as one JSON object; "        \
    "to stderr, or to HAKMEM_STATS_FILE")                                                           \
  X(BACKGROUND,         background,         OPT_BOOL,  1,         0,  1,          AT_USE,           \
    "1: a background thread (started once the process maps 8 MiB or runs a second thread) "        \
    "returns memory free for PURGE_DELAY_MS even when its thread never calls malloc again; "       \
    "0: no thread, purging happens on allocation slow paths only")                                 \
  X(SECURE,             secure,             OPT_BOOL,  HM_SECURE_BUILD, 0, 1,     AT_START,         \
    "1: guard pages (after each segment's header and at its end, after large blocks) and "          \
    "free lists carved in random order; a -DHAKMEM_SECURE=ON build also encodes and checks every "  \
    "free-list link (then this is on by default)")                                                 \
  X(LEARN,              learn,              OPT_MODE,  HM_LEARN_DEFAULT, 0, 2,    AT_USE,           \
    "the learning layer on the background thread (docs/LEARNING.md): on tunes the options below "  \
    "it owns each epoch; observe decides and logs (HAKMEM_LEARN_LOG) but changes nothing; off "    \
    "neither. An option set in the environment is never changed by it")                           \
  X(LEARN_EPOCH_MS,     learn_epoch_ms,     OPT_NUM,   200,       10, 60000,      AT_USE,           \
    "one epoch of the learner: shorter follows phases sooner, with noisier measurements")          \
  X(LEARN_LAMBDA,       learn_lambda,       OPT_NUM,   50,        0,  1000000,    AT_USE,           \
    "what a resident GiB costs the learner, in thousandths of a CPU: more trades speed for memory") \
  X(LEARN_ACE,          learn_ace,          OPT_BOOL,  1,         0,  1,          AT_USE,           \
    "the learner sizes each class's thread cache and the large cache (ACE)")                        \
  X(LEARN_UCB,          learn_ucb,          OPT_BOOL,  0,         0,  1,          AT_USE,           \
    "the learner picks the purge delay and segment cache (a UCB1 bandit); off by default: "   \
    "its exploration cost more than it found on our benchmarks (docs/LEARNING.md)")         \
  X(LEARN_ELO,          learn_elo,          OPT_BOOL,  0,         0,  1,          AT_USE,           \
    "the learner picks a strategy: budgets, refill batches, L2 carving (an Elo league); off "     \
    "by default, for the same reason")

#define HM_PARAM_INIT(NAME, field, kind, def, lo, hi, when, desc) .field = (def),
hm_params hm_param = {HM_OPTION_TABLE(HM_PARAM_INIT)};

typedef struct hm_option {
  const char *name;         /* without the HAKMEM_ prefix */
  uint16_t offset, size;    /* the hm_params field */
  uint8_t kind, when;
  uint64_t def, min, max;
  const char *desc;
} hm_option;

#define HM_OPTION_ROW(NAME, field, kind_, def_, lo, hi, when_, desc_)                            \
  {.name = #NAME, .offset = offsetof(hm_params, field), .size = sizeof(hm_param.field),         \
   .kind = (kind_), .when = (when_), .def = (def_), .min = (lo), .max = (hi), .desc = (desc_)},
static const hm_option options[] = {HM_OPTION_TABLE(HM_OPTION_ROW)};
#define N_OPTIONS (sizeof options / sizeof options[0])

/* HAKMEM_STATS_FILE: not in the table (a string, read at start-up only,
 * not through hakmem_option_get/set). A relative path is made absolute at
 * start-up, so that a chdir before exit does not move the report. */
char hm_param_stats_file[HM_STATS_FILE_MAX];
/* HAKMEM_LEARN_LOG: the same (learner.c opens it, %p is the pid). */
char hm_param_learn_log[HM_LEARN_LOG_MAX];

/* HAKMEM_* names used by our scripts and test harness, not options. */
static const char *const not_options[] = {"STATS_FILE", "LEARN_LOG", "TEST_EXPECT", "BUILD_DIR", "CMAKE_ARGS",
                                          "PEER_DIR",    "BENCH_FLAGS", "BENCHES"};

/* Options the user set (environment or hakmem_option_set), by index: the
 * learner never changes those. */
static _Atomic uint64_t user_set;
_Static_assert(N_OPTIONS <= 64, "user_set is one bit per option");

int hm_option_user_set(size_t field_offset) {
  for (unsigned i = 0; i < N_OPTIONS; i++)
    if (options[i].offset == field_offset)
      return (int)(atomic_load_explicit(&user_set, memory_order_relaxed) >> i & 1);
  return 0;
}

static void mark_user_set(const hm_option *o) {
  atomic_fetch_or_explicit(&user_set, 1ull << (o - options), memory_order_relaxed);
}

static uint64_t opt_read(const hm_option *o) {
  void *f = (char *)&hm_param + o->offset;
  return o->size == 8 ? __atomic_load_n((uint64_t *)f, __ATOMIC_RELAXED)
                      : __atomic_load_n((uint32_t *)f, __ATOMIC_RELAXED);
}

static void opt_write(const hm_option *o, uint64_t v) {
  void *f = (char *)&hm_param + o->offset;
  if (o->size == 8) __atomic_store_n((uint64_t *)f, v, __ATOMIC_RELAXED);
  else __atomic_store_n((uint32_t *)f, (uint32_t)v, __ATOMIC_RELAXED);
}

/* ---- messages without stdio ------------------------------------------------------ */
typedef struct msgbuf { char b[768]; size_t n; } msgbuf;

static void put_s(msgbuf *m, const char *s) {
  while (*s && m->n < sizeof m->b - 2) m->b[m->n++] = *s++;
}
static void put_u(msgbuf *m, uint64_t v) {
  char t[24];
  int k = 0;
  do { t[k++] = (char)('0' + v % 10); v /= 10; } while (v);
  while (k && m->n < sizeof m->b - 2) m->b[m->n++] = t[--k];
}
static void put_val(msgbuf *m, const char *s, size_t max) {   /* a user string, bounded */
  size_t i = 0;
  for (; s[i] && i < max && m->n < sizeof m->b - 2; i++)
    m->b[m->n++] = (s[i] >= 32 && s[i] < 127) ? s[i] : '?';
  if (s[i]) put_s(m, "...");
}
static void flush_msg(msgbuf *m) {
  m->b[m->n++] = '\n';
  m->b[m->n] = 0;
  hm_os_write_stderr(m->b);
  m->n = 0;
}

static void put_opt_value(msgbuf *m, const hm_option *o, uint64_t v);

/* ---- parsing ----------------------------------------------------------------------- */
/* 0 and *out, or -1 if `s` is not a valid value of option o (range included). */
static int parse_value(const hm_option *o, const char *s, uint64_t *out) {
  if (o->kind == OPT_REPORT && (!strcasecmp(s, "json") || !strcasecmp(s, "text"))) {
    *out = (s[0] | 0x20) == 'j' ? 2 : 1;
    return 0;
  }
  if (o->kind == OPT_MODE) {
    static const char *const modes[] = {"off", "observe", "on"};
    for (unsigned i = 0; i < 3; i++)
      if (!strcasecmp(s, modes[i]) || (s[0] == (char)('0' + i) && !s[1])) {
        *out = i;
        return 0;
      }
    return -1;
  }
  if (o->kind == OPT_BOOL || o->kind == OPT_REPORT) {
    static const char *const t[] = {"1", "on", "yes", "true"}, *const f[] = {"0", "off", "no", "false"};
    for (unsigned i = 0; i < 4; i++) {
      if (!strcasecmp(s, t[i])) { *out = 1; return 0; }
      if (!strcasecmp(s, f[i])) { *out = 0; return 0; }
    }
    return -1;
  }
  if (*s < '0' || *s > '9') return -1;   /* no sign, no blanks */
  uint64_t v = 0;
  for (; *s >= '0' && *s <= '9'; s++) {
    if (v > (UINT64_MAX - 9) / 10) return -1;
    v = v * 10 + (uint64_t)(*s - '0');
  }
  if (*s && o->kind == OPT_BYTES) {   /* K, M, G: binary multiples */
    unsigned shift = (*s == 'k' || *s == 'K') ? 10 : (*s == 'm' || *s == 'M') ? 20
                   : (*s == 'g' || *s == 'G') ? 30 : 0;
    if (!shift) return -1;
    if (v > (UINT64_MAX >> shift)) return -1;
    v <<= shift;
    s++;
    if (*s == 'i' && s[1] == 'B') s += 2;   /* "KiB" */
    else if (*s == 'B' || *s == 'b') s++;
  }
  if (*s) return -1;
  if (v < o->min || v > o->max) return -1;
  *out = v;
  return 0;
}

static void warn_invalid(const hm_option *o, const char *value) {
  msgbuf m = {.n = 0};
  put_s(&m, "hakmem: warning: invalid value HAKMEM_");
  put_s(&m, o->name);
  put_s(&m, "=\"");
  put_val(&m, value, 64);
  put_s(&m, "\" (");
  if (o->kind == OPT_BOOL) {
    put_s(&m, "expected 1/0, on/off, yes/no or true/false");
  } else if (o->kind == OPT_REPORT) {
    put_s(&m, "expected 1/0, on/off, yes/no, true/false, text or json");
  } else if (o->kind == OPT_MODE) {
    put_s(&m, "expected off, observe or on");
  } else {
    put_s(&m, "expected an integer in ");
    put_u(&m, o->min);
    put_s(&m, "..");
    put_u(&m, o->max);
    if (o->kind == OPT_BYTES) put_s(&m, ", K/M/G suffix allowed");
  }
  put_s(&m, "); using the default ");
  put_opt_value(&m, o, o->def);
  flush_msg(&m);
}

/* Edit distance (insert, delete, substitute, swap two neighbours), case
 * blind, of two short names; stops counting at 3. Three rolling rows: this
 * runs at start-up, possibly on a small thread stack. */
static unsigned name_distance(const char *a, size_t la, const char *b, size_t lb) {
  enum { MAXN = 40 };
  if (la > MAXN || lb > MAXN) return 3;
  unsigned rows[3][MAXN + 1];
  unsigned *prev2 = rows[0], *prev = rows[1], *cur = rows[2];
  for (size_t j = 0; j <= lb; j++) prev[j] = (unsigned)j;
  for (size_t i = 1; i <= la; i++) {
    cur[0] = (unsigned)i;
    for (size_t j = 1; j <= lb; j++) {
      char ca = (char)(a[i - 1] & ~0x20), cb = (char)(b[j - 1] & ~0x20);   /* case blind */
      unsigned v = prev[j - 1] + (ca != cb);
      if (prev[j] + 1 < v) v = prev[j] + 1;
      if (cur[j - 1] + 1 < v) v = cur[j - 1] + 1;
      if (i > 1 && j > 1 && ca == (char)(b[j - 2] & ~0x20) && (char)(a[i - 2] & ~0x20) == cb &&
          prev2[j - 2] + 1 < v)
        v = prev2[j - 2] + 1;
      cur[j] = v;
    }
    unsigned *t = prev2;
    prev2 = prev;
    prev = cur;
    cur = t;
  }
  return prev[lb] < 3 ? prev[lb] : 3;
}

/* The option whose name is within two edits of `name` (the closest), or NULL. */
static const hm_option *near_option(const char *name, size_t len) {
  const hm_option *best = NULL;
  unsigned best_d = 3;
  for (unsigned i = 0; i < N_OPTIONS; i++) {
    unsigned dist = name_distance(name, len, options[i].name, strlen(options[i].name));
    if (dist < best_d) {
      best_d = dist;
      best = &options[i];
    }
  }
  return best;
}

static const hm_option *find_option(const char *name, size_t len) {
  if (len > 7 && !strncasecmp(name, "HAKMEM_", 7)) {
    name += 7;
    len -= 7;
  }
  for (unsigned i = 0; i < N_OPTIONS; i++)
    if (strlen(options[i].name) == len && !strncasecmp(options[i].name, name, len))
      return &options[i];
  return NULL;
}

extern char **environ;

/* Report every HAKMEM_* variable that is not an option (a typo would
 * otherwise be silently ignored). */
static void warn_unknown(void) {
  if (!environ) return;
  for (char **e = environ; *e; e++) {
    const char *v = *e;
    if (strncmp(v, "HAKMEM_", 7)) continue;
    const char *eq = strchr(v, '=');
    size_t len = eq ? (size_t)(eq - v) : strlen(v);
    int known = 0;
    for (unsigned i = 0; i < N_OPTIONS && !known; i++)
      known = strlen(options[i].name) == len - 7 && !strncmp(options[i].name, v + 7, len - 7);
    for (unsigned i = 0; i < sizeof not_options / sizeof not_options[0] && !known; i++)
      known = strlen(not_options[i]) == len - 7 && !strncmp(not_options[i], v + 7, len - 7);
    if (known) continue;
    msgbuf m = {.n = 0};
    put_s(&m, "hakmem: warning: unknown variable ");
    char name[72];   /* the name alone: put_val marks a cut with "..." */
    size_t shown = len < 64 ? len : 64;
    memcpy(name, v, shown);
    name[shown] = 0;
    put_val(&m, name, 64);
    if (len > 64) put_s(&m, "...");
    put_s(&m, " ignored");
    const hm_option *near = near_option(v + 7, len - 7);
    if (near) {
      put_s(&m, " (did you mean HAKMEM_");
      put_s(&m, near->name);
      put_s(&m, "?)");
    } else {
      put_s(&m, " (not a hakmem option; see docs/TUNING.md)");
    }
    flush_msg(&m);
  }
}

static void put_opt_value(msgbuf *m, const hm_option *o, uint64_t v) {
  if (o->kind == OPT_REPORT && v == 2) put_s(m, "json");
  else if (o->kind == OPT_MODE) put_s(m, v == 0 ? "off" : v == 1 ? "observe" : "on");
  else put_u(m, v);
}

static const char *const when_names[] = {"at start-up only", "at once", "per thread cache"};

/* A path variable (HAKMEM_STATS_FILE, HAKMEM_LEARN_LOG): into out[max],
 * made absolute, so that a chdir later does not move the file. 1 when set;
 * 0 when unset or too long (with a warning ending in `fallback`). */
static int read_path(const char *var, char *out, size_t max, const char *fallback) {
  const char *v = getenv(var);
  if (!v || !*v) return 0;
  size_t n = 0, k = strlen(v);
  if (v[0] != '/') {
    if (!getcwd(out, max)) goto too_long;   /* no malloc with a buffer */
    n = strlen(out);
    if (n > 1) out[n++] = '/';
  }
  if (n + k >= max) goto too_long;
  memcpy(out + n, v, k + 1);
  return 1;
too_long:
  out[0] = 0;
  msgbuf m = {.n = 0};
  put_s(&m, "hakmem: warning: ");
  put_s(&m, var);
  put_s(&m, "=\"");
  put_val(&m, v, 64);
  put_s(&m, "\" ignored (it could not be made an absolute path below 4096 bytes); ");
  put_s(&m, fallback);
  flush_msg(&m);
  return 0;
}

static void read_paths(void) {
  /* asking for a file asks for the report, unless HAKMEM_STATS says otherwise */
  if (read_path("HAKMEM_STATS_FILE", hm_param_stats_file, sizeof hm_param_stats_file,
                "the report goes to stderr") && !getenv("HAKMEM_STATS"))
    hm_param.stats = 1;
  read_path("HAKMEM_LEARN_LOG", hm_param_learn_log, sizeof hm_param_learn_log,
            "no learning log is written");
}

/* HAKMEM_VERBOSE: what was loaded, from where, and the options in effect. */
static void print_options(unsigned level) {
  msgbuf m = {.n = 0};
  put_s(&m, "hakmem: version ");
  put_s(&m, hakmem_version());
  put_s(&m, ", library ");
  const char *path = hm_os_self_path();
  put_s(&m, *path ? path : "(unknown: /proc/self/maps unreadable)");
  flush_msg(&m);
  put_s(&m, "hakmem: build: ");
  put_s(&m, HAKMEM_OVERRIDE ? "replaces malloc (libhakmem)" : "prefixed API only (libhakmem_api)");
  put_s(&m, HM_SECURE_BUILD ? ", secure build" : ", not a secure build");
#ifdef HAKMEM_DEBUG_COUNTERS
  put_s(&m, ", debug counters");
#endif
  flush_msg(&m);
  for (unsigned i = 0; i < N_OPTIONS; i++) {
    const hm_option *o = &options[i];
    put_s(&m, "hakmem: option HAKMEM_");
    put_s(&m, o->name);
    put_s(&m, "=");
    put_opt_value(&m, o, opt_read(o));
    if (opt_read(o) != o->def) {
      put_s(&m, " (default ");
      put_opt_value(&m, o, o->def);
      put_s(&m, ")");
    }
    flush_msg(&m);
    if (level < 2) continue;
    put_s(&m, "hakmem:   ");
    if (o->kind == OPT_BOOL) {
      put_s(&m, "0 or 1");
    } else if (o->kind == OPT_REPORT) {
      put_s(&m, "0, 1 or json");
    } else if (o->kind == OPT_MODE) {
      put_s(&m, "off, observe or on");
    } else {
      put_u(&m, o->min);
      put_s(&m, "..");
      put_u(&m, o->max);
      if (o->kind == OPT_BYTES) put_s(&m, " bytes");
    }
    put_s(&m, ", set later: ");
    put_s(&m, when_names[o->when]);
    put_s(&m, "; ");
    put_s(&m, o->desc);
    flush_msg(&m);
  }
  put_s(&m, "hakmem: option HAKMEM_STATS_FILE=");
  put_s(&m, hm_param_stats_file[0] ? hm_param_stats_file : "(unset: reports go to stderr)");
  flush_msg(&m);
  put_s(&m, "hakmem: option HAKMEM_LEARN_LOG=");
  put_s(&m, hm_param_learn_log[0] ? hm_param_learn_log : "(unset: no learning log)");
  flush_msg(&m);
}

void hm_params_init(void) {
  for (unsigned i = 0; i < N_OPTIONS; i++) {
    const hm_option *o = &options[i];
    char name[64] = "HAKMEM_";
    size_t nl = strlen(o->name);
    memcpy(name + 7, o->name, nl + 1);
    const char *v = getenv(name);
    if (!v) continue;
    uint64_t x;
    mark_user_set(o);
    if (parse_value(o, v, &x) == 0) opt_write(o, x);
    else {
      opt_write(o, o->def);
      warn_invalid(o, v);
    }
  }
  read_paths();
  warn_unknown();
  if (hm_param.sll_cap_min > hm_param.sll_cap_max) hm_param.sll_cap_min = hm_param.sll_cap_max;
  if (hm_param.verbose) print_options(hm_param.verbose);
}

/* ---- public API ------------------------------------------------------------------------ */
void hm_process_init(void);

HM_EXPORT int hakmem_option_get(const char *name, long long *value) {
  hm_process_init();
  const hm_option *o = name ? find_option(name, strlen(name)) : NULL;
  if (!o) {
    errno = ENOENT;
    return -1;
  }
  if (value) *value = (long long)opt_read(o);
  return 0;
}

HM_EXPORT int hakmem_option_set(const char *name, long long value) {
  hm_process_init();
  const hm_option *o = name ? find_option(name, strlen(name)) : NULL;
  if (!o) {
    errno = ENOENT;
    return -1;
  }
  if (value < 0 || (uint64_t)value < o->min || (uint64_t)value > o->max) {
    errno = ERANGE;
    return -1;
  }
  mark_user_set(o);
  opt_write(o, (uint64_t)value);
  if (hm_param.sll_cap_min > hm_param.sll_cap_max)
    __atomic_store_n(&hm_param.sll_cap_min, hm_param.sll_cap_max, __ATOMIC_RELAXED);
  if (o->when == AT_HEAP && hm_tls_heap != &hm_heap_empty) hm_heap_apply_params(hm_tls_heap);
  if (o->offset == offsetof(hm_params, stats) && value) hm_stats_atexit_register();
  return 0;
}
