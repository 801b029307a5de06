"""Gamma-Gamma spend model (Fader, Hardie & Lee 2005 "RFM and CLV"; Fader & Hardie 2013 note).

A customer's transaction values are Gamma(p, nu) with nu ~ Gamma(q, gamma); fitted on repeat
buyers (x > 0) from their mean repeat value m. Likelihood: eq. (3) of the 2013 note; expected
spend: E[M | x, m] = (gamma + m x) p / (p x + q - 1) (eq. 5).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ..errors import InputError
from ..kernels.clv import spend as _k
from ._base import BaseModel
from ._inputs import as_float_array, is_table_like, read_columns
from ._spec import ModelSpec, Newton, Payload

__all__ = ["GammaGamma"]


@dataclasses.dataclass(frozen=True)
class SpendPayload(Payload):
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

    def subsample(self, step):
        sl = slice(step // 2, None, step)
        x, m = self.x[sl].copy(), self.m[sl].copy()
        w = self.w[sl] * step if self.w.size else np.full(x.size, float(step))
        return _spend_data(x, m, w, bool(np.all(self.ux == np.floor(self.ux))))


def _spend_data(x, m, w, whole: bool, sums=None) -> SpendPayload:
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
    return SpendPayload(total_weight=float(W.sum()), n_patterns=int(x.shape[0]), time_scale=1.0,
                        ux=ux, W=W, S=S, x=x, m=m, w=w, s_m=float(s_m), s_m2=float(s_m2))


def _start(p: SpendPayload):
    total = float(p.W.sum())
    mean = p.s_m / total
    var = max(p.s_m2 / total - mean * mean, 0.0) + 1e-12
    return np.array([max(mean ** 2 / var, 0.1), 3.0, max(mean, 1e-3) * 2.0])


def _derivs(theta, p: SpendPayload, n_threads, want_hess=True):
    return _k.loglik_derivs(theta, p.ux, p.W, p.S, p.x, p.m, p.w, want_hess, n_threads=n_threads)


def _loglik(theta, p: SpendPayload, n_threads):
    ll, g, _ = _derivs(theta, p, n_threads, False)
    return ll, g


class GammaGamma(BaseModel):
    """Gamma-Gamma: ``params_`` = {p, q, gamma}.

    ``fit(frequency, monetary_value)`` (or a table with those columns) uses the customers with
    ``frequency > 0`` only, as the model requires; how many were used is ``n_``. ``penalizer``
    applies to (p, q, gamma) as they are (gamma is in the money unit; lifetimes does the same).
    """

    spec = ModelSpec(kind="clv.gammagamma", param_names=("p", "q", "gamma"), loglik=_loglik,
                     start=_start, newton=Newton(hessian=_derivs))

    @staticmethod
    def _xm(frequency, monetary_value, frequency_col, monetary_col):
        if is_table_like(frequency) and monetary_value is None:
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
            monetary_col="monetary_value", initial_params=None, n_threads: int | None = None):
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
        # a negative count is a wrong column, not a customer to leave out silently (the kernel
        # keeps x > 0). A fractional x is accepted: the likelihood is defined for any x > 0 and
        # has its own (non-whole) path; lifetimes' _check_inputs refuses it
        if x.size and x.min() < 0:
            raise InputError(f"frequency has {int(np.count_nonzero(x < 0))} negative value(s); it "
                             "counts repeat purchases")
        whole = W.size > 0
        data = _spend_data(xs, ms, ws, whole, (W, S, s_m, s_m2) if whole else None)
        return self._fit_payload(data, initial_params, n_threads)

    def individual_log_likelihood(self, frequency, monetary_value, *,
                                  n_threads: int | None = None) -> np.ndarray:
        x = as_float_array(frequency, "frequency")
        m = as_float_array(monetary_value, "monetary_value")
        return _k.loglik_grad(self._theta(), x, m, np.ones_like(x), n_threads=n_threads)[2]

    def expected_spend(self, frequency, monetary_value) -> np.ndarray:
        """E[average transaction value | x, m] = (gamma + m x) p / (p x + q - 1).

        For x = 0 this is the population mean p gamma / (q - 1) (lifetimes'
        ``conditional_expected_average_profit``).
        """
        p, q, v = self._theta()
        x = np.asarray(frequency, dtype=np.float64)
        m = np.asarray(monetary_value, dtype=np.float64)
        return (v + m * x) * p / (p * x + q - 1.0)

    def conditional_expected_average_profit(self, frequency, monetary_value) -> np.ndarray:
        """Deprecated alias (lifetimes' name) of :meth:`expected_spend`."""
        import warnings
        warnings.warn("conditional_expected_average_profit is deprecated; use expected_spend",
                      DeprecationWarning, stacklevel=2)
        return self.expected_spend(frequency, monetary_value)

    def customer_lifetime_value(self, transaction_model, frequency, recency, T, monetary_value,
                                months: int | None = None, discount_rate: float = 0.01,
                                freq: str = "D", *, n_threads: int | None = None, time=None):
        """Discounted CLV with this model's expected spend (lifetimes' convention; see
        :func:`fastengage.clv.customer_lifetime_value`; ``time=`` is the deprecated spelling of
        ``months=``)."""
        from .value import customer_lifetime_value
        return customer_lifetime_value(transaction_model, frequency, recency, T,
                                       self.expected_spend(frequency, monetary_value),
                                       months=months, discount_rate=discount_rate, freq=freq,
                                       n_threads=n_threads, time=time)
