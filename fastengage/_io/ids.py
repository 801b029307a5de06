"""Dictionary encoding of user ids (customers, items, orders) into dense int64 codes.

An :class:`IdEncoder` lives as long as the model or state that uses it: it is fed batch after
batch, gives every new id the next code, and decodes codes back to the user's own values *and
type* on the way out. The hashing itself is the Cython kernel ``fastengage.kernels.common.idmap``.
"""
from __future__ import annotations

import threading

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import InputError

try:
    from ..kernels.common.idmap import BytesIdMap, Int64IdMap
except ImportError as exc:  # pragma: no cover - exercised only on a broken install
    raise ImportError(
        "fastengage's compiled kernels are missing (fastengage.kernels.common.idmap). Build them with "
        "`pip install -e .` (or `python setup.py build_ext --inplace`) from the source checkout."
    ) from exc

__all__ = ["IdEncoder", "id_kind", "string_buffers", "as_id_type", "common_int_type", "cast_ids"]


def id_kind(typ: pa.DataType, column: str, role: str = "id") -> str:
    """``"int"`` or ``"str"`` for a supported id type; raise InputError for anything else."""
    if pa.types.is_dictionary(typ):
        typ = typ.value_type
    if pa.types.is_integer(typ):
        return "int"
    if pa.types.is_string(typ) or pa.types.is_large_string(typ) or pa.types.is_string_view(typ):
        return "str"
    raise InputError(
        f"{role} column {column!r} has type {typ}; ids must be integers or strings"
        + (" (cast the column, e.g. pyarrow.compute.cast(col, pyarrow.int64()))"
           if pa.types.is_floating(typ) else "")
    )


def string_buffers(array: pa.Array) -> tuple:
    """(offsets, data): NumPy views of a string array's Arrow buffers, no copy.

    ``offsets`` is int32 (``string``) or int64 (``large_string``; ``string_view`` is cast to it),
    ``len(array) + 1`` entries into ``data`` (uint8; one zero byte when there is no data).
    """
    if pa.types.is_string_view(array.type):
        array = array.cast(pa.large_string())
    offset_type = np.int64 if pa.types.is_large_string(array.type) else np.int32
    _, offsets_buf, data_buf = array.buffers()
    start = array.offset
    needed = start + len(array) + 1
    itemsize = np.dtype(offset_type).itemsize
    if offsets_buf is None or offsets_buf.size < needed * itemsize:
        if len(array) == 0:  # some producers give an empty array no offsets at all
            offsets = np.zeros(1, dtype=offset_type)
        else:
            held = 0 if offsets_buf is None else offsets_buf.size
            raise InputError(f"a string column's offsets buffer holds {held} bytes, fewer than "
                             f"its {len(array)} values need")
    else:
        # only the entries in use: a buffer may be longer, and not a multiple of the width
        offsets = np.frombuffer(offsets_buf, dtype=offset_type, count=needed)[start:]
    data = (np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None and data_buf.size
            else np.zeros(1, dtype=np.uint8))
    return offsets, data


def as_id_type(ids: pa.Array | pa.ChunkedArray, typ: pa.DataType) -> pa.Array:
    """Distinct ``ids`` (any order) as the user's id type ``typ``.

    A dictionary type gets every id as its own dictionary entry. Its index type is the user's
    when the ids fit in it, else the narrowest wider signed one: the ids of a stream (or of a
    table's chunks, each with its own dictionary) may outnumber what one chunk's int8 indices
    can address, and failing there would lose a finished result. Arrow casts only strings to
    dictionaries, so the dictionary is built here for integer ids too.
    """
    if isinstance(ids, pa.ChunkedArray):
        ids = ids.combine_chunks()
    if not pa.types.is_dictionary(typ):
        return ids.cast(typ)
    index_type = typ.index_type
    for wider in (index_type, pa.int16(), pa.int32(), pa.int64()):
        addressable = 2 ** (wider.bit_width - pa.types.is_signed_integer(wider))
        if wider.bit_width >= index_type.bit_width and len(ids) <= addressable:
            index_type = wider
            break
    indices = pa.array(np.arange(len(ids), dtype=index_type.to_pandas_dtype()), index_type)
    return pa.DictionaryArray.from_arrays(indices, ids.cast(typ.value_type), ordered=typ.ordered)


def _value_type(typ: pa.DataType) -> pa.DataType:
    return typ.value_type if pa.types.is_dictionary(typ) else typ


def common_int_type(a: pa.DataType, b: pa.DataType) -> pa.DataType:
    """The one integer type two integer id columns (dictionaries by their values) are coded in:
    the wider of two signed or of two unsigned types, else int64 (a uint64 id past 2**63 beside
    signed ids is then refused by :func:`cast_ids`)."""
    a, b = _value_type(a), _value_type(b)
    if a == b:
        return a
    if pa.types.is_signed_integer(a) == pa.types.is_signed_integer(b):
        return a if a.bit_width >= b.bit_width else b
    return pa.int64()


def cast_ids(array: pa.Array | pa.ChunkedArray, typ: pa.DataType, what: str, shared_with: str,
             hint: str = "") -> pa.Array:
    """``array`` (one array, a dictionary decoded) as the integer type ``typ``; ids that do not
    fit are an InputError naming ``what`` and the column whose type it shares."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    if array.type == typ:
        return array
    try:
        return array.cast(typ)
    except pa.ArrowInvalid as exc:
        raise InputError(f"{what} ({array.type}) holds ids that do not fit {typ}, the type "
                         f"shared with {shared_with}: {exc}{hint}") from None


class IdEncoder:
    """Encode ids of one column into dense int64 codes ``0..len(self)-1`` in first-seen order.

    Parameters
    ----------
    column : str
        The user's column name, used in error messages.
    role : str
        What the ids are (``"customer"``, ``"item"``, ``"order"``), used in error messages.

    Notes
    -----
    ``encode`` mutates the map and takes a lock, so one encoder may be shared by threads;
    ``lookup`` and ``decode`` only read it.
    """

    def __init__(self, column: str, role: str = "id"):
        self.column = column
        self.role = role
        self.kind: str | None = None
        self.type: pa.DataType | None = None  # value type (the dictionary's, for dictionary ids)
        self.input_type: pa.DataType | None = None  # as first given, dictionary included
        self._map = None
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return 0 if self._map is None else len(self._map)

    def _bind(self, typ: pa.DataType) -> None:
        kind = id_kind(typ, self.column, self.role)
        if self.kind is None:
            self.kind = kind
            self.type = _value_type(typ)
            self.input_type = typ
            self._map = Int64IdMap() if kind == "int" else BytesIdMap()
        elif kind != self.kind:
            raise InputError(
                f"{self.role} column {self.column!r} changed type from {self.type} to {typ} "
                "between batches"
            )

    def _apply(self, array: pa.Array, insert: bool) -> np.ndarray:
        if isinstance(array, pa.ChunkedArray):
            if pa.types.is_dictionary(array.type) and array.num_chunks > 1:
                # chunk by chunk: their dictionaries may not combine into the index type
                return np.concatenate([self._apply(chunk, insert) for chunk in array.chunks])
            array = array.combine_chunks()
        if array.null_count:
            raise InputError(f"{self.role} column {self.column!r} has {array.null_count} null value(s)")
        if pa.types.is_dictionary(array.type):
            indices = array.indices.to_numpy(zero_copy_only=False)
            dictionary = array.dictionary
            if pa.types.is_string_view(dictionary.type):  # (polars' categoricals) no take kernel
                dictionary = dictionary.cast(pa.large_string())
            # Entries no row uses are no id of the data: they get no code (an unused channel
            # would otherwise become output columns, an unused null a false error).
            used = np.zeros(len(dictionary), np.bool_)
            used[indices] = True
            if not used.all():
                kept = np.flatnonzero(used)
                dict_codes = np.full(len(dictionary), -1, np.int64)
                dict_codes[kept] = self._apply(dictionary.take(pa.array(kept)), insert)
                return dict_codes[indices]
            return self._apply(dictionary, insert)[indices]
        n = len(array)
        out = np.empty(n, dtype=np.int64)
        method = self._map.encode if insert else self._map.lookup
        if self.kind == "int" and array.type != self.type:
            return self._apply_other_int_type(array, insert)
        if self.kind == "int":
            try:
                # uint64 ids past int64's range keep their bits: the map only needs equality.
                values = (array.view(pa.int64()) if pa.types.is_uint64(array.type)
                          else pc.cast(array, pa.int64())).to_numpy(zero_copy_only=False)
            except pa.ArrowInvalid as exc:
                raise InputError(f"{self.role} column {self.column!r}: {exc}") from exc
            method(np.ascontiguousarray(values), out)
        else:
            offsets, data = string_buffers(array)
            method(np.ascontiguousarray(offsets), data, out)
        return out

    def _apply_other_int_type(self, array: pa.Array, insert: bool) -> np.ndarray:
        """Integer ids of another type than the encoder's (a later batch, a lookup): taken as
        the encoder's type, so that uint64 2**63 and int64 -2**63 (the same bits in the map)
        never meet. New ids that do not fit are an error (the output column has the first
        batch's type); ids that do not fit are unknown to a lookup."""
        values = array.to_numpy(zero_copy_only=False)
        bounds = np.iinfo(self.type.to_pandas_dtype())
        if values.dtype == np.uint64:  # compared as uint64, the bounds clipped to its range
            fits = values <= np.uint64(min(bounds.max, 2**64 - 1))
        else:
            values = values.astype(np.int64, copy=False)
            fits = (values >= max(bounds.min, -2**63)) & (values <= min(bounds.max, 2**63 - 1))
        if fits.all():
            return self._apply(pc.cast(array, self.type), insert)
        if insert:
            bad = array[int(np.argmin(fits))].as_py()
            raise InputError(
                f"{self.role} column {self.column!r} has the id {bad} ({array.type}), which does "
                f"not fit {self.type}, the type of its first batch; cast every batch to one type")
        out = np.full(len(array), -1, dtype=np.int64)
        kept = np.flatnonzero(fits)
        out[kept] = self._apply(pc.cast(array.take(pa.array(kept)), self.type), insert)
        return out

    def encode(self, array: pa.Array | pa.ChunkedArray) -> np.ndarray:
        """Codes of ``array`` (int64, same length), adding ids not seen before.

        Raises
        ------
        InputError
            If the array has nulls or a type that is not an integer or string.
        """
        with self._lock:
            self._bind(array.type)
            return self._apply(array, insert=True)

    def lookup(self, array: pa.Array | pa.ChunkedArray) -> np.ndarray:
        """Codes of ``array`` without adding anything: -1 marks an id the encoder has not seen."""
        if self._map is None:
            return np.full(len(array), -1, dtype=np.int64)
        id_kind(array.type, self.column, self.role)
        return self._apply(array, insert=False)

    def ids(self) -> pa.Array:
        """All ids in code order, in the user's original type (string_view as large_string)."""
        if self._map is None:
            return pa.array([], type=pa.int64())
        if self.kind == "int":
            keys = pa.array(self._map.keys())
            return keys.view(self.type) if pa.types.is_uint64(self.type) else keys.cast(self.type)
        offsets, data = self._map.buffers()
        strings = pa.Array.from_buffers(
            pa.large_string(), len(offsets) - 1, [None, pa.py_buffer(offsets), pa.py_buffer(data)]
        )
        # string_view has no take kernel in every pyarrow: such ids stay large_string here and
        # callers cast their final output (RFM does, through its output type).
        return strings if pa.types.is_large_string(self.type) or pa.types.is_string_view(
            self.type) else strings.cast(self.type)

    def decode(self, codes: np.ndarray) -> pa.Array:
        """The user's ids for ``codes`` (any int array), in the original type."""
        return self.ids().take(pa.array(np.asarray(codes, dtype=np.int64)))

    # -- pickling (joblib, multiprocessing): the ids as an Arrow array, rebuilt by encoding -----
    def __reduce__(self):
        """Pickle as ``(column, role, ids in code order, types)``; the Cython map and the lock
        are rebuilt on the other side (they cannot be pickled)."""
        if self.kind is None:
            return (IdEncoder, (self.column, self.role))
        return (_encoder_from_ids, (self.column, self.role, self.ids(), self.type, self.input_type))

    # -- persistence: plain arrays, never pickle --------------------------------------------
    def to_arrow(self) -> pa.Array:
        """The ids in code order (what :meth:`from_arrow` needs to rebuild the encoder)."""
        return self.ids()

    @classmethod
    def from_arrow(cls, ids: pa.Array, column: str, role: str = "id") -> "IdEncoder":
        """Rebuild an encoder whose codes are the positions of ``ids``."""
        encoder = cls(column, role)
        if len(ids):
            codes = encoder.encode(ids)
            if not np.array_equal(codes, np.arange(len(ids))):
                raise InputError(f"saved {role} ids for column {column!r} are not unique")
        else:
            encoder._bind(ids.type)
        return encoder


def _encoder_from_ids(column, role, ids, value_type, input_type) -> IdEncoder:
    """Unpickle an :class:`IdEncoder` (see ``IdEncoder.__reduce__``)."""
    encoder = IdEncoder.from_arrow(ids, column, role)
    encoder.type, encoder.input_type = value_type, input_type
    return encoder
