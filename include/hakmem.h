/* hakmem.h -- public interface of the hakmem allocator.
 *
 * hakmem replaces the whole malloc family (malloc, free, calloc, realloc,
 * posix_memalign, aligned_alloc, memalign, valloc, pvalloc,
 * malloc_usable_size, reallocarray, ...) with glibc-compatible semantics.
 * Programs use it either with LD_PRELOAD=libhakmem.so or by linking
 * -lhakmem; in both cases the standard <stdlib.h>/<malloc.h> declarations
 * apply and nothing here is needed.
 *
 * This header declares what hakmem adds on top of the standard interface.
 */
#ifndef HAKMEM_H
#define HAKMEM_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HAKMEM_VERSION_MAJOR 0
#define HAKMEM_VERSION_MINOR 1
#define HAKMEM_VERSION_PATCH 0

/* "major.minor.patch" of the library actually loaded. */
const char *hakmem_version(void);

/* C23 sized deallocation (not yet declared by every libc). `size` must be
 * the size passed to the allocating call (or any size between it and
 * malloc_usable_size); `alignment` the alignment passed to aligned_alloc. */
void free_sized(void *ptr, size_t size);
void free_aligned_sized(void *ptr, size_t alignment, size_t size);

#ifdef __cplusplus
}
#endif

#endif /* HAKMEM_H */
