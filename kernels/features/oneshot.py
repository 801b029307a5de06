"""One-pass RFM over a whole in-memory table: radix-partitioned by customer, parallel.

With a million customers the 64-byte records (64 MB) do not fit in cache, and folding rows
straight into them costs a cache miss per row. Instead the rows are first scattered into
partitions of at most ``2**shift`` consecutive customer codes (a sequential, streaming write),
then each partition is folded into its records while they sit in L2, and — for unsorted input or
when orders are given — each customer's purchase days/orders are grouped by a local counting
sort and their distinct values counted. No hash set is needed because the table is complete; the
streaming state (``kernels/rfm.py``) keeps pair sets instead.

Both phases are parallel: the scatter over row chunks (stable, so rows keep their order inside a
partition), the folding over partitions (disjoint records, so no atomics).
"""
import numpy as np
from numba import njit, prange

from ..common.config import NJIT
from ..common.launch import parallel_kernel
from ..common.scan import is_sorted  # noqa: F401  (re-exported for the RFM API)
from .rfm import US_PER_DAY, fold_amount, init_record

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


@njit(**NJIT)
def _histogram(codes, lo, hi, shift, counts):
    for i in range(lo, hi):
        counts[codes[i] >> shift] += 1


@njit(**NJIT)
def _scatter(codes, times, amounts, orders, has_order, lo, hi, shift, cursor,
             out_local, out_times, out_amounts, out_orders):
    mask = (np.int64(1) << shift) - 1
    for i in range(lo, hi):
        c = codes[i]
        k = cursor[c >> shift]
        cursor[c >> shift] = k + 1
        out_local[k] = np.int32(c & mask)
        out_times[k] = times[i]
        out_amounts[k] = amounts[i]
        if has_order:
            out_orders[k] = orders[i]


@njit(**NJIT)
def partition_starts(hist):
    """Scatter cursors and partition offsets from per-chunk histograms ``hist[chunk, part]``.

    Partition-major, chunk-minor starts: chunk t's rows of a partition follow chunk t-1's, so
    the scatter is stable and time order inside a partition is kept.
    Returns (cursors int64[n_chunks, n_parts], part_offsets int64[n_parts + 1]).
    """
    n_chunks, n_parts = hist.shape
    cursors = np.empty((n_chunks, n_parts), np.int64)
    part_offsets = np.empty(n_parts + 1, np.int64)
    pos = 0
    for p in range(n_parts):
        part_offsets[p] = pos
        for t in range(n_chunks):
            cursors[t, p] = pos
            pos += hist[t, p]
    part_offsets[n_parts] = pos
    return cursors, part_offsets


@parallel_kernel
def partition(codes,      # IN  int64[n] customer codes, 0 <= code < n_codes
              times,      # IN  int64[n] µs UTC
              amounts,    # IN  float64[n]
              orders,     # IN  int64[n] order codes (or empty when not has_order)
              has_order,  # IN  bool
              n_codes,    # IN  number of customer codes
              shift,      # IN  log2 customers per partition
              n_chunks):  # IN  parallel row chunks
    """Stable scatter of the rows into partitions of ``2**shift`` customer codes.

    Returns
    -------
    part_offsets : int64[n_parts + 1]   rows of partition p are [part_offsets[p], part_offsets[p+1])
    local : int32[n]                    code - (p << shift)
    times, amounts, orders : permuted copies of the inputs (orders empty when not has_order)
    """
    n = codes.shape[0]
    n_parts = ((max(n_codes, 1) - 1) >> shift) + 1
    hist = np.zeros((n_chunks, n_parts), np.int64)
    step = (n + n_chunks - 1) // n_chunks
    for t in prange(n_chunks):
        _histogram(codes, min(n, t * step), min(n, (t + 1) * step), shift, hist[t])
    cursors, part_offsets = partition_starts(hist)
    out_local = np.empty(n, np.int32)
    out_times = np.empty(n, np.int64)
    out_amounts = np.empty(n, np.float64)
    out_orders = np.empty(n if has_order else 0, np.int64)
    for t in prange(n_chunks):
        _scatter(codes, times, amounts, orders, has_order, min(n, t * step), min(n, (t + 1) * step),
                 shift, cursors[t], out_local, out_times, out_amounts, out_orders)
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


@njit(**NJIT)
def _count_distinct(values, lo, hi):
    """Number of distinct values in ``values[lo:hi]``; sorts that slice in place."""
    if hi - lo <= 1:
        return hi - lo
    sort_slice(values, lo, hi)
    distinct = 1
    for i in range(lo + 1, hi):
        if values[i] != values[i - 1]:
            distinct += 1
    return distinct


#: Largest per-partition day bitmap (uint64 words): 2 MiB, which stays in the core's cache.
BITMAP_WORDS = 1 << 18


def day_words(times_min: int, times_max: int) -> tuple:
    """(first day, uint64 words per customer) of the day bitmaps that cover [times_min, times_max]."""
    first = times_min // int(US_PER_DAY)
    return first, (times_max // int(US_PER_DAY) - first) // 64 + 1


@njit(**NJIT)
def fold_partition(state, base, n_local, lo, hi, local, times, amounts, orders, has_order,
                    limit_us, exclude_returns, days_sorted, first_day, words):
    """Fold rows [lo, hi) (customers base..base+n_local-1) into ``state``.

    One partition of :func:`fold`; on a small input the API calls it once for all rows
    (``base=0``, ``local`` = the codes as int32): no parallel kernel to compile for it.
    The partition's records are made empty first (``state`` may be ``uninitialised_state``).

    Distinct purchase days are counted on the fly when the rows are in time order, else with a
    bitmap of days per customer when it fits in cache, else after a counting sort by customer.
    Returns (rows after the cut, return rows).
    """
    for c in range(n_local):  # records from uninitialised_state: made empty here, in cache
        init_record(state[base + c])
    use_bitmap = not days_sorted and n_local * words <= BITMAP_WORDS
    bitmap = np.zeros(n_local * words if use_bitmap else 0, np.uint64)
    n_after = 0
    n_ret = 0
    for i in range(lo, hi):
        t = times[i]
        if t > limit_us:
            n_after += 1
            continue
        c = local[i]
        rec = state[base + c]
        if not fold_amount(rec, t, amounts[i], exclude_returns):
            n_ret += 1
            continue
        if days_sorted:
            day = np.int32(t // US_PER_DAY)
            if day != rec.last_day:
                rec.purchase_days += 1
                rec.last_day = day
        elif use_bitmap:
            offset = t // US_PER_DAY - first_day
            w = c * words + (offset >> 6)
            bit = np.uint64(1) << np.uint64(offset & 63)
            if not (bitmap[w] & bit):
                bitmap[w] |= bit
                rec.purchase_days += 1
    days_done = days_sorted or use_bitmap
    if days_done and not has_order:
        return n_after, n_ret
    # Group this partition's purchase rows by customer (counting sort) and count distinct
    # days and/or orders per customer, all within cache.
    offsets = np.empty(n_local + 1, np.int64)
    offsets[0] = 0
    for c in range(n_local):
        offsets[c + 1] = offsets[c] + state[base + c].purchase_rows
    m = offsets[n_local]
    cursor = offsets[:-1].copy()
    days = np.empty(0 if days_done else m, np.int64)  # int64 like orders: one _count_distinct
    grouped = np.empty(m if has_order else 0, np.int64)
    for i in range(lo, hi):
        if times[i] > limit_us or amounts[i] < 0.0:
            continue
        c = local[i]
        k = cursor[c]
        cursor[c] = k + 1
        if not days_done:
            days[k] = times[i] // US_PER_DAY
        if has_order:
            grouped[k] = orders[i]
    for c in range(n_local):
        if not days_done:
            state[base + c].purchase_days = _count_distinct(days, offsets[c], offsets[c + 1])
        if has_order:
            state[base + c].frequency = _count_distinct(grouped, offsets[c], offsets[c + 1])
    return n_after, n_ret


def code_bases(n_codes: int, shift: int) -> np.ndarray:
    """First customer code of each partition made by :func:`partition` (and ``n_codes`` last)."""
    n_parts = ((max(n_codes, 1) - 1) >> shift) + 1
    return np.minimum(np.arange(n_parts + 1, dtype=np.int64) << shift, n_codes)


@parallel_kernel
def fold(state,          # OUT records (uninitialised_state or new_state), one per customer code
         part_offsets,   # IN  int64[n_parts + 1] row range of each partition
         local, times, amounts, orders,  # IN  partitioned rows (local = code - bases[p])
         bases,          # IN  int64[n_parts + 1] partition p owns codes [bases[p], bases[p+1])
         has_order,      # IN  bool
         limit_us,       # IN  rows with time > limit_us are skipped
         exclude_returns,  # IN bool
         days_sorted,    # IN  bool: rows are in time order, so days are counted on the fly
         first_day,      # IN  day_words(min time, max time): first day of the day bitmaps
         words):         # IN  ... and their uint64 words per customer
    """Fold every partition into ``state``; returns (rows after the cut, return rows).

    Partitions come from :func:`partition` (``bases = code_bases(n_codes, shift)``) or from
    :func:`fastengage.kernels.features.hashed.encode_partitions`.
    """
    n_parts = part_offsets.shape[0] - 1
    counts = np.zeros((n_parts, 2), np.int64)
    for p in prange(n_parts):
        base = bases[p]
        n_local = bases[p + 1] - base
        a, r = fold_partition(state, base, n_local, part_offsets[p], part_offsets[p + 1], local,
                              times, amounts, orders, has_order, limit_us, exclude_returns,
                              days_sorted, first_day, words)
        counts[p, 0] = a
        counts[p, 1] = r
    n_after = 0
    n_ret = 0
    for p in range(n_parts):
        n_after += counts[p, 0]
        n_ret += counts[p, 1]
    return n_after, n_ret
