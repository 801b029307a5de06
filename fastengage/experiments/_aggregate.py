"""Arrow boundary of the experiment readouts: columns in, per-(segment, variant) moments out."""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .._io.sources import open_source
from ..errors import InputError
from ..kernels.common.launch import resolve_threads, run_threaded
from ..kernels.experiments import native as _native


def codes(array, column: str, role: str):
    """Dense codes (in sorted value order) and the distinct values of a key column."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if array.null_count:
        raise InputError(f"{role} column {column!r} has {array.null_count} null value(s)")
    if pa.types.is_dictionary(array.type):
        return _dictionary_codes(array)
    encoded = pc.dictionary_encode(array)  # one hash pass; then order the few distinct values
    order = pc.sort_indices(encoded.dictionary).to_numpy()
    rank = np.empty(order.size, dtype=np.int64)
    rank[order] = np.arange(order.size)
    return rank[encoded.indices.to_numpy()], encoded.dictionary.take(pa.array(order))


def _dictionary_codes(array: pa.DictionaryArray):
    """:func:`codes` of a dictionary column from its indices: the rows are read twice (which
    entries occur, then one lookup), where decoding and re-encoding them cost ~50 ms per 1M
    rows. Entries that no row uses are left out; repeated entries share a code."""
    indices = array.indices.to_numpy(zero_copy_only=False)
    entries = array.dictionary
    used = np.bincount(indices, minlength=len(entries)) > 0
    distinct = pc.dictionary_encode(entries.filter(pa.array(used)))  # the few entries in use
    order = pc.sort_indices(distinct.dictionary).to_numpy()
    rank = np.empty(order.size, dtype=np.int64)
    rank[order] = np.arange(order.size)
    lookup = np.zeros(len(entries), dtype=np.int64)
    lookup[used] = rank[distinct.indices.to_numpy()]
    return lookup[indices], distinct.dictionary.take(pa.array(order))


def load(data, roles: dict[str, str | None], value_columns: list[str]) -> pa.Table:
    source = open_source(data)
    chosen = source.require(roles)
    for c in value_columns:
        source.require({"metric": c})
    names = list(dict.fromkeys(list(chosen.values()) + value_columns))
    batches = list(source.batches(names))
    if not batches or sum(b.num_rows for b in batches) == 0:
        raise InputError("the input has no rows")
    return pa.Table.from_batches(batches)


def value_matrix(table: pa.Table, names: list[str]) -> np.ndarray:
    """(n_columns, n_rows) float64 of numeric or boolean columns; nulls are refused here, NaN
    by :func:`moments` (the kernel counts them in the same pass)."""
    out = np.empty((len(names), table.num_rows))
    for j, name in enumerate(names):
        col = table.column(name)
        if pa.types.is_dictionary(col.type):
            col = col.cast(col.type.value_type)
        if col.null_count:
            raise InputError(f"metric column {name!r} has {col.null_count} null value(s)")
        if pa.types.is_boolean(col.type):
            col = pc.cast(col, pa.int8())
        elif pa.types.is_decimal(col.type):
            col = pc.cast(col, pa.float64())
        elif not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type)):
            raise InputError(f"metric column {name!r} has type {col.type}; expected numbers or "
                             "booleans")
        out[j] = col.to_numpy() if isinstance(col, pa.Array) else \
            col.combine_chunks().to_numpy()
    return out


@dataclass
class Moments:
    """Per group g (and column c / pair p): n, mean, var (ddof=1), cov (ddof=1)."""

    n: np.ndarray
    mean: np.ndarray
    var: np.ndarray
    cov: np.ndarray
    sums: np.ndarray  # raw sums (shift added back)
    binary: np.ndarray | None = None  # per column: every value is 0 or 1

    def take(self, g):
        return Moments(self.n[g], self.mean[g], self.var[g], self.cov[g], self.sums[g])


def moments(groups, n_groups, matrix, pairs, n_threads, *, extra_rows=None,
            names=None) -> Moments:
    """Moments per group, plus rows that add up groups (``extra_rows``: list of group lists)."""
    shift = matrix.mean(axis=1) if matrix.shape[1] else np.zeros(matrix.shape[0])
    n_cols, n_pairs = matrix.shape[0], len(pairs)
    counts = np.zeros(n_groups)
    sums = np.zeros((n_groups, n_cols))
    squares = np.zeros((n_groups, n_cols))
    cross = np.zeros((n_groups, n_pairs))
    pair_arr = np.array(pairs, dtype=np.int64).reshape(-1, 2)
    nonbinary = np.zeros(n_cols, dtype=np.int64)
    n_tasks = 1 + n_cols + n_pairs  # the row counts, each column, each pair
    run_threaded(partial(_native.group_sums_worker, np.ascontiguousarray(groups, np.int64),
                         np.ascontiguousarray(matrix, np.float64), shift, pair_arr, counts, sums,
                         squares, cross, nonbinary, np.zeros(1, np.int64)),
                 max(1, min(resolve_threads(n_threads), n_tasks)))
    if extra_rows:
        # fixed order of addition: member groups in the order listed
        add = lambda a: np.vstack([a] + [np.sum(a[list(rows)], axis=0, keepdims=True)
                                         for rows in extra_rows])
        counts = np.concatenate([counts, [counts[list(r)].sum() for r in extra_rows]])
        sums, squares, cross = add(sums), add(squares), add(cross)
    if not np.all(np.isfinite(sums)):
        bad = [names[c] for c in np.flatnonzero(~np.all(np.isfinite(sums), axis=0))] \
            if names else []
        raise InputError(f"metric column(s) {bad} hold NaN or infinite values")
    out = _finish(counts, sums, squares, cross, shift, pair_arr)
    out.binary = nonbinary == 0
    return out


def _finish(counts, sums, squares, cross, shift, pair_arr) -> Moments:
    n = counts[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_shifted = sums / n
        var = (squares - sums * mean_shifted) / (n - 1)
        if len(pair_arr):
            a, b = pair_arr[:, 0], pair_arr[:, 1]
            cov = (cross - sums[:, a] * sums[:, b] / n) / (n - 1)
        else:
            cov = np.zeros((counts.size, 0))
    return Moments(counts, mean_shifted + shift, np.maximum(var, 0.0), cov, sums + n * shift)


def combine(m: Moments, rows) -> Moments:
    """Moments of the union of groups ``rows`` (e.g. two arms pooled for CUPED's theta)."""
    rows = list(rows)
    n = m.n[rows]
    total = n.sum()
    w = n[:, None]
    # an empty group has a NaN mean and a group of one a NaN variance (0/0): they add nothing
    # (a sequential readout's day with one user in an arm made the pooled variance NaN, and
    # tau with it)
    group_mean = np.where(w > 0, m.mean[rows], 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):  # no users at all: NaN, no warning
        mean = (group_mean * w).sum(axis=0) / total
        # within + between-group sums of squares, divided by total - 1
        ss = (np.where(w > 1, m.var[rows] * (w - 1), 0.0).sum(axis=0)
              + np.where(w > 0, w * (group_mean - mean) ** 2, 0.0).sum(axis=0))
        var = ss / (total - 1)
    return Moments(np.array(total), mean, var, None, m.sums[rows].sum(axis=0))


def pooled_cov(m: Moments, rows, pair, a, b) -> float:
    """Covariance (ddof=1) of columns a and b over the union of groups ``rows``."""
    rows = list(rows)
    n = m.n[rows]
    total = n.sum()
    mean_a = np.where(n > 0, m.mean[rows, a], 0.0)  # empty groups and groups of one add
    mean_b = np.where(n > 0, m.mean[rows, b], 0.0)  # nothing, as in combine()
    ma = (mean_a * n).sum() / total
    mb = (mean_b * n).sum() / total
    cross = np.where(n > 1, m.cov[rows, pair] * (n - 1), 0.0).sum() + \
        np.where(n > 0, n * (mean_a - ma) * (mean_b - mb), 0.0).sum()
    return cross / (total - 1)
