# cython: language_level=3
"""The one-shot RFM fold and the read-out of the records, compiled at build time (issue #11).

:func:`fastengage.rfm` on an in-memory table folds its rows into 64-byte customer records
(``rfm.STATE_DTYPE``) partition by partition (``fold_worker``; the partitions come from
``oneshot.partition`` or ``hashed.encode_partitions``) and reads the records out once
(``finalize_count`` then ``finalize_worker``, totals rounded to float64 included). The Numba
versions of these loops were ~5 s of the ~6 s of JIT compilation of a first ``rfm()`` call in a
fresh process; compiled ahead of time they cost nothing on a cold start.
The streaming fold (``rfm.update``, pair sets, merges) and the profile kernels stay in Numba;
their money arithmetic is the same 192-bit fixed point and read-out, and tests check that this
module's and ``rfm.py``'s give the same bits (``fixed_words_of``, ``money_value_of``).

A partition's records are written by one thread only: worker ``t`` of ``T`` folds partitions
``t, t + T, ...`` (the launch rule, ``kernels.common.launch.run_threaded``, runs the ``T``
workers), so the records never depend on the thread count. The read-out works the same way on
fixed chunks of records, each written to the output rows its count (first pass) gave it.
"""
from libc.stdint cimport int32_t, int64_t, uint64_t
from libc.math cimport ldexp
from libc.stdlib cimport calloc, free, malloc, qsort

cdef extern from *:
    int __builtin_clzll(unsigned long long x) nogil

import numpy as np

cimport numpy as cnp

cnp.import_array()


# Exactly rfm.STATE_DTYPE (align=True): five 8-byte fields, then six 4-byte ones; 64 bytes.
cdef struct Record:
    int64_t first_us
    int64_t last_us
    uint64_t money_frac
    uint64_t money_lo
    int64_t money_hi
    int32_t purchase_rows
    int32_t return_rows
    int32_t frequency
    int32_t purchase_days
    int32_t last_day
    int32_t last_order

DEF US_PER_DAY = 86400000000
DEF INSERTION_MAX = 32
cdef int64_t INT64_MAX = 0x7FFFFFFFFFFFFFFF
cdef int64_t INT64_MIN = -INT64_MAX - 1
cdef int32_t NO_DAY = -2147483647 - 1
cdef double TWO_64 = 18446744073709551616.0
cdef double TWO_52 = 4503599627370496.0


cdef inline int64_t _floor_div(int64_t a, int64_t b) noexcept nogil:
    cdef int64_t q = a // b  # C division truncates (cdivision): floor it
    if (a % b != 0) and ((a < 0) != (b < 0)):
        q -= 1
    return q


cdef inline void _negate(uint64_t* w) noexcept nogil:
    w[0] = ~w[0] + 1
    w[1] = ~w[1]
    w[2] = ~w[2]
    if w[0] == 0:
        w[1] += 1
        if w[1] == 0:
            w[2] += 1


cdef inline void _fixed_words(double a, uint64_t* w) noexcept nogil:
    # (frac, lo, hi) of a (finite, |a| < 2**63) on the 2**-64 grid, as rfm.fixed_words. No libm
    # floor/rint calls (baseline x86-64 has no rounding instruction): the integer part is the
    # truncation of m >= 0, and adding and subtracting 2**52 rounds f < 2**52 half to even, as
    # rint does (larger doubles are integers already); every step is exact.
    cdef bint neg = a < 0.0
    cdef double m = -a if neg else a
    cdef uint64_t ip = <uint64_t> m
    cdef double f = (m - <double> ip) * TWO_64
    if f < TWO_52:
        f = (f + TWO_52) - TWO_52
    w[0] = <uint64_t> f
    w[1] = ip
    w[2] = 0
    if neg:
        _negate(w)


cdef inline void _add_money(Record* rec, const uint64_t* w) noexcept nogil:
    cdef uint64_t s0 = rec.money_frac + w[0]
    cdef uint64_t c0 = 1 if s0 < w[0] else 0
    cdef uint64_t s1 = rec.money_lo + w[1]
    cdef uint64_t c1 = 1 if s1 < w[1] else 0
    s1 += c0
    if c0 and s1 == 0:
        c1 = 1
    rec.money_frac = s0
    rec.money_lo = s1
    rec.money_hi = <int64_t> (<uint64_t> rec.money_hi + w[2] + c1)


cdef inline bint _fold_amount(Record* rec, int64_t t, double a, bint exclude_returns) noexcept nogil:
    # as rfm.fold_amount: True for a purchase; a return is counted in every mode
    cdef uint64_t w[3]
    if a < 0.0:
        rec.return_rows += 1
        if not exclude_returns:
            _fixed_words(a, w)
            _add_money(rec, w)
        return False
    rec.purchase_rows += 1
    _fixed_words(a, w)
    _add_money(rec, w)
    if t < rec.first_us:
        rec.first_us = t
    if t > rec.last_us:
        rec.last_us = t
    return True


cdef int _compare_int64(const void* a, const void* b) noexcept nogil:
    cdef int64_t x = (<const int64_t*> a)[0]
    cdef int64_t y = (<const int64_t*> b)[0]
    return (x > y) - (x < y)


cdef int32_t _count_distinct(int64_t* values, int64_t n) noexcept nogil:
    # distinct values of values[:n], which it sorts in place (insertion sort for the few rows
    # most customers have)
    cdef int64_t i, j, v
    cdef int32_t distinct = 1
    if n <= 1:
        return <int32_t> n
    if n <= INSERTION_MAX:
        for i in range(1, n):
            v = values[i]
            j = i - 1
            while j >= 0 and values[j] > v:
                values[j + 1] = values[j]
                j -= 1
            values[j + 1] = v
    else:
        qsort(values, n, sizeof(int64_t), _compare_int64)
    for i in range(1, n):
        if values[i] != values[i - 1]:
            distinct += 1
    return distinct


cdef int _fold_rows(Record* state, int64_t base, int64_t n_local, int64_t lo, int64_t hi,
                    const int32_t* local, const int64_t* times, const double* amounts,
                    const int64_t* orders, bint has_order, int64_t limit_us,
                    bint exclude_returns, bint days_sorted, int64_t first_day, int64_t words,
                    int64_t bitmap_words, int64_t* counts) noexcept nogil:
    """Rows [lo, hi) into the records of customers base..base+n_local-1 (made empty first).

    Distinct purchase days: on the fly for time-sorted rows, else a day bitmap per customer
    when it has at most ``bitmap_words`` words, else a counting sort by customer. Adds the rows
    after the cut and the return rows to counts[0], counts[1]. Returns -1 when out of memory.
    """
    cdef int64_t c, i, k, t, offset, m, n_after = 0, n_ret = 0
    cdef int32_t day
    cdef Record* rec
    cdef uint64_t bit
    cdef uint64_t* bitmap = NULL
    cdef int64_t* offsets
    cdef int64_t* cursor
    cdef int64_t* days = NULL
    cdef int64_t* grouped = NULL
    cdef bint use_bitmap = not days_sorted and n_local * words <= bitmap_words
    cdef bint days_done = days_sorted or use_bitmap
    for c in range(n_local):
        rec = &state[base + c]
        rec.first_us = INT64_MAX
        rec.last_us = INT64_MIN
        rec.money_frac = 0
        rec.money_lo = 0
        rec.money_hi = 0
        rec.purchase_rows = 0
        rec.return_rows = 0
        rec.frequency = 0
        rec.purchase_days = 0
        rec.last_day = NO_DAY
        rec.last_order = -1
    if use_bitmap:
        bitmap = <uint64_t*> calloc(max(n_local * words, 1), sizeof(uint64_t))
        if bitmap == NULL:
            return -1
    for i in range(lo, hi):
        t = times[i]
        if t > limit_us:
            n_after += 1
            continue
        c = local[i]
        rec = &state[base + c]
        if not _fold_amount(rec, t, amounts[i], exclude_returns):
            n_ret += 1
            continue
        if days_sorted:
            day = <int32_t> _floor_div(t, US_PER_DAY)
            if day != rec.last_day:
                rec.purchase_days += 1
                rec.last_day = day
        elif use_bitmap:
            offset = _floor_div(t, US_PER_DAY) - first_day
            k = c * words + (offset >> 6)
            bit = (<uint64_t> 1) << (offset & 63)
            if not (bitmap[k] & bit):
                bitmap[k] |= bit
                rec.purchase_days += 1
    free(bitmap)
    counts[0] += n_after
    counts[1] += n_ret
    if days_done and not has_order:
        return 0
    # Group this partition's purchase rows by customer (counting sort), then count distinct
    # days and/or orders per customer, all within cache.
    offsets = <int64_t*> malloc((n_local + 1) * sizeof(int64_t))
    cursor = <int64_t*> malloc((n_local + 1) * sizeof(int64_t))
    if offsets == NULL or cursor == NULL:
        free(offsets)
        free(cursor)
        return -1
    offsets[0] = 0
    for c in range(n_local):
        offsets[c + 1] = offsets[c] + state[base + c].purchase_rows
        cursor[c] = offsets[c]
    m = offsets[n_local]
    if not days_done:
        days = <int64_t*> malloc(max(m, 1) * sizeof(int64_t))
    if has_order:
        grouped = <int64_t*> malloc(max(m, 1) * sizeof(int64_t))
    if (not days_done and days == NULL) or (has_order and grouped == NULL):
        free(offsets)
        free(cursor)
        free(days)
        free(grouped)
        return -1
    for i in range(lo, hi):
        if times[i] > limit_us or amounts[i] < 0.0:
            continue
        c = local[i]
        k = cursor[c]
        cursor[c] = k + 1
        if not days_done:
            days[k] = _floor_div(times[i], US_PER_DAY)
        if has_order:
            grouped[k] = orders[i]
    for c in range(n_local):
        if not days_done:
            state[base + c].purchase_days = _count_distinct(days + offsets[c],
                                                            offsets[c + 1] - offsets[c])
        if has_order:
            state[base + c].frequency = _count_distinct(grouped + offsets[c],
                                                        offsets[c + 1] - offsets[c])
    free(offsets)
    free(cursor)
    free(days)
    free(grouped)
    return 0


cdef inline Record* _records(cnp.ndarray state) except NULL:
    if state.dtype.itemsize != sizeof(Record) or not state.flags.c_contiguous:
        raise ValueError("state must be a contiguous rfm.STATE_DTYPE array")
    return <Record*> cnp.PyArray_DATA(state)


def fold_worker(cnp.ndarray state,                 # OUT records (rfm.STATE_DTYPE)
                const int64_t[::1] part_offsets,   # IN  row range of each partition
                const int32_t[::1] local,          # IN  code - bases[p] of each row
                const int64_t[::1] times,          # IN  µs UTC
                const double[::1] amounts,         # IN
                const int64_t[::1] orders,         # IN  order codes, or empty
                const int64_t[::1] bases,          # IN  partition p owns codes [bases[p], bases[p+1])
                bint has_order, int64_t limit_us, bint exclude_returns, bint days_sorted,
                int64_t first_day, int64_t words,  # IN  oneshot.day_words(min time, max time)
                int64_t bitmap_words,              # IN  largest day bitmap of a partition
                int64_t first, int64_t step,       # IN  this worker folds partitions first, first + step, ...
                int64_t[:, ::1] counts):           # OUT per partition: rows after the cut, returns
    """Fold partitions ``first, first + step, ...``; ``step`` workers (``first = 0 .. step - 1``)
    may run at once, each partition being folded by one of them."""
    cdef Record* rec = _records(state)
    cdef Py_ssize_t n_parts = part_offsets.shape[0] - 1
    cdef int64_t p
    cdef int status = 0
    cdef const int32_t* loc = &local[0] if local.shape[0] else NULL
    cdef const int64_t* tim = &times[0] if times.shape[0] else NULL
    cdef const double* amo = &amounts[0] if amounts.shape[0] else NULL
    cdef const int64_t* ords = &orders[0] if orders.shape[0] else NULL
    with nogil:
        p = first
        while p < n_parts and status == 0:
            counts[p, 0] = 0
            counts[p, 1] = 0
            status = _fold_rows(rec, bases[p], bases[p + 1] - bases[p], part_offsets[p],
                                part_offsets[p + 1], loc, tim, amo, ords, has_order, limit_us,
                                exclude_returns, days_sorted, first_day, words, bitmap_words,
                                &counts[p, 0])
            p += step
    if status != 0:
        raise MemoryError("rfm fold: out of memory for a partition's scratch")


def is_sorted(const int64_t[::1] values):
    """True when ``values`` never decreases."""
    cdef Py_ssize_t i
    cdef bint ordered = True
    with nogil:
        for i in range(1, values.shape[0]):
            if values[i] < values[i - 1]:
                ordered = False
                break
    return ordered


cdef inline double _money_value(uint64_t frac, uint64_t lo, int64_t hi) noexcept nogil:
    # The fixed-point total correctly rounded to float64 (half to even): the same steps, and the
    # same bits (tested), as rfm.money_value, which the Numba kernels use.
    cdef uint64_t w[3]
    cdef uint64_t top, nxt, rest, window, mant, low
    cdef int base, lz
    cdef bint neg = hi < 0
    cdef bint sticky
    cdef double value
    w[0] = frac
    w[1] = lo
    w[2] = <uint64_t> hi
    if neg:
        _negate(w)
    rest = 0
    if w[2] != 0:
        top = w[2]
        nxt = w[1]
        rest = w[0]
        base = 128
    elif w[1] != 0:
        top = w[1]
        nxt = w[0]
        base = 64
    elif w[0] != 0:
        top = w[0]
        nxt = 0
        base = 0
    else:
        return 0.0
    lz = __builtin_clzll(top)
    if lz == 0:
        window = top
        sticky = nxt != 0 or rest != 0
    else:
        window = (top << lz) | (nxt >> (64 - lz))
        sticky = (nxt << lz) != 0 or rest != 0
    mant = window >> 11
    low = window & 0x7FF
    if low > 0x400 or (low == 0x400 and (sticky or (mant & 1))):
        mant += 1
    value = ldexp(<double> mant, base + 11 - lz - 64)
    return -value if neg else value


def money_value_of(uint64_t frac, uint64_t lo, int64_t hi):
    """The read-out of one total, for the test against ``rfm.money_value``."""
    return _money_value(frac, lo, hi)


def finalize_count(cnp.ndarray state,          # IN  records (rfm.STATE_DTYPE)
                   const int64_t[::1] order,   # IN  permutation to read them in, or empty
                   int64_t chunk,              # IN  positions per chunk of the plan
                   int64_t first, int64_t step,  # IN  this worker does chunks first, first + step, ...
                   int64_t[:, ::1] counts):    # OUT per chunk: customers who bought, returns only
    """First pass of the read-out: who bought (and who only returned), chunk by chunk, so that
    every chunk's rows of output have a known start whatever the thread count."""
    cdef Record* recs = _records(state)
    cdef Py_ssize_t n = state.shape[0]
    cdef bint permuted = order.shape[0] > 0
    cdef int64_t c, k, hi, buyers, returns_only
    cdef Record* rec
    with nogil:
        c = first
        while c * chunk < n:
            buyers = 0
            returns_only = 0
            hi = min(n, (c + 1) * chunk)
            for k in range(c * chunk, hi):
                rec = &recs[order[k]] if permuted else &recs[k]
                if rec.purchase_rows > 0:
                    buyers += 1
                elif rec.return_rows > 0:
                    returns_only += 1
            counts[c, 0] = buyers
            counts[c, 1] = returns_only
            c += step


def finalize_worker(cnp.ndarray state,           # IN  records (rfm.STATE_DTYPE)
                    const int64_t[::1] order,    # IN  permutation to read them in, or empty
                    int64_t as_of_us, bint frequency_is_rows,
                    int64_t chunk,               # IN  positions per chunk (as finalize_count)
                    const int64_t[::1] starts,   # IN  first output row of each chunk
                    int64_t first, int64_t step,  # IN  this worker does chunks first, first + step, ...
                    int64_t[::1] codes,          # OUT position (in the order read) of each buyer
                    int64_t[::1] first_us, int64_t[::1] last_us,
                    int64_t[::1] recency, int64_t[::1] tenure,
                    int64_t[::1] frequency, int64_t[::1] days,
                    double[::1] total, double[::1] mean):
    """Second pass: the feature columns of every customer with at least one purchase, in code
    order or in the order of the permutation ``order``; reading the records through it costs one
    cache line per customer, a gather of them first twice that. The monetary total is read out
    here, correctly rounded (``_money_value``), and ``mean = total / frequency``."""
    cdef Record* recs = _records(state)
    cdef Py_ssize_t n = state.shape[0]
    cdef bint permuted = order.shape[0] > 0
    cdef int64_t c, k, hi, j, freq
    cdef double money
    cdef Record* rec
    with nogil:
        c = first
        while c * chunk < n:
            j = starts[c]
            hi = min(n, (c + 1) * chunk)
            for k in range(c * chunk, hi):
                rec = &recs[order[k]] if permuted else &recs[k]
                if rec.purchase_rows == 0:
                    continue
                freq = rec.purchase_rows if frequency_is_rows else rec.frequency
                money = _money_value(rec.money_frac, rec.money_lo, rec.money_hi)
                codes[j] = k
                first_us[j] = rec.first_us
                last_us[j] = rec.last_us
                recency[j] = _floor_div(as_of_us - rec.last_us, US_PER_DAY)
                tenure[j] = _floor_div(as_of_us - rec.first_us, US_PER_DAY)
                frequency[j] = freq
                days[j] = rec.purchase_days
                total[j] = money
                mean[j] = money / <double> freq
                j += 1
            c += step


def fixed_words_of(double a):
    """(frac, lo, hi) of one amount, for the test against ``rfm.fixed_words``."""
    cdef uint64_t w[3]
    _fixed_words(a, w)
    return w[0], w[1], <int64_t> w[2]
