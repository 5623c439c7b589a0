/* ace.c -- the adaptive cache engine (learn.h): each class's thread-cache
 * size and the large-span cache, from the signals that say a cache is too
 * small (learn.h has who owns what).
 *
 * A class thrashes when its bin both underflows and overflows in the same
 * epoch: blocks go bin -> slab -> bin, and a bigger bin would have kept
 * them (refills alone mean the thread allocates more than it frees there,
 * which a bigger bin does not fix; flushes alone, the reverse). Growth
 * doubles, largest thrash first, while the per-thread budget allows; a
 * grown class idle for a while halves back; when the budget drops (a new
 * strategy) the largest grown classes halve until it fits, and, once the
 * budget allows again, a class below its default that is in use grows back
 * one doubling per epoch (the busiest first).
 *
 * The large cache: a span dropped (freed, not kept: over the bytes or a
 * quarter of them) or missed (mapped fresh) while spans are being reused
 * says the cache is too small; it doubles up to the strategy's ceiling, and
 * halves toward the floor after a quiet spell. */
#include "learn.h"

void hm_ace_init(hm_ace *a, uint32_t large_base_mb) {
  for (unsigned c = 0; c < HM_NUM_CLASSES; c++) {
    a->shift[c] = 0;
    a->idle_epochs[c] = 0;
  }
  a->large_cache_mb = large_base_mb;
  a->large_quiet = 0;
  a->huge = 0;
  a->huge_quiet = 0;
  a->ref_sys_ns = a->ref_bytes = 0;
  a->mix_sys_ns = a->mix_bytes = a->mix_huge_bytes = 0;
  a->huge_wait = 0;
  a->huge_backoff = 0;
}

uint64_t hm_ace_cache_bytes(const int8_t *shift) {
  uint64_t total = 0;
  for (unsigned c = 0; c < HM_NUM_CLASSES; c++)
    total += (uint64_t)hm_params_bin_cap_max_shifted(c, shift[c]) * hm_class_size[c];
  return total;
}

static uint64_t thrash(const hm_signals *s, unsigned c) {
  return s->refills[c] < s->flushes[c] ? s->refills[c] : s->flushes[c];
}

/* How much a class wants one more doubling: its thrash when it thrashes
 * enough; a class shrunk below its default (a lower budget) that is in use
 * at all wants its default back, ranked by its bin events. 0: nothing. */
static uint64_t want(const hm_ace *a, const hm_signals *s, const hm_ace_cfg *cfg, unsigned c) {
  if (a->shift[c] >= HM_ACE_SHIFT_MAX) return 0;
  uint64_t t = thrash(s, c);
  if (t >= cfg->thrash_events && t > 0) return t;
  if (a->shift[c] < 0) return s->refills[c] + s->flushes[c];
  return 0;
}

int hm_ace_step(hm_ace *a, const hm_signals *s, const hm_ace_cfg *cfg, uint64_t budget_bytes,
                uint32_t large_ceiling_mb) {
  int moved = 0;
  /* Idle classes: count, and halve a grown one idle long enough. */
  for (unsigned c = 0; c < HM_NUM_CLASSES; c++) {
    if (s->refills[c] || s->flushes[c]) {
      a->idle_epochs[c] = 0;
      continue;
    }
    if (a->idle_epochs[c] < UINT16_MAX) a->idle_epochs[c]++;
    if (a->shift[c] > 0 && a->idle_epochs[c] >= cfg->idle_epochs) {
      a->shift[c]--;
      a->idle_epochs[c] = 0;
      moved = 1;
    }
  }
  /* Growth: the thrashing classes, the worst first, one doubling each. */
  uint64_t total = hm_ace_cache_bytes(a->shift);
  uint8_t grown[HM_NUM_CLASSES] = {0};
  for (;;) {
    unsigned best = HM_NUM_CLASSES;
    uint64_t best_t = 0;
    for (unsigned c = 0; c < HM_NUM_CLASSES; c++) {
      uint64_t t = grown[c] ? 0 : want(a, s, cfg, c);
      if (t > best_t) {
        best = c;
        best_t = t;
      }
    }
    if (best == HM_NUM_CLASSES) break;
    grown[best] = 1;
    uint64_t now_b = (uint64_t)hm_params_bin_cap_max_shifted(best, a->shift[best]) *
                     hm_class_size[best];
    uint64_t next_b = (uint64_t)hm_params_bin_cap_max_shifted(best, a->shift[best] + 1) *
                      hm_class_size[best];
    if (total - now_b + next_b > budget_bytes) continue;   /* a smaller one may still fit */
    a->shift[best]++;
    total += next_b - now_b;
    moved = 1;
  }
  /* Over budget: halve the largest grown bins (then the largest at all,
   * down to the floor) until it fits. */
  while (total > budget_bytes) {
    unsigned worst = HM_NUM_CLASSES;
    uint64_t worst_b = 0;
    for (int pass = 0; pass < 2 && worst == HM_NUM_CLASSES; pass++)
      for (unsigned c = 0; c < HM_NUM_CLASSES; c++) {
        if (a->shift[c] <= (pass ? HM_ACE_SHIFT_MIN : 0)) continue;
        uint64_t b = (uint64_t)hm_params_bin_cap_max_shifted(c, a->shift[c]) * hm_class_size[c];
        if (b > worst_b) {
          worst = c;
          worst_b = b;
        }
      }
    if (worst == HM_NUM_CLASSES) break;   /* everything at the floor */
    a->shift[worst]--;
    total = hm_ace_cache_bytes(a->shift);
    moved = 1;
  }
  /* The large cache. */
  uint32_t ceiling = large_ceiling_mb > cfg->large_min_mb ? large_ceiling_mb : cfg->large_min_mb;
  if (s->large_drops || (s->large_misses && s->large_hits)) {
    a->large_quiet = 0;
    if (a->large_cache_mb < ceiling) {
      a->large_cache_mb = a->large_cache_mb * 2 < ceiling ? a->large_cache_mb * 2 : ceiling;
      moved = 1;
    }
  } else if (++a->large_quiet >= cfg->large_quiet_epochs) {
    a->large_quiet = 0;
    uint32_t floor = cfg->large_min_mb;
    if (a->large_cache_mb > floor) {
      a->large_cache_mb = a->large_cache_mb / 2 > floor ? a->large_cache_mb / 2 : floor;
      moved = 1;
    }
  }
  if (a->large_cache_mb > ceiling) {
    a->large_cache_mb = ceiling;
    moved = 1;
  }
  return moved;
}

/* Huge pages: a page fault is cheap on bare metal (well under a
 * microsecond) and 2-25 us in some virtual machines (this project's); one fault per 2 MiB
 * instead of 512 matters only where faults take a visible share of the
 * time, and costs memory where the program touches a few pages of what it
 * allocates (on a burst of 64 B - 64 KiB blocks, 8 % more resident: size
 * classes' rounding and page tails, never touched with 4 KiB pages, are
 * committed with 2 MiB ones). So: on when faults cost more than that
 * memory is worth (lambda), for the memory that will be touched
 * anyway (the segments of a growing heap, superslab.c; large spans once
 * the large blocks it frees show the program touches them), and off
 * again after a quiet spell, so that a program that stopped growing does
 * not keep asking for 2 MiB at a time.
 *   And only where a 2 MiB fault is cheaper per byte than 512 small ones,
 * which is not a given: on a VM whose host takes back the guest's free
 * 2 MiB blocks (free page reporting, a balloon), every huge page is fresh
 * host memory, faulted in again by the host, while 4 KiB pages come from
 * the guest's hot lists -- there a burst of 256 MiB took 0.07-0.6 s with
 * huge pages against 0.12 s without (docs/analysis/huge-pages.md). The
 * kernel's CPU time is what both cost, so that is what is measured: per
 * fresh byte (memory hakmem hands out uncommitted, whose first touch
 * faults), the advised bytes against the others (learn.h). */
double hm_ace_huge_ref_price(const hm_ace *a, const hm_ace_cfg *cfg) {
  return a->ref_bytes >= cfg->huge_min_fresh ? a->ref_sys_ns / a->ref_bytes : -1;
}

double hm_ace_huge_price(const hm_ace *a, const hm_ace_cfg *cfg) {
  double ref = hm_ace_huge_ref_price(a, cfg);
  if (ref < 0 || a->mix_huge_bytes < cfg->huge_min_fresh) return -1;
  double rest = a->mix_sys_ns - ref * (a->mix_bytes - a->mix_huge_bytes);
  return rest > 0 ? rest / a->mix_huge_bytes : 0;
}

static void huge_price_epoch(hm_ace *a, const hm_huge_signals *in, const hm_ace_cfg *cfg) {
  double bytes = in->fresh + in->fresh_huge, d = cfg->huge_decay;
  if (bytes < cfg->huge_min_fresh) return;   /* too little faulted: the kernel did other things */
  if (in->fresh_huge <= 0) {
    a->ref_sys_ns = a->ref_sys_ns * d + in->sys_ns;
    a->ref_bytes = a->ref_bytes * d + bytes;
  } else if (in->fresh_huge * 8 >= in->fresh) {   /* a few advised bytes say nothing of their price */
    a->mix_sys_ns = a->mix_sys_ns * d + in->sys_ns;
    a->mix_bytes = a->mix_bytes * d + bytes;
    a->mix_huge_bytes = a->mix_huge_bytes * d + in->fresh_huge;
  }
}

int hm_ace_huge_step(hm_ace *a, const hm_huge_signals *in, const hm_ace_cfg *cfg) {
  uint32_t before = a->huge;
  huge_price_epoch(a, in, cfg);
  if (a->huge_wait) a->huge_wait--;
  /* The check. */
  double ref = hm_ace_huge_ref_price(a, cfg), price = hm_ace_huge_price(a, cfg);
  if (a->huge && price >= 0) {
    if (price > cfg->huge_gain * ref) {
      a->huge = 0;
      a->huge_quiet = 0;
      a->huge_wait = a->huge_backoff ? a->huge_backoff : cfg->huge_backoff_min;
      a->huge_backoff = a->huge_wait * 2 < cfg->huge_backoff_max ? a->huge_wait * 2 : cfg->huge_backoff_max;
      a->mix_sys_ns = a->mix_bytes = a->mix_huge_bytes = 0;   /* the next trial measures afresh */
      return 1;
    }
    a->huge &= ~HM_HUGE_TRIAL;   /* passed: all of the new memory from now on */
    a->huge_backoff = 0;
  }
  /* The rule. */
  if (in->fault_share >= cfg->huge_fault_share) {
    if (in->fault_share > cfg->huge_bloat * in->memory_price) {
      if (!a->huge && !a->huge_wait && ref >= 0)
        a->huge = HM_HUGE_SEGMENTS | (price >= 0 ? 0 : HM_HUGE_TRIAL);
      if (a->huge && in->span_density >= cfg->huge_span_density) a->huge |= HM_HUGE_SPANS;
    } else {
      a->huge = 0;   /* the memory is worth more than the faults */
    }
    a->huge_quiet = 0;
  } else if (in->fault_share < cfg->huge_quiet_share) {
    if (a->huge && ++a->huge_quiet >= cfg->huge_quiet_epochs) {
      a->huge = 0;
      a->huge_quiet = 0;
    }
  } else {
    a->huge_quiet = 0;
  }
  return a->huge != before;
}
