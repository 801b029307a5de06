"""Pareto/NBD (Schmittlein, Morrison & Colombo 1987), as written by Fader & Hardie (2005),
"A note on deriving the Pareto/NBD model and related expressions".

While alive, purchases are Poisson with rate lambda ~ Gamma(r, alpha); the lifetime is exponential
with rate mu ~ Gamma(s, beta). Likelihood: eq. (22) of the note, with the Gauss hypergeometric
term computed after Euler's transformation (bounded terms, see ``kernels/clv_pareto.py``);
P(alive): eq. (18); conditional expectation: eq. (26); E[X(t)]: eq. (17).
"""
from __future__ import annotations

import numpy as np

from ..kernels import clv_pareto as _k
from ._transaction import TransactionModel

__all__ = ["ParetoNBD"]


class ParetoNBD(TransactionModel):
    """Pareto/NBD: ``params_`` = {r, alpha, s, beta}.

    Parameters
    ----------
    penalizer : float
        L2 penalty on the parameters, ``-LL/n + penalizer * sum(params^2)`` (lifetimes' convention).
    """

    _kind = "clv.paretonbd"
    param_names = ("r", "alpha", "s", "beta")

    def _start(self, data):
        x, tx, T, w = data
        mean_T = float(np.average(T, weights=w)) if w.sum() > 0 else 1.0
        mean_x = float(np.average(x, weights=w)) if w.sum() > 0 else 0.0
        scale = max(mean_T / (1.0 + mean_x), 1e-3)
        return np.array([1.0, scale, 1.0, max(mean_T, 1e-3)])

    def _loglik_grad(self, theta, data):
        x, tx, T, w = data
        ll, grad, _ = _k.loglik_grad(np.asarray(theta, np.float64), x, tx, T, w)
        return ll, grad

    def individual_log_likelihood(self, frequency, recency, T) -> np.ndarray:
        """Per-customer log-likelihood at ``params_`` (float64, shape (n,))."""
        x, tx, TT = (np.ascontiguousarray(a.reshape(-1)) for a in self._prep_rft(frequency, recency, T))
        return _k.loglik_grad(self._theta(), x, tx, TT, np.ones_like(x))[2]

    def _k_alive(self, theta, x, tx, T, future_t):
        return _k.probability_alive(theta, x, tx, T, future_t)

    def _k_expected(self, theta, t, x, tx, T):
        return _k.expected_purchases(theta, t, x, tx, T)

    def _k_alive_now(self, theta, x, tx, T):
        return _k.probability_alive_now(theta, x, tx, T)

    def _k_discounted(self, theta, x, T, times, disc):
        return _k.discounted_if_alive(theta, x, T, times, disc)

    def _k_population(self, theta, t):
        return _k.population_expected(theta, t)
