"""P(X(t) = k) of the Pareto/NBD (Fader, Hardie & Lee 2005, "A note on deriving the Pareto/NBD
model and related expressions", eq. 19) by adaptive Gauss-Legendre quadrature over the lifetime;
re-exported by :mod:`kernels.clv.pareto` with the model's other kernels."""
import math

import numpy as np
from numba import njit, prange

from ..common.config import NJIT
from .special import dual


#: Gauss-Legendre rule of the adaptive quadrature in ``probability_n_purchases``.
_GL_X, _GL_W = np.polynomial.legendre.leggauss(20)
#: Relative tolerance and panel budget of that quadrature.
_PMF_RTOL = 1e-14
_PMF_MAX_PANELS = 4096


@njit(**NJIT)
def _pmf_log_shape(r, alpha, s, k, beta, tau, m):
    """log of the integrand of ``probability_n_purchases`` relative to its value at ``m``:
    k log(tau/m) - (r+k) log((alpha+tau)/(alpha+m)) - (s+1) log((beta+tau)/(beta+m)), by log1p
    of the differences so that it stays accurate near m however large k is (m > 0 when k > 0)."""
    d = tau - m
    v = -(r + k) * math.log1p(d / (alpha + m)) - (s + 1.0) * math.log1p(d / (beta + m))
    if k > 0:
        v += k * math.log1p(d / m)
    return v


@njit(**NJIT)
def _gl_panel(r, alpha, s, k, beta, m, a, b):
    """20-point Gauss-Legendre integral of exp(log_shape) over [a, b]."""
    half = 0.5 * (b - a)
    mid = 0.5 * (a + b)
    acc = 0.0
    for j in range(_GL_X.shape[0]):
        acc += _GL_W[j] * math.exp(_pmf_log_shape(r, alpha, s, k, beta, mid + half * _GL_X[j], m))
    return acc * half


@njit(**NJIT)
def _adaptive_integral(r, alpha, s, k, beta, m, a, b):
    """Integral over [a, b] of exp(log_shape) by bisection until each panel's value agrees with
    the sum over its halves to _PMF_RTOL of the running total (explicit stack, the panel nearest
    the mode ``m`` refined first so that the total's scale is known early)."""
    if b <= a:
        return 0.0
    stack_a = np.empty(128)
    stack_b = np.empty(128)
    stack_v = np.empty(128)
    first = _gl_panel(r, alpha, s, k, beta, m, a, b)
    stack_a[0] = a
    stack_b[0] = b
    stack_v[0] = first
    top = 1
    total = 0.0
    scale = abs(first)
    panels = 0
    toward_b = m >= b
    while top > 0:
        top -= 1
        pa = stack_a[top]
        pb = stack_b[top]
        pv = stack_v[top]
        c = 0.5 * (pa + pb)
        left = _gl_panel(r, alpha, s, k, beta, m, pa, c)
        right = _gl_panel(r, alpha, s, k, beta, m, c, pb)
        both = left + right
        scale = max(scale, abs(total + both))
        panels += 1
        if abs(both - pv) <= _PMF_RTOL * scale or top + 2 > stack_a.shape[0] or \
                panels > _PMF_MAX_PANELS or pb - pa <= 1e-15 * (abs(pa) + abs(pb)):
            total += both
        else:
            # push the half nearer the mode last, so it is refined first
            near_a, near_b, near_v = (c, pb, right) if toward_b else (pa, c, left)
            far_a, far_b, far_v = (pa, c, left) if toward_b else (c, pb, right)
            stack_a[top] = far_a
            stack_b[top] = far_b
            stack_v[top] = far_v
            stack_a[top + 1] = near_a
            stack_b[top + 1] = near_b
            stack_v[top + 1] = near_v
            top += 2
    return total


@njit(**NJIT)
def _probability_n(r, alpha, s, beta, t, k):
    """P(X(t) = k) for one (t, k); see ``probability_n_purchases``."""
    if t <= 0.0:
        return 1.0 if k == 0 else 0.0
    lg = math.lgamma(r + k) - math.lgamma(r) - math.lgamma(k + 1.0)
    # alive throughout (0, t]: NBD count times P(lifetime > t)
    lnb = lg + r * (math.log(alpha) - math.log(alpha + t)) + s * (math.log(beta) - math.log(beta + t))
    if k > 0:
        lnb += k * (math.log(t) - math.log(alpha + t))
    # died at tau in (0, t]: density s beta^s (beta+tau)^-(s+1) times the NBD count up to tau.
    # The integrand is unimodal in tau with its mode at the positive root of
    # (r+s+1) tau^2 - (alpha (k-s-1) - r beta) tau - k alpha beta = 0: split there, scale by it.
    B = alpha * (k - s - 1.0) - r * beta
    mode = (B + math.sqrt(B * B + 4.0 * (r + s + 1.0) * k * alpha * beta)) / (2.0 * (r + s + 1.0))
    mode = min(max(mode, 0.0), t)
    log_peak = math.log(s) + s * math.log(beta) + lg + r * math.log(alpha) \
        - (r + k) * math.log(alpha + mode) - (s + 1.0) * math.log(beta + mode)
    if k > 0:
        log_peak += k * math.log(mode)
    died = 0.0
    if log_peak + math.log(t) > -746.0:   # else below the smallest double: the integrand <= peak
        integral = _adaptive_integral(r, alpha, s, k, beta, mode, 0.0, mode) + \
            _adaptive_integral(r, alpha, s, k, beta, mode, mode, t)
        if integral > 0.0:
            died = math.exp(log_peak + math.log(integral))
    return math.exp(lnb) + died


@dual(1)
def probability_n_purchases(params, t, k):
    """P(X(t) = k) for a customer who made the first purchase at 0 (Fader, Hardie & Lee 2005,
    "A note on deriving the Pareto/NBD model and related expressions", eq. 19), per element.

    Conditioning on the lifetime tau ~ Exp(mu) and mixing lambda and mu over their gammas,

        P(X(t)=k) = NB(k; t) (beta/(beta+t))^s + int_0^t s beta^s (beta+tau)^-(s+1) NB(k; tau) dtau

    with NB(k; u) = Gamma(r+k)/(Gamma(r) k!) (alpha/(alpha+u))^r (u/(alpha+u))^k. Integrating
    term by term gives the note's closed form, B1 - sum_{i<=k} (...) B2_i with Gauss
    hypergeometric B's; that difference cancels catastrophically when t is short next to the
    expected purchase gaps or k is large, while the integral has a positive, unimodal integrand:
    it is evaluated by adaptive Gauss-Legendre quadrature split at the mode (relative error
    ~1e-14), so the probabilities of every k sum to 1.
    """
    r, alpha, s, beta = params[0], params[1], params[2], params[3]
    n = t.shape[0]
    out = np.empty(n)
    for i in prange(n):
        out[i] = _probability_n(r, alpha, s, beta, t[i], k[i])
    return out
