/* hakmem_internal.h -- every data structure of the allocator, and its invariants.
 *
 * Read this file first: it is the map of the heap. Fast paths live in
 * tiny/tiny.h (inline); slow paths in the .c files named after their concern.
 *
 * Address space
 * -------------
 * All memory hakmem hands out lies in *regions* whose base is aligned to
 * HM_REGION_SIZE (2 MiB). A flat byte map, hm_region_map[], holds one entry
 * per 2 MiB chunk of [0, HM_ARENA_HI) and says what kind of region has its
 * header at that chunk base (HM_REGION_NONE for everything that is not ours).
 * For a pointer p the header is at floor(p, 2 MiB) -- except for a large
 * block whose user pointer is itself 2 MiB aligned (alignments of 2 MiB and
 * more): its chunk is marked HM_REGION_LARGE_HI and the header sits one chunk
 * below. Every free() starts with one shift, one compare against
 * HM_MAP_ENTRIES and one byte load of that map: pointers we did not hand out
 * are detected in O(1), and we never dereference memory that may be unmapped.
 *
 * The map is small because hakmem places its mappings in one fixed window,
 * [HM_ARENA_LO, HM_ARENA_HI) = [1 TiB, 4 TiB), which Linux's top-down mmap
 * leaves alone (executables load near 0x55..., or low for non-PIE ones;
 * libraries and default mmaps near 0x7f...). The OS layer (os.c) reserves
 * nothing up front: each mapping is asked for at a cursor that walks the
 * window 2 MiB aligned (MAP_FIXED_NOREPLACE: it never replaces anything; an
 * older kernel takes it as a hint, which we check), skipping what is already
 * mapped there (ours or the program's), and wrapping to LO to reuse holes.
 * So the map is 2 MiB of .bss (virtual zero pages; only the pages that cover
 * the window's used part are ever written) and needs no initialisation.
 *   Segments always lie in the window (the map must find them; none left:
 *   ENOMEM). A large block is mapped outside it only when the window has no
 *   room for it; such a "far" block has no map entry and is found in a small
 *   table of large.c, consulted only where the map says "not ours" (free's
 *   cold path, realloc, malloc_usable_size) -- never on a fast path.
 *   When mmap reports ENOMEM (RLIMIT_AS, overcommit), the caller unmaps every
 *   cached empty segment and cached large span and retries once
 *   (hm_release_cached_mappings): at the limit, address space is what counts,
 *   and decommitted memory still holds it.
 *
 * SuperSlab (kind HM_REGION_SS, superslab/superslab.c)
 * ---------------------------------------------------
 * A 2 MiB aligned region owned by one thread heap, cut into 32 *units* of
 * 64 KiB. A Tiny *slab* is one unit (HM_TINY_SLAB_UNITS) serving one size
 * class; an L2 *page* is a run of units (hm_l2_page_span). The header
 * (hm_superslab) occupies the first 4 KiB of unit 0; a slab or page starting
 * at unit 0 begins after it.
 *   pointer -> superslab : floor(p, 2 MiB)
 *   pointer -> unit      : (p >> 16) & 31      -> ss->slabs[unit]
 *   unit    -> slab head : ss->slabs[unit].head
 * Every unit of a slab carries the slab's class in .cls, so free()'s fast path
 * needs only the unit; unassigned units carry HM_CLASS_NONE.
 *
 * Slab invariants (hm_slab, for the head unit of an assigned slab):
 *   capacity == (end - start) / block_size
 *   blocks in [start, bump) have been handed out at least once; blocks in
 *   [bump, end) never have.
 *   used == blocks out of the slab: in user hands, in a thread cache (TLS
 *   SLL) or on the remote list. So
 *       used + length(free) + (end - bump) / block_size == capacity
 *   and used == 0 means the slab is empty and may be released.
 *   free and bump are touched only by the owner thread; remote is a
 *   lock-free LIFO pushed by other threads and taken whole by the owner.
 *
 * Remote-free protocol (the only cross-thread interaction on a block):
 *   freer : push block onto slab->remote (CAS); if the list was empty, set
 *           bit `head unit` in ss->remote_units (fetch_or). Nothing after.
 *   owner : clear the bit (fetch_and / exchange) *before* taking the list
 *           (exchange with NULL), and never takes a list whose bit it has not
 *           cleared. Hence a non-empty remote list always has its bit set or
 *           a freer about to set it, and the superslab cannot be released
 *           between a freer's push and its bit update (the pushed block still
 *           counts in `used` until drained, and draining needs the bit).
 *
 * Thread heap (hm_heap, init.c)
 * -----------------------------
 * Per thread: for each size class the TLS SLL bin (head + room), the active
 * slab, a list of partial slabs, and the list of owned superslabs. The
 * thread-local pointer hm_tls_heap starts at hm_heap_empty, a constant heap
 * whose bins are all empty with zero room, so a new thread simply misses into
 * the slow path, which creates its heap: there is no "initialised?" branch.
 *   room[c] == cap[c] - length(head[c] list); pop increments, push decrements.
 * A thread that exits flushes its bins, and abandons its non-empty
 * superslabs (owner = HM_OWNER_ABANDONED) onto a global list from which
 * other threads adopt them when they need memory.
 *
 * Background purge: the owner/background handshake (learn/background.c)
 * --------------------------------------------------------------------
 * One background thread returns memory that stays free for purge_delay_ms,
 * also in heaps whose owner never calls the allocator again. Everything it
 * touches in a live heap -- slab free lists and `used`, partial lists, L2
 * page queues and lists, the segments' unit masks, the heap's segment list --
 * is state the owner itself changes only on its *slow* paths. The fast paths
 * touch nothing but the TLS bins (head/room) and the blocks on them, which the
 * background thread never touches (blocks in a bin count in their slab's or
 * page's `used`, so their memory is never released under them). So the two
 * only have to exclude each other's slow work, and the fast paths pay nothing:
 *   owner : every slow path on its own heap runs between hm_heap_enter and
 *           hm_heap_leave: store bg_busy = 1 (a plain store), compiler
 *           barrier, load bg_claim; if it is set, keep bg_busy and wait
 *           (futex) until the claim is gone: the background thread either
 *           saw bg_busy and drops the claim, or finishes (early, seeing the
 *           owner wait) and drops it. leave: store bg_busy = 0 (release).
 *   bg    : store bg_claim = 1 (under the heap registry lock, only on a live
 *           heap), then membarrier(PRIVATE_EXPEDITED), then load bg_busy; if
 *           it is set the owner is inside a slow path: drop the claim and
 *           skip the heap this round. Else the heap's slow state is the
 *           background thread's until it drops the claim (exchange with 0,
 *           futex wake if the owner marked it 2 = "waiting").
 *   Why it is safe: this is Dekker's mutual exclusion with the owner's fence
 *   moved to the background side. membarrier makes every running thread
 *   execute a full barrier between the claim store and the busy load, and a
 *   thread that is not running passed one when it was switched out; so
 *   either the owner's busy store is visible to the busy load, or the
 *   owner's claim load comes after the barrier and sees the claim. Never both
 *   miss. Without membarrier (an old kernel, a seccomp filter) the
 *   background thread never claims a live heap; it then purges only the
 *   process-wide caches and the segments of exited threads.
 *   The background thread holds a claim only for one heap's purge and gives
 *   up early when the owner waits (bg_claim == 2), so an owner waits at most
 *   about one segment's madvise. It never holds an allocator lock while it
 *   waits for anything, and it never allocates: its own heap state (the
 *   collector heap below) comes from the heap pool, which is mmap'd.
 *   Abandoned segments have no owner: the background thread adopts them into
 *   a collector heap of its own (never any thread's TLS heap, so every free
 *   into them is a remote free), drains and releases what it can, and
 *   abandons the rest again within the same action.
 *
 * Block placement and the free mark (what free() checks, and where)
 * ----------------------------------------------------------------
 * Every free block (in a TLS SLL, a slab or page free list, a remote list)
 * holds its list link in word 0 and its *free mark* in word 1:
 *   word1 == hm_free_key ^ (uintptr_t)block
 * with hm_free_key a per-process random value (never 0). Every path that
 * frees a block writes the mark before the block is published anywhere;
 * every path that hands a block to the program clears word 1 (malloc's pop
 * stores 0), so a live block never carries its own mark unless the program
 * copies it there from freed memory at that very address. Hence on free:
 *   mark present  -> the block is already free: "double free detected",
 * whatever list it sits on and whichever thread freed it first. The mark
 * depends on the address, so stale marks left in reused memory (a block of
 * another class that once lay here) never match a block start elsewhere.
 * Blocks are at least HM_MIN_BLOCK (16) bytes so that both words fit.
 *   Every block starts at an address whose low 32 bits are a multiple of its
 * size: a slab's or page's first block is the first such address after the
 * area start (after the segment header in unit 0), so no such address lies
 * in the slack before it. Then "is p the start of a block of class c?" is
 *   (uint32_t)p * hm_class_mult[c] < hm_class_mult[c]
 * (one multiply, one compare; segments never straddle a 4 GiB boundary).
 * The segment header's 4 KiB page has class HM_CLASS_NONE in page_cls[] (the
 * class free() reads, per 4 KiB), so a pointer into the header never passes.
 * The one aligned address past a slab's last block (its tail, when
 * (area end - first block) is not a multiple of the size) receives a free
 * mark when carving reaches it, so a free of it is caught as well. What the
 * fast path cannot see: a pointer to a block slot never carved yet (bump
 * region) -- only a wild pointer can be one; the slow paths reject it.
 *   Span blocks (the L2 classes above 64 KiB, HM_L2_SPAN_CLASS on): each
 * is an L2 page of its own, a run of whole units that starts at a unit
 * boundary and never at unit 0, so that blocks freed at one size give their
 * units back to the segment for any other (docs/analysis/span-blocks.md).
 * Their start is a multiple of 4 KiB, not of the size: their class's
 * multiplier is 4 KiB's, and only the span's first 4 KiB page carries the
 * class in page_cls[] (the others stay NONE), so the same two instructions
 * accept exactly the span's first address.
 * The fast path pays: malloc one store (clear word 1); free a load of the
 * key, an xor, a compare of word 1, the multiply-compare, and the mark store.
 *
 * Large blocks (kind HM_REGION_LARGE, large/large.c)
 * --------------------------------------------------
 * Requests above HM_SMALL_MAX are direct mappings whose first bytes hold
 * hm_large_hdr; the user pointer is at hdr + user_off. Freed mappings go to a
 * bounded cache, purged after a delay.
 */
#ifndef HAKMEM_INTERNAL_H
#define HAKMEM_INTERNAL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>

#include "hakmem.h"   /* public structs reused inside: hakmem_debug_counters */

/* ---- build flavour ----------------------------------------------------------- */
/* -DHAKMEM_SECURE=ON: free-list links encoded and checked on every step
 * (hakmem_internal.h, "Secure mode"); HAKMEM_SECURE=1 at run time adds the
 * slow-path hardening (guard pages, random carve order) to any build. */
#ifdef HAKMEM_SECURE
#define HM_SECURE_BUILD 1
#else
#define HM_SECURE_BUILD 0
#endif

/* ---- compiler helpers ---------------------------------------------------- */
#define HM_INLINE static inline __attribute__((always_inline))
#define HM_NOINLINE __attribute__((noinline))
#define HM_COLD __attribute__((noinline, cold))
#define HM_EXPORT __attribute__((visibility("default")))
#define HM_HIDDEN __attribute__((visibility("hidden")))
/* The statistics read other threads' owner-private counters (bin lengths,
 * slab `used`, unit masks) while those threads run: by design, figures that
 * are exact only when the process is quiescent (hakmem.h says so), and the
 * owners' fast paths cannot pay for atomic read-modify-writes. Those readers
 * -- and only they -- are left out of ThreadSanitizer's instrumentation. */
#define HM_RACY_READER __attribute__((no_sanitize("thread")))
/* Their loads: plain (volatile, so read once), which TSan then does not see;
 * an atomic load would still be recorded against the owner's plain write. */
#define HM_RACY_LOAD(x) (*(volatile __typeof__(x) *)&(x))
#define hm_likely(x) __builtin_expect(!!(x), 1)
#define hm_unlikely(x) __builtin_expect(!!(x), 0)

#define hm_load_relaxed(p) atomic_load_explicit((p), memory_order_relaxed)
/* Plain fields that another thread may read while the owner writes them
 * (a remote free validating its block reads the slab's `state` and `bump`):
 * relaxed atomic accesses, which compile to plain moves but are no data race
 * in C11 (and ThreadSanitizer agrees). */
#define hm_store_racy(field, v) __atomic_store_n(&(field), (v), __ATOMIC_RELAXED)
#define hm_load_racy(field) __atomic_load_n(&(field), __ATOMIC_RELAXED)

/* ---- geometry ------------------------------------------------------------- */
#define HM_REGION_SHIFT 21
#define HM_REGION_SIZE ((size_t)1 << HM_REGION_SHIFT)          /* 2 MiB */
#define HM_REGION_MASK (HM_REGION_SIZE - 1)
/* The window of all hakmem mappings (see "Address space" above). */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define HM_SANITIZER_LAYOUT 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || __has_feature(memory_sanitizer)
#define HM_SANITIZER_LAYOUT 1
#endif
#endif
#ifndef HM_SANITIZER_LAYOUT
#define HM_SANITIZER_LAYOUT 0
#define HM_ARENA_LO ((uintptr_t)1 << 40)                      /* 1 TiB */
#define HM_ARENA_HI ((uintptr_t)1 << 42)                      /* 4 TiB */
#else
/* ASan, TSan and MSan own fixed ranges of the address space (their shadow
 * memory, the window among them): there the kernel places every mapping and
 * the map covers the whole 47-bit space (64 MiB of .bss, test builds only). */
#define HM_ARENA_LO ((uintptr_t)0)
#define HM_ARENA_HI ((uintptr_t)1 << 47)
#endif
#define HM_MAP_ENTRIES (HM_ARENA_HI >> HM_REGION_SHIFT)       /* map covers [0, HI): 2 MiB */

#define HM_UNIT_SHIFT 16
#define HM_UNIT_SIZE ((size_t)1 << HM_UNIT_SHIFT)              /* 64 KiB */
#define HM_UNITS 32                                           /* per superslab */
#define HM_UNITS_ALL 0xffffffffu
#define HM_SS_HEADER_SIZE 4096                                /* header in unit 0 */
#define HM_PAGE_SHIFT 12                                      /* page_cls[] granularity */

/* Region kinds stored in hm_region_map. */
enum {
  HM_REGION_NONE = 0,
  HM_REGION_LARGE = 1,     /* large-block header at this chunk base */
  HM_REGION_LARGE_HI = 2,  /* 2 MiB-aligned large block: header one chunk below */
  HM_REGION_SS = 3,        /* Tiny superslab header at this chunk base */
  HM_REGION_L2 = 4,        /* L2 segment header at this chunk base */
};
/* Both segment kinds (3 and 4) share free()'s fast path: one byte compare. */
HM_INLINE int hm_region_is_segment(unsigned kind) { return kind >= HM_REGION_SS; }

/* Segment kinds: a 2 MiB region (hm_superslab header) serves either Tiny
 * slabs or L2 pages; the empty cache is shared, so memory moves freely
 * between the two. */
enum { HM_SEG_TINY = 0, HM_SEG_L2 = 1, HM_SEG_KINDS = 2 };

/* Fit lists: besides h->segs, a heap keeps each segment it owns on one of
 * HM_FIT_LISTS lists by the longest run of free units in it, so that a new
 * slab or page finds a segment with room for it without walking the full
 * ones -- a heap of gigabytes owns thousands of segments, and a walk of
 * their headers per new page made allocation quadratic in the heap's size.
 *   list:          0   1   2   3     4      5 (HM_FIT_EMPTY)
 *   longest run:   1   2   3   4-7   8-31   32 (wholly free)
 * A segment with no free unit is on none (HM_FIT_NONE). A segment goes to
 * the front of its list whenever its units change, so the front holds the
 * units freed last, still resident: the ones to reuse first. */
enum { HM_FIT_LISTS = 6, HM_FIT_EMPTY = 5, HM_FIT_NONE = 0xff };
/* How many segments of each list a search for resident units looks at (a
 * search for any free run takes the first segment that fits). */
#define HM_FIT_VISIT_MAX 16

/* ---- size classes (size_class.c documents the table) ---------------------- */
#define HM_TINY_MAX 1024                  /* largest tiny size */
#define HM_SMALL_MAX (256u * 1024)        /* largest size served by superslabs */
#define HM_TINY_CLASSES 20                /* classes 0..19 are tiny (<= 1 KiB); 20..51 are L2 */
#define HM_NUM_CLASSES 52                 /* classes 0..51 */
#define HM_MIN_BLOCK 16                   /* a free block holds its link and its free mark */
#define HM_CLASS_NONE HM_NUM_CLASSES      /* marks unassigned units; its bin has no room */
#define HM_MAX_ALIGN_IN_SLAB 65536        /* alignments served by slab and page blocks (exports.c) */
#define HM_L2_SPAN_CLASS 44               /* classes 44..51 (above 64 KiB) are span blocks */
#define HM_SPAN_ALIGN 4096u               /* what free's check asks of a span block's start */
HM_INLINE int hm_l2_is_span_class(unsigned cls) {
  return cls >= HM_L2_SPAN_CLASS && cls < HM_NUM_CLASSES;
}

extern const uint32_t hm_class_size[HM_NUM_CLASSES];
extern const uint8_t hm_tiny_class_lut[HM_TINY_MAX + 1];
/* A Tiny slab is one unit (60 or 64 KiB: at least 60 blocks of 1 KiB); L2
 * pages span more (hm_l2_page_span). */
#define HM_TINY_SLAB_UNITS 1u
extern const uint8_t hm_mid_class_lut[HM_SMALL_MAX / 256 + 1];

/* Exact "is off a multiple of the class size, below max_index * size?" in
 * three instructions: with size = d * 2^s (d odd) and inv = d^-1 mod 2^64,
 * rotr(off * inv, s) equals off / size for exact multiples and is huge for
 * every other value (multiplication by an odd number permutes 2^64). */
typedef struct hm_class_div { uint64_t inv; uint32_t shift; } hm_class_div;
extern hm_class_div hm_class_div_tab[HM_NUM_CLASSES];
void hm_class_div_init(void);
/* hm_class_mult[c] = ceil(2^64 / size): for any 32-bit n, n is a multiple of
 * the class size iff n * mult (mod 2^64) < mult (Lemire, Kaser and Kurz,
 * "Faster remainder by direct computation", 2019). free()'s fast path applies
 * it to the low 32 bits of the pointer: every block starts at an address whose
 * low 32 bits are a multiple of its size (see "Block placement" below), so an
 * interior or misaligned pointer fails in two instructions. Span classes
 * (hm_l2_is_span_class) hold HM_SPAN_ALIGN's multiplier instead. */
extern uint64_t hm_class_mult[HM_NUM_CLASSES + 1];   /* entry HM_CLASS_NONE is 0: always fails */
HM_INLINE int hm_block_index_ok(uintptr_t off, unsigned cls, uint64_t count) {
  uint64_t x = (uint64_t)off * hm_class_div_tab[cls].inv;
  unsigned s = hm_class_div_tab[cls].shift;
  x = (x >> s) | (x << ((64 - s) & 63));
  return x < count;
}

/* Class of a size <= HM_SMALL_MAX: one table load (two tables, see
 * size_class.c). */
HM_INLINE unsigned hm_size_class(size_t size) {
  if (hm_likely(size <= HM_TINY_MAX)) return hm_tiny_class_lut[size];
  return hm_mid_class_lut[(size + 255) >> 8];
}

/* ---- blocks, slabs, superslabs -------------------------------------------- */
/* A free block: its link, and its free mark (see "the free mark" above). */
typedef struct hm_block { struct hm_block *next; uint64_t mark; } hm_block;

extern HM_HIDDEN uint64_t hm_free_key; /* per process, random, never 0; set before any block exists */
HM_INLINE uint64_t hm_free_mark(const void *p) { return hm_free_key ^ (uintptr_t)p; }
HM_INLINE int hm_is_marked_free(const void *p) {
  return ((const hm_block *)p)->mark == hm_free_mark(p);
}
/* The first free block's address at or after `area` for block size bs (the
 * low 32 bits a multiple of bs; see "Block placement"). */
HM_INLINE uint8_t *hm_block_origin(uint8_t *area, uint32_t bs) {
  uint32_t rem = (uint32_t)(uintptr_t)area % bs;
  return rem ? area + (bs - rem) : area;
}
/* Carving reached the end of a slab or page: mark its tail (the aligned
 * address after the last block, when there is room for a block header). */
HM_INLINE void hm_mark_tail(uint8_t *end_of_blocks, const uint8_t *area_end) {
  if (end_of_blocks + sizeof(hm_block) <= area_end)
    ((hm_block *)end_of_blocks)->mark = hm_free_mark(end_of_blocks);
}

enum { HM_SLAB_UNUSED = 0, HM_SLAB_ACTIVE, HM_SLAB_PARTIAL, HM_SLAB_FULL };

typedef struct hm_slab {
  hm_block *free;                  /* owner's free list of returned blocks */
  uint8_t *bump;                   /* next never-used block */
  uint8_t *end;                    /* start + capacity * block_size */
  _Atomic(hm_block *) remote;      /* frees by other threads (see protocol) */
  struct hm_slab *next, *prev;     /* heap's partial list of this class */
  uint32_t used;                   /* blocks out of the slab (see invariants) */
  uint32_t block_size;
  uint8_t cls;                     /* size class; on every unit of the slab */
  uint8_t span;                    /* units in the slab (head unit only) */
  uint8_t head;                    /* index of the slab's head unit */
  uint8_t state;                   /* HM_SLAB_* (head unit only) */
  uint32_t capacity;
} hm_slab;

_Static_assert(sizeof(hm_slab) == 64, "hm_slab is one cache line");

/* L2 page: one run of units serving one medium class (src/l2/l2.c).
 *
 * Invariants (head unit of an assigned page):
 *   used == blocks out of the page: in user hands, in the owner's TLS SLL,
 *           or on thread_free;
 *   used + len(free) + len(local_free) + (capacity - bump) == capacity.
 *   free and local_free belong to the owner; thread_free is a lock-free LIFO
 *   of other threads' frees whose low two bits hold the page's notify state:
 *     HM_TF_NORMAL    remote frees just push;
 *     HM_TF_FULL      the page is full and unqueued (in_full): the next remote
 *                     freer moves it to NOTIFYING, pushes the page onto its
 *                     owner heap's l2_delayed list, and sets NORMAL again;
 *     HM_TF_NOTIFYING a freer is doing that (the owner waits for it before
 *                     leaving or requeueing the page itself);
 *     HM_TF_NEVER     the owner left: remote frees just push.
 *   A page is on the class queue, or in_full, or unassigned -- never two.
 *   A page on the l2_delayed list is in_full; it leaves the list only when
 *   the owner drains it, and is never released while on it. */
enum { HM_TF_NORMAL = 0, HM_TF_FULL = 1, HM_TF_NOTIFYING = 2, HM_TF_NEVER = 3 };

typedef struct hm_l2_page {
  hm_block *free;                       /* allocation list */
  hm_block *local_free;                 /* owner's frees */
  _Atomic(uintptr_t) thread_free;       /* other threads' frees | HM_TF_* state */
  struct hm_l2_page *next, *prev;       /* class queue of the owner heap */
  struct hm_l2_page *delayed_next;      /* owner heap's l2_delayed stack */
  uint16_t used;                        /* see invariants */
  uint16_t bump;                        /* blocks carved so far */
  uint32_t origin;                      /* first block - page area start (block placement);
                                           the block size is hm_class_size[cls] */
  uint8_t cls;                          /* on every unit of the page (same offset as hm_slab) */
  uint8_t span;                         /* units (head unit only); 0 = unassigned */
  uint8_t head;                         /* the page's head unit */
  uint8_t state;                        /* HM_SLAB_UNUSED or HM_SLAB_ACTIVE */
  uint16_t capacity;
  uint8_t in_full;                      /* full: unqueued, notified by remote frees */
  uint8_t found_empty;                  /* empty at the heap's last purge pass, unused since */
} hm_l2_page;

_Static_assert(sizeof(hm_l2_page) == 64, "hm_l2_page is one cache line");
/* free()'s fast path reads the class and owner the same way for both kinds. */
_Static_assert(offsetof(hm_l2_page, cls) == offsetof(hm_slab, cls), "cls at one offset");
_Static_assert(offsetof(hm_l2_page, head) == offsetof(hm_slab, head), "head at one offset");

struct hm_heap;
#define HM_OWNER_ABANDONED ((struct hm_heap *)(uintptr_t)1)

typedef struct hm_superslab {
  union {                            /* owning heap, HM_OWNER_ABANDONED, or NULL (cached) */
    _Atomic(struct hm_heap *) owner;
    struct hm_heap *owner_plain;     /* free()'s fast path: see tiny.h */
  };
  _Atomic(uint32_t) remote_units;    /* Tiny: head units whose remote list needs draining */
  uint32_t free_units;               /* units not assigned to a slab / page */
  uint32_t dirty_units;              /* free units whose memory is still committed */
  uint8_t kind;                      /* HM_SEG_TINY or HM_SEG_L2 */
  uint8_t maybe_huge;                /* 1: its range may carry MADV_HUGEPAGE (given to it,
                                        or kept from the large span it was carved from) */
  uint8_t blocks_purged;             /* abandoned L2: the collector gave back the pages inside
                                        its free blocks (hm_l2_purge_seg_free_blocks) */
  uint8_t fit;                       /* the owner's fit list it is on (HM_FIT_*) */
  uint64_t dirty_since_ms;           /* when dirty_units became non-empty */
  struct hm_superslab *next, *prev;  /* owner's list, abandoned list or cache */
  struct hm_superslab *fit_next, *fit_prev; /* owner's fit list (see HM_FIT_LISTS) */
  struct hm_superslab *all_next, *all_prev; /* registry of every superslab */
  uint64_t abandoned_ms;             /* when an owner thread last abandoned it */
  size_t cache_est;                  /* cached: its resident bytes, estimated (superslab.c) */
  /* One cache line per descriptor: the segment is 2 MiB-aligned, so the
   * array's offset decides. Straddling two lines, a descriptor shared each
   * with its neighbour's, whose remote frees and owner writes then moved
   * both (cross_thread lost up to a fifth of its speed to an offset). */
  union {
    _Alignas(64) hm_slab slabs[HM_UNITS]; /* HM_SEG_TINY */
    hm_l2_page pages[HM_UNITS];      /* HM_SEG_L2 */
  };
  /* Class of every 4 KiB page of the segment, read by free()'s fast path:
   * the units' class, except HM_CLASS_NONE for the header page and for
   * unassigned units (their bins never have room: the slow path decides). */
  uint8_t page_cls[HM_REGION_SIZE >> HM_PAGE_SHIFT];
} hm_superslab;

_Static_assert(sizeof(hm_superslab) <= HM_SS_HEADER_SIZE, "header fits its page");
_Static_assert(offsetof(hm_superslab, slabs) % 64 == 0, "a descriptor is one cache line");

/* free()'s fast path reads the owner plainly so that the load folds into its
 * compare (a relaxed atomic load is one more instruction with gcc). Only the
 * owner thread ever stores its own heap there, so a stale value only picks
 * the slow path, which reads it atomically. ThreadSanitizer builds use the
 * atomic load, so that TSan sees no race where there is none in value. */
#if defined(__SANITIZE_THREAD__)
#define HM_OWNER_PLAIN(ss) atomic_load_explicit(&(ss)->owner, memory_order_relaxed)
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define HM_OWNER_PLAIN(ss) atomic_load_explicit(&(ss)->owner, memory_order_relaxed)
#endif
#endif
#ifndef HM_OWNER_PLAIN
#define HM_OWNER_PLAIN(ss) ((ss)->owner_plain)
#endif

HM_INLINE hm_superslab *hm_ss_of(const void *p) {
  return (hm_superslab *)((uintptr_t)p & ~(uintptr_t)HM_REGION_MASK);
}
HM_INLINE unsigned hm_unit_of(const void *p) {
  return (unsigned)((uintptr_t)p >> HM_UNIT_SHIFT) & (HM_UNITS - 1);
}
HM_INLINE unsigned hm_page_of(const void *p) {
  return (unsigned)((uintptr_t)p >> HM_PAGE_SHIFT) & ((HM_REGION_SIZE >> HM_PAGE_SHIFT) - 1);
}
/* Where a segment's blocks may lie: from hm_seg_data_start (after the
 * header; with hm_param.secure also after a guard page) to hm_seg_data_end
 * (with hm_param.secure, a guard page ends the segment). Set once at start-up. */
extern HM_HIDDEN uint32_t hm_seg_data_start;
extern HM_HIDDEN uint32_t hm_seg_data_end;
HM_INLINE uint8_t *hm_seg_area_start(hm_superslab *ss, unsigned u) {
  return (uint8_t *)ss + (size_t)u * HM_UNIT_SIZE + (u == 0 ? hm_seg_data_start : 0);
}
HM_INLINE uint8_t *hm_seg_area_end(hm_superslab *ss, unsigned u_end) {
  return (uint8_t *)ss + (u_end == HM_UNITS ? hm_seg_data_end : (size_t)u_end * HM_UNIT_SIZE);
}
/* Sets page_cls for units [u, u + span): header and guard pages stay NONE. */
HM_INLINE void hm_seg_set_page_cls(hm_superslab *ss, unsigned u, unsigned span, unsigned cls) {
  unsigned first = (unsigned)(hm_seg_area_start(ss, u) - (uint8_t *)ss) >> HM_PAGE_SHIFT;
  unsigned end = (unsigned)(hm_seg_area_end(ss, u + span) - (uint8_t *)ss) >> HM_PAGE_SHIFT;
  for (unsigned i = first; i < end; i++) ss->page_cls[i] = (uint8_t)cls;
}
HM_INLINE hm_slab *hm_slab_of(hm_superslab *ss, const void *p) {
  return &ss->slabs[ss->slabs[hm_unit_of(p)].head];
}
HM_INLINE unsigned hm_slab_index(hm_superslab *ss, const hm_slab *s) {
  return (unsigned)(s - ss->slabs);
}
HM_INLINE hm_superslab *hm_ss_of_slab(const hm_slab *s) {
  return (hm_superslab *)((uintptr_t)s & ~(uintptr_t)HM_REGION_MASK);
}

/* ---- statistics (stats.c) --------------------------------------------------- */
/* Per-class counts of one heap, kept on the slow paths only (batch
 * granularity): blocks move between a slab/page and a TLS SLL bin only in
 * refills (out of the slab) and in flushes and remote drains (back in).
 * Summed over all heaps (live ones plus hm_stats_merged, where an exiting
 * heap adds its counts), at a quiescent point:
 *   refill_blocks - flush_blocks - remote_blocks == sum of `used` over the
 *   class's slabs/pages   (blocks in user hands, in bins, or posted remotely)
 * and, subtracting what sits in the bins (cap - room of every live heap),
 * what the application holds. A block freed by another thread counts when
 * its owner (or an adopter) drains it. */
typedef struct hm_heap_stats {
  uint64_t refill_blocks[HM_NUM_CLASSES];  /* blocks taken out of slabs/pages into the bin */
  uint64_t flush_blocks[HM_NUM_CLASSES];   /* blocks the owner returned from the bin */
  uint64_t remote_blocks[HM_NUM_CLASSES];  /* remote frees taken back by the owner (drains) */
  uint64_t refills[HM_NUM_CLASSES];        /* refills of the bin (each hands out 1 block) */
  uint64_t flushes[HM_NUM_CLASSES];        /* overflow flushes of the bin */
} hm_heap_stats;

void hm_stats_refill(struct hm_heap *h, unsigned cls, uint32_t n);
void hm_stats_flush(struct hm_heap *h, unsigned cls, uint32_t n);
void hm_stats_drained(struct hm_heap *h, unsigned cls, uint32_t n);
void hm_stats_moved(struct hm_heap *h, unsigned from, unsigned to);   /* one block changed class */
void hm_stats_heap_exit(struct hm_heap *h);   /* heap registry lock held */
void hm_stats_get_fast(hakmem_stats *st);    /* hakmem_stats_get without mincore/statm */
/* Refills and flushes per class since start, exited threads included. */
void hm_stats_bin_events(uint64_t *refills, uint64_t *flushes);
size_t hm_stats_process_rss(void);           /* /proc/self/statm: bytes resident */
size_t hm_stats_committed(void);             /* hakmem's committed estimate (no mincore) */
void hm_stats_atexit_register(void);          /* HAKMEM_STATS: print at exit, once */

/* Debug counters (-DHAKMEM_DEBUG_COUNTERS=ON): per heap, merged into
 * hm_dbg_global at thread exit and summed on request. The layout is the
 * public struct's (include/hakmem.h documents each field). With the option
 * off, HM_DBG / HM_DBG_FAST expand to nothing: the fast paths compile to the
 * same instructions. */
typedef struct hakmem_debug_counters hm_dbg_counters;
enum {
  HM_STAGE_BUMP = HAKMEM_STAGE_BUMP, HM_STAGE_FREELIST = HAKMEM_STAGE_FREELIST,
  HM_STAGE_PARTIAL = HAKMEM_STAGE_PARTIAL, HM_STAGE_REMOTE = HAKMEM_STAGE_REMOTE,
  HM_STAGE_NEW_SLAB = HAKMEM_STAGE_NEW_SLAB, HM_STAGE_ADOPT = HAKMEM_STAGE_ADOPT,
  HM_STAGE_CACHE = HAKMEM_STAGE_CACHE, HM_STAGE_OS = HAKMEM_STAGE_OS,
};
#ifdef HAKMEM_DEBUG_COUNTERS
extern hm_dbg_counters hm_dbg_global;   /* atomics: exited heaps and heap-less threads */
#define HM_DBG_ONLY(...) __VA_ARGS__
#define HM_DBG_FAST(stmt) (stmt)
/* Add n to counter `field` of heap h, or of the global set for a thread
 * without a heap (h == &hm_heap_empty, which is const). */
#define HM_DBG(h, field, n)                                                    \
  do {                                                                         \
    struct hm_heap *dbg_h_ = (h);                                              \
    if (dbg_h_ && dbg_h_ != (struct hm_heap *)&hm_heap_empty)                  \
      dbg_h_->dbg.field += (n);                                                \
    else                                                                       \
      __atomic_fetch_add(&hm_dbg_global.field, (n), __ATOMIC_RELAXED);         \
  } while (0)
#define HM_DBG_MAX(a, b) ((a) > (b) ? (a) : (b))
/* A refill of a bin served by `stage`, bringing n blocks. */
#define HM_DBG_REFILL(h, stage, n)                                             \
  do {                                                                         \
    (h)->dbg.refills++;                                                        \
    (h)->dbg.refill_stage[(stage)]++;                                          \
    (h)->dbg.refill_stage_blocks[(stage)] += (n);                              \
  } while (0)
#else
#define HM_DBG_ONLY(...)
#define HM_DBG_FAST(stmt) ((void)0)
#define HM_DBG(h, field, n) ((void)0)
#endif

/* ---- thread heap ----------------------------------------------------------- */
/* The TLS SLL "bin" of class c is (head[c], room[c], cap[c]); separate arrays
 * so that the fast paths index them with the class directly (scale 8 / 4).
 * Entry HM_CLASS_NONE never has room, so a free into an unassigned unit
 * always reaches the validating slow path. */
typedef struct hm_heap {
  hm_block *head[HM_NUM_CLASSES + 1];     /* hot: TLS SLL of free blocks per class */
  uint64_t room[HM_NUM_CLASSES + 1];      /* hot: cap - length(list); 0 on the empty heap */
  uint32_t cap[HM_NUM_CLASSES + 1];
  uint64_t block_mult[HM_NUM_CLASSES + 1];/* hot: hm_class_mult, read by free's block check */
  hm_slab *active[HM_NUM_CLASSES];        /* slab being carved, per class */
  hm_slab *partial[HM_NUM_CLASSES];       /* slabs with free blocks, per class */
  hm_l2_page *l2_page[HM_NUM_CLASSES];    /* hot: L2 current page (queue head) per class;
                                             &hm_l2_page_empty when the queue is empty */
  hm_l2_page *l2_tail[HM_NUM_CLASSES];    /* L2 queue tails */
  _Atomic(hm_l2_page *) l2_delayed;       /* full pages that received remote frees */
  hm_superslab *segs[HM_SEG_KINDS];       /* owned segments per kind */
  hm_superslab *fit[HM_SEG_KINDS][HM_FIT_LISTS]; /* the same by longest free run */
  hm_superslab *drain_cursor;             /* Tiny: where the next refill's drain starts */
  uint32_t tiny_emptied;                  /* a Tiny slab emptied since hm_tiny_release_empty */
  uint32_t dense_segs;                    /* hm_seg_want_huge's last density sample: */
  uint64_t dense_ms;                      /*   segments then, when, */
  uint8_t dense;                          /*   and its answer */
  uint32_t seg_count[HM_SEG_KINDS];
  uint32_t slow_ticks;                    /* slow-path events since the last purge check */
  uint64_t last_purge_ms;                 /* when the heap last purged (owner or background;
                                             relaxed atomic: the background thread reads it) */
  _Atomic uint32_t bg_busy;               /* owner: 1 inside a slow path (handshake above) */
  _Atomic uint32_t bg_claim;              /* background: 1 claimed, 2 claimed + owner waits */
  uint64_t bg_seen_activity;              /* background only: the heap's refills + flushes */
  uint64_t bg_seen_ms;                    /* background only: when it saw them change last */
  uint32_t batch[HM_NUM_CLASSES];         /* refill batch per class */
  uint32_t cap_max[HM_NUM_CLASSES];       /* the most cap[c] may grow to */
  hm_superslab *retire_candidate;         /* became empty; retire at a safe point */
  uint32_t reclaim_credit;                /* segments it may reclaim on free (hm_seg_reclaim) */
  uint32_t param_gen;                     /* hm_param_gen its capacities were computed at */
  struct hm_heap *pool_next;              /* heap pool link when unused */
  uint64_t rng;                           /* xorshift state: secure mode's carve order */
  int live;                               /* last before all_next (heap_make keeps it) */
  /* Cold: statistics, written by the owner on slow paths only; the fast
   * paths never touch them (the hot arrays above keep their offsets). */
  struct hm_heap *all_next;               /* registry of every heap ever made (init.c) */
  hm_heap_stats stats;                    /* see hm_heap_stats */
#ifdef HAKMEM_DEBUG_COUNTERS
  hm_dbg_counters dbg;                    /* see hm_dbg_counters */
  uint8_t dbg_seg_src;                    /* scratch: where the last new segment came from */
#endif
} hm_heap;

extern __thread hm_heap *hm_tls_heap;
extern const hm_heap hm_heap_empty;
extern const hm_l2_page hm_l2_page_empty;   /* no free blocks: misses into the slow path */

/* ---- large blocks ---------------------------------------------------------- */
#define HM_LARGE_MAGIC 0x68616b6d656d4c47ull
typedef struct hm_large_hdr {
  uint64_t magic;
  size_t map_size;      /* bytes mapped from the header on, guard included */
  size_t user_off;      /* user pointer = (char *)hdr + user_off */
  size_t guard;         /* secure mode: PROT_NONE bytes ending the mapping (0 or 4096);
                           nonzero also guards the pages between header and user data */
  size_t asked;         /* the size of the last malloc or realloc: a cached span may be
                           longer, and realloc gives back only below half of this */
  size_t huge;          /* 1: mapped with huge-page advice, which its growth keeps (the
                           learner's fresh-bytes signal counts the grown part by it) */
  size_t resident;      /* freed, waiting to join the cache (large.c, "incoming"): the
                           resident bytes its free estimated */
  size_t mapped;        /* bytes mapped from the header when more than map_size (a
                           span shorter than its 2 MiB chunk maps all of it); else 0 */
} hm_large_hdr;

/* ---- runtime parameters (params.c) ---------------------------------------- */
/* Read only on slow paths, so the learning layer may tune them later. */
typedef struct hm_params {
  uint32_t sll_cap_bytes;      /* a Tiny bin starts at about this many bytes,  */
  uint32_t sll_grow_bytes;     /* doubling on each overflow up to this many,   */
  uint32_t sll_cap_min;        /* ... but at least this many blocks ...        */
  uint32_t sll_cap_max;        /* ... and at most this many                   */
  uint32_t refill_batch_bytes; /* a refill brings about this many bytes ...    */
  uint32_t refill_batch_max;   /* ... and at most this many blocks            */
  uint32_t purge_delay_ms;     /* free memory stays committed this long       */
  uint32_t purge_check_ticks;  /* slow-path events between purge checks       */
  uint32_t heap_keep_empty_ss; /* empty segments a heap keeps, per kind         */
  uint32_t l2_carve_max;       /* L2 blocks carved into a page's free list at once */
  uint32_t l2_cap_bytes;       /* L2 TLS SLL: about this many bytes per class at first, */
  uint32_t l2_cap_max_bytes;   /* doubling on each overflow up to this many bytes,      */
  uint32_t l2_batch_bytes;     /* ... refilled about this many bytes at a time    */
  uint32_t ss_cache_max;       /* empty superslabs kept process-wide          */
  size_t large_cache_bytes;    /* freed large mappings kept for reuse          */
  uint32_t large_cache_count;
  uint32_t huge_pages;         /* HM_HUGE_* bits: where transparent huge pages are asked for */
  uint32_t tiny_use_superslab; /* 1: Tiny slabs; 0: tiny sizes on L2 pages (comparison) */
  uint32_t verbose;            /* 1: version, path, options at load; 2: + ranges */
  uint32_t stats;              /* the report at exit: 0 none, 1 text, 2 JSON  */
  uint32_t background;         /* 1: a background thread returns idle memory  */
  uint32_t secure;             /* 1: guard pages, random carve order (read at start) */
  uint32_t learn;              /* the learner: 0 off, 1 observe, 2 on (src/learn/learn.h) */
  uint32_t learn_epoch_ms;     /* one epoch of the learner                     */
  uint32_t learn_lambda;       /* per mille of a CPU a resident GiB costs      */
  uint32_t learn_ace, learn_ucb, learn_elo;   /* each mechanism on (1) or not (the ablation) */
  /* Set by the learner only (ACE): each class's capacity is scaled by
   * 2^cap_shift (params.c); 0 is the options' value. */
  int8_t cap_shift[HM_NUM_CLASSES];
} hm_params;

extern hm_params hm_param;
/* hm_param.huge_pages: transparent huge pages (MADV_HUGEPAGE) for the new
 * segments of a heap that already holds HM_HUGE_MIN_SEGS of both kinds (it
 * is growing big: its segments fill; hm_seg_want_huge), and for new large
 * spans. Both trade
 * memory (a touched 4 KiB page commits its whole 2 MiB) for page faults
 * (one per 2 MiB instead of 512); the learner sets them from the faults it
 * measures (docs/LEARNING.md, "Huge pages"). */
#define HM_HUGE_SEGMENTS 1u
#define HM_HUGE_SPANS 2u
/* A trial (the learner's, ace.c): only one new segment or span in
 * HM_HUGE_TRIAL_EVERY gets the advice, so that what huge pages cost the
 * kernel here can be measured on a quarter of the memory before all of it
 * pays. */
#define HM_HUGE_TRIAL 4u
#define HM_HUGE_TRIAL_EVERY 4u
#define HM_HUGE_MIN_SEGS 32u
/* 1 if heap h's next segment (of either kind) would get huge pages (superslab.c). */
int hm_seg_want_huge(struct hm_heap *h);
/* 1 unless a trial (HM_HUGE_TRIAL) passes this one over: called once per
 * segment or span that would get the advice (superslab.c). */
int hm_huge_trial_pick(void);
/* A parameter as the slow paths read it: a relaxed atomic load (the same
 * instruction as a plain one), since the learner and hakmem_option_set
 * store while other threads read. */
#define HM_PARAM(field) __atomic_load_n(&hm_param.field, __ATOMIC_RELAXED)
/* Bumped (release) after the learner changed hm_param: a heap whose
 * param_gen differs adopts the new capacities at its next slow-path tick. */
extern _Atomic uint32_t hm_param_gen;
int hm_option_user_set(size_t field_offset);   /* 1: the user set it (env or hakmem_option_set) */
/* HAKMEM_STATS_FILE, absolute ("" when unset): where the exit report goes,
 * %p replaced by the pid and %% by % when it is opened (stats.c). */
#define HM_STATS_FILE_MAX 4096
extern char hm_param_stats_file[HM_STATS_FILE_MAX];
/* HAKMEM_LEARN_LOG, absolute ("" when unset): the learner's CSV log. */
#define HM_LEARN_LOG_MAX 4096
extern char hm_param_learn_log[HM_LEARN_LOG_MAX];
/* HAKMEM_LEARN's default (off, observe, on: 0, 1, 2); docs/LEARNING.md
 * has the figures that chose it. */
#define HM_LEARN_DEFAULT 2
void hm_params_init(void);   /* options.c: defaults + HAKMEM_* environment, once */
uint32_t hm_params_bin_cap(unsigned cls);
uint32_t hm_params_refill_batch(unsigned cls);
uint32_t hm_params_bin_cap_max(unsigned cls);
uint32_t hm_params_bin_cap_max_shifted(unsigned cls, int shift);

/* ---- region map (region_map.c) --------------------------------------------- */
extern uint8_t hm_region_map[HM_MAP_ENTRIES];
HM_INLINE unsigned hm_region_kind_at(uintptr_t base) {
  return __atomic_load_n(&hm_region_map[base >> HM_REGION_SHIFT], __ATOMIC_RELAXED);
}
HM_INLINE void hm_region_set(uintptr_t base, unsigned kind) {
  __atomic_store_n(&hm_region_map[base >> HM_REGION_SHIFT], (uint8_t)kind, __ATOMIC_RELEASE);
}
/* Does the map have an entry for the chunk of address a? (Segments always
 * do; a large block mapped outside the window may not: see "Address space".) */
HM_INLINE int hm_region_in_map(uintptr_t a) { return (a >> HM_REGION_SHIFT) < HM_MAP_ENTRIES; }

/* ---- free-list links ---------------------------------------------------------- */
/* Every list of free blocks (TLS SLL, slab and page free lists, remote lists)
 * links through word 0, read and written only through these functions.
 * Default build: a plain pointer. Secure build (HAKMEM_SECURE): stored as
 *   enc(next, at) = next ^ at ^ k        (k = hm_free_key, per process)
 * so that a write after free or an overflow into a free block turns the link
 * into garbage, which decodes to garbage, and a link cannot be forged without
 * k. k is the free mark's key: a program that can read freed memory learns
 * it from any mark (k ^ address), so a second key would protect nothing the
 * first does not, and one key is one load less on each pop (a rotation of
 * the encoding, tried, bought nothing against such a reader either and cost
 * 3 instructions per pop). Every link is checked when it is followed, and
 * every block when it is taken off a list: a block must carry its free mark
 * (in a secure build carving marks blocks too, so every block on any free
 * list carries one), and the link it holds must lead, once decoded, to a
 * 16-aligned address inside a segment (or be NULL). A link's target is
 * therefore checked when it is taken in turn -- before it is handed out or
 * its own link is followed -- not when the link is read: checking the
 * target's mark at once meant loading the line of a block that may not be
 * needed for a long time, while the block's own mark lies in the line its
 * link is read from, and at ^ k also decodes the link (3 instructions fewer
 * per pop; docs/analysis/free-checks-cost.md). Anything else
 * ends in one line and abort() before the garbage is dereferenced --
 * instead of a crash in a later malloc, or a live block handed out twice.
 *
 * malloc's fast path (tiny.h) checks the link without the region map: only
 * 16-aligned and below the window's end. A link that a stray write changed
 * decodes either to garbage, which the mask test rejects unless it lands
 * 16-aligned below 4 TiB (one in 2^26 for random bytes; reading the mark
 * there then faults when nothing is mapped, instead of aborting with the
 * message), or, after a partial overwrite, to an address near the old link,
 * inside a segment, whose mark test fails when it is popped. The map lookup
 * would add four instructions to every pop for the first case alone. The
 * slow paths' walks (hm_link_get) keep it. */
__attribute__((noreturn, cold)) void hm_link_corrupt(const void *at);

_Static_assert((HM_ARENA_HI & (HM_ARENA_HI - 1)) == 0, "the map's end is a power of two");
HM_INLINE void hm_link_set(hm_block *at, hm_block *next) {
#if HM_SECURE_BUILD
  at->next = (hm_block *)((uintptr_t)next ^ (uintptr_t)at ^ hm_free_key);
#else
  at->next = next;
#endif
}
#if HM_SECURE_BUILD
/* malloc's fast-path pop in a secure build: the decoded link of `at` in
 * *next; 0 if `at` does not carry its free mark or the link fails the mask
 * test (NULL, the end of the list, passes). at ^ k is both the mark `at`
 * must carry and the key of its link (enc = next ^ at ^ k), so one xor
 * serves the check and the decoding. */
HM_INLINE int hm_link_pop_ok(const hm_block *at, hm_block **next) {
  uintptr_t kb = hm_free_key ^ (uintptr_t)at;
  uintptr_t n = (uintptr_t)at->next ^ kb;
  *next = (hm_block *)n;
  if (at->mark != kb) return 0;
  return !(n & (~(HM_ARENA_HI - 1) | (HM_MIN_BLOCK - 1)));
}
#endif
/* The link of a block taken off a free list by a slow path (a refill, a
 * flush, a drain): the pop's check, and the target inside a segment. */
HM_INLINE hm_block *hm_link_get(const hm_block *at) {
#if HM_SECURE_BUILD
  hm_block *next;
  if (hm_unlikely(!hm_link_pop_ok(at, &next) ||
                  (next && !hm_region_is_segment(hm_region_map[(uintptr_t)next >> HM_REGION_SHIFT]))))
    hm_link_corrupt(at);
  return next;
#else
  return at->next;
#endif
}
/* A block about to be linked into a free list for the first time (carving):
 * in a secure build it must carry its mark, like every free block. */
HM_INLINE void hm_carve_mark(hm_block *b) {
  if (HM_SECURE_BUILD) b->mark = hm_free_mark(b);
}

/* ---- OS layer (os.c) ------------------------------------------------------- */
void *hm_os_map(size_t size);                                        /* anywhere */
/* In the window [HM_ARENA_LO, HM_ARENA_HI), at an address a with
 * (a + phase) % align == 0 (align a power of two >= 2 MiB); NULL when the
 * window has no room or the OS has no memory. Never replaces a mapping. */
void *hm_os_map_window(size_t size, size_t align, size_t phase);
void *hm_os_map_aligned(size_t size, size_t align, size_t phase);    /* anywhere */
uintptr_t hm_os_window_next(void);   /* where the next window mapping is tried (tests) */
void hm_os_unmap(void *p, size_t size);
void hm_os_decommit(void *p, size_t size);
int hm_os_protect(void *p, size_t size, int readable);   /* 0, or -1 (errno kept) */
size_t hm_os_resident(void *p, size_t size);   /* mincore: bytes resident */
int hm_os_address_space_tight(void);          /* RLIMIT_AS set or strict overcommit */
int hm_os_thp_always(void);                   /* transparent huge pages: "always" */
/* A small /proc or /sys file into buf, NUL-terminated (open/read: no
 * malloc); its length, or -1. errno is kept. */
long hm_os_read_small(const char *path, char *buf, size_t cap);
/* MADV_HUGEPAGE (on) or MADV_NOHUGEPAGE over [p, p + size): 0, or -1 (errno kept). */
int hm_os_hugepage(void *p, size_t size, int on);
uint64_t hm_os_now_ms(void);
uint64_t hm_os_now_ns(void);
uint64_t hm_os_random64(void);   /* for keys: never 0 */
void hm_os_write_stderr(const char *msg);
const char *hm_os_self_path(void);   /* the file hakmem was loaded from ("" if unknown) */
extern __thread uint64_t hm_os_released_by_thread;   /* bytes unmapped/decommitted by this thread */
/* hakmem's own memory syscalls since start (relaxed atomics, added on the
 * slow paths that make the calls): the learner's signals. */
typedef struct hm_os_counts {
  uint64_t maps, map_bytes, unmaps, unmap_bytes, decommits, decommit_bytes;
  /* Memory handed to the program that was not committed (its first touch
   * faults): units taken from never-used or decommitted space of a segment,
   * new or grown large spans; each split by whether it carries huge-page
   * advice. What the learner prices the kernel's time by (ace.c). */
  uint64_t fresh_seg_bytes, fresh_seg_huge_bytes, fresh_span_bytes, fresh_span_huge_bytes;
} hm_os_counts;
extern hm_os_counts hm_os_count;
#define HM_OS_COUNT(field, n) __atomic_fetch_add(&hm_os_count.field, (n), __ATOMIC_RELAXED)
/* What a page fault, an mmap + munmap pair and a madvise cost here, in ns
 * (measured on a scratch mapping; the learner's unit costs). */
void hm_os_calibrate(double *fault_ns, double *map_ns, double *decommit_ns);
void hm_os_futex_wait(_Atomic uint32_t *word, uint32_t expected, uint64_t timeout_ms);
void hm_os_futex_wake(_Atomic uint32_t *word);
int hm_os_membarrier_register(void);
int hm_os_membarrier(void);
/* One line "hakmem: FN: WHAT 0xPTR" on stderr, then abort(). fn names the
 * function the program called ("free()"), or NULL. */
__attribute__((noreturn)) void hm_fatal(const char *fn, const char *what, const void *ptr);

/* ---- process and thread set-up (init.c) ----------------------------------- */
hm_heap *hm_thread_heap_create(void);    /* slow path of a new thread */
void hm_process_init(void);              /* once per process; cheap when done */
/* The registry of every heap ever created (heaps are recycled, never
 * unmapped): stats.c walks it with the lock held; thread exit merges the
 * heap's counters under the same lock. */
void hm_heap_registry_lock(void);
void hm_heap_registry_unlock(void);
hm_heap *hm_heap_registry_first(void);
void hm_lock(pthread_mutex_t *m);
void hm_unlock(pthread_mutex_t *m);

/* ---- small (superslab) engine: tiny/ and superslab/ ----------------------- */
void *hm_small_alloc_slow(unsigned cls);
void *hm_small_alloc_slow_size(size_t n);   /* the same for a request of n <= HM_SMALL_MAX bytes */
/* Secure build: malloc popped a block whose link is bad; reports it and
 * aborts (declared returning, so that malloc tail-calls it). */
void *hm_small_alloc_bad_link(const hm_block *at);
void hm_small_free_slow(void *p, const char *fn);
size_t hm_small_live_size(hm_superslab *ss, const void *p, const char *fn, int freeing);
void hm_heap_flush_all(hm_heap *h);
void hm_heap_apply_params(hm_heap *h);   /* bin capacities and batches from hm_param */
void hm_heap_adopt_params(hm_heap *h);   /* the same, heap entered (the tick) */
void hm_heap_collect(hm_heap *h, int force);
void hm_remote_free(hm_superslab *ss, void *p, const char *fn);
void hm_slab_remote_push(hm_superslab *ss, hm_slab *s, hm_block *head, hm_block *tail);

hm_slab *hm_ss_slab_new(hm_heap *h, unsigned cls);
void hm_ss_slab_release(hm_heap *h, hm_slab *s);
int hm_ss_drain_remote(hm_heap *h, hm_superslab *ss, uint32_t units);
/* Every owned Tiny segment's remote frees back into its slabs. */
void hm_tiny_drain_all(hm_heap *h);
void hm_tiny_adopt(hm_heap *h, hm_superslab *ss);
void hm_tiny_abandon_all(hm_heap *h);
/* Release the heap's empty Tiny slabs kept on its partial lists (see
 * hm_slab_return_block); returns how many. Owner, or the background thread
 * holding the claim. */
unsigned hm_tiny_release_empty(hm_heap *h);
/* Decommit the pages inside the free blocks (> 4 KiB) of h's L2 pages (l2.c);
 * owner or background claim. Returns the bytes. */
size_t hm_l2_purge_free_blocks(hm_heap *h);
size_t hm_l2_purge_seg_free_blocks(hm_heap *h, hm_superslab *seg);   /* one segment of h */
/* realloc: a span block grows into the free units after it (l2.c). */
int hm_l2_span_grow(hm_heap *h, hm_superslab *seg, void *p, unsigned to);
/* Bytes those two gave back since start: committed memory that the unit
 * accounting (committed_est) does not see go, for hakmem_collect's answer. */
extern _Atomic uint64_t hm_l2_block_bytes_released;

/* ---- segment layer (superslab/superslab.c), shared by Tiny and L2 ------------ */
hm_superslab *hm_seg_acquire(hm_heap *h, unsigned kind);
hm_superslab *hm_seg_acquire_dirty(hm_heap *h, unsigned kind);
/* Decommit [p, p + size) inside segment ss, dropping its huge-page advice
 * first (khugepaged would commit the range again). */
void hm_seg_decommit(hm_superslab *ss, void *p, size_t size);
hm_superslab *hm_seg_abandoned_pop(unsigned kind);
int hm_seg_reclaim(hm_heap *h, hm_superslab *ss);
void hm_seg_earn_reclaim(hm_heap *h);
#define HM_RECLAIM_CREDIT_MAX 16
void hm_seg_abandon(hm_heap *h, hm_superslab *ss);
int hm_seg_find_run(uint32_t free_units, unsigned span);
unsigned hm_seg_longest_run(uint32_t free_units, unsigned *at);
hm_superslab *hm_seg_fit_next(hm_heap *h, unsigned kind, unsigned span, hm_superslab *after);
/* A run of `span` free units inside `allowed` in one of h's segments of
 * `kind` (its first unit in *unit), or NULL: with `resident`, units still
 * committed among the first HM_FIT_VISIT_MAX segments of each list that may
 * fit; else any, in the first segment of the tightest list that has one. */
hm_superslab *hm_seg_fit_find(hm_heap *h, unsigned kind, unsigned span, uint32_t allowed,
                              int resident, unsigned *unit);
void hm_seg_units_take(hm_heap *h, hm_superslab *ss, unsigned u, unsigned span);
void hm_seg_units_return(hm_heap *h, hm_superslab *ss, unsigned u, unsigned span);
void hm_seg_heap_add(hm_heap *h, hm_superslab *ss);
void hm_carve_chain(hm_heap *h, uint8_t *from, uint32_t n, size_t bs, hm_block **first,
                    hm_block **last);
void hm_heap_retire_empty(hm_heap *h);
void hm_ss_purge(hm_heap *h, int force);
void hm_heap_tick_slow(hm_heap *h);

/* ---- the owner side of the background handshake (see the top of this file) ---- */
void hm_heap_enter_slow(hm_heap *h);
void hm_bg_attend(void);
/* Nonzero when a slow path has something to tell the background thread:
 * HM_BG_ATTN_START (start it now) or HM_BG_ATTN_KICK (it sleeps until memory
 * is freed). Read once per slow path, written rarely. */
extern _Atomic uint32_t hm_bg_attention;
enum { HM_BG_ATTN_START = 1, HM_BG_ATTN_KICK = 2 };

/* Four instructions on the way in (store, load, or, branch), one on the way
 * out: the claim and the attention word are tested together, and the rare
 * case (claimed, or the background thread wants something) is out of line. */
HM_INLINE void hm_heap_enter(hm_heap *h) {
  atomic_store_explicit(&h->bg_busy, 1, memory_order_relaxed);
  atomic_signal_fence(memory_order_seq_cst);   /* the background side pays the fence */
  if (hm_unlikely(atomic_load_explicit(&h->bg_claim, memory_order_acquire) |
                  atomic_load_explicit(&hm_bg_attention, memory_order_relaxed)))
    hm_heap_enter_slow(h);
}
HM_INLINE void hm_heap_leave(hm_heap *h) {
  atomic_store_explicit(&h->bg_busy, 0, memory_order_release);
}
/* The same attention test for slow paths that do not enter a heap (remote
 * and large frees, large allocations). */
HM_INLINE void hm_bg_check_attention(void) {
  if (hm_unlikely(atomic_load_explicit(&hm_bg_attention, memory_order_relaxed))) hm_bg_attend();
}

/* ---- the background thread (learn/background.c) --------------------------------- */
void hm_bg_note_mapped(size_t bytes);   /* the process grew: maybe start the thread */
void hm_bg_note_heap(void);             /* a thread heap was created */
void hm_bg_note_tick(void);             /* a heap's slow-path tick: the learner may want it */
void hm_bg_fork_prepare(void);
void hm_bg_fork_parent(void);
void hm_bg_fork_child(void);
void hm_bg_stats(hakmem_background_stats *out);

const char *hm_bg_action_name(unsigned action);
/* The background thread's purges; each returns 1 while memory still waits
 * for its delay (bytes released are counted by the OS layer). */
int hm_heap_purge_idle(hm_heap *h, uint64_t now, uint64_t idle_since);   /* claim held, or the owner at exit */
int hm_seg_collect_abandoned(hm_heap *collector, uint64_t now);
int hm_ss_cache_purge(uint64_t now);
int hm_large_cache_purge(void);
hm_heap *hm_heap_create_detached(void);   /* a heap no thread owns (the collector) */

/* Counted on every slow path: every purge_check_ticks events the heap looks
 * at the clock, and purges at most every purge_delay_ms / 2. */
HM_INLINE void hm_heap_tick(hm_heap *h) {
  if (hm_unlikely(++h->slow_ticks >= hm_param.purge_check_ticks)) hm_heap_tick_slow(h);
}
size_t hm_ss_collect_global(int force);
size_t hm_ss_cache_unmap_all(void);
/* Out of memory or window room: unmap every cached empty segment and cached
 * large span (their address space, not only their pages); bytes released. */
size_t hm_release_cached_mappings(void);
void hm_ss_lock_all(void);
void hm_ss_unlock_all(void);
void hm_ss_reinit_locks(void);

/* ---- L2 (l2/l2.c) ------------------------------------------------------------ */
void *hm_l2_refill(hm_heap *h, unsigned cls);
void hm_l2_remote_push(hm_superslab *seg, hm_l2_page *pg, hm_block *head, hm_block *tail);
void hm_l2_return_block(hm_heap *h, hm_l2_page *pg, hm_block *b);
void hm_l2_release_empty(hm_heap *h, int at_once);   /* at_once: not only pages found empty before */
void hm_l2_collect_all(hm_heap *h);
void hm_l2_adopt(hm_heap *h, hm_superslab *ss);
void hm_l2_abandon_all(hm_heap *h);
void hm_l2_drain_delayed(hm_heap *h);

typedef struct hm_usage {
  size_t mapped, committed_est, in_use, superslabs, abandoned, cached_ss;
  size_t large_count, large_bytes, large_cached_bytes;
  size_t active;                       /* bytes of units assigned to slabs/pages + large live */
  size_t resident;                     /* mincore(2), only when asked for */
  size_t seg_kind[HM_SEG_KINDS];       /* owned or abandoned segments per kind */
  uint64_t class_out[HM_NUM_CLASSES];  /* sum of `used` per class */
} hm_usage;
void hm_ss_usage(hm_usage *u, int resident);

/* ---- large (large.c) ------------------------------------------------------- */
void *hm_large_alloc(size_t size, size_t align, int zero);
void hm_large_free(void *p, const char *fn);   /* fn: named if p is invalid */
void *hm_large_realloc(void *p, size_t size);
size_t hm_large_usable(const void *p, const char *fn);
hm_large_hdr *hm_large_hdr_of(const void *p, const char *fn);
/* HM_REGION_LARGE if p is a live large block outside the map's range, else
 * HM_REGION_NONE (a lookup under a lock: only where the map has no entry). */
unsigned hm_large_far_kind(const void *p);
size_t hm_large_collect(int force);
void hm_large_usage(hm_usage *u, int resident);
/* The large cache since start: spans reused, spans mapped fresh, freed
 * spans not kept (too big for it, or it was full). */
void hm_large_counts(uint64_t *hits, uint64_t *misses, uint64_t *drops);
/* The resident share of the large blocks freed since the last call (-1:
 * none sampled), and how many of the next frees to sample (0: none). */
double hm_large_density_take(unsigned next_samples);
/* 2 MiB (aligned, resident) taken from a cached large span for a segment;
 * NULL when none has a whole chunk (or in secure mode). *huge: the span
 * carried huge-page advice. */
void *hm_large_take_chunk(int *huge);
/* The other direction (superslab.c): an empty cached segment as the 2 MiB
 * chunk of a large span of `used` bytes (its contents not zero); NULL when
 * the cache has none (or in secure mode). *huge: its huge-page advice. */
void *hm_seg_cache_take_chunk(size_t used, int *huge);
void hm_large_lock(void);
void hm_large_unlock(void);
void hm_large_reinit_lock(void);

#endif /* HAKMEM_INTERNAL_H */
