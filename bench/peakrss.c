/* peakrss -- run a command and report its peak resident set size.
 *
 * Usage: peakrss [-o FILE] COMMAND [ARG]...
 *
 * Forks, execs COMMAND (searched in PATH), waits for it with wait4() and
 * reports ru_maxrss (KiB): to FILE as a bare number with -o, otherwise to
 * stderr as "peakrss: maxrss_kb=N". Exits with COMMAND's exit status, or
 * 128+signal if it was killed (the report is still written). stdout is left
 * to COMMAND alone. Used by scripts/bench-compare.sh instead of
 * /usr/bin/time -f %M, which is not installed everywhere.
 *
 * Note: ru_maxrss is the high-water mark of the process across exec, so a
 * small launcher in front of the benchmark (`env LD_PRELOAD=... bench`)
 * does not distort it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    const char *out = NULL;
    int i = 1;
    if (i + 1 < argc && strcmp(argv[i], "-o") == 0) {
        out = argv[i + 1];
        i += 2;
    }
    if (i < argc && strcmp(argv[i], "--") == 0)
        i++;
    if (i >= argc) {
        fprintf(stderr, "usage: peakrss [-o FILE] COMMAND [ARG]...\n");
        return 2;
    }

    pid_t pid = fork();
    if (pid < 0) {
        perror("peakrss: fork");
        return 126;
    }
    if (pid == 0) {
        execvp(argv[i], argv + i);
        fprintf(stderr, "peakrss: cannot run %s: %s\n", argv[i], strerror(errno));
        _exit(127);
    }

    int status;
    struct rusage ru;
    pid_t r;
    while ((r = wait4(pid, &status, 0, &ru)) < 0 && errno == EINTR)
        ;
    if (r < 0) {
        perror("peakrss: wait4");
        return 126;
    }

    if (out) {
        FILE *f = fopen(out, "w");
        if (!f) {
            fprintf(stderr, "peakrss: cannot write %s: %s\n", out, strerror(errno));
            return 126;
        }
        fprintf(f, "%ld\n", ru.ru_maxrss);
        fclose(f);
    } else {
        fprintf(stderr, "peakrss: maxrss_kb=%ld\n", ru.ru_maxrss);
    }

    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) {
        fprintf(stderr, "peakrss: %s killed by signal %d (%s)\n", argv[i],
                WTERMSIG(status), strsignal(WTERMSIG(status)));
        return 128 + WTERMSIG(status);
    }
    return 126;
}
