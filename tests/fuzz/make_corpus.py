#!/usr/bin/env python3
"""make_corpus.py -- writes the seed corpus of fuzz_alloc (tests/fuzz/corpus/).

Each seed is a byte string in fuzz_alloc.c's input format: one byte of
thread count, then 4-byte records [op][slot][size lo][size hi]. The seeds are
deterministic (a fixed LCG, no randomness from the system), each aimed at one
part of the allocator, so that the fuzzer starts from inputs that already
reach it. Run from anywhere: python3 tests/fuzz/make_corpus.py
"""
import os

MALLOC, CALLOC, REALLOC, ALIGNED, FREE, USABLE, POSIX, FREE_SIZED = range(8)
TINY, SMALL, MEDIUM, LARGE = range(4)


def rec(op, slot, v, size_range=TINY, align_exp=0):
    return bytes([op | size_range << 3 | align_exp << 5, slot & 255, v & 255, (v >> 8) & 255])


class Lcg:
    def __init__(self, seed):
        self.x = seed

    def next(self):
        self.x = (self.x * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        return self.x >> 33


def seed(threads, records):
    return bytes([threads - 1]) + b"".join(records)


def mixed(threads, n, seed_value, ranges):
    r = Lcg(seed_value)
    return seed(threads, [rec(r.next() % 8, r.next() % 64, r.next() % 65536,
                              ranges[r.next() % len(ranges)], r.next() % 8) for _ in range(n)])


SEEDS = {
    "01-tiny-churn": seed(1, [rec(MALLOC if i % 3 else FREE, i % 16, i * 37) for i in range(300)]),
    "02-calloc-realloc-ladder": seed(1, [rec(CALLOC, 0, 24)] +
                                     [rec(REALLOC, 0, 40 * i, SMALL if i < 20 else MEDIUM) for i in range(1, 60)] +
                                     [rec(REALLOC, 0, 0)]),
    "03-aligned-alloc": seed(1, [rec(ALIGNED, i, 1 + i * 13, i % 3, i % 8) for i in range(64)] +
                            [rec(FREE, i, 0) for i in range(64)]),
    "04-posix-memalign-large": seed(1, [rec(POSIX, i, i * 911, LARGE if i % 2 else MEDIUM, 4 + i % 4)
                                       for i in range(24)]),
    "05-cross-thread-tiny": seed(4, [rec(MALLOC if (i // 4) % 2 == 0 else FREE, (i * 5) % 64, i)
                                    for i in range(800)]),
    "06-cross-thread-medium": seed(4, [rec(MALLOC if (i // 4) % 2 == 0 else REALLOC, (i * 3) % 64,
                                         i * 97, MEDIUM) for i in range(400)]),
    "07-large-realloc": seed(2, [rec(REALLOC, i % 4, i * 1000, LARGE if i % 3 else MEDIUM)
                                for i in range(40)]),
    "08-usable-tail": seed(1, [r for i in range(40) for r in
                              (rec(MALLOC, i, i * 29, i % 3), rec(USABLE, i, 0))] +
                           [rec(REALLOC, i, i * 61, (i + 1) % 3) for i in range(40)]),
    "09-free-sized": seed(2, [r for i in range(100) for r in
                             (rec(MALLOC, i % 32, i * 7, i % 3), rec(FREE_SIZED, (i + 16) % 32, 0))]),
    "10-realloc-null-zero": seed(1, [r for i in range(50) for r in
                                    (rec(REALLOC, i % 8, i * 3), rec(REALLOC, i % 8, 0))]),
    "11-mixed-one-thread": mixed(1, 1000, 11, [TINY, SMALL, MEDIUM]),
    "12-mixed-four-threads": mixed(4, 1000, 12, [TINY, SMALL, MEDIUM, LARGE]),
}

if __name__ == "__main__":
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
    os.makedirs(out, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    print(f"wrote {len(SEEDS)} seeds to {out}")
