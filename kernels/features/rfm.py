"""RFM kernels: fold transactions into per-customer records, then finalise features and scores.

A customer's running aggregate is one 64-byte record (``STATE_DTYPE``), so the random access a
transaction costs is a single cache line. Records merge associatively, which is what makes the
batch, streaming and incremental paths give identical results.

Times are int64 microseconds since the epoch (UTC); days are ``floor(us / 86_400e6)``.

Exact money
-----------
A customer's monetary total is kept as an exact fixed-point number: 192-bit two's complement with
64 fraction bits (``money_hi``, ``money_lo``, ``money_frac``). Each amount enters exactly when it is
a multiple of 2**-64 (every float64 of magnitude >= 2**-12, i.e. every amount of a tenth of a
thousandth of a cent or more, and any amount with fewer significant bits), else rounded to the
nearest multiple (half to even; error < 2**-65 per row). Integer addition is associative and
commutative, so the total does not depend on the order of the rows, on how they were split into
batches or states, or on the thread count; it is read out correctly rounded to float64. Amounts
are finite with ``|amount| < 2**63`` (checked at the input boundary) and a customer has fewer
than 2**31 rows, so a total is below 2**94 in magnitude and 64 integer-high bits never overflow.
"""
import math

import numpy as np
from numba import njit

from numba.cpython.unsafe.numbers import leading_zeros

from ..common.config import NJIT, RFM_COUNTING_MAX_VALUE, RFM_READOUT_CHUNK
from ..common.launch import resolve_threads, run_threaded
from . import fold_native as _native
from .pairset import EMPTY, insert, pair_key

US_PER_DAY = np.int64(86_400_000_000)
INT64_MAX = np.iinfo(np.int64).max
INT64_MIN = np.iinfo(np.int64).min
NO_DAY = np.int32(np.iinfo(np.int32).min)
#: Amounts must be finite and smaller than this in magnitude (checked at the input boundary),
#: so that no per-customer sum can overflow.
MAX_ABS_AMOUNT = 2.0 ** 63

#: One customer's running aggregate; exactly one 64-byte cache line.
STATE_DTYPE = np.dtype(
    [
        ("first_us", np.int64),       # earliest purchase time
        ("last_us", np.int64),        # latest purchase time
        # Purchases plus (returns="net") returns: exact fixed point, see the module docstring.
        ("money_frac", np.uint64),    # fraction bits (units of 2**-64)
        ("money_lo", np.uint64),      # integer part, low 64 bits
        ("money_hi", np.int64),       # integer part, high 64 bits (two's complement sign)
        ("purchase_rows", np.int32),
        ("return_rows", np.int32),
        ("frequency", np.int32),      # distinct orders (or purchase rows when there is no order)
        ("purchase_days", np.int32),  # distinct UTC days with a purchase
        ("last_day", np.int32),       # day of the latest purchase row seen (dedup hint)
        ("last_order", np.int32),     # order code of the latest purchase row seen (dedup hint)
    ],
    align=True,
)
assert STATE_DTYPE.itemsize == 64


def new_state(n: int) -> np.ndarray:
    """``n`` empty customer records."""
    return clear_records(np.zeros(n, dtype=STATE_DTYPE))


def uninitialised_state(n: int) -> np.ndarray:
    """``n`` records for a kernel that makes each empty itself (the one-shot fold does,
    partition by partition, while they are in cache)."""
    return np.empty(n, dtype=STATE_DTYPE)


def clear_records(records: np.ndarray) -> np.ndarray:
    """Make zero-filled ``records`` empty customer records, in place; returns them."""
    records["first_us"] = INT64_MAX
    records["last_us"] = INT64_MIN
    records["last_order"] = -1
    records["last_day"] = NO_DAY
    return records


_ONE = np.uint64(1)
_TWO_64 = 18446744073709551616.0


@njit(**NJIT)
def _negate(w0, w1, w2):
    """-(w2:w1:w0) in 192-bit two's complement: invert and add one, carrying through the words."""
    w0 = ~w0 + _ONE
    w1 = ~w1
    w2 = ~w2
    if w0 == 0:
        w1 += _ONE
        if w1 == 0:
            w2 += _ONE
    return w0, w1, w2


@njit(**NJIT)
def fixed_words(a):
    """(frac, lo, hi) of ``a`` (finite, |a| < 2**63) on the 2**-64 grid, 192-bit two's complement."""
    neg = a < 0.0
    m = -a if neg else a
    ip = math.floor(m)
    frac = np.uint64(np.rint((m - ip) * _TWO_64))  # m - ip is exact; the scaling too
    lo = np.uint64(ip)
    hi = np.uint64(0)
    if neg:
        frac, lo, hi = _negate(frac, lo, hi)
    return frac, lo, np.int64(hi)


@njit(**NJIT)
def add_money(rec, frac, lo, hi):
    """rec's total += (frac, lo, hi): 192-bit addition (wraps like any integer; see bounds)."""
    s0 = rec.money_frac + frac
    c0 = _ONE if s0 < frac else np.uint64(0)
    s1 = rec.money_lo + lo
    c1 = s1 < lo
    s1 += c0
    if c0 and s1 == 0:
        c1 = True
    rec.money_frac = s0
    rec.money_lo = s1
    rec.money_hi = rec.money_hi + hi + (np.int64(1) if c1 else np.int64(0))


@njit(**NJIT)
def set_money(state, money):
    """Set each record's total to ``money[k]`` (finite, |money| < 2**63), on the 2**-64 grid."""
    for k in range(state.shape[0]):
        frac, lo, hi = fixed_words(money[k])
        state[k].money_frac = frac
        state[k].money_lo = lo
        state[k].money_hi = hi


@njit(**NJIT)
def money_value(frac, lo, hi):
    """The fixed-point total, correctly rounded to float64 (round half to even)."""
    w0, w1, w2 = frac, lo, np.uint64(hi)
    neg = hi < 0
    if neg:
        w0, w1, w2 = _negate(w0, w1, w2)
    if w2 != 0:
        top, nxt, rest, base = w2, w1, w0, 128
    elif w1 != 0:
        top, nxt, rest, base = w1, w0, np.uint64(0), 64
    elif w0 != 0:
        top, nxt, rest, base = w0, np.uint64(0), np.uint64(0), 0
    else:
        return 0.0
    lz = np.int64(leading_zeros(top))
    if lz == 0:
        window = top
        sticky = nxt != 0 or rest != 0
    else:
        window = (top << np.uint64(lz)) | (nxt >> np.uint64(64 - lz))
        sticky = (nxt << np.uint64(lz)) != 0 or rest != 0
    mant = window >> np.uint64(11)
    low = window & np.uint64(0x7FF)
    half = np.uint64(0x400)
    if low > half or (low == half and (sticky or (mant & _ONE))):
        mant += _ONE
    value = math.ldexp(float(mant), base + 11 - lz - 64)
    return -value if neg else value


@njit(**NJIT)
def money_values(frac, lo, hi):
    """:func:`money_value` of every total (uint64, uint64, int64 arrays), as float64."""
    out = np.empty(frac.shape[0], np.float64)
    for k in range(frac.shape[0]):
        out[k] = money_value(frac[k], lo[k], hi[k])
    return out


@njit(**NJIT)
def fold_amount(rec, t, a, exclude_returns):
    """Fold one row's time and amount into a customer record; True when it is a purchase.

    A return (``a < 0``) is counted in every mode, because it tells who had returns only; its
    amount is kept for ``returns="net"`` and dropped for ``"exclude"``.
    """
    if a < 0.0:
        rec.return_rows += 1
        if not exclude_returns:
            frac, lo, hi = fixed_words(a)
            add_money(rec, frac, lo, hi)
        return False
    rec.purchase_rows += 1
    frac, lo, hi = fixed_words(a)
    add_money(rec, frac, lo, hi)
    if t < rec.first_us:
        rec.first_us = t
    if t > rec.last_us:
        rec.last_us = t
    return True


@njit(**NJIT)
def update(state,          # IN/OUT records, indexed by customer code
           codes,          # IN  int64[n] customer code of each row
           times,          # IN  int64[n] microseconds, UTC
           amounts,        # IN  float64[n]
           orders,         # IN  int64[n] order codes (ignored unless has_order)
           has_order,      # IN  bool
           limit_us,       # IN  rows with time > limit_us are skipped (point-in-time cut)
           exclude_returns,  # IN bool: drop rows with amount < 0 instead of netting them
           day_set,        # IN/OUT pair set of (customer, day); unused if days_sorted
           order_set,      # IN/OUT pair set of (customer, order)
           days_sorted,    # IN  bool: every customer's rows arrive in time order (no day set)
           orders_monotone,  # IN bool: count order changes (no order set); a customer's order
                           # codes must then never decrease, else the fold stops (see Returns)
           last_values,    # IN/OUT int64[customers]: with orders_monotone, each customer's latest
                           # order *id* (integer ids, no id map); empty: use codes and last_order
           day_bitmap,     # IN/OUT uint64[customers * words]: days seen, used instead of day_set
           first_day,      # IN  day of bit 0 of each customer's bitmap
           words):         # IN  bitmap words per customer; 0: no bitmap
    """Fold rows into ``state``. Both sets must have room for ``n`` more keys.

    Returns
    -------
    (n_after_limit, n_returns, n_day_keys_added, n_order_keys_added) : tuple of int
        With a bitmap, ``n_day_keys_added`` is -1 (and the batch is only partly folded) when a
        purchase day falls outside the bitmap's range. With ``orders_monotone``,
        ``n_order_keys_added`` is -1 (the batch only partly folded) when a customer's order code
        decreases: its orders may then not be contiguous, and counting changes would not be exact.
    """
    n_after = 0
    n_returns = 0
    day_added = 0
    order_added = 0
    n_bits = words * 64
    for i in range(codes.shape[0]):
        t = times[i]
        if t > limit_us:
            n_after += 1
            continue
        rec = state[codes[i]]
        if not fold_amount(rec, t, amounts[i], exclude_returns):
            n_returns += 1
            continue
        day = np.int32(t // US_PER_DAY)
        if day != rec.last_day:
            # A day equal to the record's latest one is already counted: most rows of a
            # multi-line order stop here without touching the set.
            if days_sorted:
                rec.purchase_days += 1
            elif words:
                offset = np.int64(day) - first_day
                if offset < 0 or offset >= n_bits:
                    return n_after, n_returns, -1, order_added
                w = codes[i] * words + (offset >> 6)
                bit = np.uint64(1) << np.uint64(offset & 63)
                if not (day_bitmap[w] & bit):
                    day_bitmap[w] |= bit
                    rec.purchase_days += 1
            elif insert(day_set, pair_key(codes[i], day)):
                rec.purchase_days += 1
                day_added += 1
            rec.last_day = day
        if has_order:
            o = orders[i]
            if orders_monotone:
                # Codes are given in first-seen order (and invoice numbers usually grow with
                # time), so in a log where each order's rows are contiguous per customer they
                # never decrease: a change is a new order.
                if last_values.shape[0]:
                    last = last_values[codes[i]]
                else:
                    last = np.int64(rec.last_order)
                if rec.frequency and o < last:
                    return n_after, n_returns, day_added, -1
                if rec.frequency == 0 or o != last:
                    rec.frequency += 1
                    if last_values.shape[0]:
                        last_values[codes[i]] = o
                    else:
                        rec.last_order = o
            elif o != rec.last_order:
                if insert(order_set, pair_key(codes[i], o)):
                    rec.frequency += 1
                    order_added += 1
                rec.last_order = o
        else:
            rec.frequency += 1
    return n_after, n_returns, day_added, order_added


@njit(**NJIT)
def merge(state, other, code_map):
    """Fold the records of ``other`` into ``state``; other's customer k is ``code_map[k]`` here.

    Distinct counts (frequency with orders, purchase_days) are *not* added here: they are rebuilt
    by :func:`merge_pairs` from the union of the pair sets.
    """
    for k in range(other.shape[0]):
        src = other[k]
        dst = state[code_map[k]]
        if src.first_us < dst.first_us:
            dst.first_us = src.first_us
        if src.last_us > dst.last_us:
            dst.last_us = src.last_us
        add_money(dst, src.money_frac, src.money_lo, src.money_hi)
        dst.purchase_rows += src.purchase_rows
        dst.return_rows += src.return_rows


@njit(**NJIT)
def merge_pairs(state, pair_set, other_keys, code_map, value_map, which):
    """Insert other's pair keys (remapped) into ``pair_set``; count new ones per customer.

    ``which`` is 0 for purchase days (value kept as is) and 1 for orders (value remapped through
    ``value_map``). Returns the number of keys added.
    """
    added = 0
    for key in other_keys:
        code = code_map[key >> np.int64(32)]
        low = key & np.int64(0xFFFFFFFF)
        if which == 0:
            value = np.int64(np.int32(np.uint32(low)))
        else:
            value = value_map[low]
        if insert(pair_set, pair_key(code, value)):
            added += 1
            if which == 0:
                state[code].purchase_days += 1
                if state[code].last_day == NO_DAY:
                    state[code].last_day = np.int32(value)
            else:
                state[code].frequency += 1
    return added


def quintile_scores(values, higher_is_better):
    """RFM scores 1..5: ``1 + floor(5 * w / n)`` capped at 5, w = customers strictly worse.

    Ties share a score because w only counts strictly worse values. No sort is needed:
    ``floor(5 w / n) >= k`` exactly when ``w >= c_k = ceil(k n / 5)``, i.e. when ``v`` is beyond
    the c_k-th worst value, so four order statistics decide every score. Non-negative integers
    no larger than :data:`RFM_COUNTING_MAX_VALUE` (recency days, frequencies) take them from a
    count of each value, and their scores from a table by value; other values from one O(n)
    selection. Plain NumPy (its counting, selection and binary search are compiled C): no kernel
    to compile on a first call (#11).
    """
    values = np.asarray(values)
    n = values.shape[0]
    if n == 0:
        return np.empty(0, np.int8)
    c = (np.arange(1, 5) * n + 4) // 5
    if values.dtype.kind in "iu":
        lo, hi = int(values.min()), int(values.max())
        if lo >= 0 and hi <= RFM_COUNTING_MAX_VALUE:
            return _counted_scores(values, hi, c, higher_is_better)
    if higher_is_better:  # cut k is the c_k-th smallest; score = 1 + #{k: v > cut_k}
        cuts = np.partition(values, c - 1)[c - 1]
        above = np.searchsorted(cuts, values, side="left")
    else:  # cut k is the c_k-th largest; score = 1 + #{k: v < cut_k}
        cuts = np.partition(values, n - c)[n - c][::-1]  # ascending
        above = 4 - np.searchsorted(cuts, values, side="right")
    return (above + 1).astype(np.int8)


def _counted_scores(values, hi, c, higher_is_better):
    """:func:`quintile_scores` of integers in ``0..hi``: the order statistics from the running
    count of each value (the r-th smallest is the first value whose count reaches r), then each
    score read from a table indexed by value."""
    n = values.shape[0]
    running = np.cumsum(np.bincount(values, minlength=hi + 1))
    every_value = np.arange(hi + 1)
    if higher_is_better:
        cuts = np.searchsorted(running, c, side="left")  # c_k-th smallest
        table = np.searchsorted(cuts, every_value, side="left")
    else:
        cuts = np.searchsorted(running, n - c + 1, side="left")[::-1]  # c_k-th largest, ascending
        table = 4 - np.searchsorted(cuts, every_value, side="right")
    return (table + 1).astype(np.int8)[values]


def read_out(state, order, as_of_us, frequency_is_rows, n_threads=None):
    """The feature columns of every customer who bought, from ``state`` read in code order or
    through the permutation ``order`` (int64, or empty): (codes = positions in the order read,
    first_us, last_us, recency_days, tenure_days, frequency, purchase_days, monetary_total,
    monetary_mean, number of customers with returns only).

    Two passes of ``fold_native`` over fixed chunks of records (who bought, then the columns,
    the totals correctly rounded as :func:`money_value` does), each on ``n_threads`` threads;
    every chunk writes the output rows its count gave it, so nothing depends on the threads.
    """
    order = np.ascontiguousarray(order, np.int64)
    n = state.shape[0]
    chunk = RFM_READOUT_CHUNK
    n_chunks = max(1, -(-n // chunk))
    workers = min(resolve_threads(n_threads), n_chunks)
    counts = np.zeros((n_chunks, 2), np.int64)
    tickets = list(range(workers))  # worker t of T does chunks t, t + T, ... (list.pop holds
    # the GIL, so each worker takes a different t)
    run_threaded(lambda: _native.finalize_count(state, order, chunk, tickets.pop(), workers,
                                                counts), workers)
    starts = np.zeros(n_chunks + 1, np.int64)
    np.cumsum(counts[:, 0], out=starts[1:])
    m = int(starts[-1])
    ints = [np.empty(m, np.int64) for _ in range(7)]
    total = np.empty(m, np.float64)
    mean = np.empty(m, np.float64)
    tickets = list(range(workers))
    run_threaded(lambda: _native.finalize_worker(state, order, as_of_us, frequency_is_rows, chunk,
                                                 starts, tickets.pop(), workers, *ints, total,
                                                 mean), workers)
    return (*ints, total, mean, int(counts[:, 1].sum()))


def finish(state, order, as_of_us, net_returns, frequency_is_rows, segment_table,
           n_threads=None):
    """:func:`read_out` (``order``: int64 permutation of the records, or empty; compiled
    ahead of time, #11), the three scores and the segment lookup.

    Returns the columns of ``read_out`` followed by r, f, m (int8) and the segment index
    (int16), and the number of customers with returns only. The totals hold returns as they
    were folded (net or not).
    """
    (codes, first, last, recency, tenure, frequency, days, total, mean,
     n_returns_only) = read_out(state, order, as_of_us, frequency_is_rows, n_threads)
    r = quintile_scores(recency, False)
    f = quintile_scores(frequency, True)
    m = quintile_scores(total, True)
    seg = segment_table[r, f, m]
    return (codes, first, last, recency, tenure, frequency, days, total, mean, r, f, m, seg,
            n_returns_only)
