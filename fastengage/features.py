"""RFM customer features from transactions: batch, streaming and incremental.

:func:`rfm` is the one-call API; :class:`RFMState` is the mergeable per-customer state behind it,
which a service keeps alive and feeds new events (``update``), reads at any time (``to_table``),
combines across workers (``merge``) and saves (``save``/``load``, no pickle).

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

import datetime as _dt
import json
import logging
import threading
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ._ids import IdEncoder
from ._input import Source, amount_to_float64, open_source, time_to_us
from ._persist import load_bundle, save_bundle
from .errors import InputError, ModelFormatError
from .kernels import pairset as _pairset
from .kernels import rfm as _k
from .segments import SegmentMap, compile_segments

__all__ = ["rfm", "RFMState", "RFM_COLUMNS", "parse_as_of"]

log = logging.getLogger("fastengage")

#: Output columns after the customer column, in order.
RFM_COLUMNS = (
    "first_purchase", "last_purchase", "recency_days", "tenure_days", "frequency",
    "purchase_days", "monetary_total", "monetary_mean", "r_score", "f_score", "m_score", "segment",
)
_RETURNS = ("net", "exclude", "error")
_STATE_VERSION = 1
_TS = pa.timestamp("us", tz="UTC")
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)


def parse_as_of(value) -> int | None:
    """``as_of`` as int64 microseconds UTC. Accepts datetime (naive = UTC), date, ISO string,
    numpy.datetime64 or None."""
    if value is None:
        return None
    if isinstance(value, np.datetime64):
        return int(value.astype("datetime64[us]").astype(np.int64))
    if isinstance(value, str):
        try:
            value = _dt.datetime.fromisoformat(value)
        except ValueError:
            raise InputError(f"as_of={value!r} is not an ISO date or datetime") from None
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_dt.timezone.utc)
        delta = value - _EPOCH
        return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    if isinstance(value, _dt.date):
        return (value - _EPOCH.date()).days * 86_400_000_000
    raise InputError(f"as_of must be a datetime, date, ISO string or None, got {type(value).__name__}")


def _iso(us: int) -> str:
    return (_EPOCH + _dt.timedelta(microseconds=int(us))).isoformat()


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
        if returns not in _RETURNS:
            raise InputError(f"returns must be one of {_RETURNS}, got {returns!r}")
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
        # A state built by rfm()'s sorted fast path keeps no day set and cannot take more events.
        self._sealed = False
        self._lock = threading.RLock()
        self.report = {
            "rows_read": 0,
            "null_customer_rows_dropped": 0,
            "rows_after_as_of": 0,
            "return_rows": 0,
            "return_rows_excluded": 0,
        }

    # -- feeding ----------------------------------------------------------------------------
    def update(self, data, *, batch_size: int | None = None,
               progress: Callable[[int], None] | None = None) -> "RFMState":
        """Fold new events into the state. ``data`` is any input :func:`open_source` accepts.

        Returns ``self``. Streams are read batch by batch (memory is bounded by the batch size
        plus the state); ``progress`` is called with the number of rows read after each batch.
        """
        source = open_source(data)
        roles = source.require(self.columns)
        self._check_types(source.schema, roles)
        for batch in source.batches(list(roles.values()), batch_size=batch_size):
            self._update_batch(batch)
            if progress is not None:
                progress(self.report["rows_read"])
        return self

    def _check_types(self, schema: pa.Schema, roles: dict) -> None:
        # Fail on a wrong column type before reading any batch of a long stream.
        from ._ids import id_kind

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

    def _prepare(self, batch: pa.RecordBatch):
        """Validate and convert one batch to kernel arrays (customers not yet encoded)."""
        cols = self.columns
        cust = batch.column(cols["customer"])
        n_null = cust.null_count
        if n_null:
            if not self.drop_null_customers:
                first = self.report["rows_read"]
                raise InputError(
                    f"customer column {cols['customer']!r} has {n_null} null value(s) in rows "
                    f"{first + 1:,}..{first + batch.num_rows:,}; pass drop_null_customers=True to "
                    "drop those rows (the count is reported)"
                )
            batch = batch.filter(pc.is_valid(cust))
        times = time_to_us(batch.column(cols["time"]), cols["time"])
        amounts = amount_to_float64(batch.column(cols["amount"]), cols["amount"])
        return batch, n_null, times, amounts

    def _update_batch(self, batch: pa.RecordBatch, *, one_shot: bool = False) -> None:
        """Fold one batch. ``one_shot`` (rfm() on a whole in-memory table) allows the sorted fast
        path, which keeps no day set and therefore seals the state against further events."""
        if self._sealed:
            raise InputError("this RFM state was built by a one-shot fast path and cannot take more events")
        cols = self.columns
        with self._lock:
            n_rows = batch.num_rows
            batch, n_null, times, amounts = self._prepare(batch)
            # Detected, never assumed: with non-decreasing times each customer's days arrive in
            # order, so a new day is simply a day different from the customer's latest one.
            days_sorted = one_shot and bool(np.all(times[1:] >= times[:-1]))
            limit = self.limit_us if self.limit_us is not None else _k.INT64_MAX
            if self.returns == "error":
                n_ret = int(np.count_nonzero((amounts < 0) & (times <= limit)))
                if n_ret:
                    raise InputError(
                        f"amount column {cols['amount']!r} has {n_ret} negative value(s) (returns) "
                        "and returns='error'; use returns='net' or 'exclude'"
                    )
            if self.orders is not None:
                order_codes = self.orders.encode(batch.column(cols["order"]))
            else:
                order_codes = np.empty(0, dtype=np.int64)
            codes = self.customers.encode(batch.column(cols["customer"]))
            self._grow_state(len(self.customers))
            m = len(codes)
            if not days_sorted:
                self._day_set = _pairset.grow_for(self._day_set, self._day_keys, m)
            if self.orders is not None:
                self._order_set = _pairset.grow_for(self._order_set, self._order_keys, m)
            n_after, n_returns, day_added, order_added = _k.update(
                self._state, codes, times, amounts, order_codes, self.orders is not None,
                limit, self.returns == "exclude", self._day_set, self._order_set, days_sorted)
            self._day_keys += day_added
            self._order_keys += order_added
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
            if days_sorted:
                self._sealed = True

    def _grow_state(self, n: int) -> None:
        old = self._state
        if n <= len(old):
            return
        new = _k.new_state(max(n, 2 * len(old)))
        new[: len(old)] = old
        self._state = new

    # -- combining --------------------------------------------------------------------------
    def merge(self, other: "RFMState") -> "RFMState":
        """Fold ``other`` (same columns and settings) into this state; returns ``self``.

        The result equals one state fed with both inputs, in any split and any order.
        """
        if not isinstance(other, RFMState):
            raise TypeError("can only merge another RFMState")
        if (other.columns, other.returns, other.limit_us) != (self.columns, self.returns, self.limit_us):
            raise InputError("cannot merge RFM states with different columns, returns or as_of settings")
        if self._sealed or other._sealed:
            raise InputError("cannot merge a state built by a one-shot fast path")
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
                    f"as_of={_iso(as_of_us)} is before events the state already holds "
                    f"(latest {_iso(latest_held)}); create the state with as_of= to cut earlier"
                )
            n = len(self.customers)
            state = self._state[:n]
            (codes, first, last, recency, tenure, frequency, days, total,
             mean) = _k.finalize(state, as_of_us, self.returns == "net", self.orders is None)
            r = _k.quintile_scores(recency, False)
            f = _k.quintile_scores(frequency, True)
            m = _k.quintile_scores(total, True)
            names, seg_table = compile_segments(segments)
            seg = _k.lookup_segments(r, f, m, seg_table)
            ids = self.customers.decode(codes)
            order = pc.sort_indices(ids)
            columns = [ids, pa.array(first).cast(_TS), pa.array(last).cast(_TS), recency, tenure,
                       frequency, days, total, mean, r, f, m,
                       pa.array(names, pa.string()).take(pa.array(seg))]
            table = pa.Table.from_arrays(
                [pa.array(c) if isinstance(c, np.ndarray) else c for c in columns],
                names=[self.columns["customer"], *RFM_COLUMNS],
            ).take(order)
            report = dict(self.report)
            report.update(
                as_of=_iso(as_of_us),
                customers=int(len(codes)),
                customers_without_purchase=int(n - len(codes)),
                returns=self.returns,
            )
            log.info("fastengage.rfm: %s", json.dumps(report))
            return table.replace_schema_metadata({"fastengage": json.dumps(report)})

    def _latest_held_us(self) -> int | None:
        if self.limit_us is not None:
            return None  # events after the cut were never folded in
        return self._max_time_us

    # -- persistence ------------------------------------------------------------------------
    def save(self, path) -> None:
        """Save to a fastengage bundle (ZIP of JSON + .npy + Arrow IPC; never pickle).

        Layout (version 1): ``meta.json`` with the settings and report; arrays ``state``
        (structured, see ``fastengage.kernels.rfm.STATE_DTYPE``), ``day_pairs`` and
        ``order_pairs`` (int64 pair keys ``customer_code << 32 | value``); tables ``customers``
        and ``orders`` (ids in code order, original Arrow type).
        """
        if self._sealed:
            raise InputError("a state built by a one-shot fast path cannot be saved")
        with self._lock:
            n = len(self.customers)
            meta = {
                "columns": self.columns, "returns": self.returns,
                "drop_null_customers": self.drop_null_customers, "limit_us": self.limit_us,
                "max_time_us": self._max_time_us, "report": self.report,
            }
            tables = {"customers": pa.table({"id": self.customers.ids()})}
            if self.orders is not None:
                tables["orders"] = pa.table({"id": self.orders.ids()})
            save_bundle(path, "RFMState", _STATE_VERSION, meta,
                        arrays={"state": self._state[:n],
                                "day_pairs": _pairset.occupied(self._day_set),
                                "order_pairs": _pairset.occupied(self._order_set)},
                        tables=tables)

    @classmethod
    def load(cls, path) -> "RFMState":
        """Load a state written by :meth:`save`."""
        bundle = load_bundle(path, "RFMState", _STATE_VERSION)
        meta = bundle.meta
        try:
            cols = meta["columns"]
            self = cls(customer=cols["customer"], time=cols["time"], amount=cols["amount"],
                       order=cols["order"], returns=meta["returns"],
                       drop_null_customers=meta["drop_null_customers"])
            self.limit_us = meta["limit_us"]
            self._max_time_us = meta["max_time_us"]
            self.report = {k: int(v) for k, v in meta["report"].items()}
        except (KeyError, TypeError) as exc:
            raise ModelFormatError(f"RFMState file has incomplete metadata: {exc}") from exc
        state = bundle.array("state")
        if state.dtype != _k.STATE_DTYPE:
            raise ModelFormatError("RFMState file: state array has an unexpected layout")
        self.customers = IdEncoder.from_arrow(bundle.table("customers").column("id").combine_chunks(),
                                              cols["customer"], "customer")
        if len(self.customers) != len(state):
            raise ModelFormatError("RFMState file: customer ids and state rows disagree")
        if self.orders is not None:
            self.orders = IdEncoder.from_arrow(bundle.table("orders").column("id").combine_chunks(),
                                               cols["order"], "order")
        self._state = state.copy()
        day_keys, order_keys = bundle.array("day_pairs"), bundle.array("order_pairs")
        self._day_set = _rebuild_set(day_keys)
        self._order_set = _rebuild_set(order_keys)
        self._day_keys, self._order_keys = len(day_keys), len(order_keys)
        return self


def _rebuild_set(keys: np.ndarray) -> np.ndarray:
    table = np.full(_pairset.capacity_for(len(keys)), _pairset.EMPTY, dtype=np.int64)
    if len(keys):
        table = _pairset.rehash(np.ascontiguousarray(keys, dtype=np.int64), len(table))
    return table


def rfm(data, *, customer: str, time: str, amount: str, order: str | None = None, as_of=None,
        returns: str = "net", drop_null_customers: bool = False,
        segments: SegmentMap | None = None, batch_size: int | None = None,
        progress: Callable[[int], None] | None = None) -> pa.Table:
    """RFM features per customer, point in time.

    Parameters
    ----------
    data : Arrow table, record batch, reader, dataset, Parquet path, or ``__arrow_c_stream__``
        One row per transaction line. Streams and datasets are read batch by batch.
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
        Rows per batch when streaming.
    progress : callable(rows_read), optional

    Returns
    -------
    pyarrow.Table
        One row per customer with at least one purchase, sorted by customer id, with the
        customer column (user's name and type) followed by :data:`RFM_COLUMNS`; schema metadata
        ``b"fastengage"`` holds the JSON report of counts (rows read, dropped, after as_of,
        returns, customers without purchase).

    Raises
    ------
    InputError
        Unknown column (listing the available ones), wrong type, null ids, null or NaN amounts,
        null times, empty input, or returns present with ``returns="error"``.
    """
    state = RFMState(customer=customer, time=time, amount=amount, order=order, as_of=as_of,
                     returns=returns, drop_null_customers=drop_null_customers)
    source = open_source(data)
    if source.is_in_memory and batch_size is None:
        _rfm_in_memory(state, source)
        if progress is not None:
            progress(state.report["rows_read"])
    else:
        state.update(source, batch_size=batch_size, progress=progress)
        if state.report["rows_read"] == 0:
            raise InputError("the input is empty: no rows to compute features from")
    return state.to_table(as_of, segments=segments)


def _rfm_in_memory(state: RFMState, source: Source) -> None:
    """One pass over a whole in-memory table (one combined batch)."""
    roles = source.require(state.columns)
    state._check_types(source.schema, roles)
    batches = [b for b in source.batches(list(roles.values())) if b.num_rows]
    if not batches:
        raise InputError("the input is empty: no rows to compute features from")
    for batch in batches:
        state._update_batch(batch, one_shot=len(batches) == 1)
