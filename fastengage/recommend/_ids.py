"""Ids the caller passes to a recommender (customers to serve, items to rank or exclude),
read as an Arrow array and looked up in the model's id encoders."""
from __future__ import annotations

import numpy as np
import pyarrow as pa

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
    if len(values) == 0 and id_type is not None:  # [] infers Arrow's null type: no ids at all
        return pa.array([], type=id_type)
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
        for typ in (id_type, pa.uint64()):  # ints above 2**63 read as uint64: not found
            try:
                return pa.array(values, type=typ)
            except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError):
                pass
        raise InputError(f"{role} ids could not be read as an Arrow array: {exc}") from exc


def _lookup_ids(encoder: IdEncoder, arr: pa.Array) -> np.ndarray:
    """``encoder.lookup(arr)``: -1 marks an unknown id (integer ids keep their sign there)."""
    return encoder.lookup(arr)
