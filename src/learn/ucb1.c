/* ucb1.c -- the purge arms, chosen by discounted UCB1 (learn.h).
 *
 * Why a bandit for these knobs: a purge delay's worth shows only in the
 * cost (faults paid when memory given back is needed again, against
 * resident bytes kept), and no per-event signal says which delay is right.
 * Why discounted: a phase change must reopen the question, so old plays
 * fade (by gamma per epoch) and an arm nobody tried lately gets its bonus
 * back. */
#include "learn.h"

/* From eager to lazy. The middle one is the static default (1 s, 16). */
const hm_arm hm_arms[HM_ARMS] = {
  {50, 4},
  {250, 8},
  {1000, 16},
  {4000, 32},
  {15000, 64},
};

/* The default arm where a page fault costs fault_ns: memory given back is
 * paid for in faults when it is needed again, so the delay that costs a
 * program the same share of its time scales with what a fault costs. The
 * static 1 s / 16 segments was set where a fault costs 12-24 us (a VM);
 * where one costs 1 us or less, 100 ms / 8 segments measured the same
 * throughput within noise and 10-30 % less peak RSS on the thread-churn
 * benchmarks (4 segments: 6 % slower on Larson with 4 threads;
 * docs/analysis/handoff-footprint.md, seventh session). Linear in between:
 * 100 ms per us, 100 ms .. 1 s; the segment cache in proportion, 8 .. 16. */
hm_arm hm_purge_arm_for_faults(double fault_ns) {
  double ms = fault_ns / 10.0;   /* 100 ms per us */
  uint32_t delay = ms <= 100 ? 100 : ms >= 1000 ? 1000 : (uint32_t)ms;
  uint32_t cache = delay * 16 / 1000;
  hm_arm a = {delay, cache < 8 ? 8 : cache};
  return a;
}

void hm_ucb_init(hm_ucb *u) {
  for (unsigned a = 0; a < HM_ARMS; a++) u->plays[a] = u->reward[a] = 0;
  u->mean_cost = 0;
  u->total = 0;
}

/* Arms never played (or faded below a tenth of a play) first, the default
 * among them first, so that the first epochs run as the static settings do;
 * then the highest mean reward plus explore x sqrt(2 ln N / n). */
unsigned hm_ucb_pick(const hm_ucb *u, double explore) {
  if (u->plays[HM_ARM_DEFAULT] < 0.1) return HM_ARM_DEFAULT;
  for (unsigned a = 0; a < HM_ARMS; a++)
    if (u->plays[a] < 0.1) return a;
  unsigned best = HM_ARM_DEFAULT;
  double best_v = -1;
  double ln_n = hm_ln(u->total > 1 ? u->total : 1);
  for (unsigned a = 0; a < HM_ARMS; a++) {
    double v = u->reward[a] / u->plays[a] + explore * hm_sqrt(2 * ln_n / u->plays[a]);
    if (v > best_v) {
      best_v = v;
      best = a;
    }
  }
  return best;
}

void hm_ucb_record(hm_ucb *u, unsigned arm, double cost, double gamma) {
  if (arm >= HM_ARMS || !(cost >= 0)) return;   /* NaN too */
  for (unsigned a = 0; a < HM_ARMS; a++) {
    u->plays[a] *= gamma;
    u->reward[a] *= gamma;
  }
  u->total = u->total * gamma + 1;
  /* The scale: a discounted mean of every arm's cost, so rewards sit
   * around 0.5 whatever the program's absolute cost. */
  u->mean_cost = u->total > 1 ? u->mean_cost + (cost - u->mean_cost) / u->total : cost;
  double scale = u->mean_cost > 1e-12 ? u->mean_cost : 1e-12;
  u->plays[arm] += 1;
  u->reward[arm] += 1 / (1 + cost / scale);
}
