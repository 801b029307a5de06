"""Feature columns out of a record batch: type checks, the null rule, one conversion each."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import InputError

__all__ = ["category_codes", "feature_arrays", "feature_column", "feature_columns", "feature_matrix",
           "NULL_RULES"]

_PLAIN = (pa.float64(), pa.float32(), pa.int64(), pa.int32())

#: ``"error"``: a null in a feature raises; ``"nan"``: a null is read as NaN (missing).
NULL_RULES = ("error", "nan")


def feature_column(array, column: str, dtype, nulls: str) -> np.ndarray:
    """One feature column as a contiguous ``dtype`` array (zero-copy for float64 without nulls).

    Raises
    ------
    InputError
        If the column is not numeric (bool counts as 0/1), or has nulls under ``nulls="error"``.
    """
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    typ = array.type
    if typ in _PLAIN and not array.null_count:  # the common case, without the checks below
        return np.ascontiguousarray(array.to_numpy(), dtype=dtype)
    if pa.types.is_dictionary(typ):
        if _is_category(typ.value_type):  # (text: decoding string_view dictionaries fails)
            raise InputError(f"feature column {column!r} has type {typ}; expected a number")
        array = array.dictionary_decode()
        typ = array.type
    if pa.types.is_boolean(typ):
        array = pc.cast(array, pa.int8())
        typ = array.type
    if not (pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_decimal(typ)):
        raise InputError(f"feature column {column!r} has type {typ}; expected a number")
    if array.null_count:
        if nulls == "error":
            raise InputError(
                f"feature column {column!r} has {array.null_count} null value(s); this model's "
                "scoring path does not accept missing values (fill them, or pass nulls='nan' if "
                "the model handles NaN)"
            )
        array = pc.cast(array, pa.float64()) if not pa.types.is_floating(typ) else array
        values = array.to_numpy(zero_copy_only=False)  # nulls become NaN
    elif pa.types.is_decimal(typ) or pa.types.is_float16(typ):
        values = pc.cast(array, pa.float64()).to_numpy(zero_copy_only=False)
    else:
        values = array.to_numpy(zero_copy_only=False)
    return np.ascontiguousarray(values, dtype=dtype)


def _columns(batch, features):
    # One call for all arrays and a dict for the names: looking columns up one by one by name
    # costs microseconds each, which is most of the time of a one-row batch.
    arrays = batch.columns
    index = {name: i for i, name in enumerate(batch.schema.names)}
    return [arrays[index[name]] for name in features]


def feature_columns(batch, features: list[str], dtype, nulls: str) -> list[np.ndarray]:
    """Every feature column of ``batch``, in ``features`` order."""
    return [feature_column(col, name, dtype, nulls)
            for col, name in zip(_columns(batch, features), features)]


def feature_matrix(batch, features: list[str], dtype, nulls: str) -> np.ndarray:
    """A row-major ``(n, F)`` matrix of the features (what tree traversal and ONNX Runtime read)."""
    out = np.empty((batch.num_rows, len(features)), dtype=dtype)
    for j, (col, name) in enumerate(zip(_columns(batch, features), features)):
        if col.type in _PLAIN and not col.null_count:
            out[:, j] = col.to_numpy()
        else:
            out[:, j] = feature_column(col, name, None, nulls)
    return out


def _is_category(typ) -> bool:
    return (pa.types.is_dictionary(typ) or pa.types.is_string(typ) or pa.types.is_large_string(typ)
            or pa.types.is_string_view(typ))


def _logical_nulls(array: pa.Array) -> int:
    """Null rows of ``array``, counting a dictionary row whose index is valid but points to a
    null entry of the dictionary (``null_count`` sees only null indices)."""
    if not pa.types.is_dictionary(array.type) or not array.dictionary.null_count:
        return array.null_count
    null_entries = np.flatnonzero(array.dictionary.is_null().to_numpy(zero_copy_only=False))
    indices = array.indices.fill_null(null_entries[0]).to_numpy(zero_copy_only=False)
    return int(np.isin(indices, null_entries).sum())


def category_codes(array, column: str, categories: list, nulls: str) -> np.ndarray:
    """Positions of a category column's values in ``categories`` as float64, NaN for a null or
    a value not in the list: LightGBM's pandas rule (``cat.set_categories(categories).cat.codes``,
    code -1 read as NaN, i.e. a missing value that follows the tree's own rule).

    Raises
    ------
    InputError
        A null under ``nulls="error"``, or values of another kind than the categories (text
        against numbers or numbers against text).
    """
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if nulls == "error" and (n_null := _logical_nulls(array)):
        raise InputError(f"category column {column!r} has {n_null} null value(s) and "
                         "nulls='error' was asked for")
    if not categories:  # nothing to match: every value is unseen
        return np.full(len(array), np.nan)
    # A dictionary column is looked up once per dictionary entry, then spread by its indices.
    values = array.dictionary if pa.types.is_dictionary(array.type) else array
    try:
        value_set = pa.array(categories)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        raise InputError(f"category column {column!r}: the model's categories for it mix types "
                         "Arrow cannot compare in one column") from None
    try:
        if _is_category(values.type) != _is_category(value_set.type):
            raise pa.ArrowInvalid("text against numbers")
        values = values.cast(value_set.type)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise InputError(f"category column {column!r} holds {array.type} values; the model's "
                         f"categories for it are {value_set.type} ({exc})") from None
    codes = pc.index_in(values, value_set=value_set)  # null for a null or an unseen value
    if pa.types.is_dictionary(array.type):
        codes = codes.take(array.indices)  # a null index stays null
    return np.ascontiguousarray(pc.cast(codes, pa.float64()).to_numpy(zero_copy_only=False))


def feature_arrays(batch, features: list[str], dtype, nulls: str, categories=None) -> tuple:
    """Every feature column of ``batch`` as a contiguous float32 or float64 array (zero-copy
    for those types without nulls; other types converted to ``dtype`` as ``feature_matrix``
    does), for kernels that read columns and round to ``dtype`` themselves.

    ``categories``: LightGBM's ``pandas_categorical`` lists (None or empty: no category
    columns; a dictionary column is then read as its values). Otherwise the feature columns
    holding categories (Arrow dictionary or string columns), in feature order, are the model's
    pandas category columns in its order, and become codes (:func:`category_codes`); with none
    of them the input is taken to hold the codes already (as LightGBM takes a NumPy matrix).
    """
    cols = _columns(batch, features)
    coded = {}
    if categories:  # (an empty list: trained on pandas without category columns)
        cat_at = [j for j, col in enumerate(cols) if _is_category(col.type)]
        if cat_at and len(cat_at) != len(categories):
            raise InputError(
                f"the LightGBM model was trained on {len(categories)} pandas category column(s) "
                f"(its pandas_categorical lists) but {len(cat_at)} feature column(s) hold "
                "categories (dictionary or string): "
                + ", ".join(repr(features[j]) for j in cat_at)
                + "; give every category column as categories, or all as LightGBM's codes")
        coded = {j: category_codes(cols[j], features[j], categories[k], nulls)
                 for k, j in enumerate(cat_at)}
    out = []
    for j, (col, name) in enumerate(zip(cols, features)):
        if j in coded:
            values = coded[j]
        elif col.type in _PLAIN and not col.null_count:
            values = col.to_numpy()
        else:
            values = feature_column(col, name, None, nulls)
        if values.dtype not in (np.float32, np.float64) or not values.flags.c_contiguous:
            values = np.ascontiguousarray(values, dtype=dtype)
        out.append(values)
    return tuple(out)
