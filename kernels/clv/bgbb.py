"""BG/BB (Fader, Hardie & Shang 2010), discrete-time non-contractual: x transactions in n
opportunities, the last at t_x. Eq. (5) of the paper:

    L = B(alpha+x, beta+n-x)/B(alpha,beta) B(gamma, delta+n)/B(gamma,delta)
        + sum_{i=0}^{n-t_x-1} B(alpha+x, beta+t_x-x+i)/B(alpha,beta) B(gamma+1, delta+t_x+i)/B(gamma,delta)

summed in log space (running log-sum-exp), with the analytic gradient in digammas.
"""
import math

import numpy as np
from numba import njit, prange

from ..common.config import NJIT
from .special import dual, digamma, four_params, lbeta, pattern_loglik


@njit(**NJIT)
def _pattern(al, be, ga, de, x, tx, n, want_grad):
    """(ll, d ll/d alpha, d/d beta, d/d gamma, d/d delta) for one pattern (gradient zero
    unless ``want_grad``)."""
    lbab = lbeta(al, be)
    lbgd = lbeta(ga, de)
    dab = digamma(al + be)
    dgd = digamma(ga + de)
    # alive through all n opportunities
    t0 = lbeta(al + x, be + n - x) - lbab + lbeta(ga, de + n) - lbgd
    mx = t0
    k = int(n - tx)
    for i in range(k):
        ti = lbeta(al + x, be + tx - x + i) - lbab + lbeta(ga + 1.0, de + tx + i) - lbgd
        if ti > mx:
            mx = ti
    acc = math.exp(t0 - mx)
    # weights for the gradient
    g_al = 0.0
    g_be = 0.0
    g_ga = 0.0
    g_de = 0.0
    if want_grad:
        e0 = acc
        s_ab = digamma(al + be + n)
        g_al = e0 * (digamma(al + x) - s_ab)
        g_be = e0 * (digamma(be + n - x) - s_ab)
        s_gd = digamma(ga + de + n)
        g_ga = e0 * (digamma(ga) - s_gd)
        g_de = e0 * (digamma(de + n) - s_gd)
    for i in range(k):
        ti = lbeta(al + x, be + tx - x + i) - lbab + lbeta(ga + 1.0, de + tx + i) - lbgd
        ei = math.exp(ti - mx)
        acc += ei
        if want_grad:
            s_ab = digamma(al + be + tx + i)
            g_al += ei * (digamma(al + x) - s_ab)
            g_be += ei * (digamma(be + tx - x + i) - s_ab)
            s_gd = digamma(ga + de + tx + i + 1.0)
            g_ga += ei * (digamma(ga + 1.0) - s_gd)
            g_de += ei * (digamma(de + tx + i) - s_gd)
    ll = mx + math.log(acc)
    if want_grad:
        inv = 1.0 / acc
        # minus the derivative of the normalising log-beta functions
        g_al = g_al * inv - (digamma(al) - dab)
        g_be = g_be * inv - (digamma(be) - dab)
        g_ga = g_ga * inv - (digamma(ga) - dgd)
        g_de = g_de * inv - (digamma(de) - dgd)
    return ll, g_al, g_be, g_ga, g_de


@njit(**NJIT)
def _loglik_row(c, cols, i):
    return _pattern(c[0], c[1], c[2], c[3], cols[0][i], cols[1][i], cols[2][i], True)


loglik_grad = pattern_loglik(four_params, _loglik_row, 5, "bgbb")


@dual(1)
def probability_alive(params, x, tx, n, future):
    """P(alive at opportunity n + 1 + future | x, t_x, n) (FHS 2010 eq. 11; surviving ``future``
    more opportunities replaces B(gamma, delta+n+1) by B(gamma, delta+n+1+future))."""
    al, be, ga, de = params[0], params[1], params[2], params[3]
    m = x.shape[0]
    out = np.empty(m)
    for i in prange(m):
        ll = _pattern(al, be, ga, de, x[i], tx[i], n[i], False)[0]
        lt = (lbeta(al + x[i], be + n[i] - x[i]) - lbeta(al, be)
              + lbeta(ga, de + n[i] + 1.0 + future[i]) - lbeta(ga, de))
        out[i] = math.exp(lt - ll)
    return out


@dual(2)
def expected_purchases(params, n_future, x, tx, n):
    """E[X(n, n+n*) | x, t_x, n] (FHS 2010 eq. 13), continuous at gamma = 1."""
    out = np.zeros(x.shape[0])
    al, be, ga, de = params[0], params[1], params[2], params[3]
    for i in prange(out.shape[0]):
        ns = n_future[i]
        if ns <= 0:
            continue
        ll = _pattern(al, be, ga, de, x[i], tx[i], n[i], False)[0]
        ni = n[i]
        lead = (lbeta(al + x[i] + 1.0, be + ni - x[i]) - lbeta(al, be) + math.log(de)
                + math.lgamma(ga + de) - math.lgamma(1.0 + de))
        u = math.lgamma(1.0 + de + ni) - math.lgamma(ga + de + ni)
        v = math.lgamma(1.0 + de + ni + ns) - math.lgamma(ga + de + ni + ns)
        g1 = ga - 1.0
        if abs(g1) < 1e-7:
            # limit gamma -> 1 of (e^u - e^v)/(gamma-1): derivative in gamma at 1
            diff = math.exp(u) * (digamma(1.0 + de + ni + ns) - digamma(1.0 + de + ni))
        else:
            diff = math.exp(u) * (-math.expm1(v - u)) / g1
        out[i] = math.exp(lead - ll) * diff
    return out
