/* large_realloc.c -- realloc of large blocks (src/large/large.c):
 * growth reuses the pages of a freed, cached span instead of faulting in
 * fresh ones, and a large block gives memory back only when it really
 * shrinks.
 *
 * Runs with HAKMEM_BACKGROUND=0 and HAKMEM_PURGE_DELAY_MS >= 600000 (CTest
 * sets both; the test checks them), so that no cached span expires while it
 * measures.
 *
 *   1. a 1 MiB block X is written in full, a 300 KiB block B is allocated
 *      (a fresh mapping: the cache is empty) and written with a pattern, and
 *      X is freed: the cache keeps its span, every page resident;
 *   2. B grows by realloc in 4 KiB steps to 900 KiB, each new byte written:
 *      B's contents survive every step; B now lies in X's old span (the
 *      growth took the cached span, whose pages were resident), and the
 *      whole growth costs fewer than 40 page faults (getrusage minflt). The
 *      old code grew B in place with mremap and faulted in every new page:
 *      150 faults;
 *   3. B shrinks to 600 KiB (more than half of what it was asked to be):
 *      same pointer, its usable size unchanged (nothing given back), and it
 *      grows to 900 KiB again without a fault beyond the 40;
 *   4. B shrinks to 280 KiB (less than half of its last size, 600 KiB): same
 *      pointer, its usable size now below 400 KiB (the tail went back), and
 *      the first 280 KiB intact.
 * Under HAKMEM_SECURE=1 (guarded spans grow with mremap) and under a
 * sanitizer (shadow memory faults) the fault and placement checks of step 2
 * are skipped; every content check holds.
 */
#include "test_util.h"

#include "../include/hakmem.h"

#define KIB ((size_t)1024)
#define X_SIZE (1024 * KIB)
#define B_START (300 * KIB)
#define B_END (900 * KIB)
#define B_MID (600 * KIB)
#define B_SMALL (280 * KIB)   /* above HM_SMALL_MAX: still a large block */
#define STEP (4 * KIB)
#define MAX_FAULTS 40

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    hk_require_if_expected("large_realloc");
    if (!hk_active()) {
        NOTE("hakmem not loaded: nothing to check");
        return test_finish("large_realloc");
    }
    hk_require_nothing_expires();
    int secure = hk_option("secure") != 0;
    int count_faults = !secure && !HK_SANITIZED;
    NOTE("secure mode %s%s", secure ? "on" : "off",
         count_faults ? "" : ": no fault or placement check");

    /* ---- 1. X written and freed into the cache; B fresh ------------------- */
    uint8_t *x = malloc(X_SIZE);
    CHECK(x != NULL, "malloc(%zu) failed", X_SIZE);
    memset(x, 0xAB, X_SIZE);
    uint8_t *b = malloc(B_START);
    CHECK(b != NULL, "malloc(%zu) failed", B_START);
    CHECK(b < x || b >= x + X_SIZE, "B %p lies inside the live X %p", (void *)b, (void *)x);
    pat_fill(b, B_START, 7);
    uintptr_t x_lo = (uintptr_t)x, x_hi = (uintptr_t)x + X_SIZE;
    free(x);

    /* ---- 2. B grows into X's span ----------------------------------------- */
    long f0 = hk_minflt();
    size_t len = B_START;
    int lost = 0;
    while (len < B_END) {
        uint8_t *nb = realloc(b, len + STEP);
        CHECK(nb != NULL, "realloc(B, %zu) failed", len + STEP);
        b = nb;
        if (!lost && pat_check(b, len, 7) != (size_t)-1) {
            EXPECT(0, "realloc(B, %zu) lost B's contents at offset %zu", len + STEP,
                   pat_check(b, len, 7));
            lost = 1;
        }
        pat_fill(b, len + STEP, 7);   /* the pattern depends on the offset only */
        len += STEP;
    }
    long faults = hk_minflt() - f0;
    NOTE("growth 300 -> 900 KiB: %ld page faults, B at %p (X was at %#lx)", faults, (void *)b,
         (unsigned long)x_lo);
    if (count_faults) {
        EXPECT((uintptr_t)b >= x_lo && (uintptr_t)b < x_hi,
               "B (%p) did not take the cached span of X [%#lx, %#lx)", (void *)b,
               (unsigned long)x_lo, (unsigned long)x_hi);
        EXPECT(faults < MAX_FAULTS,
               "growing B from 300 to 900 KiB cost %ld page faults (at most %d: the cached "
               "span's pages were resident)", faults, MAX_FAULTS);
    }

    /* ---- 3. a small shrink keeps the span --------------------------------- */
    size_t usable = malloc_usable_size(b);
    uint8_t *s = realloc(b, B_MID);
    CHECK(s != NULL, "realloc(B, %zu) failed", B_MID);
    EXPECT(s == b, "realloc(B, %zu) moved B from %p to %p", B_MID, (void *)b, (void *)s);
    b = s;
    EXPECT(malloc_usable_size(b) == usable,
           "shrinking B from 900 to 600 KiB changed its usable size from %zu to %zu "
           "(above half of the last size: nothing is given back)", usable,
           malloc_usable_size(b));
    EXPECT(pat_check(b, B_MID, 7) == (size_t)-1, "realloc(B, %zu) lost B's contents", B_MID);
    f0 = hk_minflt();
    s = realloc(b, B_END);
    CHECK(s != NULL, "realloc(B, %zu) failed", B_END);
    EXPECT(s == b, "realloc(B, %zu) after the shrink moved B from %p to %p", B_END, (void *)b,
           (void *)s);
    b = s;
    pat_fill(b, B_END, 7);
    faults = hk_minflt() - f0;
    if (count_faults)
        EXPECT(faults < MAX_FAULTS, "growing B back to 900 KiB cost %ld page faults", faults);

    /* ---- 4. a real shrink gives the tail back ----------------------------- */
    s = realloc(b, B_MID);   /* the last size is now 600 KiB */
    CHECK(s == b, "realloc(B, %zu) moved B", B_MID);
    s = realloc(b, B_SMALL);
    CHECK(s != NULL, "realloc(B, %zu) failed", B_SMALL);
    EXPECT(s == b, "realloc(B, %zu) moved B from %p to %p", B_SMALL, (void *)b, (void *)s);
    b = s;
    EXPECT(malloc_usable_size(b) >= B_SMALL && malloc_usable_size(b) < 400 * KIB,
           "after shrinking B to 280 KiB (below half of 600 KiB) its usable size is %zu "
           "(expected the tail given back: 280 KiB to 400 KiB)", malloc_usable_size(b));
    EXPECT(pat_check(b, B_SMALL, 7) == (size_t)-1, "realloc(B, %zu) lost B's contents",
           B_SMALL);
    free(b);
    return test_finish("large_realloc");
}
