"""Model quality over time and per segment: AUC, log loss, Brier, calibration (reliability table,
ECE), lift and gain by decile, precision/recall at top-k."""
from __future__ import annotations

import datetime as _dt
import re
from functools import partial

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .._io.sources import amount_to_float64, open_source, time_to_us
from ..errors import InputError
from ..kernels.common.launch import resolve_threads, run_threaded
from ..kernels.monitor import quality_native as _native

_US_PER_DAY = 86_400_000_000
_STATS = _native.STATS


def _window_us(window) -> int:
    if isinstance(window, _dt.timedelta):
        us = int(window / _dt.timedelta(microseconds=1))
    elif isinstance(window, (int, np.integer)) and not isinstance(window, bool):
        us = int(window) * _US_PER_DAY
    elif isinstance(window, str) and re.fullmatch(r"\d+[dhw]", window):
        unit = {"d": _US_PER_DAY, "h": _US_PER_DAY // 24, "w": 7 * _US_PER_DAY}[window[-1]]
        us = int(window[:-1]) * unit
    else:
        raise InputError(f"window= must be a number of days, a timedelta or a string like '7d', "
                         f"'12h', '1w'; got {window!r}")
    if us <= 0:
        raise InputError(f"window= must be positive, got {window!r}")
    return us


def _codes(array: pa.Array, column: str):
    if array.null_count:
        raise InputError(f"segment column {column!r} has {array.null_count} null value(s)")
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    values = pc.unique(array)
    values = values.take(pc.sort_indices(values))
    return pc.index_in(array, value_set=values).to_numpy().astype(np.int64), values


def _load(data, score, label, time, segment):
    source = open_source(data)
    cols = source.require({"score": score, "label": label, "time": time, "segment": segment})
    batches = list(source.batches(list(cols.values())))
    table = pa.Table.from_batches(batches) if batches else None
    if table is None or table.num_rows == 0:
        raise InputError("the input has no rows")
    p = amount_to_float64(table.column(score), score, "score")
    if p.min() < 0 or p.max() > 1:
        raise InputError(f"score column {score!r} must hold probabilities in [0, 1]; found "
                         f"values in [{p.min()}, {p.max()}]")
    labels = table.column(label)
    if pa.types.is_boolean(labels.type):
        labels = pc.cast(labels, pa.int8())
    y = amount_to_float64(labels, label, "label")
    if not np.all((y == 0) | (y == 1)):
        raise InputError(f"label column {label!r} must hold 0/1 (or true/false) values")
    return table, p, y


def _evaluate(p, y, groups, n_groups, k, n_bins, strategy, n_threads):
    by_score = np.argsort(p, kind="stable")
    rows, starts = _native.group_order(by_score, np.ascontiguousarray(groups, np.int64), n_groups)
    edges = np.empty((n_groups, n_bins + 1))
    if strategy == "uniform":
        edges[:] = np.linspace(0.0, 1.0, n_bins + 1)
    else:  # per-group percentiles, computed as scikit-learn's calibration_curve does
        q = np.linspace(0, 1, n_bins + 1) * 100
        for g in range(n_groups):
            member = p[rows[starts[g]:starts[g + 1]]]
            edges[g] = np.percentile(member, q) if member.size else 0.0
    out = np.zeros((n_groups, len(_STATS)))
    bins = [np.zeros((n_groups, n_bins)) for _ in range(3)]
    lift = [np.zeros((n_groups, 10)) for _ in range(2)]
    eps = float(np.finfo(np.float64).eps)  # scikit-learn's log_loss clipping
    args = (rows, starts, np.ascontiguousarray(y, np.float64), np.ascontiguousarray(p, np.float64),
            edges, float(k), eps, out, *bins, *lift, np.zeros(1, np.int64))
    run_threaded(partial(_native.group_metrics, *args),
                 max(1, min(resolve_threads(n_threads), n_groups)))
    return out, bins, lift


def _groups(table, time, window, segment):
    """Group code per row, and the (window_start, segment) keys of each code."""
    n = table.num_rows
    parts, keys = [], {}
    if window is not None:
        if time is None:
            raise InputError("window= needs time=")
        w = _window_us(window)
        start = np.floor_divide(time_to_us(table.column(time), time), w)
        lo = start.min()
        parts.append((start - lo, int(start.max() - lo) + 1))
        keys["window_start"] = ("time", lo, w)
    if segment is not None:
        codes, values = _codes(table.column(segment).combine_chunks(), segment)
        parts.append((codes, len(values)))
        keys["segment"] = values
    code = np.zeros(n, dtype=np.int64)
    total = 1
    for c, size in parts:
        code = code * size + c
        total *= size
    return code, total, parts, keys


def _key_columns(total, parts, keys, segment_name):
    """Arrow columns (window_start, segment) for group codes 0..total-1."""
    cols = {}
    idx = np.arange(total)
    sizes = [s for _, s in parts]
    digits = []
    for s in reversed(sizes):
        digits.append(idx % s)
        idx = idx // s
    digits = digits[::-1]
    j = 0
    if "window_start" in keys:
        _, lo, w = keys["window_start"]
        cols["window_start"] = pa.array((digits[j] + lo) * w, pa.timestamp("us", tz="UTC"))
        j += 1
    if "segment" in keys:
        cols[segment_name] = keys["segment"].take(pa.array(digits[j]))
    return cols


def quality(data, *, score: str, label: str, time: str | None = None, window=None,
            segment: str | None = None, k: float = 0.1, n_bins: int = 10,
            strategy: str = "uniform", n_threads: int | None = None) -> pa.Table:
    """Model quality per time window and/or segment (one row per non-empty group).

    Columns: ``window_start`` (if ``window=``, e.g. ``"7d"``, ``"1w"``, 30 (days); windows are
    aligned on the Unix epoch), the segment column (if ``segment=``), ``n``, ``positives``,
    ``auc`` (= ``sklearn.metrics.roc_auc_score``; null when a group has one class), ``log_loss``
    (= ``log_loss`` with probabilities clipped to [eps, 1 - eps]), ``brier``
    (= ``brier_score_loss``), ``ece`` (expected calibration error on the reliability bins of
    :func:`reliability`), ``precision_at_k``/``recall_at_k`` over the top ``k`` scores (``k`` a
    fraction <= 1 of the group, rounded up, or a count), and ``k``.
    """
    _check(k, n_bins, strategy)
    table, p, y = _load(data, score, label, time, segment)
    code, total, parts, keys = _groups(table, time, window, segment)
    out, _, _ = _evaluate(p, y, code, total, k, n_bins, strategy, n_threads)
    keep = out[:, 0] > 0
    cols = {name: col.filter(pa.array(keep)) for name, col in _key_columns(total, parts, keys,
                                                                           segment).items()}
    for i, name in enumerate(_STATS):
        values = out[keep, i]
        if name in ("n", "positives", "k"):
            cols[name] = pa.array(values.astype(np.int64))
        else:
            cols[name] = pa.array(values, pa.float64(), mask=np.isnan(values))
    return pa.table(cols)


def reliability(data, *, score: str, label: str, segment: str | None = None, n_bins: int = 10,
                strategy: str = "uniform", n_threads: int | None = None) -> pa.Table:
    """Reliability table: per (segment and) non-empty bin, ``count``, ``mean_predicted`` and
    ``fraction_positive`` — ``sklearn.calibration.calibration_curve(y, p, n_bins=n_bins,
    strategy=strategy)`` returns (fraction_positive, mean_predicted) of these rows."""
    _check(0.1, n_bins, strategy)
    table, p, y = _load(data, score, label, None, segment)
    code, total, parts, keys = _groups(table, None, None, segment)
    _, (count, pred, true), _ = _evaluate(p, y, code, total, 0.1, n_bins, strategy, n_threads)
    g, b = np.nonzero(count)
    cols = {name: col.take(pa.array(g)) for name, col in _key_columns(total, parts, keys,
                                                                     segment).items()}
    cols.update(bin=pa.array(b.astype(np.int64)), count=pa.array(count[g, b].astype(np.int64)),
                mean_predicted=pa.array(pred[g, b] / count[g, b]),
                fraction_positive=pa.array(true[g, b] / count[g, b]))
    return pa.table(cols)


def lift(data, *, score: str, label: str, segment: str | None = None,
         n_threads: int | None = None) -> pa.Table:
    """Lift and gain by decile of descending score: ``decile`` (1 = highest scores; decile d
    holds descending ranks r with floor(10 r / n) = d - 1), ``count``, ``positives``, ``rate``,
    ``lift`` (rate / overall rate), ``cumulative_gain`` (share of all positives in deciles
    1..d) and ``cumulative_lift``."""
    table, p, y = _load(data, score, label, None, segment)
    code, total, parts, keys = _groups(table, None, None, segment)
    _, _, (count, pos) = _evaluate(p, y, code, total, 0.1, 10, "uniform", n_threads)
    n = count.sum(axis=1, keepdims=True)
    positives = pos.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = pos / count
        overall = positives / n
        cum_gain = np.cumsum(pos, axis=1) / positives
        cum_lift = (np.cumsum(pos, axis=1) / np.cumsum(count, axis=1)) / overall
        lift_ = rate / overall
    g, d = np.nonzero(count)
    cols = {name: col.take(pa.array(g)) for name, col in _key_columns(total, parts, keys,
                                                                     segment).items()}
    cols.update(decile=pa.array((d + 1).astype(np.int64)),
                count=pa.array(count[g, d].astype(np.int64)),
                positives=pa.array(pos[g, d].astype(np.int64)), rate=pa.array(rate[g, d]),
                lift=pa.array(lift_[g, d]), cumulative_gain=pa.array(cum_gain[g, d]),
                cumulative_lift=pa.array(cum_lift[g, d]))
    return pa.table(cols)


def _check(k, n_bins, strategy):
    if strategy not in ("uniform", "quantile"):
        raise InputError(f"strategy must be 'uniform' or 'quantile', got {strategy!r}")
    if not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise InputError(f"n_bins must be a positive integer, got {n_bins!r}")
    if not k > 0:
        raise InputError(f"k must be a positive fraction (<= 1) or count, got {k!r}")
