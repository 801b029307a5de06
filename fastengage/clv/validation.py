"""Calibration-vs-holdout checks of a fitted transaction model, and the tracking of repeat
transactions over time (:func:`cumulative_transactions`).

Input is the table of :func:`fastengage.clv.summary` with ``calibration_end`` (columns
``frequency``, ``recency``, ``T``, ``frequency_holdout``, ``duration_holdout``). Everything is
O(customers) in memory and time; nothing builds a customers x grid matrix.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from ..errors import InputError
from ._inputs import compress, read_columns

__all__ = ["holdout_table", "holdout_errors", "period_transactions", "cumulative_transactions"]


def _read(table, cols):
    return read_columns(table, {c: c for c in cols})


def _predict_holdout(model, data, n_threads):
    x, tx, T, d = data["frequency"], data["recency"], data["T"], data["duration_holdout"]
    return model.expected_purchases(d, x, tx, T, n_threads=n_threads)


def holdout_table(model, table, *, max_frequency: int = 7,
                  n_threads: int | None = None) -> pa.Table:
    """Mean predicted vs actual holdout purchases per calibration-frequency bucket.

    Parameters
    ----------
    model : fitted BetaGeo / ModifiedBetaGeo / ParetoNBD
    table : Arrow input with frequency, recency, T, frequency_holdout, duration_holdout
    max_frequency : int
        Customers with frequency >= max_frequency share the last bucket.

    Returns
    -------
    pyarrow.Table with ``frequency`` (int64 bucket; the last one means ">="), ``customers``,
    ``actual`` (mean frequency_holdout), ``predicted`` (mean expected purchases over
    duration_holdout).
    """
    data = _read(table, ["frequency", "recency", "T", "frequency_holdout", "duration_holdout"])
    pred = _predict_holdout(model, data, n_threads)
    bucket = np.minimum(data["frequency"], max_frequency).astype(np.int64)
    n = np.bincount(bucket, minlength=max_frequency + 1)
    act = np.bincount(bucket, weights=data["frequency_holdout"], minlength=max_frequency + 1)
    prd = np.bincount(bucket, weights=pred, minlength=max_frequency + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return pa.table({"frequency": np.arange(max_frequency + 1, dtype=np.int64),
                         "customers": n.astype(np.int64),
                         "actual": act / n, "predicted": prd / n})


def holdout_errors(model, table, *, n_threads: int | None = None) -> dict:
    """Per-customer errors of the holdout prediction: MAE, RMSE, totals and relative bias."""
    data = _read(table, ["frequency", "recency", "T", "frequency_holdout", "duration_holdout"])
    pred = _predict_holdout(model, data, n_threads)
    act = data["frequency_holdout"]
    if act.size == 0:
        raise InputError("the holdout table is empty")
    err = pred - act
    total_a, total_p = float(act.sum()), float(pred.sum())
    return {"customers": int(act.size), "mae": float(np.mean(np.abs(err))),
            "rmse": float(np.sqrt(np.mean(err ** 2))), "total_actual": total_a,
            "total_predicted": total_p,
            "relative_bias": (total_p - total_a) / total_a if total_a else float("nan"),
            "correlation": float(np.corrcoef(pred, act)[0, 1]) if act.std() > 0 else float("nan")}


def period_transactions(model, table, *, max_frequency: int = 7,
                        n_threads: int | None = None) -> pa.Table:
    """Customers by number of repeat purchases in calibration: actual vs model expectation.

    The model column is sum_i P(X(T_i) = k) (exact, over distinct T values), with the last row
    collecting k >= max_frequency. Needs a model with ``probability_of_n_purchases`` (BG/NBD,
    MBG/NBD, Pareto/NBD).
    """
    if not hasattr(model, "probability_of_n_purchases"):
        raise InputError(f"{type(model).__name__} has no P(X(t)=x); use BetaGeo, ModifiedBetaGeo or "
                         "ParetoNBD")
    data = _read(table, ["frequency", "T"])
    (uT,), wT, _ = compress(data["T"])
    k = np.arange(max_frequency, dtype=np.float64)
    pmf = model.probability_of_n_purchases(uT[:, None], k[None, :], n_threads=n_threads)   # distinct T x k (small)
    expected = wT @ pmf
    expected = np.append(expected, wT.sum() - expected.sum())
    bucket = np.minimum(data["frequency"], max_frequency).astype(np.int64)
    actual = np.bincount(bucket, minlength=max_frequency + 1)
    return pa.table({"frequency": np.arange(max_frequency + 1, dtype=np.int64),
                     "actual": actual.astype(np.int64), "model": expected})


def cumulative_transactions(model, data, *, customer: str, time: str, periods: int,
                            freq: str = "D", freq_multiplier: int = 1,
                            n_threads: int | None = None) -> pa.Table:
    """Actual vs expected cumulative repeat transactions of the whole customer base over time
    (BTYD's tracking plot; lifetimes' ``expected_cumulative_transactions``).

    Periods are counted from the period (``freq``) of the earliest transaction p0; transactions
    after p0 + ``periods`` are left out; purchases of one customer in one period count once,
    and each customer's first period is the birth, not a repeat. Every ``freq_multiplier``
    periods (i = k m, k = 1 .. periods // m), with n_b customers born in period p0 + b:

        actual    = repeat transactions in periods p0 .. p0 + i - 1
        predicted = sum_{b < i} n_b E[X((i - b) / m)]   (the model's population_expected_purchases)

    so a model fitted in weeks on day periods uses ``freq="D", freq_multiplier=7`` as
    :func:`fastengage.clv.summary` does.

    Returns
    -------
    pyarrow.Table with ``period`` (int64, k - 1), ``date`` (timestamp[us], start of the last
    period in the sum, p0 + i - 1), ``actual`` (int64) and ``predicted`` (float64).
    """
    from .._io import columns as _cols
    from .._io.ids import IdEncoder
    from .._io.sources import open_source
    from .summary import FREQS, _period
    if freq not in FREQS:
        raise InputError(f"freq={freq!r} is not supported; use one of {sorted(FREQS)}")
    for name, v in (("periods", periods), ("freq_multiplier", freq_multiplier)):
        if isinstance(v, bool) or int(v) != v or v < 1:
            raise InputError(f"{name} must be a positive integer, got {v!r}")
    periods, step = int(periods), int(freq_multiplier)
    src = open_source(data)
    roles = src.require({"customer": customer, "time": time})
    enc = IdEncoder(customer, "customer")
    cols = _cols.read_columns(src, roles, {"customer": _cols.codes(enc),
                                           "time": _cols.microseconds})
    codes = np.asarray(cols["customer"], np.int64)
    if codes.size == 0:
        raise InputError("the transaction input is empty")
    offset = _period(cols["time"], freq)
    offset -= offset.min()
    keep = offset <= periods
    # one (customer, period) pair per purchase period, sorted by customer then period: the
    # first pair of each customer is the birth
    pairs = np.unique(codes[keep] * np.int64(periods + 1) + offset[keep])
    who, when = np.divmod(pairs, np.int64(periods + 1))
    birth = np.ones(pairs.size, bool)
    birth[1:] = who[1:] != who[:-1]
    born = np.bincount(when[birth], minlength=periods + 1).astype(np.float64)
    repeats = np.bincount(when[~birth], minlength=periods + 1)
    ends = np.arange(1, periods // step + 1, dtype=np.int64) * step      # i = k m
    ages = np.arange(0, periods + 1, dtype=np.float64) / step
    expected = np.zeros(periods + 1)
    expected[1:] = model.population_expected_purchases(ages[1:], n_threads=n_threads)
    # predicted_i = sum_b born[b] E[X((i - b) / m)]: a convolution, E[X(0)] = 0
    predicted = np.convolve(born, expected)[ends]
    actual = np.cumsum(repeats)[ends - 1]
    length, origin = FREQS[freq]
    p0 = int(_period(np.array([int(np.min(cols["time"]))]), freq)[0])
    start_us = (p0 + ends - 1) * length + origin
    return pa.table({"period": np.arange(ends.size, dtype=np.int64),
                     "date": pa.array(start_us, pa.timestamp("us")),
                     "actual": actual.astype(np.int64), "predicted": predicted})
