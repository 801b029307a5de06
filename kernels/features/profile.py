"""Customer-profile kernels: a stable counting sort of the rows by customer, then one fold per
customer over its slice of rows (issue #15.1).

Times are int64 microseconds UTC, days ``floor(us / 86_400e6)``. A row with ``amount >= 0`` is a
purchase, ``amount < 0`` a return (as in the RFM kernels). Every output of a customer is computed
by one thread from that customer's rows, so results are bit-identical for any thread count; and
no output depends on the order of the rows: every sum of amounts (monetary total, spend and
returns per window, the trend's previous period, spend per channel) is an exact fixed-point sum
as in ``rfm.py`` (integer additions commute), read out correctly rounded; the category entropy
adds its terms in the order of their counts, not of the category codes (which are numbered in
first-seen order); ``last_channel`` breaks a tie of times by the channel's rank. Optional columns (orders, items, categories, channels) are passed as empty arrays
when absent, so one compiled specialisation serves every call.
"""
import math

import numpy as np
from numba import njit, prange

from ..common.config import NJIT
from ..common.launch import parallel_kernel
from .oneshot import partition_starts, sort_slice
from .rfm import STATE_DTYPE, add_money, fixed_words, money_value

US_PER_DAY = np.int64(86_400_000_000)
INT64_MAX = np.iinfo(np.int64).max
INT64_MIN = np.iinfo(np.int64).min

# Columns of the integer output matrix (one row per customer code).
I_FIRST = 0
I_LAST = 1
I_RECENCY = 2
I_TENURE = 3
I_FREQUENCY = 4
I_DAYS = 5
I_PURCHASE_ROWS = 6
I_RETURN_ROWS = 7
I_DISTINCT_ITEMS = 8
I_DISTINCT_CATEGORIES = 9
I_N_CHANNELS = 10
I_LAST_CHANNEL = 11
I_ORDERS_PREV = 12
I_LAST_GAP = 13
N_INT = 14
#: then per window w: orders, purchase days, return rows at N_INT + 3 * w + (0, 1, 2)
INT_PER_WINDOW = 3

# Columns of the float output matrix.
F_MONETARY_TOTAL = 0
F_MONETARY_MEAN = 1
F_GAP_MEAN = 2
F_GAP_STD = 3
F_OVERDUE = 4
F_SPEND_PREV = 5
F_SPEND_TREND = 6
F_ORDERS_TREND = 7
F_ITEMS_PER_ORDER = 8
F_TOP_CATEGORY_SHARE = 9
F_CATEGORY_ENTROPY = 10
N_FLOAT = 11
#: then per window w: spend, return amount at N_FLOAT + 2 * w + (0, 1)
FLOAT_PER_WINDOW = 2

_RUN = 16  # insertion-sorted run length of the merge sort


# ---- stable counting sort of rows by customer code ---------------------------------------------
@parallel_kernel
def _count_chunks(codes, times, limit_us, n_codes, bounds, counts):
    for c in prange(bounds.shape[0] - 1):
        for i in range(bounds[c], bounds[c + 1]):
            if times[i] <= limit_us:
                counts[c, codes[i]] += 1


@parallel_kernel
def _scatter_chunks(codes, times, limit_us, bounds, starts, perm):
    for c in prange(bounds.shape[0] - 1):
        pos = starts[c]
        for i in range(bounds[c], bounds[c + 1]):
            if times[i] <= limit_us:
                k = codes[i]
                perm[pos[k]] = i
                pos[k] += 1


def sort_by_customer(codes, times, limit_us, n_codes, n_chunks, n_threads=None):
    """Row numbers grouped by customer code, input order kept within a customer (stable), rows
    with ``time > limit_us`` left out. Returns ``(perm int64[m], offsets int64[n_codes + 1])``:
    customer k's rows are ``perm[offsets[k]:offsets[k + 1]]``. The result does not depend on
    ``n_chunks`` (the sort is stable)."""
    n = codes.shape[0]
    n_chunks = max(1, min(n_chunks, n))
    bounds = np.linspace(0, n, n_chunks + 1).astype(np.int64)
    counts = np.zeros((n_chunks, n_codes), np.int64)
    _count_chunks(codes, times, np.int64(limit_us), n_codes, bounds, counts, n_threads=n_threads)
    starts, offsets = partition_starts(counts)  # per chunk, per customer: a stable scatter
    del counts
    perm = np.empty(offsets[n_codes], np.int64)
    _scatter_chunks(codes, times, np.int64(limit_us), bounds, starts, perm, n_threads=n_threads)
    return perm, offsets


# ---- small sorts on per-task scratch (no allocation per customer) -----------------------------
@njit(**NJIT)
def sort_pairs(keys, vals, n, tmp_keys, tmp_vals):
    """Stable ascending sort of ``keys[:n]``, carrying ``vals[:n]`` (merge sort of insertion-
    sorted runs; ``tmp_*`` hold at least ``n`` values)."""
    for s in range(0, n, _RUN):
        e = min(s + _RUN, n)
        for i in range(s + 1, e):
            k = keys[i]
            v = vals[i]
            j = i - 1
            while j >= s and keys[j] > k:
                keys[j + 1] = keys[j]
                vals[j + 1] = vals[j]
                j -= 1
            keys[j + 1] = k
            vals[j + 1] = v
    src_k, src_v, dst_k, dst_v = keys, vals, tmp_keys, tmp_vals
    in_tmp = False
    width = _RUN
    while width < n:
        for lo in range(0, n, 2 * width):
            mid = min(lo + width, n)
            hi = min(lo + 2 * width, n)
            i = lo
            j = mid
            o = lo
            while i < mid and j < hi:
                if src_k[j] < src_k[i]:
                    dst_k[o] = src_k[j]
                    dst_v[o] = src_v[j]
                    j += 1
                else:
                    dst_k[o] = src_k[i]
                    dst_v[o] = src_v[i]
                    i += 1
                o += 1
            while i < mid:
                dst_k[o] = src_k[i]
                dst_v[o] = src_v[i]
                i += 1
                o += 1
            while j < hi:
                dst_k[o] = src_k[j]
                dst_v[o] = src_v[j]
                j += 1
                o += 1
        src_k, dst_k = dst_k, src_k
        src_v, dst_v = dst_v, src_v
        in_tmp = not in_tmp
        width *= 2
    if in_tmp:
        for i in range(n):
            keys[i] = src_k[i]
            vals[i] = src_v[i]


@njit(**NJIT)
def _run_end(values, start, n):
    """End of the run of values equal to ``values[start]`` in a sorted ``values[:n]``."""
    end = start + 1
    while end < n and values[end] == values[start]:
        end += 1
    return end


@njit(**NJIT)
def _is_sorted(values, n):
    for i in range(1, n):
        if values[i] < values[i - 1]:
            return False
    return True


@njit(**NJIT)
def _count_runs(values, n):
    """Distinct values of a sorted ``values[:n]``."""
    runs = 0
    for i in range(n):
        if i == 0 or values[i] != values[i - 1]:
            runs += 1
    return runs


#: Rows of the fixed-point accumulators (``STATE_DTYPE`` records, money fields only) of one
#: customer: all purchases, all returns, the trend's previous period, then spend per window,
#: returns per window, spend per channel.
A_PURCHASES = 0
A_RETURNS = 1
A_PREV = 2
A_WINDOWS = 3


@njit(**NJIT)
def _money_scratch(n):
    # A serial helper: the parfor pass cannot turn a record-array allocation into a loop.
    return np.zeros(n, STATE_DTYPE)


@njit(**NJIT)
def _acc_value(acc, k):
    """Accumulator ``k`` correctly rounded to float64."""
    return money_value(acc[k].money_frac, acc[k].money_lo, acc[k].money_hi)


# ---- the per-customer fold ---------------------------------------------------------------------
@njit(**NJIT)
def _fold_one(c, s, e, perm, times, amounts, orders, items, categories, channels, n_channels,
              channel_rank, as_of_us, window_lo, trend_window, prev_lo, prev_hi, net_returns, ints, floats,
              shares, ptime, prow, key, val, tmp_k, tmp_v, ch_orders, acc):
    n_win = window_lo.shape[0]
    a_channels = A_WINDOWS + 2 * n_win
    for k in range(a_channels + n_channels):  # exact sums, see the module docstring
        acc[k].money_frac = 0
        acc[k].money_lo = 0
        acc[k].money_hi = 0
    p = 0
    n_ret = 0
    first = INT64_MAX
    last = INT64_MIN
    last_channel = -1
    for ch in range(n_channels):
        ch_orders[ch] = 0
    for j in range(s, e):
        r = perm[j]
        t = times[r]
        a = amounts[r]
        frac, lo, hi = fixed_words(a)
        if a < 0.0:
            n_ret += 1
            add_money(acc[A_RETURNS], frac, lo, hi)
            for w in range(n_win):
                if t > window_lo[w]:
                    ints[c, N_INT + INT_PER_WINDOW * w + 2] += 1
                    add_money(acc[A_WINDOWS + n_win + w], frac, lo, hi)
            continue
        add_money(acc[A_PURCHASES], frac, lo, hi)
        if t < first:
            first = t
        if n_channels:
            # ties of time: the channel ranked last, whatever the order of the rows
            if t > last or (t == last and channel_rank[channels[r]] > channel_rank[last_channel]):
                last_channel = channels[r]
            add_money(acc[a_channels + channels[r]], frac, lo, hi)
        if t > last:
            last = t
        for w in range(n_win):
            if t > window_lo[w]:
                add_money(acc[A_WINDOWS + w], frac, lo, hi)
        if prev_lo < t <= prev_hi:
            add_money(acc[A_PREV], frac, lo, hi)
        ptime[p] = t
        prow[p] = r
        p += 1
    ints[c, I_PURCHASE_ROWS] = p
    ints[c, I_RETURN_ROWS] = n_ret
    if p == 0:
        return
    purchase_sum = _acc_value(acc, A_PURCHASES)
    for w in range(n_win):
        floats[c, N_FLOAT + FLOAT_PER_WINDOW * w] = _acc_value(acc, A_WINDOWS + w)
        floats[c, N_FLOAT + FLOAT_PER_WINDOW * w + 1] = -_acc_value(acc, A_WINDOWS + n_win + w)
    # Purchase rows in time order (ties: in input order, which no output depends on).
    if not _is_sorted(ptime, p):
        sort_pairs(ptime, prow, p, tmp_k, tmp_v)
    # Distinct days (runs of the sorted times), their gaps, and distinct days per window.
    n_days = 0
    gap_sum = np.int64(0)
    last_gap = np.int64(0)
    prev_day = np.int64(0)
    for i in range(p):
        t = ptime[i]
        d = t // US_PER_DAY
        new_day = i == 0 or d != prev_day
        if new_day:
            if n_days > 0:
                last_gap = d - prev_day
                gap_sum += last_gap
            key[n_days] = d
            n_days += 1
        for w in range(n_win):
            if t > window_lo[w] and (new_day or ptime[i - 1] <= window_lo[w]):
                ints[c, N_INT + INT_PER_WINDOW * w + 1] += 1
        prev_day = d
    recency = (as_of_us - last) // US_PER_DAY
    if n_days > 1:
        mean_gap = gap_sum / (n_days - 1)
        ss = 0.0
        for i in range(1, n_days):
            dev = (key[i] - key[i - 1]) - mean_gap
            ss += dev * dev
        floats[c, F_GAP_MEAN] = mean_gap
        floats[c, F_GAP_STD] = math.sqrt(ss / (n_days - 1))
        floats[c, F_OVERDUE] = recency / mean_gap
        ints[c, I_LAST_GAP] = last_gap
    else:
        floats[c, F_GAP_MEAN] = np.nan
        floats[c, F_GAP_STD] = np.nan
        floats[c, F_OVERDUE] = np.nan
        ints[c, I_LAST_GAP] = -1
    # Orders: distinct order codes of the purchase rows, per window by each order's latest row.
    orders_prev = 0
    if orders.shape[0]:
        for i in range(p):
            key[i] = orders[prow[i]]
            val[i] = i
        sort_pairs(key, val, p, tmp_k, tmp_v)  # stable: positions ascend within an order
        frequency = 0
        g = 0
        while g < p:
            h = _run_end(key, g, p)
            frequency += 1
            latest = ptime[val[h - 1]]
            for w in range(n_win):
                if latest > window_lo[w]:
                    ints[c, N_INT + INT_PER_WINDOW * w] += 1
            for q in range(g, h):
                t = ptime[val[q]]
                if prev_lo < t <= prev_hi:
                    orders_prev += 1
                    break
            g = h
        if n_channels:
            # An order counts once in every channel it has a purchase line in.
            for i in range(p):
                key[i] = orders[prow[i]] * n_channels + channels[prow[i]]
            sort_slice(key, 0, p)
            for i in range(p):
                if i == 0 or key[i] != key[i - 1]:
                    ch_orders[key[i] % n_channels] += 1
    else:
        frequency = p
        for i in range(p):
            t = ptime[i]
            for w in range(n_win):
                if t > window_lo[w]:
                    ints[c, N_INT + INT_PER_WINDOW * w] += 1
            if prev_lo < t <= prev_hi:
                orders_prev += 1
            if n_channels:
                ch_orders[channels[prow[i]]] += 1
    # RFM as rfm() defines it (identical values): purchases, plus returns when netted.
    if net_returns:
        ret = acc[A_RETURNS]
        add_money(acc[A_PURCHASES], ret.money_frac, ret.money_lo, ret.money_hi)
    money = _acc_value(acc, A_PURCHASES)
    ints[c, I_FIRST] = first
    ints[c, I_LAST] = last
    ints[c, I_RECENCY] = recency
    ints[c, I_TENURE] = (as_of_us - first) // US_PER_DAY
    ints[c, I_FREQUENCY] = frequency
    ints[c, I_DAYS] = n_days
    floats[c, F_MONETARY_TOTAL] = money
    floats[c, F_MONETARY_MEAN] = money / frequency
    # Trend: the shortest window against the same length just before it (NaN when that is 0).
    spend_prev = _acc_value(acc, A_PREV)
    ints[c, I_ORDERS_PREV] = orders_prev
    floats[c, F_SPEND_PREV] = spend_prev
    spend_now = floats[c, N_FLOAT + FLOAT_PER_WINDOW * trend_window]
    orders_now = ints[c, N_INT + INT_PER_WINDOW * trend_window]
    floats[c, F_SPEND_TREND] = spend_now / spend_prev if spend_prev > 0.0 else np.nan
    floats[c, F_ORDERS_TREND] = orders_now / orders_prev if orders_prev > 0 else np.nan
    # Basket.
    floats[c, F_ITEMS_PER_ORDER] = p / frequency
    if items.shape[0]:
        for i in range(p):
            key[i] = items[prow[i]]
        sort_slice(key, 0, p)
        ints[c, I_DISTINCT_ITEMS] = _count_runs(key, p)
    if categories.shape[0]:
        for i in range(p):
            key[i] = categories[prow[i]]
        sort_slice(key, 0, p)
        runs = 0
        top = 0
        g = 0
        while g < p:
            h = _run_end(key, g, p)
            val[runs] = h - g  # lines per category
            runs += 1
            if h - g > top:
                top = h - g
            g = h
        # Terms added by ascending count: the sum depends on the counts only, not on the
        # category codes' first-seen order.
        sort_slice(val, 0, runs)
        entropy = 0.0
        for i in range(runs):
            q = val[i] / p
            entropy -= q * math.log(q)
        ints[c, I_DISTINCT_CATEGORIES] = runs
        floats[c, F_TOP_CATEGORY_SHARE] = top / p
        floats[c, F_CATEGORY_ENTROPY] = entropy
    # Channel mix.
    if n_channels:
        used = 0
        for ch in range(n_channels):
            if ch_orders[ch] > 0:
                used += 1
            shares[c, ch] = ch_orders[ch] / frequency
            shares[c, n_channels + ch] = (_acc_value(acc, a_channels + ch) / purchase_sum
                                          if purchase_sum > 0.0 else np.nan)
        ints[c, I_N_CHANNELS] = used
        ints[c, I_LAST_CHANNEL] = last_channel


@parallel_kernel
def fold_profiles(perm,        # IN  int64[m] rows grouped by customer (sort_by_customer)
                  offsets,     # IN  int64[n_codes + 1]
                  times,       # IN  int64[n] microseconds UTC
                  amounts,     # IN  float64[n]
                  orders,      # IN  int64[n] order codes, or empty
                  items,       # IN  int64[n] item codes, or empty
                  categories,  # IN  int64[n] category codes, or empty
                  channels,    # IN  int64[n] channel codes 0..n_channels-1, or empty
                  n_channels,  # IN  int: 0 without channels
                  channel_rank,  # IN int64[n_channels]: rank of each channel code's value
                  as_of_us,    # IN  int64
                  window_lo,   # IN  int64[W] a row is in window w when time > window_lo[w]
                  trend_window,  # IN int: index of the window the trend compares
                  prev_lo, prev_hi,  # IN int64: the period before it is (prev_lo, prev_hi]
                  net_returns,  # IN bool: monetary_total includes returns (returns="net")
                  ints,        # OUT int64[n_codes, N_INT + 3 W], zero-filled
                  floats,      # OUT float64[n_codes, N_FLOAT + 2 W], zero-filled
                  shares,      # OUT float64[n_codes, 2 n_channels]: order shares, spend shares
                  block):      # IN  int: customers per parallel task
    """Fold every customer's rows into its row of ``ints``/``floats``/``shares``.

    A customer with no purchase row keeps zeros except ``I_RETURN_ROWS``; the caller drops it.
    """
    n_codes = offsets.shape[0] - 1
    n_blocks = (n_codes + block - 1) // block
    for b in prange(n_blocks):
        c0 = b * block
        c1 = min(c0 + block, n_codes)
        longest = 1
        for c in range(c0, c1):
            longest = max(longest, offsets[c + 1] - offsets[c])
        # One block of scratch rows: purchase times, their rows, sort keys/values and the
        # merge sort's buffers.
        scratch = np.empty((6, longest), np.int64)
        ch_orders = np.empty(max(n_channels, 1), np.int64)
        acc = _money_scratch(A_WINDOWS + 2 * window_lo.shape[0] + n_channels)
        for c in range(c0, c1):
            _fold_one(c, offsets[c], offsets[c + 1], perm, times, amounts, orders, items,
                      categories, channels, n_channels, channel_rank, as_of_us, window_lo,
                      trend_window, prev_lo, prev_hi, net_returns, ints, floats, shares, scratch[0],
                      scratch[1], scratch[2], scratch[3], scratch[4], scratch[5], ch_orders,
                      acc)
