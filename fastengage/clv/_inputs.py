"""Reading the CLV models' inputs: numeric columns from any Arrow input, float arrays, BTYD
summary checks, and the compression of rows into distinct patterns with weights (the likelihoods
are sums over patterns)."""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import pyarrow as pa

from .._io import columns as _cols
from .._io.sources import amount_to_float64, open_source
from ..errors import InputError
from ..kernels.clv import summary_native as _knative
from ..kernels.clv import summary as _ks
from ..kernels.common.config import CLV_INT_PATTERN_MAX_Y

__all__ = ["is_table_like", "read_columns", "as_float_array", "compress", "compress_rft",
           "check_rft", "INT_PATTERN_MAX_Y"]


def is_table_like(obj) -> bool:
    return isinstance(obj, (pa.Table, pa.RecordBatch, pa.RecordBatchReader, str, os.PathLike)) or \
        hasattr(obj, "__arrow_c_stream__")


def read_columns(data, names: dict[str, str | None]) -> dict[str, np.ndarray]:
    """Read numeric columns ``{role: column}`` from any Arrow input as float64 arrays."""
    src = open_source(data)
    roles = src.require(names)
    return _cols.read_columns(src, roles, {role: _cols.float64 for role in roles})


def as_float_array(values, name: str, check_finite: bool = True) -> np.ndarray:
    """A 1-D contiguous float64 copy-free view of array-like ``values`` (NaN/inf rejected unless
    ``check_finite=False``, for callers whose kernel counts them in its own pass)."""
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return amount_to_float64(values, name, name)
    arr = np.ascontiguousarray(np.asarray(values, dtype=np.float64).reshape(-1))
    if check_finite and not np.isfinite(arr).all():
        raise InputError(f"{name} has {int(np.count_nonzero(~np.isfinite(arr)))} NaN/inf value(s)")
    return arr


def compress(*cols: np.ndarray, weights: np.ndarray | None = None):
    """Distinct rows of the columns, their total weight and the inverse index.

    Returns (pattern_columns, pattern_weights, inverse).
    """
    stacked = np.ascontiguousarray(np.column_stack(cols))
    first, inverse, counts = _ks.unique_patterns(stacked)
    pats = [np.ascontiguousarray(c[first]) for c in cols]
    if weights is None:
        w = counts.astype(np.float64)
    else:
        w = np.bincount(inverse, weights=weights, minlength=first.shape[0])
    return pats, w, inverse


#: Whole-number data whose T stays below this uses the dense pattern path (an int32 slot array
#: over the (t_x <= T) triangle, 2 MB at most).
INT_PATTERN_MAX_Y = 1024


def compress_rft(x, tx, T, weights=None):
    """Distinct (x, t_x, T) patterns and their weights for a likelihood (no inverse needed).

    Whole-number data (days, weeks) with T below CLV_INT_PATTERN_MAX_Y take a dense, cache-resident
    path; anything else the general hash.
    """
    w = np.empty(0) if weights is None else np.ascontiguousarray(weights, np.float64)
    ok, px, ptx, pT, pw = _knative.whole_patterns(*(np.ascontiguousarray(a, np.float64)
                                                   for a in (x, tx, T)), w, INT_PATTERN_MAX_Y)
    if ok:
        return [px, ptx, pT], pw
    pats, pw, _ = compress(x, tx, T, weights=weights)
    return pats, pw


def check_rft(frequency: np.ndarray, recency: np.ndarray, T: np.ndarray,
              names: Sequence[str] = ("frequency", "recency", "T"),
              check_finite: bool = False) -> None:
    """Validate BTYD summaries: same length, x >= 0, 0 <= t_x <= T (and, with ``check_finite``,
    no NaN/inf), in one pass of a kernel."""
    if not (frequency.shape == recency.shape == T.shape):
        raise InputError(f"{names[0]}, {names[1]} and {names[2]} must have the same length "
                         f"(got {frequency.shape[0]}, {recency.shape[0]}, {T.shape[0]})")
    # contiguous copies of broadcast views (a no-op for the arrays fit passes)
    bad_x, bad_tx, bad_T, neg_x, neg_tx, over = _knative.rft_violations(
        *(np.ascontiguousarray(a, dtype=np.float64) for a in (frequency, recency, T)))
    if check_finite:
        for name, bad in zip(names, (bad_x, bad_tx, bad_T)):
            if bad:
                raise InputError(f"{name} has {bad} NaN/inf value(s)")
    if neg_x:
        raise InputError(f"{names[0]} has negative values (it counts repeat purchases)")
    if neg_tx:
        raise InputError(f"{names[1]} has negative values")
    if over:
        raise InputError(f"{names[1]} exceeds {names[2]} for {over} customer(s); recency is the "
                         "time from first to last purchase and T the time from first purchase "
                         "to the end of the period")
