"""Shifted-beta-geometric model of contractual retention (Fader & Hardie 2007, "How to project
customer retention", J. Interactive Marketing 21(1)).

Each customer's per-period churn probability theta ~ Beta(alpha, beta). P(T=t): eq. (5);
survival S(t): eq. (6); retention r(t) = (beta+t-1)/(alpha+beta+t-1): eq. (8); DERL: Fader &
Hardie (2010), eq. (6).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ..errors import InputError
from ..kernels.clv import sbg as _k
from ._base import BaseModel
from ._inputs import as_float_array
from ._spec import ModelSpec, Payload

__all__ = ["ShiftedBetaGeo"]


@dataclasses.dataclass(frozen=True)
class DurationPayload(Payload):
    """(t, censored, weight) rows: ``w`` customers churned in period t, or (censored) were
    still customers after period t."""

    t: np.ndarray
    censored: np.ndarray
    w: np.ndarray


def _loglik(theta, p: DurationPayload, n_threads):
    ll, grad, _ = _k.loglik_grad(theta, p.t, p.censored, p.w, n_threads=n_threads)
    return ll, grad


class ShiftedBetaGeo(BaseModel):
    """sBG: ``params_`` = {alpha, beta}.

    Fit from a cohort's survivor counts ``fit([1000, 631, 468, ...])`` (period 0 first), or from
    individual durations ``fit(durations=t, censored=c, weights=w)``: ``t`` is the period in which
    the customer churned (1, 2, ...) or, when ``censored``, the last period observed alive.
    """

    # quasi-Newton over a handful of (t, censored) rows
    spec = ModelSpec(kind="clv.sbg", param_names=("alpha", "beta"), loglik=_loglik,
                     start=lambda p: np.ones(2))

    @staticmethod
    def survivors_to_durations(survivors):
        """(t, censored, weights) rows from survivor counts n_0 >= n_1 >= ... >= n_k."""
        s = as_float_array(survivors, "survivors")
        if s.size < 2:
            raise InputError("survivors needs at least two periods (n_0 and n_1)")
        if np.any(np.diff(s) > 0) or s.min() < 0:
            raise InputError("survivors must be non-negative and non-increasing")
        k = s.size - 1
        t = np.append(np.arange(1, k + 1, dtype=np.float64), float(k))
        censored = np.append(np.zeros(k, dtype=np.bool_), True)
        w = np.append(s[:-1] - s[1:], s[-1])
        return t, censored, w

    def fit(self, survivors=None, *, durations=None, censored=None, weights=None,
            initial_params=None, n_threads: int | None = None):
        """Fit from survivor counts (``survivors``) or from individual durations."""
        if survivors is not None:
            t, c, w = self.survivors_to_durations(survivors)
        else:
            if durations is None:
                raise InputError("pass survivors or durations (with censored flags)")
            t = as_float_array(durations, "durations")
            c = np.zeros(t.shape, np.bool_) if censored is None else \
                np.ascontiguousarray(np.asarray(censored, dtype=np.bool_).reshape(-1))
            w = np.ones_like(t) if weights is None else as_float_array(weights, "weights")
            if np.any(t[~c] < 1) or np.any(t < 0) or np.any(t != np.floor(t)):
                raise InputError("durations must be whole periods, >= 1 for churned customers")
            if np.any(w < 0):
                raise InputError("weights has negative values")
        payload = DurationPayload(total_weight=float(w.sum()), n_patterns=int(t.shape[0]),
                                  time_scale=1.0, t=t, censored=c, w=w)
        return self._fit_payload(payload, initial_params, n_threads)

    def survival(self, t, *, n_threads: int | None = None) -> np.ndarray:
        """S(t) = P(still a customer after t periods)."""
        tt = np.asarray(t, dtype=np.float64)
        return _k.survival(self._theta(), np.ascontiguousarray(tt.reshape(-1)),
                           n_threads=n_threads).reshape(tt.shape)

    def churn_probability(self, t) -> np.ndarray:
        """P(T = t) = S(t-1) - S(t), t >= 1."""
        tt = np.asarray(t, dtype=np.float64)
        return self.survival(tt - 1) - self.survival(tt)

    def retention(self, t) -> np.ndarray:
        """Retention rate of period t: r(t) = S(t)/S(t-1) = (beta+t-1)/(alpha+beta+t-1)."""
        a, b = self._theta()
        tt = np.asarray(t, dtype=np.float64)
        return (b + tt - 1.0) / (a + b + tt - 1.0)

    def expected_survivors(self, n0: float, periods: int) -> np.ndarray:
        """n0 * S(t) for t = 0..periods (the cohort projection of Fader & Hardie 2007)."""
        return n0 * self.survival(np.arange(periods + 1, dtype=np.float64))

    def derl(self, discount_rate, renewals=0, *, n_threads: int | None = None) -> np.ndarray:
        """Discounted expected residual lifetime (in payments) of a customer who has made
        ``renewals`` renewals, with per-period discount rate > 0 (Fader & Hardie 2010 eq. 6).
        Multiply by the per-period margin for the residual value."""
        d, n = np.broadcast_arrays(np.asarray(discount_rate, dtype=np.float64),
                                   np.asarray(renewals, dtype=np.float64))
        if np.any(d <= 0):
            raise InputError("discount_rate must be > 0 (the undiscounted sum may diverge)")
        shape = d.shape
        return _k.derl(self._theta(), np.ascontiguousarray(d.reshape(-1)),
                       np.ascontiguousarray(n.reshape(-1)), n_threads=n_threads).reshape(shape)
