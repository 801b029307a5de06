"""Gamma-Gamma spend model (Fader, Hardie & Lee 2005, "RFM and CLV: using iso-value curves";
Fader & Hardie 2013, "The Gamma-Gamma model of monetary value", eq. 3).

For a customer with x repeat purchases of mean value m (x > 0):

    L = Gamma(px+q) / (Gamma(px) Gamma(q)) * gamma^q m^(px-1) x^(px) / (gamma + m x)^(px+q)
"""
import math

import numpy as np
from numba import njit, prange

from ..common.config import CLV_REDUCE_CHUNK, NJIT
from .special import (chunk_count, digamma, dual, pattern_loglik, put_row, sum_chunks,
                      trigamma)


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


@njit(**NJIT)
def repeat_buyers(x, m, w):
    """The rows Gamma-Gamma is fitted on (x > 0), compacted without branches, their sums, and the
    counts the API turns into errors.

    Parameters
    ----------
    x, m : float64[n]  frequency and mean repeat value per customer
    w : float64[n] or float64[0]  weights (empty: every row weighs 1)

    Returns
    -------
    (xs, ms, ws, n_nonfinite_x, n_nonfinite_m, n_nonpositive_m, W, S, s_m, s_m2)
        the kept rows (``ws`` empty when ``w`` is; views of n-sized buffers); NaN/inf counts
        over all rows; repeat buyers with m <= 0; when every kept x is a whole number below
        2^31, W[j] and S[j] = total weight and sum w log m of the rows with x = j (see
        ``spend_sums``), else W and S are empty; sum w m and sum w m^2 over the kept rows.
    """
    n = x.shape[0]
    has_w = w.shape[0] == n
    xs = np.empty(n)
    ms = np.empty(n)
    ws = np.empty(n if has_w else 0)
    k = 0
    bad_x = 0
    bad_m = 0
    nonpos = 0
    xmax = 0.0
    whole = True
    for i in range(n):
        xi = x[i]
        mi = m[i]
        keep = xi > 0.0
        xs[k] = xi
        ms[k] = mi
        if has_w:
            ws[k] = w[i]
        # bitwise, not and/or: short-circuits are branches, mispredicted on random x > 0
        bad_x += not math.isfinite(xi)
        bad_m += not math.isfinite(mi)
        nonpos += keep & (not mi > 0.0)
        whole &= (not keep) | (xi == math.floor(xi))
        xmax = xi if xi > xmax else xmax
        k += keep
    xs = xs[:k]
    ms = ms[:k]
    ws = ws[:k]
    whole &= xmax < 2147483648.0
    if not whole or bad_x or bad_m or nonpos:
        return xs, ms, ws, bad_x, bad_m, nonpos, np.empty(0), np.empty(0), 0.0, 0.0
    W, S, s_m, s_m2 = spend_sums(xs.astype(np.int64), int(xmax) + 1, ms, ws)
    return xs, ms, ws, bad_x, bad_m, nonpos, W, S, s_m, s_m2


@njit(**NJIT)
def spend_sums(ix, nx, m, w):
    """Per distinct frequency slot j (row i is in slot ``ix[i]``): W_j = sum of weights and
    S_j = sum w log m; over all rows, sum w m and sum w m^2 (for moment starting values).

    The Gamma-Gamma log-likelihood (eq. 3) splits into terms of x alone (weighted by W_j), terms
    linear in log m (S_j) and the row term (p x + q) log(gamma + m x), the only one that has to be
    evaluated per row at each optimiser step (``loglik_derivs``).
    """
    n = ix.shape[0]
    has_w = w.shape[0] == n
    W = np.zeros(nx)
    S = np.zeros(nx)
    s_m = 0.0
    s_m2 = 0.0
    for i in range(n):
        wi = w[i] if has_w else 1.0
        mi = m[i]
        j = ix[i]
        W[j] += wi
        S[j] += wi * math.log(mi)
        s_m += wi * mi
        s_m2 += wi * mi * mi
    return W, S, s_m, s_m2


@njit(**NJIT)
def _row_sums(lo, hi, v, x, m, w):
    """Rows lo..hi-1 of ``loglik_derivs``: (R0, R1, D0, D1, E0, E1)."""
    has_w = w.shape[0] == x.shape[0]
    R0 = 0.0
    R1 = 0.0
    D0 = 0.0
    D1 = 0.0
    E0 = 0.0
    E1 = 0.0
    for i in range(lo, hi):
        wi = w[i] if has_w else 1.0
        xi = x[i]
        vz = v + m[i] * xi
        L = math.log(vz)
        inv = 1.0 / vz
        u = wi * inv
        R0 += wi * L
        R1 += wi * xi * L
        D0 += u
        D1 += u * xi
        E0 += u * inv
        E1 += u * xi * inv
    return R0, R1, D0, D1, E0, E1


@dual(4)
def loglik_derivs(params, ux, W, S, x, m, w, want_hess):
    """Weighted total log-likelihood (Fader & Hardie 2013 eq. 3), gradient and Hessian w.r.t.
    (p, q, gamma), from the per-frequency sums of ``spend_sums`` and one pass over the rows.

    With A(x) = lgamma(px+q) - lgamma(px) - lgamma(q) + q log(gamma) + px log(x):

        LL = sum_j W_j A(u_j) + sum_j (p u_j - 1) S_j - sum_i w_i (p x_i + q) log(gamma + m_i x_i)

    so a step costs one log and one division per row; the lgamma/digamma/trigamma terms are
    evaluated once per distinct frequency ``ux`` (rows with W_j = 0 must not be passed).

    Returns
    -------
    (ll, grad[3], hess[3, 3])  ``hess`` is zero unless ``want_hess``.
    """
    p, q, v = params[0], params[1], params[2]
    lv = math.log(v)
    lg_q = math.lgamma(q)
    dg_q = digamma(q)
    tg_q = trigamma(q)
    total = g0 = g1 = h00 = h01 = h11 = wsum = 0.0   # sums over the distinct frequencies
    for j in range(ux.shape[0]):
        xj = ux[j]
        Wj = W[j]
        px = p * xj
        lx = math.log(xj)
        dpq = digamma(px + q)
        total += Wj * (math.lgamma(px + q) - math.lgamma(px) - lg_q + q * lv + px * lx) \
            + (px - 1.0) * S[j]
        g0 += Wj * xj * (dpq - digamma(px) + lx) + xj * S[j]
        g1 += Wj * (dpq - dg_q + lv)
        wsum += Wj
        if want_hess:
            tpq = trigamma(px + q)
            h00 += Wj * xj * xj * (tpq - trigamma(px))
            h01 += Wj * xj * tpq
            h11 += Wj * (tpq - tg_q)
    # row sums: R0 = sum w L, R1 = sum w x L with L = log(gamma + m x), and the derivatives in
    # gamma: D0 = sum w / (gamma + m x), D1 = sum w x / (...), E0, E1 with squared denominators
    # (per chunk of CLV_REDUCE_CHUNK rows in parallel, then the chunks in order: the result
    # does not depend on the thread count or the launch path)
    n = x.shape[0]
    parts = np.zeros((chunk_count(n), 6))
    for c in prange(parts.shape[0]):
        lo = c * CLV_REDUCE_CHUNK
        put_row(parts[c], _row_sums(lo, min(n, lo + CLV_REDUCE_CHUNK), v, x, m, w))
    R0, R1, D0, D1, E0, E1 = sum_chunks(parts)
    total += -p * R1 - q * R0
    grad = np.empty(3)
    grad[0] = g0 - R1
    grad[1] = g1 - R0
    grad[2] = wsum * q / v - p * D1 - q * D0
    hess = np.zeros((3, 3))
    if want_hess:
        hess[0, 0] = h00
        hess[0, 1] = h01
        hess[1, 1] = h11
        hess[0, 2] = -D1
        hess[1, 2] = wsum / v - D0
        hess[2, 2] = -wsum * q / (v * v) + p * E1 + q * E0
        for a in range(3):
            for b in range(a):
                hess[a, b] = hess[b, a]
    return total, grad, hess
