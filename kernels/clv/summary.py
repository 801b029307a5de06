"""CLV sufficient statistics (frequency, recency, T, monetary value) and pattern compression.

Transactions arrive as dense customer codes and integer period numbers (days, weeks, hours since
the epoch, already floored the way pandas' ``to_period`` floors them). Customers are grouped with
a counting sort (O(n)); each customer's periods are then sorted in place, which is cheap because a
customer has few transactions.
"""
import numpy as np
from numba import njit, prange

from ..common.config import NJIT
from ..common.launch import parallel_kernel
from . import native as _native


@njit(**NJIT)
def scatter_by_customer(codes, periods, amounts, n_customers, has_amount):
    """Counting sort of (period, amount) by customer code, scattering values directly (rows are
    read once, in order). Returns (offsets[n+1], keys[n], vals[n])."""
    n = codes.shape[0]
    offsets = np.zeros(n_customers + 1, dtype=np.int64)
    for i in range(n):
        offsets[codes[i] + 1] += 1
    for c in range(n_customers):
        offsets[c + 1] += offsets[c]
    fill = offsets[:-1].copy()
    keys = np.empty(n, dtype=np.int64)
    vals = np.empty(n, dtype=np.float64)
    for i in range(n):
        c = codes[i]
        pos = fill[c]
        keys[pos] = periods[i]
        vals[pos] = amounts[i] if has_amount else 0.0
        fill[c] = pos + 1
    return offsets, keys, vals


@njit(**NJIT)
def _sort_segment(keys, vals, lo, hi):
    """Sort keys[lo:hi] ascending carrying vals along (insertion sort for short runs)."""
    m = hi - lo
    if m <= 32:
        for i in range(lo + 1, hi):
            k = keys[i]
            v = vals[i]
            j = i - 1
            while j >= lo and keys[j] > k:
                keys[j + 1] = keys[j]
                vals[j + 1] = vals[j]
                j -= 1
            keys[j + 1] = k
            vals[j + 1] = v
    else:
        idx = np.argsort(keys[lo:hi], kind="mergesort")
        ks = keys[lo:hi][idx]
        vs = vals[lo:hi][idx]
        keys[lo:hi] = ks
        vals[lo:hi] = vs


@parallel_kernel
def customer_periods(codes, periods, amounts, n_customers, has_amount):
    """Per-customer BTYD statistics from transactions already restricted to a window.

    Parameters
    ----------
    codes : int64[n]     customer codes in 0..n_customers-1
    periods : int64[n]   period number of each transaction
    amounts : float64[n] (ignored unless has_amount)

    Returns
    -------
    first : int64[n_customers]   first period (or INT64 max for a customer with no rows)
    last : int64[n_customers]    last period
    n_periods : int64[n_customers] distinct periods with a purchase
    monetary : float64[n_customers] mean over repeat periods of the per-period amount sums
        (the first period excluded; 0 when there is no repeat period)
    mean_amount : float64[n_customers] mean of the raw amounts (0 without a row)
    """
    offsets, keys, vals = scatter_by_customer(codes, periods, amounts, n_customers, has_amount)
    first = np.full(n_customers, np.iinfo(np.int64).max, dtype=np.int64)
    last = np.full(n_customers, np.iinfo(np.int64).min, dtype=np.int64)
    n_periods = np.zeros(n_customers, dtype=np.int64)
    monetary = np.zeros(n_customers, dtype=np.float64)
    mean_amount = np.zeros(n_customers, dtype=np.float64)
    for c in prange(n_customers):
        lo = offsets[c]
        hi = offsets[c + 1]
        if hi == lo:
            continue
        total = 0.0   # in row order, before the sort
        for j in range(lo, hi):
            total += vals[j]
        mean_amount[c] = total / (hi - lo)
        _sort_segment(keys, vals, lo, hi)
        first[c] = keys[lo]
        last[c] = keys[hi - 1]
        count = 1
        repeat_sum = 0.0
        for j in range(lo + 1, hi):
            if keys[j] != keys[j - 1]:
                count += 1
            if keys[j] != keys[lo]:
                repeat_sum += vals[j]
        n_periods[c] = count
        if count > 1:
            monetary[c] = repeat_sum / (count - 1)
    return first, last, n_periods, monetary, mean_amount


def summarize(codes, periods, amounts, n_customers, has_amount, n_threads=None):
    """(first, last, n_periods, monetary) of :func:`customer_periods`."""
    return customer_periods(codes, periods, amounts, n_customers, has_amount,
                            n_threads=n_threads)[:4]


def holdout_counts(codes, periods, amounts, n_customers, n_threads=None):
    """Holdout statistics of :func:`customer_periods`: distinct periods per customer and the
    mean of the raw amounts."""
    out = customer_periods(codes, periods, amounts, n_customers, True, n_threads=n_threads)
    return out[2], out[4]


@njit(**NJIT)
def _mix(h):
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xFF51AFD7ED558CCD)
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xC4CEB9FE1A85EC53)
    h ^= h >> np.uint64(33)
    return h


@njit(**NJIT)
def _hash_row(keys, i, k):
    h = np.uint64(0x9E3779B97F4A7C15)
    for j in range(k):
        h = _mix(h ^ keys[i, j])
    return h


@njit(**NJIT)
def unique_patterns(cols):
    """Distinct rows of a float64 (n, k) matrix, by exact bit pattern, with an open-address table.

    Returns (first_row[m], inverse[n], counts[m]) with patterns in first-seen order, so that a
    likelihood over the m patterns weighted by counts equals the one over the n rows. The table
    grows with the number of distinct rows (not of rows) and probes compare against a compact copy
    of the distinct keys, so few distinct patterns stay cache-resident however long the input is.
    """
    n, k = cols.shape
    bits = cols.view(np.uint64)
    size = 1024
    mask = np.uint64(size - 1)
    table = np.full(size, -1, dtype=np.int64)
    cap = 1024
    keys = np.empty((cap, k), dtype=np.uint64)
    first_row = np.empty(cap, dtype=np.int64)
    counts = np.zeros(cap, dtype=np.int64)
    inverse = np.empty(n, dtype=np.int64)
    m = 0
    for i in range(n):
        h = np.uint64(0x9E3779B97F4A7C15)
        for j in range(k):
            h = _mix(h ^ bits[i, j])
        slot = h & mask
        while True:
            p = table[slot]
            if p == -1:
                if m == cap:
                    cap *= 2
                    keys2 = np.empty((cap, k), dtype=np.uint64)
                    keys2[:m] = keys[:m]
                    keys = keys2
                    fr2 = np.empty(cap, dtype=np.int64)
                    fr2[:m] = first_row[:m]
                    first_row = fr2
                    c2 = np.zeros(cap, dtype=np.int64)
                    c2[:m] = counts[:m]
                    counts = c2
                for j in range(k):
                    keys[m, j] = bits[i, j]
                table[slot] = m
                first_row[m] = i
                counts[m] = 1
                inverse[i] = m
                m += 1
                if 2 * m > size:
                    # keep the load factor below 1/2: double the table and reinsert
                    size *= 2
                    mask = np.uint64(size - 1)
                    table = np.full(size, -1, dtype=np.int64)
                    for q in range(m):
                        sl = _hash_row(keys, q, k) & mask
                        while table[sl] != -1:
                            sl = (sl + np.uint64(1)) & mask
                        table[sl] = q
                break
            same = True
            for j in range(k):
                if keys[p, j] != bits[i, j]:
                    same = False
                    break
            if same:
                counts[p] += 1
                inverse[i] = p
                break
            slot = (slot + np.uint64(1)) & mask
    return first_row[:m].copy(), inverse, counts[:m].copy()


def summarize_sorted(codes, periods, amounts, n_customers, has_amount):
    """``summarize`` for rows already in time order: ``native.summarize_sorted_us`` on periods
    (length 1, no cut). One sequential pass, no grouping, compiled ahead of time."""
    return _native.summarize_sorted_us(codes, periods, 1, 0, np.iinfo(np.int64).max, amounts,
                                       n_customers, has_amount)[1:5]


@njit(**NJIT)
def holdout_counts_sorted(codes, periods, amounts, n_customers):
    """``holdout_counts`` for rows in time order (one pass)."""
    counts = np.zeros(n_customers, dtype=np.int64)
    rows = np.zeros(n_customers, dtype=np.int64)
    total = np.zeros(n_customers, dtype=np.float64)
    last = np.full(n_customers, np.iinfo(np.int64).min, dtype=np.int64)
    for i in range(codes.shape[0]):
        c = codes[i]
        if rows[c] == 0 or periods[i] != last[c]:
            counts[c] += 1
            last[c] = periods[i]
        rows[c] += 1
        total[c] += amounts[i]
    mean_amount = np.zeros(n_customers, dtype=np.float64)
    for c in range(n_customers):
        if rows[c] > 0:
            mean_amount[c] = total[c] / rows[c]
    return counts, mean_amount
