"""Discounted customer lifetime value from a transaction model and an expected spend."""
from __future__ import annotations

import numpy as np

from ..errors import InputError
from ._inputs import compress

__all__ = ["customer_lifetime_value", "PERIODS_PER_MONTH"]

#: Model time units per month, as in lifetimes (``W``: 4.345 weeks, ``D``: 30 days, ``H``: 720).
PERIODS_PER_MONTH = {"W": 4.345, "M": 1.0, "D": 30.0, "H": 720.0}


def customer_lifetime_value(transaction_model, frequency, recency, T, monetary_value, *,
                            months: int | None = None, discount_rate: float = 0.01,
                            freq: str = "D", n_threads: int | None = None,
                            time=None) -> np.ndarray:
    """Discounted CLV over ``months`` months (default 12), per customer.

    Convention (identical to lifetimes' ``GammaGammaFitter.customer_lifetime_value``):

        CLV = sum_{i=1}^{months} m * (E[Y(i f)] - E[Y((i-1) f)]) / (1 + d)^i

    where E[Y(t)] is the model's conditional expected number of purchases in (T, T+t], f is the
    number of model time units per month (``freq``: ``"W"`` 4.345, ``"D"`` 30, ``"H"`` 720,
    ``"M"`` 1), d is the *monthly* discount rate and m the expected spend per purchase (e.g.
    :meth:`GammaGamma.expected_spend`). Purchases of month i are discounted at the end of month i.

    Parameters
    ----------
    transaction_model : fitted BetaGeo, ModifiedBetaGeo or ParetoNBD
    frequency, recency, T : array-like (n,)   in the model's time unit
    monetary_value : array-like (n,)          expected value per purchase
    months : int  horizon in months (lifetimes' ``time``; ``time=`` still works but is
                  deprecated: in fastengage ``time=`` names a time column)
    discount_rate : float  per-month discount rate (>= 0)
    n_threads : int, optional  threads of the kernels (results do not depend on it)

    Returns
    -------
    numpy.ndarray float64 (n,)
    """
    if time is not None:
        import warnings
        warnings.warn("customer_lifetime_value(time=...) is deprecated; use months=",
                      DeprecationWarning, stacklevel=2)
        if months is not None:
            raise InputError("pass months= only (time= is its deprecated spelling)")
        months = time
    months = 12 if months is None else months
    if freq not in PERIODS_PER_MONTH:
        raise InputError(f"freq={freq!r}: use one of {sorted(PERIODS_PER_MONTH)}")
    if not (discount_rate >= 0) or int(months) != months or months < 0:
        raise InputError("months must be a non-negative integer and discount_rate >= 0")
    factor = PERIODS_PER_MONTH[freq]
    x, tx, TT = transaction_model._prep_rft(frequency, recency, T)
    x, tx, TT = (np.ascontiguousarray(a.reshape(-1)) for a in (x, tx, TT))
    m = np.asarray(monetary_value, dtype=np.float64).reshape(-1)
    if m.shape != x.shape:
        raise InputError("monetary_value must have one value per customer")
    theta = transaction_model._theta()
    # E[Y(t) | x, t_x, T] = P(alive | x, t_x, T) * E[Y(t) | alive, x, T]: the second factor,
    # summed over the horizons with their discounts, is computed once per distinct (x, T)
    kernels = transaction_model.kernels
    alive = kernels.alive_now(theta, x, tx, TT, n_threads=n_threads)
    (qx, qT), _, pair = compress(x, TT)
    steps = np.arange(1, int(months) + 1, dtype=np.float64)
    times = np.ascontiguousarray(steps * factor)
    disc = np.ascontiguousarray((1.0 + discount_rate) ** -steps)
    per_pair = kernels.discounted(theta, qx, qT, times, disc, n_threads=n_threads)
    return m * alive * per_pair[pair]
