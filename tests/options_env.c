/* options_env.c -- HAKMEM_* options (issue #5): values take effect (seen
 * through hakmem_option_get and the statistics API), invalid values and
 * unknown HAKMEM_* names get one warning naming the variable and the default
 * used, hakmem_option_set works at run time, HAKMEM_STATS=1 prints a report
 * at exit whose numbers parse and add up, HAKMEM_TINY_USE_SUPERSLAB=0 works.
 *
 * The parent re-executes itself (/proc/self/exe) with a chosen environment
 * (LD_PRELOAD kept, other HAKMEM_* removed) and checks the child's exit
 * status and stderr. */
#include "test_util.h"

#include <pthread.h>
#include <sys/wait.h>

#include "../include/hakmem.h"


static void (*stats_get)(hakmem_stats *);
static int (*opt_get)(const char *, long long *);
static int (*opt_set)(const char *, long long);

static void resolve(void) {
    stats_get = (void (*)(hakmem_stats *))dlsym(RTLD_DEFAULT, "hakmem_stats_get");
    opt_get = (int (*)(const char *, long long *))dlsym(RTLD_DEFAULT, "hakmem_option_get");
    opt_set = (int (*)(const char *, long long))dlsym(RTLD_DEFAULT, "hakmem_option_set");
    CHECK(stats_get && opt_get && opt_set, "hakmem API does not resolve");
}

static long long opt(const char *name) {
    long long v = -1;
    CHECK(opt_get(name, &v) == 0, "hakmem_option_get(%s) failed", name);
    return v;
}

static unsigned class_of(size_t size) {
    static hakmem_stats t;
    stats_get(&t);
    for (unsigned c = 0; c < HAKMEM_NUM_CLASSES; c++)
        if (t.classes[c].block_size >= size) return c;
    return HAKMEM_NUM_CLASSES - 1;
}

static hakmem_stats st;

/* ---- child modes -------------------------------------------------------------- */
static int child_cap(long long want) {   /* HAKMEM_SLL_CAP_MAX=want */
    void *p[100];
    for (int i = 0; i < 100; i++) p[i] = malloc(16);
    for (int i = 0; i < 100; i++) free(p[i]);
    unsigned c = class_of(16);
    stats_get(&st);
    if (opt("sll_cap_max") != want) return 10;
    if (st.classes[c].cache_cap != want) return 11;
    if (st.classes[c].cached > (uint64_t)want) return 12;
    return 0;
}

static void *thread_cap(void *arg) {
    void *p = malloc(16);   /* creates this thread's heap */
    free(p);
    stats_get(&st);
    *(uint32_t *)arg = st.classes[class_of(16)].cache_cap;
    return NULL;
}

static int child_set(void) {
    void *p = malloc(16);
    free(p);
    if (opt_set("sll_cap_max", 16) != 0) return 20;
    if (opt("HAKMEM_SLL_CAP_MAX") != 16) return 21;
    stats_get(&st);
    if (st.classes[class_of(16)].cache_cap != 16) return 22;   /* the caller at once */
    uint32_t cap = 0;
    pthread_t t;
    pthread_create(&t, NULL, thread_cap, &cap);
    pthread_join(t, NULL);
    if (cap != 16) return 23;                                  /* a new thread */
    errno = 0;
    if (opt_set("sll_cap_max", 0) != -1 || errno != ERANGE) return 24;
    if (opt("sll_cap_max") != 16) return 25;
    errno = 0;
    if (opt_set("no_such_option", 1) != -1 || errno != ENOENT) return 26;
    long long v;
    if (opt_get("HAKMEM_NOPE", &v) != -1) return 27;
    if (opt_set("purge_delay_ms", 5) != 0 || opt("purge_delay_ms") != 5) return 28;
    if (opt_set("HAKMEM_LARGE_CACHE_COUNT", 4097) != -1) return 29;   /* above its range */
    return 0;
}

static int child_l2tiny(void) {   /* HAKMEM_TINY_USE_SUPERSLAB=0 */
    if (opt("tiny_use_superslab") != 0) return 30;
    enum { N = 20000 };
    static unsigned char *p[N];
    uint64_t seed = 7;
    for (int i = 0; i < N; i++) {
        size_t n = rng_range(&seed, 1, 1024);
        p[i] = malloc(n);
        if (!p[i]) return 31;
        memset(p[i], (int)(i & 255), n);
        p[i][0] = (unsigned char)i;
    }
    for (int i = 0; i < N; i++)
        if (p[i][0] != (unsigned char)i) return 32;
    for (int i = 0; i < N; i += 2) free(p[i]);
    for (int i = 0; i < N; i += 2) p[i] = malloc(64);
    for (int i = 0; i < N; i++) free(p[i]);
    stats_get(&st);
    if (st.segments_tiny != 0) return 33;   /* no Tiny slabs at all */
    if (st.segments_l2 == 0) return 34;
    return 0;
}

static int child_stats(void) {   /* HAKMEM_STATS=1: allocate, exit, the report follows */
    static void *keep[500];
    for (int i = 0; i < 500; i++) keep[i] = malloc((size_t)(i % 50) * 20 + 1);
    for (int i = 0; i < 250; i++) free(keep[i]);
    void *big = malloc(1u << 20);
    (void)big;
    return 0;
}

static int child_run(const char *mode, const char *arg) {
    resolve();
    if (!strcmp(mode, "cap")) return child_cap(atoll(arg));
    if (!strcmp(mode, "get")) {   /* print the option's value */
        printf("%lld\n", opt(arg));
        return 0;
    }
    if (!strcmp(mode, "set")) return child_set();
    if (!strcmp(mode, "l2tiny")) return child_l2tiny();
    if (!strcmp(mode, "stats")) return child_stats();
    return 99;
}

/* ---- parent ---------------------------------------------------------------------- */
static char out_buf[1 << 16], err_buf[1 << 16];

/* Run the child with `vars` (NULL-terminated "NAME=value") added; returns its
 * exit status (or 128 + signal); stdout/stderr in out_buf/err_buf. */
static int run(const char *mode, const char *arg, const char *const *vars) {
    char *argv[] = {"options_env", "--child", (char *)mode, (char *)(arg ? arg : ""), NULL};
    return hk_exec_self(argv, vars, NULL, out_buf, sizeof out_buf, err_buf, sizeof err_buf, NULL);
}

static int count_lines_with(const char *buf, const char *needle) { return hk_count_lines_with(buf, needle); }

static int warnings(void) { return count_lines_with(err_buf, "hakmem: warning:"); }

static void expect_invalid(const char *var, const char *name, const char *dflt) {
    const char *vars[] = {var, NULL};
    int rc = run("get", name, vars);
    EXPECT(rc == 0, "%s: child exit %d (stderr: %s)", var, rc, err_buf);
    EXPECT(atoll(out_buf) == atoll(dflt), "%s: value %s, expected the default %s", var, out_buf,
           dflt);
    char want[128];
    snprintf(want, sizeof want, "default %s", dflt);
    EXPECT(warnings() == 1 && count_lines_with(err_buf, name) == 1 &&
               count_lines_with(err_buf, want) == 1,
           "%s: expected one warning naming %s and '%s', stderr was:\n%s", var, name, want,
           err_buf);
}

/* The HAKMEM_STATS=1 report: class rows add up, sections parse. */
static void check_report(void) {
    int rows = 0, all = 0, bytes = 0, segs = 0, large = 0;
    unsigned long long sa = 0, sf = 0, sl = 0, sc = 0;
    for (char *l = err_buf; l && *l;) {
        char *e = strchr(l, '\n');
        if (e) *e = 0;
        unsigned cls;
        size_t size, cur, peak;
        unsigned long long a, f, r, live, cached, refills, flushes;
        char first[16];
        if (sscanf(l, "%15s", first) == 1 && !strcmp(first, "all")) {
            all = sscanf(l, "%*s %*s %llu %llu %*s %llu %llu", &a, &f, &live, &cached) == 4;
            EXPECT(all && a == sa && f == sf && live == sl && cached == sc,
                   "report: 'all' row does not sum the class rows: %s", l);
        } else if (sscanf(l, "%u %zu %llu %llu %llu %llu %llu %zu %zu %llu %llu", &cls, &size, &a,
                          &f, &r, &live, &cached, &cur, &peak, &refills, &flushes) == 11) {
            rows++;
            sa += a, sf += f, sl += live, sc += cached;
            EXPECT(a - f - cached == live, "report: class %u: %llu - %llu - %llu != live %llu",
                   cls, a, f, cached, live);
            EXPECT(cur == (a - f) * size && peak >= cur, "report: class %u bytes: %s", cls, l);
        } else if (!strncmp(l, "bytes:", 6)) {
            size_t al, ac, ca, co, re, ma;
            bytes = sscanf(l, "bytes: allocated=%zu active=%zu cached=%zu committed=%zu "
                              "resident=%zu mapped=%zu", &al, &ac, &ca, &co, &re, &ma) == 6 &&
                    ma >= co && ma > 0 && al >= (1u << 20);
        } else if (!strncmp(l, "segments:", 9)) {
            size_t t, ti, l2, ab, cc;
            segs = sscanf(l, "segments: total=%zu tiny=%zu l2=%zu abandoned=%zu cached=%zu", &t,
                          &ti, &l2, &ab, &cc) == 5 && t >= 1;
        } else if (!strncmp(l, "large:", 6)) {
            size_t n, b, c;
            large = sscanf(l, "large: count=%zu bytes=%zu cached_bytes=%zu", &n, &b, &c) == 3 &&
                    n == 1 && b >= (1u << 20);
        }
        l = e ? e + 1 : NULL;
    }
    EXPECT(rows >= 10 && all && bytes && segs && large,
           "report incomplete (rows %d, all %d, bytes %d, segments %d, large %d):\n%s", rows,
           all, bytes, segs, large, err_buf);
}

int main(int argc, char **argv) {
    if (argc >= 3 && !strcmp(argv[1], "--child")) return child_run(argv[2], argc > 3 ? argv[3] : "");
    hk_require_if_expected("options_env");
    if (!hk_active()) {
        NOTE("hakmem not loaded: nothing to check");
        return test_finish("options_env");
    }
    int rc;
    /* a valid value takes effect, silently */
    const char *cap8[] = {"HAKMEM_SLL_CAP_MAX=8", NULL};
    rc = run("cap", "8", cap8);
    EXPECT(rc == 0 && warnings() == 0, "SLL_CAP_MAX=8: child exit %d, stderr:\n%s", rc, err_buf);
    const char *sz[] = {"HAKMEM_LARGE_CACHE_BYTES=32M", NULL};
    rc = run("get", "large_cache_bytes", sz);
    EXPECT(rc == 0 && atoll(out_buf) == 32ll << 20 && warnings() == 0,
           "LARGE_CACHE_BYTES=32M: %s (exit %d) stderr:\n%s", out_buf, rc, err_buf);
    const char *bo[] = {"HAKMEM_TINY_USE_SUPERSLAB=off", NULL};
    rc = run("get", "tiny_use_superslab", bo);
    EXPECT(rc == 0 && atoll(out_buf) == 0 && warnings() == 0, "TINY_USE_SUPERSLAB=off: %s",
           out_buf);
    /* the defaults */
    rc = run("get", "tiny_use_superslab", NULL);
    EXPECT(rc == 0 && atoll(out_buf) == 1 && warnings() == 0,
           "default TINY_USE_SUPERSLAB: %s (stderr %s)", out_buf, err_buf);

    /* invalid values: one warning each, the default used */
    expect_invalid("HAKMEM_SLL_CAP_MAX=abc", "HAKMEM_SLL_CAP_MAX", "1024");
    expect_invalid("HAKMEM_SLL_CAP_MAX=999999", "HAKMEM_SLL_CAP_MAX", "1024");
    expect_invalid("HAKMEM_SLL_CAP_MAX=-3", "HAKMEM_SLL_CAP_MAX", "1024");
    expect_invalid("HAKMEM_SLL_CAP_MAX=", "HAKMEM_SLL_CAP_MAX", "1024");
    expect_invalid("HAKMEM_PURGE_DELAY_MS=5k", "HAKMEM_PURGE_DELAY_MS", "1000");
    expect_invalid("HAKMEM_TINY_USE_SUPERSLAB=2", "HAKMEM_TINY_USE_SUPERSLAB", "1");
    expect_invalid("HAKMEM_STATS=maybe", "HAKMEM_STATS", "0");

    /* an unknown HAKMEM_* name: named alone (no stray "..."), with the
     * option it is a near miss of */
    const char *typo[] = {"HAKMEM_SLL_CAP_MAXX=8", NULL};
    rc = run("get", "sll_cap_max", typo);
    EXPECT(rc == 0 && atoll(out_buf) == 1024 && warnings() == 1 &&
               count_lines_with(err_buf, "unknown variable HAKMEM_SLL_CAP_MAXX ignored "
                                         "(did you mean HAKMEM_SLL_CAP_MAX?)") == 1 &&
               count_lines_with(err_buf, "...") == 0,
           "unknown HAKMEM_SLL_CAP_MAXX: stderr was:\n%s", err_buf);
    const char *typo2[] = {"HAKMEM_STAST=1", NULL};
    rc = run("get", "stats", typo2);
    EXPECT(rc == 0 && count_lines_with(err_buf, "(did you mean HAKMEM_STATS?)") == 1,
           "unknown HAKMEM_STAST: stderr was:\n%s", err_buf);
    const char *far[] = {"HAKMEM_COMPLETELY_DIFFERENT=1", NULL};
    rc = run("get", "stats", far);
    EXPECT(rc == 0 && count_lines_with(err_buf, "unknown variable HAKMEM_COMPLETELY_DIFFERENT "
                                                "ignored (not a hakmem option") == 1,
           "unknown HAKMEM_COMPLETELY_DIFFERENT: stderr was:\n%s", err_buf);
    /* an invalid boolean: the warning lists the spellings that are accepted */
    const char *badbool[] = {"HAKMEM_BACKGROUND=maybe", NULL};
    rc = run("get", "background", badbool);
    EXPECT(rc == 0 && atoll(out_buf) == 1 &&
               count_lines_with(err_buf, "expected 1/0, on/off, yes/no or true/false") == 1,
           "HAKMEM_BACKGROUND=maybe: %s, stderr was:\n%s", out_buf, err_buf);

    /* verbose lists every option */
    const char *verb[] = {"HAKMEM_VERBOSE=1", "HAKMEM_REFILL_BATCH_MAX=32", NULL};
    rc = run("get", "refill_batch_max", verb);
    EXPECT(rc == 0 && atoll(out_buf) == 32 &&
               count_lines_with(err_buf, "hakmem: option HAKMEM_REFILL_BATCH_MAX=32 (default 64)") == 1 &&
               count_lines_with(err_buf, "hakmem: option HAKMEM_") >= 15,
           "VERBOSE=1: stderr was:\n%s", err_buf);

    /* run-time changes */
    rc = run("set", "", NULL);
    EXPECT(rc == 0, "hakmem_option_set checks: child failed at step %d (stderr %s)", rc, err_buf);

    /* the comparison path */
    const char *l2t[] = {"HAKMEM_TINY_USE_SUPERSLAB=0", NULL};
    rc = run("l2tiny", "", l2t);
    EXPECT(rc == 0, "TINY_USE_SUPERSLAB=0: child failed at step %d (stderr %s)", rc, err_buf);

    /* the report at exit */
    const char *stv[] = {"HAKMEM_STATS=1", NULL};
    rc = run("stats", "", stv);
    EXPECT(rc == 0, "HAKMEM_STATS=1: child exit %d", rc);
    EXPECT(count_lines_with(err_buf, "hakmem stats: pid=") == 1, "no report header:\n%s", err_buf);
    check_report();
    rc = run("stats", "", NULL);
    EXPECT(rc == 0 && !strstr(err_buf, "hakmem stats"), "a report without HAKMEM_STATS:\n%s",
           err_buf);
    return test_finish("options_env");
}
