/* bench_cache_scratch -- passive false sharing, in the manner of Hoard's
 * cache-scratch test: does the allocator hand a thread memory on a cache
 * line another thread writes?
 *
 *   the main thread mallocs one OBJ-byte object per thread (consecutive
 *   mallocs: an allocator that packs small blocks puts them on one cache
 *   line), writes them, and starts the threads; thread i frees object i
 *   (a free of another thread's block), then ITER times: malloc OBJ bytes,
 *   REPS times write every byte and read it back through a volatile, free.
 *
 * An allocator that reuses the freed object for thread i's mallocs (or
 * carves its blocks next to the other threads') makes the threads write one
 * cache line: the writes ping-pong between cores. With one thread it is a
 * loop of writes to one small block: what remains is where that block lies
 * (4 KiB aliasing with the stack slot read back, alignment).
 *
 * Usage: bench_cache_scratch [THREADS [ITER [OBJ [REPS]]]]
 *   THREADS  threads                          (default 2)
 *   ITER     malloc/free per thread            (default 1000)
 *   OBJ      object size in bytes              (default 8)
 *   REPS     passes over the object per malloc (default 20000)
 * ops = THREADS x ITER x REPS x OBJ byte writes (each read back).
 */
#include "bench_common.h"
#include "bench_threads.h"

static size_t iter, obj, reps;
static char **objs;

static void *worker(void *arg)
{
    size_t i = (size_t)(uintptr_t)arg;
    free(objs[i]);
    for (size_t n = 0; n < iter; n++) {
        char *p = malloc(obj);
        if (!p)
            bench_die("out of memory");
        for (size_t r = 0; r < reps; r++)
            for (size_t k = 0; k < obj; k++) {
                p[k] = (char)(k + r);
                volatile char c = p[k];
                (void)c;
            }
        free(p);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    bench_usage(argc, argv, "usage: bench_cache_scratch [THREADS [ITER [OBJ [REPS]]]]\n"
                            "  defaults: THREADS=2 ITER=1000 OBJ=8 REPS=20000\n");
    size_t threads = bench_arg(argc, argv, 1, 2);
    iter = bench_arg(argc, argv, 2, 1000);
    obj = bench_arg(argc, argv, 3, 8);
    reps = bench_arg(argc, argv, 4, 20000);
    if (threads == 0 || threads > 1024 || obj == 0)
        bench_die("need 1 <= THREADS <= 1024 and OBJ >= 1");
    objs = malloc(threads * sizeof *objs);
    if (!objs)
        bench_die("out of memory");
    for (size_t i = 0; i < threads; i++) {
        if (!(objs[i] = malloc(obj)))
            bench_die("out of memory");
        memset(objs[i], (int)i, obj);
    }
    double t = bench_run_threads(threads, worker);
    char extra[96];
    snprintf(extra, sizeof extra, "iter=%zu obj=%zu reps=%zu", iter, obj, reps);
    bench_result("cache_scratch", (int)threads, (unsigned long long)(threads * iter * reps * obj), t, extra);
    free(objs);
    return 0;
}
