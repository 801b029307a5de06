"""Differentially private segment reports: per-segment counts, sums and means of an amount, with
each customer's contribution bounded in a kernel and noise from OpenDP's vetted measurements.

How a report is made (``dp_report``):

1. Contribution bounding (kernel, one pass, streamed): each customer keeps at most
   ``max_rows_per_customer`` rows (the first ones in input order, across all segments); amounts
   are clamped to ``bounds`` and rounded to multiples of ``resolution`` so that sums are exact
   int64 and the sensitivities below are exact.
2. Sensitivities, under adding or removing one customer (the privacy unit) with k rows:
   L1 of the count vector = k, L1 of the sum vector = k * max(|lower|, |upper|) / resolution
   units. Without ``customer=``, each row is its own unit (k = 1).
3. Noise: OpenDP's ``make_laplace`` on integer vectors (the discrete Laplace mechanism, exact
   sampling, no floating-point attack surface) for the counts and the sums, each with
   scale = sensitivity / its share of epsilon; OpenDP's privacy map of each measurement gives
   the epsilon it spends, and the total is their sum (sequential composition). Means are
   noisy sum / noisy count (post-processing: no extra budget).
4. Accuracy: OpenDP's ``discrete_laplacian_scale_to_accuracy`` per cell (|noise| <= accuracy
   with probability 1 - alpha). For means, a (1 - alpha) interval from the two noisy values
   (union bound, alpha/2 each), clipped to the bounds.

The segment keys are released as they are: pass ``keys=`` (a public list of segments) for the
guarantee to cover which segments exist; with ``keys=None`` the key set is read from the data
and is *not* protected (a segment with a single customer reveals that this segment exists).
"""
from __future__ import annotations

import json
import math
import threading
from typing import NamedTuple, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .._io.ids import IdEncoder, id_kind, string_buffers
from .._io.sources import amount_to_float64, open_source
from ..errors import InputError
from ..kernels.common.config import (PRIVACY_AGGREGATE_PARTS, PRIVACY_HASH_CHUNKS,
                                     PRIVACY_SMALL_DICTIONARY, PRIVACY_SMALL_DICTIONARY_MIN_ROWS)
from ..kernels.privacy.aggregate import bounded_aggregates, cap_rows
from ..kernels.privacy.segments import remap_codes, small_dictionary
from ._dp_args import METRICS
from ._dp_args import check_args as _check_args
from ._dp_args import check_int64_sums as _check_int64_sums

__all__ = ["dp_report", "DPReport", "Budget", "METRICS"]

_MAX_BY = 3          # segment columns; each gets 21 bits of a packed int64 key
_SHIFT = 21


class Budget:
    """A privacy budget (pure epsilon-DP) that reports draw from, by sequential composition.

    ``Budget(epsilon=1.0)``; pass ``budget=`` to :func:`dp_report`: a report that would spend
    more than what is left raises, and nothing is spent by a report that fails before its noise
    is drawn. Thread-safe.
    """

    def __init__(self, epsilon: float):
        if isinstance(epsilon, bool) or not (isinstance(epsilon, (int, float))
                                             and math.isfinite(epsilon) and epsilon > 0):
            raise InputError(f"Budget epsilon={epsilon!r} must be a positive finite number")
        self.epsilon = float(epsilon)
        self.spent = 0.0
        self.log: list[dict] = []
        self._lock = threading.Lock()

    @property
    def remaining(self) -> float:
        return self.epsilon - self.spent

    def _reserve(self, epsilon: float, what: str) -> None:
        with self._lock:
            if self.spent + epsilon > self.epsilon * (1 + 1e-12):
                raise InputError(f"privacy budget exceeded: {what} needs epsilon={epsilon:g}, "
                                 f"{self.remaining:g} of {self.epsilon:g} left")
            self.spent += epsilon
            self.log.append({"what": what, "epsilon": epsilon})

    def __repr__(self) -> str:
        return f"Budget(epsilon={self.epsilon:g}, spent={self.spent:g})"


class DPReport(NamedTuple):
    """``(table, budget)``: one row per segment (the ``by`` columns, then per metric the noisy
    value and its accuracy) and the privacy accounting (a dict, also in the table's metadata
    under ``b"fastengage.privacy.dp"``)."""

    table: pa.Table
    budget: dict


def _opendp():
    try:
        import opendp.prelude as dp
    except ImportError as exc:  # pragma: no cover - opendp is a declared dependency of [privacy]
        raise ImportError("dp_report needs OpenDP: pip install 'fastengage[privacy]'") from exc
    dp.enable_features("contrib")
    return dp


def _laplace(dp, n: int, sensitivity: int, epsilon: float):
    """OpenDP's discrete Laplace on int64 vectors of length n, scaled so that its privacy map
    at ``sensitivity`` is at most ``epsilon``; returns (measurement, scale, epsilon spent)."""
    domain = dp.vector_domain(dp.atom_domain(T="i64"), size=n)
    scale = sensitivity / epsilon
    for _ in range(64):  # OpenDP rounds its map up; nudge the scale until it is within budget
        meas = dp.m.make_laplace(domain, dp.l1_distance(T="i64"), scale=scale)
        spent = meas.map(sensitivity)
        if spent <= epsilon:
            return meas, scale, spent
        scale = math.nextafter(scale, math.inf) * (1 + 1e-15)
    raise RuntimeError("could not fit the Laplace scale to the budget")  # pragma: no cover


class _Segments:
    """Dense codes for the combination of the ``by`` columns, across batches."""

    def __init__(self, by: Sequence[str], keys, n_threads=None):
        self.by = list(by)
        self.n_threads = n_threads
        self.columns = [IdEncoder(name, "segment") for name in self.by]
        self.packed = IdEncoder("+".join(self.by), "segment")
        self.fixed = keys is not None
        if self.fixed:
            table = _as_table(keys, "keys")
            missing = [b for b in self.by if b not in table.column_names]
            if missing:
                raise InputError(f"keys= lacks the by column(s) {missing}")
            self.key_types = {b: table.schema.field(b).type for b in self.by}
            codes = self._encode(table, insert=True)
            if len(np.unique(codes)) != len(codes):
                raise InputError("keys= lists a segment more than once")

    def _encode(self, batch, insert: bool) -> np.ndarray:
        packed = None
        for j, (name, encoder) in enumerate(zip(self.by, self.columns)):
            column = _segment_column(batch, name)
            codes = _column_codes(column, encoder, insert, self.n_threads)
            _check_size(encoder, name)
            if len(self.by) == 1:
                return codes if insert else codes
            packed = codes if packed is None else np.where(
                (packed < 0) | (codes < 0), -1, (packed << _SHIFT) | codes)
        array = pa.array(packed)
        if insert:
            return self.packed.encode(array)
        out = np.full(len(packed), -1, np.int64)
        ok = packed >= 0
        out[ok] = self.packed.lookup(array.filter(pa.array(ok)))
        return out

    def codes(self, batch) -> np.ndarray:
        return self._encode(batch, insert=not self.fixed)

    def fused_aggregates(self, batch, keep, values, lower_u, upper_u, resolution):
        """For one string segment column of many rows: (segment codes, counts, sums) to add,
        from the one-pass :func:`small_dictionary` kernel; None where it does not apply
        (several ``by`` columns, other types, few rows, a block with too many distinct
        strings): the caller then codes the rows and aggregates them separately."""
        if len(self.by) != 1:
            return None
        column = _segment_column(batch, self.by[0])
        if not _small_dictionary_applies(column):
            return None
        first_rows, n_distinct, counts, sums = _small_dictionary(
            column, np.zeros(0, np.int32), keep, values, lower_u, upper_u, resolution,
            self.n_threads)
        if n_distinct.min() < 0:
            return None
        translation, used = _translation(column, self.columns[0], not self.fixed, first_rows,
                                         n_distinct)
        _check_size(self.columns[0], self.by[0])
        ok = used & (translation >= 0)  # -1: not one of keys=
        return translation[ok], counts[ok], sums[ok]

    def __len__(self) -> int:
        return len(self.columns[0]) if len(self.by) == 1 else len(self.packed)

    def key_columns(self, input_types=None) -> dict:
        """The segments' keys per ``by`` column; with no segment at all (an empty input and no
        ``keys=``), empty columns of the types the input's columns would have given."""
        n = len(self)
        if n == 0 and input_types:
            return {name: pa.array([], _key_type(input_types[name])) for name in self.by}
        if len(self.by) == 1:
            return {self.by[0]: self.columns[0].ids()}
        packed = self.packed.ids().to_numpy() if n else np.zeros(0, np.int64)
        out = {}
        for j, (name, encoder) in enumerate(zip(self.by, self.columns)):
            shift = _SHIFT * (len(self.by) - 1 - j)
            out[name] = encoder.decode((packed >> shift) & ((1 << _SHIFT) - 1))
        return out


def _check_key_kinds(key_types, input_types) -> None:
    """keys= of integers for a string column (or the reverse) is an error, not a raw parse
    failure of the id map."""
    for name, typ in input_types.items():
        want, have = id_kind(typ, name, "segment"), id_kind(key_types[name], name, "keys=")
        if want != have:
            raise InputError(f"keys= column {name!r} ({key_types[name]}) holds "
                             f"{'integers' if have == 'int' else 'strings'} but the data's "
                             f"{name!r} ({typ}) holds {'integers' if want == 'int' else 'strings'}")


def _key_type(typ):
    """The type the id map gives keys read from a column of type ``typ``."""
    typ = typ.value_type if pa.types.is_dictionary(typ) else typ
    return pa.large_string() if pa.types.is_string_view(typ) else typ


def _segment_column(batch, name: str) -> pa.Array:
    column = batch.column(name)
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if column.null_count:
        raise InputError(f"segment column {name!r} has {column.null_count} null "
                         "value(s); fill them (e.g. with 'unknown') first")
    return column


def _check_size(encoder: IdEncoder, name: str) -> None:
    if len(encoder) >= 1 << _SHIFT:
        raise InputError(f"segment column {name!r} has over {1 << _SHIFT} values")


def _small_dictionary_applies(column: pa.Array) -> bool:
    return (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)) \
        and len(column) >= PRIVACY_SMALL_DICTIONARY_MIN_ROWS


def _small_dictionary(column, local_codes, keep, values, lower_u, upper_u, resolution,
                      n_threads):
    """The small-dictionary kernel over a string column: (first row of each local code,
    distinct count, counts, sums) per block; the blocks are fixed, not the threads."""
    offsets, data = string_buffers(column)
    shape = (PRIVACY_HASH_CHUNKS, PRIVACY_SMALL_DICTIONARY)
    first_rows, n_distinct = np.empty(shape, np.int64), np.empty(shape[0], np.int64)
    counts, sums = np.zeros(shape, np.int64), np.zeros(shape, np.int64)
    small_dictionary(offsets, data, PRIVACY_SMALL_DICTIONARY, local_codes, keep, values,
                     lower_u, upper_u, float(resolution), first_rows, n_distinct, counts, sums,
                     n_threads=n_threads)
    return first_rows, n_distinct, counts, sums


def _translation(column, encoder: IdEncoder, insert: bool, first_rows, n_distinct):
    """(global code of every block's local code, -1 where unused or not a known key; mask of
    the used ones): the blocks' few representative rows go through ``encoder``."""
    used = np.arange(PRIVACY_SMALL_DICTIONARY) < n_distinct[:, None]
    values = column.take(pa.array(first_rows[used]))
    translation = np.full(first_rows.shape, -1, np.int64)
    translation[used] = encoder.encode(values) if insert else encoder.lookup(values)
    return translation, used


def _column_codes(column: pa.Array, encoder: IdEncoder, insert: bool,
                  n_threads=None) -> np.ndarray:
    """Codes of a segment column: few distinct values are hashed once (strings by the
    small-dictionary kernel, anything else by Arrow's dictionary encoding), then the distinct
    values go through ``encoder``."""
    n = len(column)
    if _small_dictionary_applies(column):
        local = np.empty(n, np.int32)
        first_rows, n_distinct, _, _ = _small_dictionary(
            column, local, np.zeros(0, np.bool_), np.zeros(0, np.float64), 0, 0, 1.0, n_threads)
        if n_distinct.min() >= 0:
            translation, _ = _translation(column, encoder, insert, first_rows, n_distinct)
            codes = np.empty(n, np.int32)
            remap_codes(local, translation.astype(np.int32), codes, n_threads=n_threads)
            return codes
    if not pa.types.is_dictionary(column.type):
        column = pc.dictionary_encode(column)  # hash the few distinct values once
    return encoder.encode(column) if insert else encoder.lookup(column)


def _as_table(data, what: str) -> pa.Table:
    if isinstance(data, dict):
        return pa.table(data)
    source = open_source(data)
    return pa.Table.from_batches(list(source.batches(source.schema.names)), schema=source.schema)


class _Customers:
    """Codes for the per-customer row cap: direct offsets for compact integer ids of an
    in-memory table (no hashing), an id map otherwise."""

    def __init__(self, column: str):
        self.encoder = IdEncoder(column, "customer")
        self.offset = None

    def codes(self, array, whole_input: bool) -> np.ndarray:
        if isinstance(array, pa.ChunkedArray):
            array = array.combine_chunks()
        if whole_input and pa.types.is_integer(array.type) and not array.null_count and len(array):
            lo, hi = pc.min_max(array).values()
            lo, hi = lo.as_py(), hi.as_py()
            if hi - lo <= 4 * len(array) + 1_000_000:
                self.offset, self.size = lo, hi - lo + 1
                values = array.cast(pa.int64()) if not pa.types.is_uint64(array.type) else \
                    array.view(pa.int64())
                return values.to_numpy(zero_copy_only=False) - np.int64(lo)
        return self.encoder.encode(array)

    def __len__(self) -> int:
        return self.size if self.offset is not None else len(self.encoder)


def _coded_aggregates(segments, batch, keep, values, lower_u, upper_u, resolution, n_threads):
    """The general path: segment codes of every row, then the per-part aggregation kernel."""
    seg = np.ascontiguousarray(segments.codes(batch), dtype=np.int32)
    shape = (PRIVACY_AGGREGATE_PARTS, len(segments))
    part_counts, part_sums = np.zeros(shape, np.int64), np.zeros(shape, np.int64)
    bounded_aggregates(seg, keep, keep.size > 0, values, values.size > 0, lower_u, upper_u,
                       float(resolution), part_counts, part_sums, n_threads=n_threads)
    return np.arange(shape[1]), part_counts.sum(axis=0), part_sums.sum(axis=0)


def _bounded_aggregates(data, by, customer, amount, bounds, max_rows, keys, resolution,
                        batch_size, n_threads=None):
    """The exact (not private) bounded aggregates: (segments, counts, sums in units, rows read,
    rows dropped by the cap). Tests compare them with the plain-Python reference."""
    source = open_source(data)
    roles = source.require({**{f"by[{j}]": b for j, b in enumerate(by)}, "customer": customer,
                            "amount": amount})
    segments = _Segments(by, keys, n_threads)
    segments.input_types = {b: source.schema.field(b).type for b in by}
    if keys is not None:
        _check_key_kinds(segments.key_types, segments.input_types)
    customers = _Customers(customer) if customer is not None else None
    k = int(max_rows) if customer is not None else 0
    counts, sums = np.zeros(len(segments), np.int64), np.zeros(len(segments), np.int64)
    taken, dropped, rows = np.zeros(0, np.int32), 0, 0
    lower_u, upper_u = (int(round(b / resolution)) for b in bounds) if amount is not None \
        else (0, 0)
    whole = source.is_in_memory and batch_size is None  # one combined batch: direct codes are safe
    for batch in source.batches(list(roles.values()), batch_size=batch_size):
        rows += batch.num_rows
        keep = np.zeros(0, np.bool_)
        if customers is not None:
            cust = customers.codes(batch.column(roles["customer"]), whole)
            if len(customers) > taken.size:
                taken = np.concatenate([taken, np.zeros(len(customers) - taken.size, np.int32)])
            keep = np.empty(batch.num_rows, np.bool_)
            dropped += cap_rows(cust, taken, k, keep)
        values = np.zeros(0, np.float64)
        if amount is not None:
            values = amount_to_float64(batch.column(roles["amount"]), roles["amount"])
        found = segments.fused_aggregates(batch, keep, values, lower_u, upper_u, resolution)
        if found is None:
            found = _coded_aggregates(segments, batch, keep, values, lower_u, upper_u,
                                      resolution, n_threads)
        grow = len(segments) - counts.size
        if grow > 0:
            counts = np.concatenate([counts, np.zeros(grow, np.int64)])
            sums = np.concatenate([sums, np.zeros(grow, np.int64)])
        codes, add_counts, add_sums = found
        np.add.at(counts, codes, add_counts)  # integers: exact in any order
        np.add.at(sums, codes, add_sums)
    return segments, counts, sums, rows, int(dropped)


def dp_report(data, *, by: Sequence[str], epsilon: float, customer: str | None = None,
              amount: str | None = None, metrics: Sequence[str] = ("count", "sum", "mean"),
              bounds: tuple[float, float] | None = None,
              max_rows_per_customer: int | None = None, keys=None, resolution: float = 0.01,
              alpha: float = 0.05, budget: Budget | None = None,
              batch_size: int | None = None, n_threads: int | None = None) -> DPReport:
    """A differentially private per-segment report (see the module docstring for the method).

    Parameters
    ----------
    data : any fastengage input, streamed.
    by : list of str
        Segment columns (integer or string; at most 3).
    epsilon : float
        Total privacy loss of the report (pure epsilon-DP), split equally between the counts
        and the sums when both are needed (``mean`` needs both).
    customer : str, optional
        The privacy unit's id column. Without it each row is one individual.
    amount : str, optional
        Numeric column summed by ``sum``/``mean``.
    metrics : subset of ``("count", "sum", "mean")``.
    bounds : (lower, upper)
        Each amount is clamped to it (required for sum/mean).
    max_rows_per_customer : int
        Rows each customer may contribute (required with ``customer=``).
    keys : table or dict of the ``by`` columns, optional
        The public list of segments to report (others are left out, absent ones reported with
        noise). Without it, the segments found in the data are reported, unprotected.
    resolution : float
        Amounts are rounded to multiples of it before summing (default 0.01: cents).
    alpha : float
        Accuracy level: reported accuracies hold with probability 1 - alpha per cell.
    budget : Budget, optional
        Spend from this budget (raises if it does not cover ``epsilon``).
    n_threads : int, optional
        Threads of the bounding pass (the result does not depend on it).

    Returns
    -------
    DPReport ``(table, budget)``.
    """
    metrics, needs_amount, bounds = _check_args(metrics, amount, bounds, customer,
                                                max_rows_per_customer, epsilon, resolution,
                                                alpha)
    if isinstance(by, str):
        by = [by]
    by = list(dict.fromkeys(by))
    if not 1 <= len(by) <= _MAX_BY:
        raise InputError(f"by= takes 1 to {_MAX_BY} segment columns, got {len(by)}")
    dp = _opendp()
    needs_count = "count" in metrics or "mean" in metrics
    eps_count = epsilon / 2 if needs_count and needs_amount else (epsilon if needs_count else 0.0)
    eps_sum = epsilon - eps_count if needs_amount else 0.0
    if budget is not None and epsilon > budget.remaining * (1 + 1e-12):
        budget._reserve(epsilon, f"dp_report by {by}")  # raises: fail before reading data
    segments, counts, sums, rows, dropped = _bounded_aggregates(
        data, by, customer, amount if needs_amount else None, bounds, max_rows_per_customer,
        keys, resolution, batch_size, n_threads)
    k = int(max_rows_per_customer) if customer is not None else 0
    if needs_amount:
        lower_u, upper_u = (round(b / resolution) for b in bounds)
        _check_int64_sums(counts, max(k, 1), max(abs(lower_u), abs(upper_u)))
    if budget is not None:
        budget._reserve(epsilon, f"dp_report by {by}")
    n = len(segments)
    unit_rows = max(k, 1)
    table = dict(segments.key_columns(getattr(segments, "input_types", None)))
    accounting = {"mechanism": "discrete Laplace (OpenDP make_laplace, int64 vectors)",
                  "privacy_unit": customer or "row", "max_rows_per_customer": unit_rows,
                  "keys_protected": keys is not None, "alpha": alpha, "segments": n,
                  "rows_read": rows, "rows_dropped_by_cap": int(dropped), "parts": {}}
    noisy_counts = noisy_sums = None
    if needs_count:
        meas, scale, spent = _laplace(dp, n, unit_rows, eps_count)
        noisy_counts = np.asarray(meas(counts.tolist()) if n else [], np.int64)
        count_accuracy = dp.discrete_laplacian_scale_to_accuracy(scale, alpha)
        accounting["parts"]["count"] = {"epsilon": spent, "l1_sensitivity": unit_rows,
                                        "scale": scale, "accuracy": count_accuracy}
        if "count" in metrics:
            table["count"] = noisy_counts
            table["count_accuracy"] = np.full(n, count_accuracy)
    if needs_amount:
        sensitivity = unit_rows * max(abs(lower_u), abs(upper_u))
        meas, scale, spent = _laplace(dp, n, sensitivity, eps_sum)
        noisy_units = np.asarray(meas(sums.tolist()) if n else [], np.int64)
        noisy_sums = noisy_units * resolution
        sum_accuracy = dp.discrete_laplacian_scale_to_accuracy(scale, alpha) * resolution
        accounting["parts"]["sum"] = {"epsilon": spent, "l1_sensitivity": sensitivity * resolution,
                                      "scale": scale * resolution, "accuracy": sum_accuracy,
                                      "bounds": list(bounds), "resolution": resolution}
        if "sum" in metrics:
            table["sum"] = noisy_sums
            table["sum_accuracy"] = np.full(n, sum_accuracy)
    if "mean" in metrics:
        half = dp.discrete_laplacian_scale_to_accuracy(accounting["parts"]["count"]["scale"],
                                                       alpha / 2)
        sum_half = dp.discrete_laplacian_scale_to_accuracy(
            accounting["parts"]["sum"]["scale"] / resolution, alpha / 2) * resolution
        table.update(_mean_columns(noisy_sums, noisy_counts, half, sum_half, bounds))
    accounting["epsilon"] = sum(part["epsilon"] for part in accounting["parts"].values())
    result = pa.table(table, metadata={b"fastengage.privacy.dp": json.dumps(accounting).encode()})
    if keys is None and n:
        result = result.sort_by([(b, "ascending") for b in by])
    return DPReport(result, accounting)


def _mean_columns(noisy_sums, noisy_counts, count_half, sum_half, bounds) -> dict:
    """Noisy mean and a (1 - alpha) interval: every (sum, count) pair within the half-widths of
    the noisy ones (each holds with 1 - alpha/2), ratio range clipped to the bounds."""
    lower, upper = bounds
    s = noisy_sums.astype(np.float64)
    c = noisy_counts.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(c >= 1, np.clip(s / np.maximum(c, 1), lower, upper), np.nan)
        c_lo = np.maximum(c - count_half, 1.0)
        c_hi = c + count_half
        corners = np.stack([(s - sum_half) / c_lo, (s - sum_half) / c_hi,
                            (s + sum_half) / c_lo, (s + sum_half) / c_hi])
        low = np.clip(corners.min(axis=0), lower, upper)
        high = np.clip(corners.max(axis=0), lower, upper)
    unknown = c_hi < 1  # the count may be zero: the mean can be anything within the bounds
    low[unknown], high[unknown] = lower, upper
    return {"mean": mean, "mean_low": low, "mean_high": high}
