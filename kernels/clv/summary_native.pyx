# cython: language_level=3
"""The summary and input loops of fastengage.clv, compiled at build time (issue #11: their Numba
versions were ~6 s of JIT compilation on a first ``clv.summary`` + ``fit`` in a fresh process).

* ``summarize_sorted_us``: per-customer statistics of a time-ordered log, with the order check;
* ``scatter_by_customer`` + ``customer_periods_chunks``: the same for rows in any order (grouped
  by a counting sort; sums in row order, periods sorted only to count them; customers spread over workers in
  chunks, each customer computed by one thread), ``holdout_counts_sorted`` for the holdout split;
* ``unique_patterns``: distinct rows by bit pattern (predictions on many customers);
* ``rft_violations``, ``whole_patterns``: the checks and the pattern compression of ``fit``.

Loops and operation order are those of the Numba kernels they replaced, except that
``customer_periods_chunks`` sums repeat-period amounts in row order (as the reference's masked
sum does) instead of in period order; tests/clv/test_clv_native.py checks every loop against
plain NumPy references.
"""
from libc.math cimport floor, isfinite, sqrt
from libc.stdint cimport int32_t, int64_t, uint64_t
from libc.stdlib cimport free, malloc, qsort, realloc

import numpy as np

cimport numpy as cnp

cnp.import_array()

cdef int64_t INT64_MAX = 0x7FFFFFFFFFFFFFFF
cdef int64_t INT64_MIN = -INT64_MAX - 1


cdef inline int64_t _floor_div(int64_t a, int64_t b) noexcept nogil:
    cdef int64_t q = a // b  # C division truncates (cdivision): floor it like Python's //
    if (a % b != 0) and ((a < 0) != (b < 0)):
        q -= 1
    return q


# -- summary ----------------------------------------------------------------------------------
def summarize_sorted_us(const int64_t[::1] codes, const int64_t[::1] us, int64_t length,
                        int64_t offset, int64_t end_period, const double[::1] amounts,
                        int64_t n_customers, bint has_amount):
    """Per-customer statistics of rows in time order, fused with the period flooring, the as-of
    cut and the check that the rows are in time order (non-decreasing ``us``).

    In time order, a customer's rows of one period are consecutive among that customer's rows,
    so a new period is a change from the customer's last period, and the repeat-period mean is
    the sum of the amounts outside the first period over the number of repeat periods.

    Returns (ordered, first, last, n_periods, monetary, rows_after); when ``ordered`` is False
    the rows are not in time order and the other values are meaningless (the caller groups).
    """
    cdef Py_ssize_t n = codes.shape[0], i, j
    first_a = np.full(n_customers, INT64_MAX, dtype=np.int64)
    last_a = np.full(n_customers, INT64_MIN, dtype=np.int64)
    nper_a = np.zeros(n_customers, dtype=np.int64)
    repeat_a = np.zeros(n_customers, dtype=np.float64)
    monetary_a = np.zeros(n_customers, dtype=np.float64)
    cdef int64_t[::1] first = first_a, last = last_a, n_periods = nper_a
    cdef double[::1] repeat = repeat_a, monetary = monetary_a
    cdef int64_t after = 0, p, c
    cdef bint ordered = True
    with nogil:
        for i in range(n):
            if i > 0 and us[i] < us[i - 1]:
                ordered = False
                break
            p = _floor_div(us[i] - offset, length)
            if p > end_period:
                after = n - i   # time order: every later row is after as well (checked here)
                for j in range(i + 1, n):
                    if us[j] < us[j - 1]:
                        ordered = False
                        break
                break
            c = codes[i]
            if n_periods[c] == 0:
                first[c] = p
                last[c] = p
                n_periods[c] = 1
            else:
                if p != last[c]:
                    n_periods[c] += 1
                    last[c] = p
                if has_amount and p != first[c]:
                    repeat[c] += amounts[i]
        if ordered:
            for c in range(n_customers):
                if n_periods[c] > 1:
                    monetary[c] = repeat[c] / (n_periods[c] - 1)
    return ordered, first_a, last_a, nper_a, monetary_a, int(after)


def holdout_counts_sorted(const int64_t[::1] codes, const int64_t[::1] periods,
                          const double[::1] amounts, int64_t n_customers):
    """Per customer, for rows in time order: distinct periods and the mean of the raw amounts
    (0 without a row). One pass."""
    counts_a = np.zeros(n_customers, dtype=np.int64)
    rows_a = np.zeros(n_customers, dtype=np.int64)
    total_a = np.zeros(n_customers, dtype=np.float64)
    last_a = np.full(n_customers, INT64_MIN, dtype=np.int64)
    mean_a = np.zeros(n_customers, dtype=np.float64)
    cdef int64_t[::1] counts = counts_a, rows = rows_a, last = last_a
    cdef double[::1] total = total_a, mean_amount = mean_a
    cdef Py_ssize_t i
    cdef int64_t c
    with nogil:
        for i in range(codes.shape[0]):
            c = codes[i]
            if rows[c] == 0 or periods[i] != last[c]:
                counts[c] += 1
                last[c] = periods[i]
            rows[c] += 1
            total[c] += amounts[i]
        for c in range(n_customers):
            if rows[c] > 0:
                mean_amount[c] = total[c] / rows[c]
    return counts_a, mean_a


def scatter_by_customer(const int64_t[::1] codes, const int64_t[::1] periods,
                        const double[::1] amounts, int64_t n_customers, bint has_amount):
    """Counting sort of (period, amount) by customer code, rows read once in order.
    Returns (offsets[n_customers + 1], keys[n], vals[n])."""
    cdef Py_ssize_t n = codes.shape[0], i
    offsets_a = np.zeros(n_customers + 1, dtype=np.int64)
    keys_a = np.empty(n, dtype=np.int64)
    vals_a = np.empty(n, dtype=np.float64)
    cdef int64_t[::1] offsets = offsets_a, keys = keys_a
    cdef double[::1] vals = vals_a
    cdef int64_t c, pos
    with nogil:
        for i in range(n):
            offsets[codes[i] + 1] += 1
        for c in range(n_customers):
            offsets[c + 1] += offsets[c]
        for i in range(n):   # offsets[c] walks through customer c's slots, then is shifted back
            c = codes[i]
            pos = offsets[c]
            keys[pos] = periods[i]
            vals[pos] = amounts[i] if has_amount else 0.0
            offsets[c] = pos + 1
        for c in range(n_customers, 0, -1):
            offsets[c] = offsets[c - 1]
        offsets[0] = 0
    return offsets_a, keys_a, vals_a


cdef int _compare_int64(const void* a, const void* b) noexcept nogil:
    cdef int64_t x = (<const int64_t*>a)[0], y = (<const int64_t*>b)[0]
    return (x > y) - (x < y)


cdef int64_t _distinct_sorted(int64_t* keys, Py_ssize_t m) noexcept nogil:
    """Distinct values of keys[0:m] (m >= 1), sorting them in place first unless they already
    ascend (the common case: a log written in time order). Only the count is needed, so any
    sort will do: libc's qsort rather than a sort of our own."""
    cdef Py_ssize_t j
    cdef int64_t count = 1
    for j in range(1, m):
        if keys[j] < keys[j - 1]:
            qsort(keys, m, sizeof(int64_t), _compare_int64)
            break
    for j in range(1, m):
        if keys[j] != keys[j - 1]:
            count += 1
    return count


def customer_periods_chunks(const int64_t[::1] offsets, int64_t[::1] keys, double[::1] vals,
                            int64_t[::1] first, int64_t[::1] last, int64_t[::1] n_periods,
                            double[::1] monetary, double[::1] mean_amount, int64_t chunk,
                            int64_t worker, int64_t n_workers):
    """Per-customer BTYD statistics from ``scatter_by_customer``'s grouping, for the customers of
    chunks worker, worker + n_workers, ... of ``chunk`` customers (each customer is computed by
    one thread; outputs start as first = INT64 max, last = INT64 min, zeros):

    first / last period, distinct periods, the mean over repeat periods of the per-period
    amount sums (first period excluded; 0 without a repeat period) and the mean of the raw
    amounts, both summed in row order. Sorts a customer's keys in place when they do not ascend."""
    cdef Py_ssize_t n_customers = offsets.shape[0] - 1, c, lo, hi, j, start
    cdef int64_t count, first_key, last_key
    cdef double total, repeat_sum
    with nogil:
        start = worker * chunk
        while start < n_customers:
            for c in range(start, start + chunk if start + chunk < n_customers else n_customers):
                lo = offsets[c]
                hi = offsets[c + 1]
                if hi == lo:
                    continue
                first_key = keys[lo]
                last_key = keys[lo]
                for j in range(lo + 1, hi):
                    if keys[j] < first_key:
                        first_key = keys[j]
                    if keys[j] > last_key:
                        last_key = keys[j]
                total = 0.0   # both sums in row order, as the reference's masked sums
                repeat_sum = 0.0
                for j in range(lo, hi):
                    total += vals[j]
                    if keys[j] != first_key:
                        repeat_sum += vals[j]
                mean_amount[c] = total / (hi - lo)
                first[c] = first_key
                last[c] = last_key
                count = _distinct_sorted(&keys[lo], hi - lo)
                n_periods[c] = count
                if count > 1:
                    monetary[c] = repeat_sum / (count - 1)
            start += n_workers * chunk


cdef inline uint64_t _mix(uint64_t h) noexcept nogil:
    h ^= h >> 33
    h *= 0xFF51AFD7ED558CCDULL
    h ^= h >> 33
    h *= 0xC4CEB9FE1A85EC53ULL
    h ^= h >> 33
    return h


cdef uint64_t _hash_row(const uint64_t* row, Py_ssize_t k) noexcept nogil:
    cdef uint64_t h = 0x9E3779B97F4A7C15ULL
    cdef Py_ssize_t j
    for j in range(k):
        h = _mix(h ^ row[j])
    return h


cdef void* _regrow(void* p, size_t nbytes, bint* failed) noexcept nogil:
    """realloc(p, nbytes), or p itself (still to be freed) with *failed set when that fails."""
    cdef void* q = realloc(p, nbytes)
    if q == NULL:
        failed[0] = True
        return p
    return q


def unique_patterns(const uint64_t[:, ::1] bits):
    """Distinct rows of an (n, k) matrix of float64 bit patterns (exact equality), with an
    open-address hash table.

    Returns (first_row[m], inverse[n], counts[m]), patterns in first-seen order, so that a sum
    over the m patterns weighted by counts equals the one over the n rows. The table grows with
    the number of distinct rows (load factor below 1/2), not of rows, and probes compare against
    a compact copy of the distinct keys: few distinct patterns stay cache-resident however long
    the input is."""
    cdef Py_ssize_t n = bits.shape[0], k = bits.shape[1], i, j, q, m = 0
    cdef Py_ssize_t size = 1024, cap = 1024
    cdef uint64_t mask = <uint64_t>(size - 1), slot
    cdef int64_t p
    cdef bint same, failed = False
    cdef int64_t* table = <int64_t*>malloc(size * sizeof(int64_t))
    cdef uint64_t* keys = <uint64_t*>malloc(cap * k * sizeof(uint64_t) + 8)
    cdef int64_t* first_row = <int64_t*>malloc(cap * sizeof(int64_t))
    cdef int64_t* counts = <int64_t*>malloc(cap * sizeof(int64_t))
    inverse_a = np.empty(n, dtype=np.int64)
    cdef int64_t[::1] inverse = inverse_a, out_first, out_counts
    try:
        if table == NULL or keys == NULL or first_row == NULL or counts == NULL:
            raise MemoryError()
        with nogil:
            for q in range(size):
                table[q] = -1
            for i in range(n):
                slot = _hash_row(&bits[i, 0], k) & mask
                while True:
                    p = table[slot]
                    if p == -1:
                        if m == cap:
                            cap *= 2
                            keys = <uint64_t*>_regrow(keys, cap * k * sizeof(uint64_t) + 8,
                                                      &failed)
                            first_row = <int64_t*>_regrow(first_row, cap * sizeof(int64_t),
                                                          &failed)
                            counts = <int64_t*>_regrow(counts, cap * sizeof(int64_t), &failed)
                            if failed:
                                break
                        for j in range(k):
                            keys[m * k + j] = bits[i, j]
                        table[slot] = m
                        first_row[m] = i
                        counts[m] = 1
                        inverse[i] = m
                        m += 1
                        if 2 * m > size:
                            # keep the load factor below 1/2: double the table and reinsert
                            size *= 2
                            mask = <uint64_t>(size - 1)
                            table = <int64_t*>_regrow(table, size * sizeof(int64_t), &failed)
                            if failed:
                                break
                            for q in range(size):
                                table[q] = -1
                            for q in range(m):
                                slot = _hash_row(&keys[q * k], k) & mask
                                while table[slot] != -1:
                                    slot = (slot + 1) & mask
                                table[slot] = q
                        break
                    same = True
                    for j in range(k):
                        if keys[p * k + j] != bits[i, j]:
                            same = False
                            break
                    if same:
                        counts[p] += 1
                        inverse[i] = p
                        break
                    slot = (slot + 1) & mask
                if failed:
                    break
        if failed:
            raise MemoryError()
        first_a = np.empty(m, dtype=np.int64)
        counts_a = np.empty(m, dtype=np.int64)
        out_first = first_a
        out_counts = counts_a
        for q in range(m):
            out_first[q] = first_row[q]
            out_counts[q] = counts[q]
        return first_a, inverse_a, counts_a
    finally:
        free(table)
        free(keys)
        free(first_row)
        free(counts)


# -- fit input: checks and patterns -----------------------------------------------------------
def rft_violations(const double[::1] x, const double[::1] tx, const double[::1] T):
    """One pass over BTYD summaries counting NaN/inf in x, t_x and T, x < 0, t_x < 0 and
    t_x > T (1 + 1e-12) + 1e-12: (bad_x, bad_tx, bad_T, neg_x, neg_tx, over)."""
    cdef Py_ssize_t i
    cdef int64_t bad_x = 0, bad_tx = 0, bad_T = 0, neg_x = 0, neg_tx = 0, over = 0
    cdef double xi, ti, Ti
    with nogil:
        for i in range(x.shape[0]):
            xi = x[i]
            ti = tx[i]
            Ti = T[i]
            bad_x += not isfinite(xi)
            bad_tx += not isfinite(ti)
            bad_T += not isfinite(Ti)
            neg_x += xi < 0.0
            neg_tx += ti < 0.0
            over += ti > Ti * (1.0 + 1e-12) + 1e-12
    return int(bad_x), int(bad_tx), int(bad_T), int(neg_x), int(neg_tx), int(over)


def whole_patterns(const double[::1] x, const double[::1] tx, const double[::1] T,
                   const double[::1] w, int64_t max_y):
    """Distinct (x, t_x, T) rows of whole-number data with their total weight.

    ``w`` empty: every row weighs 1. Returns (ok, px, ptx, pT, pw); ok is False (arrays empty)
    when a value is not a whole number, is negative, t_x > T, or T >= max_y (the caller then
    hashes). Rows are bucketed by x (counting sort); within a bucket the (t_x, T) pairs are
    deduplicated in a dense int32 slot array over the triangle T (T + 1) / 2 + t_x, reset after
    each bucket. Patterns come by increasing x, then first appearance.
    """
    cdef Py_ssize_t n = x.shape[0], i, j, q, pos
    cdef bint has_w = w.shape[0] == n
    cdef bint ok = True
    cdef double xmax = 0.0, ymax = 0.0, xi, ti, Ti_d, wt
    empty = np.empty(0, np.float64)
    with nogil:
        for i in range(n):
            xi = x[i]
            ti = tx[i]
            Ti_d = T[i]
            ok &= (xi >= 0.0) & (ti >= 0.0) & (ti <= Ti_d) & (Ti_d < max_y) & (xi < n + 1024.0)
            ok &= (floor(xi) == xi) & (floor(ti) == ti) & (floor(Ti_d) == Ti_d)
            xmax = xi if xi > xmax else xmax
            ymax = Ti_d if Ti_d > ymax else ymax
    if not ok:
        return False, empty, empty, empty, empty
    cdef Py_ssize_t nx = <Py_ssize_t>xmax + 1, ny = <Py_ssize_t>ymax + 1
    offsets_a = np.zeros(nx + 1, dtype=np.int64)
    key_a = np.empty(n, dtype=np.int32)
    wk_a = np.empty(n if has_w else 0, dtype=np.float64)
    slot_a = np.full(ny * (ny + 1) // 2, -1, dtype=np.int32)
    px_a = np.empty(n, dtype=np.float64)
    pk_a = np.empty(n, dtype=np.int32)
    pw_a = np.empty(n, dtype=np.float64)
    cdef int64_t[::1] offsets = offsets_a
    cdef int32_t[::1] key = key_a, slot = slot_a, pk = pk_a
    cdef double[::1] wk = wk_a, px = px_a, pw = pw_a
    cdef int64_t Ti, k
    cdef int32_t s
    cdef Py_ssize_t m = 0, start
    with nogil:
        for i in range(n):
            offsets[<Py_ssize_t>x[i] + 1] += 1
        for j in range(nx):
            offsets[j + 1] += offsets[j]
        # offsets[j] now is where bucket j starts: fill from there, then shift back
        for i in range(n):
            j = <Py_ssize_t>x[i]
            pos = offsets[j]
            Ti = <int64_t>T[i]
            key[pos] = <int32_t>(Ti * (Ti + 1) // 2 + <int64_t>tx[i])
            if has_w:
                wk[pos] = w[i]
            offsets[j] = pos + 1
        for j in range(nx, 0, -1):
            offsets[j] = offsets[j - 1]
        offsets[0] = 0
        for j in range(nx):
            start = m
            for pos in range(offsets[j], offsets[j + 1]):
                k = key[pos]
                s = slot[k]
                wt = wk[pos] if has_w else 1.0
                if s == -1:
                    slot[k] = <int32_t>m
                    px[m] = j
                    pk[m] = <int32_t>k
                    pw[m] = wt
                    m += 1
                else:
                    pw[s] += wt
            for q in range(start, m):
                slot[pk[q]] = -1
    ptx_a = np.empty(m, dtype=np.float64)
    pT_a = np.empty(m, dtype=np.float64)
    cdef double[::1] ptx = ptx_a, pT = pT_a
    with nogil:
        for q in range(m):
            k = pk[q]
            Ti = <int64_t>((sqrt(8.0 * k + 1.0) - 1.0) / 2.0)
            while Ti * (Ti + 1) // 2 > k:
                Ti -= 1
            while (Ti + 1) * (Ti + 2) // 2 <= k:
                Ti += 1
            pT[q] = Ti
            ptx[q] = k - Ti * (Ti + 1) // 2
    return True, px_a[:m].copy(), ptx_a, pT_a, pw_a[:m].copy()
