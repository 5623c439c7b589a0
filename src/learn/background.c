/* background.c -- the background thread: one per process, started lazily,
 * running one table of periodic actions that give idle memory back to the
 * OS, and the learning layer's epochs (learner.c).
 *
 * Owns: the thread's life (lazy start, fork, HAKMEM_BACKGROUND), the action
 * table, the sleep/kick protocol and the thread's statistics.
 * Never: allocates from hakmem's heaps (its collector heap comes from the
 * mmap'd heap pool; it calls nothing that mallocs), holds an allocator lock
 * while it waits, runs anything on a fast path, or takes signals (all are
 * blocked before it is created).
 *
 * Start: a slow path that maps memory (segments, large blocks) or creates a
 * second thread heap asks for the thread (hm_bg_note_*); once the process has
 * mapped START_BYTES or has two threads (or, with the learner on, its bins
 * made START_TICKS slow-path ticks), the next slow path, before it enters its heap
 * sees HM_BG_ATTN_START and creates it, with no lock held. Never from a
 * constructor: `true` and `ls` never get a thread.
 *
 * Sleep: while some memory waits for its purge delay, a round comes every
 * interval of the table. When a whole round found nothing waiting, the thread
 * sleeps until a slow path frees memory (HM_BG_ATTN_KICK, an eventcount on
 * wake_seq, armed *before* the round so that a free during the round is not
 * missed), or IDLE_MAX_MS.
 *
 * fork: the prepare handler takes bg_lock, which the thread holds while an
 * action runs, so no claim on a heap and no half-done action crosses into the
 * child. The child has no background thread; it starts its own on its own
 * growth (its counters start from zero), so a child that only calls exec
 * never gets one.
 *
 * exit: the thread touches only hakmem's own mappings and statics, which
 * exit() never tears down, so exit() may end it anywhere. */
#include "hakmem_internal.h"
#include "learn.h"

#include <pthread.h>
#include <signal.h>
#include <string.h>

#define START_BYTES ((uint64_t)8 << 20)   /* start once this much was mapped ... */
#define START_HEAPS 2u                    /* ... or this many thread heaps exist ... */
#define START_TICKS 64u                   /* ... or, with the learner on, this many slow-path
                                             ticks (of PURGE_CHECK_TICKS events) happened:
                                             a program whose bins thrash */
#define IDLE_MAX_MS 10000u                /* longest sleep when nothing waits */
#define CLAIM_BATCH 32u                   /* heaps claimed per membarrier */
#define STACK_SIZE (256u * 1024)

enum { BG_OFF = 0, BG_WANTED, BG_STARTING, BG_RUNNING, BG_FAILED };

_Atomic uint32_t hm_bg_attention;
static _Atomic uint32_t bg_state;
static _Atomic uint64_t grown_bytes;      /* mapped since start (or since fork) */
static _Atomic uint32_t heaps_made;
static _Atomic uint32_t ticks_seen;
static _Atomic uint32_t wake_seq;         /* eventcount: a kick bumps it */
static pthread_mutex_t bg_lock = PTHREAD_MUTEX_INITIALIZER;   /* held while an action runs */
static int heaps_ok;                      /* membarrier works: live heaps may be claimed (relaxed
                                             atomic: the statistics read it) */
static hm_heap *collector;                /* adopts abandoned segments (action 3) */

/* Statistics: written by the thread (relaxed atomics), read by anybody. */
static struct {
  uint64_t wakeups, heaps_purged, heaps_busy;
  uint64_t runs[HAKMEM_BG_ACTIONS], bytes[HAKMEM_BG_ACTIONS], ns[HAKMEM_BG_ACTIONS];
} bgst;
static _Atomic uint64_t owner_waits;

#define ST_ADD(field, n) __atomic_fetch_add(&(field), (n), __ATOMIC_RELAXED)

/* ---- the actions --------------------------------------------------------------- */
/* Each returns 1 when memory still waits (its delay has not passed, or its
 * owner was busy): the thread then keeps its cadence instead of sleeping. */

static void claim_drop(hm_heap *h) {
  if (atomic_exchange_explicit(&h->bg_claim, 0, memory_order_release) == 2)
    hm_os_futex_wake(&h->bg_claim);
}

/* A heap's slow-path activity: its refills and flushes (counted on those
 * slow paths anyway; read as the statistics read them). */
static uint64_t heap_activity(const hm_heap *h) {
  uint64_t n = 0;
  for (unsigned c = 0; c < HM_NUM_CLASSES; c++)
    n += __atomic_load_n(&h->stats.refills[c], __ATOMIC_RELAXED) +
         __atomic_load_n(&h->stats.flushes[c], __ATOMIC_RELAXED);
  return n;
}

/* Live heaps that made no refill or flush for half a delay -- a thread that
 * sleeps, blocks, or runs only on its fast paths -- and heaps whose owner
 * has not purged itself for a whole delay (active, but too rarely on a slow
 * path to reach its own purge) are claimed in batches (one membarrier each)
 * and purged on the owner's behalf: remote frees taken, empty pages and
 * slabs released, empty segments retired, free units decommitted. A heap
 * idle since T has had all its free memory free since T, so it is
 * decommitted a delay after T, not a delay after the release. Owners that are
 * busy, or idle for less than half a delay, are left alone: their pages stay
 * where their next allocations expect them. */
static int purge_heaps(uint64_t now) {
  if (!__atomic_load_n(&heaps_ok, __ATOMIC_RELAXED)) return 0;
  uint64_t delay = HM_PARAM(purge_delay_ms);
  int pending = 0;
  hm_heap *batch[CLAIM_BATCH];
  uint64_t batch_idle[CLAIM_BATCH];   /* idle since (UINT64_MAX: not idle) */
  hm_heap_registry_lock();
  hm_heap *h = hm_heap_registry_first();
  for (;;) {
    unsigned n = 0;
    for (; h && n < CLAIM_BATCH; h = h->all_next) {
      if (h == collector || !__atomic_load_n(&h->live, __ATOMIC_ACQUIRE)) continue;
      uint64_t act = heap_activity(h);
      if (act != h->bg_seen_activity) {
        h->bg_seen_activity = act;
        h->bg_seen_ms = now;
      }
      int idle = now - h->bg_seen_ms >= delay / 2;
      if (!idle && now - __atomic_load_n(&h->last_purge_ms, __ATOMIC_RELAXED) < delay) {
        pending = 1;   /* busy, or only just idle: it may be idle later */
        continue;
      }
      atomic_store_explicit(&h->bg_claim, 1, memory_order_relaxed);
      batch_idle[n] = idle ? h->bg_seen_ms : UINT64_MAX;
      batch[n++] = h;
    }
    hm_heap_registry_unlock();   /* heaps are never unmapped: h stays a valid cursor */
    if (n == 0) break;
    int fenced = hm_os_membarrier() == 0;
    for (unsigned i = 0; i < n; i++) {
      hm_heap *b = batch[i];
      /* The claim must have survived (a heap recycled since would have it
       * cleared) and the owner must be outside its slow paths. */
      if (!fenced || atomic_load_explicit(&b->bg_busy, memory_order_acquire) ||
          !atomic_load_explicit(&b->bg_claim, memory_order_acquire) ||
          !__atomic_load_n(&b->live, __ATOMIC_ACQUIRE)) {
        ST_ADD(bgst.heaps_busy, 1);
        pending = 1;
      } else {
        pending |= hm_heap_purge_idle(b, now, batch_idle[i]);
        ST_ADD(bgst.heaps_purged, 1);
      }
      claim_drop(b);
    }
    if (!fenced) {
      __atomic_store_n(&heaps_ok, 0, __ATOMIC_RELAXED);   /* membarrier stopped working: never claim again */
      break;
    }
    if (!h) break;
    hm_heap_registry_lock();
  }
  return pending;
}

/* The process-wide caches: empty segments and freed large spans. */
static int purge_caches(uint64_t now) {
  int pending = hm_ss_cache_purge(now);
  return hm_large_cache_purge() | pending;
}

/* Segments of exited threads that have something to give: adopted into the
 * collector, drained, purged, abandoned again. */
static int collect_abandoned(uint64_t now) {
  int pending = hm_seg_collect_abandoned(collector, now);
  hm_heap_registry_lock();
  hm_stats_heap_exit(collector);   /* its drain counts join the process totals */
  hm_heap_registry_unlock();
  return pending;
}

/* The purge interval: a quarter of the delay. Free units and cached memory
 * are back within 1.25 delays; everything free in a thread that went idle
 * within 1.5 (a round to see its counts stop, a delay counted from then, a
 * round). At least 10 ms: with a delay near 0 a faster cadence only makes
 * the owners fault pages in again (measured: thread_churn 4.5x slower at
 * 1 ms); at most 1 s. */
static uint32_t quarter_delay(void) {
  uint32_t d = HM_PARAM(purge_delay_ms) / 4;
  return d < 10 ? 10 : d > 1000 ? 1000 : d;
}

typedef struct bg_action {
  const char *name;
  uint32_t (*interval_ms)(void);
  int (*run)(uint64_t now);
  const char *why;
} bg_action;

/* The table. Every row runs on its own interval; the order is the order
 * within a round (heaps first: what they retire goes to the caches). */
static const bg_action actions[HAKMEM_BG_ACTIONS] = {
  [HAKMEM_BG_PURGE_HEAPS] = {"purge_heaps", quarter_delay, purge_heaps,
    "a thread that stopped calling malloc never reaches the slow path that purges"},
  [HAKMEM_BG_PURGE_CACHES] = {"purge_caches", quarter_delay, purge_caches,
    "cached empty segments and large spans are only purged when somebody allocates"
    " (segments: decommitted after a delay, unmapped after two)"},
  [HAKMEM_BG_COLLECT_ABANDONED] = {"collect_abandoned", quarter_delay, collect_abandoned,
    "frees into exited threads' segments wait there until some thread adopts them"},
  [HAKMEM_BG_LEARN] = {"learn", hm_learn_interval_ms, hm_learn_epoch,
    "no static setting suits every program: one epoch of the learner reads the signals,"
    " prices them, and tunes the options it owns (docs/LEARNING.md)"},
};

/* ---- the thread ------------------------------------------------------------------ */
static int run_action(unsigned i, uint64_t now) {
  hm_lock(&bg_lock);
  uint64_t t0 = hm_os_now_ns(), r0 = hm_os_released_by_thread;
  int pending = __atomic_load_n(&hm_param.background, __ATOMIC_RELAXED) ? actions[i].run(now) : 0;
  ST_ADD(bgst.bytes[i], hm_os_released_by_thread - r0);
  ST_ADD(bgst.ns[i], hm_os_now_ns() - t0);
  ST_ADD(bgst.runs[i], 1);
  hm_unlock(&bg_lock);
  return pending;
}

static void *bg_main(void *arg) {
  (void)arg;
  pthread_setname_np(pthread_self(), "hakmem-bg");
  __atomic_store_n(&heaps_ok, hm_os_membarrier_register() == 0, __ATOMIC_RELAXED);
  if (!collector) collector = hm_heap_create_detached();   /* kept across fork */
  uint64_t next_due[HAKMEM_BG_ACTIONS] = {0};
  int pending_of[HAKMEM_BG_ACTIONS] = {0};
  int quiet = 0;   /* the last round found nothing waiting */
  for (;;) {
    uint32_t seq = atomic_load_explicit(&wake_seq, memory_order_acquire);
    if (quiet) atomic_fetch_or_explicit(&hm_bg_attention, HM_BG_ATTN_KICK, memory_order_seq_cst);
    uint64_t now = hm_os_now_ms(), wake = UINT64_MAX;
    int waiting = 0;
    for (unsigned i = 0; i < HAKMEM_BG_ACTIONS; i++) {
      if (quiet || now >= next_due[i]) {
        pending_of[i] = collector || i != HAKMEM_BG_COLLECT_ABANDONED ? run_action(i, now) : 0;
        next_due[i] = now + actions[i].interval_ms();
      }
      waiting |= pending_of[i];
      if (next_due[i] < wake) wake = next_due[i];
    }
    ST_ADD(bgst.wakeups, 1);
    if (quiet && !waiting) {
      hm_os_futex_wait(&wake_seq, seq, IDLE_MAX_MS);   /* until a slow path frees memory */
      continue;
    }
    quiet = !waiting;
    now = hm_os_now_ms();
    if (wake > now) hm_os_futex_wait(&wake_seq, atomic_load(&wake_seq), wake - now);
  }
  return NULL;
}

static void bg_start(void) {
  uint32_t expected = BG_WANTED;
  if (!atomic_compare_exchange_strong(&bg_state, &expected, BG_STARTING)) return;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, STACK_SIZE);
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);   /* the thread inherits: no signal reaches it */
  pthread_t t;
  int rc = pthread_create(&t, &attr, bg_main, NULL);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  pthread_attr_destroy(&attr);
  atomic_store(&bg_state, rc == 0 ? BG_RUNNING : BG_FAILED);
}

static void want_thread(void) {
  uint32_t expected = BG_OFF;
  if (!__atomic_load_n(&hm_param.background, __ATOMIC_RELAXED)) return;
  if (atomic_compare_exchange_strong(&bg_state, &expected, BG_WANTED))
    atomic_fetch_or(&hm_bg_attention, HM_BG_ATTN_START);
}

/* ---- what the slow paths call ----------------------------------------------------------- */
void hm_bg_note_mapped(size_t bytes) {
  if (atomic_load_explicit(&bg_state, memory_order_relaxed) != BG_OFF) return;
  if (atomic_fetch_add_explicit(&grown_bytes, bytes, memory_order_relaxed) + bytes >= START_BYTES)
    want_thread();
}

void hm_bg_note_heap(void) {
  if (atomic_load_explicit(&bg_state, memory_order_relaxed) != BG_OFF) return;
  if (atomic_fetch_add_explicit(&heaps_made, 1, memory_order_relaxed) + 1 >= START_HEAPS)
    want_thread();
}

/* A heap's slow-path tick (every PURGE_CHECK_TICKS slow-path events): a
 * single-threaded program that maps little but keeps its bins busy is the
 * learner's business (ACE sizes its bins), not the purger's. */
void hm_bg_note_tick(void) {
  if (atomic_load_explicit(&bg_state, memory_order_relaxed) != BG_OFF ||
      HM_PARAM(learn) == HM_LEARN_OFF)
    return;
  if (atomic_fetch_add_explicit(&ticks_seen, 1, memory_order_relaxed) + 1 >= START_TICKS)
    want_thread();
}

/* A slow path saw hm_bg_attention set (no lock held, outside its heap). */
void hm_bg_attend(void) {
  uint32_t a = atomic_exchange(&hm_bg_attention, 0);
  if (a & HM_BG_ATTN_KICK) {
    atomic_fetch_add(&wake_seq, 1);
    hm_os_futex_wake(&wake_seq);
  }
  if (a & HM_BG_ATTN_START) bg_start();
}

/* hm_heap_enter's rare case. First the attention word: with bg_busy taken
 * back, since starting the thread may allocate (pthread_create), which
 * enters this heap again. Then, if the heap is claimed, keep bg_busy set and
 * wait for the claim to go: the background thread either saw bg_busy and
 * drops the claim, or is purging and drops it when done (early, as it sees
 * 2). */
void hm_heap_enter_slow(hm_heap *h) {
  if (atomic_load_explicit(&hm_bg_attention, memory_order_relaxed)) {
    atomic_store_explicit(&h->bg_busy, 0, memory_order_release);
    hm_bg_attend();
    atomic_store_explicit(&h->bg_busy, 1, memory_order_relaxed);
    atomic_signal_fence(memory_order_seq_cst);
  }
  uint32_t c = atomic_load_explicit(&h->bg_claim, memory_order_acquire);
  if (c) atomic_fetch_add_explicit(&owner_waits, 1, memory_order_relaxed);
  while (c != 0) {
    if (c == 1 && !atomic_compare_exchange_weak_explicit(&h->bg_claim, &c, 2,
                                                         memory_order_acquire,
                                                         memory_order_acquire))
      continue;
    hm_os_futex_wait(&h->bg_claim, 2, 0);
    c = atomic_load_explicit(&h->bg_claim, memory_order_acquire);
  }
}

/* ---- fork ----------------------------------------------------------------------------- */
void hm_bg_fork_prepare(void) { hm_lock(&bg_lock); }
void hm_bg_fork_parent(void) { hm_unlock(&bg_lock); }
void hm_bg_fork_child(void) {
  pthread_mutex_init(&bg_lock, NULL);
  atomic_store(&bg_state, BG_OFF);
  atomic_store(&grown_bytes, 0);
  atomic_store(&heaps_made, 0);
  atomic_store(&ticks_seen, 0);
  atomic_store(&hm_bg_attention, 0);
  atomic_store(&owner_waits, 0);
  __atomic_store_n(&heaps_ok, 0, __ATOMIC_RELAXED);
  memset(&bgst, 0, sizeof bgst);
  hm_learn_fork_child();
}

/* ---- statistics ------------------------------------------------------------------------- */
void hm_bg_stats(hakmem_background_stats *out) {
  memset(out, 0, sizeof *out);
  out->running = atomic_load(&bg_state) == BG_RUNNING;
  out->heaps_supported = out->running && __atomic_load_n(&heaps_ok, __ATOMIC_RELAXED);
  out->wakeups = __atomic_load_n(&bgst.wakeups, __ATOMIC_RELAXED);
  for (unsigned i = 0; i < HAKMEM_BG_ACTIONS; i++) {
    out->runs[i] = __atomic_load_n(&bgst.runs[i], __ATOMIC_RELAXED);
    out->bytes_returned[i] = __atomic_load_n(&bgst.bytes[i], __ATOMIC_RELAXED);
    out->time_ns[i] = __atomic_load_n(&bgst.ns[i], __ATOMIC_RELAXED);
  }
  out->heaps_purged = __atomic_load_n(&bgst.heaps_purged, __ATOMIC_RELAXED);
  out->heaps_busy = __atomic_load_n(&bgst.heaps_busy, __ATOMIC_RELAXED);
  out->owner_waits = atomic_load_explicit(&owner_waits, memory_order_relaxed);
}

const char *hm_bg_action_name(unsigned i) { return i < HAKMEM_BG_ACTIONS ? actions[i].name : "?"; }
