"""rfm()'s private passes over a stream or a re-readable file (never saved, never merged).

The public :class:`~fastengage.RFMState` counts distinct purchase days and orders with pair sets,
which any split or order of the events needs. One call of :func:`fastengage.rfm` over a file sees
every event and can often do with much less memory; :class:`_FilePass` is the state of such a
pass, with its own ways of counting:

* ``days="sorted"``: events arrive in time order, so a new purchase day is a day different from
  the customer's latest (no day set). The pass stops at the first event out of order.
* ``orders="monotone"``: order codes are given in first-seen order, so in a log where each order's
  rows are contiguous per customer a customer's codes never decrease and a change is a new order
  (no order set). The pass stops at the first decrease.
* ``days="bitmap"``: a bitmap of days per customer over a known range of days.
* ``"set"``: the pair sets, as in RFMState (always exact).

A pass that stops returns False and the driver restarts on a more general pass, so the result is
always exact and always the same table.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .._io.sources import time_to_us
from ..kernels.features import oneshot as _one
from ..kernels.features import pairset as _pairset
from ..kernels.features import rfm as _k
from ..errors import InputError
from .state import _NO_LAST, RFMState, _grown

#: Widest day bitmap per customer (words of 64 days) rfm() uses for an unsorted file: 16 words
#: (~2.8 years of days) cost 128 bytes a customer, less than a (customer, day) set of such data.
MAX_DAY_WORDS = 16


class _Stopped(Exception):
    """A pass met data its way of counting cannot handle (kept inside this module)."""

    def __init__(self, what: str):
        super().__init__(what)
        self.what = what  # "time": out of time order / outside the day range; "order"


class _FilePass(RFMState):
    """An RFMState fold with rfm()'s leaner ways of counting distinct days and orders."""

    def __init__(self, *, days: str = "set", orders: str = "set", **settings):
        super().__init__(**settings)
        self._days = days
        self._orders_mode = orders
        self._day_bitmap = np.zeros(0, np.uint64)
        self._first_day = 0
        self._day_words = 0
        # Integer order ids need no id map when counted by changes: each customer's latest id.
        self._last_values = np.zeros(0, np.int64)
        self._raw_orders = None  # decided by the first batch's order type

    def _order_codes(self, column) -> np.ndarray:
        if self._orders_mode != "monotone":
            return super()._order_codes(column)
        if self._raw_orders is None:
            value_type = column.type.value_type if pa.types.is_dictionary(column.type) else column.type
            self._raw_orders = pa.types.is_integer(value_type) and not pa.types.is_dictionary(column.type)
        if not self._raw_orders:
            return super()._order_codes(column)
        if column.null_count:
            raise InputError(f"order column {self.columns['order']!r} has {column.null_count} "
                             "null value(s)")
        if not pa.types.is_integer(column.type) or pa.types.is_dictionary(column.type):
            raise _Stopped("order")  # the type changed between batches: the exact pass decides
        if pa.types.is_uint64(column.type):
            column = column.view(pa.int64())  # order only matters for the check; equality is kept
        return np.ascontiguousarray(column.cast(pa.int64()).to_numpy(zero_copy_only=False))

    def use_day_bitmaps(self, first_day: int, words: int) -> None:
        self._days = "bitmap"
        self._first_day, self._day_words = first_day, words
        self._grow_bitmap(len(self._state))

    def _fold(self, codes, times, amounts, order_codes, limit) -> tuple:
        if self._days == "set" and self._orders_mode == "set":
            return super()._fold(codes, times, amounts, order_codes, limit)
        days_sorted = self._days == "sorted"
        if days_sorted and not (_one.is_sorted(times) and (
                self._max_time_us is None or not len(times) or times[0] >= self._max_time_us)):
            raise _Stopped("time")
        m = len(codes)
        if self._days == "set":
            self._day_set = _pairset.grow_for(self._day_set, self._day_keys, m)
        monotone = self._orders_mode == "monotone"
        if self.orders is not None and not monotone:
            self._order_set = _pairset.grow_for(self._order_set, self._order_keys, m)
        n_after, n_returns, day_added, order_added = _k.update(
            self._state, codes, times, amounts, order_codes, self.orders is not None,
            limit, self.returns == "exclude", self._day_set, self._order_set, days_sorted,
            monotone, self._last_values if self._raw_orders else _NO_LAST, self._day_bitmap,
            self._first_day,
            self._day_words if self._days == "bitmap" else 0)
        if day_added < 0:
            raise _Stopped("time")
        if order_added < 0:
            raise _Stopped("order")
        self._day_keys += day_added
        self._order_keys += order_added
        return n_after, n_returns

    def _grow_state(self, n: int, exact: bool = False) -> None:
        super()._grow_state(n, exact)
        self._grow_bitmap(len(self._state))
        if self._raw_orders and len(self._last_values) < len(self._state):
            self._last_values = _grown(self._last_values, len(self._state))

    def _grow_bitmap(self, customers: int) -> None:
        size = customers * self._day_words
        if size > len(self._day_bitmap):
            self._day_bitmap = _grown(self._day_bitmap, size)

    def release_dedup(self) -> None:
        """Free the day bitmaps and pair sets: the records hold every count now."""
        self._day_bitmap = np.zeros(0, np.uint64)
        self._last_values = np.zeros(0, np.int64)
        self._day_set = np.full(16, _pairset.EMPTY, dtype=np.int64)
        self._order_set = np.full(16, _pairset.EMPTY, dtype=np.int64)
        self._day_keys = self._order_keys = 0
        self._day_words = 0

    def merge(self, other):
        raise RuntimeError("rfm()'s internal pass state cannot be merged")

    def save(self, path) -> None:
        raise RuntimeError("rfm()'s internal pass state cannot be saved")


def fold_stream(source, settings: dict, batch_size, progress) -> _FilePass:
    """One pass over a single-use stream, with the pair sets."""
    return _FilePass(**settings).update(source, batch_size=batch_size, progress=progress)


def fold_file(source, settings: dict, time: str, batch_size, progress) -> _FilePass:
    """Stream a file or dataset, which can be read more than once, with the leanest exact pass.

    1. Assume time order (logs are usually written that way) and, with ``order=``, contiguous
       orders: no set of customer-days or customer-orders is kept. The pass stops at the first
       event out of order (then 2.) or the first order that comes back (then time order with the
       order set, if the file is in time order).
    2. Otherwise read the customer and time columns alone: every customer id gets its code and
       the range of days is known, so the records and a bitmap of days per customer are
       allocated once at their exact size (``MAX_DAY_WORDS`` at most), then fold the rows.
    3. Otherwise, or if a day falls outside that range after all, keep the (customer, day) set.
    """
    attempts = [dict(days="sorted", orders="monotone")]
    while attempts:
        mode = attempts.pop(0)
        state = _FilePass(**settings, **mode)
        try:
            return state.update(source, batch_size=batch_size, progress=progress)
        except _Stopped as stop:
            if stop.what == "order" and mode["orders"] == "monotone":
                attempts.insert(0, dict(days="sorted", orders="set"))
        del state
        pa.default_memory_pool().release_unused()  # the batch the failed pass stopped in
    state = _FilePass(**settings)
    first_day, words = _encode_ids_and_day_range(state, source, time, batch_size)
    if words <= MAX_DAY_WORDS:
        state.use_day_bitmaps(first_day, words)
        try:
            return state.update(source, batch_size=batch_size, progress=progress)
        except _Stopped:
            pass
    return _FilePass(**settings).update(source, batch_size=batch_size, progress=progress)


def _encode_ids_and_day_range(state: _FilePass, source, time: str, batch_size) -> tuple:
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
    return _one.day_words(lo, hi)
