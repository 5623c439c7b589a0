/* learn.h -- the learning layer's data: what one epoch measures, what the
 * learner decides, and the three mechanisms (ACE, UCB1, ELO) as plain state
 * with pure functions, so that tests/unit/unit_learn.c drives them with
 * synthetic signals. learner.c runs them on the background thread, one epoch
 * per row of the background table; docs/LEARNING.md is this file for people.
 *
 * Who owns which knob (one owner each, so no two mechanisms fight):
 *   ELO   the strategy: a named bundle of shape settings and of the budgets
 *         the others work in (the thread-cache budget, the large-cache
 *         ceiling, refill batches, L2 carving, empty segments kept)
 *   UCB1  the purge arm: purge delay and process-wide segment cache (time
 *         against space: only the cost shows which is right); while UCB1
 *         is off, the default arm scaled to the measured fault cost
 *   ACE   each class's thread-cache size and the large-span cache bytes,
 *         from per-class refill/flush and large hit/miss/drop counts,
 *         within the strategy's budget and ceiling (a lower budget wins:
 *         ACE shrinks to fit it at once); and huge pages (HM_HUGE_*), from
 *         the share of time page faults take and how densely the program
 *         touches its large blocks
 * A knob the user set (HAKMEM_* in the environment, or hakmem_option_set)
 * has no owner: the learner leaves it as the user set it.
 *
 * Invariants: nothing here allocates or locks; every function is
 * deterministic given its inputs (randomness comes in as an argument). */
#ifndef HAKMEM_LEARN_H
#define HAKMEM_LEARN_H

#include <stdint.h>

#include "../hakmem_internal.h"

/* ---- arithmetic without libm --------------------------------------------------- */
/* The library links libc and pthreads only; the learner needs a logarithm,
 * an exponential and a square root to about 1e-6, which these give. */
static inline double hm_ln(double x) {   /* x > 0 */
  union { double d; uint64_t u; } v = {x};
  int e = (int)((v.u >> 52) & 0x7ff) - 1023;
  v.u = (v.u & ~(0x7ffull << 52)) | (1023ull << 52);   /* mantissa in [1, 2) */
  double m = v.d;
  if (m > 1.41421356237) { m /= 2; e++; }
  double t = (m - 1) / (m + 1), t2 = t * t, sum = 0, term = t;   /* ln m = 2 atanh t */
  for (int k = 1; k < 30; k += 2, term *= t2) sum += term / k;
  return 2 * sum + e * 0.69314718055994531;
}
static inline double hm_exp(double x) {
  if (x < -700) return 0;
  if (x > 700) x = 700;
  int n = (int)(x / 0.69314718055994531 + (x < 0 ? -0.5 : 0.5));
  double r = x - n * 0.69314718055994531, sum = 1, term = 1;   /* |r| <= ln2 / 2 */
  for (int k = 1; k < 20; k++) sum += (term *= r / k);
  union { double d; uint64_t u; } v = {sum};
  v.u += (uint64_t)(int64_t)n << 52;
  return v.d;
}
static inline double hm_sqrt(double x) {
  if (!(x > 0)) return 0;
  union { double d; uint64_t u; } v = {x};
  v.u = (v.u >> 1) + (511ull << 52);   /* halve the exponent: within 2x of the root */
  double g = v.d * 1.5;                 /* above it, so Newton descends */
  for (int i = 0; i < 60; i++) {
    double n = (g + x / g) / 2;
    if (n >= g) break;
    g = n;
  }
  return g;
}

/* ---- one epoch's signals --------------------------------------------------- */
/* Counts are deltas over the epoch; committed and resident are at its end.
 * All are read off the fast paths (slow-path statistics, the OS layer's
 * syscall counts, getrusage, /proc/self/statm). */
typedef struct hm_signals {
  uint64_t wall_ns, cpu_ns;          /* epoch length; process CPU time in it */
  uint64_t sys_ns;                   /* ... of which in the kernel (getrusage) */
  uint64_t refills[HM_NUM_CLASSES];  /* bin underflows per class */
  uint64_t flushes[HM_NUM_CLASSES];  /* bin overflows per class */
  uint64_t faults;                   /* minor + major page faults (whole process) */
  uint64_t maps, unmaps, decommits;  /* hakmem's own mmap / munmap / madvise calls */
  uint64_t map_bytes, unmap_bytes, decommit_bytes;
  /* memory handed out uncommitted (hm_os_counts): segment units and large
   * spans, each without and with huge-page advice */
  uint64_t fresh_seg, fresh_seg_huge, fresh_span, fresh_span_huge;
  uint64_t large_hits, large_misses, large_drops;   /* large cache: reused, mapped, freed unkept */
  uint64_t committed, resident;      /* hakmem's committed estimate; process RSS */
} hm_signals;

/* Unit costs of the events that make up the objective, in ns. Faults,
 * maps and decommits are measured when the learner starts (learner.c,
 * calibrate); a bin event is a refill or a flush: its slow path moves a
 * batch between a bin and slabs (callgrind: 300-600 instructions). */
typedef struct hm_unit_costs {
  double bin_ns, fault_ns, map_ns, decommit_ns;
} hm_unit_costs;

/* The objective of an epoch, lower is better:
 *   overhead = (bin events x bin_ns + faults x fault_ns + (maps + unmaps) x
 *              map_ns + decommits x decommit_ns) / wall time
 *   cost     = overhead + lambda x resident GiB
 * overhead is the share of one CPU the allocator's slow work took; lambda
 * (HAKMEM_LEARN_LAMBDA, per mille) prices a resident GiB in the same unit. */
double hm_learn_overhead(const hm_signals *s, const hm_unit_costs *u);
double hm_learn_cost(const hm_signals *s, const hm_unit_costs *u, double lambda);

/* ---- ELO: the strategies ------------------------------------------------------- */
#define HM_STRATEGIES 12
typedef struct hm_strategy {
  const char *name;
  uint32_t cache_budget_kb;      /* ACE: all bins of one thread, at most (KiB) */
  uint32_t large_ceiling_mb;     /* ACE: large-span cache at most (MiB) */
  uint32_t refill_batch_bytes;   /* Tiny refill size */
  uint32_t l2_batch_bytes;       /* L2 refill size */
  uint32_t l2_carve_max;         /* L2 blocks carved at once */
  uint32_t heap_keep_empty;      /* empty segments a thread keeps per kind */
} hm_strategy;
extern const hm_strategy hm_strategies[HM_STRATEGIES];   /* [0] is the static default */

#define HM_ELO_BASE 1500.0
typedef struct hm_elo {
  double rating[HM_STRATEGIES];
  uint32_t games[HM_STRATEGIES];
  unsigned leader;               /* highest rating */
  unsigned next_challenger;      /* round-robin over the others */
  unsigned epochs_since_match;
  /* The leader's last epoch, the reference a challenger is judged against. */
  double leader_cost, leader_work;
  int leader_cost_valid;
} hm_elo;
void hm_elo_init(hm_elo *e);
/* The strategy for the next epoch: a challenger every `every` epochs (the
 * others round-robin), the leader otherwise. */
unsigned hm_elo_pick(hm_elo *e, unsigned every);
/* The cost of the epoch strategy `played` ran, and how much work the
 * program did in it (any measure, e.g. its bin events and faults; 0:
 * unknown). A challenger's epoch is a game against the leader's latest
 * epoch (a tie within `margin`, relative) -- but only when the two did
 * comparable work (within a factor HM_ELO_WORK_RATIO), since epochs of
 * different phases say nothing about the strategies. Ratings move by
 * k x (score - expected) and every rating decays toward the base by `decay`
 * per epoch, so that an old phase's winner can be caught. */
#define HM_ELO_WORK_RATIO 2.0
void hm_elo_record(hm_elo *e, unsigned played, double cost, double work, double k, double margin,
                   double decay);

/* ---- UCB1: the purge arms ----------------------------------------------------- */
#define HM_ARMS 5
typedef struct hm_arm {
  uint32_t purge_delay_ms;
  uint32_t ss_cache_max;
} hm_arm;
extern const hm_arm hm_arms[HM_ARMS];   /* hm_arms[HM_ARM_DEFAULT] is the static default */
#define HM_ARM_DEFAULT 2
/* The purge arm while UCB1 is off (the default): hm_arms[HM_ARM_DEFAULT]
 * scaled to what a page fault costs here (fault_ns, the learner's
 * calibration): 100 ms / 8 segments up to a 1 us fault, 1 s / 16 from
 * 10 us, linear in between. */
hm_arm hm_purge_arm_for_faults(double fault_ns);

/* Discounted UCB1: every past play and reward is multiplied by gamma each
 * epoch, so an arm's estimate forgets a phase that ended (window about
 * 1 / (1 - gamma) epochs) and exploration reopens. Rewards are in (0, 1]:
 * 1 / (1 + cost / mean cost). */
typedef struct hm_ucb {
  double plays[HM_ARMS], reward[HM_ARMS];   /* discounted count and sum */
  double mean_cost;                         /* discounted mean over all arms: the scale */
  double total;                             /* discounted count of all plays */
} hm_ucb;
void hm_ucb_init(hm_ucb *u);
unsigned hm_ucb_pick(const hm_ucb *u, double explore);   /* explore: the c of the bonus */
void hm_ucb_record(hm_ucb *u, unsigned arm, double cost, double gamma);

/* ---- ACE: per-class caches and the large cache ------------------------------------ */
/* A class's scale is a power of two applied to its base capacity (the
 * static option's): shift 0 is the default, +1 doubles, -1 halves. */
#define HM_ACE_SHIFT_MIN (-2)
#define HM_ACE_SHIFT_MAX 5
typedef struct hm_ace {
  int8_t shift[HM_NUM_CLASSES];
  uint16_t idle_epochs[HM_NUM_CLASSES];   /* epochs in a row without a bin event */
  uint32_t large_cache_mb;                /* current large-cache bytes (MiB) */
  uint32_t large_quiet;                   /* epochs in a row without a miss or drop */
  uint32_t huge;                          /* HM_HUGE_* bits asked for */
  uint32_t huge_quiet;                    /* epochs in a row with few faults */
  /* What the kernel's time costs per fresh byte (hm_ace_huge_step),
   * discounted sums: epochs whose fresh memory was (almost) all without
   * huge-page advice -- the reference -- and epochs with advised memory in
   * them, split into the two kinds. */
  double ref_sys_ns, ref_bytes;
  double mix_sys_ns, mix_bytes, mix_huge_bytes;
  uint32_t huge_wait;                     /* epochs before huge pages may be tried again */
  uint32_t huge_backoff;                  /* the next wait after a failed trial */
} hm_ace;
/* The thresholds ACE works with (learner.c passes its defaults; the tests
 * their own). */
typedef struct hm_ace_cfg {
  uint64_t thrash_events;    /* min(refills, flushes) in an epoch that makes a class grow */
  uint32_t idle_epochs;      /* epochs without a bin event before a grown class shrinks */
  uint32_t large_base_mb, large_min_mb;   /* the default and the floor of the large cache */
  uint32_t large_quiet_epochs;             /* epochs without misses before it halves */
  double huge_fault_share;    /* faults took this share of a CPU in an epoch: huge pages on */
  double huge_quiet_share;    /* below this for huge_quiet_epochs: off again */
  uint32_t huge_quiet_epochs;
  double huge_span_density;   /* freed large blocks at least this resident: spans too */
  double huge_bloat;          /* the share of resident memory huge pages may add */
  double huge_min_fresh;      /* fresh bytes in an epoch that make its kernel time a price */
  double huge_gain;           /* huge pages stay while their price is at most this x the reference */
  double huge_decay;          /* the prices' sums are multiplied by this per priced epoch */
  uint32_t huge_backoff_min, huge_backoff_max;   /* epochs off after a failed trial */
} hm_ace_cfg;
void hm_ace_init(hm_ace *a, uint32_t large_base_mb);
/* The bytes one thread's bins may hold with these shifts (each class's
 * capacity in blocks times its block size, as params.c computes it). */
uint64_t hm_ace_cache_bytes(const int8_t *shift);
/* One epoch: grow the classes that thrash (largest first) while the
 * budget allows, shrink a grown class idle for cfg->idle_epochs, and shrink
 * the largest grown classes until the total fits budget_bytes. The large
 * cache doubles while spans are dropped or missed (up to the ceiling) and
 * halves toward the floor after a quiet spell. Returns 1 if anything moved. */
int hm_ace_step(hm_ace *a, const hm_signals *s, const hm_ace_cfg *cfg, uint64_t budget_bytes,
                uint32_t large_ceiling_mb);
/* Huge pages, one epoch: what it measured. */
typedef struct hm_huge_signals {
  double fault_share;    /* the share of one CPU the epoch's page faults took, each at
                          * the measured cost of a 4 KiB one */
  double memory_price;   /* what resident memory costs in the objective: lambda x resident GiB */
  double span_density;   /* the resident share of the large blocks freed in the epoch
                          * (hm_large_density_take); < 0: none sampled */
  double sys_ns;         /* the kernel's CPU time for the process in the epoch */
  double fresh;          /* bytes hakmem handed out uncommitted, without huge-page advice */
  double fresh_huge;     /* ... and with it */
} hm_huge_signals;
/* Open loop, the rule: when faults take cfg->huge_fault_share or more of a
 * CPU, and more than cfg->huge_bloat x memory_price (the memory huge pages
 * would add, priced), the segments of growing heaps get huge pages, and new
 * large spans too when span_density is at least cfg->huge_span_density.
 * Both go off after cfg->huge_quiet_epochs epochs in a row below
 * cfg->huge_quiet_share.
 * Closed loop, the check: a fault's cost at 4 KiB says nothing about what a
 * 2 MiB one costs here (three times less per byte on one VM, forty on
 * another, and on a third more, depending on what backs the guest's memory),
 * so the rule is a hypothesis, tried and measured. An epoch with at least
 * cfg->huge_min_fresh fresh bytes prices the kernel's time per fresh byte:
 * as the reference when none of them had the advice; when at least an
 * eighth as many had it as not, the advised bytes' price is what is left of
 * the kernel's time once the others are paid at the reference (epochs in
 * between price nothing). Huge pages start as a trial (HM_HUGE_TRIAL: a
 * quarter of the new segments and spans), only once the reference is known;
 * they stay (the trial bit goes) while their price is at most cfg->huge_gain
 * x the reference, and go off as soon as it is more -- not to be tried
 * again for cfg->huge_backoff_min epochs, twice that after the next
 * failure, up to cfg->huge_backoff_max. Returns 1 if a bit changed. */
int hm_ace_huge_step(hm_ace *a, const hm_huge_signals *in, const hm_ace_cfg *cfg);
/* The prices (ns per fresh byte) hm_ace_huge_step judges by; < 0: not known. */
double hm_ace_huge_ref_price(const hm_ace *a, const hm_ace_cfg *cfg);
double hm_ace_huge_price(const hm_ace *a, const hm_ace_cfg *cfg);

/* ---- the learner (learner.c) ------------------------------------------------------- */
enum { HM_LEARN_OFF = 0, HM_LEARN_OBSERVE = 1, HM_LEARN_ON = 2 };
uint32_t hm_learn_interval_ms(void);
/* The background row: 1 while the program uses the allocator (the thread
 * keeps its cadence), 0 when it does not (the thread may sleep). */
int hm_learn_epoch(uint64_t now_ms);
void hm_learn_fork_child(void);

#endif
