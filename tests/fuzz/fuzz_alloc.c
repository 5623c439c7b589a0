/* fuzz_alloc.c -- fuzz target: bytes -> allocator operations on the prefixed
 * API (hakmem_malloc, hakmem_calloc, ...), over a table of live blocks shared
 * by 1-4 threads, so that threads free and reallocate each other's blocks.
 *
 * Input format (any byte string is valid; extra bytes are ignored):
 *   byte 0          threads - 1 (low two bits)
 *   then records of 4 bytes [op][slot][size lo][size hi]; record r is run by
 *   thread r % threads (at most MAX_RECORDS records).
 *   op bits 0-2: what to do with table slot `slot % SLOTS`:
 *     0 malloc   1 calloc   2 realloc   3 aligned_alloc   4 free
 *     5 usable_size (checks the block, then fills and claims its tail)
 *     6 posix_memalign   7 free_sized
 *     (an allocation into an occupied slot frees the old block first)
 *   op bits 3-4: size range: <= 128, <= 1 KiB, <= 256 KiB, large (to ~1.3 MiB)
 *   op bits 5-7: alignment for 3 and 6: 8 << 2e (8 B .. 128 KiB)
 *
 * Every block carries test_util.h's pattern for a unique id. Before a block
 * is freed or reallocated its bounds (hakmem owns it, the alignment asked
 * for, usable_size >= the bytes in use) and contents (the pattern, or zeros
 * right after calloc) are checked; a failure prints what and aborts, which a
 * fuzzer reports as a crash. The entry point frees everything it allocated
 * before returning.
 *
 * Built two ways (tests/fuzz/CMakeLists.txt): with libFuzzer (clang
 * -fsanitize=fuzzer,address; scripts/sanitize.sh runs it), and with
 * fuzz_replay.c's main(), which runs the entry point over files -- the
 * committed corpus is a CTest regression test. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "test_util.h"
#include "../include/hakmem.h"

#include <pthread.h>
#include <stdatomic.h>

#define SLOTS 64
#define MAX_RECORDS 4096
#define MAX_THREADS 4

typedef struct slot {
  pthread_mutex_t lock;
  uint8_t *p;
  size_t len;      /* bytes that hold the pattern (requested, or usable after op 5) */
  size_t align;    /* alignment the block must have */
  uint64_t id;     /* pattern seed */
} slot;

static slot table[SLOTS];
static _Atomic uint64_t next_id = 1;
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

typedef struct run {
  const uint8_t *rec;
  size_t nrec;
  unsigned threads, self;
} run;

static void table_init(void) {
  for (unsigned i = 0; i < SLOTS; i++) pthread_mutex_init(&table[i].lock, NULL);
}

static __attribute__((noreturn)) void fail(const slot *s, const char *what, size_t detail) {
  fprintf(stderr, "fuzz_alloc: %s (block %p id %llu len %zu align %zu; detail %zu)\n", what,
          (void *)s->p, (unsigned long long)s->id, s->len, s->align, detail);
  abort();
}

static size_t decode_size(uint8_t op, uint16_t v) {
  switch ((op >> 3) & 3) {
  case 0: return v % 129;
  case 1: return v % 1025;
  case 2: return ((size_t)v * 4) % (256 * 1024 + 1);
  default: return 256 * 1024 + 1 + (size_t)v * 16;
  }
}

static size_t decode_align(uint8_t op) { return (size_t)8 << (2 * ((op >> 5) & 7)); }

/* The alignment malloc guarantees: 16 bytes above 8 (hakmem.h, README). */
static size_t natural_align(size_t n) { return n > 8 ? 16 : 8; }

/* Bounds of the block in s: hakmem's, aligned, usable_size large enough. */
static void check_bounds(const slot *s) {
  if (!hakmem_owns(s->p)) fail(s, "block not owned by hakmem", 0);
  if ((uintptr_t)s->p % s->align) fail(s, "block misaligned", (uintptr_t)s->p % s->align);
  size_t usable = hakmem_usable_size(s->p);
  if (usable < s->len) fail(s, "usable_size below the size in use", usable);
}

/* Bounds and contents of the live block in s (lock held). */
static void check(const slot *s) {
  check_bounds(s);
  size_t bad = pat_check(s->p, s->len, s->id);
  if (bad != (size_t)-1) fail(s, "block contents changed", bad);
}

/* A fresh block p of n bytes with alignment `align` into the empty slot s;
 * `zeroed`: from calloc, so it must read as zeros. */
static void adopt(slot *s, void *p, size_t n, size_t align, int zeroed) {
  s->p = p;
  s->len = n;
  s->align = align;
  s->id = atomic_fetch_add_explicit(&next_id, 1, memory_order_relaxed);
  check_bounds(s);
  for (size_t i = 0; zeroed && i < n; i++)
    if (s->p[i]) fail(s, "calloc block not zero", i);
  pat_fill(s->p, n, s->id);
}

static void release(slot *s, int sized) {
  if (!s->p) return;
  check(s);
  if (sized)
    hakmem_free_sized(s->p, s->len);
  else
    hakmem_free(s->p);
  s->p = NULL;
}

static void op_run(const uint8_t *r) {
  uint8_t op = r[0];
  slot *s = &table[r[1] % SLOTS];
  size_t n = decode_size(op, (uint16_t)(r[2] | r[3] << 8));
  size_t align = decode_align(op);
  void *p;
  pthread_mutex_lock(&s->lock);
  switch (op & 7) {
  case 0:
    release(s, 0);
    if ((p = hakmem_malloc(n))) adopt(s, p, n, natural_align(n), 0);
    break;
  case 1: {
    size_t count = 1 + n % 7, each = n / count;   /* calloc(count, each) */
    release(s, 0);
    if ((p = hakmem_calloc(count, each))) adopt(s, p, count * each, natural_align(count * each), 1);
    break;
  }
  case 2:
    if (!s->p) {
      if ((p = hakmem_realloc(NULL, n))) adopt(s, p, n, natural_align(n), 0);
      break;
    }
    check(s);
    p = hakmem_realloc(s->p, n);
    if (n == 0) {   /* glibc semantics: freed, NULL */
      if (p) fail(s, "realloc(p, 0) did not return NULL", 0);
      s->p = NULL;
      break;
    }
    if (!p) break;   /* out of memory: the old block stays */
    s->p = p;
    s->len = n < s->len ? n : s->len;   /* the prefix that must have moved along */
    s->align = natural_align(n);
    check(s);
    s->len = n;
    pat_fill(s->p, n, s->id);
    break;
  case 3:
    release(s, 0);
    if ((p = hakmem_aligned_alloc(align, n))) adopt(s, p, n, align, 0);
    break;
  case 4:
    release(s, 0);
    break;
  case 5:
    if (s->p) {   /* the whole usable size is the program's to use */
      check(s);
      s->len = hakmem_usable_size(s->p);
      pat_fill(s->p, s->len, s->id);
    }
    break;
  case 6:
    release(s, 0);
    if (hakmem_posix_memalign(&p, align, n) == 0) adopt(s, p, n, align, 0);
    break;
  case 7:
    release(s, 1);
    break;
  }
  pthread_mutex_unlock(&s->lock);
}

static void *thread_main(void *arg) {
  run *r = arg;
  for (size_t i = r->self; i < r->nrec; i += r->threads) op_run(r->rec + 4 * i);
  return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  (void)test_failures_;
  if (size == 0) return 0;
  pthread_once(&table_once, table_init);
  unsigned threads = 1 + (data[0] & 3);
  size_t nrec = (size - 1) / 4;
  if (nrec > MAX_RECORDS) nrec = MAX_RECORDS;
  run runs[MAX_THREADS];
  pthread_t tid[MAX_THREADS];
  for (unsigned t = 0; t < threads; t++)
    runs[t] = (run){.rec = data + 1, .nrec = nrec, .threads = threads, .self = t};
  for (unsigned t = 1; t < threads; t++)
    if (pthread_create(&tid[t], NULL, thread_main, &runs[t])) {
      fprintf(stderr, "fuzz_alloc: pthread_create failed\n");
      abort();
    }
  thread_main(&runs[0]);
  for (unsigned t = 1; t < threads; t++) pthread_join(tid[t], NULL);
  for (unsigned i = 0; i < SLOTS; i++) release(&table[i], 0);
  return 0;
}
