"""Gamma-Gamma spend model (Fader, Hardie & Lee 2005, "RFM and CLV: using iso-value curves";
Fader & Hardie 2013, "The Gamma-Gamma model of monetary value", eq. 3).

For a customer with x repeat purchases of mean value m (x > 0):

    L = Gamma(px+q) / (Gamma(px) Gamma(q)) * gamma^q m^(px-1) x^(px) / (gamma + m x)^(px+q)
"""
import math

import numpy as np
from numba import njit, prange

from ..common.config import CLV_REDUCE_CHUNK, NJIT
from .special import dual, digamma, trigamma, weighted_totals


@dual(1)
def loglik_grad(params, x, m, w):
    """Weighted total log-likelihood, gradient w.r.t. (p, q, gamma), per-row ll (x > 0, m > 0).
    Per-row terms in parallel, summed in row order (independent of the thread count)."""
    p, q, v = params[0], params[1], params[2]
    n = x.shape[0]
    terms = np.empty((n, 4))
    dq = digamma(q)
    lv = math.log(v)
    for i in prange(n):
        xi = x[i]
        mi = m[i]
        px = p * xi
        lm = math.log(mi)
        lx = math.log(xi)
        lvm = math.log(v + mi * xi)
        dpq = digamma(px + q)
        terms[i, 0] = (math.lgamma(px + q) - math.lgamma(px) - math.lgamma(q) + q * lv
                       + (px - 1.0) * lm + px * lx - (px + q) * lvm)
        terms[i, 1] = xi * (dpq - digamma(px) + lm + lx - lvm)
        terms[i, 2] = dpq - dq + lv - lvm
        terms[i, 3] = q / v - (px + q) / (v + mi * xi)
    total, grad = weighted_totals(terms, w)
    return total, grad, terms[:, 0].copy()


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
def _row_sums(lo, hi, v, x, m, w, out):
    """Rows lo..hi-1 of ``loglik_derivs``: [R0, R1, D0, D1, E0, E1] into ``out``."""
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
    out[0] = R0
    out[1] = R1
    out[2] = D0
    out[3] = D1
    out[4] = E0
    out[5] = E1


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
    total = 0.0
    g0 = 0.0
    g1 = 0.0
    g2 = 0.0
    h00 = 0.0
    h01 = 0.0
    h11 = 0.0
    wsum = 0.0
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
    n_chunks = (n + CLV_REDUCE_CHUNK - 1) // CLV_REDUCE_CHUNK
    parts = np.zeros((n_chunks, 6))
    for c in prange(n_chunks):
        lo = c * CLV_REDUCE_CHUNK
        _row_sums(lo, min(n, lo + CLV_REDUCE_CHUNK), v, x, m, w, parts[c])
    R0 = 0.0
    R1 = 0.0
    D0 = 0.0
    D1 = 0.0
    E0 = 0.0
    E1 = 0.0
    for c in range(n_chunks):
        R0 += parts[c, 0]
        R1 += parts[c, 1]
        D0 += parts[c, 2]
        D1 += parts[c, 3]
        E0 += parts[c, 4]
        E1 += parts[c, 5]
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
