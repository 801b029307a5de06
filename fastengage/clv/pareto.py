"""Pareto/NBD (Schmittlein, Morrison & Colombo 1987), as written by Fader & Hardie (2005),
"A note on deriving the Pareto/NBD model and related expressions".

While alive, purchases are Poisson with rate lambda ~ Gamma(r, alpha); the lifetime is exponential
with rate mu ~ Gamma(s, beta). Likelihood: eq. (22) of the note, with the Gauss hypergeometric
term computed after Euler's transformation (bounded terms, see ``kernels/clv_pareto.py``);
P(alive): eq. (18); conditional expectation: eq. (26); E[X(t)]: eq. (17); P(X(t)=x): eq. (19),
evaluated as an integral over the lifetime (see ``kernels/clv_pareto.probability_n_purchases``).
"""
from __future__ import annotations

import numpy as np

from ..kernels.clv import pareto as _k
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

    def _payload(self, x, tx, T, w):
        # F(y) depends on (x, y) only: evaluate it once per distinct pair, y in {t_x, T}
        from ._base import compress
        n = x.shape[0]
        (qx, qy), _, pair = compress(np.concatenate([x, x]), np.concatenate([tx, T]))
        ux, ix = np.unique(x, return_inverse=True)
        return (x, tx, T, w, (qx, qy, ux, ix.astype(np.int64), np.ascontiguousarray(pair[:n]),
                              np.ascontiguousarray(pair[n:])))

    def _start(self, data):
        x, tx, T, w = data[:4]
        mean_T = float(np.average(T, weights=w)) if w.sum() > 0 else 1.0
        mean_x = float(np.average(x, weights=w)) if w.sum() > 0 else 0.0
        scale = max(mean_T / (1.0 + mean_x), 1e-3)
        return np.array([1.0, scale, 1.0, max(mean_T, 1e-3)])

    # Newton steps with a finite-difference Hessian of the analytic gradient (5 passes a step)
    # from a subsample fit: ~4x fewer passes than L-BFGS-B on 100k customers
    _has_hessian = True
    _passes_per_hessian = 5
    PREFIT_MIN_PATTERNS = 10_000
    PREFIT_PATTERNS = 2_000
    NEWTON_MAX_ITER = 15     # each step costs 5 passes: hand a ridge to L-BFGS-B early

    def _loglik_derivs(self, theta, data):
        return self._fd_loglik_derivs(theta, data)

    def _subsample(self, data, step):
        x, tx, T, w, (qx, qy, ux, ix, ia, ib) = data
        sl = slice(step // 2, None, step)
        ws = w[sl] * step
        return (x[sl], tx[sl], T[sl], ws, (qx, qy, ux, ix[sl].copy(), ia[sl].copy(),
                                           ib[sl].copy())), float(ws.sum())

    def _loglik_grad(self, theta, data):
        qx, qy, ux, ix, ia, ib = data[4]
        return _k.loglik_grad_tab(np.asarray(theta, np.float64), qx, qy, ux, ix, ia, ib, data[2],
                                  data[3])

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

    def _k_pmf(self, theta, t, n):
        return _k.probability_n_purchases(theta, t, n)
