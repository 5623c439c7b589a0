/* unit_learn.c -- the learning layer's pure parts (src/learn/learn.h),
 * white-box: linked with libhakmem.a, driven with synthetic signal streams
 * (deterministic: an LCG for the noise, no threads, no clock).
 *
 *   math     hm_ln, hm_exp, hm_sqrt against libm, 1e-6 relative, over the
 *            ranges the learner uses and beyond
 *   cost     hm_learn_overhead / hm_learn_cost on a hand-computed epoch
 *            (bin events, faults, maps + unmaps, decommits, lambda x GiB)
 *   params   cap_shift scales a class's capacity: +2 is 4x (up to the
 *            65535 clamp), -1 halves, the budget function follows
 *   ucb      discounted UCB1 with the learner's gamma and explore: the first
 *            pick is the default arm, every arm is tried, the cheapest arm
 *            is picked >= 80 of the last 100 of 300 epochs, and after the
 *            costs change the new cheapest is the majority within 100
 *            epochs; NaN, negative costs and bad arms change nothing
 *   elo      the league with the learner's settings: a strategy at half the
 *            others' cost leads and ranks first after 300 epochs; an equal
 *            field stays near 1500; a new dominant strategy takes the lead
 *            within a bounded number of epochs
 *   ace      growth of a thrashing class each epoch up to HM_ACE_SHIFT_MAX
 *            or the budget, never above the budget, back down when idle,
 *            at once to a lower budget; refills alone never grow a class;
 *            the large cache doubles to its ceiling and halves to its floor
 */
#include "hakmem_internal.h"
#include "learn/learn.h"
#include "test_util.h"

#include <math.h>

/* The learner's settings (src/learn/learner.c: UCB_GAMMA, UCB_EXPLORE). */
#define GAMMA 0.95
#define EXPLORE 0.03

/* ---- noise --------------------------------------------------------------------------------- */
static uint32_t lcg_state = 12345;
/* uniform in [-1, 1) */
static double lcg_unit(void)
{
    lcg_state = lcg_state * 1664525u + 1013904223u;
    return (double)(lcg_state >> 8) / (double)(1u << 24) * 2 - 1;
}

static double rel_err(double got, double want)
{
    return want == 0 ? fabs(got) : fabs(got - want) / fabs(want);
}

/* ---- math ------------------------------------------------------------------------------------ */
static void test_math(void)
{
    double worst_ln = 0, worst_exp = 0, worst_sqrt = 0;
    /* ln over 1e-12 .. 1e12 (the learner takes ln of a discounted count,
     * 0.1 .. 20), at ~400 points per decade, plus exact powers of two */
    for (double x = 1e-12; x < 1e12; x *= 1.0057) {
        double e = rel_err(hm_ln(x), log(x));
        if (fabs(log(x)) < 1e-3)   /* near 1: an absolute error */
            e = fabs(hm_ln(x) - log(x));
        if (e > worst_ln)
            worst_ln = e;
        EXPECT(e < 1e-6, "hm_ln(%.17g) = %.17g, log = %.17g", x, hm_ln(x), log(x));
    }
    for (int k = -30; k <= 30; k++) {
        double x = ldexp(1, k);
        EXPECT(fabs(hm_ln(x) - k * M_LN2) < 1e-9, "hm_ln(2^%d) = %.17g", k, hm_ln(x));
    }
    EXPECT(fabs(hm_ln(1)) < 1e-15, "hm_ln(1) = %g", hm_ln(1));
    EXPECT(rel_err(hm_ln(M_E), 1) < 1e-12, "hm_ln(e) = %.17g", hm_ln(M_E));
    EXPECT(rel_err(hm_ln(20), 2.995732273553991) < 1e-9, "hm_ln(20) = %.17g", hm_ln(20));

    /* exp over -50 .. 50 (the league takes exp of a rating difference / 400 x ln 10) */
    for (double x = -50; x <= 50; x += 0.0123) {
        double e = rel_err(hm_exp(x), exp(x));
        if (e > worst_exp)
            worst_exp = e;
        EXPECT(e < 1e-6, "hm_exp(%.17g) = %.17g, exp = %.17g", x, hm_exp(x), exp(x));
    }
    EXPECT(hm_exp(0) == 1, "hm_exp(0) = %.17g", hm_exp(0));
    EXPECT(rel_err(hm_exp(1), M_E) < 1e-12, "hm_exp(1) = %.17g", hm_exp(1));
    EXPECT(rel_err(hm_exp(M_LN10), 10) < 1e-12, "hm_exp(ln 10) = %.17g", hm_exp(M_LN10));
    EXPECT(hm_exp(-800) == 0, "hm_exp(-800) = %g", hm_exp(-800));
    EXPECT(hm_exp(-700) >= 0 && hm_exp(-700) < 1e-300, "hm_exp(-700) = %g", hm_exp(-700));
    EXPECT(hm_exp(800) > 1e300 && hm_exp(800) == hm_exp(800), "hm_exp(800) = %g", hm_exp(800));

    /* sqrt over 1e-8 .. 1e12 (the learner: 2 ln N / n, 0 .. ~60) */
    for (double x = 1e-8; x < 1e12; x *= 1.0071) {
        double e = rel_err(hm_sqrt(x), sqrt(x));
        if (e > worst_sqrt)
            worst_sqrt = e;
        EXPECT(e < 1e-6, "hm_sqrt(%.17g) = %.17g, sqrt = %.17g", x, hm_sqrt(x), sqrt(x));
    }
    for (int i = 0; i <= 1000; i++)
        EXPECT(hm_sqrt((double)i * i) == i, "hm_sqrt(%d^2) = %.17g", i, hm_sqrt((double)i * i));
    EXPECT(hm_sqrt(0) == 0 && hm_sqrt(-4) == 0 && hm_sqrt(NAN) == 0,
           "hm_sqrt of 0, negative, NaN: %g %g %g", hm_sqrt(0), hm_sqrt(-4), hm_sqrt(NAN));
    NOTE("math: worst relative error ln %.2g, exp %.2g, sqrt %.2g", worst_ln, worst_exp,
         worst_sqrt);
}

/* ---- the objective ------------------------------------------------------------------------- */
static void test_cost(void)
{
    hm_signals s;
    memset(&s, 0, sizeof s);
    s.wall_ns = 10000000;   /* 10 ms */
    s.cpu_ns = 7000000;     /* not part of the objective */
    s.refills[0] = 300;
    s.refills[7] = 700;     /* 1000 refills */
    s.flushes[7] = 400;
    s.flushes[HM_NUM_CLASSES - 1] = 100;   /* 500 flushes */
    s.faults = 100;
    s.maps = 10;
    s.unmaps = 5;
    s.decommits = 4;
    s.map_bytes = s.unmap_bytes = s.decommit_bytes = 123456789;   /* bytes are not priced */
    s.large_hits = 77;
    s.resident = (uint64_t)2 << 30;   /* 2 GiB */
    s.committed = (uint64_t)5 << 30;  /* not priced: resident is */
    hm_unit_costs u = {.bin_ns = 250, .fault_ns = 1000, .map_ns = 20000, .decommit_ns = 5000};
    /* 1500 x 250 + 100 x 1000 + 15 x 20000 + 4 x 5000 = 375000 + 100000 + 300000 + 20000
     * = 795000 ns in 10 ms */
    double ov = hm_learn_overhead(&s, &u);
    EXPECT(rel_err(ov, 0.0795) < 1e-12, "overhead %.17g, want 0.0795", ov);
    EXPECT(rel_err(hm_learn_cost(&s, &u, 0), 0.0795) < 1e-12, "cost at lambda 0: %.17g",
           hm_learn_cost(&s, &u, 0));
    /* lambda 0.05 (HAKMEM_LEARN_LAMBDA=50) x 2 GiB = 0.1 */
    EXPECT(rel_err(hm_learn_cost(&s, &u, 0.05), 0.1795) < 1e-12, "cost at lambda 0.05: %.17g",
           hm_learn_cost(&s, &u, 0.05));
    /* 1.5 GiB at lambda 1 */
    s.resident = (uint64_t)3 << 29;
    EXPECT(rel_err(hm_learn_cost(&s, &u, 1.0), 1.5795) < 1e-12, "cost at lambda 1: %.17g",
           hm_learn_cost(&s, &u, 1.0));
    /* twice the wall time: half the overhead */
    s.wall_ns = 20000000;
    EXPECT(rel_err(hm_learn_overhead(&s, &u), 0.03975) < 1e-12, "overhead over 20 ms %.17g",
           hm_learn_overhead(&s, &u));
    /* no wall time: no overhead (never a division by zero), resident still priced */
    s.wall_ns = 0;
    EXPECT(hm_learn_overhead(&s, &u) == 0, "overhead with wall 0: %g", hm_learn_overhead(&s, &u));
    EXPECT(rel_err(hm_learn_cost(&s, &u, 0.5), 0.75) < 1e-12, "cost with wall 0: %.17g",
           hm_learn_cost(&s, &u, 0.5));
    /* an idle epoch */
    memset(&s, 0, sizeof s);
    s.wall_ns = 200000000;
    EXPECT(hm_learn_cost(&s, &u, 0.05) == 0, "idle epoch cost %g", hm_learn_cost(&s, &u, 0.05));
}

/* ---- params: cap_shift ------------------------------------------------------------------------ */
static void test_params(void)
{
    unsigned tiny = hm_size_class(256), mid = hm_size_class(16384), small = hm_size_class(16);
    CHECK(tiny < HM_TINY_CLASSES && mid >= HM_TINY_CLASSES && mid < HM_NUM_CLASSES,
          "classes %u %u", tiny, mid);
    unsigned cls[3] = {tiny, mid, small};
    for (int i = 0; i < 3; i++) {
        unsigned c = cls[i];
        hm_param.cap_shift[c] = 0;
        uint32_t cap0 = hm_params_bin_cap(c), max0 = hm_params_bin_cap_max(c);
        uint32_t batch0 = hm_params_refill_batch(c);
        /* the refill batch follows the capacity: x4, but never above it */
        hm_param.cap_shift[c] = 2;
        uint32_t want_b = batch0 * 4 < hm_params_bin_cap(c) ? batch0 * 4 : hm_params_bin_cap(c);
        EXPECT(hm_params_refill_batch(c) == want_b, "class %u shift +2: batch %u, want %u", c,
               hm_params_refill_batch(c), want_b);
        hm_param.cap_shift[c] = 0;
        CHECK(cap0 >= 2 && max0 >= cap0, "class %u: capacity %u, max %u", c, cap0, max0);
        hm_param.cap_shift[c] = 2;
        uint32_t want = cap0 * 4 > 65535 ? 65535 : cap0 * 4;
        EXPECT(hm_params_bin_cap(c) == want, "class %u shift +2: %u, want %u", c,
               hm_params_bin_cap(c), want);
        want = max0 * 4 > 65535 ? 65535 : max0 * 4;
        EXPECT(hm_params_bin_cap_max(c) == want, "class %u shift +2: max %u, want %u", c,
               hm_params_bin_cap_max(c), want);
        EXPECT(hm_params_bin_cap_max_shifted(c, 2) == want && hm_params_bin_cap_max_shifted(c, 0) == max0,
               "class %u: max_shifted disagrees", c);
        hm_param.cap_shift[c] = -1;
        EXPECT(hm_params_bin_cap(c) == cap0 / 2, "class %u shift -1: %u, want %u", c,
               hm_params_bin_cap(c), cap0 / 2);
        EXPECT(hm_params_bin_cap_max(c) == max0 / 2, "class %u shift -1: max %u, want %u", c,
               hm_params_bin_cap_max(c), max0 / 2);
        /* a refill never brings more than the (scaled) capacity */
        EXPECT(hm_params_refill_batch(c) <= hm_params_bin_cap(c), "class %u: batch %u > cap %u", c,
               hm_params_refill_batch(c), hm_params_bin_cap(c));
        hm_param.cap_shift[c] = 0;
        EXPECT(hm_params_bin_cap(c) == cap0, "class %u back at shift 0: %u", c, hm_params_bin_cap(c));
    }
    /* the clamp: a 16 B class at 65535 blocks (SLL_CAP_MAX raised) stays at 65535 */
    uint32_t bytes = hm_param.sll_cap_bytes, mx = hm_param.sll_cap_max;
    hm_param.sll_cap_bytes = 16u << 20;
    hm_param.sll_cap_max = 65535;
    uint32_t big = hm_params_bin_cap(small);
    EXPECT(big == 65535, "16 B class with 16 MiB of cache: %u blocks", big);
    hm_param.cap_shift[small] = 2;
    EXPECT(hm_params_bin_cap(small) == 65535, "clamped at 65535: %u", hm_params_bin_cap(small));
    hm_param.cap_shift[small] = -1;
    EXPECT(hm_params_bin_cap(small) == 32767, "65535 halved: %u", hm_params_bin_cap(small));
    hm_param.sll_cap_max = 16384;
    hm_param.cap_shift[small] = 2;
    EXPECT(hm_params_bin_cap(small) == 65535, "16384 x 4 clamped: %u", hm_params_bin_cap(small));
    hm_param.sll_cap_max = 8192;
    EXPECT(hm_params_bin_cap(small) == 32768, "8192 x 4: %u", hm_params_bin_cap(small));
    hm_param.cap_shift[small] = 0;
    hm_param.sll_cap_bytes = bytes;
    hm_param.sll_cap_max = mx;
    /* the budget function is the sum of capacity x block size */
    int8_t sh[HM_NUM_CLASSES] = {0};
    uint64_t total = 0;
    for (unsigned c = 0; c < HM_NUM_CLASSES; c++)
        total += (uint64_t)hm_params_bin_cap_max(c) * hm_class_size[c];
    EXPECT(hm_ace_cache_bytes(sh) == total, "hm_ace_cache_bytes %llu, want %llu",
           (unsigned long long)hm_ace_cache_bytes(sh), (unsigned long long)total);
    sh[tiny] = 1;
    EXPECT(hm_ace_cache_bytes(sh) ==
               total + (uint64_t)hm_params_bin_cap_max(tiny) * hm_class_size[tiny],
           "one class doubled: %llu", (unsigned long long)hm_ace_cache_bytes(sh));
}

/* ---- UCB1 --------------------------------------------------------------------------------------- */
/* One epoch: pick, pay the arm's cost (+-2 % noise), record. */
static unsigned ucb_epoch(hm_ucb *u, const double *cost)
{
    unsigned a = hm_ucb_pick(u, EXPLORE);
    CHECK(a < HM_ARMS, "pick %u", a);
    hm_ucb_record(u, a, cost[a] * (1 + 0.02 * lcg_unit()), GAMMA);
    return a;
}

/* The default purge arm follows the fault cost: 100 ms / 8 up to 1 us, 1 s
 * / 16 (the static default) from 10 us, monotonic in between. */
static void test_purge_arm(void)
{
    const struct { double ns; uint32_t delay, cache; } want[] = {
        {200, 100, 8}, {768, 100, 8}, {1000, 100, 8}, {5000, 500, 8}, {7500, 750, 12}, {10000, 1000, 16},
        {24600, 1000, 16},
    };
    for (unsigned i = 0; i < sizeof want / sizeof want[0]; i++) {
        hm_arm a = hm_purge_arm_for_faults(want[i].ns);
        EXPECT(a.purge_delay_ms == want[i].delay && a.ss_cache_max == want[i].cache,
               "fault %.0f ns: %u ms / %u, want %u / %u", want[i].ns, a.purge_delay_ms, a.ss_cache_max,
               want[i].delay, want[i].cache);
    }
    EXPECT(hm_purge_arm_for_faults(1e6).purge_delay_ms == hm_arms[HM_ARM_DEFAULT].purge_delay_ms &&
               hm_purge_arm_for_faults(1e6).ss_cache_max == hm_arms[HM_ARM_DEFAULT].ss_cache_max,
           "slow faults: not the static default arm");
    hm_arm prev = hm_purge_arm_for_faults(0);
    for (double ns = 100; ns < 20000; ns += 100) {
        hm_arm a = hm_purge_arm_for_faults(ns);
        if (a.purge_delay_ms < prev.purge_delay_ms || a.ss_cache_max < prev.ss_cache_max) {
            EXPECT(0, "not monotonic at %.0f ns", ns);
            break;
        }
        prev = a;
    }
}

static void test_ucb(void)
{
    hm_ucb u;
    hm_ucb_init(&u);
    EXPECT(hm_ucb_pick(&u, EXPLORE) == HM_ARM_DEFAULT, "first pick %u, want the default %u",
           hm_ucb_pick(&u, EXPLORE), HM_ARM_DEFAULT);
    EXPECT(hm_arms[HM_ARM_DEFAULT].purge_delay_ms == 1000 && hm_arms[HM_ARM_DEFAULT].ss_cache_max == 16,
           "the default arm is not the static default (1000 ms, 16)");

    /* NaN, negative costs and arms out of range change nothing */
    hm_ucb before = u;
    hm_ucb_record(&u, 0, NAN, GAMMA);
    hm_ucb_record(&u, 1, -1.0, GAMMA);
    hm_ucb_record(&u, 3, -INFINITY, GAMMA);
    hm_ucb_record(&u, HM_ARMS, 1.0, GAMMA);
    EXPECT(!memcmp(&before, &u, sizeof u), "an ignored cost changed the state");
    EXPECT(hm_ucb_pick(&u, EXPLORE) == HM_ARM_DEFAULT, "first pick after ignored costs %u",
           hm_ucb_pick(&u, EXPLORE));

    /* arm 1 is the cheapest, 0.6 against 1.0 .. 1.6 */
    double cost[HM_ARMS] = {1.2, 0.6, 1.0, 1.3, 1.6};
    unsigned first[HM_ARMS], seen = 0;
    for (unsigned e = 0; e < HM_ARMS; e++) {
        first[e] = ucb_epoch(&u, cost);
        seen |= 1u << first[e];
    }
    EXPECT(first[0] == HM_ARM_DEFAULT, "epoch 0 played arm %u", first[0]);
    EXPECT(seen == (1u << HM_ARMS) - 1, "the first %d epochs did not try every arm (mask %#x)",
           HM_ARMS, seen);
    /* a NaN in the middle of a run is ignored too */
    before = u;
    hm_ucb_record(&u, 1, NAN, GAMMA);
    EXPECT(!memcmp(&before, &u, sizeof u), "a NaN cost changed a running state");

    unsigned hist[HM_ARMS] = {0};
    for (unsigned e = HM_ARMS; e < 300; e++) {
        unsigned a = ucb_epoch(&u, cost);
        if (e >= 200)
            hist[a]++;
    }
    NOTE("ucb, epochs 200-299: arms %u %u %u %u %u (best: 1)", hist[0], hist[1], hist[2], hist[3],
         hist[4]);
    EXPECT(hist[1] >= 80, "the cheapest arm was picked %u times in the last 100 epochs, want >= 80",
           hist[1]);

    /* the phase changes: arm 3 is now the cheapest, arm 1 the dearest */
    double cost2[HM_ARMS] = {1.2, 1.6, 1.0, 0.6, 1.3};
    unsigned by_half[2] = {0, 0};
    for (unsigned e = 0; e < 100; e++) {
        unsigned a = ucb_epoch(&u, cost2);
        if (a == 3)
            by_half[e >= 50]++;
    }
    NOTE("ucb after the change: arm 3 picked %u of epochs 0-49, %u of 50-99", by_half[0],
         by_half[1]);
    EXPECT(by_half[1] > 25, "the new cheapest arm was picked %u of 50 times in epochs 50-99 "
                            "after the change, want a majority", by_half[1]);
    memset(hist, 0, sizeof hist);
    for (unsigned e = 0; e < 100; e++)
        hist[ucb_epoch(&u, cost2)]++;
    EXPECT(hist[3] >= 80, "the new cheapest arm was picked %u of the 100 epochs after that, "
                          "want >= 80", hist[3]);
}

/* ---- ELO ---------------------------------------------------------------------------------------- */
/* learner.c's ELO_* */
#define ELO_EVERY 4
#define ELO_K 24.0
#define ELO_MARGIN 0.05
#define ELO_DECAY 0.02

static unsigned elo_epoch(hm_elo *e, const double *cost, double noise)
{
    unsigned s = hm_elo_pick(e, ELO_EVERY);
    CHECK(s < HM_STRATEGIES, "pick %u", s);
    hm_elo_record(e, s, cost[s] * (1 + noise * lcg_unit()), 0, ELO_K, ELO_MARGIN, ELO_DECAY);
    return s;
}

static unsigned elo_best_rated(const hm_elo *e)
{
    unsigned b = 0;
    for (unsigned i = 1; i < HM_STRATEGIES; i++)
        if (e->rating[i] > e->rating[b])
            b = i;
    return b;
}

static void test_elo(void)
{
    EXPECT(hm_strategies[0].large_ceiling_mb == 256 &&
               hm_strategies[0].refill_batch_bytes == 8192 && hm_strategies[0].l2_batch_bytes == 131072 &&
               hm_strategies[0].l2_carve_max == 16 && hm_strategies[0].heap_keep_empty == 1,
           "strategy 0 is not the static defaults");
    hm_elo e;
    double cost[HM_STRATEGIES];

    /* an equal field: ratings stay near the base */
    hm_elo_init(&e);
    EXPECT(hm_elo_pick(&e, ELO_EVERY) == 0, "first strategy %u, want 0 (the default)",
           hm_elo_pick(&e, ELO_EVERY));
    hm_elo_init(&e);
    for (unsigned i = 0; i < HM_STRATEGIES; i++)
        cost[i] = 1.0;
    unsigned played = 0;
    for (unsigned n = 0; n < 300; n++)
        played |= 1u << elo_epoch(&e, cost, 0.04);   /* +-4 %: mostly draws, a few games */
    double far = 0;
    for (unsigned i = 0; i < HM_STRATEGIES; i++)
        if (fabs(e.rating[i] - HM_ELO_BASE) > far)
            far = fabs(e.rating[i] - HM_ELO_BASE);
    NOTE("elo equal field: farthest rating from the base %.1f, leader %u", far, e.leader);
    EXPECT(far < 40, "an equal field drifted: a rating %.1f from the base", far);
    EXPECT(played == (1u << HM_STRATEGIES) - 1, "not every strategy played in 300 epochs (%#x)",
           played);

    /* NaN and negative costs are ignored */
    hm_elo before = e;
    hm_elo_record(&e, 1, NAN, 0, ELO_K, ELO_MARGIN, ELO_DECAY);
    hm_elo_record(&e, 1, -2, 0, ELO_K, ELO_MARGIN, ELO_DECAY);
    hm_elo_record(&e, HM_STRATEGIES, 1, 0, ELO_K, ELO_MARGIN, ELO_DECAY);
    EXPECT(!memcmp(&before, &e, sizeof e), "an ignored cost changed the league");

    /* epochs of different work play no game: a challenger far cheaper than
     * the leader's reference, but with 10x its work, leaves the ratings
     * where the decay puts them; with comparable work it wins */
    hm_elo_init(&e);
    hm_elo_record(&e, 0, 1.0, 1000, ELO_K, ELO_MARGIN, 0);   /* the leader's reference */
    hm_elo_record(&e, 3, 0.1, 10000, ELO_K, ELO_MARGIN, 0);
    EXPECT(e.rating[3] == HM_ELO_BASE && e.games[3] == 0,
           "a challenger with 10x the leader's work played a game: rating %.1f, games %u",
           e.rating[3], e.games[3]);
    hm_elo_record(&e, 3, 0.1, 1500, ELO_K, ELO_MARGIN, 0);
    EXPECT(e.rating[3] > HM_ELO_BASE && e.games[3] == 1,
           "a cheaper challenger with comparable work did not win: rating %.1f, games %u",
           e.rating[3], e.games[3]);

    /* strategy 5 at half the others' cost */
    hm_elo_init(&e);
    const unsigned dom = 5, dom2 = 8;
    for (unsigned i = 0; i < HM_STRATEGIES; i++)
        cost[i] = i == dom ? 0.5 : 1.0;
    unsigned dom_played = 0;
    for (unsigned n = 0; n < 300; n++)
        if (elo_epoch(&e, cost, 0.02) == dom && n >= 200)
            dom_played++;
    NOTE("elo: leader %u, rating %.1f (next best %u), strategy %u played %u of the last 100",
         e.leader, e.rating[e.leader], elo_best_rated(&e), dom, dom_played);
    EXPECT(e.leader == dom, "leader %u after 300 epochs, want %u", e.leader, dom);
    EXPECT(elo_best_rated(&e) == dom, "best rated %u, want %u", elo_best_rated(&e), dom);
    for (unsigned i = 0; i < HM_STRATEGIES; i++)
        EXPECT(i == dom || e.rating[i] < e.rating[dom] - 10, "strategy %u rated %.1f, the dominant %.1f",
               i, e.rating[i], e.rating[dom]);
    EXPECT(dom_played >= 70, "the leader ran %u of the last 100 epochs, want >= 70 (a challenger "
                             "one in %d)", dom_played, ELO_EVERY);

    /* the phase changes: strategy 8 dominates, 5 is like the rest */
    cost[dom] = 1.0;
    cost[dom2] = 0.5;
    int took = -1;
    for (unsigned n = 0; n < 400 && took < 0; n++) {
        elo_epoch(&e, cost, 0.02);
        if (e.leader == dom2)
            took = (int)n;
    }
    NOTE("elo: strategy %u took the lead %d epochs after the change", dom2, took);
    /* a challenger plays one epoch in 4, 11 of them in turn: 8 plays at
     * least once in 44 epochs; allow it three games */
    EXPECT(took >= 0 && took <= 3 * ELO_EVERY * (HM_STRATEGIES - 1),
           "the new dominant strategy led after %d epochs, want within %d", took,
           3 * ELO_EVERY * (HM_STRATEGIES - 1));
    for (unsigned n = 0; n < 200; n++)
        elo_epoch(&e, cost, 0.02);
    EXPECT(e.leader == dom2 && elo_best_rated(&e) == dom2,
           "200 epochs later: leader %u, best rated %u, want %u", e.leader, elo_best_rated(&e), dom2);
}

/* ---- ACE ---------------------------------------------------------------------------------------- */
static const hm_ace_cfg cfg = {
    .thrash_events = 64,
    .idle_epochs = 5,
    .large_base_mb = 256,
    .large_min_mb = 64,
    .large_quiet_epochs = 10,
    .huge_fault_share = 0.05,
    .huge_quiet_share = 0.005,
    .huge_quiet_epochs = 10,
    .huge_span_density = 0.75,
    .huge_bloat = 0.1,
    .huge_min_fresh = 4 << 20,
    .huge_gain = 0.75,
    .huge_decay = 0.5,
    .huge_backoff_min = 5,
    .huge_backoff_max = 20,
};

static uint64_t class_bytes(unsigned c, int shift)
{
    return (uint64_t)hm_params_bin_cap_max_shifted(c, shift) * hm_class_size[c];
}

static void test_ace(void)
{
    for (unsigned c = 0; c < HM_NUM_CLASSES; c++)
        CHECK(hm_param.cap_shift[c] == 0, "cap_shift[%u] left at %d", c, hm_param.cap_shift[c]);
    const unsigned c = hm_size_class(256), m = hm_size_class(20000);
    hm_ace a;
    hm_signals s, idle;
    memset(&s, 0, sizeof s);
    memset(&idle, 0, sizeof idle);
    int8_t zero[HM_NUM_CLASSES] = {0};
    const uint64_t base = hm_ace_cache_bytes(zero);
    const uint64_t roomy = (uint64_t)1 << 30, ceiling_mb = 1024;

    hm_ace_init(&a, cfg.large_base_mb);
    EXPECT(a.large_cache_mb == 256 && !memcmp(a.shift, zero, sizeof zero), "init");

    /* strategy 0 is the static options: its budget holds the static caches,
     * so that under it, with nothing thrashing, ACE moves nothing */
    const uint64_t default_budget = (uint64_t)hm_strategies[0].cache_budget_kb << 10;
    EXPECT(default_budget >= base, "strategy default's budget %llu KiB is below the static caches' "
                                   "%llu KiB", (unsigned long long)(default_budget >> 10),
           (unsigned long long)(base >> 10));
    for (int e = 0; e < 3; e++) {
        int mv = hm_ace_step(&a, &idle, &cfg, default_budget, hm_strategies[0].large_ceiling_mb);
        EXPECT(!mv && !memcmp(a.shift, zero, sizeof zero) && a.large_cache_mb == 256,
               "idle epoch %d under the default strategy: moved %d, class %u at shift %d", e, mv,
               HM_NUM_CLASSES - 1, a.shift[HM_NUM_CLASSES - 1]);
    }
    hm_ace_init(&a, cfg.large_base_mb);

    /* a thrashing class grows one doubling per epoch up to the maximum */
    s.refills[c] = 100;
    s.flushes[c] = 64;
    s.large_hits = 1;   /* hits alone: the large cache is right */
    for (int e = 1; e <= HM_ACE_SHIFT_MAX + 3; e++) {
        int moved = hm_ace_step(&a, &s, &cfg, roomy, ceiling_mb);
        int want = e < HM_ACE_SHIFT_MAX ? e : HM_ACE_SHIFT_MAX;
        EXPECT(a.shift[c] == want, "epoch %d: shift %d, want %d", e, a.shift[c], want);
        EXPECT(moved == (e <= HM_ACE_SHIFT_MAX), "epoch %d: moved %d", e, moved);
        EXPECT(hm_ace_cache_bytes(a.shift) <= roomy, "over the budget");
    }
    for (unsigned k = 0; k < HM_NUM_CLASSES; k++)
        EXPECT(k == c || a.shift[k] == 0, "class %u moved (shift %d) without events", k, a.shift[k]);
    EXPECT(a.large_cache_mb == 256, "large cache moved on hits alone: %u MiB", a.large_cache_mb);

    /* grown and then idle: halves after cfg.idle_epochs quiet epochs, one
     * step per idle spell, back to 0 and no lower */
    for (int step = HM_ACE_SHIFT_MAX; step > 0; step--) {
        for (unsigned e = 1; e < cfg.idle_epochs; e++) {
            hm_ace_step(&a, &idle, &cfg, roomy, ceiling_mb);
            EXPECT(a.shift[c] == step, "shift %d after %u idle epochs, want %d", a.shift[c], e, step);
        }
        hm_ace_step(&a, &idle, &cfg, roomy, ceiling_mb);
        EXPECT(a.shift[c] == step - 1, "shift %d after %u idle epochs, want %d", a.shift[c],
               cfg.idle_epochs, step - 1);
    }
    for (unsigned e = 0; e < 3 * cfg.idle_epochs; e++)
        hm_ace_step(&a, &idle, &cfg, roomy, ceiling_mb);
    EXPECT(a.shift[c] == 0, "an idle class went below 0: %d", a.shift[c]);

    /* an event resets the idle count */
    hm_ace_init(&a, cfg.large_base_mb);
    hm_ace_step(&a, &s, &cfg, roomy, ceiling_mb);
    CHECK(a.shift[c] == 1, "shift %d", a.shift[c]);
    hm_signals trickle = idle;
    trickle.refills[c] = 1;
    for (unsigned e = 0; e < 4 * cfg.idle_epochs; e++) {
        hm_ace_step(&a, (e % cfg.idle_epochs == cfg.idle_epochs - 2) ? &trickle : &idle, &cfg, roomy,
                    ceiling_mb);
        EXPECT(a.shift[c] == 1, "a class with an event every %u epochs shrank (epoch %u)",
               cfg.idle_epochs - 1, e);
    }

    /* the budget stops growth: room for two doublings of class c */
    hm_ace_init(&a, cfg.large_base_mb);
    uint64_t budget = base + (class_bytes(c, 2) - class_bytes(c, 0));
    for (int e = 0; e < 8; e++) {
        hm_ace_step(&a, &s, &cfg, budget, ceiling_mb);
        EXPECT(hm_ace_cache_bytes(a.shift) <= budget, "epoch %d: %llu bytes over the budget %llu", e,
               (unsigned long long)hm_ace_cache_bytes(a.shift), (unsigned long long)budget);
        EXPECT(a.shift[c] == (e < 2 ? e + 1 : 2), "epoch %d: shift %d under the budget", e, a.shift[c]);
    }

    /* two classes thrash, the budget has room for one doubling of the
     * smaller: the bigger (the worse thrash) cannot, the smaller still grows */
    hm_ace_init(&a, cfg.large_base_mb);
    hm_signals two = idle;
    two.refills[m] = two.flushes[m] = 1000;   /* worse, and 20 KiB blocks */
    two.refills[c] = two.flushes[c] = 100;
    CHECK(class_bytes(m, 1) - class_bytes(m, 0) > class_bytes(c, 1) - class_bytes(c, 0),
          "class %u doubles by less than class %u", m, c);
    budget = base + (class_bytes(c, 1) - class_bytes(c, 0));
    hm_ace_step(&a, &two, &cfg, budget, ceiling_mb);
    EXPECT(a.shift[m] == 0 && a.shift[c] == 1, "shifts %d (m) %d (c), want 0 and 1", a.shift[m],
           a.shift[c]);
    EXPECT(hm_ace_cache_bytes(a.shift) <= budget, "over the budget");
    /* with room for both, both grow in one epoch */
    hm_ace_init(&a, cfg.large_base_mb);
    hm_ace_step(&a, &two, &cfg, roomy, ceiling_mb);
    EXPECT(a.shift[m] == 1 && a.shift[c] == 1, "shifts %d %d, want 1 1", a.shift[m], a.shift[c]);

    /* a lower budget (a new strategy) shrinks at once to fit */
    hm_ace_init(&a, cfg.large_base_mb);
    for (int e = 0; e < HM_ACE_SHIFT_MAX; e++)
        hm_ace_step(&a, &two, &cfg, roomy, ceiling_mb);
    CHECK(a.shift[c] == HM_ACE_SHIFT_MAX && a.shift[m] == HM_ACE_SHIFT_MAX, "shifts %d %d",
          a.shift[c], a.shift[m]);
    /* room for less than one doubling of m above the static caches */
    budget = base + (class_bytes(m, 1) - class_bytes(m, 0)) / 2;
    int moved = hm_ace_step(&a, &idle, &cfg, budget, ceiling_mb);
    EXPECT(moved && hm_ace_cache_bytes(a.shift) <= budget,
           "after the budget dropped: %llu bytes, budget %llu", (unsigned long long)hm_ace_cache_bytes(a.shift),
           (unsigned long long)budget);
    EXPECT(a.shift[m] <= 0, "the largest grown class kept shift %d", a.shift[m]);
    /* still thrashing under the low budget: never above it */
    for (int e = 0; e < 10; e++) {
        hm_ace_step(&a, &two, &cfg, budget, ceiling_mb);
        EXPECT(hm_ace_cache_bytes(a.shift) <= budget, "epoch %d under the low budget: %llu > %llu", e,
               (unsigned long long)hm_ace_cache_bytes(a.shift), (unsigned long long)budget);
    }
    /* a budget below the static total: classes go below 0 to fit */
    budget = base / 2;
    hm_ace_step(&a, &idle, &cfg, budget, ceiling_mb);
    EXPECT(hm_ace_cache_bytes(a.shift) <= budget, "half the static budget: %llu > %llu",
           (unsigned long long)hm_ace_cache_bytes(a.shift), (unsigned long long)budget);
    for (unsigned k = 0; k < HM_NUM_CLASSES; k++)
        EXPECT(a.shift[k] >= HM_ACE_SHIFT_MIN && a.shift[k] <= HM_ACE_SHIFT_MAX, "class %u shift %d", k,
               a.shift[k]);
    /* the learner's budgets: every strategy's budget holds after a step
     * with every class thrashing */
    int8_t floor_shift[HM_NUM_CLASSES];
    memset(floor_shift, HM_ACE_SHIFT_MIN, sizeof floor_shift);
    const uint64_t floor_bytes = hm_ace_cache_bytes(floor_shift);
    NOTE("ace: the static caches hold %llu KiB per thread, %llu KiB with every class at shift %d",
         (unsigned long long)(base >> 10), (unsigned long long)(floor_bytes >> 10), HM_ACE_SHIFT_MIN);
    hm_signals all = idle;
    for (unsigned k = 0; k < HM_NUM_CLASSES; k++)
        all.refills[k] = all.flushes[k] = 500;
    for (unsigned i = 0; i < HM_STRATEGIES; i++) {
        uint64_t b = (uint64_t)hm_strategies[i].cache_budget_kb << 10;
        hm_ace_init(&a, cfg.large_base_mb);
        for (int e = 0; e < 8; e++) {
            hm_ace_step(&a, &all, &cfg, b, hm_strategies[i].large_ceiling_mb);
            EXPECT(hm_ace_cache_bytes(a.shift) <= b,
                   "strategy %s, epoch %d: %llu bytes over its budget %llu (every class at "
                   "HM_ACE_SHIFT_MIN holds %llu)", hm_strategies[i].name, e,
                   (unsigned long long)hm_ace_cache_bytes(a.shift), (unsigned long long)b,
                   (unsigned long long)floor_bytes);
        }
    }

    /* back under a roomy budget, a class shrunk below its default that is
     * in use (not thrashing) grows back to 0, one doubling per epoch; an
     * unused one stays where the low budget put it */
    hm_ace_init(&a, cfg.large_base_mb);
    hm_ace_step(&a, &idle, &cfg, floor_bytes, ceiling_mb);
    EXPECT(a.shift[c] < 0 && a.shift[m] < 0, "the floor budget left %d %d", a.shift[c], a.shift[m]);
    const int low_m = a.shift[m];
    hm_signals used = idle;
    used.refills[c] = 3;   /* in use, far below thrash_events */
    for (int e = 0; e < -HM_ACE_SHIFT_MIN + 2; e++)
        hm_ace_step(&a, &used, &cfg, default_budget, ceiling_mb);
    EXPECT(a.shift[c] == 0, "an active class below its default came back to %d, want 0", a.shift[c]);
    EXPECT(a.shift[m] == low_m, "an unused class moved from %d to %d", low_m, a.shift[m]);

    /* refills only (or flushes only): no growth */
    hm_ace_init(&a, cfg.large_base_mb);
    hm_signals one_way = idle;
    one_way.refills[c] = 100000;
    one_way.flushes[m] = 100000;
    one_way.refills[m] = 63;   /* below thrash_events */
    for (int e = 0; e < 10; e++)
        hm_ace_step(&a, &one_way, &cfg, roomy, ceiling_mb);
    EXPECT(a.shift[c] == 0 && a.shift[m] == 0, "one-way traffic grew a class: %d %d", a.shift[c],
           a.shift[m]);

    /* the large cache: doubles on drops up to the ceiling ... */
    hm_ace_init(&a, cfg.large_base_mb);
    hm_signals drops = idle;
    drops.large_drops = 3;
    const uint32_t want_up[] = {512, 1024, 1024, 1024};
    for (int e = 0; e < 4; e++) {
        hm_ace_step(&a, &drops, &cfg, roomy, 1024);
        EXPECT(a.large_cache_mb == want_up[e], "epoch %d of drops: %u MiB, want %u", e, a.large_cache_mb,
               want_up[e]);
    }
    /* ... and on misses while spans are reused (misses alone: no) */
    hm_ace_init(&a, cfg.large_base_mb);
    hm_signals miss = idle;
    miss.large_misses = 5;
    hm_ace_step(&a, &miss, &cfg, roomy, 1024);
    EXPECT(a.large_cache_mb == 256, "misses alone moved the large cache: %u", a.large_cache_mb);
    miss.large_hits = 5;
    hm_ace_step(&a, &miss, &cfg, roomy, 1024);
    EXPECT(a.large_cache_mb == 512, "misses with hits: %u, want 512", a.large_cache_mb);
    /* a ceiling that is no power-of-two multiple: clamped to it */
    hm_ace_step(&a, &drops, &cfg, roomy, 700);
    EXPECT(a.large_cache_mb == 700, "ceiling 700: %u", a.large_cache_mb);
    /* ... halves after large_quiet_epochs quiet epochs, down to the floor */
    hm_ace_init(&a, cfg.large_base_mb);
    for (int e = 0; e < 2; e++)
        hm_ace_step(&a, &drops, &cfg, roomy, 1024);
    CHECK(a.large_cache_mb == 1024, "%u", a.large_cache_mb);
    uint32_t want = 1024;
    for (int spell = 0; spell < 6; spell++) {
        for (unsigned e = 1; e < cfg.large_quiet_epochs; e++) {
            hm_ace_step(&a, &idle, &cfg, roomy, 1024);
            EXPECT(a.large_cache_mb == want, "spell %d, quiet epoch %u: %u MiB, want %u", spell, e,
                   a.large_cache_mb, want);
        }
        hm_ace_step(&a, &idle, &cfg, roomy, 1024);
        want = want / 2 > cfg.large_min_mb ? want / 2 : cfg.large_min_mb;
        EXPECT(a.large_cache_mb == want, "after quiet spell %d: %u MiB, want %u", spell, a.large_cache_mb,
               want);
    }
    EXPECT(a.large_cache_mb == cfg.large_min_mb, "not at the floor: %u", a.large_cache_mb);
    /* a lower ceiling (a new strategy) applies at once */
    hm_ace_init(&a, cfg.large_base_mb);
    hm_ace_step(&a, &idle, &cfg, roomy, 128);
    EXPECT(a.large_cache_mb == 128, "ceiling 128: %u", a.large_cache_mb);
    /* a ceiling below the floor: the floor */
    hm_ace_step(&a, &drops, &cfg, roomy, 16);
    EXPECT(a.large_cache_mb == cfg.large_min_mb, "ceiling 16 (floor 64): %u", a.large_cache_mb);
}

/* One epoch of huge-page signals: faults' share, memory price, span
 * density; the kernel's time and the fresh bytes (MiB) without and with
 * the advice. */
static int huge_step(hm_ace *a, double fault_share, double memory_price, double density, double sys_ms,
                     double fresh_mb, double fresh_huge_mb)
{
    hm_huge_signals in = {
        .fault_share = fault_share,
        .memory_price = memory_price,
        .span_density = density,
        .sys_ns = sys_ms * 1e6,
        .fresh = fresh_mb * 1048576.0,
        .fresh_huge = fresh_huge_mb * 1048576.0,
    };
    return hm_ace_huge_step(a, &in, &cfg);
}

/* An epoch that faults 64 MiB, with the advice on the share `on` of it (the
 * trial's quarter, or all), at `ns_4k` and `ns_2m` kernel ns per KiB. */
static int huge_faulting(hm_ace *a, double on, double ns_4k, double ns_2m, double density)
{
    double huge_mb = a->huge ? 64 * on : 0, small_mb = 64 - huge_mb;
    double sys_ms = (small_mb * ns_4k + huge_mb * ns_2m) * 1024 / 1e6;
    return huge_step(a, 0.30, 0.001, density, sys_ms, small_mb, huge_mb);
}

/* The rule (open loop): on when faults cost, spans only when the freed ones
 * are dense, off when memory is priced above the faults or after a quiet
 * spell; a trial first, kept when huge pages prove cheaper. */
static void test_ace_huge(void)
{
    hm_ace a;
    hm_ace_init(&a, cfg.large_base_mb);
    EXPECT(a.huge == 0, "huge pages at start: %u", a.huge);
    /* faults below the threshold: nothing */
    EXPECT(!huge_step(&a, 0.04, 0.001, 1.0, 10, 1, 0) && a.huge == 0, "4 %% of a CPU in faults: %u",
           a.huge);
    /* faults at 30 % but none in hakmem's fresh memory (no reference price): nothing */
    EXPECT(!huge_step(&a, 0.30, 0.001, -1, 50, 1, 0) && a.huge == 0, "faults outside hakmem: %u", a.huge);
    /* faults at 30 % in fresh memory, nothing cached: a trial of segments */
    EXPECT(huge_step(&a, 0.30, 0.001, -1, 50, 64, 0) && a.huge == (HM_HUGE_SEGMENTS | HM_HUGE_TRIAL),
           "faults 30 %%, no spans: %u", a.huge);
    EXPECT(hm_ace_huge_ref_price(&a, &cfg) > 0 && hm_ace_huge_price(&a, &cfg) < 0,
           "prices after one epoch: %.3f %.3f", hm_ace_huge_ref_price(&a, &cfg), hm_ace_huge_price(&a, &cfg));
    /* spans freed but sparse (a big calloc'd table touched here and there): still segments only */
    huge_step(&a, 0.30, 0.001, 0.10, 50, 64, 0);
    EXPECT(a.huge == (HM_HUGE_SEGMENTS | HM_HUGE_TRIAL), "sparse spans: %u", a.huge);
    /* dense spans: both */
    EXPECT(huge_step(&a, 0.30, 0.001, 0.95, 50, 64, 0) &&
               a.huge == (HM_HUGE_SEGMENTS | HM_HUGE_SPANS | HM_HUGE_TRIAL),
           "dense spans: %u", a.huge);
    /* the trial's quarter at a tenth of the kernel's time per byte: passed, all from now on */
    EXPECT(huge_faulting(&a, 0.25, 800, 80, 0.95) && a.huge == (HM_HUGE_SEGMENTS | HM_HUGE_SPANS),
           "a cheap trial: %u (price %.1f against %.1f)", a.huge, hm_ace_huge_price(&a, &cfg),
           hm_ace_huge_ref_price(&a, &cfg));
    /* a quiet spell: kept until huge_quiet_epochs in a row, a busy epoch restarts the count */
    for (unsigned e = 1; e < cfg.huge_quiet_epochs; e++) huge_step(&a, 0.001, 0.001, -1, 0, 0, 0);
    EXPECT(a.huge == 3, "off before the quiet spell ended: %u", a.huge);
    huge_step(&a, 0.02, 0.001, -1, 0, 0, 0);   /* between the two thresholds */
    for (unsigned e = 1; e < cfg.huge_quiet_epochs; e++) huge_step(&a, 0.001, 0.001, -1, 0, 0, 0);
    EXPECT(a.huge == 3, "a busy epoch did not restart the quiet count: %u", a.huge);
    EXPECT(huge_step(&a, 0.001, 0.001, -1, 0, 0, 0) && a.huge == 0, "after the quiet spell: %u", a.huge);
    /* on again with faults: no trial, the price is known and good */
    huge_step(&a, 0.30, 0.001, 0.95, 50, 64, 0);
    EXPECT(a.huge == 3, "after a passed trial: %u", a.huge);
    /* memory priced above the faults (a large lambda): off at once, and never on */
    EXPECT(huge_step(&a, 0.30, 5.0, 0.95, 50, 64, 0) && a.huge == 0, "lambda x memory 5.0: %u", a.huge);
    huge_step(&a, 0.40, 5.0, 0.95, 50, 64, 0);
    EXPECT(a.huge == 0, "on although memory is priced above the faults: %u", a.huge);
    /* hm_ace_init turns it off (unpublish: the static value) and forgets the prices */
    huge_step(&a, 0.30, 0.001, 0.95, 50, 64, 0);
    hm_ace_init(&a, cfg.large_base_mb);
    EXPECT(a.huge == 0 && a.huge_quiet == 0 && hm_ace_huge_ref_price(&a, &cfg) < 0, "after init: %u",
           a.huge);
}

/* The check (closed loop): where a 2 MiB fault costs more per byte than
 * 512 small ones, the trial fails, huge pages go off and are not tried
 * again until the back-off ends, each failure doubling it; where they win
 * again (the host changed), they stay. */
static void test_ace_huge_check(void)
{
    hm_ace a;
    hm_ace_init(&a, cfg.large_base_mb);
    huge_faulting(&a, 0, 350, 0, 1.0);   /* the reference: 4 KiB pages, 350 ns per KiB */
    CHECK(a.huge == (HM_HUGE_SEGMENTS | HM_HUGE_TRIAL | HM_HUGE_SPANS), "%u", a.huge);
    /* the trial: the advised quarter at 3x the reference: off */
    EXPECT(huge_faulting(&a, 0.25, 350, 1050, 1.0) && a.huge == 0, "a dear trial kept: %u (%.1f against %.1f)",
           a.huge, hm_ace_huge_price(&a, &cfg), hm_ace_huge_ref_price(&a, &cfg));
    EXPECT(a.huge_wait == cfg.huge_backoff_min, "wait %u", a.huge_wait);
    /* faults go on; not tried during the back-off */
    unsigned tried_at = 0;
    for (unsigned e = 1; e <= 50 && !tried_at; e++)
        if (huge_faulting(&a, 0, 350, 1050, 1.0) && a.huge) tried_at = e;
    EXPECT(tried_at == cfg.huge_backoff_min, "tried again after %u epochs, want %u", tried_at,
           cfg.huge_backoff_min);
    EXPECT(a.huge & HM_HUGE_TRIAL, "the second try is a trial too: %u", a.huge);
    /* fails again: twice the wait */
    huge_faulting(&a, 0.25, 350, 1050, 1.0);
    EXPECT(a.huge == 0 && a.huge_wait == 2 * cfg.huge_backoff_min, "second failure: %u, wait %u", a.huge,
           a.huge_wait);
    /* the back-off stops at its maximum */
    for (int round = 0; round < 6; round++) {
        while (!a.huge) huge_faulting(&a, 0, 350, 1050, 1.0);
        huge_faulting(&a, 0.25, 350, 1050, 1.0);
    }
    EXPECT(a.huge == 0 && a.huge_wait == cfg.huge_backoff_max, "wait after many failures: %u", a.huge_wait);
    /* the machine changed: huge pages now a tenth of the price -> the next trial passes and they stay */
    while (!a.huge) huge_faulting(&a, 0, 350, 35, 1.0);
    huge_faulting(&a, 0.25, 350, 35, 1.0);
    EXPECT(a.huge == (HM_HUGE_SEGMENTS | HM_HUGE_SPANS), "a cheap trial after failures: %u", a.huge);
    for (int e = 0; e < 20; e++) huge_faulting(&a, 1, 350, 35, 1.0);
    EXPECT(a.huge == (HM_HUGE_SEGMENTS | HM_HUGE_SPANS), "kept while cheap: %u", a.huge);
    /* ... and dear again: off at the epoch the price crosses the bound */
    unsigned off_after = 0;
    for (unsigned e = 1; e <= 10 && !off_after; e++)
        if (huge_faulting(&a, 1, 350, 2000, 1.0) && !a.huge) off_after = e;
    EXPECT(off_after >= 1 && off_after <= 3, "off %u epochs after huge pages got dear", off_after);
    /* an epoch without fresh memory prices nothing: the kernel's time then is other work */
    hm_ace_init(&a, cfg.large_base_mb);
    huge_step(&a, 0.01, 0.001, -1, 500, 1, 0);
    EXPECT(hm_ace_huge_ref_price(&a, &cfg) < 0, "priced an epoch of 1 MiB fresh: %.3f",
           hm_ace_huge_ref_price(&a, &cfg));
}

int main(void)
{
    /* hm_param as the static defaults: nothing here reads the environment
     * that CTest (or a user) might set */
    test_math();
    test_cost();
    test_params();
    test_ucb();
    test_purge_arm();
    test_elo();
    test_ace();
    test_ace_huge();
    test_ace_huge_check();
    return test_finish("unit_learn");
}
