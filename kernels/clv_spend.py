"""Gamma-Gamma spend model (Fader, Hardie & Lee 2005, "RFM and CLV: using iso-value curves";
Fader & Hardie 2013, "The Gamma-Gamma model of monetary value", eq. 3).

For a customer with x repeat purchases of mean value m (x > 0):

    L = Gamma(px+q) / (Gamma(px) Gamma(q)) * gamma^q m^(px-1) x^(px) / (gamma + m x)^(px+q)
"""
import math

import numpy as np
from numba import prange

from .clv_special import dual, digamma


@dual(1)
def loglik_grad(params, x, m, w):
    """Weighted total log-likelihood, gradient w.r.t. (p, q, gamma), per-row ll (x > 0, m > 0)."""
    p, q, v = params[0], params[1], params[2]
    n = x.shape[0]
    lls = np.empty(n)
    total = 0.0
    g0 = 0.0
    g1 = 0.0
    g2 = 0.0
    dq = digamma(q)
    lv = math.log(v)
    for i in prange(n):
        xi = x[i]
        mi = m[i]
        px = p * xi
        lm = math.log(mi)
        lx = math.log(xi)
        lvm = math.log(v + mi * xi)
        ll = (math.lgamma(px + q) - math.lgamma(px) - math.lgamma(q) + q * lv + (px - 1.0) * lm
              + px * lx - (px + q) * lvm)
        lls[i] = ll
        dpq = digamma(px + q)
        wi = w[i]
        total += wi * ll
        g0 += wi * xi * (dpq - digamma(px) + lm + lx - lvm)
        g1 += wi * (dpq - dq + lv - lvm)
        g2 += wi * (q / v - (px + q) / (v + mi * xi))
    grad = np.empty(3)
    grad[0] = g0
    grad[1] = g1
    grad[2] = g2
    return total, grad, lls


@dual(3)
def loglik_grad_tab(params, ux, ix, m, log_m, w):
    """Same total and gradient as ``loglik_grad`` with the gamma functions tabulated over the
    distinct frequencies ``ux`` (row i has x = ux[ix[i]]); one log per row remains."""
    p, q, v = params[0], params[1], params[2]
    nx = ux.shape[0]
    A = np.empty(nx)
    Ap = np.empty(nx)
    Aq = np.empty(nx)
    lv = math.log(v)
    lg_q = math.lgamma(q)
    dq = digamma(q)
    for j in range(nx):
        x = ux[j]
        px = p * x
        dpq = digamma(px + q)
        A[j] = math.lgamma(px + q) - math.lgamma(px) - lg_q + q * lv + px * math.log(x)
        Ap[j] = x * (dpq - digamma(px) + math.log(x))
        Aq[j] = dpq - dq + lv
    n = ix.shape[0]
    total = 0.0
    g0 = 0.0
    g1 = 0.0
    g2 = 0.0
    q_v = q / v
    for i in prange(n):
        j = ix[i]
        x = ux[j]
        px = p * x
        vm = v + m[i] * x
        L = math.log(vm)
        wi = w[i]
        total += wi * (A[j] + (px - 1.0) * log_m[i] - (px + q) * L)
        g0 += wi * (Ap[j] + x * (log_m[i] - L))
        g1 += wi * (Aq[j] - L)
        g2 += wi * (q_v - (px + q) / vm)
    grad = np.empty(3)
    grad[0] = g0
    grad[1] = g1
    grad[2] = g2
    return total, grad
