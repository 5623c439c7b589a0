/* init.c -- process start-up, thread heaps, thread exit and fork.
 *
 * The process is initialised once (parameters and their warnings, the
 * thread-exit key, fork handlers, the exit report) by whichever comes first:
 * the library's constructor (load_init below), or an allocation made before
 * it ran -- by another library's constructor, or one of the executable's when
 * libhakmem.a is linked in -- whose thread's first call misses into a slow
 * path that calls hm_thread_heap_create(). No dlsym. A thread's heap is made
 * by its first allocation, never by the constructor. Heap structures come
 * from mmap'd chunks and are recycled, never unmapped. */
#include "superslab/superslab.h"

#include <sched.h>
#include <string.h>

__thread hm_heap *hm_tls_heap = (hm_heap *)&hm_heap_empty;
uint64_t hm_free_key;   /* the free mark's key (hakmem_internal.h) */
uint32_t hm_seg_data_start = HM_SS_HEADER_SIZE;
uint32_t hm_seg_data_end = HM_REGION_SIZE;

/* All bins empty with zero room: every fast path misses on it. Const, so a
 * stray write faults instead of corrupting state. */
const hm_heap hm_heap_empty = {
  .l2_page = {[0 ... HM_NUM_CLASSES - 1] = (hm_l2_page *)&hm_l2_page_empty},
};

_Static_assert(offsetof(hm_heap, stats) == offsetof(hm_heap, all_next) + sizeof(hm_heap *),
               "hm_thread_heap_create clears all but all_next in two runs");

static _Atomic int init_state;            /* 0 none, 1 running, 2 ready */
static pthread_key_t heap_key;
static pthread_mutex_t heap_pool_lock = PTHREAD_MUTEX_INITIALIZER;
static hm_heap *heap_pool;                /* recycled heaps */
static hm_heap *heap_all;                 /* registry of every heap (all_next), for stats */
static uint8_t *heap_chunk, *heap_chunk_end;

void hm_lock(pthread_mutex_t *m) { pthread_mutex_lock(m); }
void hm_unlock(pthread_mutex_t *m) { pthread_mutex_unlock(m); }

static void thread_exit(void *arg);

/* Lock order: the background thread's action lock first (it takes the
 * others while an action runs), then the heap pool, the segments, large. */
static void fork_prepare(void) {
  hm_bg_fork_prepare();
  hm_lock(&heap_pool_lock);
  hm_ss_lock_all();
  hm_large_lock();
}
static void fork_parent(void) {
  hm_large_unlock();
  hm_ss_unlock_all();
  hm_unlock(&heap_pool_lock);
  hm_bg_fork_parent();
}
/* The child has only the forking thread: the other threads' heaps stay
 * allocated (their blocks can still be freed, as remote frees), and there is
 * no background thread until the child grows (hm_bg_fork_child). */
static void fork_child(void) {
  hm_large_reinit_lock();
  hm_ss_reinit_locks();
  pthread_mutex_init(&heap_pool_lock, NULL);
  /* A thread that was inside a slow path at the fork left its heap half
   * changed: nobody may touch it again (its memory stays, as before). The
   * other dead threads' heaps are consistent outside their bins, so the
   * child's background thread may purge them like any idle heap. */
  for (hm_heap *h = heap_all; h; h = h->all_next)
    if (h != hm_tls_heap && h->live && atomic_load_explicit(&h->bg_busy, memory_order_relaxed))
      __atomic_store_n(&h->live, 0, __ATOMIC_RELAXED);
  hm_bg_fork_child();
}

static void process_init(void) {
  int expected = 0;
  if (atomic_compare_exchange_strong(&init_state, &expected, 1)) {
    hm_params_init();   /* options.c: environment, warnings; never allocates */
    hm_class_div_init();
    hm_free_key = hm_os_random64();   /* before any block exists: no block is freed earlier */
    if (hm_param.secure) {   /* guard pages around each segment's blocks */
      hm_seg_data_start = HM_SS_HEADER_SIZE + 4096;
      hm_seg_data_end = HM_REGION_SIZE - 4096;
    }
    pthread_key_create(&heap_key, thread_exit);
    atomic_store(&init_state, 2);
    /* These may allocate (glibc keeps handlers in growable arrays): we are
     * ready, and a nested first allocation creates this thread's heap
     * (hm_thread_heap_create copes). */
    pthread_atfork(fork_prepare, fork_parent, fork_child);
    if (hm_param.stats) hm_stats_atexit_register();
    return;
  }
  while (atomic_load(&init_state) != 2) sched_yield();
}

/* For entry points that may run before any heap exists (large blocks, the
 * statistics and options API). */
void hm_process_init(void) {
  if (atomic_load_explicit(&init_state, memory_order_acquire) != 2) process_init();
}

/* Load time, so that a program that never allocates still gets the options'
 * warnings, the HAKMEM_VERBOSE report and the HAKMEM_STATS report at exit.
 * It maps nothing and creates no heap (process_init allocates only through
 * glibc's atexit/pthread_atfork, which keep their first entries in static
 * storage). When an allocation came first, init_state is already 2 and this
 * does nothing: every message is printed once. */
__attribute__((constructor)) static void load_init(void) { hm_process_init(); }

void hm_heap_registry_lock(void) { hm_lock(&heap_pool_lock); }
void hm_heap_registry_unlock(void) { hm_unlock(&heap_pool_lock); }
hm_heap *hm_heap_registry_first(void) { return heap_all; }

static hm_heap *heap_alloc(void) {
  hm_lock(&heap_pool_lock);
  hm_heap *h = heap_pool;
  if (h) {
    heap_pool = h->pool_next;
  } else {
    size_t sz = (sizeof(hm_heap) + 63) & ~(size_t)63;
    if (!heap_chunk || heap_chunk + sz > heap_chunk_end) {
      size_t chunk = 256 * 1024;
      heap_chunk = hm_os_map(chunk);
      if (!heap_chunk && hm_release_cached_mappings()) heap_chunk = hm_os_map(chunk);
      heap_chunk_end = heap_chunk ? heap_chunk + chunk : NULL;
    }
    if (heap_chunk) {
      h = (hm_heap *)heap_chunk;
      heap_chunk += sz;
      h->all_next = heap_all;   /* registered for good: heaps are never unmapped */
      heap_all = h;
    }
  }
  hm_unlock(&heap_pool_lock);
  return h;
}

/* A heap from the pool, cleared, with the bins of a thread (or none). Its
 * registry link stays: a stats reader or the background thread may be
 * following it. A pooled heap is not live, so nobody claims it meanwhile. */
static hm_heap *heap_make(int with_bins) {
  hm_heap *h = heap_alloc();
  if (!h) return NULL;
  /* Not `live` (the last field before all_next): it is 0 already (pooled or
   * fresh), and the background thread and stats readers load it while
   * walking the registry, so a memset over it would race with them. The
   * same for what the background thread loads to decide whether it may
   * claim the heap (last_purge_ms, bg_busy, bg_claim): atomic stores. */
  memset(h, 0, offsetof(hm_heap, last_purge_ms));
  __atomic_store_n(&h->last_purge_ms, 0, __ATOMIC_RELAXED);
  atomic_store_explicit(&h->bg_busy, 0, memory_order_relaxed);
  atomic_store_explicit(&h->bg_claim, 0, memory_order_relaxed);
  memset(&h->bg_seen_activity, 0, offsetof(hm_heap, live) - offsetof(hm_heap, bg_seen_activity));
  memset(&h->stats, 0, sizeof *h - offsetof(hm_heap, stats));
  h->param_gen = atomic_load_explicit(&hm_param_gen, memory_order_acquire);   /* before reading */
  for (unsigned c = 0; c < HM_NUM_CLASSES; c++) {
    uint32_t cap = with_bins ? hm_params_bin_cap(c) : 0;
    h->cap[c] = cap;
    h->room[c] = cap;
    h->batch[c] = hm_params_refill_batch(c);
    h->cap_max[c] = with_bins ? hm_params_bin_cap_max(c) : 0;
    h->l2_page[c] = (hm_l2_page *)&hm_l2_page_empty;
    h->block_mult[c] = hm_class_mult[c];
  }
  h->rng = hm_os_random64();
  return h;
}

hm_heap *hm_thread_heap_create(void) {
  if (atomic_load_explicit(&init_state, memory_order_acquire) != 2) {
    process_init();
    /* process_init may have allocated (atexit, pthread_atfork): that nested
     * allocation already created this thread's heap. */
    if (hm_tls_heap != &hm_heap_empty) return hm_tls_heap;
  }
  hm_heap *h = heap_make(1);
  if (!h) return NULL;
  __atomic_store_n(&h->live, 1, __ATOMIC_RELEASE);   /* initialised: it may be claimed now */
  hm_tls_heap = h;
  pthread_setspecific(heap_key, h);
  hm_bg_note_heap();
  return h;
}

/* The background thread's collector: a heap no thread owns and that is never
 * live (no bins; the background thread never claims it). */
hm_heap *hm_heap_create_detached(void) {
  hm_process_init();
  return heap_make(0);
}

/* Thread exit: return every cached block to its slab, then give the
 * superslabs up for adoption (empty ones to the cache). The heap stays
 * "busy" for good: the background thread leaves it alone until it is made
 * again (heap_make clears the handshake). */
static void thread_exit(void *arg) {
  hm_heap *h = arg;
  if (!h || !h->live) return;
  hm_heap_enter(h);
  hm_heap_flush_all(h);
  /* The owner's last purge: take what other threads freed to it, release
   * what emptied, and give back the free units whose purge delay has passed,
   * as its next tick would have. Abandoned segments have no owner to do it
   * later, and without the background thread (HAKMEM_BACKGROUND=0) nobody
   * would: tests/waves with four threads a wave grew to 3.2x its live bytes
   * resident, 2.3-2.4x with this. Units freed within the delay stay (a
   * thread that lived 5 ms gives nothing back here; Larson is unchanged). */
  hm_heap_purge_idle(h, hm_os_now_ms(), UINT64_MAX);
  hm_tiny_abandon_all(h);
  hm_l2_abandon_all(h);
  if (hm_tls_heap == h) hm_tls_heap = (hm_heap *)&hm_heap_empty;
  hm_lock(&heap_pool_lock);
  hm_stats_heap_exit(h);   /* its counts join the process totals */
  __atomic_store_n(&h->live, 0, __ATOMIC_RELEASE);
  h->pool_next = heap_pool;
  heap_pool = h;
  hm_unlock(&heap_pool_lock);
}
