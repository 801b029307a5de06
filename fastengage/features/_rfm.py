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

import pyarrow as pa

from .._io.columns import consented_input
from .._io.sources import open_source
from ._batch import rfm_in_memory
from ._common import RETURNS_MODES, RFM_COLUMNS, parse_as_of
from ..errors import InputError
from ._file_passes import fold_file, fold_stream
from .state import RFMState, check_threads
from .segments import SegmentMap

__all__ = ["rfm", "RFMState", "RFM_COLUMNS", "parse_as_of"]


def rfm(data, *, customer: str, time: str, amount: str, order: str | None = None, as_of=None,
        returns: str = "net", drop_null_customers: bool = False,
        segments: SegmentMap | None = None, batch_size: int | None = None,
        progress: Callable[[int], None] | None = None, n_threads: int | None = None,
        consent=None) -> pa.Table:
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
        Worker threads of the in-memory path's parallel kernels (default:
        ``FASTENGAGE_NUM_THREADS``, else all cores); the result never depends on it. Streams are
        folded in order on one thread.
    consent : fastengage.privacy.ConsentFilter, optional
        Use only the rows whose customer had consent for the filter's purpose at the row's time
        (the kept rows are held in memory; what was excluded: ``consent.last_report``).

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
    check_threads(n_threads)
    source = open_source(consented_input(data, consent, customer=customer, time=time,
                                         batch_size=batch_size))
    if source.is_in_memory and batch_size is None:
        table = rfm_in_memory(source, dict(customer=customer, time=time, amount=amount, order=order),
                              parse_as_of(as_of), returns, drop_null_customers, segments,
                              n_threads)
        if progress is not None:
            progress(source.num_rows)
        return table
    settings = dict(customer=customer, time=time, amount=amount, order=order, as_of=as_of,
                    returns=returns, drop_null_customers=drop_null_customers)
    if source.kind in ("dataset", "parquet_file"):
        state = fold_file(source, settings, time, batch_size, progress)
    else:
        state = fold_stream(source, settings, batch_size, progress)
    if state.report["rows_read"] == 0:
        raise InputError("the input is empty: no rows to compute features from")
    # The records hold every count now; the structures that deduplicated days and orders are
    # not needed for the output, which is when a streamed run peaks. So are the pages Arrow's
    # reader kept once the stream ended (RFMState.update frees them only between batches).
    state.release_dedup()
    pa.default_memory_pool().release_unused()
    return state.to_table(as_of, segments=segments)
