/* learner.c -- one epoch of the learning layer: a row of the background
 * thread's table (background.c), so it runs on that thread only, never on a
 * program thread, and allocates nothing (its state is static; the log line
 * is formatted into a fixed buffer).
 *
 * An epoch: read the signals (learn.h) as deltas since the last epoch,
 * price them (the objective), credit the epoch to the arm and strategy that
 * ran it, let ACE resize the caches, pick the next arm and strategy, and --
 * in mode `on` -- publish: store the parameters it owns into hm_param
 * (relaxed atomic stores) and bump hm_param_gen (release). Program threads
 * see the new purge delay and cache bounds at their next use (those are
 * read on slow paths only) and the new bin capacities at their next
 * slow-path tick (hm_heap_tick_slow). No fast path reads anything new.
 * In mode `observe` everything is decided and logged, nothing published:
 * the log is then what the learner would have done, measured under the
 * static settings.
 *
 * Each knob has one owner (learn.h); a knob the user set is left alone.
 * HAKMEM_LEARN_ACE/_UCB/_ELO switch the mechanisms one by one (the
 * ablation in docs/LEARNING.md); a switched-off mechanism holds its knobs at
 * the static values. */
#include "learn.h"

#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* The mechanisms' settings (docs/LEARNING.md says why these). */
#define UCB_GAMMA 0.95      /* plays fade: about 20 epochs of memory */
/* The bonus: rewards sit near 0.5, differences of 0.05 matter. With gamma
 * 0.95 an arm's discounted plays are a few at most (the window is about 20
 * epochs for five arms), so the bonus is explore x ~1; at 0.3 it swamped a
 * 0.1 reward gap and the arms were played almost uniformly (unit_learn: the
 * cheapest arm, at 0.6 against 1.0-1.6, 38 of 100 epochs). An arm unplayed
 * for ~45 epochs is tried again whatever the bonus (ucb1.c). */
#define UCB_EXPLORE 0.03
#define ELO_EVERY 4         /* a challenger plays one epoch in four */
#define ELO_K 24.0
#define ELO_MARGIN 0.05     /* costs within 5 % are a draw */
#define ELO_DECAY 0.02      /* per epoch, toward the base */
#define BIN_EVENT_NS 250.0  /* a refill or flush: a batch moved between a bin and slabs */
#define HUGE_DENSITY_SAMPLES 8   /* large frees measured (mincore) per epoch, at most */
static const hm_ace_cfg ace_cfg = {
  .thrash_events = 64,      /* per epoch, in both directions */
  .idle_epochs = 25,        /* 5 s at the default epoch */
  .large_base_mb = 256,     /* HAKMEM_LARGE_CACHE_BYTES's default */
  .large_min_mb = 64,
  .large_quiet_epochs = 50, /* 10 s */
  .huge_fault_share = 0.05, /* 5 % of a CPU in faults */
  .huge_quiet_share = 0.005,
  .huge_quiet_epochs = 50,  /* 10 s */
  .huge_span_density = 0.75,
  .huge_bloat = 0.1,        /* measured: 8 % (ace.c) */
  .huge_min_fresh = 4 << 20, /* 1,024 faults of 4 KiB: milliseconds of kernel time */
  .huge_gain = 0.75,        /* a quarter cheaper per byte, or the memory they add is not worth it */
  .huge_decay = 0.5,
  .huge_backoff_min = 50,   /* 10 s */
  .huge_backoff_max = 1500, /* 5 min */
};

static struct {
  int started;
  uint64_t t0_ns, last_ns, last_cpu_ns, epoch;
  hm_unit_costs unit;
  /* the counters at the end of the last epoch */
  uint64_t refills[HM_NUM_CLASSES], flushes[HM_NUM_CLASSES];
  hm_os_counts os;
  uint64_t faults, sys_ns, large_hits, large_misses, large_drops;
  /* the mechanisms and what runs now */
  hm_ace ace;
  hm_ucb ucb;
  hm_elo elo;
  unsigned arm, strategy;
  hm_arm fault_arm;      /* the purge arm while UCB1 is off (hm_purge_arm_for_faults) */
  int static_arm;        /* publish the static default arm instead (unpublish) */
  double span_density;   /* the last sample of hm_large_density_take (-1: none yet) */
  int log_opened;   /* log_open ran (log_fd may be 0: a program that closed stdin) */
  int log_fd;       /* -1: no log (not wanted, or it failed) */
} L;

static uint64_t cpu_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The process's page faults and the kernel's CPU time for it (ns). */
static uint64_t faults_now(uint64_t *sys_ns) {
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) != 0) {
    *sys_ns = L.sys_ns;
    return L.faults;
  }
  *sys_ns = (uint64_t)ru.ru_stime.tv_sec * 1000000000u + (uint64_t)ru.ru_stime.tv_usec * 1000u;
  return (uint64_t)ru.ru_minflt + (uint64_t)ru.ru_majflt;
}

#define DELTA(now, last) ((now) >= (last) ? (now) - (last) : 0)

/* The signals since the last call (the first call only takes the baseline). */
static void read_signals(hm_signals *s, uint64_t now_ns) {
  static uint64_t refills[HM_NUM_CLASSES], flushes[HM_NUM_CLASSES];   /* bg thread only */
  hm_stats_bin_events(refills, flushes);
  for (unsigned c = 0; c < HM_NUM_CLASSES; c++) {
    s->refills[c] = DELTA(refills[c], L.refills[c]);
    s->flushes[c] = DELTA(flushes[c], L.flushes[c]);
    L.refills[c] = refills[c];
    L.flushes[c] = flushes[c];
  }
  hm_os_counts os;
  os.maps = __atomic_load_n(&hm_os_count.maps, __ATOMIC_RELAXED);
  os.map_bytes = __atomic_load_n(&hm_os_count.map_bytes, __ATOMIC_RELAXED);
  os.unmaps = __atomic_load_n(&hm_os_count.unmaps, __ATOMIC_RELAXED);
  os.unmap_bytes = __atomic_load_n(&hm_os_count.unmap_bytes, __ATOMIC_RELAXED);
  os.decommits = __atomic_load_n(&hm_os_count.decommits, __ATOMIC_RELAXED);
  os.decommit_bytes = __atomic_load_n(&hm_os_count.decommit_bytes, __ATOMIC_RELAXED);
  os.fresh_seg_bytes = __atomic_load_n(&hm_os_count.fresh_seg_bytes, __ATOMIC_RELAXED);
  os.fresh_seg_huge_bytes = __atomic_load_n(&hm_os_count.fresh_seg_huge_bytes, __ATOMIC_RELAXED);
  os.fresh_span_bytes = __atomic_load_n(&hm_os_count.fresh_span_bytes, __ATOMIC_RELAXED);
  os.fresh_span_huge_bytes = __atomic_load_n(&hm_os_count.fresh_span_huge_bytes, __ATOMIC_RELAXED);
  s->maps = DELTA(os.maps, L.os.maps);
  s->map_bytes = DELTA(os.map_bytes, L.os.map_bytes);
  s->unmaps = DELTA(os.unmaps, L.os.unmaps);
  s->unmap_bytes = DELTA(os.unmap_bytes, L.os.unmap_bytes);
  s->decommits = DELTA(os.decommits, L.os.decommits);
  s->decommit_bytes = DELTA(os.decommit_bytes, L.os.decommit_bytes);
  s->fresh_seg = DELTA(os.fresh_seg_bytes, L.os.fresh_seg_bytes);
  s->fresh_seg_huge = DELTA(os.fresh_seg_huge_bytes, L.os.fresh_seg_huge_bytes);
  s->fresh_span = DELTA(os.fresh_span_bytes, L.os.fresh_span_bytes);
  s->fresh_span_huge = DELTA(os.fresh_span_huge_bytes, L.os.fresh_span_huge_bytes);
  L.os = os;
  uint64_t sys, f = faults_now(&sys), hits, misses, drops;
  s->faults = DELTA(f, L.faults);
  s->sys_ns = DELTA(sys, L.sys_ns);
  L.faults = f;
  L.sys_ns = sys;
  hm_large_counts(&hits, &misses, &drops);
  s->large_hits = DELTA(hits, L.large_hits);
  s->large_misses = DELTA(misses, L.large_misses);
  s->large_drops = DELTA(drops, L.large_drops);
  L.large_hits = hits;
  L.large_misses = misses;
  L.large_drops = drops;
  uint64_t cpu = cpu_now_ns();
  s->cpu_ns = DELTA(cpu, L.last_cpu_ns);
  s->wall_ns = DELTA(now_ns, L.last_ns);
  L.last_cpu_ns = cpu;
  L.last_ns = now_ns;
  /* committed scans every segment under the segment lock: only for the log
   * (the objective prices resident bytes) */
  s->committed = hm_param_learn_log[0] ? hm_stats_committed() : 0;
  s->resident = hm_stats_process_rss();
}

/* ---- the objective ----------------------------------------------------------------- */
static uint64_t bin_events(const hm_signals *s) {
  uint64_t n = 0;
  for (unsigned c = 0; c < HM_NUM_CLASSES; c++) n += s->refills[c] + s->flushes[c];
  return n;
}

double hm_learn_overhead(const hm_signals *s, const hm_unit_costs *u) {
  double ns = (double)bin_events(s) * u->bin_ns + (double)s->faults * u->fault_ns +
              (double)(s->maps + s->unmaps) * u->map_ns + (double)s->decommits * u->decommit_ns;
  return s->wall_ns ? ns / (double)s->wall_ns : 0;
}

double hm_learn_cost(const hm_signals *s, const hm_unit_costs *u, double lambda) {
  return hm_learn_overhead(s, u) + lambda * (double)s->resident / (double)(1u << 30);
}

/* ---- publishing ------------------------------------------------------------------- */
/* Store v into a field the learner owns, unless the user set it. A
 * compare-exchange from the value just read: if hakmem_option_set writes
 * between the check and the store, the store fails and the user's value
 * stays (the learner's side only; no fast path does this). */
#define SET_PARAM(field, v)                                                          \
  do {                                                                               \
    __typeof__(hm_param.field) old_ = __atomic_load_n(&hm_param.field, __ATOMIC_RELAXED); \
    __typeof__(hm_param.field) new_ = (v);                                           \
    if (old_ != new_ && !hm_option_user_set(offsetof(hm_params, field)) &&           \
        __atomic_compare_exchange_n(&hm_param.field, &old_, new_, 0, __ATOMIC_RELAXED, \
                                    __ATOMIC_RELAXED))                               \
      changed = 1;                                                                   \
  } while (0)

/* The purge arm that runs: UCB1's pick, or while UCB1 is off the default
 * arm scaled to the fault cost -- the static one when unpublishing, and when
 * the user set the purge delay (the segment cache then stays at its static
 * size too, unless the user set it as well). */
static const hm_arm *current_arm(void) {
  if (L.static_arm || __atomic_load_n(&hm_param.learn_ucb, __ATOMIC_RELAXED) ||
      hm_option_user_set(offsetof(hm_params, purge_delay_ms)))
    return &hm_arms[L.arm];
  return &L.fault_arm;
}

static void publish(void) {
  int changed = 0;
  const hm_arm *arm = current_arm();
  const hm_strategy *st = &hm_strategies[L.strategy];
  SET_PARAM(purge_delay_ms, arm->purge_delay_ms);
  SET_PARAM(ss_cache_max, arm->ss_cache_max);
  SET_PARAM(refill_batch_bytes, st->refill_batch_bytes);
  SET_PARAM(l2_batch_bytes, st->l2_batch_bytes);
  SET_PARAM(l2_carve_max, st->l2_carve_max);
  SET_PARAM(heap_keep_empty_ss, st->heap_keep_empty);
  SET_PARAM(large_cache_bytes, (size_t)L.ace.large_cache_mb << 20);
  SET_PARAM(huge_pages, L.ace.huge);
  /* Capacities: unless the user sized the caches. */
  int caps_user = hm_option_user_set(offsetof(hm_params, sll_cap_bytes)) ||
                  hm_option_user_set(offsetof(hm_params, sll_grow_bytes)) ||
                  hm_option_user_set(offsetof(hm_params, l2_cap_bytes)) ||
                  hm_option_user_set(offsetof(hm_params, l2_cap_max_bytes)) ||
                  hm_option_user_set(offsetof(hm_params, sll_cap_max));
  for (unsigned c = 0; c < HM_NUM_CLASSES && !caps_user; c++)
    if (hm_param.cap_shift[c] != L.ace.shift[c]) {
      __atomic_store_n(&hm_param.cap_shift[c], L.ace.shift[c], __ATOMIC_RELAXED);
      changed = 1;
    }
  if (changed) atomic_fetch_add_explicit(&hm_param_gen, 1, memory_order_release);
}

/* Back to the static values (the mode was switched off): every knob the
 * learner owns, unless the user set it. */
static void unpublish(void) {
  unsigned arm = L.arm, strategy = L.strategy;
  L.arm = HM_ARM_DEFAULT;
  L.strategy = 0;
  L.static_arm = 1;
  hm_ace_init(&L.ace, ace_cfg.large_base_mb);
  publish();
  L.static_arm = 0;
  L.arm = arm;
  L.strategy = strategy;
}

/* ---- the log ---------------------------------------------------------------------- */
static void log_open(void) {
  char path[HM_LEARN_LOG_MAX + 24];
  size_t n = 0;
  for (const char *p = hm_param_learn_log; *p && n < sizeof path - 24; p++) {
    if (p[0] == '%' && p[1] == 'p') {
      n += (size_t)snprintf(path + n, 24, "%ld", (long)getpid());
      p++;
    } else if (p[0] == '%' && p[1] == '%') {
      path[n++] = '%';
      p++;
    } else {
      path[n++] = *p;
    }
  }
  path[n] = 0;
  L.log_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (L.log_fd < 0) {
    hm_os_write_stderr("hakmem: warning: HAKMEM_LEARN_LOG: cannot open the file; no learning log\n");
    L.log_fd = -1;
    return;
  }
  if (lseek(L.log_fd, 0, SEEK_END) > 0) return;   /* appending to a log: no second header */
  char b[1024];
  int k = snprintf(b, sizeof b,
                   "t_ms,epoch,mode,cpu_ms,wall_ms,refills,flushes,faults,mmaps,munmaps,madvises,"
                   "large_hits,large_misses,large_drops,committed_mb,resident_mb,overhead,cost,"
                   "strategy,strategy_id,arm,p_purge_delay_ms,p_ss_cache_max,p_large_cache_mb,"
                   "p_cache_kb,p_refill_batch_kb,p_l2_batch_kb,p_l2_carve_max,p_heap_keep_empty,"
                   "unit_fault_ns,unit_map_ns,unit_madvise_ns,p_huge_pages,span_density,sys_ms,"
                   "fresh_mb,fresh_huge_mb,huge_ref_ns_per_kb,huge_ns_per_kb,huge_wait");
  for (unsigned i = 0; i < HM_STRATEGIES && k > 0 && (size_t)k < sizeof b; i++)
    k += snprintf(b + k, sizeof b - (size_t)k, ",elo_%s", hm_strategies[i].name);
  if (k > 0 && (size_t)k < sizeof b - 1) {
    b[k++] = '\n';
    if (write(L.log_fd, b, (size_t)k) < 0) L.log_fd = -1;
  }
}

static void log_epoch(const hm_signals *s, double overhead, double cost, unsigned mode) {
  if (!hm_param_learn_log[0]) return;
  if (!L.log_opened) {
    L.log_opened = 1;
    log_open();
  }
  if (L.log_fd < 0) return;
  uint64_t bin_r = 0, bin_f = 0;
  for (unsigned c = 0; c < HM_NUM_CLASSES; c++) {
    bin_r += s->refills[c];
    bin_f += s->flushes[c];
  }
  /* What ran the epoch (in observe mode: what the learner would have run). */
  const hm_arm *arm = current_arm();
  const hm_strategy *st = &hm_strategies[L.strategy];
  char b[1536];
  int k = snprintf(b, sizeof b,
                   "%llu,%llu,%s,%.1f,%.1f,%llu,%llu,%llu,%llu,%llu,%llu,%llu,%llu,%llu,%.1f,%.1f,"
                   "%.5f,%.5f,%s,%u,%u,%u,%u,%u,%llu,%u,%u,%u,%u,%.0f,%.0f,%.0f,%u,%.3f,%.1f,%.1f,%.1f,"
                   "%.1f,%.1f,%u",
                   (unsigned long long)((L.last_ns - L.t0_ns) / 1000000),
                   (unsigned long long)L.epoch, mode == HM_LEARN_ON ? "on" : "observe",
                   (double)s->cpu_ns / 1e6, (double)s->wall_ns / 1e6, (unsigned long long)bin_r,
                   (unsigned long long)bin_f, (unsigned long long)s->faults,
                   (unsigned long long)s->maps, (unsigned long long)s->unmaps,
                   (unsigned long long)s->decommits, (unsigned long long)s->large_hits,
                   (unsigned long long)s->large_misses, (unsigned long long)s->large_drops,
                   (double)s->committed / 1048576.0, (double)s->resident / 1048576.0, overhead, cost,
                   st->name, L.strategy, L.arm, arm->purge_delay_ms, arm->ss_cache_max,
                   L.ace.large_cache_mb, (unsigned long long)(hm_ace_cache_bytes(L.ace.shift) >> 10),
                   st->refill_batch_bytes >> 10, st->l2_batch_bytes >> 10, st->l2_carve_max,
                   st->heap_keep_empty, L.unit.fault_ns, L.unit.map_ns, L.unit.decommit_ns,
                   L.ace.huge, L.span_density, (double)s->sys_ns / 1e6,
                   (double)(s->fresh_seg + s->fresh_span) / 1048576.0,
                   (double)(s->fresh_seg_huge + s->fresh_span_huge) / 1048576.0,
                   hm_ace_huge_ref_price(&L.ace, &ace_cfg) * 1024,
                   hm_ace_huge_price(&L.ace, &ace_cfg) * 1024, L.ace.huge_wait);
  for (unsigned i = 0; i < HM_STRATEGIES && k > 0 && (size_t)k < sizeof b; i++)
    k += snprintf(b + k, sizeof b - (size_t)k, ",%.1f", L.elo.rating[i]);
  if (k > 0 && (size_t)k < sizeof b - 1) {
    b[k++] = '\n';
    if (write(L.log_fd, b, (size_t)k) < 0) L.log_fd = -1;
  }
}

/* ---- the epoch -------------------------------------------------------------------- */
uint32_t hm_learn_interval_ms(void) {
  return __atomic_load_n(&hm_param.learn_epoch_ms, __ATOMIC_RELAXED);
}

static void start(uint64_t now_ns) {
  hm_os_calibrate(&L.unit.fault_ns, &L.unit.map_ns, &L.unit.decommit_ns);
  L.unit.bin_ns = BIN_EVENT_NS;
  L.fault_arm = hm_purge_arm_for_faults(L.unit.fault_ns);
  hm_ace_init(&L.ace, ace_cfg.large_base_mb);
  hm_ucb_init(&L.ucb);
  hm_elo_init(&L.elo);
  L.arm = HM_ARM_DEFAULT;
  L.strategy = 0;
  L.t0_ns = now_ns;
  L.span_density = -1;
  hm_signals s;
  read_signals(&s, now_ns);   /* the baseline */
  L.started = 1;
}

/* A bin event or a syscall of ours in the epoch: the program is using the
 * allocator (else the background thread may sleep). */
static int active(const hm_signals *s) {
  return s->maps || s->unmaps || s->large_hits || s->large_misses || bin_events(s);
}

/* What the program asked of the allocator in an epoch, for ELO's test that
 * two epochs are comparable: its bin events and the CPU time it used. */
static double work(const hm_signals *s) {
  return (double)bin_events(s) + (double)s->cpu_ns / 1000.0 + 1;
}

int hm_learn_epoch(uint64_t now_ms) {
  (void)now_ms;
  unsigned mode = __atomic_load_n(&hm_param.learn, __ATOMIC_RELAXED);
  if (mode == HM_LEARN_OFF) {
    if (L.started) {
      unpublish();
      L.started = 0;
    }
    return 0;
  }
  uint64_t now_ns = hm_os_now_ns();
  if (!L.started) {
    start(now_ns);
    if (mode == HM_LEARN_ON) publish();   /* the purge arm for this machine's faults, at once */
    return 1;
  }
  hm_signals s;
  read_signals(&s, now_ns);
  L.epoch++;
  double lambda = (double)__atomic_load_n(&hm_param.learn_lambda, __ATOMIC_RELAXED) / 1000.0;
  double overhead = hm_learn_overhead(&s, &L.unit), cost = hm_learn_cost(&s, &L.unit, lambda);
  int busy = active(&s);
  log_epoch(&s, overhead, cost, mode);   /* with the arm, strategy and sizes that ran it */
  int use_ace = __atomic_load_n(&hm_param.learn_ace, __ATOMIC_RELAXED);
  int use_ucb = __atomic_load_n(&hm_param.learn_ucb, __ATOMIC_RELAXED);
  int use_elo = __atomic_load_n(&hm_param.learn_elo, __ATOMIC_RELAXED);
  /* Credit the epoch to what ran it; an idle epoch says nothing about
   * speed, and would make every arm look alike. */
  if (busy && use_ucb) hm_ucb_record(&L.ucb, L.arm, cost, UCB_GAMMA);
  if (busy && use_elo)
    hm_elo_record(&L.elo, L.strategy, cost, work(&s), ELO_K, ELO_MARGIN, ELO_DECAY);
  /* Decide the next epoch. An idle epoch prices resident bytes only, and
   * nothing is paid for memory given back that nobody asks for: while the
   * program is idle the purge arm is never lazier than the default. */
  if (!use_ucb) L.arm = HM_ARM_DEFAULT;
  else if (busy) L.arm = hm_ucb_pick(&L.ucb, UCB_EXPLORE);
  else if (L.arm > HM_ARM_DEFAULT) L.arm = HM_ARM_DEFAULT;
  L.strategy = use_elo && busy ? hm_elo_pick(&L.elo, ELO_EVERY) : use_elo ? L.strategy : 0;
  const hm_strategy *st = &hm_strategies[L.strategy];
  if (use_ace) {
    hm_ace_step(&L.ace, &s, &ace_cfg, (uint64_t)st->cache_budget_kb << 10, st->large_ceiling_mb);
    double fault_share = s.wall_ns ? (double)s.faults * L.unit.fault_ns / (double)s.wall_ns : 0;
    /* Large blocks freed in the epoch, sampled only while the answer can
     * change a decision (faults cost, spans not advised yet). */
    int sample = fault_share >= ace_cfg.huge_fault_share && !(L.ace.huge & HM_HUGE_SPANS);
    double density = hm_large_density_take(sample ? HUGE_DENSITY_SAMPLES : 0);
    if (density >= 0) L.span_density = density;
    /* A large span's fresh bytes count as far as the program touches
     * them (the last density sampled): a span written in one page is one
     * fault, however big. */
    double touched = L.span_density >= 0 ? L.span_density : 1;
    hm_huge_signals hs = {
      .fault_share = fault_share,
      .memory_price = lambda * (double)s.resident / (double)(1u << 30),
      .span_density = density,
      .sys_ns = (double)s.sys_ns,
      .fresh = (double)s.fresh_seg + touched * (double)s.fresh_span,
      .fresh_huge = (double)s.fresh_seg_huge + touched * (double)s.fresh_span_huge,
    };
    hm_ace_huge_step(&L.ace, &hs, &ace_cfg);
  } else {
    hm_ace_init(&L.ace, ace_cfg.large_base_mb);
  }
  if (mode == HM_LEARN_ON) publish();
  return busy;
}

void hm_learn_fork_child(void) {
  /* The child starts its own learner (with its own baseline) when its
   * background thread starts; the log file descriptor is the parent's. */
  if (L.log_opened && L.log_fd >= 0) close(L.log_fd);
  memset(&L, 0, sizeof L);
}
