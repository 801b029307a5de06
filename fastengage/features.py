"""RFM customer features from transactions: batch, streaming and incremental.

:func:`rfm` is the one-call API. On a whole in-memory table it makes one parallel pass without
any hash set (distinct days and orders are counted after a counting sort by customer); on streams
and datasets it feeds a :class:`~fastengage.RFMState`, the mergeable per-customer state that a
service keeps alive (see :mod:`fastengage.rfm_state`). Both give identical results.

Semantics
---------
* A row with ``amount >= 0`` is a purchase; a row with ``amount < 0`` is a return.
* Only rows with ``time <= as_of`` count (point in time). ``as_of`` defaults to the latest time
  in the data (over all rows, returns included).
* One output row per customer with at least one purchase, sorted by customer id.
* ``recency_days = floor((as_of - last_purchase) / 1 day)``,
  ``tenure_days = floor((as_of - first_purchase) / 1 day)``.
* ``frequency`` = number of distinct ``order`` values among purchase rows (the number of purchase
  rows when there is no ``order`` column); ``purchase_days`` = number of distinct UTC calendar days
  with a purchase.
* ``monetary_total`` = sum of purchase amounts, plus return amounts when ``returns="net"``;
  ``monetary_mean = monetary_total / frequency``.
* Scores 1..5, 5 best (most recent, most frequent, highest monetary_total):
  ``score = min(5, 1 + floor(5 * w / n))`` with n customers and w customers strictly worse; ties
  share a score. ``segment`` comes from the (r, f, m) map of :mod:`fastengage.segments`.
* ``returns``: ``"net"`` subtracts returns in ``monetary_total`` only, ``"exclude"`` ignores return
  rows, ``"error"`` raises if any (counting them). Every exclusion is counted: the result's schema
  metadata (key ``b"fastengage"``, JSON) holds the report, which is also logged at INFO level on
  the ``fastengage`` logger and available as ``RFMState.report``.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ._ids import IdEncoder, id_kind
from ._input import Source, open_source
from ._parallel import run_parallel
from ._rfm_common import (RETURNS_MODES, RFM_COLUMNS, check_types, features_table, new_report,
                          parse_as_of, prepare_batch)
from .errors import InputError
from .kernels import rfm as _k
from .kernels import rfm_oneshot as _one
from .rfm_state import RFMState, _NotTimeSorted
from .segments import SegmentMap

__all__ = ["rfm", "RFMState", "RFM_COLUMNS", "parse_as_of"]

#: Integer ids whose range is at most this many slots past the row count index records directly.
_DENSE_SLACK = 1024
#: Largest id range indexed directly (records are 64 bytes: 2**24 of them are 1 GiB).
_DENSE_MAX_RANGE = 1 << 24


def rfm(data, *, customer: str, time: str, amount: str, order: str | None = None, as_of=None,
        returns: str = "net", drop_null_customers: bool = False,
        segments: SegmentMap | None = None, batch_size: int | None = None,
        progress: Callable[[int], None] | None = None, n_threads: int | None = None) -> pa.Table:
    """RFM features per customer, point in time.

    Parameters
    ----------
    data : Arrow table, record batch, reader, dataset, Parquet path, or ``__arrow_c_stream__``
        One row per transaction line. Streams and datasets are read batch by batch, so memory is
        bounded by the batch size plus the per-customer state.
    customer, time, amount : str
        Column names: customer id (any integer type or string), event time (timestamp of any
        unit, tz-aware or naive = UTC, or date), amount (numeric; < 0 means a return).
    order : str, optional
        Order/invoice id column; ``frequency`` then counts distinct orders.
    as_of : datetime, date, ISO str, numpy.datetime64 or None
        Point in time; default: the latest time in the data.
    returns : {"net", "exclude", "error"}
    drop_null_customers : bool
        Drop rows whose customer id is null (counted in the report) instead of raising.
    segments : mapping or callable, optional
        Replacement for the default segment map (see :mod:`fastengage.segments`).
    batch_size : int, optional
        Rows per batch when streaming (also forces the streaming path for in-memory data).
    progress : callable(rows_read), optional
    n_threads : int, optional
        Worker threads of the in-memory path (default: numba's thread count).

    Returns
    -------
    pyarrow.Table
        One row per customer with at least one purchase, sorted by customer id, with the
        customer column (user's name and type) followed by :data:`RFM_COLUMNS`; schema metadata
        ``b"fastengage"`` holds the JSON report of counts (rows read, dropped, after as_of,
        returns, customers with returns only).

    Raises
    ------
    InputError
        Unknown column (listing the available ones), wrong type, null ids, null or NaN amounts,
        null times, empty input, or returns present with ``returns="error"``.
    """
    if returns not in RETURNS_MODES:
        raise InputError(f"returns must be one of {RETURNS_MODES}, got {returns!r}")
    source = open_source(data)
    if source.is_in_memory and batch_size is None:
        table = _rfm_in_memory(source, dict(customer=customer, time=time, amount=amount, order=order),
                               parse_as_of(as_of), returns, drop_null_customers, segments,
                               n_threads)
        if progress is not None:
            progress(source.num_rows)
        return table
    def new_state():
        return RFMState(customer=customer, time=time, amount=amount, order=order, as_of=as_of,
                        returns=returns, drop_null_customers=drop_null_customers)

    state = new_state()
    if source.kind in ("dataset", "parquet_file"):
        # A file or dataset can be read twice: try the lean pass that assumes time order (no
        # set of customer-days to keep), and fall back to the general pass at the first event
        # out of order. Logs are usually written in time order, so the fallback is rare.
        state._sorted_only = True
        try:
            state.update(source, batch_size=batch_size, progress=progress)
        except _NotTimeSorted:
            state = new_state()
            state.update(source, batch_size=batch_size, progress=progress)
        state._sorted_only = False
    else:
        state.update(source, batch_size=batch_size, progress=progress)
    if state.report["rows_read"] == 0:
        raise InputError("the input is empty: no rows to compute features from")
    return state.to_table(as_of, segments=segments)


def _customer_codes(column: pa.Array, name: str):
    """Dense codes for the customer column and a function mapping codes back to ids.

    Integer ids whose range is close to the row count index the records directly
    (``code = id - min``), which needs no hashing and leaves codes in id order.
    Returns (codes, n_codes, ids_of, ids_sorted, output_type).
    """
    typ = column.type
    if id_kind(typ, name, "customer") == "int" and not pa.types.is_dictionary(typ):
        bounds = pc.min_max(column)
        lo, hi = bounds["min"].as_py(), bounds["max"].as_py()
        if hi - lo < min(len(column) + _DENSE_SLACK, _DENSE_MAX_RANGE):
            values = column.cast(pa.int64()).to_numpy(zero_copy_only=False)
            codes = _one.dense_codes(values, np.int64(lo))

            def ids_of(c):
                return pa.array(c + np.int64(lo)).cast(typ)

            return codes, hi - lo + 1, ids_of, True, typ
    encoder = IdEncoder(name, "customer")
    codes = encoder.encode(column)
    return codes, len(encoder), encoder.decode, False, encoder.input_type


def _rfm_in_memory(source: Source, columns: dict, limit_us: int | None, returns: str,
                   drop_null_customers: bool, segments, n_threads: int | None) -> pa.Table:
    """One parallel pass over a whole in-memory table (no hash sets)."""
    import numba

    roles = source.require(columns)
    check_types(source.schema, roles)
    batches = list(source.batches(list(roles.values())))
    if not batches or batches[0].num_rows == 0:
        raise InputError("the input is empty: no rows to compute features from")
    (batch,) = batches  # in-memory inputs come as one combined batch
    report = new_report()
    report["rows_read"] = batch.num_rows
    limit = limit_us if limit_us is not None else _k.INT64_MAX
    batch, n_null, times, amounts = prepare_batch(batch, columns, drop_null_customers, 0, returns, limit)
    report["null_customer_rows_dropped"] = n_null
    if batch.num_rows == 0:
        raise InputError("no rows left after dropping null customer ids")
    codes, n_codes, ids_of, ids_sorted, output_type = _customer_codes(batch.column(columns["customer"]),
                                                         columns["customer"])
    has_order = columns["order"] is not None
    order_codes = (IdEncoder(columns["order"], "order").encode(batch.column(columns["order"]))
                   if has_order else np.empty(0, np.int64))
    # Detected, never assumed: with non-decreasing times each customer's days arrive in order,
    # so a new day is simply a day different from the customer's latest one.
    days_sorted = _one.is_sorted(times)
    chunks = n_threads or numba.get_num_threads()
    shift = _one.partition_shift(n_codes)
    parts = run_parallel(_one.partition, codes, times, amounts, order_codes, has_order, n_codes,
                         shift, chunks)
    del codes  # the partitioned copy is all that is needed from here on
    state = _k.new_state(n_codes)
    n_after, n_returns = run_parallel(_one.fold, state, *parts, has_order, shift, limit,
                                      returns == "exclude", days_sorted)
    del parts
    report["rows_after_as_of"] = int(n_after)
    report["return_rows"] = int(n_returns)
    if returns == "exclude":
        report["return_rows_excluded"] = int(n_returns)
    as_of_us = limit_us if limit_us is not None else int(times.max())
    return features_table(state, ids_of, columns["customer"], as_of_us, returns, not has_order,
                          report, segments, ids_sorted, output_type)
