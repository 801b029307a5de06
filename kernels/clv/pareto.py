"""Pareto/NBD (Schmittlein, Morrison & Colombo 1987) kernels, in the form of Fader & Hardie (2005),
"A note on deriving the Pareto/NBD model and related expressions", eq. (22):

    L = Gamma(r+x) alpha^r beta^s / Gamma(r) * [ (alpha+T)^-(r+x) (beta+T)^-s + s/(r+s+x) A0 ]
    A0 = F(t_x) - F(T),   F(y) = 2F1(r+s+x, b'; r+s+x+1; z_y) / (max(alpha,beta) + y)^(r+s+x)

with b' = s+1, z_y = (alpha-beta)/(alpha+y) when alpha >= beta, else b' = r+x and
z_y = (beta-alpha)/(beta+y). The Euler transformation turns F into products of powers and
S(z) = 2F1(1, e; r+s+x+1; z) whose terms are bounded by z^n (e = r+x or s+1), so no term
overflows for any x, and the gradient comes from term-wise derivatives of S. Where the series
converges slowly (z -> 1 with a small exponent gap: beta >> alpha with small r+x, or
alpha >> beta with small s) S comes from its connection to 1 - z, and past the term cap F from
an exp-sinh quadrature of its integral form.

The loops are compiled ahead of time (kernels/clv/models_native.pyx, issue #11: a cold first fit
compiled 36 Numba specialisations, ~7 s CPU); this module launches them on the launch rule's
threads (``special.threaded``): every row is computed by one thread and sums are taken per chunk
of CLV_REDUCE_CHUNK rows, then in order, so results do not depend on the thread count.
"""
import numpy as np

from ..common.config import (CLV_PARETO_DIRECT_TERMS, CLV_PARETO_INTEGER_GAP,
                             CLV_PARETO_NEAR_ONE_Z, CLV_REDUCE_CHUNK)
from . import models_native as _native
from .special import PARETO_MAX_TERMS, as_float64, predict_rows, run_workers, threaded

#: Gauss-Legendre rule of the adaptive quadrature in ``probability_n_purchases``.
_GL_X, _GL_W = np.polynomial.legendre.leggauss(20)
_native.set_pareto_config(CLV_PARETO_NEAR_ONE_Z, CLV_PARETO_INTEGER_GAP, CLV_PARETO_DIRECT_TERMS,
                          PARETO_MAX_TERMS, _GL_X, _GL_W)

#: log F(y) and its gradient (d/dr, d/dalpha, d/ds, d/dbeta) at one (x, y): the series when it
#: converges within PARETO_MAX_TERMS terms, the exp-sinh integral otherwise; and each method
#: alone (the series gives NaN where it is too slow).
_log_F = _native.pareto_log_F
_log_F_series = _native.pareto_log_F_series
_log_F_quad = _native.pareto_log_F_quad

_ALIVE, _EXPECTED, _POPULATION, _PMF = 0, 1, 2, 3


def _i(a):
    """A C-contiguous int64 view of ``a`` (a copy only when it is not one already)."""
    return np.ascontiguousarray(a, dtype=np.int64)


@threaded(1)
def loglik_grad(params, x, tx, T, w, workers):
    """Weighted total log-likelihood of (x, t_x, T) rows, its gradient w.r.t. (r, alpha, s,
    beta) and the per-row (unweighted) ll: per-row terms on ``workers`` threads, summed in row
    order."""
    params, x, tx, T, w = map(as_float64, (params, x, tx, T, w))
    terms = np.empty((x.shape[0], 5))
    run_workers(lambda k, n: _native.pareto_rows(params, x, tx, T, terms, CLV_REDUCE_CHUNK, k, n),
                workers)
    total, grad = _native.weighted_totals(terms, w)
    return total, grad, terms[:, 0].copy()


@threaded(5)
def loglik_grad_tab(params, qx, qy, jq, ux, ix, ia, ib, T, w, workers):
    """Same total and gradient as ``loglik_grad``, with the hypergeometric term F evaluated once
    per distinct (x, y) pair (y = t_x or T) and the gamma functions once per distinct x.

    Pattern i has x = ux[ix[i]], F(t_x) at pair ia[i], F(T) at pair ib[i], and age T[i]; pair q
    has x = qx[q] = ux[jq[q]] (the z-free parts of the series are tabulated per x). The pairs
    are evaluated in parallel (one output each) and the pattern sums taken per chunk of
    CLV_REDUCE_CHUNK, then over the chunks in order: the result does not depend on the thread
    count or the launch path.
    """
    params, qx, qy, ux, T, w = map(as_float64, (params, qx, qy, ux, T, w))
    jq, ix, ia, ib = _i(jq), _i(ix), _i(ia), _i(ib)
    xk, hx = _native.pareto_x_tables(params, ux)
    lF = np.empty(qx.shape[0])
    dF = np.empty((qx.shape[0], 4))
    run_workers(lambda k, n: _native.pareto_pairs(params, qx, qy, jq, xk, lF, dF,
                                                  CLV_REDUCE_CHUNK, k, n), workers)
    parts = np.zeros((-(-ix.shape[0] // CLV_REDUCE_CHUNK), 5))
    run_workers(lambda k, n: _native.pareto_chunk_sums(params, lF, dF, hx, ux, ix, ia, ib, T, w,
                                                       parts, CLV_REDUCE_CHUNK, k, n), workers)
    sums = _native.ordered_column_sums(parts)
    return sums[0], sums[1:].copy()


def _predict(kind, params, t, x, tx, T, workers):
    params, t, x, tx, T = map(as_float64, (params, t, x, tx, T))
    return predict_rows(_native.pareto_predict, t.shape[0], kind, params, t, x, tx, T,
                        workers=workers)


@threaded(1)
def probability_alive(params, x, tx, T, future_t, workers):
    """P(alive at T + t | x, t_x, T) = P(alive at T) ((beta+T)/(beta+T+t))^s (posterior of mu);
    t = 0 gives P(alive at T) (eq. 18 of the note)."""
    return _predict(_ALIVE, params, future_t, x, tx, T, workers)


@threaded(1)
def expected_purchases(params, t, x, tx, T, workers):
    """E[Y(t) | x, t_x, T] (Fader & Hardie 2005 note, eq. 26), continuous at s = 1."""
    return _predict(_EXPECTED, params, t, x, tx, T, workers)


@threaded(1)
def population_expected(params, t, workers):
    """E[X(t)] = r beta / (alpha (s-1)) [1 - (beta/(beta+t))^(s-1)] (eq. 17 of the note)."""
    return _predict(_POPULATION, params, t, t, t, t, workers)


@threaded(1)
def probability_n_purchases(params, t, k, workers):
    """P(X(t) = k) for a customer who made the first purchase at 0 (Fader, Hardie & Lee 2005,
    "A note on deriving the Pareto/NBD model and related expressions", eq. 19), per element.

    Conditioning on the lifetime tau ~ Exp(mu) and mixing lambda and mu over their gammas,

        P(X(t)=k) = NB(k; t) (beta/(beta+t))^s + int_0^t s beta^s (beta+tau)^-(s+1) NB(k; tau) dtau

    with NB(k; u) = Gamma(r+k)/(Gamma(r) k!) (alpha/(alpha+u))^r (u/(alpha+u))^k. Integrating
    term by term gives the note's closed form, B1 - sum_{i<=k} (...) B2_i with Gauss
    hypergeometric B's; that difference cancels catastrophically when t is short next to the
    expected purchase gaps or k is large, while the integral has a positive, unimodal integrand:
    it is evaluated by adaptive 20-point Gauss-Legendre quadrature split at the mode (relative
    error ~1e-14), so the probabilities of every k sum to 1.
    """
    return _predict(_PMF, params, t, k, t, t, workers)


@threaded(1)
def discounted_if_alive(params, x, T, times, disc, workers):
    """Per (x, T) pair: sum_h (E[Y(t_h) | alive at T] - E[Y(t_h-1) | alive at T]) disc_h, the
    part of CLV that does not depend on t_x (CLV multiplies it by P(alive) per customer), with
    E[Y(t) | alive at T] = (r+x)(beta+T)/((alpha+T)(s-1)) [1 - ((beta+T)/(beta+T+t))^(s-1)]."""
    params, x, T, times, disc = map(as_float64, (params, x, T, times, disc))
    out = np.empty(x.shape[0])
    run_workers(lambda k, n: _native.pareto_discounted(params, x, T, times, disc, out,
                                                       CLV_REDUCE_CHUNK, k, n), workers)
    return out
