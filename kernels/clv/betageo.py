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
from . import native as _native
from .special import (bg_conditional_alive_expectation, digamma, dual, log_nb_tail, logaddexp,
                      pattern_loglik, run_workers, threaded)


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


# -- compiled ahead of time (kernels/clv/native.pyx): the first-call path of fit and predict ----
@threaded(1)
def probability_alive(params, x, tx, T, future_t, modified, workers):
    """P(alive at T + future_t | x, t_x, T) (FHL 2005 eq. 13 at future_t = 0).

    Alive at T, the customer survives (T, T+t] with E[exp(-lambda p t)] under the posterior
    lambda ~ Gamma(r+x, alpha+T), p ~ Beta(a, b+x+m), which is 2F1(r+x, a; a+b+x+m; -t/(alpha+T))
    (Euler's integral), summed after a Pfaff transformation (``native._survive``).
    """
    out = np.empty(x.shape[0])
    run_workers(lambda w, k: _native.bg_predict(params, future_t, x, tx, T, float(modified),
                                                False, out, CLV_REDUCE_CHUNK, w, k), workers)
    return out


@threaded(1)
def expected_purchases(params, t, x, tx, T, modified, workers):
    """E[Y(t) | x, t_x, T]: expected purchases in (T, T+t] (FHL 2005 eq. 10; Batislam eq. 9)."""
    out = np.zeros(x.shape[0])
    run_workers(lambda w, k: _native.bg_predict(params, t, x, tx, T, float(modified), True,
                                                out, CLV_REDUCE_CHUNK, w, k), workers)
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



@threaded(3)
def loglik_derivs_tab(params, ux, uy, ix, iT, itx, w, modified, want_hess, workers):
    """Weighted total log-likelihood (FHL 2005 eq. 6), its gradient and, when ``want_hess``, its
    Hessian w.r.t. (r, alpha, a, b), with every special function tabulated.

    ``ux`` are the distinct frequencies and ``uy`` the distinct recency/T values; pattern i is
    (ux[ix[i]], uy[itx[i]], uy[iT[i]]). Per pattern only one exp and one log1p remain, so the cost
    of an evaluation is O(patterns) cheap operations plus O(distinct values) special functions.

    With ll_i = head + log(e^t1 + e^t2) and softmax weights w1, w2 of (t1, t2), the Hessian is
    d2 head + w1 d2 t1 + w2 d2 t2 + w1 w2 d d^T with d = grad t1 - grad t2
    = (log(alpha+t_x) - log(alpha+T), (r+x) (1/(alpha+t_x) - 1/(alpha+T)), -1/a, 1/(b+x+m-1)).

    The sums are taken per chunk of CLV_REDUCE_CHUNK patterns (chunks spread over threads), then
    the chunks in order: the result does not depend on the thread count.

    Returns
    -------
    (ll, grad[4], hess[4, 4])  weighted sums; ``hess`` is zero unless ``want_hess``.
    """
    tab, ly, iy = _native.bg_tables(params, ux, uy, float(modified))
    parts = np.zeros((-(-ix.shape[0] // CLV_REDUCE_CHUNK), 18))
    run_workers(lambda t, k: _native.bg_chunk_sums(params, tab, ly, iy, ix, iT, itx, w,
                                                   bool(want_hess), parts, CLV_REDUCE_CHUNK, t, k),
                workers)
    return _native.bg_finish(params, parts, bool(want_hess))


@threaded(1)
def discounted_if_alive(params, x, T, times, disc, modified, workers):
    """Per (x, T) pair: sum_h (E[Y(t_h) | alive at T] - E[Y(t_h-1) | alive at T]) disc_h. The
    conditional expectation factors into P(alive | x, t_x, T) times a term of (x, T) only
    (FHL 2005 eq. 10), so CLV needs this once per distinct (x, T), not per customer and
    horizon."""
    out = np.empty(x.shape[0])
    run_workers(lambda k, n: _native.bg_discounted(params, x, T, times, disc, float(modified), out,
                                                   CLV_REDUCE_CHUNK, k, n), workers)
    return out
