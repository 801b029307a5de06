# cython: language_level=3
"""The loops of experiment readouts, compiled at build time (issue #11: a first readout
compiles nothing).

Design: ``fastengage/experiments/_aggregate.py`` runs :func:`group_sums_worker` on
``n_threads`` threads through :func:`fastengage.kernels.common.launch.run_threaded`; the
sequential readouts call :func:`prob_b_beats_a` / :func:`expected_loss`, the uplift curves
:func:`ranking_cumulants`. References: ``tests/naive_experiments.py``, statsmodels and scipy.
"""
cimport numpy as cnp
from libc.math cimport exp, lgamma, log
from libc.stdint cimport int64_t, uint8_t

import numpy as np

cnp.import_array()

cdef extern from "../common/atomic.h" nogil:
    long long fe_fetch_add(long long* p, long long v)


def group_sums_worker(const int64_t[::1] groups, const double[:, ::1] columns,   # IN
                      const double[::1] shift, const int64_t[:, ::1] pairs,      # IN
                      double[::1] counts, double[:, ::1] sums,                   # OUT (zeroed)
                      double[:, ::1] squares, double[:, ::1] cross,              # OUT (zeroed)
                      int64_t[::1] nonbinary, int64_t[::1] next_task):           # OUT, IN/OUT
    """Sufficient statistics per group (segment x variant). ``columns`` is (n_cols, n_rows);
    ``pairs`` (n_pairs, 2) column indices. Task 0 counts rows per group, task ``1 + c`` sums
    column ``c`` minus ``shift[c]`` (the column mean, which keeps the sums of squares free of
    cancellation) and its squares, task ``1 + n_cols + p`` the cross products of pair ``p``.
    Each task adds its rows in row order and one thread does a task: the results do not depend
    on the thread count."""
    cdef Py_ssize_t n = groups.shape[0], n_cols = columns.shape[0], n_pairs = pairs.shape[0]
    cdef Py_ssize_t n_tasks = 1 + n_cols + n_pairs, task, i, c, a, b
    cdef long long* counter = <long long*> &next_task[0]
    cdef double raw, v, sa, sb
    cdef int64_t other, g
    with nogil:
        task = fe_fetch_add(counter, 1)
        while task < n_tasks:
            if task == 0:
                for i in range(n):
                    counts[groups[i]] += 1
            elif task <= n_cols:
                c = task - 1
                other = 0
                for i in range(n):
                    raw = columns[c, i]
                    if raw != 0.0 and raw != 1.0:
                        other += 1
                    v = raw - shift[c]
                    g = groups[i]
                    sums[g, c] = sums[g, c] + v
                    squares[g, c] = squares[g, c] + v * v
                nonbinary[c] = other
            else:
                c = task - 1 - n_cols
                a = pairs[c, 0]
                b = pairs[c, 1]
                sa = shift[a]
                sb = shift[b]
                for i in range(n):
                    g = groups[i]
                    cross[g, c] = cross[g, c] + (columns[a, i] - sa) * (columns[b, i] - sb)
            task = fe_fetch_add(counter, 1)


cdef inline double _lbeta(double a, double b) noexcept nogil:
    return lgamma(a) + lgamma(b) - lgamma(a + b)


cpdef double prob_b_beats_a(double a1, double b1, double a2, double b2) noexcept nogil:
    """P(B > A) for A ~ Beta(a1, b1), B ~ Beta(a2, b2), by Evan Miller's closed-form sum
    ``sum_{i<a2} exp(lbeta(a1+i, b1+b2) - log(b2+i) - lbeta(1+i, b2) - lbeta(a1, b1))``;
    ``a2`` must be a positive integer (1 + conversions under a Beta(1, 1) prior)."""
    cdef double total = 0.0, base = _lbeta(a1, b1)
    cdef Py_ssize_t i
    for i in range(<Py_ssize_t>a2):
        total += exp(_lbeta(a1 + i, b1 + b2) - log(b2 + i) - _lbeta(1.0 + i, b2) - base)
    return min(max(total, 0.0), 1.0)


cpdef double expected_loss(double a1, double b1, double a2, double b2) noexcept nogil:
    """E[max(A - B, 0)]: what choosing B costs, per user, if A is in fact better."""
    cdef double win_a_plus = 1.0 - prob_b_beats_a(a1 + 1.0, b1, a2, b2)  # A' ~ Beta(a1+1, b1)
    cdef double win_a = 1.0 - prob_b_beats_a(a1, b1, a2 + 1.0, b2)       # B' ~ Beta(a2+1, b2)
    return max(a1 / (a1 + b1) * win_a_plus - a2 / (a2 + b2) * win_a, 0.0)


def ranking_cumulants(const int64_t[::1] order, const double[::1] score,
                      const uint8_t[::1] treated, const double[::1] outcome):
    """Walk rows in ``order`` (descending score); at the last row of each run of equal scores
    emit (rows so far, treated so far, control so far, treated outcome sum, control outcome
    sum). Returns a (k, 5) float64 array: the points of the uplift and Qini curves."""
    cdef Py_ssize_t n = order.shape[0], i, k = 0
    out_arr = np.empty((n, 5))
    cdef double[:, ::1] out = out_arr
    cdef double nt = 0.0, nc = 0.0, yt = 0.0, yc = 0.0
    cdef int64_t r
    with nogil:
        for i in range(n):
            r = order[i]
            if treated[r]:
                nt += 1.0
                yt += outcome[r]
            else:
                nc += 1.0
                yc += outcome[r]
            if i == n - 1 or score[order[i + 1]] != score[r]:
                out[k, 0] = i + 1.0
                out[k, 1] = nt
                out[k, 2] = nc
                out[k, 3] = yt
                out[k, 4] = yc
                k += 1
    return out_arr[:k]
