# cython: language_level=3
"""The Pareto/NBD, BG/BB and shifted-beta-geometric kernels of fastengage.clv, compiled at build
time (issue #11: a cold first ``ParetoNBD().fit`` spent ~7 s CPU compiling 36 Numba
specialisations, BG/BB and sBG ~3 s each, for work that takes milliseconds).

Every per-row launch takes (..., chunk, worker, n_workers) and does the rows of chunks worker,
worker + n_workers, ... of ``chunk`` rows with the GIL released; ``kernels.clv.special.threaded``
runs one call per worker through the launch rule's threads. A row's value never depends on the
thread count, and every sum over rows is taken per chunk (a chunk summed by one thread) or
serially, then in order: fits are bit-identical for any thread count.

The scalar kernels keep the operation order of the Numba versions they replaced, with the same
libm functions and no floating-point reassociation (tests/clv/test_clv_models_native.py checks
them against the NumPy/mpmath references of tests/naive_clv.py).
"""
from libc.math cimport (INFINITY, NAN, ceil, cosh, exp, expm1, fabs, isfinite, lgamma, log,
                        log1p, round, sinh, sqrt, tan)
from libc.stdint cimport int64_t

import numpy as np

cimport numpy as cnp

cnp.import_array()

cdef double TINY = 1e-17

include "special_native.pxi"
include "models_pareto.pxi"
include "models_pmf.pxi"
include "models_discrete.pxi"


cdef inline double one_minus_pow_over(double e, double log_q) noexcept nogil:
    """(1 - q**e) / e for log_q = log(q) <= 0, continuous at e = 0."""
    cdef double v = e * log_q
    if fabs(e) < 1e-12:
        return -log_q * (1.0 - 0.5 * v)
    return -expm1(v) / e


def set_pareto_config(double near_one_z, double integer_gap, int64_t direct_terms,
                      int64_t max_terms, const double[::1] gl_x, const double[::1] gl_w):
    """The tunables of kernels/common/config.py and the pmf's Gauss-Legendre rule (20 nodes),
    set once at import by kernels/clv/pareto.py."""
    global PARETO_NEAR_ONE_Z, PARETO_INTEGER_GAP, PARETO_DIRECT_TERMS, PARETO_MAX_TERMS, GL_N
    if gl_x.shape[0] != 20 or gl_w.shape[0] != 20:
        raise ValueError("the Gauss-Legendre rule must have 20 nodes")
    PARETO_NEAR_ONE_Z = near_one_z
    PARETO_INTEGER_GAP = integer_gap
    PARETO_DIRECT_TERMS = direct_terms
    PARETO_MAX_TERMS = max_terms
    for j in range(20):
        GL_X[j] = gl_x[j]
        GL_W[j] = gl_w[j]
    GL_N = 20


# -- scalar entry points (tests, and callers evaluating one pattern) ---------------------------
def pareto_log_F(double r, double alpha, double s, double beta, double x, double y):
    """log F(y) and (d/dr, d/dalpha, d/ds, d/dbeta) of it: series, else quadrature."""
    cdef double out[5]
    log_F(r, alpha, s, beta, x, y, NULL, out)
    return out[0], out[1], out[2], out[3], out[4]


def pareto_log_F_series(double r, double alpha, double s, double beta, double x, double y):
    """log F(y) and gradient by the series alone (NaN where it is too slow)."""
    cdef double out[5]
    log_F_series(r, alpha, s, beta, x, y, NULL, out)
    return out[0], out[1], out[2], out[3], out[4]


def pareto_log_F_quad(double r, double alpha, double s, double beta, double x, double y):
    """log F(y) and gradient by the exp-sinh quadrature alone."""
    cdef double out[5]
    log_F_quad(r, alpha, s, beta, x, y, out)
    return out[0], out[1], out[2], out[3], out[4]


# -- Pareto/NBD likelihood --------------------------------------------------------------------
def pareto_x_tables(const double[::1] params, const double[::1] ux):
    """Per distinct frequency: the 9 series constants of S (log Pochhammer ratio and the
    connection formula's z-free parts) and (head of ll, its d/dr). Returns (xk[nx, 9],
    hx[nx, 2])."""
    cdef double r = params[0], alpha = params[1], s = params[2], beta = params[3]
    cdef Py_ssize_t nx = ux.shape[0], j
    xk_a = np.empty((nx, 9))
    hx_a = np.empty((nx, 2))
    cdef double[:, ::1] xk = xk_a, hx = hx_a
    cdef double e, f, lg_r, dg_r, la, lb
    with nogil:
        for j in range(nx):
            series_parameters(r, alpha, s, beta, ux[j], &e, &f)
            series_constants(e, f, &xk[j, 0])
        lg_r = lgamma(r)
        dg_r = digamma(r)
        la = log(alpha)
        lb = log(beta)
        for j in range(nx):
            hx[j, 0] = lgamma(r + ux[j]) - lg_r + r * la + s * lb
            hx[j, 1] = digamma(r + ux[j]) - dg_r + la
    return xk_a, hx_a


def pareto_pairs(const double[::1] params, const double[::1] qx, const double[::1] qy,
                 const int64_t[::1] jq, const double[:, ::1] xk, double[::1] lF,
                 double[:, ::1] dF, int64_t chunk, int64_t worker, int64_t n_workers):
    """log F and its gradient at the distinct (x, y) pairs of chunks worker, worker + n_workers,
    ... (pair q has x = qx[q], y = qy[q] and the series constants xk[jq[q]])."""
    cdef double r = params[0], alpha = params[1], s = params[2], beta = params[3]
    cdef Py_ssize_t n = qx.shape[0], q, lo, hi
    cdef double v[5]
    with nogil:
        lo = worker * chunk
        while lo < n:
            hi = lo + chunk if lo + chunk < n else n
            for q in range(lo, hi):
                log_F(r, alpha, s, beta, qx[q], qy[q], &xk[jq[q], 0], v)
                lF[q] = v[0]
                dF[q, 0] = v[1]
                dF[q, 1] = v[2]
                dF[q, 2] = v[3]
                dF[q, 3] = v[4]
            lo += n_workers * chunk


cdef void _pareto_tab_rows(Py_ssize_t lo, Py_ssize_t hi, double r, double alpha, double s,
                           double beta, const double[::1] lF, const double[:, ::1] dF,
                           const double[:, ::1] hx, const double[::1] ux, const int64_t[::1] ix,
                           const int64_t[::1] ia, const int64_t[::1] ib, const double[::1] T,
                           const double[::1] w, double* out) noexcept nogil:
    """Sums over patterns lo..hi-1 in row order: (ll, d_r, d_alpha, d_s, d_beta) into out."""
    cdef double total = 0.0, g0 = 0.0, g1 = 0.0, g2 = 0.0, g3 = 0.0
    cdef double inv_s = 1.0 / s, lb = log(beta)
    cdef double x, laT, lbT, l1, rsx, rho, l2, lse, w1, w2, d_r, d_al, d_s, d_be, c, wi
    cdef int64_t j, qa, qb
    cdef Py_ssize_t i
    for i in range(lo, hi):
        j = ix[i]
        x = ux[j]
        laT = log(alpha + T[i])
        lbT = log(beta + T[i])
        l1 = -(r + x) * laT - s * lbT
        qa = ia[i]
        qb = ib[i]
        rsx = r + s + x
        rho = exp(lF[qb] - lF[qa])
        l2 = -INFINITY
        if rho < 1.0:
            l2 = log(s) - log(rsx) + lF[qa] + log1p(-rho)
        lse = logaddexp(l1, l2)
        w1 = exp(l1 - lse)
        w2 = 1.0 - w1 if l2 > -INFINITY else 0.0
        d_r = hx[j, 1] - w1 * laT
        d_al = r / alpha - w1 * (r + x) / (alpha + T[i])
        d_s = lb - w1 * lbT
        d_be = s / beta - w1 * s / (beta + T[i])
        if w2 > 0.0:
            c = w2 / (1.0 - rho)
            d_r += -w2 / rsx + c * (dF[qa, 0] - rho * dF[qb, 0])
            d_al += c * (dF[qa, 1] - rho * dF[qb, 1])
            d_s += w2 * (inv_s - 1.0 / rsx) + c * (dF[qa, 2] - rho * dF[qb, 2])
            d_be += c * (dF[qa, 3] - rho * dF[qb, 3])
        wi = w[i]
        total += wi * (hx[j, 0] + lse)
        g0 += wi * d_r
        g1 += wi * d_al
        g2 += wi * d_s
        g3 += wi * d_be
    out[0] = total
    out[1] = g0
    out[2] = g1
    out[3] = g2
    out[4] = g3


def pareto_chunk_sums(const double[::1] params, const double[::1] lF, const double[:, ::1] dF,
                      const double[:, ::1] hx, const double[::1] ux, const int64_t[::1] ix,
                      const int64_t[::1] ia, const int64_t[::1] ib, const double[::1] T,
                      const double[::1] w, double[:, ::1] parts, int64_t chunk, int64_t worker,
                      int64_t n_workers):
    """parts[c] = the 5 sums of patterns of chunk c, for chunks worker, worker + n_workers, ..."""
    cdef double r = params[0], alpha = params[1], s = params[2], beta = params[3]
    cdef Py_ssize_t n = ix.shape[0], c, lo, hi
    with nogil:
        c = worker
        while c < parts.shape[0]:
            lo = c * chunk
            hi = lo + chunk if lo + chunk < n else n
            _pareto_tab_rows(lo, hi, r, alpha, s, beta, lF, dF, hx, ux, ix, ia, ib, T, w,
                             &parts[c, 0])
            c += n_workers


def ordered_column_sums(const double[:, ::1] parts):
    """Column sums of per-chunk (or per-row) partial sums, rows in order, from 0.0."""
    cdef Py_ssize_t k = parts.shape[1], c, j
    sums_a = np.zeros(k)
    cdef double[::1] sums = sums_a
    for c in range(parts.shape[0]):
        for j in range(k):
            sums[j] += parts[c, j]
    return sums_a


def weighted_totals(const double[:, ::1] terms, const double[::1] w):
    """(sum_i w_i terms[i, 0], [sum_i w_i terms[i, j] for j >= 1]) in row order: the reduction
    of the per-row likelihood kernels (special.weighted_totals)."""
    cdef Py_ssize_t n = terms.shape[0], k = terms.shape[1], i, j
    sums_a = np.zeros(k)
    cdef double[::1] sums = sums_a
    cdef double wi
    with nogil:
        for i in range(n):
            wi = w[i]
            for j in range(k):
                sums[j] += wi * terms[i, j]
    return sums_a[0], sums_a[1:].copy()


def pareto_rows(const double[::1] params, const double[::1] x, const double[::1] tx,
                const double[::1] T, double[:, ::1] terms, int64_t chunk, int64_t worker,
                int64_t n_workers):
    """terms[i] = (ll_i, d ll_i / d(r, alpha, s, beta)) of each row of chunks worker, ..."""
    cdef double r = params[0], alpha = params[1], s = params[2], beta = params[3]
    cdef Py_ssize_t n = x.shape[0], i, lo, hi
    cdef double v[6]
    with nogil:
        lo = worker * chunk
        while lo < n:
            hi = lo + chunk if lo + chunk < n else n
            for i in range(lo, hi):
                pareto_pattern(r, alpha, s, beta, x[i], tx[i], T[i], True, v)
                terms[i, 0] = v[0]
                terms[i, 1] = v[1]
                terms[i, 2] = v[2]
                terms[i, 3] = v[3]
                terms[i, 4] = v[4]
            lo += n_workers * chunk


# -- Pareto/NBD predictions -------------------------------------------------------------------
DEF P_ALIVE = 0
DEF P_EXPECTED = 1
DEF P_POPULATION = 2
DEF P_PMF = 3


def pareto_predict(int kind, const double[::1] params, const double[::1] t, const double[::1] x,
                   const double[::1] tx, const double[::1] T, double[::1] out, int64_t chunk,
                   int64_t worker, int64_t n_workers):
    """Per row of chunks worker, worker + n_workers, ... (``out`` starts zeroed):

    * kind 0: P(alive at T + t | x, t_x, T) = P(alive at T) ((beta+T)/(beta+T+t))^s;
    * kind 1: E[Y(t) | x, t_x, T] (Fader & Hardie's note, eq. 26; t <= 0 gives 0);
    * kind 2: E[X(t)] (eq. 17; ``x``, ``tx``, ``T`` unused);
    * kind 3: P(X(t) = x) (eq. 19, as an integral over the lifetime; ``tx``, ``T`` unused).
    """
    cdef double r = params[0], alpha = params[1], s = params[2], beta = params[3]
    cdef Py_ssize_t n = t.shape[0], i, lo, hi
    cdef double v[6]
    cdef double lp, bt, h
    with nogil:
        lo = worker * chunk
        while lo < n:
            hi = lo + chunk if lo + chunk < n else n
            for i in range(lo, hi):
                if kind == P_ALIVE:
                    pareto_pattern(r, alpha, s, beta, x[i], tx[i], T[i], False, v)
                    lp = v[5]
                    if t[i] > 0.0:
                        lp += s * (log(beta + T[i]) - log(beta + T[i] + t[i]))
                    out[i] = exp(lp)
                elif kind == P_EXPECTED:
                    if not t[i] <= 0.0:   # (NaN t gives NaN)
                        bt = beta + T[i]
                        h = one_minus_pow_over(s - 1.0, log(bt) - log(bt + t[i]))
                        pareto_pattern(r, alpha, s, beta, x[i], tx[i], T[i], False, v)
                        out[i] = exp(v[5]) * (r + x[i]) / (alpha + T[i]) * bt * h
                elif kind == P_POPULATION:
                    if not t[i] <= 0.0:
                        out[i] = r * beta / alpha * one_minus_pow_over(
                            s - 1.0, log(beta) - log(beta + t[i]))
                else:
                    out[i] = pareto_probability_n(r, alpha, s, beta, t[i], x[i])
            lo += n_workers * chunk


def pareto_discounted(const double[::1] params, const double[::1] x, const double[::1] T,
                      const double[::1] times, const double[::1] disc, double[::1] out,
                      int64_t chunk, int64_t worker, int64_t n_workers):
    """Per (x, T) pair of chunks worker, ...: sum_h (E[Y(t_h) | alive at T] - E[Y(t_h-1) | alive
    at T]) disc_h, with E[Y(t) | alive at T] = (r+x)(beta+T)/((alpha+T)(s-1)) [1 -
    ((beta+T)/(beta+T+t))^(s-1)]."""
    cdef double r = params[0], alpha = params[1], s = params[2], beta = params[3]
    cdef Py_ssize_t n = x.shape[0], n_times = times.shape[0], i, h, lo, hi
    cdef double acc, bt, lead
    with nogil:
        lo = worker * chunk
        while lo < n:
            hi = lo + chunk if lo + chunk < n else n
            for i in range(lo, hi):
                acc = 0.0   # summed by parts: sum_h E[Y(t_h)] (disc_h - disc_h+1); E[Y(t<=0)] = 0
                for h in range(n_times):
                    if times[h] > 0.0:
                        bt = beta + T[i]
                        lead = (r + x[i]) / (alpha + T[i]) * bt
                        acc += (disc[h] - (disc[h + 1] if h + 1 < n_times else 0.0)) * \
                            (lead * one_minus_pow_over(s - 1.0, log(bt) - log(bt + times[h])))
                out[i] = acc
            lo += n_workers * chunk

