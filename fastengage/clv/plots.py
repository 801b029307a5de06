"""Diagnostic plots (optional extra ``fastengage[plot]``: matplotlib). Each returns a Figure.

Matrices are evaluated on a (max_frequency+1) x (max_recency+1) grid, never on customers x
grid, so memory stays bounded however many customers were fitted (pymc-marketing #2321).
"""
from __future__ import annotations

import numpy as np

from ..errors import InputError
from .validation import holdout_table, period_transactions

__all__ = ["plot_frequency_recency_matrix", "plot_probability_alive_matrix",
           "plot_calibration_purchases_vs_holdout_purchases", "plot_period_transactions"]

_MAX_GRID = 1_000_000


def _plt():
    try:
        import matplotlib
        matplotlib.use("Agg", force=False)
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover
        raise ImportError("plots need matplotlib: pip install 'fastengage[plot]'") from exc
    return Figure


def _grid(model, T, max_frequency, max_recency, resolution):
    if T is None:
        T = max_recency
    n_f = int(max_frequency) + 1
    rec = np.linspace(0.0, float(max_recency), int(resolution))
    if n_f * rec.size > _MAX_GRID:
        raise InputError(f"grid of {n_f} x {rec.size} cells exceeds {_MAX_GRID}; lower max_frequency "
                         "or resolution")
    if max_recency > T:
        raise InputError("max_recency cannot exceed T")
    x = np.arange(n_f, dtype=np.float64)[:, None]
    tx = np.broadcast_to(rec[None, :], (n_f, rec.size)).copy()
    tx[0, :] = 0.0  # x = 0 means no repeat purchase: recency 0 by definition
    return x, tx, float(T), rec


def _matrix_figure(values, rec, title, label):
    Figure = _plt()
    fig = Figure(figsize=(7, 5))
    ax = fig.add_subplot()
    im = ax.imshow(values, origin="lower", aspect="auto",
                   extent=(rec[0], rec[-1], -0.5, values.shape[0] - 0.5), cmap="viridis")
    ax.set_xlabel("recency (time from first to last purchase)")
    ax.set_ylabel("frequency (repeat purchases)")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, label=label)
    return fig


def plot_frequency_recency_matrix(model, T=None, *, t: float = 1.0, max_frequency: int = 30,
                                  max_recency: float | None = None, resolution: int = 100):
    """Expected purchases in the next ``t`` periods over (frequency, recency) for a customer of age T."""
    max_recency = float(T if max_recency is None else max_recency)
    x, tx, T, rec = _grid(model, T, max_frequency, max_recency, resolution)
    values = model.expected_purchases(t, x, tx, T)
    return _matrix_figure(values, rec, f"Expected purchases in the next {t:g} periods (T={T:g})",
                          "expected purchases")


def plot_probability_alive_matrix(model, T=None, *, max_frequency: int = 30,
                                  max_recency: float | None = None, resolution: int = 100):
    """P(alive) over (frequency, recency) for a customer of age T."""
    max_recency = float(T if max_recency is None else max_recency)
    x, tx, T, rec = _grid(model, T, max_frequency, max_recency, resolution)
    values = model.probability_alive(x, tx, T)
    return _matrix_figure(values, rec, f"Probability alive (T={T:g})", "P(alive)")


def plot_calibration_purchases_vs_holdout_purchases(model, table, *, max_frequency: int = 7):
    """Mean holdout purchases, actual vs model, by calibration frequency (see holdout_table)."""
    Figure = _plt()
    tab = holdout_table(model, table, max_frequency=max_frequency).to_pydict()
    fig = Figure(figsize=(7, 5))
    ax = fig.add_subplot()
    ax.plot(tab["frequency"], tab["actual"], "o-", label="actual")
    ax.plot(tab["frequency"], tab["predicted"], "s--", label="model")
    ax.set_xlabel(f"purchases in calibration (last bucket: >= {max_frequency})")
    ax.set_ylabel("mean purchases in holdout")
    ax.set_title("Calibration vs holdout purchases")
    ax.legend()
    return fig


def plot_period_transactions(model, table, *, max_frequency: int = 7):
    """Customers by calibration repeat purchases: actual vs model (see period_transactions)."""
    Figure = _plt()
    tab = period_transactions(model, table, max_frequency=max_frequency).to_pydict()
    fig = Figure(figsize=(7, 5))
    ax = fig.add_subplot()
    k = np.asarray(tab["frequency"])
    ax.bar(k - 0.2, tab["actual"], width=0.4, label="actual")
    ax.bar(k + 0.2, tab["model"], width=0.4, label="model")
    ax.set_xlabel(f"repeat purchases (last bucket: >= {max_frequency})")
    ax.set_ylabel("customers")
    ax.set_title("Frequency of repeat transactions")
    ax.legend()
    return fig
