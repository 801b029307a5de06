"""BG/NBD (Fader, Hardie & Lee 2005) and MBG/NBD (Batislam, Denizel & Filiztekin 2007) kernels.

``modified`` = 0 selects BG/NBD (drop-out only after a repeat purchase), 1 selects MBG/NBD (also
at time zero). With m = modified, the individual likelihood (FHL 2005 eq. 6; Batislam eq. 4) is

    L = Gamma(r+x) alpha^r / Gamma(r) * [ B(a, b+x+m)/B(a,b) (alpha+T)^-(r+x)
                                         + [x>0 or m] B(a+1, b+x+m-1)/B(a,b) (alpha+t_x)^-(r+x) ]

evaluated as a log-sum-exp so that large x, T and b never overflow. Likelihoods are summed over
distinct (x, t_x, T) patterns with weights; the gradient is analytic (digamma).
"""
import math

import numpy as np
from numba import njit, prange

from ..common.config import CLV_REDUCE_CHUNK, NJIT
from .special import (bg_conditional_alive_expectation, chunk_count, digamma, discounted_kernel,
                      dual, expit, log_nb_tail, logaddexp, pattern_loglik, put_row, sum_chunks,
                      trigamma)


@njit(**NJIT)
def _terms(r, alpha, a, b, x, tx, T, m):
    c0 = math.lgamma(a + b) - math.lgamma(b) - math.lgamma(a + b + x + m)
    head = math.lgamma(r + x) - math.lgamma(r) + r * math.log(alpha)
    t1 = c0 + math.lgamma(b + x + m) - (r + x) * math.log(alpha + T)
    if x > 0 or m > 0:
        t2 = c0 + math.log(a) + math.lgamma(b + x + m - 1.0) - (r + x) * math.log(alpha + tx)
    else:
        t2 = -np.inf
    return head, t1, t2


@njit(**NJIT)
def _loglik_prep(params, cols):
    r, alpha, a, b = params[0], params[1], params[2], params[3]
    return (r, alpha, a, b, float(cols[4]), digamma(a + b), digamma(b), digamma(r)), cols[3]


@njit(**NJIT)
def _loglik_row(c, cols, i):
    r, alpha, a, b, m, dg_ab, dg_b, dg_r = c
    xi = cols[0][i]
    tx = cols[1][i]
    T = cols[2][i]
    head, t1, t2 = _terms(r, alpha, a, b, xi, tx, T, m)
    lse = logaddexp(t1, t2)
    w1 = math.exp(t1 - lse)
    w2 = 1.0 - w1 if t2 > -np.inf else 0.0
    dg_abx = digamma(a + b + xi + m)
    d_b = dg_ab - dg_b - dg_abx + w1 * digamma(b + xi + m)
    if w2 > 0.0:
        d_b += w2 * digamma(b + xi + m - 1.0)
    return (head + lse,
            digamma(r + xi) - dg_r + math.log(alpha) - w1 * math.log(alpha + T)
            - w2 * math.log(alpha + tx),
            r / alpha - (r + xi) * (w1 / (alpha + T) + w2 / (alpha + tx)),
            dg_ab - dg_abx + w2 / a,
            d_b)


#: ``loglik_grad(params, x, tx, T, w, modified)``: weighted total log-likelihood (float64[4]
#: params r, alpha, a, b; per-pattern frequency, recency, age and weight; modified 0 = BG/NBD,
#: 1 = MBG/NBD) -> (ll, grad[4], ll_per_pattern): ll and grad weighted sums, per pattern unweighted.
loglik_grad = pattern_loglik(_loglik_prep, _loglik_row, 5, "betageo")


@njit(**NJIT)
def _log_odds_dead(r, alpha, a, b, x, tx, T, m):
    """log of P(dead)/P(alive) given (x, t_x, T); -inf when there is no way to be dead."""
    if x <= 0 and m == 0:
        return -np.inf
    return math.log(a) - math.log(b + x + m - 1.0) + (r + x) * (
        math.log(alpha + T) - math.log(alpha + tx))


@njit(**NJIT)
def _alive_now(params, x, tx, T, m):
    """P(alive at T | x, t_x, T) (eq. 13)."""
    lo = _log_odds_dead(params[0], params[1], params[2], params[3], x, tx, T, m)
    return expit(-lo) if lo > -np.inf else 1.0


@dual(1)
def probability_alive(params, x, tx, T, future_t, modified):
    """P(alive at T + future_t | x, t_x, T) (FHL 2005 eq. 13 at future_t = 0).

    Alive at T, the customer survives (T, T+t] with E[exp(-lambda p t)] under the posterior
    lambda ~ Gamma(r+x, alpha+T), p ~ Beta(a, b+x+m), which is 2F1(r+x, a; a+b+x+m; -t/(alpha+T))
    (Euler's integral), summed after a Pfaff transformation (see ``_survive``).
    """
    r, alpha, a, b = params[0], params[1], params[2], params[3]
    m = float(modified)
    out = np.empty(x.shape[0])
    for i in prange(out.shape[0]):
        p = _alive_now(params, x[i], tx[i], T[i], m)
        if future_t[i] > 0.0:
            p *= _survive(r + x[i], a, a + b + x[i] + m, future_t[i] / (alpha + T[i]))
        out[i] = p
    return out


@njit(**NJIT)
def _survive(k, a, c, u):
    """E[(1 + p u)^-k] for p ~ Beta(a, c - a): 2F1(k, a; c; -u) by Pfaff, w = u/(1+u) in [0,1).

    2F1(k, a; c; -u) = (1+u)^(-a) 2F1(c-k, a; c; w); the series has positive terms when c > k
    and mixed ones otherwise, so it is summed in plain double with a relative stopping rule.
    """
    w = u / (1.0 + u)
    total = 1.0
    term = 1.0
    n = 0
    while n < 2_000_000:
        term *= (c - k + n) * (a + n) / ((c + n) * (n + 1.0)) * w
        n += 1
        total += term
        ratio = abs((c - k + n) * (a + n) / ((c + n) * (n + 1.0)) * w)
        rb = max(ratio, w)
        if (rb < 1.0 and abs(term) * rb < 1e-17 * (1.0 - rb) * abs(total)) or term == 0.0:
            break
    return math.exp(-a * math.log1p(u)) * total


@dual(1)
def expected_purchases(params, t, x, tx, T, modified):
    """E[Y(t) | x, t_x, T]: expected purchases in (T, T+t] (FHL 2005 eq. 10; Batislam eq. 9)."""
    r, alpha, a, b = params[0], params[1], params[2], params[3]
    m = float(modified)
    out = np.zeros(x.shape[0])
    for i in prange(out.shape[0]):
        if not t[i] <= 0.0:   # (NaN t gives NaN)
            z = t[i] / (alpha + T[i] + t[i])
            out[i] = _alive_now(params, x[i], tx[i], T[i], m) * \
                bg_conditional_alive_expectation(r + x[i], a, a + b + x[i] + m - 1.0, z)
    return out


@dual(1)
def population_expected(params, t, modified):
    """E[X(t)] for a customer who made the first purchase at 0 (FHL 2005 eq. 9; Batislam eq. 8)."""
    r, alpha, a, b = params[0], params[1], params[2], params[3]
    m = float(modified)
    # MBG/NBD: the customer may have left at time zero, with probability a/(a+b)
    stayed = b / (a + b) if m > 0 else 1.0
    out = np.zeros(t.shape[0])
    for i in prange(out.shape[0]):
        if not t[i] <= 0.0:   # (NaN t gives NaN)
            z = t[i] / (alpha + t[i])
            out[i] = bg_conditional_alive_expectation(r, a, a + b + m - 1.0, z) * stayed
    return out


@dual(1)
def probability_n_purchases(params, t, k, modified):
    """P(X(t) = k) (FHL 2005 eq. 8), in log space; for MBG/NBD the time-zero drop-out is added."""
    r, alpha, a, b = params[0], params[1], params[2], params[3]
    m = float(modified)
    n = t.shape[0]
    out = np.empty(n)
    lbab = math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)
    for i in prange(n):
        ti = t[i]
        ki = k[i]
        q = ti / (alpha + ti)
        lq = math.log(q) if q > 0 else -np.inf
        # alive through (0, t]: NBD count, no drop-out among the k purchases (nor at time 0)
        lb1 = math.lgamma(a) + math.lgamma(b + ki + m) - math.lgamma(a + b + ki + m) - lbab
        lnb = (math.lgamma(r + ki) - math.lgamma(r) - math.lgamma(ki + 1.0)
               + r * math.log(alpha / (alpha + ti)))
        if ki > 0:
            lnb += ki * lq
        elif ti <= 0:
            lnb = 0.0
        total = math.exp(lb1 + lnb)
        if ki > 0 or m > 0:
            # dropped out right after the k-th purchase (k >= 1, or at time 0 for MBG), having
            # made at least k purchases' worth of opportunities: P(NBD >= k)
            lb2 = (math.log(a) + math.lgamma(a) + math.lgamma(b + ki + m - 1.0)
                   - math.lgamma(a + b + ki + m) - lbab)
            total += math.exp(lb2 + log_nb_tail(r, int(ki), q))
        out[i] = total
    return out


@njit(**NJIT)
def _x_tables(r, alpha, a, b, ux, m):
    """Per distinct frequency: the parameter-dependent constants of eq. 6 and their first and
    second derivatives (columns documented inline; t1/t2 are the two terms of the sum)."""
    nx = ux.shape[0]
    tab = np.empty((nx, 13))
    lg_r = math.lgamma(r)
    dg_r = digamma(r)
    tg_r = trigamma(r)
    lg_ab = math.lgamma(a + b)
    lg_b = math.lgamma(b)
    dg_ab = digamma(a + b)
    dg_b = digamma(b)
    tg_ab = trigamma(a + b)
    tg_b = trigamma(b)
    la = math.log(alpha)
    for j in range(nx):
        x = ux[j]
        c0 = lg_ab - lg_b - math.lgamma(a + b + x + m)
        tg_abx = trigamma(a + b + x + m)
        tab[j, 0] = math.lgamma(r + x) - lg_r + r * la                      # head
        tab[j, 1] = c0 + math.lgamma(b + x + m)                              # K1
        if x > 0 or m > 0:
            tab[j, 2] = c0 + math.log(a) + math.lgamma(b + x + m - 1.0)     # K2
            tab[j, 6] = digamma(b + x + m - 1.0) - dg_b                      # d K2 / db - c0_b
            tab[j, 11] = tg_ab - tg_b - tg_abx + trigamma(b + x + m - 1.0)   # d2 t2 / db2
            tab[j, 12] = 1.0 / (b + x + m - 1.0)                             # d(t1 - t2) / db
        else:
            tab[j, 2] = -np.inf
            tab[j, 6] = 0.0
            tab[j, 11] = 0.0
            tab[j, 12] = 0.0
        tab[j, 3] = digamma(r + x) - dg_r + la                               # d head / dr
        tab[j, 4] = dg_ab - digamma(a + b + x + m)                           # common d/da, d/db
        tab[j, 5] = digamma(b + x + m) - dg_b
        tab[j, 7] = r + x
        tab[j, 8] = trigamma(r + x) - tg_r                                   # d2 head / dr2
        tab[j, 9] = tg_ab - tg_abx                                           # d2 t / da2, da db
        tab[j, 10] = tg_ab - tg_b - tg_abx + trigamma(b + x + m)             # d2 t1 / db2
    return tab


@njit(**NJIT)
def _tab_rows(lo, hi, tab, ly, iy, ix, iT, itx, w, inv_a, r_al, want_hess):
    """The sums of ``loglik_derivs_tab`` over patterns lo..hi-1, in row order:
    (ll, g0..g3, wsum, h_rr, h_ral, h_alal, s_d0, s_d1, s_d3, s_d0d1, s_d0d3, s_d1d3, s_vw2,
    h_ab, h_bb) (the Hessian sums as documented in ``loglik_derivs_tab``)."""
    total = 0.0
    g0 = 0.0
    g1 = 0.0
    g2 = 0.0
    g3 = 0.0
    h_rr = 0.0      # sum wt * d2 head/dr2 + v d0^2   (v = weight * w1 * w2)
    h_ral = 0.0     # sum wt * (w1/(alpha+T) + w2/(alpha+t_x))
    h_alal = 0.0    # sum wt * (r+x) (w1/(alpha+T)^2 + w2/(alpha+t_x)^2) + v d1^2
    s_d0 = 0.0      # sum v d0
    s_d1 = 0.0      # sum v d1
    s_d3 = 0.0      # sum v d3
    s_d0d1 = 0.0
    s_d0d3 = 0.0
    s_d1d3 = 0.0
    s_vw2 = 0.0     # sum v - wt * w2
    h_ab = 0.0      # sum wt * tab9
    h_bb = 0.0      # sum wt * (w1 tab10 + w2 tab11) + v d3^2
    wsum = 0.0
    for i in range(lo, hi):
        j = ix[i]
        kT = iT[i]
        kt = itx[i]
        kx = tab[j, 7]
        t1 = tab[j, 1] - kx * ly[kT]
        t2 = tab[j, 2] - kx * ly[kt]
        if t1 >= t2:
            e = math.exp(t2 - t1)
            lse = t1 + math.log1p(e)
            w2 = e / (1.0 + e)
            w1 = 1.0 - w2
        else:
            e = math.exp(t1 - t2)
            lse = t2 + math.log1p(e)
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
    return (total, g0, g1, g2, g3, wsum, h_rr, h_ral, h_alal, s_d0, s_d1, s_d3, s_d0d1, s_d0d3,
            s_d1d3, s_vw2, h_ab, h_bb)


@dual(3)
def loglik_derivs_tab(params, ux, uy, ix, iT, itx, w, modified, want_hess):
    """Weighted total log-likelihood (FHL 2005 eq. 6), its gradient and, when ``want_hess``, its
    Hessian w.r.t. (r, alpha, a, b), with every special function tabulated.

    ``ux`` are the distinct frequencies and ``uy`` the distinct recency/T values; pattern i is
    (ux[ix[i]], uy[itx[i]], uy[iT[i]]). Per pattern only one exp and one log1p remain, so the cost
    of an evaluation is O(patterns) cheap operations plus O(distinct values) special functions.

    With ll_i = head + log(e^t1 + e^t2) and softmax weights w1, w2 of (t1, t2), the Hessian is
    d2 head + w1 d2 t1 + w2 d2 t2 + w1 w2 d d^T with d = grad t1 - grad t2
    = (log(alpha+t_x) - log(alpha+T), (r+x) (1/(alpha+t_x) - 1/(alpha+T)), -1/a, 1/(b+x+m-1)).

    The sums are taken per chunk of CLV_REDUCE_CHUNK patterns (in parallel), then the chunks in
    order: the result does not depend on the thread count or on the launch path.

    Returns
    -------
    (ll, grad[4], hess[4, 4])  weighted sums; ``hess`` is zero unless ``want_hess``.
    """
    r, alpha, a, b = params[0], params[1], params[2], params[3]
    m = float(modified)
    tab = _x_tables(r, alpha, a, b, ux, m)
    ny = uy.shape[0]
    ly = np.empty(ny)
    iy = np.empty(ny)
    for k in range(ny):
        ly[k] = math.log(alpha + uy[k])
        iy[k] = 1.0 / (alpha + uy[k])
    n = ix.shape[0]
    inv_a = 1.0 / a
    r_al = r / alpha
    parts = np.zeros((chunk_count(n), 18))
    for c in prange(parts.shape[0]):
        lo = c * CLV_REDUCE_CHUNK
        put_row(parts[c], _tab_rows(lo, min(n, lo + CLV_REDUCE_CHUNK), tab, ly, iy, ix, iT, itx,
                                    w, inv_a, r_al, want_hess))
    s = sum_chunks(parts)
    total = s[0]
    wsum, h_rr, h_ral, h_alal = s[5], s[6], s[7], s[8]
    s_d0, s_d1, s_d3, s_d0d1, s_d0d3, s_d1d3, s_vw2 = s[9], s[10], s[11], s[12], s[13], s[14], s[15]
    h_ab, h_bb = s[16], s[17]
    grad = np.empty(4)
    grad[0] = s[1]
    grad[1] = s[2]
    grad[2] = s[3]
    grad[3] = s[4]
    hess = np.zeros((4, 4))
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
    return total, grad, hess


@njit(**NJIT)
def _discount_prep(params, extra):
    return params[0], params[1], params[2], params[3], float(extra[0])


@njit(**NJIT)
def _if_alive(c, x, T, t):
    """E[Y(t) | alive at T] (FHL 2005 eq. 10 without P(alive))."""
    r, alpha, a, b, m = c
    return bg_conditional_alive_expectation(r + x, a, a + b + x + m - 1.0, t / (alpha + T + t))


#: ``discounted_if_alive(params, x, T, times, disc, modified)``: per (x, T) pair; the
#: conditional expectation factors into P(alive | x, t_x, T) times a term of (x, T) only
#: (FHL 2005 eq. 10), so CLV needs this once per distinct (x, T), not per customer and horizon.
discounted_if_alive = discounted_kernel(_discount_prep, _if_alive, "betageo")
