"""What the one-shot :func:`fastengage.rfm` and the streaming :class:`fastengage.RFMState` share:
argument parsing, batch validation/conversion, and turning finished records into the table."""
from __future__ import annotations

import json
import logging

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .._io.ids import as_id_type, id_kind
from .._io.sources import amount_to_float64, time_to_us
from .._io.times import iso, parse_time  # noqa: F401  (iso re-exported)
from ..errors import InputError
from ..kernels.common.config import FEATURES_DENSE_MAX_RANGE, FEATURES_DENSE_SLACK
from ..kernels.features import rfm as _k
from .segments import SegmentMap, compile_segments

log = logging.getLogger("fastengage")

#: Output columns after the customer column, in order.
RFM_COLUMNS = (
    "first_purchase", "last_purchase", "recency_days", "tenure_days", "frequency",
    "purchase_days", "monetary_total", "monetary_mean", "r_score", "f_score", "m_score", "segment",
)
RETURNS_MODES = ("net", "exclude", "error")
_TS = pa.timestamp("us", tz="UTC")
_NO_ORDER = np.empty(0, np.int64)


def new_report() -> dict:
    return {"rows_read": 0, "null_customer_rows_dropped": 0, "rows_after_as_of": 0,
            "return_rows": 0, "return_rows_excluded": 0}


def parse_as_of(value) -> int | None:
    """``as_of`` as int64 microseconds UTC, or None (see :mod:`fastengage._io.times`)."""
    return parse_time(value, "as_of", optional=True)


def check_types(schema: pa.Schema, roles: dict) -> None:
    """Fail on a wrong column type before reading any batch of a long stream."""
    id_kind(schema.field(roles["customer"]).type, roles["customer"], "customer")
    if "order" in roles:
        id_kind(schema.field(roles["order"]).type, roles["order"], "order")
    t = schema.field(roles["time"]).type
    if pa.types.is_dictionary(t):
        t = t.value_type
    if not (pa.types.is_timestamp(t) or pa.types.is_date(t)):
        raise InputError(f"time column {roles['time']!r} has type {t}; expected a timestamp or a date")
    a = schema.field(roles["amount"]).type
    if pa.types.is_dictionary(a):
        a = a.value_type
    if not (pa.types.is_integer(a) or pa.types.is_floating(a) or pa.types.is_decimal(a)):
        raise InputError(f"amount column {roles['amount']!r} has type {a}; expected a number")


def dense_id_codes(column: pa.Array, name: str):
    """(codes int64, n_codes, ids by code) for integer customer ids dense enough to be their own
    codes (``id - min``, already in id order), else None (strings, dictionaries, uint64, or a
    range much wider than the row count)."""
    typ = column.type
    if id_kind(typ, name, "customer") != "int" or pa.types.is_dictionary(typ) \
            or pa.types.is_uint64(typ) or not len(column):
        return None
    bounds = pc.min_max(column)
    lo, hi = bounds["min"].as_py(), bounds["max"].as_py()
    if hi - lo >= min(len(column) + FEATURES_DENSE_SLACK, FEATURES_DENSE_MAX_RANGE):
        return None
    codes = np.subtract(column.cast(pa.int64()).to_numpy(zero_copy_only=False), np.int64(lo))
    ids = pa.array(np.arange(lo, hi + 1, dtype=np.int64)).cast(typ)
    return codes, hi - lo + 1, ids


def prepare_batch(batch: pa.RecordBatch, columns: dict, drop_null_customers: bool,
                  rows_before: int, returns: str, limit_us: int, check_ids=None):
    """Validate one batch and convert time and amount; returns (batch, n_null, times, amounts).

    Rows with a null customer id are dropped (and counted) only with ``drop_null_customers``.
    ``check_ids``: when the caller deferred the full validation of the customer column (see
    ``_batch.rfm_in_memory``), called before anything here reads the ids themselves.
    """
    cust = batch.column(columns["customer"])
    n_null = cust.null_count
    if n_null:
        if not drop_null_customers:
            raise InputError(
                f"customer column {columns['customer']!r} has {n_null} null value(s) in rows "
                f"{rows_before + 1:,}..{rows_before + batch.num_rows:,}; pass "
                "drop_null_customers=True to drop those rows (the count is reported)"
            )
        if check_ids is not None:
            check_ids()
            check_ids = None
        kept = pc.is_valid(cust)
        batch = _filter_rows(batch, kept)
    times = time_to_us(batch.column(columns["time"]), columns["time"])
    # |amount| < 2**63: per-customer sums are then exact and cannot overflow (see kernels).
    amount_args = (batch.column(columns["amount"]), columns["amount"])
    # An error names the row of the input, not of what is left after the dropped nulls.
    first_row = rows_before + np.flatnonzero(kept.to_numpy(zero_copy_only=False)) if n_null \
        else rows_before
    amount_kw = dict(max_abs=_k.MAX_ABS_AMOUNT, first_row=first_row)
    ids = cust if not n_null else batch.column(columns["customer"])
    if check_ids is None:
        amounts = amount_to_float64(*amount_args, **amount_kw, ids=ids)
    else:  # a bad amount names its row's customer: only once the ids are known to be sound
        try:
            amounts = amount_to_float64(*amount_args, **amount_kw)
        except InputError:
            check_ids()
            amount_to_float64(*amount_args, **amount_kw, ids=ids)  # raises, naming the id
            raise
    if returns == "error":
        n_ret = int(np.count_nonzero((amounts < 0) & (times <= limit_us)))
        if n_ret:
            raise InputError(
                f"amount column {columns['amount']!r} has {n_ret} negative value(s) (returns) "
                "and returns='error'; use returns='net' or 'exclude'"
            )
    return batch, n_null, times, amounts


def _filter_rows(batch: pa.RecordBatch, keep: pa.Array) -> pa.RecordBatch:
    """``batch.filter(keep)``; Arrow has no filter kernel for string_view, so such columns are
    filtered as large_string and cast back (the output keeps the user's id type)."""
    if not any(pa.types.is_string_view(t) for t in batch.schema.types):
        return batch.filter(keep)
    columns = [c.cast(pa.large_string()).filter(keep).cast(c.type)
               if pa.types.is_string_view(c.type) else c.filter(keep) for c in batch.columns]
    return pa.RecordBatch.from_arrays(columns, schema=batch.schema)


def _as_type(ids: pa.ChunkedArray, typ: pa.DataType) -> pa.ChunkedArray:
    """The output's ids (distinct, sorted) cast to the user's id type (see
    :func:`fastengage._io.ids.as_id_type`: a dictionary's index type widens when the ids outnumber
    it)."""
    out = as_id_type(ids, typ)
    return pa.chunked_array([out], out.type)


def features_table(state: np.ndarray, ids_of, customer_column: str, as_of_us: int,
                   returns: str, frequency_is_rows: bool, report: dict,
                   segments: SegmentMap | None, ids_sorted: bool,
                   output_type: pa.DataType | None = None,
                   order: np.ndarray | None = None, n_threads: int | None = None) -> pa.Table:
    """Finish records into the output table.

    Parameters
    ----------
    state : STATE_DTYPE[n_codes]
    ids_of : callable(codes int64[m]) -> pyarrow.Array of the user's ids for those codes
    ids_sorted : bool
        Codes are already in ascending id order (dense integer ids), so no sort is needed.
    output_type : pyarrow.DataType, optional
        Type of the customer column in the output when it differs from what ``ids_of`` returns
        (dictionary-encoded input ids).
    order : int64 array, optional
        Read the records in this order (the codes passed to ``ids_of`` are then positions in it).
    n_threads : int, optional
        Threads of the records' read-out (default: all); the table does not depend on it.
    """
    names, seg_table = compile_segments(segments)
    # The columns stay in one list (no other names) so that each can be replaced, and freed,
    # one at a time below.
    order = _NO_ORDER if order is None else order
    values = list(_k.finish(state, order, as_of_us, returns == "net", frequency_is_rows,
                            seg_table, n_threads))
    codes = values.pop(0)
    n_returns_only = values.pop()
    n_customers = len(codes)
    ids = ids_of(codes)
    del codes
    if not ids_sorted:
        # Permute column by column, so that only one extra column is alive at a time (a table
        # take would hold a second copy of the whole output: the peak of a streamed run).
        order = pc.sort_indices(ids)
        ids = ids.take(order)
        order = order.to_numpy()
        for k in range(len(values)):
            values[k] = values[k][order]
        del order
    seg = values.pop()
    values[0] = pa.array(values[0]).cast(_TS)  # first_purchase
    values[1] = pa.array(values[1]).cast(_TS)  # last_purchase
    segment = pa.DictionaryArray.from_arrays(pa.array(seg), pa.array(names, pa.string()))
    table = pa.Table.from_arrays(
        [ids, *(pa.array(c) if isinstance(c, np.ndarray) else c for c in values),
         segment.dictionary_decode()],
        names=[customer_column, *RFM_COLUMNS],
    )
    del values, seg, segment
    if output_type is not None and table.schema.field(0).type != output_type:
        # Dictionary-encoded ids go back out dictionary-encoded, sorted by their values.
        table = table.set_column(0, customer_column, _as_type(table.column(0), output_type))
    report = dict(report)
    report.update(as_of=iso(as_of_us), customers=int(n_customers),
                  customers_without_purchase=int(n_returns_only), returns=returns)
    log.info("fastengage.rfm: %s", json.dumps(report))
    return table.replace_schema_metadata({"fastengage": json.dumps(report)})
