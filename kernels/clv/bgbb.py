"""BG/BB (Fader, Hardie & Shang 2010), discrete-time non-contractual: x transactions in n
opportunities, the last at t_x. Eq. (5) of the paper:

    L = B(alpha+x, beta+n-x)/B(alpha,beta) B(gamma, delta+n)/B(gamma,delta)
        + sum_{i=0}^{n-t_x-1} B(alpha+x, beta+t_x-x+i)/B(alpha,beta) B(gamma+1, delta+t_x+i)/B(gamma,delta)

summed in log space (scaled by the largest term), with the analytic gradient in digammas.

The loops are compiled ahead of time (kernels/clv/models_discrete.pxi in models_native.pyx,
issue #11: a cold first fit compiled 13 Numba specialisations, ~3 s CPU); every row is computed
by one thread and the likelihood summed in row order, so results do not depend on the thread
count.
"""
import math

import numpy as np
from numba import njit

from ..common.config import CLV_REDUCE_CHUNK, NJIT
from . import models_native as _native
from .special import as_float64, predict_rows, run_workers, threaded


@threaded(1)
def loglik_grad(params, x, tx, n, w, workers):
    """Weighted total log-likelihood of (x, t_x, n) patterns, its gradient w.r.t. (alpha, beta,
    gamma, delta) and the per-pattern (unweighted) ll, summed in row order."""
    params, x, tx, n, w = map(as_float64, (params, x, tx, n, w))
    terms = np.empty((x.shape[0], 5))
    run_workers(lambda k, m: _native.bgbb_rows(params, x, tx, n, terms, CLV_REDUCE_CHUNK, k, m),
                workers)
    total, grad = _native.weighted_totals(terms, w)
    return total, grad, terms[:, 0].copy()


def _predict(expected, params, fut, x, tx, n, workers):
    params, fut, x, tx, n = map(as_float64, (params, fut, x, tx, n))
    return predict_rows(_native.bgbb_predict, x.shape[0], expected, params, fut, x, tx, n,
                        workers=workers)


@threaded(1)
def probability_alive(params, x, tx, n, future, workers):
    """P(alive at opportunity n + 1 + future | x, t_x, n) (FHS 2010 eq. 11; surviving ``future``
    more opportunities replaces B(gamma, delta+n+1) by B(gamma, delta+n+1+future))."""
    return _predict(False, params, future, x, tx, n, workers)


@threaded(2)
def expected_purchases(params, n_future, x, tx, n, workers):
    """E[X(n, n+n*) | x, t_x, n] (FHS 2010 eq. 13), continuous at gamma = 1."""
    return _predict(True, params, n_future, x, tx, n, workers)


@njit(**NJIT)
def _lbeta(a, b):
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


@njit(**NJIT)
def _lchoose(n, k):
    return math.lgamma(n + 1.0) - math.lgamma(k + 1.0) - math.lgamma(n - k + 1.0)


@njit(**NJIT)
def probability_n_purchases(params, n, k):
    """P(X(n) = k): k transactions in the first n opportunities of a new customer, per row of
    the (n, k) columns (FHS 2010 eq. 7):

        C(n,k) B(alpha+k, beta+n-k)/B(alpha,beta) B(gamma, delta+n)/B(gamma,delta)
        + sum_{i=k}^{n-1} C(i,k) B(alpha+k, beta+i-k)/B(alpha,beta)
                                 B(gamma+1, delta+i)/B(gamma,delta)

    (alive through all n opportunities with k purchases, or dead after opportunity i). Whole
    n >= 0 and k >= 0 (the API checks); 0 where k > n. O(n) per row: n counts opportunities."""
    alpha, beta, gamma, delta = params[0], params[1], params[2], params[3]
    log_ab = _lbeta(alpha, beta)
    log_gd = _lbeta(gamma, delta)
    out = np.empty(n.shape[0])
    for row in range(n.shape[0]):
        nn = n[row]
        x = k[row]
        if x > nn:
            out[row] = 0.0
            continue
        total = math.exp(_lchoose(nn, x) + _lbeta(alpha + x, beta + nn - x) - log_ab
                         + _lbeta(gamma, delta + nn) - log_gd)
        i = x
        while i < nn:
            total += math.exp(_lchoose(i, x) + _lbeta(alpha + x, beta + i - x) - log_ab
                              + _lbeta(gamma + 1.0, delta + i) - log_gd)
            i += 1.0
        out[row] = total
    return out
