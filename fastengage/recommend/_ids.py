"""Ids the caller passes to a recommender (customers to serve, items to rank or exclude),
read as an Arrow array and looked up in the model's id encoders."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .._io.ids import IdEncoder
from ..errors import InputError

__all__ = ["_as_id_array", "_lookup_ids"]


def _as_id_array(values, role: str, id_type: pa.DataType | None = None) -> pa.Array:
    """Ids as an Arrow array. Python values are read as Arrow infers them, else as the model's
    id type ``id_type``, else as uint64 (a list of ints above 2**63 is no int64 array)."""
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks()
    if isinstance(values, pa.Array):
        return values
    if np.isscalar(values) or isinstance(values, (str, bytes)):
        values = [values]
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
        for typ in (id_type, pa.uint64()):  # ints above 2**63 read as uint64: not found
            try:
                return pa.array(values, type=typ)
            except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError):
                pass
        raise InputError(f"{role} ids could not be read as an Arrow array: {exc}") from exc


_INT64_MAX = pa.scalar(2 ** 63 - 1, pa.uint64())


def _lookup_ids(encoder: IdEncoder, arr: pa.Array) -> np.ndarray:
    """``encoder.lookup(arr)`` (-1: unknown) with the sign of integer ids respected: the
    encoder keeps uint64 ids as their int64 bits, so a negative id must not find the uint64 id
    with the same bits (-6 is not 2**64 - 6), nor a uint64 id above 2**63 a negative one."""
    typ = arr.type.value_type if pa.types.is_dictionary(arr.type) else arr.type
    if encoder.kind != "int" or not pa.types.is_integer(typ):
        return encoder.lookup(arr)
    model_unsigned = pa.types.is_uint64(encoder.type)
    if model_unsigned and pa.types.is_signed_integer(typ):
        outside = pc.less(arr, 0)
    elif not model_unsigned and pa.types.is_uint64(typ):
        outside = pc.greater(arr, _INT64_MAX)
    else:
        return encoder.lookup(arr)
    outside = np.asarray(outside.fill_null(False).to_numpy(zero_copy_only=False), bool)
    if not outside.any():
        return encoder.lookup(arr)
    codes = np.full(len(arr), -1, np.int64)
    codes[~outside] = encoder.lookup(arr.filter(pa.array(~outside)))
    return codes
