"""One-pass RFM over a whole in-memory table, parallel over customers.

The streaming state (``kernels/rfm.py``) needs hash sets of (customer, day) and (customer, order)
pairs because events may keep coming. A whole table does not: after aggregating the records we
group each customer's purchase days (and orders) together with a counting sort and count the
distinct values per customer, which touches memory far less randomly than a 20M-key hash set.

Work is split into ``n_lanes`` lanes by ``customer_code % n_lanes``: each lane reads every row but
only writes the records of its own customers, so the parallel loops need no atomics.
"""
import numpy as np
from numba import njit, prange

from ._config import NJIT, NJIT_PARALLEL
from .rfm import INT64_MAX, NO_DAY, US_PER_DAY, STATE_DTYPE


@njit(**NJIT)
def _aggregate_lane(state, codes, times, amounts, limit_us, exclude_returns, days_sorted,
                    lane, n_lanes):
    """The rows of the customers with ``code % n_lanes == lane``; returns (n_after, n_returns)."""
    n_after = 0
    n_ret = 0
    for i in range(codes.shape[0]):
        c = codes[i]
        if c % n_lanes != lane:
            continue
        t = times[i]
        if t > limit_us:
            n_after += 1
            continue
        rec = state[c]
        a = amounts[i]
        if a < 0.0:
            n_ret += 1
            rec.return_rows += 1  # counted in every mode: it tells who had returns only
            if not exclude_returns:
                rec.return_sum += a
            continue
        rec.purchase_rows += 1
        rec.purchase_sum += a
        if t < rec.first_us:
            rec.first_us = t
        if t > rec.last_us:
            rec.last_us = t
        if days_sorted:
            day = np.int32(t // US_PER_DAY)
            if day != rec.last_day:
                rec.purchase_days += 1
                rec.last_day = day
    return n_after, n_ret


@njit(**NJIT_PARALLEL)
def aggregate(state,       # OUT records, one per customer code, initialised by new_state
              codes,       # IN  int64[n] customer code of each row, 0 <= code < len(state)
              times,       # IN  int64[n] µs UTC
              amounts,     # IN  float64[n]
              limit_us,    # IN  rows with time > limit_us are skipped
              exclude_returns,  # IN bool
              days_sorted,  # IN  bool: rows are in time order, count days on the fly
              n_lanes):    # IN  number of parallel lanes (threads)
    """Fold all rows into ``state``; returns (n_after_limit, n_returns)."""
    counts = np.zeros((n_lanes, 2), np.int64)
    for lane in prange(n_lanes):
        n_after, n_ret = _aggregate_lane(state, codes, times, amounts, limit_us, exclude_returns,
                                         days_sorted, lane, n_lanes)
        counts[lane, 0] = n_after
        counts[lane, 1] = n_ret
    return counts[:, 0].sum(), counts[:, 1].sum()


@njit(**NJIT)
def purchase_offsets(state):
    """CSR offsets of each customer's purchase rows: ``offsets[c+1] - offsets[c] = purchase_rows``."""
    offsets = np.empty(state.shape[0] + 1, np.int64)
    offsets[0] = 0
    for c in range(state.shape[0]):
        offsets[c + 1] = offsets[c] + state[c].purchase_rows
    return offsets


@njit(**NJIT)
def _group_lane(codes, times, amounts, orders, has_order, need_days, limit_us, cursor, days,
                grouped_orders, lane, n_lanes):
    for i in range(codes.shape[0]):
        c = codes[i]
        if c % n_lanes != lane:
            continue
        t = times[i]
        if t > limit_us or amounts[i] < 0.0:
            continue
        k = cursor[c]
        cursor[c] = k + 1
        if need_days:
            days[k] = np.int32(t // US_PER_DAY)
        if has_order:
            grouped_orders[k] = orders[i]


@njit(**NJIT_PARALLEL)
def group_purchases(codes, times, amounts, orders, has_order, need_days, limit_us, offsets,
                    n_lanes):
    """Counting-sort the purchase rows by customer: each customer's days and orders, contiguous.

    Returns (days int32[m], orders int64[m] or empty), m = total purchase rows.
    """
    m = offsets[offsets.shape[0] - 1]
    days = np.empty(m if need_days else 0, np.int32)
    grouped_orders = np.empty(m if has_order else 0, np.int64)
    cursor = offsets[:-1].copy()
    for lane in prange(n_lanes):
        _group_lane(codes, times, amounts, orders, has_order, need_days, limit_us, cursor, days,
                    grouped_orders, lane, n_lanes)
    return days, grouped_orders


@njit(**NJIT)
def _count_distinct(values, lo, hi):
    """Number of distinct values in ``values[lo:hi]``; sorts that slice in place."""
    if hi - lo <= 1:
        return hi - lo
    if hi - lo <= 32:
        for i in range(lo + 1, hi):  # insertion sort: most customers have few rows
            v = values[i]
            j = i - 1
            while j >= lo and values[j] > v:
                values[j + 1] = values[j]
                j -= 1
            values[j + 1] = v
    else:
        values[lo:hi] = np.sort(values[lo:hi])
    distinct = 1
    for i in range(lo + 1, hi):
        if values[i] != values[i - 1]:
            distinct += 1
    return distinct


@njit(**NJIT_PARALLEL)
def count_distinct(state, offsets, days, orders, need_days, has_order):
    """Fill ``purchase_days`` and ``frequency`` of every record from the grouped values."""
    for c in prange(state.shape[0]):
        lo = offsets[c]
        hi = offsets[c + 1]
        if need_days:
            state[c].purchase_days = _count_distinct(days, lo, hi)
        if has_order:
            state[c].frequency = _count_distinct(orders, lo, hi)


@njit(**NJIT)
def dense_codes(values, base):
    """``values - base`` as int64 codes (ids already dense enough to index records directly)."""
    out = np.empty(values.shape[0], np.int64)
    for i in range(values.shape[0]):
        out[i] = values[i] - base
    return out


__all__ = ["aggregate", "purchase_offsets", "group_purchases", "count_distinct", "dense_codes",
           "STATE_DTYPE", "INT64_MAX", "NO_DAY"]
