/* link_test.c -- a program linked with -lhakmem (no LD_PRELOAD) really uses
 * hakmem.
 *
 * Checks: hakmem_version() (from hakmem.h) returns the non-empty
 * "major.minor.patch" string of the header's version macros; malloc, free,
 * calloc, realloc, ... resolve to hakmem (dladdr of the symbol the dynamic
 * linker picks); free_sized/free_aligned_sized link; allocation and free
 * across sizes 0 .. 32 MiB with content checks.
 *
 * Usage: link_test            (linked against libhakmem.so)
 *        link_test --static   (linked against libhakmem.a: the allocator
 *                              lives in the executable itself)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "test_util.h"

#include <hakmem.h>
#include <malloc.h>

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    int is_static = argc > 1 && strcmp(argv[1], "--static") == 0;

    const char *v = hakmem_version();
    CHECK(v != NULL, "hakmem_version() returned NULL");
    CHECK(v[0] != '\0', "hakmem_version() returned an empty string");
    char want[64];
    snprintf(want, sizeof want, "%d.%d.%d", HAKMEM_VERSION_MAJOR,
             HAKMEM_VERSION_MINOR, HAKMEM_VERSION_PATCH);
    printf("link_test: hakmem_version() = \"%s\" (header says %s)\n", v, want);
    EXPECT(strcmp(v, want) == 0, "hakmem_version() = \"%s\", expected \"%s\" "
           "(HAKMEM_VERSION_* of hakmem.h)", v, want);

    /* the dynamic linker must bind the malloc family to hakmem */
    static const char *names[] = {"malloc", "free", "calloc", "realloc",
                                  "posix_memalign", "aligned_alloc",
                                  "memalign", "malloc_usable_size",
                                  "hakmem_version", NULL};
    Dl_info self;
    memset(&self, 0, sizeof self);
    dladdr((void *)&main, &self);
    for (int i = 0; names[i]; i++) {
        if (is_static && strcmp(names[i], "hakmem_version") == 0)
            continue; /* not exported from an executable */
        void *f = dlsym(RTLD_DEFAULT, names[i]);
        const char *where = "?";
        EXPECT(f != NULL, "%s does not resolve", names[i]);
        if (!f)
            continue;
        if (is_static) {
            Dl_info di;
            memset(&di, 0, sizeof di);
            dladdr(f, &di);
            where = di.dli_fname ? di.dli_fname : "?";
            EXPECT(di.dli_fbase == self.dli_fbase,
                   "%s resolves to %s, expected the executable itself (%s) "
                   "that is statically linked with libhakmem.a", names[i],
                   where, self.dli_fname ? self.dli_fname : "?");
        } else {
            EXPECT(hk_addr_in_hakmem(f, &where), "%s resolves to %s, expected "
                   "libhakmem", names[i], where);
        }
    }
    if (!is_static)
        EXPECT(hk_active(), "hakmem_owns not visible to dlsym(RTLD_DEFAULT), "
               "or malloc's blocks are not hakmem's");

    /* allocate / free across sizes */
    uint64_t rng = 99;
    for (size_t s = 0; s <= ((size_t)32 << 20); s = s < 64 ? s + 1 : s * 2 + 3) {
        unsigned char *p = malloc(s);
        CHECK(p != NULL, "malloc(%zu) returned NULL", s);
        EXPECT(malloc_usable_size(p) >= s, "malloc(%zu): usable %zu", s,
               malloc_usable_size(p));
        pat_fill(p, s, s);
        unsigned char *q = calloc(1, s + 1);
        CHECK(q != NULL, "calloc(1, %zu) NULL", s + 1);
        for (size_t i = 0; i <= s; i += 1 + i / 16)
            if (q[i]) {
                EXPECT(0, "calloc(1, %zu) byte %zu = 0x%02x", s + 1, i, q[i]);
                break;
            }
        p = realloc(p, s + rng_range(&rng, 1, 4096));
        CHECK(p != NULL, "realloc NULL");
        EXPECT(pat_check(p, s, s) == (size_t)-1, "realloc(%zu) lost contents "
               "at %zu", s, pat_check(p, s, s));
        free(p);
        free_sized(q, s + 1);
        void *a = aligned_alloc(256, s + 1);
        CHECK(a != NULL, "aligned_alloc(256, %zu) NULL", s + 1);
        EXPECT(((uintptr_t)a & 255) == 0, "aligned_alloc(256) = %p", a);
        free_aligned_sized(a, 256, s + 1);
    }
    return test_finish(is_static ? "link_test --static" : "link_test");
}
