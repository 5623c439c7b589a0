/* elo.c -- the strategies and their league (learn.h).
 *
 * A strategy is a coherent bundle: the budgets ACE works in and the shape
 * settings no per-event signal sizes well (refill batches, L2 carving,
 * empty segments kept). Bundles, not knobs one by one: the settings of a
 * bundle are meant to go together, and twelve bundles are few enough to
 * rate on live epochs.
 *
 * The league: the leader plays most epochs; every few epochs a challenger
 * (round-robin) plays one, and that epoch is a game against the leader's
 * latest epoch -- lower cost wins, within a margin a draw -- if the two
 * epochs did comparable work (a challenger's epoch in another phase than
 * the leader's reference plays no game). Ratings move by the usual Elo
 * update and decay toward the base, so that the winner of a phase that
 * ended loses its lead unless it keeps winning. */
#include "learn.h"

/* The default's budget holds the static caches (19.1 MiB a thread, nearly
 * all of it the medium classes' ceilings) with room for ACE to grow the
 * classes that thrash.
 *  name          budget  large   refill  l2 batch  carve  keep
 *                KiB     MiB     bytes   bytes            empty
 * 19516 KiB holds what the static options' caches hold at most (hm_ace_cache_bytes
 * with every shift 0: 19515.75 KiB, 2110 of Tiny bins -- 128 KiB per class grown,
 * 1024 blocks at most --, 17405.75 of L2 bins -- 512 KiB per class, more in the
 * classes above 128 KiB, which keep SLL_CAP_MIN blocks): with a smaller one, ACE
 * would shrink the static caches under the default. frugal's is the least that
 * every class at HM_ACE_SHIFT_MIN fits in (4727 KiB). */
const hm_strategy hm_strategies[HM_STRATEGIES] = {
  {"default",     32768,   256,   8192,   131072,    16,    1},   /* the static options + room */
  {"lean",         6144,    64,   4096,    65536,     8,    0},
  {"frugal",       4864,    32,   2048,    32768,     4,    0},
  {"throughput",  65536,  1024,  16384,   262144,    64,    2},
  {"server",      32768,   512,   8192,   131072,    32,    2},
  {"bursty",      65536,   256,   8192,   262144,    64,    4},
  {"large_heavy", 32768,  4096,   8192,   131072,    16,    1},
  {"tiny_heavy",  32768,   256,  32768,   131072,    16,    1},
  {"mid_heavy",   65536,   256,   8192,   524288,    32,    2},
  {"prodcons",    32768,   256,  32768,   262144,    32,    2},
  {"batch",       65536,   512,  32768,   524288,   128,    4},
  {"balanced",    32768,   512,  16384,   262144,    32,    1},
};

void hm_elo_init(hm_elo *e) {
  for (unsigned i = 0; i < HM_STRATEGIES; i++) {
    e->rating[i] = HM_ELO_BASE;
    e->games[i] = 0;
  }
  e->leader = 0;
  e->next_challenger = 1;
  e->epochs_since_match = 0;
  e->leader_cost = e->leader_work = 0;
  e->leader_cost_valid = 0;
}

unsigned hm_elo_pick(hm_elo *e, unsigned every) {
  if (every == 0 || ++e->epochs_since_match < every || !e->leader_cost_valid) return e->leader;
  e->epochs_since_match = 0;
  unsigned c = e->next_challenger;
  if (c == e->leader) c = (c + 1) % HM_STRATEGIES;
  e->next_challenger = (c + 1) % HM_STRATEGIES;
  return c;
}

static double expected(double ra, double rb) { return 1 / (1 + hm_exp((rb - ra) / 400 * 2.302585092994046)); }

static int comparable(double a, double b) {
  if (a <= 0 || b <= 0) return 1;   /* unknown: judge on cost alone */
  return a <= b * HM_ELO_WORK_RATIO && b <= a * HM_ELO_WORK_RATIO;
}

void hm_elo_record(hm_elo *e, unsigned played, double cost, double work, double k,
                   double margin, double decay) {
  if (played >= HM_STRATEGIES || !(cost >= 0)) return;
  for (unsigned i = 0; i < HM_STRATEGIES; i++)
    e->rating[i] = HM_ELO_BASE + (e->rating[i] - HM_ELO_BASE) * (1 - decay);
  if (played == e->leader) {
    e->leader_cost = cost;
    e->leader_work = work;
    e->leader_cost_valid = 1;
  } else if (e->leader_cost_valid && comparable(work, e->leader_work)) {
    double ref = e->leader_cost, score;
    if (cost < ref * (1 - margin)) score = 1;
    else if (cost > ref * (1 + margin)) score = 0;
    else score = 0.5;
    unsigned l = e->leader;
    double ea = expected(e->rating[played], e->rating[l]);
    e->rating[played] += k * (score - ea);
    e->rating[l] -= k * (score - ea);
    e->games[played]++;
    e->games[l]++;
  }
  /* The leader: the highest rating (the old leader keeps ties). */
  unsigned best = e->leader;
  for (unsigned i = 0; i < HM_STRATEGIES; i++)
    if (e->rating[i] > e->rating[best]) best = i;
  if (best != e->leader) {
    e->leader = best;
    e->leader_cost_valid = 0;   /* its next epoch sets the reference */
  }
}
