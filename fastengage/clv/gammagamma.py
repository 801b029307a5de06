"""Gamma-Gamma spend model (Fader, Hardie & Lee 2005 "RFM and CLV"; Fader & Hardie 2013 note).

A customer's transaction values are Gamma(p, nu) with nu ~ Gamma(q, gamma); fitted on repeat
buyers (x > 0) from their mean repeat value m. Likelihood: eq. (3) of the 2013 note; expected
spend: E[M | x, m] = (gamma + m x) p / (p x + q - 1) (eq. 5).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..errors import InputError
from ..kernels.clv import spend as _k
from ._base import BaseModel, _is_table_like, as_float_array, read_columns

__all__ = ["GammaGamma"]


class _SpendData(NamedTuple):
    """What the Gamma-Gamma kernels receive: per distinct frequency ``ux`` the total weight ``W``
    and ``S`` = sum w log m; the repeat buyers' rows (x, m, w; ``w`` empty for unit weights);
    sum w m and sum w m^2."""
    ux: np.ndarray
    W: np.ndarray
    S: np.ndarray
    x: np.ndarray
    m: np.ndarray
    w: np.ndarray
    s_m: float
    s_m2: float


def _spend_data(x, m, w, whole: bool, sums=None) -> _SpendData:
    """The payload of the rows (x, m, w); ``sums`` = (W, S, s_m, s_m2) by whole frequency when
    already computed (``repeat_buyers``)."""
    if whole:
        W, S, s_m, s_m2 = sums if sums is not None else \
            _k.spend_sums(x.astype(np.int64), int(x.max()) + 1, m, w)
        ux = np.flatnonzero(W > 0)
        W, S, ux = W[ux], S[ux], ux.astype(np.float64)
    else:
        ux, ix = np.unique(x, return_inverse=True)
        W, S, s_m, s_m2 = _k.spend_sums(ix.astype(np.int64), ux.size, m, w)
        present = W > 0
        ux, W, S = ux[present], W[present], S[present]
    return _SpendData(ux, W, S, x, m, w, s_m, s_m2)


class GammaGamma(BaseModel):
    """Gamma-Gamma: ``params_`` = {p, q, gamma}.

    ``fit(frequency, monetary_value)`` (or a table with those columns) uses the customers with
    ``frequency > 0`` only, as the model requires; how many were used is ``n_``.
    """

    _kind = "clv.gammagamma"
    param_names = ("p", "q", "gamma")
    _has_hessian = True

    def _start(self, data):
        total = float(data.W.sum())
        mean = data.s_m / total
        var = max(data.s_m2 / total - mean * mean, 0.0) + 1e-12
        return np.array([max(mean ** 2 / var, 0.1), 3.0, max(mean, 1e-3) * 2.0])

    def _loglik_grad(self, theta, data):
        ll, g, _ = _k.loglik_derivs(np.asarray(theta, np.float64), data.ux, data.W, data.S,
                                    data.x, data.m, data.w, False)
        return ll, g

    def _loglik_derivs(self, theta, data):
        return _k.loglik_derivs(np.asarray(theta, np.float64), data.ux, data.W, data.S, data.x,
                                data.m, data.w, True)

    def _n_patterns(self, data):
        return int(data.x.shape[0])

    def _subsample(self, data, step):
        sl = slice(step // 2, None, step)
        x, m = data.x[sl].copy(), data.m[sl].copy()
        w = data.w[sl] * step if data.w.size else np.full(x.size, float(step))
        sub = _spend_data(x, m, w, bool(np.all(data.ux == np.floor(data.ux))))
        return sub, float(sub.W.sum())

    @staticmethod
    def _xm(frequency, monetary_value, frequency_col, monetary_col):
        if _is_table_like(frequency) and monetary_value is None:
            cols = read_columns(frequency, {"frequency": frequency_col, "monetary_value": monetary_col})
            x, m = cols["frequency"], cols["monetary_value"]
        else:
            if monetary_value is None:
                raise InputError("pass a table with frequency/monetary_value columns or both arrays")
            # NaN/inf are counted by the kernel below, in the same pass that selects the rows
            x = as_float_array(frequency, "frequency", check_finite=False)
            m = as_float_array(monetary_value, "monetary_value", check_finite=False)
        if x.shape != m.shape:
            raise InputError("frequency and monetary_value must have the same length")
        return x, m

    def fit(self, frequency, monetary_value=None, *, weights=None, frequency_col="frequency",
            monetary_col="monetary_value", initial_params=None):
        """Fit on customers with frequency > 0 (mean repeat value must then be > 0).

        Maximum likelihood by Newton steps with the analytic Hessian; each step costs one log and
        one division per repeat buyer (see ``kernels.clv.spend.loglik_derivs``).

        Raises
        ------
        InputError if a repeat buyer has a non-positive monetary value, or there is none.
        """
        x, m = self._xm(frequency, monetary_value, frequency_col, monetary_col)
        w = np.empty(0) if weights is None else as_float_array(weights, "weights")
        if weights is not None and w.shape != x.shape:
            raise InputError("weights must have one value per customer")
        xs, ms, ws, bad_x, bad_m, nonpos, W, S, s_m, s_m2 = _k.repeat_buyers(x, m, w)
        for name, bad in (("frequency", bad_x), ("monetary_value", bad_m)):
            if bad:
                raise InputError(f"{name} has {bad} NaN/inf value(s)")
        if xs.size == 0:
            raise InputError("GammaGamma needs customers with frequency > 0 (repeat buyers)")
        if nonpos:
            raise InputError(f"monetary_value must be > 0 for repeat buyers; {nonpos} customer(s) "
                             "have frequency > 0 and monetary_value <= 0")
        whole = W.size > 0
        data = _spend_data(xs, ms, ws, whole, (W, S, s_m, s_m2) if whole else None)
        return self._fit_data(data, float(data.W.sum()), initial_params)

    def individual_log_likelihood(self, frequency, monetary_value) -> np.ndarray:
        x = as_float_array(frequency, "frequency")
        m = as_float_array(monetary_value, "monetary_value")
        return _k.loglik_grad(self._theta(), x, m, np.ones_like(x))[2]

    def expected_spend(self, frequency, monetary_value) -> np.ndarray:
        """E[average transaction value | x, m] = (gamma + m x) p / (p x + q - 1).

        For x = 0 this is the population mean p gamma / (q - 1) (lifetimes'
        ``conditional_expected_average_profit``).
        """
        p, q, v = self._theta()
        x = np.asarray(frequency, dtype=np.float64)
        m = np.asarray(monetary_value, dtype=np.float64)
        return (v + m * x) * p / (p * x + q - 1.0)

    conditional_expected_average_profit = expected_spend

    def customer_lifetime_value(self, transaction_model, frequency, recency, T, monetary_value,
                                time: int = 12, discount_rate: float = 0.01, freq: str = "D"):
        """Discounted CLV with this model's expected spend (lifetimes' convention; see
        :func:`fastengage.clv.customer_lifetime_value`)."""
        from .value import customer_lifetime_value
        return customer_lifetime_value(transaction_model, frequency, recency, T,
                                       self.expected_spend(frequency, monetary_value),
                                       time=time, discount_rate=discount_rate, freq=freq)
