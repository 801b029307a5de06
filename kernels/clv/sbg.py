"""Shifted-beta-geometric (Fader & Hardie 2007, "How to project customer retention").

Churn probability theta ~ Beta(alpha, beta); a customer churns at the end of period t with
P(T = t) = B(alpha+1, beta+t-1)/B(alpha, beta) (eq. 5) and survives period t with
S(t) = B(alpha, beta+t)/B(alpha, beta) (eq. 6). Observations are (t, censored, weight) rows:
``weight`` customers who churned in period t, or (censored) were still active after period t.
"""
import math

import numpy as np
from numba import njit, prange

from ..common.config import NJIT
from .special import dual, digamma, lbeta, pattern_loglik


@njit(**NJIT)
def _loglik_prep(params, cols):
    al, be = params[0], params[1]
    return (al, be, lbeta(al, be), digamma(al + be), digamma(al), digamma(be)), cols[2]


@njit(**NJIT)
def _loglik_row(c, cols, i):
    al, be, lb, d_ab, d_a, d_b = c
    ti = cols[0][i]
    s = digamma(al + be + ti)
    if cols[1][i]:   # still active after period t: log S(t)
        return (lbeta(al, be + ti) - lb, d_a - s - (d_a - d_ab),
                digamma(be + ti) - s - (d_b - d_ab))
    # churned in period t: log P(T = t)
    return (lbeta(al + 1.0, be + ti - 1.0) - lb, digamma(al + 1.0) - s - (d_a - d_ab),
            digamma(be + ti - 1.0) - s - (d_b - d_ab))


#: ``loglik_grad(params, t, censored, w)``: weighted total log-likelihood, gradient w.r.t.
#: (alpha, beta), per-row ll (per-row terms in parallel, summed in row order).
loglik_grad = pattern_loglik(_loglik_prep, _loglik_row, 3, "sbg")


@dual(1)
def survival(params, t):
    """S(t) = B(alpha, beta+t)/B(alpha, beta)."""
    al, be = params[0], params[1]
    out = np.empty(t.shape[0])
    lb = lbeta(al, be)
    for i in prange(t.shape[0]):
        out[i] = math.exp(lbeta(al, be + t[i]) - lb)
    return out


@dual(1)
def derl(params, d, n):
    """Discounted expected residual lifetime of a customer who has made n renewals (Fader &
    Hardie 2010, "Customer-base valuation in a contractual setting", eq. 6):

        DERL = (beta+n)/(alpha+beta+n) 2F1(1, beta+n+1; alpha+beta+n+1; 1/(1+d)),

    counting the payment at the start of the next period, discounted per period at rate d > 0.
    The series has term ratio (beta+n+1+k)/(alpha+beta+n+1+k)/(1+d) < 1/(1+d).
    """
    al, be = params[0], params[1]
    out = np.empty(n.shape[0])
    for i in prange(n.shape[0]):
        z = 1.0 / (1.0 + d[i])
        b = be + n[i] + 1.0
        c = al + be + n[i] + 1.0
        total = 1.0
        term = 1.0
        k = 0
        while k < 10_000_000:
            term *= (b + k) / (c + k) * z
            k += 1
            total += term
            if term * z < 1e-17 * (1.0 - z) * total:
                break
        out[i] = (be + n[i]) / (al + be + n[i]) * total
    return out
