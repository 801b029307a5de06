"""Gamma-Gamma spend model (Fader, Hardie & Lee 2005, "RFM and CLV: using iso-value curves";
Fader & Hardie 2013, "The Gamma-Gamma model of monetary value", eq. 3).

For a customer with x repeat purchases of mean value m (x > 0):

    L = Gamma(px+q) / (Gamma(px) Gamma(q)) * gamma^q m^(px-1) x^(px) / (gamma + m x)^(px+q)
"""
import math

import numpy as np
from numba import njit

from ..common.config import CLV_REDUCE_CHUNK, NJIT
from . import spend_native as _native
from .special import digamma, pattern_loglik, run_workers, threaded


@njit(**NJIT)
def _loglik_prep(params, cols):
    p, q, v = params[0], params[1], params[2]
    return (p, q, v, digamma(q), math.log(v)), cols[2]


@njit(**NJIT)
def _loglik_row(c, cols, i):
    p, q, v, dq, lv = c
    xi = cols[0][i]
    mi = cols[1][i]
    px = p * xi
    lm = math.log(mi)
    lx = math.log(xi)
    lvm = math.log(v + mi * xi)
    dpq = digamma(px + q)
    return ((math.lgamma(px + q) - math.lgamma(px) - math.lgamma(q) + q * lv
             + (px - 1.0) * lm + px * lx - (px + q) * lvm),
            xi * (dpq - digamma(px) + lm + lx - lvm),
            dpq - dq + lv - lvm,
            q / v - (px + q) / (v + mi * xi))


#: ``loglik_grad(params, x, m, w)``: weighted total log-likelihood, gradient w.r.t. (p, q,
#: gamma), per-row ll (x > 0, m > 0); per-row terms in parallel, summed in row order.
loglik_grad = pattern_loglik(_loglik_prep, _loglik_row, 4, "spend")


# -- compiled ahead of time (spend_native.pyx; no JIT on a first fit, issue #11) --------------
#: ``repeat_buyers(x, m, w)``: the rows Gamma-Gamma is fitted on (x > 0) and their checks and sums
#: (see spend_native.repeat_buyers); ``spend_sums(ix, nx, m, w)``: per distinct frequency slot
#: the total weight and sum w log m, and sum w m, sum w m^2.
repeat_buyers = _native.repeat_buyers
spend_sums = _native.spend_sums


@threaded(4)
def loglik_derivs(params, ux, W, S, x, m, w, want_hess, workers):
    """Weighted total log-likelihood (Fader & Hardie 2013 eq. 3), gradient and Hessian w.r.t.
    (p, q, gamma), from the per-frequency sums of ``spend_sums`` and one pass over the rows.

    With A(x) = lgamma(px+q) - lgamma(px) - lgamma(q) + q log(gamma) + px log(x):

        LL = sum_j W_j A(u_j) + sum_j (p u_j - 1) S_j - sum_i w_i (p x_i + q) log(gamma + m_i x_i)

    so a step costs one log and one division per row; the lgamma/digamma/trigamma terms are
    evaluated once per distinct frequency ``ux`` (rows with W_j = 0 must not be passed). The row
    sums are taken per chunk of CLV_REDUCE_CHUNK rows (chunks spread over threads), then the
    chunks in order: the result does not depend on the thread count.

    Returns
    -------
    (ll, grad[3], hess[3, 3])  ``hess`` is zero unless ``want_hess``.
    """
    parts = np.zeros((-(-x.shape[0] // CLV_REDUCE_CHUNK), 6))
    run_workers(lambda t, k: _native.spend_chunk_sums(float(params[2]), x, m, w, parts,
                                                      CLV_REDUCE_CHUNK, t, k), workers)
    return _native.spend_finish(params, ux, W, S, parts, bool(want_hess))
