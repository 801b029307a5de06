"""Shifted-beta-geometric (Fader & Hardie 2007, "How to project customer retention").

Churn probability theta ~ Beta(alpha, beta); a customer churns at the end of period t with
P(T = t) = B(alpha+1, beta+t-1)/B(alpha, beta) (eq. 5) and survives period t with
S(t) = B(alpha, beta+t)/B(alpha, beta) (eq. 6). Observations are (t, censored, weight) rows:
``weight`` customers who churned in period t, or (censored) were still active after period t.

The loops are compiled ahead of time (kernels/clv/models_discrete.pxi in models_native.pyx,
issue #11: a cold first fit compiled 11 Numba specialisations, ~2 s CPU); every row is computed
by one thread and the likelihood summed in row order, so results do not depend on the thread
count.
"""
import numpy as np

from ..common.config import CLV_REDUCE_CHUNK
from . import models_native as _native
from .special import as_float64, run_workers, threaded


@threaded(1)
def loglik_grad(params, t, censored, w, workers):
    """Weighted total log-likelihood of (t, censored) rows, gradient w.r.t. (alpha, beta), per-row
    ll (per-row terms on ``workers`` threads, summed in row order)."""
    params, t, w = map(as_float64, (params, t, w))
    flags = np.ascontiguousarray(censored, dtype=np.bool_).view(np.uint8)
    terms = np.empty((t.shape[0], 3))
    run_workers(lambda k, m: _native.sbg_rows(params, t, flags, terms, CLV_REDUCE_CHUNK, k, m),
                workers)
    total, grad = _native.weighted_totals(terms, w)
    return total, grad, terms[:, 0].copy()


@threaded(1)
def survival(params, t, workers):
    """S(t) = B(alpha, beta+t)/B(alpha, beta)."""
    params, t = map(as_float64, (params, t))
    out = np.empty(t.shape[0])
    run_workers(lambda k, m: _native.sbg_survival(params, t, out, CLV_REDUCE_CHUNK, k, m), workers)
    return out


@threaded(1)
def derl(params, d, n, workers):
    """Discounted expected residual lifetime of a customer who has made n renewals (Fader &
    Hardie 2010, "Customer-base valuation in a contractual setting", eq. 6):

        DERL = (beta+n)/(alpha+beta+n) 2F1(1, beta+n+1; alpha+beta+n+1; 1/(1+d)),

    counting the payment at the start of the next period, discounted per period at rate d > 0.
    The series has term ratio (beta+n+1+k)/(alpha+beta+n+1+k)/(1+d) < 1/(1+d).
    """
    params, d, n = map(as_float64, (params, d, n))
    out = np.empty(n.shape[0])
    run_workers(lambda k, m: _native.sbg_derl(params, d, n, out, CLV_REDUCE_CHUNK, k, m), workers)
    return out
