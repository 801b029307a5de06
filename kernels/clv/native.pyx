# cython: language_level=3
"""The BG/NBD and MBG/NBD likelihood, predictions and the optimiser's per-step arithmetic of
fastengage.clv, compiled at build time (issue #11: a cold first ``BetaGeo.fit`` in a fresh
process spent ~7 s CPU compiling the Numba versions of these loops, for work that takes
milliseconds).

* ``bg_tables`` / ``bg_chunk_sums`` / ``bg_finish``: the log-likelihood with its gradient and
  Hessian over tabulated special functions (the sums per chunk of ``CLV_REDUCE_CHUNK``
  patterns, a chunk summed by one thread, the chunks then added in order: the result never
  depends on the thread count);
* ``bg_predict``: P(alive) and the conditional expected purchases; ``bg_discounted`` the
  discounted expected purchases of CLV;
* ``log_space_objective``, ``damped_newton_step``: every model's Newton step.

Every expression is written in the operation order of the Numba kernels it replaced, with the
same libm functions and no floating-point reassociation, so fits and predictions keep their
bits (tests/clv/test_clv_native.py checks them against plain NumPy references).
"""
from libc.math cimport INFINITY, NAN, exp, expm1, fabs, isfinite, lgamma, log, log1p, sqrt
from libc.stdint cimport int64_t

import numpy as np

cimport numpy as cnp

cnp.import_array()

#: hard cap on the terms of the hypergeometric series (see kernels/clv/special.py)
cdef int64_t MAX_TERMS = 2000000
cdef double TINY = 1e-17
#: the 18 partial sums of one chunk of patterns (see ``_tab_rows``)
DEF N_SUMS = 18
#: columns of the per-frequency table (see ``bg_tables``)
DEF N_TAB = 13


# -- special functions (the same series as kernels/clv/special.py) ----------------------------
include "special_native.pxi"


cdef inline double expit(double u) noexcept nogil:
    cdef double e
    if u >= 0:
        return 1.0 / (1.0 + exp(-u))
    e = exp(u)
    return e / (1.0 + e)


cdef inline double one_minus_pow_over(double e, double log_q) noexcept nogil:
    """(1 - q**e) / e for log_q = log(q) <= 0, continuous at e = 0."""
    cdef double v = e * log_q
    if fabs(e) < 1e-12:
        return -log_q * (1.0 - 0.5 * v)
    return -expm1(v) / e


cdef double _series(double c_minus_k, double a, double shift, double c, double z, double term,
                    double total, int64_t n) noexcept nogil:
    """Continue total = sum of terms t_n with t_{n+1} = t_n (c-k+n) (a+n-shift) / ((c+n) (n+1)) z
    from the term of index n: the hypergeometric tails of ``bg_tail_series`` (shift 1) and
    ``_survive`` (shift 0). Stops when the tail after a term is below 1e-17 of the total, rb
    bounding every later ratio, or when a term is 0."""
    cdef double ratio, rb
    while n < MAX_TERMS:
        term *= (c_minus_k + n) * (a + n - shift) / ((c + n) * (n + 1.0)) * z
        n += 1
        total += term
        ratio = fabs((c_minus_k + n) * (a + n - shift) / ((c + n) * (n + 1.0)) * z)
        rb = ratio if ratio > z else z
        if (rb < 1.0 and fabs(term) * rb < TINY * (1.0 - rb) * fabs(total)) or term == 0.0:
            break
    return total


cdef double bg_tail_series(double c_minus_k, double a, double c, double z) noexcept nogil:
    """G = sum_{n>=1} (c-k)_n (a)_{n-1} / ((c)_n n!) z^n, for 0 <= z < 1."""
    if z == 0.0:
        return 0.0
    cdef double term = (c_minus_k) / c * z   # n = 1: (c-k)_1 (a)_0 / ((c)_1 1!) z
    return _series(c_minus_k, a, 1.0, c, z, term, term, 1)


cdef double bg_conditional_alive_expectation(double k, double a, double c,
                                             double z) noexcept nogil:
    """E[purchases in (T, T+t] | alive at T] (FHL 2005 eq. 10), c [h(a-1) - (1-z)^(a-1) G]."""
    if z <= 0.0:
        return 0.0
    cdef double log1mz = log1p(-z)
    cdef double g = bg_tail_series(c - k, a, c, z)
    return c * (one_minus_pow_over(a - 1.0, log1mz) - exp((a - 1.0) * log1mz) * g)


# -- BG/NBD and MBG/NBD likelihood ------------------------------------------------------------
def bg_tables(const double[::1] params, const double[::1] ux, const double[::1] uy,
              double m):
    """The parameter-dependent tables of one likelihood evaluation: per distinct frequency the
    13 constants of FHL 2005 eq. 6 and their derivatives (columns as in ``_tab_rows``), and per
    distinct recency/T value log(alpha + y) and 1 / (alpha + y). Returns (tab, ly, iy)."""
    cdef double r = params[0], alpha = params[1], a = params[2], b = params[3]
    cdef Py_ssize_t nx = ux.shape[0], ny = uy.shape[0], j, k
    tab_a = np.empty((nx, N_TAB))
    ly_a = np.empty(ny)
    iy_a = np.empty(ny)
    cdef double[:, ::1] tab = tab_a
    cdef double[::1] ly = ly_a, iy = iy_a
    cdef double lg_r, dg_r, tg_r, lg_ab, lg_b, dg_ab, dg_b, tg_ab, tg_b, la, x, c0, tg_abx
    with nogil:
        lg_r = lgamma(r)
        dg_r = digamma(r)
        tg_r = trigamma(r)
        lg_ab = lgamma(a + b)
        lg_b = lgamma(b)
        dg_ab = digamma(a + b)
        dg_b = digamma(b)
        tg_ab = trigamma(a + b)
        tg_b = trigamma(b)
        la = log(alpha)
        for j in range(nx):
            x = ux[j]
            c0 = lg_ab - lg_b - lgamma(a + b + x + m)
            tg_abx = trigamma(a + b + x + m)
            tab[j, 0] = lgamma(r + x) - lg_r + r * la                        # head
            tab[j, 1] = c0 + lgamma(b + x + m)                                # K1
            if x > 0 or m > 0:
                tab[j, 2] = c0 + log(a) + lgamma(b + x + m - 1.0)            # K2
                tab[j, 6] = digamma(b + x + m - 1.0) - dg_b                   # d K2 / db - c0_b
                tab[j, 11] = tg_ab - tg_b - tg_abx + trigamma(b + x + m - 1.0)  # d2 t2 / db2
                tab[j, 12] = 1.0 / (b + x + m - 1.0)                          # d(t1 - t2) / db
            else:
                tab[j, 2] = -INFINITY
                tab[j, 6] = 0.0
                tab[j, 11] = 0.0
                tab[j, 12] = 0.0
            tab[j, 3] = digamma(r + x) - dg_r + la                            # d head / dr
            tab[j, 4] = dg_ab - digamma(a + b + x + m)                        # common d/da, d/db
            tab[j, 5] = digamma(b + x + m) - dg_b
            tab[j, 7] = r + x
            tab[j, 8] = trigamma(r + x) - tg_r                                # d2 head / dr2
            tab[j, 9] = tg_ab - tg_abx                                        # d2 t / da2, da db
            tab[j, 10] = tg_ab - tg_b - tg_abx + trigamma(b + x + m)          # d2 t1 / db2
        for k in range(ny):
            ly[k] = log(alpha + uy[k])
            iy[k] = 1.0 / (alpha + uy[k])
    return tab_a, ly_a, iy_a


cdef void _tab_rows(Py_ssize_t lo, Py_ssize_t hi, const double[:, ::1] tab, const double[::1] ly,
                    const double[::1] iy, const int64_t[::1] ix, const int64_t[::1] iT,
                    const int64_t[::1] itx, const double[::1] w, double inv_a, double r_al,
                    bint want_hess, double* out) noexcept nogil:
    """The sums over patterns lo..hi-1, in row order, into out[0..17]:
    (ll, g0..g3, wsum, h_rr, h_ral, h_alal, s_d0, s_d1, s_d3, s_d0d1, s_d0d3, s_d1d3, s_vw2,
    h_ab, h_bb); with v = weight * w1 * w2 and d = grad t1 - grad t2 (see ``bg_finish``)."""
    cdef double total = 0.0, g0 = 0.0, g1 = 0.0, g2 = 0.0, g3 = 0.0
    cdef double h_rr = 0.0, h_ral = 0.0, h_alal = 0.0, s_d0 = 0.0, s_d1 = 0.0, s_d3 = 0.0
    cdef double s_d0d1 = 0.0, s_d0d3 = 0.0, s_d1d3 = 0.0, s_vw2 = 0.0, h_ab = 0.0, h_bb = 0.0
    cdef double wsum = 0.0
    cdef double kx, t1, t2, e, lse, w1, w2, wi, v, d0, d1, d3
    cdef Py_ssize_t i
    cdef int64_t j, kT, kt
    for i in range(lo, hi):
        j = ix[i]
        kT = iT[i]
        kt = itx[i]
        kx = tab[j, 7]
        t1 = tab[j, 1] - kx * ly[kT]
        t2 = tab[j, 2] - kx * ly[kt]
        if t1 >= t2:
            e = exp(t2 - t1)
            lse = t1 + log1p(e)
            w2 = e / (1.0 + e)
            w1 = 1.0 - w2
        else:
            e = exp(t1 - t2)
            lse = t2 + log1p(e)
            w1 = e / (1.0 + e)
            w2 = 1.0 - w1
        wi = w[i]
        total += wi * (tab[j, 0] + lse)
        g0 += wi * (tab[j, 3] - w1 * ly[kT] - w2 * ly[kt])
        g1 += wi * (r_al - kx * (w1 * iy[kT] + w2 * iy[kt]))
        g2 += wi * (tab[j, 4] + w2 * inv_a)
        g3 += wi * (tab[j, 4] + w1 * tab[j, 5] + w2 * tab[j, 6])
        if want_hess:
            wsum += wi
            v = wi * w1 * w2
            d0 = ly[kt] - ly[kT]
            d1 = kx * (iy[kt] - iy[kT])
            d3 = tab[j, 12]
            h_rr += wi * tab[j, 8] + v * d0 * d0
            h_ral += wi * (w1 * iy[kT] + w2 * iy[kt])
            h_alal += wi * kx * (w1 * iy[kT] * iy[kT] + w2 * iy[kt] * iy[kt]) + v * d1 * d1
            s_d0 += v * d0
            s_d1 += v * d1
            s_d3 += v * d3
            s_d0d1 += v * d0 * d1
            s_d0d3 += v * d0 * d3
            s_d1d3 += v * d1 * d3
            s_vw2 += v - wi * w2
            h_ab += wi * tab[j, 9]
            h_bb += wi * (w1 * tab[j, 10] + w2 * tab[j, 11]) + v * d3 * d3
    out[0] = total
    out[1] = g0
    out[2] = g1
    out[3] = g2
    out[4] = g3
    out[5] = wsum
    out[6] = h_rr
    out[7] = h_ral
    out[8] = h_alal
    out[9] = s_d0
    out[10] = s_d1
    out[11] = s_d3
    out[12] = s_d0d1
    out[13] = s_d0d3
    out[14] = s_d1d3
    out[15] = s_vw2
    out[16] = h_ab
    out[17] = h_bb


def bg_chunk_sums(const double[::1] params, const double[:, ::1] tab, const double[::1] ly,
                  const double[::1] iy, const int64_t[::1] ix, const int64_t[::1] iT,
                  const int64_t[::1] itx, const double[::1] w, bint want_hess,
                  double[:, ::1] parts, int64_t chunk, int64_t worker, int64_t n_workers):
    """Fill parts[c] (the 18 sums of ``_tab_rows``) for chunks c = worker, worker + n_workers,
    ... of ``chunk`` patterns each; ``parts`` has one row per chunk. Releases the GIL: the
    launch rule runs one call per worker (a chunk is summed by one thread whatever the count)."""
    cdef double inv_a = 1.0 / params[2], r_al = params[0] / params[1]
    cdef Py_ssize_t n = ix.shape[0], c, lo, hi
    with nogil:
        c = worker
        while c < parts.shape[0]:
            lo = c * chunk
            hi = lo + chunk if lo + chunk < n else n
            _tab_rows(lo, hi, tab, ly, iy, ix, iT, itx, w, inv_a, r_al, want_hess, &parts[c, 0])
            c += n_workers


def bg_finish(const double[::1] params, const double[:, ::1] parts, bint want_hess):
    """The chunks' sums added in chunk order, and the Hessian assembled from them:
    (ll, grad[4], hess[4, 4]) (``hess`` zero unless ``want_hess``)."""
    cdef double r = params[0], alpha = params[1], a = params[2]
    cdef double inv_a = 1.0 / a
    cdef double s[N_SUMS]
    cdef Py_ssize_t c, k, p, q
    for k in range(N_SUMS):
        s[k] = 0.0
    for c in range(parts.shape[0]):
        for k in range(N_SUMS):
            s[k] += parts[c, k]
    grad = np.array([s[1], s[2], s[3], s[4]])
    hess_a = np.zeros((4, 4))
    cdef double[:, ::1] hess = hess_a
    cdef double wsum = s[5], h_rr = s[6], h_ral = s[7], h_alal = s[8]
    cdef double s_d0 = s[9], s_d1 = s[10], s_d3 = s[11], s_d0d1 = s[12], s_d0d3 = s[13]
    cdef double s_d1d3 = s[14], s_vw2 = s[15], h_ab = s[16], h_bb = s[17]
    if want_hess:
        hess[0, 0] = h_rr
        hess[0, 1] = wsum / alpha - h_ral + s_d0d1
        hess[1, 1] = -wsum * r / (alpha * alpha) + h_alal
        hess[0, 2] = -s_d0 * inv_a
        hess[0, 3] = s_d0d3
        hess[1, 2] = -s_d1 * inv_a
        hess[1, 3] = s_d1d3
        hess[2, 2] = h_ab + s_vw2 * inv_a * inv_a
        hess[2, 3] = h_ab - s_d3 * inv_a
        hess[3, 3] = h_bb
        for p in range(4):
            for q in range(p):
                hess[p, q] = hess[q, p]
    return s[0], grad, hess_a


# -- BG/NBD and MBG/NBD predictions -----------------------------------------------------------
cdef inline double _alive_now(double r, double alpha, double a, double b, double x, double tx,
                              double T, double m) noexcept nogil:
    """P(alive at T | x, t_x, T) (FHL 2005 eq. 13) from the log odds of being dead."""
    cdef double lo
    if x <= 0 and m == 0:
        return 1.0
    lo = log(a) - log(b + x + m - 1.0) + (r + x) * (log(alpha + T) - log(alpha + tx))
    return expit(-lo) if lo > -INFINITY else 1.0


cdef double _survive(double k, double a, double c, double u) noexcept nogil:
    """E[(1 + p u)^-k] for p ~ Beta(a, c - a): 2F1(k, a; c; -u) by Pfaff, w = u/(1+u):
    (1+u)^(-a) 2F1(c-k, a; c; w)."""
    cdef double w = u / (1.0 + u)
    return exp(-a * log1p(u)) * _series(c - k, a, 0.0, c, w, 1.0, 1.0, 0)


def bg_predict(const double[::1] params, const double[::1] t, const double[::1] x,
               const double[::1] tx, const double[::1] T, double m, bint expected,
               double[::1] out, int64_t chunk, int64_t worker, int64_t n_workers):
    """Per-customer predictions for the rows of chunks worker, worker + n_workers, ...:

    * ``expected`` False: out[i] = P(alive at T + t | x, t_x, T) (FHL 2005 eq. 13 times the
      survival over (T, T + t] when t > 0);
    * ``expected`` True: out[i] = E[purchases in (T, T + t] | x, t_x, T] (FHL 2005 eq. 10;
      Batislam eq. 9); ``out`` starts zeroed (t <= 0 gives 0, NaN t gives NaN).
    """
    cdef double r = params[0], alpha = params[1], a = params[2], b = params[3], p
    cdef Py_ssize_t n = x.shape[0], i, lo, hi
    with nogil:
        lo = worker * chunk
        while lo < n:
            hi = lo + chunk if lo + chunk < n else n
            for i in range(lo, hi):
                if not expected:
                    p = _alive_now(r, alpha, a, b, x[i], tx[i], T[i], m)
                    if t[i] > 0.0:
                        p *= _survive(r + x[i], a, a + b + x[i] + m, t[i] / (alpha + T[i]))
                    out[i] = p
                elif not t[i] <= 0.0:
                    out[i] = _alive_now(r, alpha, a, b, x[i], tx[i], T[i], m) * \
                        bg_conditional_alive_expectation(r + x[i], a, a + b + x[i] + m - 1.0,
                                                         t[i] / (alpha + T[i] + t[i]))
            lo += n_workers * chunk


def bg_discounted(const double[::1] params, const double[::1] x, const double[::1] T,
                  const double[::1] times, const double[::1] disc, double m, double[::1] out,
                  int64_t chunk, int64_t worker, int64_t n_workers):
    """Per (x, T) pair of the rows of chunks worker, worker + n_workers, ...: out[i] =
    sum_h (E[Y(t_h) | alive at T] - E[Y(t_{h-1}) | alive at T]) disc_h (FHL 2005 eq. 10 without
    P(alive), which CLV multiplies in per customer)."""
    cdef double r = params[0], alpha = params[1], a = params[2], b = params[3]
    cdef double acc, t
    cdef Py_ssize_t n = x.shape[0], n_times = times.shape[0], i, h, lo, hi
    with nogil:
        lo = worker * chunk
        while lo < n:
            hi = lo + chunk if lo + chunk < n else n
            for i in range(lo, hi):
                acc = 0.0   # summed by parts: sum_h E[Y(t_h)] (disc_h - disc_h+1); E[Y(t<=0)] = 0
                for h in range(n_times):
                    t = times[h]
                    if t > 0.0:
                        acc += (disc[h] - (disc[h + 1] if h + 1 < n_times else 0.0)) * \
                            bg_conditional_alive_expectation(r + x[i], a, a + b + x[i] + m - 1.0,
                                                             t / (alpha + T[i] + t))
                out[i] = acc
            lo += n_workers * chunk


# -- the optimiser's per-step arithmetic ------------------------------------------------------
def log_space_objective(const double[::1] theta, double ll, const double[::1] grad,
                        const double[:, ::1] hess, double total_weight, const double[::1] pen):
    """The objective in u = log(theta): f = -ll/W + sum_i pen_i theta_i^2, its gradient
    g_u = theta * df/dtheta and Hessian H_u = diag(theta) d2f/dtheta2 diag(theta) + diag(g_u).

    Returns (ok, f, g_u, H_u, max |g_u|); ok is False when any input is not finite.
    """
    cdef Py_ssize_t k = theta.shape[0], i, j
    g_a = np.zeros(k)
    H_a = np.zeros((k, k))
    cdef double[::1] g_u = g_a
    cdef double[:, ::1] H_u = H_a
    cdef bint ok = isfinite(ll)
    cdef double val = -ll / total_weight, gmax = 0.0
    for i in range(k):
        ok &= isfinite(grad[i])
        val += pen[i] * theta[i] * theta[i]
        g_u[i] = (-grad[i] / total_weight + 2.0 * pen[i] * theta[i]) * theta[i]
        gmax = gmax if gmax >= fabs(g_u[i]) else fabs(g_u[i])
        for j in range(k):
            ok &= isfinite(hess[i, j])
            H_u[i, j] = -hess[i, j] / total_weight * theta[i] * theta[j]
        H_u[i, i] += 2.0 * pen[i] * theta[i] * theta[i] + g_u[i]
    return bool(ok), val, g_a, H_a, gmax


def damped_newton_step(const double[:, ::1] H, const double[::1] g, double lam):
    """-(H + lam I)^-1 g for a small symmetric H by a Cholesky factorisation (the optimiser's
    2x2..4x4 systems cost more in a BLAS call than in arithmetic).

    Returns (ok, step); ok is False when H + lam I is not positive definite.
    """
    cdef Py_ssize_t k = g.shape[0], i, j, q
    L_a = np.zeros((k, k))
    step_a = np.zeros(k)
    cdef double[:, ::1] L = L_a
    cdef double[::1] step = step_a
    cdef double d, v, s
    for j in range(k):
        d = H[j, j] + lam
        for q in range(j):
            d -= L[j, q] * L[j, q]
        if not d > 0.0:
            step_a[:] = 0.0
            return False, step_a
        L[j, j] = sqrt(d)
        # row j of L is complete: the forward substitution of L y = -g reaches y[j] (in step)
        s = -g[j]
        for q in range(j):
            s -= L[j, q] * step[q]
        step[j] = s / L[j, j]
        for i in range(j + 1, k):
            v = H[i, j]
            for q in range(j):
                v -= L[i, q] * L[j, q]
            L[i, j] = v / L[j, j]
    # then the back substitution L^T step = y
    for i in range(k - 1, -1, -1):
        s = step[i]
        for q in range(i + 1, k):
            s -= L[q, i] * step[q]
        step[i] = s / L[i, i]
    for i in range(k):
        if not isfinite(step[i]):
            return False, step_a
    return True, step_a
