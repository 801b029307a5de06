"""Forgetting a customer everywhere (GDPR Art. 17): the protocol every stateful object follows.

The protocol
============

An object that holds per-customer data (ids, events, aggregates, factors, profiles) implements::

    def forget(self, customers, *, request: str | None = None) -> AuditRecord

and, when it returns,

1. holds no trace of the forgotten customers: not their ids (the id map is rebuilt without
   them, see :func:`drop_ids`), not their events or aggregates, not any per-customer output;
   saving it and searching the saved bytes for the ids finds nothing (:func:`find_traces`);
2. for everything that is exact, is equal to the same object built without those customers
   (tests compare ``forget`` against a rebuild on the filtered data); whatever stays
   approximate (e.g. item factors of a BPR model still carry the gradient steps the customer
   contributed) is said in ``AuditRecord.notes`` and ``exact=False``;
3. returns an :class:`AuditRecord` (what kind of object, counts, when, exact or not) and
   changes nothing else. Unknown customers are not an error: they are counted in
   ``customers_requested`` but not in ``customers_found``.

``customers`` may be one id (int or str) or many (list, NumPy array, pyarrow Array); use
:func:`as_id_array` to normalise them against the object's id type.

Helpers for implementers
========================

* :func:`as_id_array(customers, id_type)` -> a null-free, de-duplicated ``pyarrow.Array`` of
  the object's id type (raises :class:`~fastengage.errors.InputError` on a type mismatch,
  integers against text or the reverse; integers the object's integer type cannot hold are left
  out: no such customer there, so ``forget_everywhere`` goes on to the next object).
* :func:`count_requested(customers)` -> how many distinct ids were requested (the record's
  ``customers_requested``, the same for every object).
* :func:`codes_of(encoder, customers)` -> the codes (int64) an :class:`IdEncoder` gave to those
  that it knows, and how many were requested.
* :func:`drop_ids(encoder, codes)` -> ``(new_encoder, remap)``: an encoder holding every other
  id in the same order, and ``remap[old_code]`` = new code or -1. Index per-customer arrays with
  ``keep = remap >= 0`` (``array[keep]`` keeps the order, so new code i is the i-th kept row)
  and rewrite stored codes with ``remap[codes]``.
* :func:`audit(...)` -> an :class:`AuditRecord`; ``record.append_to(path)`` adds it as one JSON
  line to an audit log; :func:`read_log(path)` reads a log back.
* :func:`forget_everywhere(objects, customers, request=...)` calls ``forget`` on each object and
  returns their records; :func:`forget_rows` is ``forget`` for raw Arrow data (the event log
  itself).
* :func:`find_traces(saved, customers)`: the test helper that searches a saved file (bundle ZIP
  members decompressed, or any bytes) for the ids' byte forms.

What an audit record never holds: the forgotten ids (a log of erased ids would itself be
personal data). Use ``request=`` to link a record to the erasure request (a ticket number).
"""
from __future__ import annotations

import datetime as _dt
import io
import json
import os
import uuid
import zipfile
from dataclasses import asdict, dataclass, field
from typing import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .._io.ids import IdEncoder
from .._io.sources import open_source
from ..errors import InputError
from .consent import _filter_rows

__all__ = ["AuditRecord", "audit", "as_id_array", "codes_of", "count_requested", "drop_ids",
           "read_log", "forget_everywhere", "forget_rows", "find_traces"]


@dataclass(frozen=True)
class AuditRecord:
    """What one ``forget`` call did. JSON-serialisable; never contains the forgotten ids.

    Attributes
    ----------
    object : str       kind of object (``"RFMState"``, ``"ALS"``, ``"table"``, ...)
    customers_requested : int   distinct ids asked to be forgotten
    customers_found : int       of those, how many the object held
    rows_removed : int          events/interactions/rows removed (0 if the object keeps none)
    exact : bool       True if the object now equals one built without these customers
    notes : str        what stays approximate, or how it was made exact
    details : dict     object-specific counts (e.g. ``{"item_factors": "re-solved"}``)
    request : str or None   the caller's reference for the erasure request
    time : str         ISO 8601 UTC time of the call
    record_id : str    random id of this record
    """

    object: str
    customers_requested: int
    customers_found: int
    rows_removed: int
    exact: bool
    notes: str = ""
    details: dict = field(default_factory=dict)
    request: str | None = None
    time: str = ""
    record_id: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    def append_to(self, path: str | os.PathLike) -> None:
        """Append this record as one JSON line to ``path`` (created if missing), flushed and
        fsync'ed so an erasure is on disk when the call returns."""
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(self.to_json() + "\n")
            fh.flush()
            os.fsync(fh.fileno())


def audit(object: str, *, requested: int, found: int, rows_removed: int = 0,
          exact: bool = True, notes: str = "", request: str | None = None,
          **details) -> AuditRecord:
    """An :class:`AuditRecord` stamped with the current UTC time and a random record id."""
    return AuditRecord(object=object, customers_requested=int(requested),
                       customers_found=int(found), rows_removed=int(rows_removed),
                       exact=bool(exact), notes=notes, details=dict(details), request=request,
                       time=_dt.datetime.now(_dt.timezone.utc).isoformat(),
                       record_id=uuid.uuid4().hex)


def read_log(path: str | os.PathLike) -> list[AuditRecord]:
    """The records of a JSON-lines audit log, in order."""
    with open(path, encoding="utf-8") as fh:
        return [AuditRecord(**json.loads(line)) for line in fh if line.strip()]


def as_id_array(customers, id_type: pa.DataType | None = None) -> pa.Array:
    """``customers`` (one id or many) as a de-duplicated Arrow array, cast to ``id_type``."""
    if isinstance(customers, (str, bytes, int, np.integer)):
        customers = [customers]
    if isinstance(customers, pa.ChunkedArray):
        customers = customers.combine_chunks()
    array = customers if isinstance(customers, pa.Array) else _python_ids(
        customers.tolist() if isinstance(customers, np.ndarray) else list(customers), id_type)
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    if array.null_count:
        raise InputError(f"customers to forget include {array.null_count} null(s)")
    if id_type is not None:
        value_type = id_type.value_type if pa.types.is_dictionary(id_type) else id_type
        if pa.types.is_string_view(value_type):
            value_type = pa.large_string()
        same_kind = (pa.types.is_integer(array.type) and pa.types.is_integer(value_type)) or (
            _is_text(array.type) and _is_text(value_type)) or pa.types.is_null(array.type)
        if not same_kind:
            raise InputError(f"customers to forget are {array.type} but the object's ids are "
                             f"{value_type}")
        if pa.types.is_integer(array.type) and pa.types.is_integer(value_type):
            # an id outside the object's integer type cannot be one of its customers: not
            # found there, rather than an error that would stop forget_everywhere midway
            array = array.filter(pa.array(_fits(array, value_type)))
        try:
            array = array.cast(value_type)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise InputError(f"customers to forget do not fit the id type {value_type}: {exc}") \
                from exc
    return pc.unique(array)


def _fits(array: pa.Array, typ: pa.DataType) -> np.ndarray:
    """Which integer ids of ``array`` the integer type ``typ`` can hold."""
    values = array.to_numpy(zero_copy_only=False)
    bounds = np.iinfo(typ.to_pandas_dtype())
    if values.dtype == np.uint64:
        return values <= np.uint64(min(bounds.max, 2**64 - 1))
    values = values.astype(np.int64, copy=False)
    return (values >= max(bounds.min, -2**63)) & (values <= min(bounds.max, 2**63 - 1))


def count_requested(customers) -> int:
    """How many distinct ids ``customers`` names (an audit record's ``customers_requested``),
    whatever the type of the object they are forgotten from."""
    if isinstance(customers, (str, bytes, int, np.integer)):
        return 1
    if isinstance(customers, (pa.Array, pa.ChunkedArray)):
        return len(pc.unique(customers.cast(customers.type.value_type)
                             if pa.types.is_dictionary(customers.type) else customers))
    values = customers.tolist() if isinstance(customers, np.ndarray) else list(customers)
    return len(set(values))


def _python_ids(values: list, id_type: pa.DataType | None = None) -> pa.Array:
    """Python ids as an Arrow array; integers past int64 (uint64 ids) as uint64. With an
    integer ``id_type``, integers it cannot hold are left out (no such customer there)."""
    value_type = id_type.value_type if id_type is not None and pa.types.is_dictionary(
        id_type) else id_type
    if (value_type is not None and pa.types.is_integer(value_type) and values
            and all(isinstance(v, int) and not isinstance(v, bool) for v in values)):
        bounds = np.iinfo(value_type.to_pandas_dtype())
        return pa.array([v for v in values if bounds.min <= v <= bounds.max], value_type)
    try:
        return pa.array(values)
    except OverflowError:
        try:
            return pa.array(values, pa.uint64())
        except (OverflowError, pa.ArrowException):
            raise InputError("customers to forget hold integers that fit neither int64 nor "
                             "uint64") from None


def _is_text(typ: pa.DataType) -> bool:
    return (pa.types.is_string(typ) or pa.types.is_large_string(typ)
            or pa.types.is_string_view(typ))


def codes_of(encoder: IdEncoder, customers) -> tuple[np.ndarray, int]:
    """(codes of the known ones, number requested) for ``customers`` in ``encoder``."""
    ids = as_id_array(customers, encoder.type)
    requested = count_requested(customers)  # ids the type cannot hold count as requested
    if len(encoder) == 0 or len(ids) == 0:
        return np.zeros(0, np.int64), requested
    codes = encoder.lookup(ids)
    return codes[codes >= 0], requested


def drop_ids(encoder: IdEncoder, codes: np.ndarray) -> tuple[IdEncoder, np.ndarray]:
    """A new encoder without the ids of ``codes`` (others keep their relative order) and the
    ``remap`` from old codes to new ones (-1 for dropped). The old encoder is left unchanged
    (drop references to it: its map still holds the ids)."""
    n = len(encoder)
    keep = np.ones(n, np.bool_)
    keep[np.asarray(codes, np.int64)] = False
    remap = np.full(n, -1, np.int64)
    remap[keep] = np.arange(int(keep.sum()), dtype=np.int64)
    new = IdEncoder(encoder.column, encoder.role)
    if n:
        ids = encoder.ids()
        kept = ids.filter(pa.array(keep))
        if len(kept):
            new.encode(kept)
        else:
            new._bind(encoder.input_type or ids.type)
        # ids() gives the value type (large_string for string_view): keep the types the user's
        # ids came in (dictionary included), as the original encoder reports them on output
        new.type, new.input_type = encoder.type, encoder.input_type
    return new, remap


def forget_everywhere(objects: Iterable, customers, *, request: str | None = None,
                      log: str | os.PathLike | None = None) -> list[AuditRecord]:
    """``obj.forget(customers, request=request)`` for every object, in order; every record is
    appended to ``log`` when given. Objects without a ``forget`` method raise TypeError before
    anything is changed."""
    objects = list(objects)
    missing = [type(o).__name__ for o in objects if not callable(getattr(o, "forget", None))]
    if missing:
        raise TypeError(f"these objects cannot forget a customer: {', '.join(missing)}")
    records = [obj.forget(customers, request=request) for obj in objects]
    if log is not None:
        for record in records:
            record.append_to(log)
    return records


def forget_rows(data, customers, *, customer: str, request: str | None = None):
    """Remove every row of ``customers`` from Arrow data (the event log, a feature table, ...).

    Returns ``(table, AuditRecord)``; the table holds every other row in order, with the input's
    schema. ``data`` is any fastengage input (streamed; only kept rows are held).
    """
    source = open_source(data)
    column = source.require({"customer": customer})["customer"]
    ids = as_id_array(customers, source.schema.field(column).type)
    kept, removed, found = [], 0, set()
    for batch in source.batches(source.schema.names):
        values = batch.column(column)
        value_type = values.type.value_type if pa.types.is_dictionary(values.type) else values.type
        if pa.types.is_string_view(value_type):  # Arrow has no is_in/filter for string_view
            values = (pa.DictionaryArray.from_arrays(values.indices,
                                                     values.dictionary.cast(pa.large_string()))
                      if pa.types.is_dictionary(values.type) else values.cast(pa.large_string()))
        hit = pc.is_in(values, value_set=ids)
        hit = pc.fill_null(hit, False)
        n_hit = pc.sum(hit).as_py() or 0
        if n_hit:
            removed += n_hit
            found.update(pc.unique(values.filter(hit)).to_pylist())
            batch = _filter_rows(batch, pc.invert(hit))
        kept.append(batch)
    table = pa.Table.from_batches(kept, schema=source.schema)
    return table, audit("table", requested=count_requested(customers), found=len(found),
                        rows_removed=removed,
                        exact=True, notes="rows removed", request=request)


def _byte_forms(customer) -> list[bytes]:
    if isinstance(customer, (int, np.integer)):
        v = int(customer)
        forms = [str(v).encode()]
        if -2**63 <= v < 2**64:
            forms.append((v % 2**64).to_bytes(8, "little"))
            forms.append((v % 2**64).to_bytes(8, "big"))
        return forms
    if isinstance(customer, bytes):
        return [customer]
    return [str(customer).encode("utf-8")]


def find_traces(saved, customers) -> list[tuple[str, object]]:
    """Where the ids of ``customers`` appear in ``saved`` (a path, bytes or file object).

    ZIP archives (fastengage bundles) are searched member by member, decompressed. Each string
    id is searched as UTF-8; each integer id as decimal text and as 8-byte little- and big-
    endian integers. Returns ``[(member, customer), ...]``; empty means no trace found. Choose
    distinctive ids in tests (long strings, large random integers): a small integer's bytes
    occur in any numeric array by chance.
    """
    if isinstance(saved, (str, os.PathLike)):
        with open(saved, "rb") as fh:
            raw = fh.read()
    elif isinstance(saved, (bytes, bytearray, memoryview)):
        raw = bytes(saved)
    else:
        raw = saved.read()
    members = {"": raw}
    if zipfile.is_zipfile(io.BytesIO(raw)):
        with zipfile.ZipFile(io.BytesIO(raw)) as zf:
            members.update({name: zf.read(name) for name in zf.namelist()})
    if isinstance(customers, (str, bytes, int, np.integer)):
        customers = [customers]
    hits = []
    for customer in customers:
        for form in _byte_forms(customer):
            hits.extend((name, customer) for name, blob in members.items() if form in blob)
    return list(dict.fromkeys(hits))
