/* superslab.c -- the SuperSlab backend: 2 MiB aligned regions owned by one
 * thread heap and cut into slabs of 64 KiB units on demand; slab assignment
 * and release, remote-free draining, delayed purge (MADV_DONTNEED),
 * abandonment at thread exit and adoption by other threads, and a bounded
 * process-wide cache of empty superslabs.
 *
 * Locking: hm_ss_lock guards the abandoned list, the empty cache and the
 * registry of all superslabs. Nothing here is on a fast path; everything that
 * touches a superslab's slabs runs on its owner thread. */
#include "superslab/superslab.h"

#include <string.h>

static pthread_mutex_t hm_ss_lock_ = PTHREAD_MUTEX_INITIALIZER;
static hm_superslab *abandoned_head;
static size_t abandoned_count;
static hm_superslab *cache_head;          /* empty superslabs, most recent first */
static size_t cache_count;
static hm_superslab *all_head;            /* registry, for statistics */
static size_t all_count;

/* ---- lists ------------------------------------------------------------------ */
static void list_push(hm_superslab **head, hm_superslab *ss) {
  ss->prev = NULL;
  ss->next = *head;
  if (*head) (*head)->prev = ss;
  *head = ss;
}

static void list_remove(hm_superslab **head, hm_superslab *ss) {
  if (ss->prev) ss->prev->next = ss->next;
  else *head = ss->next;
  if (ss->next) ss->next->prev = ss->prev;
  ss->next = ss->prev = NULL;
}

/* ---- memory of free units ------------------------------------------------------ */
static void decommit_units(hm_superslab *ss, uint32_t units) {
  while (units) {
    unsigned a = (unsigned)__builtin_ctz(units);
    unsigned b = a;
    while (b < HM_UNITS && (units >> b) & 1u) b++;
    uint8_t *from = (uint8_t *)ss + (size_t)a * HM_UNIT_SIZE + (a == 0 ? HM_SS_HEADER_SIZE : 0);
    uint8_t *to = (uint8_t *)ss + (size_t)b * HM_UNIT_SIZE;
    hm_os_decommit(from, (size_t)(to - from));
    units &= b >= HM_UNITS ? 0u : ~((1u << b) - 1u);
  }
}

static void ss_purge_dirty(hm_superslab *ss) {
  if (!ss->dirty_units) return;
  decommit_units(ss, ss->dirty_units);
  ss->dirty_units = 0;
}

/* ---- creation and destruction ------------------------------------------------------ */
static hm_superslab *ss_map_new(void) {
  hm_superslab *ss = hm_os_map_aligned(HM_REGION_SIZE, HM_REGION_SIZE, 0);
  if (!ss) return NULL;
  /* Fresh pages are zero: owner NULL, no remote frees, no dirty units. */
  ss->free_units = HM_UNITS_ALL;
  for (unsigned u = 0; u < HM_UNITS; u++) {
    ss->slabs[u].cls = HM_CLASS_NONE;
    ss->slabs[u].head = (uint8_t)u;
  }
  hm_lock(&hm_ss_lock_);
  ss->all_prev = NULL;
  ss->all_next = all_head;
  if (all_head) all_head->all_prev = ss;
  all_head = ss;
  all_count++;
  hm_unlock(&hm_ss_lock_);
  hm_region_set((uintptr_t)ss, HM_REGION_SS);
  return ss;
}

/* Called with hm_ss_lock_ held. */
static void ss_unmap_locked(hm_superslab *ss) {
  if (ss->all_prev) ss->all_prev->all_next = ss->all_next;
  else all_head = ss->all_next;
  if (ss->all_next) ss->all_next->all_prev = ss->all_prev;
  all_count--;
  hm_region_set((uintptr_t)ss, HM_REGION_NONE);
  hm_os_unmap(ss, HM_REGION_SIZE);
}

/* An empty superslab goes to the process-wide cache; beyond its bound the
 * oldest one goes back to the OS. */
static void cache_put(hm_superslab *ss) {
  atomic_store_explicit(&ss->owner, NULL, memory_order_release);
  ss->dirty_since_ms = hm_os_now_ms();
  hm_lock(&hm_ss_lock_);
  list_push(&cache_head, ss);
  cache_count++;
  hm_superslab *victim = NULL;
  if (cache_count > hm_param.ss_cache_max) {
    victim = cache_head;
    while (victim->next) victim = victim->next;
    list_remove(&cache_head, victim);
    cache_count--;
    ss_unmap_locked(victim);
  }
  hm_unlock(&hm_ss_lock_);
}

static hm_superslab *cache_get(void) {
  hm_lock(&hm_ss_lock_);
  hm_superslab *ss = cache_head;
  if (ss) {
    list_remove(&cache_head, ss);
    cache_count--;
  }
  hm_unlock(&hm_ss_lock_);
  return ss;
}

static void heap_add_ss(hm_heap *h, hm_superslab *ss) {
  atomic_store_explicit(&ss->owner, h, memory_order_release);
  list_push(&h->ss_list, ss);
  h->ss_count++;
}

static void heap_remove_ss(hm_heap *h, hm_superslab *ss) {
  list_remove(&h->ss_list, ss);
  h->ss_count--;
}

/* ---- remote frees --------------------------------------------------------------- */
int hm_ss_drain_remote(hm_heap *h, hm_superslab *ss, uint32_t units) {
  uint32_t bits =
      atomic_fetch_and_explicit(&ss->remote_units, ~units, memory_order_acquire) & units;
  int n = 0;
  while (bits) {
    unsigned u = (unsigned)__builtin_ctz(bits);
    bits &= bits - 1;
    hm_slab *s = &ss->slabs[u];
    hm_block *b = atomic_exchange_explicit(&s->remote, NULL, memory_order_acquire);
    while (b) {
      hm_block *next = b->next;
      hm_slab_return_block(h, s, b);
      b = next;
      n++;
    }
  }
  return n;
}

/* ---- adoption of abandoned superslabs ------------------------------------------- */
static void adopt(hm_heap *h, hm_superslab *ss) {
  heap_add_ss(h, ss);
  /* The previous owner's partial lists are gone: start every slab unlisted,
   * take the posted frees, then list what has room. */
  for (unsigned u = 0; u < HM_UNITS; u++) {
    hm_slab *s = &ss->slabs[u];
    if (s->state != HM_SLAB_UNUSED && s->head == u) {
      s->state = HM_SLAB_FULL;
      s->next = s->prev = NULL;
    }
  }
  hm_ss_drain_remote(h, ss, HM_UNITS_ALL);
  for (unsigned u = 0; u < HM_UNITS; u++) {
    hm_slab *s = &ss->slabs[u];
    if (s->state != HM_SLAB_FULL || s->head != u) continue;
    if (s->used == 0) hm_ss_slab_release(h, s);
    else if (s->free || s->bump < s->end) hm_partial_push(h, s);
  }
}

static hm_superslab *abandoned_pop(void) {
  if (!__atomic_load_n(&abandoned_head, __ATOMIC_RELAXED)) return NULL;
  hm_lock(&hm_ss_lock_);
  hm_superslab *ss = abandoned_head;
  if (ss) {
    list_remove(&abandoned_head, ss);
    abandoned_count--;
  }
  hm_unlock(&hm_ss_lock_);
  return ss;
}

void hm_ss_abandon_all(hm_heap *h) {
  hm_superslab *ss;
  while ((ss = h->ss_list) != NULL) {
    heap_remove_ss(h, ss);
    if (ss->free_units == HM_UNITS_ALL && !hm_load_relaxed(&ss->remote_units)) {
      cache_put(ss);
      continue;
    }
    atomic_store_explicit(&ss->owner, HM_OWNER_ABANDONED, memory_order_release);
    hm_lock(&hm_ss_lock_);
    list_push(&abandoned_head, ss);
    abandoned_count++;
    hm_unlock(&hm_ss_lock_);
  }
}

/* ---- slabs ----------------------------------------------------------------------- */
static int find_run(uint32_t free_units, unsigned span) {
  uint32_t m = free_units;
  for (unsigned i = 1; i < span && m; i++) m &= free_units >> i;
  return m ? __builtin_ctz(m) : -1;
}

static hm_slab *slab_init(hm_superslab *ss, unsigned u, unsigned cls) {
  unsigned span = hm_class_span[cls];
  uint32_t mask = (span >= 32 ? HM_UNITS_ALL : ((1u << span) - 1u)) << u;
  uint8_t *area = (uint8_t *)ss + (size_t)u * HM_UNIT_SIZE;
  uint8_t *area_end = area + (size_t)span * HM_UNIT_SIZE;
  if (u == 0) area += HM_SS_HEADER_SIZE;
  uint32_t bs = hm_class_size[cls];
  uint32_t cap = (uint32_t)((size_t)(area_end - area) / bs);
  for (unsigned i = u; i < u + span; i++) {
    ss->slabs[i].cls = (uint8_t)cls;
    ss->slabs[i].head = (uint8_t)u;
  }
  hm_slab *s = &ss->slabs[u];
  s->free = NULL;
  s->bump = area;
  s->end = area + (size_t)cap * bs;
  s->next = s->prev = NULL;
  s->used = 0;
  s->block_size = bs;
  s->span = (uint8_t)span;
  s->capacity = cap;
  s->state = HM_SLAB_ACTIVE;
  ss->free_units &= ~mask;
  ss->dirty_units &= ~mask;
  return s;
}

hm_slab *hm_ss_slab_new(hm_heap *h, unsigned cls) {
  unsigned span = hm_class_span[cls];
  for (;;) {
    for (hm_superslab *ss = h->ss_list; ss; ss = ss->next) {
      int u = find_run(ss->free_units, span);
      if (u >= 0) return slab_init(ss, (unsigned)u, cls);
    }
    hm_superslab *ss = abandoned_pop();
    if (ss) {
      adopt(h, ss);
      continue;
    }
    ss = cache_get();
    if (!ss) ss = ss_map_new();
    if (!ss) return NULL;
    heap_add_ss(h, ss);
  }
}

void hm_ss_slab_release(hm_heap *h, hm_slab *s) {
  hm_superslab *ss = hm_ss_of_slab(s);
  unsigned u = hm_slab_index(ss, s);
  unsigned span = s->span;
  uint32_t mask = (span >= 32 ? HM_UNITS_ALL : ((1u << span) - 1u)) << u;
  for (unsigned i = u; i < u + span; i++) {
    ss->slabs[i].cls = HM_CLASS_NONE;
    ss->slabs[i].head = (uint8_t)i;
  }
  s->state = HM_SLAB_UNUSED;
  s->span = 0;
  s->free = NULL;
  s->bump = s->end = NULL;
  s->capacity = 0;
  s->used = 0;
  if (!ss->dirty_units) ss->dirty_since_ms = hm_os_now_ms();
  ss->dirty_units |= mask;
  ss->free_units |= mask;
  /* Not retired here: the caller may still be walking this superslab. */
  if (ss->free_units == HM_UNITS_ALL) h->retire_candidate = ss;
}

static int ss_retirable(hm_heap *h, hm_superslab *ss) {
  return ss->free_units == HM_UNITS_ALL && h->ss_count > hm_param.heap_keep_empty_ss &&
         !hm_load_relaxed(&ss->remote_units);
}

/* At a point where nothing walks the superslab: keep one empty superslab per
 * heap, hand further empty ones to the process-wide cache. */
void hm_heap_retire_empty(hm_heap *h) {
  hm_superslab *ss = h->retire_candidate;
  h->retire_candidate = NULL;
  if (ss && hm_load_relaxed(&ss->owner) == h && ss_retirable(h, ss)) {
    heap_remove_ss(h, ss);
    cache_put(ss);
  }
}

static void heap_retire_all_empty(hm_heap *h) {
  hm_superslab *next;
  h->retire_candidate = NULL;
  for (hm_superslab *ss = h->ss_list; ss; ss = next) {
    next = ss->next;
    if (ss_retirable(h, ss)) {
      heap_remove_ss(h, ss);
      cache_put(ss);
    }
  }
}

/* ---- purge ----------------------------------------------------------------------- */
/* Decommit the free units that stayed unused for purge_delay_ms (all of them
 * when forced), in this heap and in the process-wide cache. */
void hm_ss_purge(hm_heap *h, int force) {
  uint64_t now = hm_os_now_ms();
  if (h) {
    heap_retire_all_empty(h);
    for (hm_superslab *ss = h->ss_list; ss; ss = ss->next)
      if (ss->dirty_units && (force || now - ss->dirty_since_ms >= hm_param.purge_delay_ms))
        ss_purge_dirty(ss);
  }
  hm_ss_collect_global(force);
}

size_t hm_ss_collect_global(int force) {
  uint64_t now = hm_os_now_ms();
  size_t released = 0;
  if (force) hm_lock(&hm_ss_lock_);
  else if (pthread_mutex_trylock(&hm_ss_lock_) != 0) return 0;
  for (hm_superslab *ss = cache_head; ss; ss = ss->next) {
    if (ss->dirty_units && (force || now - ss->dirty_since_ms >= hm_param.purge_delay_ms)) {
      released += (size_t)__builtin_popcount(ss->dirty_units) * HM_UNIT_SIZE;
      ss_purge_dirty(ss);
    }
  }
  hm_unlock(&hm_ss_lock_);
  return released;
}

/* malloc_trim: adopt every abandoned superslab (draining its remote frees and
 * releasing what became empty), then purge everything free. */
void hm_heap_collect(hm_heap *h, int force) {
  if (h) {
    hm_superslab *ss;
    while ((ss = abandoned_pop()) != NULL) adopt(h, ss);
    for (hm_superslab *s = h->ss_list; s; s = s->next)
      if (hm_load_relaxed(&s->remote_units)) hm_ss_drain_remote(h, s, HM_UNITS_ALL);
  }
  hm_ss_purge(h, force);
}

/* ---- statistics ------------------------------------------------------------------ */
void hm_ss_usage(hm_usage *u) {
  hm_lock(&hm_ss_lock_);
  u->superslabs = all_count;
  u->abandoned = abandoned_count;
  u->cached_ss = cache_count;
  u->mapped += all_count * HM_REGION_SIZE;
  for (hm_superslab *ss = all_head; ss; ss = ss->all_next) {
    size_t committed_units = (size_t)__builtin_popcount(~ss->free_units | ss->dirty_units);
    u->committed_est += committed_units * HM_UNIT_SIZE;
    for (unsigned i = 0; i < HM_UNITS; i++) {
      hm_slab *s = &ss->slabs[i];
      if (__atomic_load_n(&s->state, __ATOMIC_RELAXED) != HM_SLAB_UNUSED && s->head == i)
        u->in_use += (size_t)__atomic_load_n(&s->used, __ATOMIC_RELAXED) * s->block_size;
    }
  }
  hm_unlock(&hm_ss_lock_);
}

/* ---- fork ---------------------------------------------------------------------------- */
void hm_ss_lock_all(void) { hm_lock(&hm_ss_lock_); }
void hm_ss_unlock_all(void) { hm_unlock(&hm_ss_lock_); }
void hm_ss_reinit_locks(void) { pthread_mutex_init(&hm_ss_lock_, NULL); }
