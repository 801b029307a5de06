"""The streaming, incremental RFM state behind :func:`fastengage.rfm` (semantics documented there).

A service keeps one :class:`RFMState` alive, feeds it new events (``update``), reads features at
any time (``to_table``), combines partial states from several workers (``merge``) and saves it
(``save``/``load``; ZIP of JSON + arrays, never pickle). Distinct purchase days and orders are
counted exactly through hash sets of (customer, day) and (customer, order) pairs, so any split of
the events, in any order, gives the same features.
"""
from __future__ import annotations

import threading
from typing import Callable

import numpy as np
import pyarrow as pa

from .._io.ids import IdEncoder
from .._io.sources import open_source
from .._io.persist import load_bundle, save_bundle
from ._common import (RETURNS_MODES, check_types, features_table, iso, new_report,
                          parse_as_of, prepare_batch)
from ..errors import InputError, ModelFormatError
from ..kernels.features import pairset as _pairset
from ..kernels.features import rfm as _k
from .segments import SegmentMap
from . import _state_file as _sf

__all__ = ["RFMState"]

_NO_BITMAP = np.zeros(0, np.uint64)
_NO_LAST = np.zeros(0, np.int64)


def check_threads(n_threads) -> None:
    if n_threads is not None and (isinstance(n_threads, bool) or not isinstance(n_threads, int)
                                  or n_threads < 1):
        raise InputError(f"n_threads must be a positive integer or None, got {n_threads!r}")


def _grown(array: np.ndarray, size: int) -> np.ndarray:
    """``array`` lengthened to ``size`` entries, the new ones zero.

    In place (realloc, i.e. mremap for large blocks) when the array owns its memory, so the
    peak holds no second copy. Safe for RFMState because no view of its arrays outlives a
    locked call.
    """
    if array.flags.owndata and len(array):
        array.resize(size, refcheck=False)  # zero-fills
        return array
    grown = np.zeros(size, array.dtype)
    grown[:len(array)] = array
    return grown


class RFMState:
    """Mergeable per-customer RFM state, fed with batches of transactions.

    Parameters
    ----------
    customer, time, amount : str
        Column names of the customer id (integer or string), the event time (timestamp or date)
        and the amount (numeric; negative means a return).
    order : str, optional
        Column of the order (invoice) id; ``frequency`` counts distinct orders when given.
    as_of : datetime, date, str or None
        Point-in-time cut: events after it are skipped (and counted). None keeps every event.
    returns : {"net", "exclude", "error"}
        Treatment of return rows (``amount < 0``), see the module docstring.
    drop_null_customers : bool
        Drop rows with a null customer id (and count them) instead of raising.

    Notes
    -----
    ``update`` and ``merge`` take an internal lock, so one state may be fed from several threads;
    the kernels release the GIL while they run.
    """

    def __init__(self, *, customer: str, time: str, amount: str, order: str | None = None,
                 as_of=None, returns: str = "net", drop_null_customers: bool = False):
        if returns not in RETURNS_MODES:
            raise InputError(f"returns must be one of {RETURNS_MODES}, got {returns!r}")
        self.columns = {"customer": customer, "time": time, "amount": amount, "order": order}
        self.returns = returns
        self.drop_null_customers = bool(drop_null_customers)
        self.limit_us = parse_as_of(as_of)
        self.customers = IdEncoder(customer, "customer")
        self.orders = IdEncoder(order, "order") if order is not None else None
        self._state = _k.new_state(0)
        self._day_set = np.full(16, _pairset.EMPTY, dtype=np.int64)
        self._order_set = np.full(16, _pairset.EMPTY, dtype=np.int64)
        self._day_keys = 0
        self._order_keys = 0
        self._max_time_us: int | None = None
        self._lock = threading.RLock()
        self.report = new_report()

    # -- feeding ----------------------------------------------------------------------------
    def update(self, data, *, batch_size: int | None = None,
               progress: Callable[[int], None] | None = None,
               n_threads: int | None = None) -> "RFMState":
        """Fold new events into the state. ``data`` is any input :func:`open_source` accepts.

        Returns ``self``. Streams are read batch by batch (memory is bounded by the batch size
        plus the state); ``progress`` is called with the number of rows read after each batch.
        ``n_threads`` is accepted for the common vocabulary: a stream's rows are folded in order
        on one thread (the kernels release the GIL, so several states can be fed at once); the
        result never depends on it.
        """
        check_threads(n_threads)
        source = open_source(data)
        roles = source.require(self.columns)
        check_types(source.schema, roles)
        streamed = not source.is_in_memory
        for batch in source.batches(list(roles.values()), batch_size=batch_size):
            self._update_batch(batch)
            del batch
            if streamed:
                # Arrow's allocator keeps a finished batch's pages for reuse; on a long stream
                # that cache alone was ~90 MiB of the peak, so hand it back after each batch.
                pa.default_memory_pool().release_unused()
            if progress is not None:
                progress(self.report["rows_read"])
        return self

    def _update_batch(self, batch: pa.RecordBatch) -> None:
        cols = self.columns
        with self._lock:
            n_rows = batch.num_rows
            limit = self.limit_us if self.limit_us is not None else _k.INT64_MAX
            batch, n_null, times, amounts = prepare_batch(
                batch, cols, self.drop_null_customers, self.report["rows_read"], self.returns, limit)
            if self.orders is not None:
                order_codes = self._order_codes(batch.column(cols["order"]))
            else:
                order_codes = np.empty(0, dtype=np.int64)
            codes = self.customers.encode(batch.column(cols["customer"]))
            self._grow_state(len(self.customers))
            m = len(codes)
            n_after, n_returns = self._fold(codes, times, amounts, order_codes, limit)
            if m:
                batch_max = int(times.max())
                if self._max_time_us is None or batch_max > self._max_time_us:
                    self._max_time_us = batch_max
            rep = self.report
            rep["rows_read"] += n_rows
            rep["null_customer_rows_dropped"] += n_null
            rep["rows_after_as_of"] += n_after
            rep["return_rows"] += n_returns
            if self.returns == "exclude":
                rep["return_rows_excluded"] += n_returns

    def _order_codes(self, column) -> np.ndarray:
        codes = self.orders.encode(column)
        if len(self.orders) > _pairset.MAX_CODE:
            raise InputError(f"order column {self.columns['order']!r} has more than "
                             f"{_pairset.MAX_CODE:,} distinct orders")
        return codes

    def _fold(self, codes, times, amounts, order_codes, limit) -> tuple:
        """Fold one prepared batch into the records; (rows after the cut, return rows).
        Distinct days and orders are counted exactly through the pair sets."""
        m = len(codes)
        self._day_set = _pairset.grow_for(self._day_set, self._day_keys, m)
        if self.orders is not None:
            self._order_set = _pairset.grow_for(self._order_set, self._order_keys, m)
        n_after, n_returns, day_added, order_added = _k.update(
            self._state, codes, times, amounts, order_codes, self.orders is not None,
            limit, self.returns == "exclude", self._day_set, self._order_set, False, False,
            _NO_LAST, _NO_BITMAP, 0, 0)
        self._day_keys += day_added
        self._order_keys += order_added
        return n_after, n_returns

    def _grow_state(self, n: int, exact: bool = False) -> None:
        n_old = len(self._state)
        if n <= n_old:
            return
        size = n if exact else max(n, n_old + n_old // 2)  # 1.5x: less slack at the peak
        self._state = _grown(self._state, size)
        _k.clear_records(self._state[n_old:])

    # -- combining --------------------------------------------------------------------------
    def merge(self, other: "RFMState") -> "RFMState":
        """Fold ``other`` (same columns and settings) into this state; returns ``self``.

        The result equals one state fed with both inputs, in any split and any order.
        """
        if not isinstance(other, RFMState):
            raise TypeError("can only merge another RFMState")
        if (other.columns, other.returns, other.limit_us) != (self.columns, self.returns, self.limit_us):
            raise InputError("cannot merge RFM states with different columns, returns or as_of settings")
        with self._lock, other._lock:
            n_other = len(other.customers)
            if n_other == 0:
                self._merge_report(other)
                return self
            code_map = self.customers.encode(other.customers.ids())
            self._grow_state(len(self.customers))
            _k.merge(self._state, other._state[:n_other], code_map)
            day_keys = _pairset.occupied(other._day_set)
            self._day_set = _pairset.grow_for(self._day_set, self._day_keys, len(day_keys))
            self._day_keys += _k.merge_pairs(self._state, self._day_set, day_keys, code_map,
                                             code_map, 0)
            if self.orders is not None and len(other.orders):
                order_map = self.orders.encode(other.orders.ids())
                order_keys = _pairset.occupied(other._order_set)
                self._order_set = _pairset.grow_for(self._order_set, self._order_keys, len(order_keys))
                self._order_keys += _k.merge_pairs(self._state, self._order_set, order_keys,
                                                   code_map, order_map, 1)
            self._merge_report(other)
        return self

    def _merge_report(self, other: "RFMState") -> None:
        for key, value in other.report.items():
            self.report[key] += value
        if other._max_time_us is not None and (
                self._max_time_us is None or other._max_time_us > self._max_time_us):
            self._max_time_us = other._max_time_us

    # -- reading ----------------------------------------------------------------------------
    def to_table(self, as_of=None, *, segments: SegmentMap | None = None) -> pa.Table:
        """The features of every customer with a purchase, as of ``as_of``.

        ``as_of`` defaults to the state's own cut, or else the latest event time seen. It may not
        be earlier than an event the state already holds (a state cannot forget events; build it
        with ``as_of=`` for a point-in-time cut).
        """
        with self._lock:
            as_of_us = parse_as_of(as_of)
            if as_of_us is None:
                as_of_us = self.limit_us if self.limit_us is not None else self._max_time_us
            if as_of_us is None:
                raise InputError("the RFM state holds no events yet")
            latest_held = self._latest_held_us()
            if latest_held is not None and as_of_us < latest_held:
                raise InputError(
                    f"as_of={iso(as_of_us)} is before events the state already holds "
                    f"(latest {iso(latest_held)}); create the state with as_of= to cut earlier"
                )
            n = len(self.customers)
            return features_table(self._state[:n], self.customers.decode, self.columns["customer"],
                                  as_of_us, self.returns, self.orders is None, self.report,
                                  segments, ids_sorted=False,
                                  output_type=self.customers.input_type)

    def _latest_held_us(self) -> int | None:
        if self.limit_us is not None:
            return None  # events after the cut were never folded in
        return self._max_time_us

    # -- persistence ------------------------------------------------------------------------
    def save(self, path) -> None:
        """Save to a fastengage bundle (ZIP of JSON + .npy + Arrow IPC; never pickle).

        Layout (version 2): ``meta.json`` with the settings, counts and report; arrays ``state``
        (structured, see ``fastengage.kernels.features.rfm.STATE_DTYPE``; exact money totals), ``day_pairs`` and
        ``order_pairs`` (int64 pair keys ``customer_code << 32 | value``); tables ``customers``
        and ``orders`` (ids in code order, original Arrow type).
        """
        with self._lock:
            n = len(self.customers)
            meta = {
                "columns": self.columns, "returns": self.returns,
                "drop_null_customers": self.drop_null_customers, "limit_us": self.limit_us,
                "max_time_us": self._max_time_us, "report": self.report,
                "n_customers": n, "n_orders": len(self.orders) if self.orders is not None else 0,
            }
            tables = {"customers": pa.table({"id": self.customers.ids()})}
            if self.orders is not None:
                tables["orders"] = pa.table({"id": self.orders.ids()})
            save_bundle(path, _sf.KIND, _sf.VERSION, meta,
                        arrays={"state": self._state[:n],
                                "day_pairs": _pairset.occupied(self._day_set),
                                "order_pairs": _pairset.occupied(self._order_set)},
                        tables=tables)

    @classmethod
    def load(cls, path) -> "RFMState":
        """Load a state written by :meth:`save`.

        The file is checked as untrusted input before any kernel sees it (see
        :mod:`fastengage.features._state_file`); members are read only after their declared size
        matched the metadata.

        Raises
        ------
        ModelFormatError
            Naming the member and the problem.
        """
        with load_bundle(path, _sf.KIND, _sf.VERSION) as bundle:
            settings = _sf.read_settings(bundle.meta)
            cols = settings["columns"]
            try:
                self = cls(customer=cols["customer"], time=cols["time"], amount=cols["amount"],
                           order=cols["order"], returns=settings["returns"],
                           drop_null_customers=settings["drop_null_customers"])
            except InputError as exc:
                _sf.fail("meta.json", str(exc))
            self.limit_us = settings["limit_us"]
            self._max_time_us = settings["max_time_us"]
            self.report = settings["report"]
            state = _sf.read_records(bundle, settings)
            self.customers = _read_ids(bundle, "customers", len(state), cols["customer"], "customer")
            if self.orders is not None:
                n_orders = settings["n_orders"]
                self.orders = _read_ids(bundle, "orders", n_orders, cols["order"], "order")
                _sf.check_order_hints(state, len(self.orders))
                self._order_set = _sf.read_pairs(bundle, state, "order_pairs", len(self.orders))
            else:
                self._order_set = _sf.read_no_pairs(bundle, "order_pairs")
            self._day_set = _sf.read_pairs(bundle, state, "day_pairs", None)
        self._state = state
        self._day_keys = int(state["purchase_days"].sum(dtype=np.int64))
        self._order_keys = (int(state["frequency"].sum(dtype=np.int64))
                            if self.orders is not None else 0)
        return self


def _read_ids(bundle, name: str, n: int | None, column: str, role: str) -> IdEncoder:
    """An id encoder from table ``name``: ``n`` distinct ids of a supported type (n None: the
    count is unknown, as in version-1 order tables, and bounded by the rows read)."""
    member = f"{name}.arrow"
    bound = n if n is not None else bundle.meta["report"]["rows_read"]
    table = bundle.table(name, max_bytes=_sf.ids_max_bytes(bound))
    if table.schema.names != ["id"]:
        _sf.fail(member, f"expected one column 'id', got {table.schema.names}")
    ids = table.column("id").combine_chunks()
    if (n is not None and len(ids) != n) or len(ids) > bound:
        _sf.fail(member, f"{len(ids)} ids where the metadata declares {bound}")
    try:
        return IdEncoder.from_arrow(ids, column, role)
    except InputError as exc:
        _sf.fail(member, str(exc))
