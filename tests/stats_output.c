/* stats_output.c -- what hakmem reports without being asked (issue 12):
 *
 *   startup   a program that never calls malloc gets the warning for an
 *             unknown HAKMEM_* variable, the HAKMEM_VERBOSE=1 report (the
 *             version, and the path of the loaded library, which exists and
 *             is the library this test resolves hakmem's API in) with every
 *             option once, and its HAKMEM_STATS=json report in its
 *             HAKMEM_STATS_FILE, which shows that no heap was made;
 *   early     a malloc from a constructor that runs before the library's
 *             (the _static variant: priority 101 runs before hakmem's) still
 *             gets one warning and one report, not two;
 *   verbose2  HAKMEM_VERBOSE=2 adds each option's range and trade-off;
 *   fork      HAKMEM_STATS_FILE=relative/%p with %%, text and json: the
 *             process and its forked child each write their own file, named
 *             with their own pid, which their report repeats; the relative
 *             path holds although the process changes directory before exit;
 *   badfile   an unopenable HAKMEM_STATS_FILE: one warning, the report on
 *             stderr instead;
 *   json      hakmem_stats_print_json parsed by the strict parser below
 *             agrees with hakmem_stats_get taken just before (every class's
 *             counts, bytes, large blocks, segments), and a bad fd fails;
 *   exitjson  HAKMEM_STATS=json without a file: stderr is exactly one valid
 *             JSON object;
 *   values    HAKMEM_STATS=jsonx warns and keeps 0, TEXT is accepted, off
 *             wins over HAKMEM_STATS_FILE;
 *   parser    the parser rejects what strict JSON rejects (so the checks
 *             above can fail).
 *
 * The parent re-executes itself (/proc/self/exe) with a chosen environment
 * (LD_PRELOAD kept, other HAKMEM_* removed) and checks the child's stderr and
 * files. Variants: _preload, _prefixed (libhakmem_api), _static (libhakmem.a,
 * HK_STATIC). Arguments name the cases to run (none: all). */
#include "test_util.h"

#include <dirent.h>
#include <limits.h>
#include <sys/stat.h>

#include "../include/hakmem.h"


/* ---- hakmem's API: linked (prefixed, static) or looked up (preload) ---------------- */
static void (*stats_get)(hakmem_stats *);
static int (*stats_print_json)(int);
static const char *(*version)(void);
static int (*owns)(const void *);

static int resolve(void) {
#if defined(HK_PREFIXED) || defined(HK_STATIC)
    stats_get = hakmem_stats_get;
    stats_print_json = hakmem_stats_print_json;
    version = hakmem_version;
    owns = hakmem_owns;
#else
    *(void **)&stats_get = dlsym(RTLD_DEFAULT, "hakmem_stats_get");
    *(void **)&stats_print_json = dlsym(RTLD_DEFAULT, "hakmem_stats_print_json");
    *(void **)&version = dlsym(RTLD_DEFAULT, "hakmem_version");
    *(void **)&owns = dlsym(RTLD_DEFAULT, "hakmem_owns");
#endif
    return stats_get && stats_print_json && version && owns;
}

/* ---- a strict JSON parser (RFC 8259): a tree of nodes in static arrays ------------ */
enum { J_OBJ, J_ARR, J_STR, J_NUM, J_TRUE, J_FALSE, J_NULL };
typedef struct jnode {
    int type;
    int child, next;         /* first member/element; next sibling (-1: none) */
    const char *key;         /* a member's name (decoded), NULL in arrays */
    const char *str;         /* J_STR: decoded */
    int is_uint;             /* J_NUM: a non-negative integer that fits in 64 bits */
    unsigned long long u;
} jnode;

#define JMAX 8192
static jnode jn[JMAX];
static int jcount;
static char jpool[1 << 16];
static size_t jpool_n;
static const char *jp, *jerr;

static void jws(void) {
    while (*jp == ' ' || *jp == '\t' || *jp == '\n' || *jp == '\r') jp++;
}

static int jfail(const char *why) {
    if (!jerr) jerr = why;
    return -1;
}

static int jnew(int type) {
    if (jcount >= JMAX) return jfail("too many values");
    jn[jcount] = (jnode){.type = type, .child = -1, .next = -1};
    return jcount++;
}

static int hexval(char c) {
    return c >= '0' && c <= '9' ? c - '0' : (c | 0x20) >= 'a' && (c | 0x20) <= 'f' ? (c | 0x20) - 'a' + 10 : -1;
}

/* A string at jp (after its '"'): decoded into jpool. */
static const char *jstring(void) {
    if (*jp != '"') return jfail("expected a string"), NULL;
    jp++;
    char *out = jpool + jpool_n;
    for (;;) {
        unsigned char c = (unsigned char)*jp++;
        if (jpool_n + 8 >= sizeof jpool) return jfail("strings too long"), NULL;
        if (c == '"') break;
        if (c < 0x20) return jfail("control character in a string"), NULL;
        if (c == '\\') {
            char e = *jp++;
            const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
            const char *k = e ? strchr(from, e) : NULL;
            if (k) {
                jpool[jpool_n++] = to[k - from];
            } else if (e == 'u') {
                int v = 0;
                for (int i = 0; i < 4; i++) {
                    int h = hexval(*jp++);
                    if (h < 0) return jfail("bad \\u escape"), NULL;
                    v = v * 16 + h;
                }
                jpool[jpool_n++] = v < 0x80 ? (char)v : '?';
            } else {
                return jfail("bad escape"), NULL;
            }
            continue;
        }
        jpool[jpool_n++] = (char)c;
    }
    jpool[jpool_n++] = 0;
    return out;
}

static int jvalue(int depth);

static int jnumber(void) {
    int n = jnew(J_NUM);
    if (n < 0) return -1;
    const char *start = jp;
    if (*jp == '-') jp++;
    if (*jp == '0') {
        jp++;
    } else if (*jp >= '1' && *jp <= '9') {
        while (*jp >= '0' && *jp <= '9') jp++;
    } else {
        return jfail("bad number");
    }
    int integer = 1;
    if (*jp == '.') {
        jp++;
        if (*jp < '0' || *jp > '9') return jfail("bad fraction");
        while (*jp >= '0' && *jp <= '9') jp++;
        integer = 0;
    }
    if (*jp == 'e' || *jp == 'E') {
        jp++;
        if (*jp == '+' || *jp == '-') jp++;
        if (*jp < '0' || *jp > '9') return jfail("bad exponent");
        while (*jp >= '0' && *jp <= '9') jp++;
        integer = 0;
    }
    if (integer && *start != '-') {
        unsigned long long v = 0;
        int fits = 1;
        for (const char *d = start; d < jp; d++) {
            if (v > (ULLONG_MAX - 9) / 10) fits = 0;
            v = v * 10 + (unsigned)(*d - '0');
        }
        jn[n].is_uint = fits;
        jn[n].u = v;
    }
    return n;
}

static int jlist(int type, char close, int depth) {
    int n = jnew(type), last = -1;
    if (n < 0) return -1;
    jp++;
    jws();
    if (*jp == close) {
        jp++;
        return n;
    }
    for (;;) {
        const char *key = NULL;
        if (type == J_OBJ) {
            if (!(key = jstring())) return -1;
            for (int m = jn[n].child; m >= 0; m = jn[m].next)
                if (!strcmp(jn[m].key, key)) return jfail("duplicate key");
            jws();
            if (*jp++ != ':') return jfail("expected ':'");
        }
        int v = jvalue(depth + 1);
        if (v < 0) return -1;
        jn[v].key = key;
        if (last < 0) jn[n].child = v;
        else jn[last].next = v;
        last = v;
        jws();
        if (*jp == ',') {
            jp++;
            jws();
            continue;
        }
        if (*jp++ == close) return n;
        return jfail(type == J_OBJ ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static int jvalue(int depth) {
    if (depth > 64) return jfail("nested too deep");
    jws();
    switch (*jp) {
    case '{': return jlist(J_OBJ, '}', depth);
    case '[': return jlist(J_ARR, ']', depth);
    case '"': {
        int n = jnew(J_STR);
        if (n < 0 || !(jn[n].str = jstring())) return -1;
        return n;
    }
    case 't': if (!strncmp(jp, "true", 4)) { jp += 4; return jnew(J_TRUE); } break;
    case 'f': if (!strncmp(jp, "false", 5)) { jp += 5; return jnew(J_FALSE); } break;
    case 'n': if (!strncmp(jp, "null", 4)) { jp += 4; return jnew(J_NULL); } break;
    default:
        if (*jp == '-' || (*jp >= '0' && *jp <= '9')) return jnumber();
    }
    return jfail("unexpected character");
}

/* The root of the one JSON value `text` holds (whitespace around it only), or
 * -1 with jerr set. */
static int jparse(const char *text) {
    jcount = 0;
    jpool_n = 0;
    jerr = NULL;
    jp = text;
    int root = jvalue(0);
    if (root < 0) return -1;
    jws();
    if (*jp) return jfail("text after the value");
    return root;
}

static int jget(int obj, const char *key) {
    if (obj < 0 || jn[obj].type != J_OBJ) return -1;
    for (int m = jn[obj].child; m >= 0; m = jn[m].next)
        if (!strcmp(jn[m].key, key)) return m;
    return -1;
}

static int jat(int arr, int i) {
    if (arr < 0 || jn[arr].type != J_ARR) return -1;
    int m = jn[arr].child;
    while (m >= 0 && i--) m = jn[m].next;
    return m;
}

static int jlen(int arr) {
    int k = 0;
    if (arr >= 0) for (int m = jn[arr].child; m >= 0; m = jn[m].next) k++;
    return k;
}

/* obj.a.b (a path of member names): its unsigned value, or ~0ull when absent or
 * not a non-negative integer (the caller's EXPECT then fails). */
static unsigned long long ju(int obj, const char *path) {
    char part[64];
    for (const char *p = path; obj >= 0 && *p;) {
        size_t k = strcspn(p, ".");
        snprintf(part, sizeof part, "%.*s", (int)k, p);
        obj = jget(obj, part);
        p += k + (p[k] == '.');
    }
    return obj >= 0 && jn[obj].type == J_NUM && jn[obj].is_uint ? jn[obj].u : ~0ull;
}

static const char *js(int obj, const char *key) {
    int m = jget(obj, key);
    return m >= 0 && jn[m].type == J_STR ? jn[m].str : "";
}

/* ---- children ------------------------------------------------------------------ */
/* HK_EARLY_MALLOC=1: allocate from a constructor that runs before the library's
 * when libhakmem.a is linked in (101 comes before the default priority). */
__attribute__((constructor(101))) static void early_malloc(void) {
    const char *e = getenv("HK_EARLY_MALLOC");
    if (e && *e == '1') free(malloc(24));
}

static int child_fork(void) {   /* allocate, fork; both exit through exit() elsewhere */
    static void *keep[64];
    for (int i = 0; i < 64; i++) keep[i] = malloc(40);
    fflush(stdout);
    pid_t c = fork();
    if (c < 0) return 40;
    if (c == 0) {
        for (int i = 0; i < 64; i++) keep[i] = malloc(3000);
        if (!keep[63] || chdir("/") != 0) _exit(41);
        exit(0);
    }
    int st;
    if (waitpid(c, &st, 0) != c || !WIFEXITED(st) || WEXITSTATUS(st) != 0) return 42;
    if (chdir("/") != 0) return 43;
    printf("%ld %ld\n", (long)getpid(), (long)c);
    return 0;
}

static char jbuf[1 << 17];

static int child_json(void) {   /* HAKMEM_BACKGROUND=0: nothing moves between the two calls */
    static void *keep[1000];
    for (int i = 0; i < 1000; i++)
        if (!(keep[i] = malloc(100))) return 50;
    void *big = malloc(1u << 20);
    if (!big) return 51;
    size_t held = 1000 * 100 + (1u << 20);
    char path[] = "/tmp/hakmem-json-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) return 52;
    unlink(path);
    static hakmem_stats st;
    stats_get(&st);
    if (stats_print_json(fd) != 0) return 53;
    ssize_t n = pread(fd, jbuf, sizeof jbuf - 1, 0);
    close(fd);
    if (n <= 0) return 54;
    jbuf[n] = 0;
    if (jbuf[n - 1] != '\n' || strchr(jbuf, '\n') != jbuf + n - 1) return 55;   /* one line */
    int root = jparse(jbuf);
    if (root < 0) {
        fprintf(stderr, "json: %s at offset %ld\n", jerr, (long)(jp - jbuf));
        return 56;
    }
    if (strcmp(js(root, "version"), version())) return 57;
    if (ju(root, "pid") != (unsigned long long)getpid()) return 58;
    struct stat sb;
    if (stat(js(root, "library"), &sb) != 0) return 59;
    int classes = jget(root, "classes");
    if (jlen(classes) != HAKMEM_NUM_CLASSES) return 60;
    for (int c = 0; c < HAKMEM_NUM_CLASSES; c++) {
        const hakmem_class_stats *k = &st.classes[c];
        int o = jat(classes, c);
        if (ju(o, "class") != (unsigned)c || ju(o, "block_size") != k->block_size) return 61;
        if (ju(o, "allocated") != k->allocated || ju(o, "freed") != k->freed ||
            ju(o, "remote_freed") != k->remote_freed || ju(o, "refills") != k->refills ||
            ju(o, "flushes") != k->flushes || ju(o, "cached") != k->cached ||
            ju(o, "live") != k->live || ju(o, "blocks_out") != k->blocks_out ||
            ju(o, "current_bytes") != k->current_bytes || ju(o, "peak_bytes") != k->peak_bytes ||
            ju(o, "cache_cap") != k->cache_cap) {
            fprintf(stderr, "json: class %d differs from hakmem_stats_get\n", c);
            return 62;
        }
    }
    if (ju(root, "bytes.allocated") != st.allocated || st.allocated < held) return 63;
    if (ju(root, "bytes.mapped") != st.mapped || ju(root, "bytes.active") != st.active ||
        ju(root, "bytes.cached") != st.cached || ju(root, "bytes.committed") != st.committed)
        return 64;
    if (ju(root, "bytes.resident") == ~0ull || ju(root, "bytes.process_resident") == ~0ull)
        return 65;
    if (ju(root, "large.count") != 1 || ju(root, "large.bytes") != st.large_bytes ||
        ju(root, "large.cached_bytes") != st.large_cached_bytes)
        return 66;
    if (ju(root, "segments.total") != st.segments || ju(root, "segments.tiny") != st.segments_tiny ||
        ju(root, "segments.l2") != st.segments_l2 ||
        ju(root, "segments.abandoned") != st.segments_abandoned ||
        ju(root, "segments.cached") != st.segments_cached)
        return 67;
    if (ju(root, "threads.heaps") != st.heaps || ju(root, "threads.remote_frees") != st.remote_frees)
        return 68;
    int bg = jget(root, "background"), actions = jget(bg, "actions");
    if (jlen(actions) != HAKMEM_BG_ACTIONS || strcmp(js(jat(actions, 0), "name"), "purge_heaps") ||
        ju(jat(actions, 2), "time_ns") == ~0ull || ju(bg, "wakeups") == ~0ull)
        return 69;
    int dc = jget(root, "debug_counters");
    if (dc < 0 || jn[dc].type != (st.debug_counters ? J_TRUE : J_FALSE)) return 70;
    if ((jget(root, "debug") >= 0) != (st.debug_counters != 0)) return 71;
    errno = 0;
    if (stats_print_json(-1) != -1 || errno != EBADF) return 72;
    for (int i = 0; i < 1000; i++) free(keep[i]);
    free(big);
    return 0;
}

static int child_run(const char *mode) {
    if (!resolve()) return 99;
    if (!strcmp(mode, "idle")) return 0;   /* no allocation of ours at all */
    if (!strcmp(mode, "alloc")) {
        static void *keep[300];
        for (int i = 0; i < 300; i++) keep[i] = malloc((size_t)i * 7 + 1);
        return keep[299] ? 0 : 97;
    }
    if (!strcmp(mode, "fork")) return child_fork();
    if (!strcmp(mode, "json")) return child_json();
    return 98;
}

/* ---- parent --------------------------------------------------------------------- */
static char out_buf[1 << 16], err_buf[1 << 17];
static pid_t last_pid;
static char dir[64];

/* Run the child in directory `cwd` with `vars` (NULL-terminated) added; its
 * exit status (or 128 + signal), stdout/stderr in out_buf/err_buf, its pid in
 * last_pid. */
static int run(const char *mode, const char *cwd, const char *const *vars) {
    char *argv[] = {"stats_output", "--child", (char *)mode, NULL};
    return hk_exec_self(argv, vars, cwd, out_buf, sizeof out_buf, err_buf, sizeof err_buf, &last_pid);
}

static int count_lines_with(const char *buf, const char *needle) { return hk_count_lines_with(buf, needle); }

static char file_buf[1 << 17];

/* The file's contents into file_buf; 0, or -1 if it cannot be read. */
static int read_file(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    hk_slurp_fd(fd, file_buf, sizeof file_buf);
    return 0;
}

/* The library the child should report: the file holding hakmem's code here. */
static void expected_library(char *out) {
    Dl_info di;
    memset(&di, 0, sizeof di);
    const char *f = dladdr(*(void **)&version, &di) && di.dli_fname && di.dli_fname[0] == '/'
                        ? di.dli_fname
                        : "/proc/self/exe";   /* linked into the executable */
    if (!realpath(f, out)) snprintf(out, PATH_MAX, "?");
}

static int option_lines(void) { return count_lines_with(err_buf, "hakmem: option HAKMEM_"); }

/* The reports of startup and early: one warning, one version line naming the
 * library, each option once. */
static void check_startup_messages(const char *what) {
    EXPECT(count_lines_with(err_buf, "hakmem: warning: unknown variable HAKMEM_NO_SUCH_THING") == 1 &&
               count_lines_with(err_buf, "hakmem: warning:") == 1,
           "%s: expected one warning, stderr:\n%s", what, err_buf);
    char want[PATH_MAX + 64], lib[PATH_MAX];
    expected_library(lib);
    snprintf(want, sizeof want, "hakmem: version %s, library %s", version(), lib);
    EXPECT(count_lines_with(err_buf, want) == 1 && count_lines_with(err_buf, "hakmem: version") == 1,
           "%s: expected the line '%s' once, stderr:\n%s", what, want, err_buf);
    struct stat sb;
    EXPECT(stat(lib, &sb) == 0 && S_ISREG(sb.st_mode), "%s: %s does not exist", what, lib);
    EXPECT(count_lines_with(err_buf, "hakmem: option HAKMEM_STATS=json (default 0)") == 1 &&
               count_lines_with(err_buf, "hakmem: option HAKMEM_VERBOSE=1 (default 0)") == 1 &&
               count_lines_with(err_buf, "hakmem: option HAKMEM_STATS_FILE=/") == 1 &&
               count_lines_with(err_buf, "hakmem: option HAKMEM_SLL_CAP_MAX=") == 1 &&
               option_lines() >= 15,
           "%s: every option once, stderr:\n%s", what, err_buf);
}

/* The child's JSON report in dir/NAME.<pid>.json: parsed, its pid checked;
 * the root or -1. */
static int child_json_file(const char *what, const char *name, long pid) {
    char path[128];
    snprintf(path, sizeof path, "%s/%s.%ld.json", dir, name, pid);
    if (read_file(path) != 0) {
        EXPECT(0, "%s: no report %s (stderr:\n%s)", what, path, err_buf);
        return -1;
    }
    int root = jparse(file_buf);
    EXPECT(root >= 0, "%s: %s is not valid JSON (%s):\n%s", what, path, jerr, file_buf);
    EXPECT(root < 0 || ju(root, "pid") == (unsigned long long)pid, "%s: %s names another pid", what,
           path);
    unlink(path);
    return root;
}

static void case_startup(void) {
    const char *vars[] = {"HAKMEM_VERBOSE=1", "HAKMEM_NO_SUCH_THING=1", "HAKMEM_STATS=json",
                          "HAKMEM_STATS_FILE=idle.%p.json", NULL};
    int rc = run("idle", dir, vars);
    EXPECT(rc == 0, "startup: child exit %d, stderr:\n%s", rc, err_buf);
    check_startup_messages("startup");
    EXPECT(!strchr(err_buf, '{'), "startup: the JSON report went to stderr:\n%s", err_buf);
    int root = child_json_file("startup", "idle", last_pid);
    char lib[PATH_MAX];
    expected_library(lib);
    EXPECT(root < 0 || (ju(root, "threads.heaps") == 0 && !strcmp(js(root, "library"), lib)),
           "startup: the program allocated (heaps %llu) or the library differs (%s)",
           ju(root, "threads.heaps"), root < 0 ? "" : js(root, "library"));
}

static void case_early(void) {
    const char *vars[] = {"HK_EARLY_MALLOC=1", "HAKMEM_VERBOSE=1", "HAKMEM_NO_SUCH_THING=1",
                          "HAKMEM_STATS=json", "HAKMEM_STATS_FILE=early.%p.json", NULL};
    int rc = run("idle", dir, vars);
    EXPECT(rc == 0, "early: child exit %d, stderr:\n%s", rc, err_buf);
    check_startup_messages("early");
    int root = child_json_file("early", "early", last_pid);
    EXPECT(root < 0 || ju(root, "threads.heaps") == 1,
           "early: the constructor's malloc made no heap (heaps %llu)", ju(root, "threads.heaps"));
}

static void case_verbose2(void) {
    const char *vars[] = {"HAKMEM_VERBOSE=2", NULL};
    int rc = run("idle", NULL, vars);
    /* the two paths (STATS_FILE, LEARN_LOG) have no range */
    int opts = count_lines_with(err_buf, "hakmem: option HAKMEM_") -
               count_lines_with(err_buf, "hakmem: option HAKMEM_STATS_FILE=") -
               count_lines_with(err_buf, "hakmem: option HAKMEM_LEARN_LOG=");
    EXPECT(rc == 0 && opts >= 15 && count_lines_with(err_buf, ", set later: ") == opts &&
               count_lines_with(err_buf, "hakmem:   0, 1 or json, set later: at once; ") == 1 &&
               count_lines_with(err_buf, "hakmem:   1..65535, set later: per thread cache; ") >= 2,
           "verbose2: stderr:\n%s", err_buf);
}

static void case_fork(int json) {
    const char *what = json ? "fork json" : "fork text";
    const char *vars[] = {json ? "HAKMEM_STATS=json" : "HAKMEM_STATS=1",
                          json ? "HAKMEM_STATS_FILE=f%%.%p.json" : "HAKMEM_STATS_FILE=f%%.%p.txt",
                          NULL};
    int rc = run("fork", dir, vars);
    long pids[2] = {0, 0};
    EXPECT(rc == 0 && sscanf(out_buf, "%ld %ld", &pids[0], &pids[1]) == 2 &&
               pids[0] == last_pid && pids[1] > 0 && pids[1] != pids[0],
           "%s: child exit %d, stdout '%s', stderr:\n%s", what, rc, out_buf, err_buf);
    EXPECT(!strstr(err_buf, "hakmem"), "%s: hakmem wrote to stderr:\n%s", what, err_buf);
    for (int i = 0; i < 2 && pids[i] > 0; i++) {
        if (json) {
            int root = child_json_file(what, "f%", pids[i]);
            /* the forked child allocated 3000-byte blocks, its parent did not */
            int classes = jget(root, "classes"), big = 0;
            for (int c = 0; c < jlen(classes); c++) {
                int k = jat(classes, c);
                if (ju(k, "block_size") >= 3000 && ju(k, "block_size") < 4096 && ju(k, "allocated") > 0)
                    big = 1;
            }
            EXPECT(root < 0 || big == (i == 1), "%s: process %ld: 3000-byte blocks %s", what,
                   pids[i], big ? "counted in the parent" : "missing");
            continue;
        }
        char path[128], head[64];
        snprintf(path, sizeof path, "%s/f%%.%ld.txt", dir, pids[i]);
        snprintf(head, sizeof head, "hakmem stats: pid=%ld version=", pids[i]);
        EXPECT(read_file(path) == 0 && count_lines_with(file_buf, head) == 1 &&
                   count_lines_with(file_buf, "hakmem stats:") == 1 &&
                   count_lines_with(file_buf, "counted per batch") == 1 &&
                   count_lines_with(file_buf, "class block_size") == 1,
               "%s: %s:\n%s", what, path, file_buf);
        unlink(path);
    }
}

static void case_badfile(void) {
    const char *vars[] = {"HAKMEM_STATS=1", "HAKMEM_STATS_FILE=/nonexistent-hakmem-dir/s.%p",
                          NULL};
    int rc = run("alloc", NULL, vars);
    char want[128];
    snprintf(want, sizeof want, "hakmem: warning: cannot open HAKMEM_STATS_FILE "
             "/nonexistent-hakmem-dir/s.%ld: no such file or directory", (long)last_pid);
    EXPECT(rc == 0 && count_lines_with(err_buf, want) == 1 &&
               count_lines_with(err_buf, "hakmem: warning:") == 1 &&
               count_lines_with(err_buf, "hakmem stats: pid=") == 1,
           "badfile: exit %d, stderr:\n%s", rc, err_buf);
}

static void case_json(void) {
    const char *vars[] = {"HAKMEM_BACKGROUND=0", NULL};
    int rc = run("json", NULL, vars);
    EXPECT(rc == 0, "json: the child failed at step %d, stderr:\n%s", rc, err_buf);
}

static void case_exitjson(void) {
    const char *vars[] = {"HAKMEM_STATS=json", NULL};
    int rc = run("alloc", NULL, vars);
    int root = jparse(err_buf);
    EXPECT(rc == 0 && root >= 0, "exitjson: exit %d, not one JSON value (%s at offset %ld):\n%s",
           rc, jerr ? jerr : "-", (long)(jp - err_buf), err_buf);
    if (root < 0) return;
    int classes = jget(root, "classes");
    unsigned long long sum = 0;
    for (int c = 0; c < jlen(classes); c++) sum += ju(jat(classes, c), "allocated");
    EXPECT(jlen(classes) == HAKMEM_NUM_CLASSES && sum >= 300 &&
               ju(root, "pid") == (unsigned long long)last_pid && !strcmp(js(root, "version"), version()),
           "exitjson: %d classes, %llu blocks allocated, pid %llu (child %ld)", jlen(classes), sum,
           ju(root, "pid"), (long)last_pid);
    EXPECT(strchr(err_buf, '\n') == err_buf + strlen(err_buf) - 1, "exitjson: not one line");
}

static void case_values(void) {
    const char *bad[] = {"HAKMEM_STATS=jsonx", NULL};
    int rc = run("alloc", NULL, bad);
    EXPECT(rc == 0 && count_lines_with(err_buf, "hakmem: warning: invalid value HAKMEM_STATS=\"jsonx\" "
                                                "(expected 1/0, on/off, yes/no, true/false, text or json); "
                                                "using the default 0") == 1 &&
               !strstr(err_buf, "hakmem stats") && !strchr(err_buf, '{'),
           "values: HAKMEM_STATS=jsonx: stderr:\n%s", err_buf);
    const char *text[] = {"HAKMEM_STATS=TEXT", NULL};
    rc = run("alloc", NULL, text);
    EXPECT(rc == 0 && !strstr(err_buf, "warning") && count_lines_with(err_buf, "hakmem stats: pid=") == 1,
           "values: HAKMEM_STATS=TEXT: stderr:\n%s", err_buf);
    const char *off[] = {"HAKMEM_STATS=off", "HAKMEM_STATS_FILE=off.%p", NULL};
    rc = run("alloc", dir, off);
    char path[128];
    snprintf(path, sizeof path, "%s/off.%ld", dir, (long)last_pid);
    EXPECT(rc == 0 && err_buf[0] == 0 && access(path, F_OK) != 0,
           "values: HAKMEM_STATS=off with a file: stderr:\n%s", err_buf);
}

static void case_parser(void) {
    static const char *const good[] = {
        "{}", "[]", " {\"a\" : [1, -2, 3.5e+2, 0, true, false, null, \"x\\u0041\\n\"]} ",
        "{\"a\":{\"b\":18446744073709551615}}", "\"\\\"\\\\\\/\"", "0"};
    static const char *const bad[] = {
        "", "{", "{\"a\":1,}", "[1,]", "[01]", "{\"a\":NaN}", "[Infinity]", "{\"a\":1}{",
        "{\"a\":1,\"a\":2}", "\"a\x01\"", "{a:1}", "['a']", "[1.]", "[.5]", "[1e]", "[-]",
        "[\"\\x\"]", "[\"\\u12\"]", "[tru]", "{\"a\" 1}", "[1 2]", "\"unterminated"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        EXPECT(jparse(good[i]) >= 0, "parser: rejected valid %s (%s)", good[i], jerr);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        EXPECT(jparse(bad[i]) < 0, "parser: accepted invalid '%s'", bad[i]);
    int r = jparse("{\"a\":{\"b\":18446744073709551615,\"c\":-1,\"d\":2.0}}");
    EXPECT(ju(r, "a.b") == 18446744073709551615ull - 0 && ju(r, "a.c") == ~0ull &&
               ju(r, "a.d") == ~0ull && ju(r, "a.e") == ~0ull,
           "parser: values");
    r = jparse("{\"v\":\"a\\u0041\\t\"}");
    EXPECT(!strcmp(js(r, "v"), "aA\t"), "parser: escapes decoded as '%s'", js(r, "v"));
}

int main(int argc, char **argv) {
    if (argc >= 3 && !strcmp(argv[1], "--child")) return child_run(argv[2]);
    if (hk_selected(argc, argv, "parser")) case_parser();
#ifndef HK_STATIC
    hk_require_if_expected("stats_output");   /* dlsym finds nothing in a static link */
#endif
    void *p = malloc(64);
    int active = resolve() && owns(p);
    free(p);
    if (!active) {
        CHECK(!hk_expected(), "HAKMEM_TEST_EXPECT=1 but hakmem does not serve this process");
        NOTE("hakmem does not serve this process: nothing more to check");
        return test_finish("stats_output");
    }
    snprintf(dir, sizeof dir, "/tmp/hakmem-stats-output-XXXXXX");
    CHECK(mkdtemp(dir), "mkdtemp: %s", strerror(errno));
    if (hk_selected(argc, argv, "startup")) case_startup();
    if (hk_selected(argc, argv, "early")) case_early();
    if (hk_selected(argc, argv, "verbose2")) case_verbose2();
    if (hk_selected(argc, argv, "fork")) case_fork(0), case_fork(1);
    if (hk_selected(argc, argv, "badfile")) case_badfile();
    if (hk_selected(argc, argv, "json")) case_json();
    if (hk_selected(argc, argv, "exitjson")) case_exitjson();
    if (hk_selected(argc, argv, "values")) case_values();
    DIR *d = opendir(dir);   /* whatever a failed case left behind */
    for (struct dirent *e; d && (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        EXPECT(0, "left over: %s", path);
        unlink(path);
    }
    if (d) closedir(d);
    rmdir(dir);
    return test_finish("stats_output");
}
