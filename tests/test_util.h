/* test_util.h -- helpers shared by the hakmem C tests (header only).
 *
 * CHECK(cond, fmt, ...)  fatal: prints "file:line: CHECK(cond) failed: msg"
 *                        to stderr and exits with status 1 immediately.
 * EXPECT(cond, fmt, ...) non-fatal: same message, counts the failure and
 *                        continues; test_finish() turns the count into the
 *                        exit status (0 = pass, 1 = fail).
 * NOTE(fmt, ...)         informational line on stdout.
 *
 * rss_kib()              resident set size of this process in KiB, read
 *                        from /proc/self/statm with read(2) (no malloc).
 * vm_kib()               its virtual size (VmSize), the same way.
 * hk_read_small_file(path, buf, cap)
 *                        a small /proc or /sys file into buf (read(2), no
 *                        malloc), NUL-terminated; its length, or -1.
 * hk_active()            1 if hakmem serves this test's allocations: a
 *                        fresh malloc(64) block is one hakmem says it owns
 *                        (hakmem_owns), else 0 -- also when hakmem is loaded
 *                        but something else (a sanitizer runtime, say)
 *                        interposes malloc.
 * hk_selected(argc, argv, name)
 *                        1 if the command line names test case `name` (or
 *                        names none).
 * hk_run_child(fn, arg, alarm_s, exit_code, err, cap)
 *                        death tests: fork, run fn(arg) in the child (no core
 *                        dump, killed after alarm_s seconds, _exit(exit_code)
 *                        if fn returns), collect its stderr into err (cap
 *                        bytes, NUL-terminated); returns the wait status.
 * hk_exec_self(argv, vars, cwd, out, out_cap, err, err_cap, pid)
 *                        run this test's executable again (/proc/self/exe)
 *                        with argv, the environment minus every HAKMEM_*
 *                        variable but HAKMEM_TEST_EXPECT, plus `vars`
 *                        ("NAME=value", NULL-terminated), in directory cwd
 *                        (NULL: here); its stdout and stderr (small outputs)
 *                        into out and err, NUL-terminated, its pid into *pid
 *                        (if pid); returns its exit status, or 128 + signal.
 * hk_count_lines_with(buf, needle)
 *                        how many lines of buf contain needle.
 * hk_require_if_expected()
 *                        CTest sets HAKMEM_TEST_EXPECT=1 for the _preload and
 *                        _linked variants; then hakmem *must* be loaded
 *                        (LD_PRELOAD of a missing/broken file only warns).
 *
 * HK_PREFIXED (defined by CMake for the *_prefixed variants, which link
 * libhakmem_api): malloc, free, calloc, ... below this header are the
 * prefixed API (hakmem_malloc, ...), so the same test exercises hakmem beside
 * glibc's malloc, which then serves only libc's own allocations.
 *
 * Tests are deterministic: use the xorshift RNG below with fixed seeds.
 */
#ifndef HAKMEM_TEST_UTIL_H
#define HAKMEM_TEST_UTIL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <malloc.h>

/* 1 in a sanitizer build: shadow memory makes page faults and RSS say
 * nothing about the allocator, so tests skip those checks. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define HK_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(memory_sanitizer) || __has_feature(undefined_behavior_sanitizer)
#define HK_SANITIZED 1
#endif
#endif
#ifndef HK_SANITIZED
#define HK_SANITIZED 0
#endif

/* Minor page faults of this process so far (getrusage). */
static inline long hk_minflt(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_minflt;
}

#ifdef HK_PREFIXED
/* Object-like, so that a function pointer (`v_malloc = malloc`) is renamed
 * too; the system headers that declare these names are included above. */
#include "../include/hakmem.h"
#define malloc hakmem_malloc
#define free hakmem_free
#define calloc hakmem_calloc
#define realloc hakmem_realloc
#define reallocarray hakmem_reallocarray
#define aligned_alloc hakmem_aligned_alloc
#define posix_memalign hakmem_posix_memalign
#define memalign hakmem_memalign
#define valloc hakmem_valloc
#define pvalloc hakmem_pvalloc
#define malloc_usable_size hakmem_usable_size
#define free_sized hakmem_free_sized
#define free_aligned_sized hakmem_free_aligned_sized
#endif

/* One of hakmem's own entry points (hakmem_stats_get, hakmem_collect,
 * hakmem_owns, ...) as a void *: the prefixed API's function in a _prefixed
 * build, else looked up with dlsym (NULL when hakmem is not loaded). */
#ifdef HK_PREFIXED
#define HK_HAKMEM_FN(name) ((void *)(name))
#else
#define HK_HAKMEM_FN(name) dlsym(RTLD_DEFAULT, #name)
#endif

static int test_failures_ = 0;

#define TEST_MAX_REPORTED_FAILURES 60

#define CHECK(cond, ...)                                                     \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "%s:%d: CHECK(%s) failed: ", __FILE__, __LINE__, \
                    #cond);                                                  \
            fprintf(stderr, __VA_ARGS__);                                    \
            fputc('\n', stderr);                                             \
            fflush(stdout);                                                  \
            fflush(stderr);                                                  \
            exit(1);                                                         \
        }                                                                    \
    } while (0)

#define EXPECT(cond, ...)                                                    \
    do {                                                                     \
        if (!(cond)) {                                                       \
            if (++test_failures_ <= TEST_MAX_REPORTED_FAILURES) {            \
                fprintf(stderr, "%s:%d: EXPECT(%s) failed: ", __FILE__,      \
                        __LINE__, #cond);                                    \
                fprintf(stderr, __VA_ARGS__);                                \
                fputc('\n', stderr);                                         \
            } else if (test_failures_ == TEST_MAX_REPORTED_FAILURES + 1) {   \
                fprintf(stderr, "(further failures not printed)\n");         \
            }                                                                \
        }                                                                    \
    } while (0)

#define NOTE(...)                                                            \
    do {                                                                     \
        printf("note: ");                                                    \
        printf(__VA_ARGS__);                                                 \
        putchar('\n');                                                       \
        fflush(stdout);                                                      \
    } while (0)

static inline int test_finish(const char *name)
{
    fflush(stdout);
    if (test_failures_) {
        fprintf(stderr, "%s: FAILED (%d failed expectation%s)\n", name,
                test_failures_, test_failures_ == 1 ? "" : "s");
        return 1;
    }
    printf("%s: PASSED\n", name);
    return 0;
}

/* ---- RNG (xorshift64; seed 0 remapped) --------------------------------- */
static inline uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s ? *s : 0x9E3779B97F4A7C15ull;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* uniform in [lo, hi] (inclusive) */
static inline size_t rng_range(uint64_t *s, size_t lo, size_t hi)
{
    return lo + (size_t)(rng_next(s) % (uint64_t)(hi - lo + 1));
}

/* ---- patterns ------------------------------------------------------------ */
/* Deterministic byte stream: byte i of the pattern for `seed` depends only on
 * (seed, i) -- never on the block length -- so a prefix check after realloc
 * works, and a block shifted or overlapped by another one is detected. */
static inline uint64_t pat_word(uint64_t seed, size_t word_off)
{
    uint64_t x = seed * 0xD6E8FEB86659FD93ull + 1;
    return x ^ ((uint64_t)word_off * 0x9E3779B97F4A7C15ull);
}

static inline uint8_t pat_expected(uint64_t seed, size_t off)
{
    uint64_t v = pat_word(seed, off & ~(size_t)7);
    return ((const uint8_t *)&v)[off & 7];
}

static inline void pat_fill(void *p, size_t n, uint64_t seed)
{
    uint8_t *b = (uint8_t *)p;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v = pat_word(seed, i);
        memcpy(b + i, &v, 8);
    }
    for (; i < n; i++)
        b[i] = pat_expected(seed, i);
}

/* Returns the offset of the first mismatching byte, or (size_t)-1 if the
 * block holds the pattern. */
static inline size_t pat_check(const void *p, size_t n, uint64_t seed)
{
    const uint8_t *b = (const uint8_t *)p;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v = pat_word(seed, i), got;
        memcpy(&got, b + i, 8);
        if (got != v) {
            for (size_t k = 0; k < 8; k++)
                if (((const uint8_t *)&got)[k] != ((const uint8_t *)&v)[k])
                    return i + k;
        }
    }
    for (; i < n; i++)
        if (b[i] != pat_expected(seed, i))
            return i;
    return (size_t)-1;
}

/* ---- process info ------------------------------------------------------- */
/* A small file (/proc, /sys) into buf, NUL-terminated, with read(2) (no
 * malloc); its length, or -1. */
static inline ssize_t hk_read_small_file(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, cap - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = 0;
    return n;
}

/* Field `index` of /proc/self/statm (0 size, 1 resident) in KiB. */
static inline long statm_kib(int index)
{
    char buf[256];
    if (hk_read_small_file("/proc/self/statm", buf, sizeof buf) < 0)
        return -1;
    char *q = buf;
    long v = strtol(q, &q, 10);
    while (index-- > 0)
        v = strtol(q, &q, 10);
    return v * (sysconf(_SC_PAGESIZE) / 1024);
}

static inline long rss_kib(void) { return statm_kib(1); }

/* Virtual size (VmSize) of this process in KiB. */
static inline long vm_kib(void) { return statm_kib(0); }

/* Asked once (the answer cannot change): does hakmem hand out the blocks
 * this test's malloc returns? hakmem being loaded is not enough: under
 * LD_PRELOAD=libtsan.so, say, hakmem's symbols resolve but the sanitizer's
 * malloc serves every call. */
static inline int hk_active(void)
{
    static int answer = -1;
    if (answer < 0) {
#ifdef HK_PREFIXED
        int (*owns)(const void *) = hakmem_owns;
#else
        int (*owns)(const void *);
        *(void **)&owns = dlsym(RTLD_DEFAULT, "hakmem_owns");
#endif
        void *p = owns ? malloc(64) : NULL;
        answer = p != NULL && owns(p);
        free(p);
    }
    return answer;
}

/* 1 if the code at address `fn` lives in a DSO whose path contains "hakmem",
 * 0 otherwise; *where receives the DSO path (or "?"). */
static inline int hk_addr_in_hakmem(const void *fn, const char **where)
{
    Dl_info di;
    memset(&di, 0, sizeof di);
    if (!fn || !dladdr(fn, &di) || !di.dli_fname) {
        if (where)
            *where = "?";
        return 0;
    }
    if (where)
        *where = di.dli_fname;
    return strstr(di.dli_fname, "hakmem") != NULL;
}

static inline int hk_expected(void)
{
    const char *e = getenv("HAKMEM_TEST_EXPECT");
    return e && *e && strcmp(e, "0") != 0;
}

static inline void hk_require_if_expected(const char *test)
{
    if (hk_expected()) {
        CHECK(hk_active(),
              "%s: HAKMEM_TEST_EXPECT=1 but hakmem does not serve this "
              "process's malloc (hakmem_owns %s; LD_PRELOAD=%s)",
              test,
              dlsym(RTLD_DEFAULT, "hakmem_owns") ? "denies owning a fresh block"
                                                 : "does not resolve",
              getenv("LD_PRELOAD") ? getenv("LD_PRELOAD") : "(unset)");
    }
#ifdef HK_PREFIXED
    const char *api = " (prefixed API: hakmem_malloc, ...)";
#else
    const char *api = "";
#endif
    printf("%s: allocator under test: %s%s\n", test,
           hk_active() ? "hakmem" : "not hakmem (system malloc or an interposer)",
           api);
    fflush(stdout);
}

/* hakmem's option `name` (hakmem_option_get), or a failed CHECK. */
static inline long long hk_option(const char *name)
{
#ifdef HK_PREFIXED
    int (*get)(const char *, long long *) = hakmem_option_get;
#else
    int (*get)(const char *, long long *);
    *(void **)&get = dlsym(RTLD_DEFAULT, "hakmem_option_get");
#endif
    long long v = -1;
    CHECK(get, "hakmem_option_get does not resolve");
    CHECK(get(name, &v) == 0, "hakmem_option_get(\"%s\") failed", name);
    return v;
}

/* The large-block tests measure the cache as they left it: no background
 * thread and a purge delay of at least ten minutes (CTest sets both). */
static inline void hk_require_nothing_expires(void)
{
    CHECK(hk_option("background") == 0 && hk_option("purge_delay_ms") >= 600000,
          "run with HAKMEM_BACKGROUND=0 HAKMEM_PURGE_DELAY_MS=3600000 (background %lld, "
          "purge delay %lld ms): no cached span may expire during the test",
          hk_option("background"), hk_option("purge_delay_ms"));
}

/* ---- re-executing the test with another environment ------------------------ */
extern char **environ;

static inline void hk_slurp_fd(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    ssize_t r;
    while (n < cap - 1 && ((r = read(fd, buf + n, cap - 1 - n)) > 0 || (r < 0 && errno == EINTR)))
        if (r > 0)
            n += (size_t)r;
    buf[n] = 0;
    close(fd);
}

static inline int hk_exec_self(char *const argv[], const char *const *vars, const char *cwd,
                               char *out, size_t out_cap, char *err, size_t err_cap, pid_t *pid_out)
{
    static char *envp[512];
    int n = 0;
    for (char **e = environ; *e && n < 480; e++)
        if (strncmp(*e, "HAKMEM_", 7) || !strncmp(*e, "HAKMEM_TEST_EXPECT=", 19))
            envp[n++] = *e;
    for (int i = 0; vars && vars[i] && n < 511; i++)
        envp[n++] = (char *)vars[i];
    envp[n] = NULL;
    int po[2], pe[2];
    CHECK(pipe(po) == 0 && pipe(pe) == 0, "pipe: %s", strerror(errno));
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    CHECK(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        dup2(po[1], STDOUT_FILENO);
        dup2(pe[1], STDERR_FILENO);
        close(po[0]), close(pe[0]), close(po[1]), close(pe[1]);
        if (cwd && chdir(cwd) != 0)
            _exit(126);
        execve("/proc/self/exe", argv, envp);
        _exit(127);
    }
    close(po[1]), close(pe[1]);
    hk_slurp_fd(po[0], out, out_cap);   /* small outputs: no deadlock between the two */
    hk_slurp_fd(pe[0], err, err_cap);
    int status;
    CHECK(waitpid(pid, &status, 0) == pid, "waitpid: %s", strerror(errno));
    if (pid_out)
        *pid_out = pid;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static inline int hk_count_lines_with(const char *buf, const char *needle)
{
    int n = 0;
    size_t k = strlen(needle);
    for (const char *l = buf; l && *l;) {
        const char *e = strchr(l, '\n');
        size_t len = e ? (size_t)(e - l) : strlen(l);
        if (memmem(l, len, needle, k))
            n++;
        l = e ? e + 1 : NULL;
    }
    return n;
}

/* ---- death tests ----------------------------------------------------------- */
/* Is test case `name` selected by the command line? (no arguments: all) */
static inline int hk_selected(int argc, char **argv, const char *name)
{
    if (argc <= 1)
        return 1;
    for (int a = 1; a < argc; a++)
        if (strcmp(argv[a], name) == 0)
            return 1;
    return 0;
}

static inline int hk_run_child(void (*fn)(const void *), const void *arg, unsigned alarm_s,
                               int exit_code, char *err, size_t cap)
{
    int fds[2];
    CHECK(pipe(fds) == 0, "pipe: %s", strerror(errno));
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    CHECK(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        struct rlimit rl = {0, 0};
        setrlimit(RLIMIT_CORE, &rl); /* no core dumps */
        close(fds[0]);
        dup2(fds[1], STDERR_FILENO);
        close(fds[1]);
        alarm(alarm_s);
        fn(arg);
        _exit(exit_code);
    }
    close(fds[1]);
    size_t len = 0;
    for (;;) {
        ssize_t n = read(fds[0], err + len, cap - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
        if (len >= cap - 1)
            break;
    }
    err[len] = 0;
    close(fds[0]);
    int st = 0;
    CHECK(waitpid(pid, &st, 0) == pid, "waitpid: %s", strerror(errno));
    return st;
}

#endif /* HAKMEM_TEST_UTIL_H */
