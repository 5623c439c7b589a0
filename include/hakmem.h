/* hakmem.h -- public interface of the hakmem allocator.
 *
 * hakmem replaces the whole malloc family (malloc, free, calloc, realloc,
 * posix_memalign, aligned_alloc, memalign, valloc, pvalloc,
 * malloc_usable_size, reallocarray, ...) with glibc-compatible semantics.
 * Programs use it either with LD_PRELOAD=libhakmem.so or by linking
 * -lhakmem; in both cases the standard <stdlib.h>/<malloc.h> declarations
 * apply and nothing here is needed.
 *
 * This header declares what hakmem adds on top of the standard interface,
 * and the prefixed API: the same functions under hakmem_ names. libhakmem
 * exports both (the standard names are aliases of the hakmem_ ones);
 * libhakmem_api exports only the hakmem_ names and leaves malloc and free to
 * glibc, so that one subsystem can use hakmem beside the system allocator.
 */
#ifndef HAKMEM_H
#define HAKMEM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HAKMEM_VERSION_MAJOR 0
#define HAKMEM_VERSION_MINOR 1
#define HAKMEM_VERSION_PATCH 0

/* "major.minor.patch" of the library actually loaded. */
const char *hakmem_version(void);

/* ---- the prefixed API ---------------------------------------------------------
 * Each behaves as the standard function without the prefix (glibc semantics:
 * NULL + ENOMEM on exhaustion, EINVAL for bad alignments, realloc(p, 0) frees
 * and returns NULL). A block from one family must go back to the same one:
 * hakmem_free(p) of a pointer hakmem did not hand out aborts with
 * "hakmem_free(): invalid pointer" (libhakmem_api) -- it never reaches
 * glibc's free. */
void *hakmem_malloc(size_t size);
void hakmem_free(void *ptr);
void *hakmem_calloc(size_t nmemb, size_t size);
void *hakmem_realloc(void *ptr, size_t size);
void *hakmem_reallocarray(void *ptr, size_t nmemb, size_t size);
void *hakmem_aligned_alloc(size_t alignment, size_t size);
int hakmem_posix_memalign(void **out, size_t alignment, size_t size);
void *hakmem_memalign(size_t alignment, size_t size);
void *hakmem_valloc(size_t size);
void *hakmem_pvalloc(size_t size);
size_t hakmem_usable_size(void *ptr);                 /* malloc_usable_size */
void hakmem_free_sized(void *ptr, size_t size);
void hakmem_free_aligned_sized(void *ptr, size_t alignment, size_t size);

/* 1 if ptr is a block hakmem handed out and has not unmapped (a pointer
 * returned by one of the functions above, or by malloc & co. in the
 * overriding library), 0 for anything else (NULL, a stack or static address,
 * a block of another allocator). One load of hakmem's region map: it says
 * which allocator a pointer belongs to, not whether the block is still live.
 * Never on a fast path; tests use it to check that hakmem, not an
 * interposed allocator (a sanitizer runtime, say), served their blocks. */
int hakmem_owns(const void *ptr);

/* C23 sized deallocation (not yet declared by every libc). `size` must be
 * the size passed to the allocating call (or any size between it and
 * malloc_usable_size); `alignment` the alignment passed to aligned_alloc.
 * Exported by the overriding library only (libhakmem_api: the hakmem_
 * versions above). */
void free_sized(void *ptr, size_t size);
void free_aligned_sized(void *ptr, size_t alignment, size_t size);

/* ---- statistics -------------------------------------------------------------
 * Always available and cheap: the counts are kept on the allocator's slow
 * paths (a thread cache's refill and flush), never on malloc's or free's fast
 * path, so they move in batches: a block counts as "allocated" when it leaves
 * its slab/page for a thread cache, and as "freed" when it goes back to its
 * slab/page (a flush of a full cache, thread exit, or the owner draining the
 * frees other threads posted). Blocks sitting in thread caches are reported
 * separately ("cached"), so allocated - freed - cached is what the
 * application holds. Figures are exact when no other thread is allocating
 * (other threads' caches are read without stopping them); docs/TUNING.md
 * explains every field. HAKMEM_STATS=1 prints hakmem_stats_print()'s report
 * at exit, HAKMEM_STATS=json hakmem_stats_print_json()'s; HAKMEM_STATS_FILE=PATH
 * (%p: the pid) sends it to a file per process instead of stderr. */
#define HAKMEM_NUM_CLASSES 52

/* Refill stages: what a refill of a thread cache had to do (the most costly
 * step it took). */
enum {
  HAKMEM_STAGE_BUMP = 0,      /* carved never-used blocks of the current slab/page */
  HAKMEM_STAGE_FREELIST = 1,  /* the current slab's/page's own free list */
  HAKMEM_STAGE_PARTIAL = 2,   /* another slab/page of the class with free blocks */
  HAKMEM_STAGE_REMOTE = 3,    /* drained frees other threads had posted */
  HAKMEM_STAGE_NEW_SLAB = 4,  /* a new slab/page in a segment the thread owns */
  HAKMEM_STAGE_ADOPT = 5,     /* adopted an abandoned segment of an exited thread */
  HAKMEM_STAGE_CACHE = 6,     /* a segment from the process-wide empty cache */
  HAKMEM_STAGE_OS = 7,        /* a segment newly mapped from the OS */
  HAKMEM_REFILL_STAGES = 8
};

/* Why malloc's or free's fast path handed over to a slow path. */
enum {
  HAKMEM_EARLY_ALLOC_EMPTY = 0,    /* malloc: the thread cache of the class was empty */
  HAKMEM_EARLY_ALLOC_NO_HEAP = 1,  /* malloc: first allocation of the thread */
  HAKMEM_EARLY_ALLOC_LARGE = 2,    /* a block above 256 KiB (large path) */
  HAKMEM_EARLY_ALLOC_ALIGNED = 3,  /* an alignment request above 16 bytes */
  HAKMEM_EARLY_FREE_FULL = 4,      /* free: the thread cache was at capacity */
  HAKMEM_EARLY_FREE_FOREIGN = 5,   /* free: a block of another thread's segment */
  HAKMEM_EARLY_FREE_NO_HEAP = 6,   /* free: by a thread that never allocated */
  HAKMEM_EARLY_FREE_NOT_SMALL = 7, /* free: NULL or a large block */
  HAKMEM_EARLY_REASONS = 8
};

/* Debug counters: only in a library built with -DHAKMEM_DEBUG_COUNTERS=ON
 * (hakmem_stats.debug_counters == 1); all zero otherwise. Invariants, for a
 * quiescent process:
 *   refills == sum(refill_stage) and sum(refill_stage_blocks) == sum of the
 *   classes' `allocated`; small mallocs == alloc_tls_sll + refills;
 *   small frees == free_tls_sll + free_ss_remote. */
typedef struct hakmem_debug_counters {
  uint64_t refills;                                   /* refills of thread caches */
  uint64_t refill_stage[HAKMEM_REFILL_STAGES];        /* refills served by each stage */
  uint64_t refill_stage_blocks[HAKMEM_REFILL_STAGES]; /* blocks those refills brought */
  uint64_t alloc_tls_sll;    /* mallocs served by the fast path (thread cache pop) */
  uint64_t free_tls_sll;     /* frees pushed onto the owner's thread cache */
  uint64_t free_ss_local;    /* blocks the owner flushed back into its own slabs/pages */
  uint64_t free_ss_remote;   /* frees posted to another thread's slab/page */
  uint64_t flush_overflow;   /* full thread caches flushed (half of them returned) */
  uint64_t bin_grow;         /* full thread caches grown instead (medium classes) */
  uint64_t early[HAKMEM_EARLY_REASONS];               /* fast path left early, by reason */
} hakmem_debug_counters;

/* What the background thread did (HAKMEM_BACKGROUND; docs/ARCHITECTURE.md
 * has its table of actions). Cumulative since the thread started in this
 * process (a forked child starts from zero). */
enum {
  HAKMEM_BG_PURGE_HEAPS = 0,        /* free memory of idle threads' heaps */
  HAKMEM_BG_PURGE_CACHES = 1,       /* the empty-segment cache and the large-span cache */
  HAKMEM_BG_COLLECT_ABANDONED = 2,  /* segments of exited threads */
  HAKMEM_BG_LEARN = 3,              /* one epoch of the learning layer (HAKMEM_LEARN) */
  HAKMEM_BG_ACTIONS = 4
};
typedef struct hakmem_background_stats {
  int running;                               /* 1: the thread runs in this process */
  int heaps_supported;                       /* 1: it may purge live threads' heaps
                                                (needs membarrier(2)); 0: caches and
                                                exited threads' segments only */
  uint64_t wakeups;                          /* rounds it woke up for */
  uint64_t runs[HAKMEM_BG_ACTIONS];          /* times each action ran */
  uint64_t bytes_returned[HAKMEM_BG_ACTIONS];/* bytes it unmapped or decommitted */
  uint64_t time_ns[HAKMEM_BG_ACTIONS];       /* wall time spent in each action */
  uint64_t heaps_purged;                     /* live heaps purged for their idle owner */
  uint64_t heaps_busy;                       /* ... skipped: the owner was in a slow path */
  uint64_t owner_waits;                      /* owner slow paths that waited for the thread */
} hakmem_background_stats;

typedef struct hakmem_class_stats {
  size_t block_size;
  uint64_t allocated;     /* blocks taken out of slabs/pages into thread caches */
  uint64_t freed;         /* blocks back in their slabs/pages (flushed + remote_freed) */
  uint64_t remote_freed;  /* of `freed`: freed by another thread, counted when drained */
  uint64_t refills;       /* thread-cache refills */
  uint64_t flushes;       /* thread-cache overflow flushes */
  uint64_t cached;        /* blocks in thread caches now */
  uint64_t live;          /* allocated - freed - cached: held by the application
                             (and remote frees not drained yet) */
  uint64_t blocks_out;    /* scan of the slabs/pages: blocks out of them; equals
                             allocated - freed when no thread is running */
  size_t current_bytes;   /* (allocated - freed) * block_size */
  size_t peak_bytes;      /* peak of current_bytes (blocks out of the slabs/pages) */
  uint32_t cache_cap;     /* the calling thread's cache capacity (0: no heap yet) */
} hakmem_class_stats;

typedef struct hakmem_stats {
  size_t allocated;        /* bytes held by the application: live small blocks
                              (block sizes) + large blocks (their mappings) */
  size_t active;           /* bytes of slabs/pages assigned to a class + large blocks */
  size_t cached;           /* bytes in thread caches */
  size_t committed;        /* bytes that may be resident: used + dirty units, large */
  size_t resident;         /* bytes found resident by mincore(2) in segments and
                              cached large spans, + live large mappings in full */
  size_t mapped;           /* bytes of address space mapped by hakmem */
  size_t segments;         /* SuperSlabs/segments mapped (all states) */
  size_t segments_tiny;    /* ... owned or abandoned, serving Tiny slabs */
  size_t segments_l2;      /* ... owned or abandoned, serving L2 pages */
  size_t segments_abandoned;
  size_t segments_cached;  /* empty, in the process-wide cache */
  size_t large_count, large_bytes, large_cached_bytes;
  size_t heaps;            /* live thread heaps */
  uint64_t remote_frees;   /* sum of the classes' remote_freed */
  size_t process_resident; /* the whole process's RSS (/proc/self/statm) */
  int debug_counters;      /* 1: built with HAKMEM_DEBUG_COUNTERS, `debug` is filled */
  hakmem_debug_counters debug;
  hakmem_background_stats background;
  hakmem_class_stats classes[HAKMEM_NUM_CLASSES];
} hakmem_stats;

/* Fill *st (never allocates; takes the allocator's locks briefly). */
void hakmem_stats_get(hakmem_stats *st);
/* A readable summary on stderr (the format HAKMEM_STATS=1 prints at exit). */
void hakmem_stats_print(void);
/* The same figures as one JSON object on one line, written to fd (the format
 * HAKMEM_STATS=json prints at exit): every field of hakmem_stats under its
 * name, grouped ("bytes", "segments", "large", "threads", "background" with
 * its "actions", "debug" when debug_counters is true, and "classes": an
 * array of HAKMEM_NUM_CLASSES objects), plus "version", "pid" and "library"
 * (the path of the loaded library). Integers only; never allocates.
 * Returns 0, or -1 with errno set when writing failed. */
int hakmem_stats_print_json(int fd);
/* Return memory to the OS: with force == 0 what has been free for longer
 * than HAKMEM_PURGE_DELAY_MS; with force != 0 everything free now, after
 * flushing the calling thread's caches and adopting the segments of exited
 * threads. Returns the bytes of committed memory released (estimate). */
size_t hakmem_collect(int force);

/* ---- options ---------------------------------------------------------------
 * Every tunable is read once at start-up from HAKMEM_<NAME> (docs/TUNING.md
 * has the table). `name` is "HAKMEM_SLL_CAP_MAX" or "sll_cap_max" (any case).
 * get: 0 and *value, or -1 (errno = ENOENT) for an unknown name.
 * set: 0, or -1 with errno = ENOENT (unknown) or ERANGE (outside the range;
 * nothing changed). When a change takes effect is documented per option. */
int hakmem_option_get(const char *name, long long *value);
int hakmem_option_set(const char *name, long long value);

#ifdef __cplusplus
}
#endif

#endif /* HAKMEM_H */
