"""Gamma-Gamma spend model (Fader, Hardie & Lee 2005 "RFM and CLV"; Fader & Hardie 2013 note).

A customer's transaction values are Gamma(p, nu) with nu ~ Gamma(q, gamma); fitted on repeat
buyers (x > 0) from their mean repeat value m. Likelihood: eq. (3) of the 2013 note; expected
spend: E[M | x, m] = (gamma + m x) p / (p x + q - 1) (eq. 5).
"""
from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..kernels import clv_spend as _k
from ._base import BaseModel, _is_table_like, as_float_array, compress, read_columns

__all__ = ["GammaGamma"]


class GammaGamma(BaseModel):
    """Gamma-Gamma: ``params_`` = {p, q, gamma}.

    ``fit(frequency, monetary_value)`` (or a table with those columns) uses the customers with
    ``frequency > 0`` only, as the model requires; how many were used is ``n_``.
    """

    _kind = "clv.gammagamma"
    param_names = ("p", "q", "gamma")

    def _start(self, data):
        x, m, w = data[:3]
        mean = float(np.average(m, weights=w))
        var = float(np.average((m - mean) ** 2, weights=w)) + 1e-12
        return np.array([1.0, 2.0, max(mean, 1e-3)]) if var <= 0 else \
            np.array([max(mean ** 2 / var, 0.1), 3.0, max(mean, 1e-3) * 2.0])

    def _loglik_grad(self, theta, data):
        x, m, w, ux, ix, log_m = data
        return _k.loglik_grad_tab(np.asarray(theta, np.float64), ux, ix, m, log_m, w)

    @staticmethod
    def _xm(frequency, monetary_value, frequency_col, monetary_col):
        if _is_table_like(frequency) and monetary_value is None:
            cols = read_columns(frequency, {"frequency": frequency_col, "monetary_value": monetary_col})
            x, m = cols["frequency"], cols["monetary_value"]
        else:
            if monetary_value is None:
                raise InputError("pass a table with frequency/monetary_value columns or both arrays")
            x = as_float_array(frequency, "frequency")
            m = as_float_array(monetary_value, "monetary_value")
        if x.shape != m.shape:
            raise InputError("frequency and monetary_value must have the same length")
        return x, m

    def fit(self, frequency, monetary_value=None, *, weights=None, frequency_col="frequency",
            monetary_col="monetary_value", initial_params=None):
        """Fit on customers with frequency > 0 (mean repeat value must then be > 0).

        Raises
        ------
        InputError if a repeat buyer has a non-positive monetary value, or there is none.
        """
        x, m = self._xm(frequency, monetary_value, frequency_col, monetary_col)
        w = None if weights is None else as_float_array(weights, "weights")
        keep = x > 0
        if not keep.any():
            raise InputError("GammaGamma needs customers with frequency > 0 (repeat buyers)")
        bad = int(np.count_nonzero(m[keep] <= 0))
        if bad:
            raise InputError(f"monetary_value must be > 0 for repeat buyers; {bad} customer(s) "
                             "have frequency > 0 and monetary_value <= 0")
        (px, pm), pw, _ = compress(x[keep], m[keep], weights=None if w is None else w[keep])
        ux, ix = np.unique(px, return_inverse=True)
        data = (px, pm, pw, ux, ix.astype(np.int64), np.log(pm))
        return self._fit_data(data, float(pw.sum()), initial_params)

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
