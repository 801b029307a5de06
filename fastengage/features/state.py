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

from .._io.ids import IdEncoder, as_id_type
from .._io.columns import consented_input
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
NO_TIME = _sf.NO_TIME
_LOW32 = np.int64(0xFFFFFFFF)


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

    #: Keep the per-customer row tracking that :meth:`forget` needs (a subclass that never
    #: forgets, such as rfm()'s internal file pass, may turn it off to save its small cost).
    _tracks_rows = True

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
        # What forget() needs beyond the records to equal a state built without a customer
        # (the records keep purchases within the cut only): per customer, the latest time of its
        # other rows (returns, rows after the cut), which the default as_of may come from, and
        # (with as_of=) how many of its rows fell after the cut, which the report counts.
        self._other_last_us = np.zeros(0, np.int64)
        self._after_cut_rows = np.zeros(0, np.int32)
        # False for states loaded from files older than version 3
        self._rows_tracked = self._tracks_rows
        self._lock = threading.RLock()
        self.report = new_report()

    # -- feeding ----------------------------------------------------------------------------
    def update(self, data, *, batch_size: int | None = None,
               progress: Callable[[int], None] | None = None,
               n_threads: int | None = None, consent=None) -> "RFMState":
        """Fold new events into the state. ``data`` is any input :func:`open_source` accepts.

        Returns ``self``. Streams are read batch by batch (memory is bounded by the batch size
        plus the state); ``progress`` is called with the number of rows read after each batch.
        ``n_threads`` is accepted for the common vocabulary: a stream's rows are folded in order
        on one thread (the kernels release the GIL, so several states can be fed at once); the
        result never depends on it. ``consent`` (a :class:`fastengage.privacy.ConsentFilter`)
        folds only the rows whose customer had consent at the row's time.
        """
        check_threads(n_threads)
        source = open_source(consented_input(data, consent, customer=self.columns["customer"],
                                             time=self.columns["time"], batch_size=batch_size))
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
            if self._tracks_rows:
                self._track_other_rows(codes, times, amounts, limit)
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

    def _track_other_rows(self, codes, times, amounts, limit) -> None:
        """Per customer: latest time of a row the records do not hold, rows after the cut."""
        other = amounts < 0
        if self.limit_us is not None:
            after = times > limit
            if after.any():
                np.add.at(self._after_cut_rows, codes[after], 1)
                other |= after
        if other.any():
            np.maximum.at(self._other_last_us, codes[other], times[other])

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
        if self._tracks_rows:
            self._other_last_us = _grown(self._other_last_us, size)
            self._other_last_us[n_old:] = NO_TIME
            if self.limit_us is not None:
                self._after_cut_rows = _grown(self._after_cut_rows, size)

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
            # code_map is one-to-one, so these fancy-index updates touch each code once
            if self._tracks_rows and other._tracks_rows:
                self._other_last_us[code_map] = np.maximum(self._other_last_us[code_map],
                                                           other._other_last_us[:n_other])
                if self.limit_us is not None:
                    self._after_cut_rows[code_map] += other._after_cut_rows[:n_other]
            self._rows_tracked = self._rows_tracked and other._rows_tracked
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

    # -- erasure ----------------------------------------------------------------------------
    def forget(self, customers, *, request: str | None = None):
        """Remove customers and every event of theirs (GDPR Art. 17), following the protocol of
        :mod:`fastengage.privacy.forget`; returns its :class:`~fastengage.privacy.AuditRecord`.

        Afterwards the state equals one fed the same events without those customers' rows:
        ``to_table()`` gives the same table bit for bit (report metadata included), and
        ``update``/``merge``/``save`` go on as for that state. Removed: their records, their
        (customer, day) and (customer, order) pairs, their ids, every order id no remaining
        customer bought in (so also orders of their returns and of rows after the cut), and
        their rows in the report's counts; the latest event time is recomputed without them.
        Saving afterwards writes none of it. ``exact`` is False only for a state loaded from a
        file older than version 3 (no per-customer row tracking), where the report's
        rows-after-cut count or the default ``as_of`` could still reflect their rows; the
        record's notes say which.
        """
        from ..privacy.forget import audit, codes_of, drop_ids

        with self._lock:
            codes, requested = codes_of(self.customers, customers)
            if codes.size == 0:
                return audit("RFMState", requested=requested, found=0, request=request,
                             notes="none of the customers is in the state; nothing changed")
            n = len(self.customers)
            encoder, remap = drop_ids(self.customers, codes)
            keep = remap >= 0
            gone = self._state[:n][~keep]
            returns_gone = int(gone["return_rows"].sum(dtype=np.int64))
            after_gone = (int(self._after_cut_rows[:n][~keep].sum(dtype=np.int64))
                          if self.limit_us is not None else 0)
            rows_gone = int(gone["purchase_rows"].sum(dtype=np.int64)) + returns_gone + after_gone
            state = self._state[:n][keep]
            day_keys = _remap_pairs(_pairset.occupied(self._day_set), remap, None)
            orders, order_keys = self.orders, _pairset.occupied(self._order_set)
            if self.orders is not None:
                orders, order_keys, state["last_order"] = _drop_unbought_orders(
                    self.orders, order_keys, remap, state["last_order"])
            exact, notes = self._forget_counts(keep, returns_gone, after_gone, rows_gone)
            self.customers, self.orders, self._state = encoder, orders, state
            self._other_last_us = self._other_last_us[:n][keep]
            if self.limit_us is not None:
                self._after_cut_rows = self._after_cut_rows[:n][keep]
            self._day_set = _pairset.rebuilt(day_keys, _pairset.capacity_for(len(day_keys)))[0]
            self._order_set = _pairset.rebuilt(order_keys,
                                               _pairset.capacity_for(len(order_keys)))[0]
            self._day_keys, self._order_keys = len(day_keys), len(order_keys)
        return audit("RFMState", requested=requested, found=int(codes.size),
                     rows_removed=rows_gone, exact=exact, notes=notes, request=request,
                     customers_left=int(keep.sum()),
                     orders_left=len(orders) if orders is not None else 0)

    def _forget_counts(self, keep, returns_gone: int, after_gone: int, rows_gone: int):
        """Take the forgotten rows out of the report and the latest event time (under the
        lock, before the records change); (exact, notes)."""
        rep = self.report
        rep["rows_read"] -= rows_gone
        rep["return_rows"] -= returns_gone
        if self.returns == "exclude":
            rep["return_rows_excluded"] -= returns_gone
        rep["rows_after_as_of"] -= after_gone
        kept = self._state[:len(keep)][keep]
        bought = kept["last_us"][kept["purchase_rows"] > 0]
        latest = max(int(bought.max()) if len(bought) else NO_TIME,
                     int(self._other_last_us[:len(keep)][keep].max()) if keep.any() else NO_TIME)
        latest = None if latest == NO_TIME else latest
        if self._rows_tracked:
            self._max_time_us = latest
            return True, "records, day/order pairs, ids and unshared order ids removed; " \
                         "report counts and latest event time recomputed"
        # A state from an older file: what it cannot know stays as it was, and is said.
        notes = []
        if self.limit_us is not None and rep["rows_after_as_of"]:
            notes.append("rows_after_as_of may still count rows of the forgotten customers")
        if latest != self._max_time_us:
            notes.append("the latest event time (the default as_of) is kept: it may be a "
                         "forgotten customer's return (file older than version 3)")
        return not notes, "; ".join(notes) or "records, pairs and ids removed"

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

        Layout (version 3): ``meta.json`` with the settings, counts and report; arrays ``state``
        (structured, see ``fastengage.kernels.features.rfm.STATE_DTYPE``; exact money totals), ``day_pairs`` and
        ``order_pairs`` (int64 pair keys ``customer_code << 32 | value``), ``other_last_us``
        (int64 per customer: latest time of its rows the records do not hold, returns and rows
        after the cut) and ``after_cut_rows`` (int32 per customer, empty without ``as_of``), which
        :meth:`forget` needs; tables ``customers`` and ``orders`` (ids in code order, original
        Arrow type).
        """
        with self._lock:
            n = len(self.customers)
            meta = {
                "columns": self.columns, "returns": self.returns,
                "drop_null_customers": self.drop_null_customers, "limit_us": self.limit_us,
                "max_time_us": self._max_time_us, "report": self.report,
                "n_customers": n, "n_orders": len(self.orders) if self.orders is not None else 0,
                "rows_tracked": self._rows_tracked,
            }
            # The ids in the type they came in (dictionary, string_view), so that a loaded
            # state's tables keep the customer column's type.
            ids = self.customers.ids()
            if self.customers.input_type is not None:
                ids = as_id_type(ids, self.customers.input_type)
            tables = {"customers": pa.table({"id": ids})}
            if self.orders is not None:
                tables["orders"] = pa.table({"id": self.orders.ids()})
            save_bundle(path, _sf.KIND, _sf.VERSION, meta,
                        arrays={"state": self._state[:n],
                                "day_pairs": _pairset.occupied(self._day_set),
                                "order_pairs": _pairset.occupied(self._order_set),
                                "other_last_us": self._other_last_us[:n],
                                "after_cut_rows": self._after_cut_rows[:n]},
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
            self.report = {key: settings["report"][key] for key in new_report()}  # key order too
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
            tracked = _sf.read_row_tracking(bundle, state, settings)
        self._state = state
        self._other_last_us, self._after_cut_rows, self._rows_tracked = tracked
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


def _remap_pairs(keys: np.ndarray, remap: np.ndarray, value_remap) -> np.ndarray:
    """Pair keys ``code << 32 | value`` of kept customers with new codes (and new values when
    ``value_remap`` is given; every remaining value must be kept there)."""
    codes = keys >> np.int64(32)
    new_codes = remap[codes]
    kept = new_codes >= 0
    values = keys[kept] & _LOW32
    if value_remap is not None:
        values = value_remap[values]
    return (new_codes[kept] << np.int64(32)) | values


def _drop_unbought_orders(orders: IdEncoder, keys: np.ndarray, remap: np.ndarray,
                          last_order: np.ndarray):
    """(order encoder without the ids no remaining customer bought in, remapped order pair
    keys, remapped last-order hints). Such orders count for nobody; a rebuild would either not
    hold them (the forgotten customers' orders) or give them other codes, which only name
    pairs, so the counts are the same."""
    from ..privacy.forget import drop_ids

    kept_keys = keys[remap[keys >> np.int64(32)] >= 0]
    bought = np.zeros(len(orders), np.bool_)
    bought[kept_keys & _LOW32] = True
    new_orders, order_remap = drop_ids(orders, np.flatnonzero(~bought))
    hints = np.where(last_order >= 0, order_remap[np.maximum(last_order, 0)], -1)
    return (new_orders, _remap_pairs(kept_keys, remap, order_remap),
            hints.astype(last_order.dtype))
