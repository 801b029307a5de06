"""One-pass RFM over a whole in-memory table: radix-partitioned by customer, parallel.

With a million customers the 64-byte records (64 MB) do not fit in cache, and folding rows
straight into them costs a cache miss per row. Instead the rows are first scattered into
partitions of at most ``2**shift`` consecutive customer codes (a sequential, streaming write),
then each partition is folded into its records while they sit in L2, and — for unsorted input or
when orders are given — each customer's purchase days/orders are grouped by a local counting
sort and their distinct values counted. No hash set is needed because the table is complete; the
streaming state (``kernels/rfm.py``) keeps pair sets instead.

Both phases are parallel: the scatter over row chunks (stable, so rows keep their order inside a
partition), the folding over partitions (disjoint records, so no atomics). Both are compiled
ahead of time (Cython: the scatter in ``partition_native.pyx``, the fold in ``fold_native.pyx``),
so no call, small or large, compiles a Numba kernel on a cold start (#11).
"""
import numpy as np
from numba import njit

from ..common.config import NJIT
from ..common.launch import resolve_threads, run_threaded
from . import fold_native as _native
from . import partition_native as _partition
from .fold_native import is_sorted  # noqa: F401  (re-exported for the RFM API)
from .rfm import US_PER_DAY

#: Customers per partition: 2**13 records of 64 bytes = 512 KiB, which stays in L2.
MIN_SHIFT = 13
#: Upper bound on partitions, so the scatter keeps few enough write streams.
MAX_PARTITIONS = 2048


def partition_shift(n_codes: int) -> int:
    """log2 of the customers per partition for ``n_codes`` customers."""
    shift = MIN_SHIFT
    while ((max(n_codes, 1) - 1) >> shift) + 1 > MAX_PARTITIONS:
        shift += 1
    return shift


def partition(codes,      # IN  int64[n] customer codes, 0 <= code < n_codes
              times,      # IN  int64[n] µs UTC
              amounts,    # IN  float64[n]
              orders,     # IN  int64[n] order codes (or empty when not has_order)
              has_order,  # IN  bool
              n_codes,    # IN  number of customer codes
              shift,      # IN  log2 customers per partition
              n_chunks,   # IN  row chunks of the plan (results do not depend on it)
              n_threads=None):
    """Stable scatter of the rows into partitions of ``2**shift`` customer codes.

    Returns
    -------
    part_offsets : int64[n_parts + 1]   rows of partition p are [part_offsets[p], part_offsets[p+1])
    local : int32[n]                    code - (p << shift)
    times, amounts, orders : permuted copies of the inputs (orders empty when not has_order)
    """
    codes = np.ascontiguousarray(codes, np.int64)
    n = codes.shape[0]
    n_chunks = max(1, int(n_chunks))
    n_parts = ((max(n_codes, 1) - 1) >> shift) + 1
    hist = np.zeros((n_chunks, n_parts), np.int64)
    step = (n + n_chunks - 1) // n_chunks
    workers = min(resolve_threads(n_threads), n_chunks)
    next_chunk = np.zeros(1, np.int64)
    run_threaded(lambda: _partition.code_histogram_worker(codes, shift, step, hist, next_chunk),
                 workers)
    cursors, part_offsets = _partition.partition_starts(hist)
    out_local = np.empty(n, np.int32)
    out_times = np.empty(n, np.int64)
    out_amounts = np.empty(n, np.float64)
    out_orders = np.empty(n if has_order else 0, np.int64)
    args = (codes, np.ascontiguousarray(times, np.int64), np.ascontiguousarray(amounts, np.float64),
            np.ascontiguousarray(orders, np.int64), bool(has_order), shift, step, cursors,
            out_local, out_times, out_amounts, out_orders, np.zeros(1, np.int64))
    run_threaded(lambda: _partition.code_scatter_worker(*args), workers)
    return part_offsets, out_local, out_times, out_amounts, out_orders


@njit(**NJIT)
def sort_slice(values, lo, hi):
    """Sort ``values[lo:hi]`` in place: insertion sort for the few rows most customers have,
    else heapsort. A small kernel of our own rather than ``np.sort``, whose quicksort is a dozen
    specialisations to compile on a first call (#11); one sift loop serves both heap phases."""
    if hi - lo <= 32:
        for i in range(lo + 1, hi):
            v = values[i]
            j = i - 1
            while j >= lo and values[j] > v:
                values[j + 1] = values[j]
                j -= 1
            values[j + 1] = v
        return
    start = (hi - lo) // 2
    end = hi - lo
    while end > 1:
        if start > 0:  # building the heap: sift every inner node, last first
            start -= 1
            root = start
        else:  # taking the largest out: it goes to the end, the last leaf is sifted from the root
            end -= 1
            values[lo], values[lo + end] = values[lo + end], values[lo]
            root = 0
        while True:
            child = 2 * root + 1
            if child >= end:
                break
            if child + 1 < end and values[lo + child] < values[lo + child + 1]:
                child += 1
            if values[lo + root] >= values[lo + child]:
                break
            values[lo + root], values[lo + child] = values[lo + child], values[lo + root]
            root = child


#: Largest per-partition day bitmap (uint64 words): 2 MiB, which stays in the core's cache.
BITMAP_WORDS = 1 << 18


def day_words(times_min: int, times_max: int) -> tuple:
    """(first day, uint64 words per customer) of the day bitmaps that cover [times_min, times_max]."""
    first = times_min // int(US_PER_DAY)
    return first, (times_max // int(US_PER_DAY) - first) // 64 + 1


def code_bases(n_codes: int, shift: int) -> np.ndarray:
    """First customer code of each partition made by :func:`partition` (and ``n_codes`` last)."""
    n_parts = ((max(n_codes, 1) - 1) >> shift) + 1
    return np.minimum(np.arange(n_parts + 1, dtype=np.int64) << shift, n_codes)


def fold(state,          # OUT records (uninitialised_state or new_state), one per customer code
         part_offsets,   # IN  int64[n_parts + 1] row range of each partition
         local, times, amounts, orders,  # IN  partitioned rows (local = code - bases[p], int32)
         bases,          # IN  int64[n_parts + 1] partition p owns codes [bases[p], bases[p+1])
         has_order,      # IN  bool
         limit_us,       # IN  rows with time > limit_us are skipped
         exclude_returns,  # IN bool
         days_sorted,    # IN  bool: rows are in time order, so days are counted on the fly
         first_day,      # IN  day_words(min time, max time): first day of the day bitmaps
         words,          # IN  ... and their uint64 words per customer
         n_threads=None):
    """Fold every partition into ``state`` (each partition's records made empty first);
    returns (rows after the cut, return rows).

    Partitions come from :func:`partition` (``bases = code_bases(n_codes, shift)``) or from
    :func:`fastengage.kernels.features.hashed.encode_partitions`; a small input is one
    partition (``part_offsets = [0, rows]``, ``bases = [0, customers]``). The loop is
    ``fold_native.fold_worker``, compiled ahead of time (no JIT on a first call, #11); each
    partition is folded by one thread, so the records never depend on ``n_threads``.
    """
    n_parts = len(part_offsets) - 1
    counts = np.zeros((n_parts, 2), np.int64)

    def contiguous(values, dtype):
        return np.ascontiguousarray(values, dtype)

    args = (state, contiguous(part_offsets, np.int64), contiguous(local, np.int32),
            contiguous(times, np.int64), contiguous(amounts, np.float64),
            contiguous(orders, np.int64), contiguous(bases, np.int64), bool(has_order),
            int(limit_us), bool(exclude_returns), bool(days_sorted), int(first_day), int(words),
            BITMAP_WORDS)
    workers = min(resolve_threads(n_threads), n_parts)
    tickets = list(range(workers))  # worker t of T folds partitions t, t + T, ... (list.pop
    # holds the GIL, so each worker takes a different t)
    run_threaded(lambda: _native.fold_worker(*args, tickets.pop(), workers, counts), workers)
    return int(counts[:, 0].sum()), int(counts[:, 1].sum())
