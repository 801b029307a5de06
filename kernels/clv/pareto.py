"""Pareto/NBD (Schmittlein, Morrison & Colombo 1987) kernels, in the form of Fader & Hardie (2005),
"A note on deriving the Pareto/NBD model and related expressions", eq. (22):

    L = Gamma(r+x) alpha^r beta^s / Gamma(r) * [ (alpha+T)^-(r+x) (beta+T)^-s + s/(r+s+x) A0 ]
    A0 = F(t_x) - F(T),   F(y) = 2F1(r+s+x, b'; r+s+x+1; z_y) / (max(alpha,beta) + y)^(r+s+x)

with b' = s+1, z_y = (alpha-beta)/(alpha+y) when alpha >= beta, else b' = r+x and
z_y = (beta-alpha)/(beta+y). The Euler transformation turns F into products of powers and
S(z) = 2F1(1, e; r+s+x+1; z) whose terms are bounded by z^n (e = r+x or s+1), so no term
overflows for any x, and the gradient comes from term-wise derivatives of S.
"""
import math

import numpy as np
from numba import njit, prange

from ..common.config import (CLV_PARETO_DIRECT_TERMS, CLV_PARETO_INTEGER_GAP,
                             CLV_PARETO_NEAR_ONE_Z, CLV_REDUCE_CHUNK, NJIT)
from .pareto_pmf import probability_n_purchases  # noqa: F401  (part of this model's kernels)
from .special import (PARETO_MAX_TERMS, chunk_count, digamma, discounted_kernel, dual,
                      four_params, logaddexp, one_minus_pow_over, param_tuple, pattern_loglik,
                      near_one_constants, put_row, series_1_e_f, series_1_e_f_near_one,
                      sum_chunks)


#: exp-sinh quadrature: step and half-width in t (tau - y = L exp(pi/2 sinh t)).
_QH = 1.0 / 32.0
_QT = 5.5


@njit(**NJIT)
def _log_F_quad(r, alpha, s, beta, x, y):
    """log F(y) and gradient from F(y) = (r+s+x) int_y^inf (alpha+tau)^-(r+x) (beta+tau)^-(s+1) dtau.

    Used where the series converges slowly (z -> 1, e.g. beta >> alpha with small r+x, or
    alpha >> beta with small s). The exp-sinh substitution tau = y + L exp(pi/2 sinh t), with L
    the e-folding length of the integrand at y, integrates power-law tails to ~1e-13; the
    derivatives are integrals of the same weights (differentiation under the integral sign).
    """
    k1 = r + x
    k2 = s + 1.0
    L = 1.0 / (k1 / (alpha + y) + k2 / (beta + y))
    nt = int(2.0 * _QT / _QH) + 1
    # first pass: the maximum of the log integrand (with the Jacobian) for scaling
    mx = -np.inf
    for i in range(nt):
        t = -_QT + i * _QH
        e = math.exp(0.5 * math.pi * math.sinh(t))
        u = L * e
        lj = math.log(L) + math.log(e) + math.log(0.5 * math.pi * math.cosh(t))
        phi = -k1 * math.log(alpha + y + u) - k2 * math.log(beta + y + u) + lj
        if phi > mx:
            mx = phi
    i0 = 0.0
    ir = 0.0
    ia = 0.0
    is_ = 0.0
    ib = 0.0
    for i in range(nt):
        t = -_QT + i * _QH
        e = math.exp(0.5 * math.pi * math.sinh(t))
        u = L * e
        la = math.log(alpha + y + u)
        lb = math.log(beta + y + u)
        lj = math.log(L) + math.log(e) + math.log(0.5 * math.pi * math.cosh(t))
        wv = math.exp(-k1 * la - k2 * lb + lj - mx)
        i0 += wv
        ir += wv * la
        ia += wv / (alpha + y + u)
        is_ += wv * lb
        ib += wv / (beta + y + u)
    # the power-law tail beyond the last node, where (alpha+tau)(beta+tau) ~ tau^2: it matters
    # only when r+x+s is close to 0 (total exponent near 1)
    k = k1 + k2
    U = y + L * math.exp(0.5 * math.pi * math.sinh(_QT))
    lU = math.log(U)
    tail = math.exp((1.0 - k) * lU - math.log(k - 1.0) - mx) / _QH
    i0 += tail
    ir += tail * lU
    ia += tail / U
    is_ += tail * lU
    ib += tail / U
    A = r + s + x
    lF = math.log(A) + mx + math.log(i0 * _QH)
    d_r = 1.0 / A - ir / i0
    d_al = -k1 * ia / i0
    d_s = 1.0 / A - is_ / i0
    d_be = -k2 * ib / i0
    return lF, d_r, d_al, d_s, d_be


@njit(**NJIT)
def _log_F(r, alpha, s, beta, x, y, k=None):
    """log F(y) and its gradient (d/dr, d/dalpha, d/ds, d/dbeta): the series when it converges
    within PARETO_MAX_TERMS terms, the exp-sinh integral otherwise. ``k``: the
    :func:`_series_constants` of this x (computed when needed if not given)."""
    lF, d_r, d_al, d_s, d_be = _log_F_series(r, alpha, s, beta, x, y, k)
    if lF == lF:
        return lF, d_r, d_al, d_s, d_be
    return _log_F_quad(r, alpha, s, beta, x, y)


@njit(**NJIT)
def _series_parameters(r, alpha, s, beta, x):
    """(e, f) of S = 2F1(1, e; f; z) in F(y): they depend on x, not on y."""
    if alpha >= beta:
        return r + x, r + s + x + 1.0
    return s + 1.0, r + s + x + 1.0


@njit(**NJIT)
def _series_constants(e, f):
    """The z-free parts of ``_series`` at (e, f): log (e)_N / (f)_N with N =
    CLV_PARETO_DIRECT_TERMS (whether the direct series can stop in time) and the connection
    formula's :func:`near_one_constants` (8 values), as one tuple of 9."""
    n = CLV_PARETO_DIRECT_TERMS
    lpoch = math.lgamma(e + n) - math.lgamma(e) + math.lgamma(f) - math.lgamma(f + n)
    A, A_e, A_f, sign, lg_part, psi_1g, dg_e, dg_f = near_one_constants(e, f)
    return lpoch, A, A_e, A_f, sign, lg_part, psi_1g, dg_e, dg_f


@njit(**NJIT)
def _direct_can_stop(lpoch, e, f, z):
    """Whether ``series_1_e_f``'s stopping rule can hold by term N = CLV_PARETO_DIRECT_TERMS:
    the term t_N = (e)_N / (f)_N z^N times the tail factor rb / (1 - rb) must fall below 1e-17
    of the sum, which is at least 1. In the hard region (beta >> alpha) it never can, and the
    N terms would be wasted on every pair. A wrong "no" only sends S to the next method, which
    is as exact; a wrong "yes" costs the series' own attempt."""
    n = CLV_PARETO_DIRECT_TERMS
    rb = max((e + n) / (f + n) * z, z)
    return lpoch + n * math.log(z) + math.log(rb) - math.log1p(-rb) < _LOG_DIRECT_TOL


#: log of the direct series' relative stopping tolerance (1e-17) plus a margin of e^2 for the
#: bound in ``_direct_can_stop``.
_LOG_DIRECT_TOL = math.log(1e-17) + 2.0


@njit(**NJIT)
def _series(e, f, z, k=None):
    """S = 2F1(1, e; f; z) and its derivatives: directly for small z; near 1 directly if that
    converges within CLV_PARETO_DIRECT_TERMS terms (tried for f - e >= 2 when
    ``_direct_can_stop``), else by the connection to 1 - z (f - e away from integers); else
    directly with the term cap (NaN beyond: quadrature). ``k``: ``_series_constants(e, f)``."""
    if z > CLV_PARETO_NEAR_ONE_Z:
        if k is None:
            consts = _series_constants(e, f)
        else:
            consts = k
        g = f - e
        if g >= 2.0 and _direct_can_stop(consts[0], e, f, z):
            S, S_e, S_f, S_z = series_1_e_f(e, f, z, CLV_PARETO_DIRECT_TERMS)
            if S == S:
                return S, S_e, S_f, S_z
        if abs(g - round(g)) > CLV_PARETO_INTEGER_GAP:
            ok, S, S_e, S_f, S_z = series_1_e_f_near_one(e, f, z, consts[1:])
            if ok:
                return S, S_e, S_f, S_z
    return series_1_e_f(e, f, z, PARETO_MAX_TERMS)


@njit(**NJIT)
def _log_F_series(r, alpha, s, beta, x, y, k=None):
    """log F(y) and its gradient from the Euler-transformed series (NaN if it is too slow)."""
    e, f = _series_parameters(r, alpha, s, beta, x)
    if alpha >= beta:
        z = (alpha - beta) / (alpha + y)
        S, S_e, S_f, S_z = _series(e, f, z, k)
        lF = -s * math.log(beta + y) - (r + x) * math.log(alpha + y) + math.log(S)
        d_r = -math.log(alpha + y) + (S_e + S_f) / S
        d_s = -math.log(beta + y) + S_f / S
        d_alpha = -(r + x) / (alpha + y) + S_z / S * (beta + y) / ((alpha + y) * (alpha + y))
        d_beta = -s / (beta + y) - S_z / S / (alpha + y)
    else:
        z = (beta - alpha) / (beta + y)
        S, S_e, S_f, S_z = _series(e, f, z, k)
        lF = (1.0 - r - x) * math.log(alpha + y) - (s + 1.0) * math.log(beta + y) + math.log(S)
        d_r = -math.log(alpha + y) + S_f / S
        d_s = -math.log(beta + y) + (S_e + S_f) / S
        d_alpha = (1.0 - r - x) / (alpha + y) - S_z / S / (beta + y)
        d_beta = -(s + 1.0) / (beta + y) + S_z / S * (alpha + y) / ((beta + y) * (beta + y))
    return lF, d_r, d_alpha, d_s, d_beta


@njit(**NJIT)
def _pattern(r, alpha, s, beta, x, tx, T, want_grad):
    """(ll, d_r, d_alpha, d_s, d_beta, log P(alive at T)) for one pattern (gradient zero
    unless ``want_grad``)."""
    head = math.lgamma(r + x) - math.lgamma(r) + r * math.log(alpha) + s * math.log(beta)
    l1 = -(r + x) * math.log(alpha + T) - s * math.log(beta + T)
    rsx = r + s + x
    l2 = -np.inf
    lF1 = 0.0
    rho = 1.0
    if tx < T:
        lF1, a_r, a_al, a_s, a_be = _log_F(r, alpha, s, beta, x, tx)
        lF2, b_r, b_al, b_s, b_be = _log_F(r, alpha, s, beta, x, T)
        rho = math.exp(lF2 - lF1)
        if rho < 1.0:
            l2 = math.log(s) - math.log(rsx) + lF1 + math.log1p(-rho)
    lse = logaddexp(l1, l2)
    ll = head + lse
    if not want_grad:
        return ll, 0.0, 0.0, 0.0, 0.0, l1 - lse
    w1 = math.exp(l1 - lse)
    w2 = 1.0 - w1 if l2 > -np.inf else 0.0
    d_r = digamma(r + x) - digamma(r) + math.log(alpha) - w1 * math.log(alpha + T)
    d_al = r / alpha - w1 * (r + x) / (alpha + T)
    d_s = math.log(beta) - w1 * math.log(beta + T)
    d_be = s / beta - w1 * s / (beta + T)
    if w2 > 0.0:
        inv = 1.0 / (1.0 - rho)
        # d log A0 = (dlF1 - rho dlF2) / (1 - rho)
        d_r += w2 * (-1.0 / rsx + (a_r - rho * b_r) * inv)
        d_al += w2 * (a_al - rho * b_al) * inv
        d_s += w2 * (1.0 / s - 1.0 / rsx + (a_s - rho * b_s) * inv)
        d_be += w2 * (a_be - rho * b_be) * inv
    return ll, d_r, d_al, d_s, d_be, l1 - lse


@njit(**NJIT)
def _loglik_row(c, cols, i):
    return _pattern(c[0], c[1], c[2], c[3], cols[0][i], cols[1][i], cols[2][i], True)[:5]


loglik_grad = pattern_loglik(four_params, _loglik_row, 5, "pareto")


@njit(**NJIT)
def _log_alive(params, x, tx, T):
    """log P(alive at T | x, t_x, T)."""
    return _pattern(params[0], params[1], params[2], params[3], x, tx, T, False)[5]


@dual(1)
def probability_alive(params, x, tx, T, future_t):
    """P(alive at T + t | x, t_x, T) = P(alive at T) ((beta+T)/(beta+T+t))^s (posterior of mu);
    t = 0 gives P(alive at T)."""
    s, beta = params[2], params[3]
    out = np.empty(x.shape[0])
    for i in prange(out.shape[0]):
        lp = _log_alive(params, x[i], tx[i], T[i])
        if future_t[i] > 0.0:
            lp += s * (math.log(beta + T[i]) - math.log(beta + T[i] + future_t[i]))
        out[i] = math.exp(lp)
    return out


@dual(1)
def expected_purchases(params, t, x, tx, T):
    """E[Y(t) | x, t_x, T] (Fader & Hardie 2005 note, eq. 26), continuous at s = 1."""
    r, alpha, s, beta = params[0], params[1], params[2], params[3]
    out = np.zeros(x.shape[0])
    for i in prange(out.shape[0]):
        if not t[i] <= 0.0:   # (NaN t gives NaN)
            bt = beta + T[i]
            h = one_minus_pow_over(s - 1.0, math.log(bt) - math.log(bt + t[i]))
            out[i] = math.exp(_log_alive(params, x[i], tx[i], T[i])) * (r + x[i]) / \
                (alpha + T[i]) * bt * h
    return out


@dual(1)
def population_expected(params, t):
    """E[X(t)] = r beta / (alpha (s-1)) [1 - (beta/(beta+t))^(s-1)] (eq. 17 of the note)."""
    r, alpha, s, beta = params[0], params[1], params[2], params[3]
    out = np.zeros(t.shape[0])
    for i in prange(out.shape[0]):
        if not t[i] <= 0.0:   # (NaN t gives NaN)
            out[i] = r * beta / alpha * one_minus_pow_over(s - 1.0, math.log(beta) - math.log(beta + t[i]))
    return out


@njit(**NJIT)
def _if_alive(c, x, T, t):
    """E[Y(t) | alive at T] = (r+x)(beta+T)/((alpha+T)(s-1)) [1 - ((beta+T)/(beta+T+t))^(s-1)]."""
    r, alpha, s, beta = c
    bt = beta + T
    lead = (r + x) / (alpha + T) * bt
    return lead * one_minus_pow_over(s - 1.0, math.log(bt) - math.log(bt + t))


#: ``discounted_if_alive(params, x, T, times, disc)`` (see ``special.discounted_kernel``).
discounted_if_alive = discounted_kernel(param_tuple, _if_alive, "pareto")


@njit(**NJIT)
def _tab_rows(lo, hi, r, alpha, s, beta, lF, dF, hx, ux, ix, ia, ib, T, w):
    """Sums of ``loglik_grad_tab`` over patterns lo..hi-1 in row order: (ll, d_r, d_alpha,
    d_s, d_beta)."""
    total = 0.0
    g0 = 0.0
    g1 = 0.0
    g2 = 0.0
    g3 = 0.0
    inv_s = 1.0 / s
    lb = math.log(beta)
    for i in range(lo, hi):
        j = ix[i]
        x = ux[j]
        laT = math.log(alpha + T[i])
        lbT = math.log(beta + T[i])
        l1 = -(r + x) * laT - s * lbT
        qa = ia[i]
        qb = ib[i]
        rsx = r + s + x
        rho = math.exp(lF[qb] - lF[qa])
        l2 = -np.inf
        if rho < 1.0:
            l2 = math.log(s) - math.log(rsx) + lF[qa] + math.log1p(-rho)
        lse = logaddexp(l1, l2)
        w1 = math.exp(l1 - lse)
        w2 = 1.0 - w1 if l2 > -np.inf else 0.0
        d_r = hx[j, 1] - w1 * laT
        d_al = r / alpha - w1 * (r + x) / (alpha + T[i])
        d_s = lb - w1 * lbT
        d_be = s / beta - w1 * s / (beta + T[i])
        if w2 > 0.0:
            c = w2 / (1.0 - rho)
            d_r += -w2 / rsx + c * (dF[qa, 0] - rho * dF[qb, 0])
            d_al += c * (dF[qa, 1] - rho * dF[qb, 1])
            d_s += w2 * (inv_s - 1.0 / rsx) + c * (dF[qa, 2] - rho * dF[qb, 2])
            d_be += c * (dF[qa, 3] - rho * dF[qb, 3])
        wi = w[i]
        total += wi * (hx[j, 0] + lse)
        g0 += wi * d_r
        g1 += wi * d_al
        g2 += wi * d_s
        g3 += wi * d_be
    return total, g0, g1, g2, g3


@dual(5)
def loglik_grad_tab(params, qx, qy, jq, ux, ix, ia, ib, T, w):
    """Same total and gradient as ``loglik_grad``, with the hypergeometric term F evaluated once
    per distinct (x, y) pair (y = t_x or T) and the gamma functions once per distinct x.

    Pattern i has x = ux[ix[i]], F(t_x) at pair ia[i], F(T) at pair ib[i], and age T[i]; pair q
    has x = qx[q] = ux[jq[q]] (the z-free parts of the series are tabulated per x). The
    pairs are evaluated in parallel (one output each) and the pattern sums taken per chunk of
    CLV_REDUCE_CHUNK, then over the chunks in order: the result does not depend on the thread
    count or the launch path.
    """
    r, alpha, s, beta = params[0], params[1], params[2], params[3]
    # the parameters of S and the z-free constants of its methods, once per distinct x
    nx = ux.shape[0]
    xk = np.empty((nx, 9))
    for j in range(nx):
        e, f = _series_parameters(r, alpha, s, beta, ux[j])
        put_row(xk[j], _series_constants(e, f))
    npair = qx.shape[0]
    lF = np.empty(npair)
    dF = np.empty((npair, 4))
    for q in prange(npair):
        c = xk[jq[q]]
        k = (c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8])
        v, d_r, d_al, d_s, d_be = _log_F(r, alpha, s, beta, qx[q], qy[q], k)
        lF[q] = v
        dF[q, 0] = d_r
        dF[q, 1] = d_al
        dF[q, 2] = d_s
        dF[q, 3] = d_be
    hx = np.empty((nx, 2))
    lg_r = math.lgamma(r)
    dg_r = digamma(r)
    la = math.log(alpha)
    lb = math.log(beta)
    for j in range(nx):
        hx[j, 0] = math.lgamma(r + ux[j]) - lg_r + r * la + s * lb
        hx[j, 1] = digamma(r + ux[j]) - dg_r + la
    n = ix.shape[0]
    parts = np.zeros((chunk_count(n), 5))
    for c in prange(parts.shape[0]):
        lo = c * CLV_REDUCE_CHUNK
        put_row(parts[c], _tab_rows(lo, min(n, lo + CLV_REDUCE_CHUNK), r, alpha, s, beta, lF, dF,
                                    hx, ux, ix, ia, ib, T, w))
    sums = sum_chunks(parts)
    return sums[0], sums[1:].copy()
