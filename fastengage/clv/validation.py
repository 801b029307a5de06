"""Calibration-vs-holdout checks of a fitted transaction model.

Input is the table of :func:`fastengage.clv.summary` with ``calibration_end`` (columns
``frequency``, ``recency``, ``T``, ``frequency_holdout``, ``duration_holdout``). Everything is
O(customers) in memory and time; nothing builds a customers x grid matrix.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from ..errors import InputError
from ._inputs import compress, read_columns

__all__ = ["holdout_table", "holdout_errors", "period_transactions"]


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
