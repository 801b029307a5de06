"""Shifted-beta-geometric (Fader & Hardie 2007, "How to project customer retention").

Churn probability theta ~ Beta(alpha, beta); a customer churns at the end of period t with
P(T = t) = B(alpha+1, beta+t-1)/B(alpha, beta) (eq. 5) and survives period t with
S(t) = B(alpha, beta+t)/B(alpha, beta) (eq. 6). Observations are (t, censored, weight) rows:
``weight`` customers who churned in period t, or (censored) were still active after period t.
"""
import math

import numpy as np
from numba import prange

from .special import dual, digamma, lbeta, weighted_totals


@dual(1)
def loglik_grad(params, t, censored, w):
    """Weighted total log-likelihood, gradient w.r.t. (alpha, beta), per-row ll (per-row terms
    in parallel, summed in row order)."""
    al, be = params[0], params[1]
    n = t.shape[0]
    terms = np.empty((n, 3))
    lb = lbeta(al, be)
    d_ab = digamma(al + be)
    d_a = digamma(al)
    d_b = digamma(be)
    for i in prange(n):
        ti = t[i]
        if censored[i]:
            ll = lbeta(al, be + ti) - lb
            s = digamma(al + be + ti)
            ga = d_a - s - (d_a - d_ab)
            gb = digamma(be + ti) - s - (d_b - d_ab)
        else:
            ll = lbeta(al + 1.0, be + ti - 1.0) - lb
            s = digamma(al + be + ti)
            ga = digamma(al + 1.0) - s - (d_a - d_ab)
            gb = digamma(be + ti - 1.0) - s - (d_b - d_ab)
        terms[i, 0] = ll
        terms[i, 1] = ga
        terms[i, 2] = gb
    total, grad = weighted_totals(terms, w)
    return total, grad, terms[:, 0].copy()


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
