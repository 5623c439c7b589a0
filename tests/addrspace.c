/* addrspace.c -- hakmem's fixed address-space cost is small.
 *
 *   vmsize  this program re-run bare (one malloc, then it reads VmSize from
 *           /proc/self/statm) on glibc and with the library preloaded: the
 *           two must be within VMSIZE_SLACK_KIB (the 64 MiB region map of
 *           old made it ~70 MiB). The preloaded run must report hakmem
 *           active.
 *   python  python3 under RLIMIT_AS = 80000 KiB (ulimit -v 80000) with the
 *           library preloaded runs a small script that allocates, and finds
 *           the library in its /proc/self/maps: the loader silently drops a
 *           preload it cannot map, so a run on glibc must not pass. Skipped
 *           (with a note) without python3, or when python3 does not run
 *           under that limit on glibc either.
 *
 * Usage: addrspace LIBHAKMEM.so      (--vmsize: the child mode)
 * Exit: 0 pass, 1 fail, 77 when there was nothing to compare at all.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "test_util.h"

#include <sys/resource.h>
#include <sys/wait.h>

#define VMSIZE_SLACK_KIB (8 * 1024)
#define PYTHON_LIMIT_KIB 80000

/* Run argv with LD_PRELOAD set to `preload` (NULL: unset) and, if
 * limit_kib, RLIMIT_AS; its stdout into out. Returns the wait status. */
static int run(char *const argv[], const char *preload, long limit_kib, char *out, size_t outsz)
{
    int fds[2];
    CHECK(pipe(fds) == 0, "pipe: %s", strerror(errno));
    fflush(stdout);
    pid_t pid = fork();
    CHECK(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], STDOUT_FILENO);
        if (preload)
            setenv("LD_PRELOAD", preload, 1);
        else
            unsetenv("LD_PRELOAD");
        if (limit_kib) {
            struct rlimit rl = {(rlim_t)limit_kib * 1024, (rlim_t)limit_kib * 1024};
            setrlimit(RLIMIT_AS, &rl);
        }
        execvp(argv[0], argv);
        _exit(127);
    }
    close(fds[1]);
    size_t got = 0;
    ssize_t n;
    while (got + 1 < outsz && (n = read(fds[0], out + got, outsz - 1 - got)) > 0)
        got += (size_t)n;
    out[got] = 0;
    close(fds[0]);
    int st;
    CHECK(waitpid(pid, &st, 0) == pid, "waitpid");
    return st;
}

static int child_vmsize(void)
{
    void *volatile p = malloc(100);   /* the allocator is set up */
    free(p);
    printf("VMSIZE %ld %d\n", vm_kib(), hk_active());
    return 0;
}

static void check_vmsize(const char *self, const char *lib)
{
    char *argv[] = {(char *)self, "--vmsize", NULL};
    char out[256];
    long vm[2] = {-1, -1};
    int active[2] = {-1, -1};
    for (int i = 0; i < 2; i++) {
        int st = run(argv, i ? lib : NULL, 0, out, sizeof out);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s --vmsize failed", self);
        CHECK(sscanf(out, "VMSIZE %ld %d", &vm[i], &active[i]) == 2, "bad output: %s", out);
    }
    NOTE("bare VmSize: glibc %ld KiB, hakmem %ld KiB (+%ld KiB)", vm[0], vm[1], vm[1] - vm[0]);
    EXPECT(active[0] == 0 && active[1] == 1, "hakmem active: glibc run %d, preloaded run %d",
           active[0], active[1]);
    EXPECT(vm[1] - vm[0] <= VMSIZE_SLACK_KIB,
           "hakmem adds %ld KiB of address space to a bare process (at most %d expected)",
           vm[1] - vm[0], VMSIZE_SLACK_KIB);
}

/* Exit 3: hakmem not in the maps (the preload was dropped). */
static const char py_script[] =
    "import sys\n"
    "maps = open('/proc/self/maps').read()\n"
    "want = sys.argv[1]\n"
    "if want == '1' and 'libhakmem' not in maps: sys.exit(3)\n"
    "x = [str(i) * 10 for i in range(100000)]\n"
    "d = {i: bytes(i % 300) for i in range(20000)}\n"
    "print('PYOK', len(x), len(d), 'libhakmem' in maps)\n";

static int check_python(const char *lib)
{
    char out[4096];
    char *glibc_argv[] = {"python3", "-c", (char *)py_script, "0", NULL};
    char *hk_argv[] = {"python3", "-c", (char *)py_script, "1", NULL};
    int st = run(glibc_argv, NULL, PYTHON_LIMIT_KIB, out, sizeof out);
    if (WIFEXITED(st) && WEXITSTATUS(st) == 127) {
        NOTE("python: SKIP: python3 not found");
        return 0;
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || !strstr(out, "PYOK")) {
        NOTE("python: SKIP: python3 does not run under ulimit -v %d on glibc either", PYTHON_LIMIT_KIB);
        return 0;
    }
    st = run(hk_argv, lib, PYTHON_LIMIT_KIB, out, sizeof out);
    EXPECT(!(WIFEXITED(st) && WEXITSTATUS(st) == 3),
           "python3 under ulimit -v %d ran without hakmem (the preload was dropped)",
           PYTHON_LIMIT_KIB);
    EXPECT(WIFEXITED(st) && WEXITSTATUS(st) == 0 && strstr(out, "PYOK ") && strstr(out, "True"),
           "python3 under ulimit -v %d with hakmem failed (status 0x%x): %s", PYTHON_LIMIT_KIB, st,
           out);
    NOTE("python3 under ulimit -v %d with hakmem: %s", PYTHON_LIMIT_KIB,
         WIFEXITED(st) && WEXITSTATUS(st) == 0 ? "ran" : "FAILED");
    return 1;
}

int main(int argc, char **argv)
{
    if (argc == 2 && !strcmp(argv[1], "--vmsize"))
        return child_vmsize();
    CHECK(argc == 2, "usage: addrspace LIBHAKMEM.so");
    CHECK(access(argv[1], R_OK) == 0, "%s: %s", argv[1], strerror(errno));
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    CHECK(n > 0, "readlink /proc/self/exe");
    self[n] = 0;
    check_vmsize(self, argv[1]);
    check_python(argv[1]);
    return test_finish("addrspace");
}
