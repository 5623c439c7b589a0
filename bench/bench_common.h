/* bench_common.h -- helpers shared by the hakmem benchmarks (header only).
 *
 * Owns: the clock, the RNG, argument parsing, the process's RSS and the
 * RESULT line.
 * Never: allocates memory itself (every malloc/free in a benchmark is the
 * thing being measured).
 *
 * Every benchmark prints exactly one line starting with "RESULT " to stdout,
 * as space-separated key=value pairs, always beginning with
 *   RESULT bench=<name> threads=<T> ops=<N> seconds=<S> mops=<N/S/1e6>
 * followed by the parameters of the run. scripts/bench-compare.sh parses it.
 */
#ifndef HAKMEM_BENCH_COMMON_H
#define HAKMEM_BENCH_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>

static inline double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The process's resident set in MiB (/proc/self/statm), -1 if unreadable.
 * open/read, not stdio: a FILE would be malloc'd by the allocator under
 * test, in the middle of the samples. */
static inline double bench_rss_mib(void)
{
    char buf[128];
    int fd = open("/proc/self/statm", O_RDONLY);
    if (fd < 0)
        return -1;
    ssize_t k = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (k <= 0)
        return -1;
    buf[k] = 0;
    char *p = buf;
    strtoull(p, &p, 10);
    return (double)strtoull(p, NULL, 10) * (double)sysconf(_SC_PAGESIZE) / 1048576.0;
}

/* xorshift64: tiny, deterministic for a given seed (seed 0 is remapped). */
static inline uint64_t xorshift64(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static inline uint64_t rng_seed(uint64_t seed)
{
    return seed ? seed : 0x9E3779B97F4A7C15ull;
}

/* Uniform-ish value in [lo, hi] (modulo bias is irrelevant here). */
static inline size_t rng_range(uint64_t *s, size_t lo, size_t hi)
{
    return lo + (size_t)(xorshift64(s) % (uint64_t)(hi - lo + 1));
}

/* Positional argument i (1-based) as an unsigned number, or dflt if absent
 * or "-". Accepts k/m/g suffixes (powers of 1000 for counts are confusing,
 * so: k = 1024, m = 1024^2, g = 1024^3). Exits on garbage. */
static inline unsigned long long bench_arg(int argc, char **argv, int i,
                                           unsigned long long dflt)
{
    if (i >= argc || strcmp(argv[i], "-") == 0)
        return dflt;
    char *end;
    unsigned long long v = strtoull(argv[i], &end, 0);
    switch (*end) {
    case 'k': case 'K': v <<= 10; end++; break;
    case 'm': case 'M': v <<= 20; end++; break;
    case 'g': case 'G': v <<= 30; end++; break;
    default: break;
    }
    if (end == argv[i] || *end != '\0') {
        fprintf(stderr, "%s: bad argument %d: '%s' (want a number)\n",
                argv[0], i, argv[i]);
        exit(2);
    }
    return v;
}

/* Print usage and exit 0 on -h/--help. */
static inline void bench_usage(int argc, char **argv, const char *usage)
{
    if (argc > 1 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        fputs(usage, stdout);
        exit(0);
    }
}

static inline void bench_die(const char *what)
{
    fprintf(stderr, "bench: %s\n", what);
    exit(1);
}

/* The one RESULT line; `extra` is appended verbatim (may be ""). */
static inline void bench_result(const char *name, int threads, unsigned long long ops,
                                double seconds, const char *extra)
{
    printf("RESULT bench=%s threads=%d ops=%llu seconds=%.6f mops=%.3f%s%s\n",
           name, threads, ops, seconds,
           seconds > 0 ? (double)ops / seconds / 1e6 : 0.0,
           extra[0] ? " " : "", extra);
    fflush(stdout);
}

#endif
