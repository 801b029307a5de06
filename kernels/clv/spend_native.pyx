# cython: language_level=3
"""The Gamma-Gamma spend model's fit loops (Fader & Hardie 2013, eq. 3), compiled at build time
(issue #11: their Numba versions cost ~2.5 s of JIT compilation on a first ``GammaGamma.fit`` in
a fresh process).

* ``repeat_buyers``: the rows the model is fitted on (x > 0), their checks and sums;
* ``spend_sums``: per distinct frequency the total weight and sum w log m;
* ``spend_tables`` + ``spend_chunk_sums`` + ``spend_finish``: the log-likelihood, gradient and
  Hessian in (p, q, gamma) (row sums per chunk of ``CLV_REDUCE_CHUNK`` rows, a chunk summed by
  one thread, the chunks then added in order: the result never depends on the thread count).

Expressions keep the operation order of the Numba kernels they replaced (same bits; see
tests/clv/test_clv_native.py).
"""
from libc.math cimport NAN, floor, isfinite, lgamma, log
from libc.stdint cimport int64_t

import numpy as np

cimport numpy as cnp

cnp.import_array()

include "special_native.pxi"

#: partial sums of one chunk of rows: R0, R1, D0, D1, E0, E1 (see ``spend_chunk_sums``)
DEF N_ROW_SUMS = 6


def spend_sums(const int64_t[::1] ix, int64_t nx, const double[::1] m, const double[::1] w):
    """Per distinct frequency slot j (row i is in slot ``ix[i]``): W_j = sum of weights and
    S_j = sum w log m; over all rows, sum w m and sum w m^2 (for moment starting values).
    ``w`` empty: every row weighs 1. Returns (W, S, s_m, s_m2)."""
    cdef Py_ssize_t n = ix.shape[0], i
    cdef bint has_w = w.shape[0] == n
    W_a = np.zeros(nx)
    S_a = np.zeros(nx)
    cdef double[::1] W = W_a, S = S_a
    cdef double s_m = 0.0, s_m2 = 0.0, wi, mi
    cdef int64_t j
    with nogil:
        for i in range(n):
            wi = w[i] if has_w else 1.0
            mi = m[i]
            j = ix[i]
            W[j] += wi
            S[j] += wi * log(mi)
            s_m += wi * mi
            s_m2 += wi * mi * mi
    return W_a, S_a, s_m, s_m2


def repeat_buyers(const double[::1] x, const double[::1] m, const double[::1] w):
    """The rows Gamma-Gamma is fitted on (x > 0), compacted without branches, and the counts the
    API turns into errors.

    Returns (xs, ms, ws, n_nonfinite_x, n_nonfinite_m, n_nonpositive_m, W, S, s_m, s_m2): the
    kept rows (``ws`` empty when ``w`` is); NaN/inf counts over all rows; repeat buyers with
    m <= 0; when every kept x is a whole number below 2^31 and nothing is bad, ``spend_sums``
    by whole frequency, else W and S empty and the sums 0.
    """
    cdef Py_ssize_t n = x.shape[0], i, k = 0
    cdef bint has_w = w.shape[0] == n
    xs_a = np.empty(n)
    ms_a = np.empty(n)
    ws_a = np.empty(n if has_w else 0)
    cdef double[::1] xs = xs_a, ms = ms_a, ws = ws_a
    cdef int64_t bad_x = 0, bad_m = 0, nonpos = 0
    cdef double xmax = 0.0, xi, mi
    cdef bint whole = True, keep
    with nogil:
        for i in range(n):
            xi = x[i]
            mi = m[i]
            keep = xi > 0.0
            xs[k] = xi
            ms[k] = mi
            if has_w:
                ws[k] = w[i]
            # bitwise, not and/or: short-circuits are branches, mispredicted on random x > 0
            bad_x += not isfinite(xi)
            bad_m += not isfinite(mi)
            nonpos += keep & (not mi > 0.0)
            whole &= (not keep) | (xi == floor(xi))
            xmax = xi if xi > xmax else xmax
            k += keep
    xs_a, ms_a, ws_a = xs_a[:k], ms_a[:k], ws_a[:k]
    whole &= xmax < 2147483648.0
    if not whole or bad_x or bad_m or nonpos:
        return (xs_a, ms_a, ws_a, int(bad_x), int(bad_m), int(nonpos), np.empty(0), np.empty(0),
                0.0, 0.0)
    W, S, s_m, s_m2 = spend_sums(xs_a.astype(np.int64), <int64_t>xmax + 1, ms_a, ws_a)
    return xs_a, ms_a, ws_a, int(bad_x), int(bad_m), int(nonpos), W, S, s_m, s_m2


def spend_chunk_sums(double v, const double[::1] x, const double[::1] m, const double[::1] w,
                     double[:, ::1] parts, int64_t chunk, int64_t worker, int64_t n_workers):
    """parts[c] = (R0, R1, D0, D1, E0, E1) of rows c*chunk .. of chunks c = worker,
    worker + n_workers, ...: with L = log(gamma + m x), R0 = sum w L, R1 = sum w x L,
    D0 = sum w / (gamma + m x), D1 = sum w x / (...), E0, E1 with squared denominators."""
    cdef Py_ssize_t n = x.shape[0], c, i, lo, hi
    cdef bint has_w = w.shape[0] == n
    cdef double R0, R1, D0, D1, E0, E1, wi, xi, vz, L, inv, u
    with nogil:
        c = worker
        while c < parts.shape[0]:
            lo = c * chunk
            hi = lo + chunk if lo + chunk < n else n
            R0 = R1 = D0 = D1 = E0 = E1 = 0.0
            for i in range(lo, hi):
                wi = w[i] if has_w else 1.0
                xi = x[i]
                vz = v + m[i] * xi
                L = log(vz)
                inv = 1.0 / vz
                u = wi * inv
                R0 += wi * L
                R1 += wi * xi * L
                D0 += u
                D1 += u * xi
                E0 += u * inv
                E1 += u * xi * inv
            parts[c, 0] = R0
            parts[c, 1] = R1
            parts[c, 2] = D0
            parts[c, 3] = D1
            parts[c, 4] = E0
            parts[c, 5] = E1
            c += n_workers


def spend_finish(const double[::1] params, const double[::1] ux, const double[::1] W,
                 const double[::1] S, const double[:, ::1] parts, bint want_hess):
    """Weighted total log-likelihood (eq. 3), gradient and Hessian w.r.t. (p, q, gamma): the
    terms of x alone per distinct frequency ``ux`` (weights W, sums S of w log m), then the
    row sums of ``spend_chunk_sums`` added in chunk order. Returns (ll, grad[3], hess[3, 3])."""
    cdef double p = params[0], q = params[1], v = params[2]
    cdef double lv = log(v), lg_q = lgamma(q), dg_q = digamma(q), tg_q = trigamma(q)
    cdef double total = 0.0, g0 = 0.0, g1 = 0.0, h00 = 0.0, h01 = 0.0, h11 = 0.0, wsum = 0.0
    cdef double xj, Wj, px, lx, dpq, tpq
    cdef double r[N_ROW_SUMS]
    cdef Py_ssize_t j, c, k, a, b
    for j in range(ux.shape[0]):
        xj = ux[j]
        Wj = W[j]
        px = p * xj
        lx = log(xj)
        dpq = digamma(px + q)
        total += Wj * (lgamma(px + q) - lgamma(px) - lg_q + q * lv + px * lx) \
            + (px - 1.0) * S[j]
        g0 += Wj * xj * (dpq - digamma(px) + lx) + xj * S[j]
        g1 += Wj * (dpq - dg_q + lv)
        wsum += Wj
        if want_hess:
            tpq = trigamma(px + q)
            h00 += Wj * xj * xj * (tpq - trigamma(px))
            h01 += Wj * xj * tpq
            h11 += Wj * (tpq - tg_q)
    for k in range(N_ROW_SUMS):
        r[k] = 0.0
    for c in range(parts.shape[0]):
        for k in range(N_ROW_SUMS):
            r[k] += parts[c, k]
    cdef double R0 = r[0], R1 = r[1], D0 = r[2], D1 = r[3], E0 = r[4], E1 = r[5]
    total += -p * R1 - q * R0
    grad = np.array([g0 - R1, g1 - R0, wsum * q / v - p * D1 - q * D0])
    hess_a = np.zeros((3, 3))
    cdef double[:, ::1] hess = hess_a
    if want_hess:
        hess[0, 0] = h00
        hess[0, 1] = h01
        hess[1, 1] = h11
        hess[0, 2] = -D1
        hess[1, 2] = wsum / v - D0
        hess[2, 2] = -wsum * q / (v * v) + p * E1 + q * E0
        for a in range(3):
            for b in range(a):
                hess[a, b] = hess[b, a]
    return total, grad, hess_a
