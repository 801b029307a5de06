"""BG/NBD (Fader, Hardie & Lee 2005) and MBG/NBD (Batislam, Denizel & Filiztekin 2007).

Model (BG/NBD): while alive, purchases follow a Poisson process of rate lambda ~ Gamma(r, alpha);
after each repeat purchase the customer drops out with probability p ~ Beta(a, b). MBG/NBD also
lets the customer drop out at time zero. Time is in the unit of ``recency``/``T`` (weeks for
CDNOW). Likelihood: FHL 2005 eq. 6 (Batislam et al. eq. 4); P(alive): eq. 13; conditional
expectation: eq. 10; E[X(t)]: eq. 9; P(X(t)=x): eq. 8.
"""
from __future__ import annotations

import numpy as np

from ..kernels.clv import betageo as _k
from ._transaction import TransactionModel

__all__ = ["BetaGeo", "ModifiedBetaGeo"]


class BetaGeo(TransactionModel):
    """BG/NBD: ``params_`` = {r, alpha, a, b}.

    Parameters
    ----------
    penalizer : float
        L2 penalty: the optimiser minimises ``-LL/n + penalizer * (r^2 + alpha^2 + a^2 + b^2)``
        (lifetimes' ``penalizer_coef`` convention); ``log_likelihood_`` is the unpenalised total.

    Examples
    --------
    >>> from fastengage import clv
    >>> s = clv.summary(tx, customer="id", time="date", freq="D", freq_multiplier=7)  # doctest: +SKIP
    >>> m = clv.BetaGeo().fit(s)                                                       # doctest: +SKIP
    >>> m.expected_purchases(39, s["frequency"], s["recency"], s["T"])                 # doctest: +SKIP
    """

    _kind = "clv.betageo"
    param_names = ("r", "alpha", "a", "b")
    _modified = 0

    def _payload(self, x, tx, T, w):
        # distinct frequencies and distinct recency/T values: the kernel tabulates every special
        # function over them, leaving one exp and one log1p per pattern
        n = x.shape[0]
        ymax = max(float(tx.max()), float(T.max()))
        if ymax < 4 * n + 1024 and x.max() < 4 * n + 1024 and np.array_equal(x, np.floor(x)) \
                and np.array_equal(tx, np.floor(tx)) and np.array_equal(T, np.floor(T)):
            # whole numbers: the values are their own table indices
            return (x, tx, T, w, (np.arange(x.max() + 1.0), np.arange(ymax + 1.0), x.astype(np.int64),
                                  T.astype(np.int64), tx.astype(np.int64)))
        ux, ix = np.unique(x, return_inverse=True)
        uy, iy = np.unique(np.concatenate([tx, T]), return_inverse=True)
        return (x, tx, T, w, (ux, uy, ix.astype(np.int64), np.ascontiguousarray(iy[n:], np.int64),
                              np.ascontiguousarray(iy[:n], np.int64)))

    def _start(self, data):
        x, tx, T, w = data[:4]
        mean_T = float(np.average(T, weights=w)) if w.sum() > 0 else 1.0
        mean_x = float(np.average(x, weights=w)) if w.sum() > 0 else 0.0
        return np.array([1.0, max(mean_T / (1.0 + mean_x), 1e-3), 1.0, 1.0])

    _has_hessian = True

    def _loglik_grad(self, theta, data):
        ux, uy, ix, iT, itx = data[4]
        ll, g, _ = _k.loglik_derivs_tab(np.asarray(theta, np.float64), ux, uy, ix, iT, itx,
                                        data[3], self._modified, False)
        return ll, g

    def _loglik_derivs(self, theta, data):
        ux, uy, ix, iT, itx = data[4]
        return _k.loglik_derivs_tab(np.asarray(theta, np.float64), ux, uy, ix, iT, itx, data[3],
                                    self._modified, True)

    def _subsample(self, data, step):
        x, tx, T, w, (ux, uy, ix, iT, itx) = data
        sl = slice(step // 2, None, step)
        ws = w[sl] * step
        return (x[sl], tx[sl], T[sl], ws, (ux, uy, ix[sl].copy(), iT[sl].copy(), itx[sl].copy())), \
            float(ws.sum())

    def individual_log_likelihood(self, frequency, recency, T) -> np.ndarray:
        """Per-customer log-likelihood at ``params_`` (float64, shape (n,))."""
        x, tx, TT = (np.ascontiguousarray(a.reshape(-1)) for a in self._prep_rft(frequency, recency, T))
        _, _, lls = _k.loglik_grad(self._theta(), x, tx, TT, np.ones_like(x), self._modified)
        return lls

    def _k_alive(self, theta, x, tx, T, future_t):
        return _k.probability_alive(theta, x, tx, T, future_t, self._modified)

    def _k_expected(self, theta, t, x, tx, T):
        return _k.expected_purchases(theta, t, x, tx, T, self._modified)

    def _k_alive_now(self, theta, x, tx, T):
        return _k.probability_alive_now(theta, x, tx, T, self._modified)

    def _k_discounted(self, theta, x, T, times, disc):
        return _k.discounted_if_alive(theta, x, T, times, disc, self._modified)

    def _k_population(self, theta, t):
        return _k.population_expected(theta, t, self._modified)

    def _k_pmf(self, theta, t, n):
        return _k.probability_n_purchases(theta, t, n, self._modified)


class ModifiedBetaGeo(BetaGeo):
    """MBG/NBD (Batislam et al. 2007): BG/NBD with a drop-out opportunity at time zero.

    ``params_`` = {r, alpha, a, b}; same methods and penalty convention as :class:`BetaGeo`.
    """

    _kind = "clv.modifiedbetageo"
    _modified = 1
