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
import pyarrow.compute as pc

from .._io.sources import open_source, time_to_us
from ._batch import rfm_in_memory
from ._common import RETURNS_MODES, RFM_COLUMNS, parse_as_of
from ..errors import InputError
from ..kernels.features import oneshot as rfm_oneshot
from .state import RFMState, _NotTimeSorted, _OutsideDayRange
from .segments import SegmentMap

__all__ = ["rfm", "RFMState", "RFM_COLUMNS", "parse_as_of"]


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
        table = rfm_in_memory(source, dict(customer=customer, time=time, amount=amount, order=order),
                              parse_as_of(as_of), returns, drop_null_customers, segments,
                              n_threads)
        if progress is not None:
            progress(source.num_rows)
        return table
    def new_state():
        return RFMState(customer=customer, time=time, amount=amount, order=order, as_of=as_of,
                        returns=returns, drop_null_customers=drop_null_customers)

    if source.kind in ("dataset", "parquet_file"):
        state = _rfm_from_file(source, new_state, time, batch_size, progress)
    else:
        state = new_state().update(source, batch_size=batch_size, progress=progress)
    if state.report["rows_read"] == 0:
        raise InputError("the input is empty: no rows to compute features from")
    # The records hold every count now; the structures that deduplicated days and orders are
    # not needed for the output, which is when a streamed run peaks. So are the pages Arrow's
    # reader kept once the stream ended (RFMState.update frees them only between batches).
    state._release_dedup_structures()
    pa.default_memory_pool().release_unused()
    return state.to_table(as_of, segments=segments)


#: Widest day bitmap per customer (words of 64 days) rfm() uses for an unsorted file: 16 words
#: (~2.8 years of days) cost 128 bytes a customer, less than a (customer, day) set of such data.
MAX_DAY_WORDS = 16


def _rfm_from_file(source, new_state, time: str, batch_size, progress) -> RFMState:
    """Stream a file or dataset, which can be read more than once, with the leanest exact pass.

    1. Assume time order (logs are usually written that way): a new purchase day is then just a
       day different from the customer's latest, and no set of customer-days is kept. The pass
       stops at the first event out of order.
    2. Otherwise read the customer and time columns alone: every customer id gets its code and
       the range of days is known, so the records and a bitmap of days per customer are
       allocated once at their exact size (``MAX_DAY_WORDS`` at most), then fold the rows.
    3. Otherwise, or if a day falls outside that range after all, keep the (customer, day) set.
    """
    state = new_state()
    state._sorted_only = True
    try:
        state.update(source, batch_size=batch_size, progress=progress)
        state._sorted_only = False
        return state
    except _NotTimeSorted:
        pass
    del state
    pa.default_memory_pool().release_unused()  # the batch the failed pass stopped in
    state = new_state()
    first_day, words = _encode_ids_and_day_range(state, source, time, batch_size)
    if words <= MAX_DAY_WORDS:
        state._use_day_bitmaps(first_day, words)
        try:
            return state.update(source, batch_size=batch_size, progress=progress)
        except _OutsideDayRange:
            pass
    return new_state().update(source, batch_size=batch_size, progress=progress)


def _encode_ids_and_day_range(state: RFMState, source, time: str, batch_size) -> tuple:
    """Give every customer id of ``source`` its code in ``state``, size its records exactly, and
    return (first day, 64-day words) spanning every time; one pass over those two columns."""
    customer = state.columns["customer"]
    lo = hi = None
    for batch in source.batches([customer, time], batch_size=batch_size):
        if not batch.num_rows:
            continue
        # Null ids are left to the folding pass, which drops and counts them or raises.
        state.customers.encode(pc.drop_null(batch.column(0)))
        us = time_to_us(batch.column(1), time)
        lo = int(us.min()) if lo is None else min(lo, int(us.min()))
        hi = int(us.max()) if hi is None else max(hi, int(us.max()))
        del batch, us
        pa.default_memory_pool().release_unused()  # as RFMState.update does between batches
    state._grow_state(len(state.customers), exact=True)
    if lo is None:
        return 0, 0
    return rfm_oneshot.day_words(lo, hi)
