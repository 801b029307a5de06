"""Consent filtering: keep only the events of customers who had consent for a purpose at the
event's time (a point-in-time join against a consent table), and report what was excluded.

The consent table has one row per consent record:

=============  =====================================================================
customer       the customer id (same kind -- integer or string -- as the events')
purpose        the purpose the record is about (string, e.g. ``"marketing"``)
status         ``"granted"`` / ``"withdrawn"`` (strings) or a boolean (true = granted)
valid_from     timestamp or date: the record applies from this instant (null: always)
valid_to       timestamp or date: ... until this instant, exclusive (null: open-ended)
=============  =====================================================================

Column names are the above by default (``customer`` defaults to the events' ``customer=``
name); ``consent_columns={"status": "state", ...}`` renames any of them.
"""
from __future__ import annotations

import json
import threading
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .._io.ids import IdEncoder, cast_ids, common_int_type, id_kind
from .._io.sources import open_source, time_to_us
from .._io.times import iso, parse_time
from ..errors import InputError
from ..kernels.privacy import consent as kern

__all__ = ["consented", "ConsentResult", "ConsentFilter", "REASONS"]

#: Row outcomes, in the order of the kernel's codes.
REASONS = ("kept", "no_consent", "withdrawn", "not_consented_as_of")
_ROLES = ("customer", "purpose", "status", "valid_from", "valid_to")
_INT64_MIN, _INT64_MAX = np.iinfo(np.int64).min, np.iinfo(np.int64).max


class ConsentResult(NamedTuple):
    """``(data, report)``: the kept rows (``pyarrow.Table``, input columns and order) and one
    report row per outcome: ``reason``, ``rows``, ``customers`` (customers with at least one row
    of that outcome). The report's metadata also holds ``customers_fully_excluded``."""

    data: pa.Table
    report: pa.Table


def _status_granted(array: pa.Array, column: str) -> np.ndarray:
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if array.null_count:
        raise InputError(f"consent column {column!r} has {array.null_count} null value(s)")
    if pa.types.is_boolean(array.type):
        return array.to_numpy(zero_copy_only=False).astype(np.bool_)
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    if not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)
            or pa.types.is_string_view(array.type)):
        raise InputError(f"consent column {column!r} has type {array.type}; expected "
                         "'granted'/'withdrawn' strings or booleans")
    lowered = pc.utf8_lower(array.cast(pa.large_string()))
    granted = pc.equal(lowered, "granted").to_numpy(zero_copy_only=False)
    withdrawn = pc.equal(lowered, "withdrawn").to_numpy(zero_copy_only=False)
    bad = ~(granted | withdrawn)
    if bad.any():
        values = pc.unique(array.filter(pa.array(bad))).to_pylist()[:5]
        raise InputError(f"consent column {column!r} has values {values}; expected 'granted' "
                         "or 'withdrawn'")
    return granted


def _bound_times(array: pa.Array, column: str, fill: int) -> np.ndarray:
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if pa.types.is_null(array.type):
        return np.full(len(array), fill, np.int64)
    valid = array.is_valid().to_numpy(zero_copy_only=False)
    filled = array.filter(array.is_valid())
    out = np.full(len(array), fill, np.int64)
    out[valid] = time_to_us(filled, f"consent {column}")
    return out


def _shared_id_type(consent_type, data_type, consent_column: str, data_column: str):
    """The integer type both tables' customer ids are coded in when their types differ (None:
    no cast needed; the id map unifies string types itself). Strings beside integers is an
    error naming both columns."""
    have = id_kind(consent_type, consent_column, "consent customer")
    want = id_kind(data_type, data_column, "customer")
    if have != want:
        kinds = {"int": "integers", "str": "strings"}
        raise InputError(f"the consent table's customer column {consent_column!r} "
                         f"({consent_type}) holds {kinds[have]} but the data's {data_column!r} "
                         f"({data_type}) holds {kinds[want]}; cast one of them")
    if have == "str":
        return None
    a, b = (t.value_type if pa.types.is_dictionary(t) else t for t in (consent_type, data_type))
    return None if a == b else common_int_type(a, b)


def _as_id_type(array, typ, label: str):
    if typ is None:
        return array
    return cast_ids(array, typ, label, "the other table's customer ids")


def _filter_rows(batch: pa.RecordBatch, keep: pa.Array) -> pa.RecordBatch:
    """``batch.filter(keep)``, also for string_view / binary_view columns (Arrow has no filter
    kernel for them: they are filtered as large_string / large_binary and cast back)."""
    views = {i: f.type for i, f in enumerate(batch.schema)
             if pa.types.is_string_view(f.type) or pa.types.is_binary_view(f.type)}
    if not views:
        return batch.filter(keep)
    columns = [c.cast(pa.large_string() if pa.types.is_string_view(views[i]) else pa.large_binary())
               if i in views else c for i, c in enumerate(batch.columns)]
    kept = pa.RecordBatch.from_arrays(columns, names=batch.schema.names).filter(keep)
    columns = [c.cast(views[i]) if i in views else c for i, c in enumerate(kept.columns)]
    return pa.RecordBatch.from_arrays(columns, schema=batch.schema)


def _consent_timelines(consents, purpose: str, names: dict, as_of_us, encoder: IdEncoder,
                       data_type, data_column: str):
    """Encode the consent customers and build their timelines for ``purpose``; returns them
    and the id type the data's customer ids are to be cast to (None: none)."""
    source = open_source(consents)
    source.require({f"consent {role}": names[role] for role in _ROLES})
    shared = _shared_id_type(source.schema.field(names["customer"]).type, data_type,
                             names["customer"], data_column)
    table = pa.Table.from_batches(list(source.batches([names[r] for r in _ROLES])),
                                  schema=pa.schema([source.schema.field(names[r])
                                                    for r in dict.fromkeys(_ROLES)]))
    purposes = table.column(names["purpose"])
    if not (pa.types.is_string(purposes.type) or pa.types.is_large_string(purposes.type)
            or pa.types.is_dictionary(purposes.type) or pa.types.is_string_view(purposes.type)):
        raise InputError(f"consent column {names['purpose']!r} has type {purposes.type}; "
                         "expected strings")
    table = table.filter(pc.fill_null(pc.equal(purposes.cast(pa.large_string()), purpose), False))
    valid_from = _bound_times(table.column(names["valid_from"]), names["valid_from"], _INT64_MIN)
    valid_to = _bound_times(table.column(names["valid_to"]), names["valid_to"], _INT64_MAX)
    granted = _status_granted(table.column(names["status"]), names["status"])
    codes = encoder.encode(_as_id_type(table.column(names["customer"]), shared,
                                       f"consent customer column {names['customer']!r}"))
    known = valid_from <= as_of_us if as_of_us is not None else np.ones(len(codes), np.bool_)
    empty = valid_from >= valid_to
    if empty.any():
        raise InputError(f"consent table: {int(empty.sum())} record(s) have valid_from >= "
                         f"valid_to ({names['valid_from']!r}, {names['valid_to']!r})")
    codes, valid_from, valid_to, granted = codes[known], valid_from[known], valid_to[known], \
        granted[known]
    order = np.lexsort((valid_from, codes))
    rec_start = np.zeros(len(encoder) + 1, np.int64)
    np.cumsum(np.bincount(codes, minlength=len(encoder)), out=rec_start[1:])
    return kern.consent_timeline(rec_start, np.ascontiguousarray(valid_from[order]),
                                 np.ascontiguousarray(valid_to[order]),
                                 np.ascontiguousarray(granted[order])), shared


def consented(data, consents, *, customer: str, time: str | None, purpose: str, as_of=None,
              consent_columns: dict | None = None, n_threads: int | None = None,
              batch_size: int | None = None) -> ConsentResult:
    """Keep the rows whose customer had consent for ``purpose`` at the row's time.

    Parameters
    ----------
    data : any fastengage input (Table, batches, reader, Parquet path/dataset, polars, ...);
        streamed batch by batch, only kept rows are held.
    consents : the consent table (see the module docstring), any input.
    customer, time : event column names (``time`` a timestamp or date column). ``time=None``
        (inputs without event times, such as feature tables to score) judges every row at
        ``as_of``, which must then be given.
    purpose : str
        The purpose the data will be used for; only records of this purpose count.
    as_of : time, optional
        When the data is processed. Consent records starting after it are ignored (point in
        time), and rows are kept only if consent also holds at ``as_of`` (a customer who has
        since withdrawn is excluded: "not_consented_as_of").
    consent_columns : dict, optional
        Names of the consent table's columns, by role (``customer``, ``purpose``, ``status``,
        ``valid_from``, ``valid_to``).

    Returns
    -------
    ConsentResult ``(data, report)``.
    """
    if not isinstance(purpose, str) or not purpose:
        raise InputError("purpose= must be a non-empty string")
    names = {"customer": customer, "purpose": "purpose", "status": "status",
             "valid_from": "valid_from", "valid_to": "valid_to"}
    unknown = set(consent_columns or {}) - set(names)
    if unknown:
        raise InputError(f"consent_columns has unknown role(s) {sorted(unknown)}; roles are "
                         + ", ".join(_ROLES))
    names.update(consent_columns or {})
    as_of_us = parse_time(as_of, "as_of", optional=True)
    if time is None and as_of_us is None:
        raise InputError("consent without a time column needs as_of= (the instant at which "
                         "every row's consent is judged)")
    source = open_source(data)
    roles = source.require({"customer": customer, "time": time})
    encoder = IdEncoder(names["customer"], "customer")
    (seg_start, seg_time, seg_state), shared = _consent_timelines(
        consents, purpose, names, as_of_us, encoder, source.schema.field(roles["customer"]).type,
        roles["customer"])
    kept_batches, row_counts = [], np.zeros(len(REASONS), np.int64)
    flags = np.zeros(0, np.uint8)
    for batch in source.batches(source.schema.names, batch_size=batch_size):
        codes = encoder.encode(_as_id_type(batch.column(roles["customer"]), shared,
                                           f"customer column {roles['customer']!r}"))
        times = (time_to_us(batch.column(roles["time"]), roles["time"]) if time is not None
                 else np.full(batch.num_rows, as_of_us, np.int64))
        reasons = np.empty(batch.num_rows, np.int8)
        kern.consent_reasons(seg_start, seg_time, seg_state, codes, times,
                             as_of_us is not None, as_of_us or 0, reasons, n_threads=n_threads)
        if flags.size < len(encoder):
            flags = np.concatenate([flags, np.zeros(len(encoder) - flags.size, np.uint8)])
        kern.mark_customers(codes, reasons, flags)
        row_counts += np.bincount(reasons, minlength=len(REASONS))
        kept_batches.append(_filter_rows(batch, pa.array(reasons == kern.KEPT)))
    kept = pa.Table.from_batches(kept_batches, schema=source.schema)
    seen = flags != 0
    customer_counts = [int(np.count_nonzero(flags & (1 << r))) for r in range(len(REASONS))]
    fully_excluded = int(np.count_nonzero(seen & (flags & 1 == 0)))
    meta = {"purpose": purpose, "as_of": None if as_of_us is None else iso(as_of_us),
            "rows": int(row_counts.sum()), "customers": int(seen.sum()),
            "customers_fully_excluded": fully_excluded}
    report = pa.table({"reason": list(REASONS), "rows": row_counts,
                       "customers": pa.array(customer_counts, pa.int64())},
                      metadata={b"fastengage.privacy.consent": json.dumps(meta).encode()})
    return ConsentResult(kept, report)


class ConsentFilter:
    """A consent rule to hand to other entry points (their ``consent=`` argument).

    ``ConsentFilter(consents, purpose="analytics", as_of=...)`` holds the consent table and the
    purpose; an entry point that accepts ``consent=`` calls
    ``data = consent.apply(data, customer=..., time=...).data`` before anything else, so that
    features, models and scores are built on consented rows only (the report of what was
    excluded is in ``.apply(...).report``, and, after an entry point's ``consent=`` used it, in
    :attr:`last_report` of the thread that made the call).
    """

    def __init__(self, consents, *, purpose: str, as_of=None,
                 consent_columns: dict | None = None):
        if not isinstance(purpose, str) or not purpose:
            raise InputError("purpose= must be a non-empty string")
        self.consents = consents
        self.purpose = purpose
        self.as_of = as_of
        self.consent_columns = dict(consent_columns or {})
        self._local = threading.local()

    def apply(self, data, *, customer: str, time: str | None, n_threads: int | None = None,
              batch_size: int | None = None) -> ConsentResult:
        """:func:`consented` of ``data`` with this filter's table, purpose and ``as_of``."""
        result = consented(data, self.consents, customer=customer, time=time,
                           purpose=self.purpose, as_of=self.as_of,
                           consent_columns=self.consent_columns, n_threads=n_threads,
                           batch_size=batch_size)
        self._local.report = result.report
        return result

    @property
    def last_report(self) -> pa.Table | None:
        """The exclusion report of this thread's last :meth:`apply` (None before any)."""
        return getattr(self._local, "report", None)

    def __repr__(self) -> str:
        return f"ConsentFilter(purpose={self.purpose!r}, as_of={self.as_of!r})"
