# cython: language_level=3
"""The benchmark yardstick: a fixed workload that timings are divided by (bench/regress.py).

Why compiled here rather than borrowed from a library: the first yardstick was ``np.sort`` of 2M
floats; it took 0.24 s in the old baseline's records and 0.03 s in later ones (numpy 2 sorts
float64 with SIMD on AVX2), so every normalized time "regressed" 4-10x with no change to
fastengage. Code we compile ourselves changes
only when we change it (or the C compiler does).

The workload mixes what our kernels spend time on: a dependent floating-point chain (latency of
multiply/add/divide), integer hashing (ALU throughput), and random gathers from a 256 KiB table
(cache). The table is deliberately cache-sized: with a 32 MiB table (the first version) the
time swung 0.056-0.095 s between processes of one quiet run, because whether the kernel gave
the table transparent huge pages decides the TLB misses of random gathers; at 256 KiB five
processes agree within 3%. It is single-threaded and runs without the GIL, so other Python
threads do not perturb it.
"""
from libc.stdint cimport uint64_t, int64_t

import numpy as np


cdef inline uint64_t _splitmix64(uint64_t x) noexcept nogil:
    x = x + <uint64_t>0x9E3779B97F4A7C15
    x = (x ^ (x >> 30)) * <uint64_t>0xBF58476D1CE4E5B9
    x = (x ^ (x >> 27)) * <uint64_t>0x94D049BB133111EB
    return x ^ (x >> 31)


cdef double _work(uint64_t[::1] table, int64_t steps) noexcept nogil:
    cdef uint64_t mask = table.shape[0] - 1
    cdef uint64_t state = 12345, acc = 0
    cdef double x = 0.5, y = 0.0
    cdef int64_t i
    for i in range(steps):
        state = _splitmix64(state)
        acc += table[state & mask]                      # gather: memory
        x = x * 1.0000001 + 1.0 / (3.0 + (x - <double>(<int64_t>x)))  # dependent chain: FP latency
        y += <double>(acc & 1023) * 0.5                 # ALU + conversion
    return x + y + <double>(acc & 0xFFFF)


def make_table():
    """The yardstick's lookup table: 32Ki uint64 (256 KiB), a power of two so indices are masked."""
    return np.arange(1 << 15, dtype=np.uint64) * np.uint64(2654435761)


def run(uint64_t[::1] table, int64_t steps=4_000_000):  # IN: table from make_table()
    """Run the workload once; returns a checksum so the work cannot be optimised away."""
    if table.shape[0] == 0 or (table.shape[0] & (table.shape[0] - 1)) != 0:
        raise ValueError("table length must be a power of two")
    cdef double out
    with nogil:
        out = _work(table, steps)
    return out
