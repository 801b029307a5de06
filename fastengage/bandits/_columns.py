"""Columns of the bandit API at the Arrow boundary: arm ids, feature matrices, eligibility masks.

Arm ids are the user's own (integers or strings). A policy keeps them as one Arrow array (int64
or string) whose positions are the arm codes the kernels see; logged or allowed arm ids are mapped
to codes with ``pyarrow.compute.index_in``, once per column.
"""
from __future__ import annotations

import weakref

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .._io.ids import string_buffers
from .._io.sources import amount_to_float64, validate_column
from ..errors import InputError
from ..kernels.bandits.arms_native import ArmTable
from ..kernels.common.config import BANDIT_ARM_CHUNK
from ..kernels.common.launch import resolve_threads, run_threaded

__all__ = ["arm_array", "arm_code", "arm_codes", "arm_ids", "check_finite", "eligible_mask",
           "feature_column", "feature_matrix", "reward_float64", "reward_vector"]


def _plain(array):
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    return array


def arm_array(arms, role: str = "arms") -> pa.Array:
    """The user's arm ids as an int64 or string Arrow array; unique, no nulls."""
    if isinstance(arms, (str, bytes)) or not hasattr(arms, "__len__"):
        raise InputError(f"{role} must be a list of arm ids (strings or integers)")
    try:
        given = arms if isinstance(arms, (pa.Array, pa.ChunkedArray)) else pa.array(list(arms))
        array = _plain(given)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
        raise InputError(f"{role}: arm ids must be all strings or all integers that fit in "
                         f"int64 ({exc})") from exc
    typ = array.type
    if pa.types.is_integer(typ):
        try:
            array = pc.cast(array, pa.int64())
        except pa.ArrowInvalid as exc:  # uint64 ids from 2**63 on
            raise InputError(f"{role}: integer arm ids must fit in int64 ({exc})") from exc
    elif pa.types.is_string(typ) or pa.types.is_large_string(typ) or pa.types.is_string_view(typ):
        array = pc.cast(array, pa.string())
    elif len(array) == 0 and pa.types.is_null(typ):
        raise InputError(f"{role}: give at least one arm")
    else:
        raise InputError(f"{role}: arm ids must be strings or integers, got {typ}")
    if array.null_count:
        raise InputError(f"{role}: arm ids may not be null")
    if len(pc.unique(array)) != len(array):
        raise InputError(f"{role}: arm ids must be unique")
    return array


def _as_arm_type(values, arms: pa.Array, column: str, role: str) -> pa.Array:
    values = _plain(values)
    typ = values.type
    want_int = pa.types.is_int64(arms.type)
    is_int = pa.types.is_integer(typ)
    is_str = (pa.types.is_string(typ) or pa.types.is_large_string(typ)
              or pa.types.is_string_view(typ))
    if want_int and is_int:
        try:
            return pc.cast(values, pa.int64())
        except pa.ArrowInvalid:  # uint64 ids from 2**63 on: no arm has them
            big = pc.filter(values, pc.greater(values, pa.scalar(2 ** 63 - 1, pa.uint64())))
            raise InputError(
                f"{role} column {column!r} holds arm id(s) this policy does not know: "
                + ", ".join(repr(v) for v in pc.unique(big).to_pylist()[:5])
                + " (beyond int64, the range of integer arm ids)") from None
    if not want_int and is_str:
        return pc.cast(values, pa.string())
    raise InputError(
        f"{role} column {column!r} has type {typ}, but this policy's arm ids are "
        f"{'integers' if want_int else 'strings'}"
    )


def arm_codes(values, arms: pa.Array, column: str, role: str = "arm",
              dtype=np.int64) -> np.ndarray:
    """Codes (``dtype``, int64 or int32; positions in ``arms``) of a column of arm ids.

    A dictionary-encoded column maps its dictionary only, then takes the codes by index.
    Callers may pass a column that was not validated in full (``Source.batches``'s
    ``validated_by_caller``): a plain string column is read only by the lookup kernel, which
    bounds-checks every offset, and is validated in full before an unknown id is reported;
    every other type is validated in full here first.

    Raises
    ------
    InputError
        On nulls, a type other than the arms', a corrupt column, or ids the policy does not
        know (named).
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not pa.types.is_string(values.type):
        _validate_full(values, column, role)
    if pa.types.is_dictionary(values.type):
        if values.null_count:
            raise InputError(f"{role} column {column!r} has {values.null_count} null value(s)")
        dictionary = values.dictionary
        known = _lookup(_as_arm_type(dictionary, arms, column, role), arms, np.int64,
                        strict=False)
        codes = known[values.indices.to_numpy(zero_copy_only=False)]
        if (codes < 0).any():
            _raise_unknown(values.dictionary_decode(), arms, column, role)
        return codes.astype(dtype, copy=False)
    values = _as_arm_type(values, arms, column, role)
    if values.null_count:
        raise InputError(f"{role} column {column!r} has {values.null_count} null value(s)")
    codes = _lookup(values, arms, dtype)
    if codes is None:
        _raise_unknown(values, arms, column, role)
    return codes


def arm_code(arm, arms: pa.Array) -> int:
    """The code of one arm id (``update_one``): a dict lookup for a plain ``int``/``str`` (or
    NumPy integer) id, built once per arm array; anything else, or an id the dict lacks, goes
    through :func:`arm_codes` (same code, or its error)."""
    key = id(arms)
    entry = _INDEX.get(key)
    if entry is None or entry[0]() is not arms:
        entry = (weakref.ref(arms, lambda _, key=key: _INDEX.pop(key, None)),
                 {a: k for k, a in enumerate(arms.to_pylist())})
        _INDEX[key] = entry
    if type(arm) is int or type(arm) is str or isinstance(arm, np.integer):
        code = entry[1].get(arm)  # a NumPy integer hashes as its int; str != int ids
        if code is not None:
            return code
    return int(arm_codes(pa.array([arm]), arms, "arm")[0])


_INDEX: dict = {}  # id(arms) -> (weak reference to arms, {arm id: code})


def arm_ids(codes: np.ndarray, arms: pa.Array) -> pa.Array:
    """The arm ids of ``codes`` (int64 positions in ``arms``; -1 gives a null): what
    ``arms.take(codes)`` gives, ~4x faster for string ids (``ArmTable.take``)."""
    return _arm_table(arms).take(np.ascontiguousarray(codes, dtype=np.int64))


def _lookup(values: pa.Array, arms: pa.Array, dtype, strict: bool = True):
    """Codes of ``values`` (no nulls, the arms' type) through the arms' hash table
    (``kernels/bandits/arm_lookup.h``), on several threads for long columns. An unknown id
    makes the result ``None`` (``strict``) or gets code -1."""
    table = _arm_table(arms)
    n = len(values)
    out = np.empty(n, dtype=dtype)
    counters = np.zeros(2, dtype=np.int64)  # next chunk, unknown ids
    if table.strings:
        try:
            offsets, data = string_buffers(values)
        except InputError:  # a buffer too short for the array: corrupt
            return None if strict else np.full(n, -1, dtype=dtype)
    else:
        offsets, data = values.to_numpy(zero_copy_only=False), _NO_BYTES

    def worker():
        table.lookup_worker(offsets, data, out, BANDIT_ARM_CHUNK, counters)

    run_threaded(worker, min(resolve_threads(None), max(1, -(-n // BANDIT_ARM_CHUNK))))
    return None if strict and counters[1] else out


_NO_BYTES = np.zeros(0, dtype=np.uint8)
_TABLES: dict = {}  # id(arms) -> (weak reference to arms, ArmTable)


def _arm_table(arms: pa.Array):
    """The hash table of a policy's arm array, built once per array (a race builds two)."""
    key = id(arms)
    entry = _TABLES.get(key)
    if entry is not None and entry[0]() is arms:
        return entry[1]
    if pa.types.is_int64(arms.type):
        table = ArmTable.of_ints(arms.to_numpy(zero_copy_only=False))
    else:
        table = ArmTable.of_strings(*string_buffers(arms))
    _TABLES[key] = (weakref.ref(arms, lambda _, key=key: _TABLES.pop(key, None)), table)
    return table


def _validate_full(values: pa.Array, column: str, role: str) -> None:
    validate_column(values, f"{role} column {column!r}")


def _raise_unknown(values: pa.Array, arms: pa.Array, column: str, role: str):
    _validate_full(values, column, role)  # before Arrow's own kernels read it
    unknown = pc.unique(pc.filter(values, pc.invert(pc.is_in(values, value_set=arms))))
    unknown = unknown.to_pylist()
    raise InputError(
        f"{role} column {column!r} holds {len(unknown)} arm id(s) this policy does not know: "
        + ", ".join(repr(u) for u in unknown[:5]) + (" ..." if len(unknown) > 5 else "")
        + " (add them first with add_arms)"
    )


def feature_matrix(batch, features: list[str], by_column: bool = False,
                   out: np.ndarray | None = None, check: bool = True) -> np.ndarray:
    """The named columns of ``batch`` as a C-contiguous float64 matrix, (n, d), or (d, n) with
    ``by_column`` (one contiguous copy per column, as decisions read them); finite values only
    (``check=False``: the caller proves it, e.g. from the decision kernel's flag, and calls
    :func:`check_finite` when it cannot). ``out``: a flat float64 buffer to reuse when it is
    large enough (the result is a view)."""
    n = batch.num_rows
    shape = (len(features), n) if by_column else (n, len(features))
    if out is not None and out.size >= n * len(features):
        X = out[:n * len(features)].reshape(shape)
    else:
        X = np.empty(shape, dtype=np.float64)
    for j, name in enumerate(features):
        col = feature_column(batch, name)
        if by_column:
            X[j] = col
        else:
            X[:, j] = col
    if check:
        # A sum is finite only if every term is (NaN and inf propagate); a finite sum proves
        # the matrix finite in one read pass without a mask. Overflow is rechecked exactly.
        with np.errstate(over="ignore", invalid="ignore"):
            if not np.isfinite(X.sum()):
                check_finite(X, features, by_column)
    return X


def feature_column(batch, name: str) -> np.ndarray:
    """One feature column as a read-only contiguous float64 array: zero-copy from a float64
    column without nulls (NaN and inf are the caller's to check), converted otherwise."""
    array = batch.column(name)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if pa.types.is_float64(array.type) and not array.null_count:
        col = array.to_numpy()
    else:
        col = amount_to_float64(array, name, role="feature")
    col = col.view()
    col.flags.writeable = False  # one kernel specialisation for both kinds
    return col


def check_finite(X: np.ndarray, features: list[str], by_column: bool) -> None:
    """Raise ``InputError`` naming the feature columns of ``X`` that hold NaN or infinity."""
    bad = [name for j, name in enumerate(features)
           if not np.isfinite(X[j] if by_column else X[:, j]).all()]
    if bad:
        raise InputError(f"feature column(s) {', '.join(map(repr, bad))} hold NaN or infinite "
                         "values")


def reward_float64(array, column: str) -> np.ndarray:
    """A reward column as float64: numbers, or booleans as 0/1 (a "clicked" flag; MABWiser takes
    boolean rewards too); no nulls, NaN or infinities."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if pa.types.is_boolean(array.type):
        array = pc.cast(array, pa.uint8())  # nulls stay null and are reported below
    return amount_to_float64(array, column, role="reward")


def reward_vector(batch, column: str, binary: bool) -> np.ndarray:
    """A reward column as float64 (:func:`reward_float64`), within [0, 1] when ``binary``
    (Beta-Bernoulli)."""
    r = reward_float64(batch.column(column), column)
    if not np.isfinite(r).all():
        raise InputError(f"reward column {column!r} holds infinite values")
    if binary and r.size and (r.min() < 0.0 or r.max() > 1.0):
        raise InputError(f"reward column {column!r} must lie in [0, 1] for Beta-Bernoulli "
                         f"Thompson sampling (found {r.min()} .. {r.max()})")
    return r


def eligible_mask(eligible, batch, start: int, arms: pa.Array, n_rows_total: int | None):
    """The (n, K) uint8 eligibility mask of one batch, or ``None`` when every arm is eligible.

    ``eligible`` is ``None``, the name of a list column of allowed arm ids (a null or empty list
    means no arm is allowed), or a boolean array of shape (rows, K) in the policy's arm order
    (``start`` is the batch's first row in it).
    """
    n, K = batch.num_rows, len(arms)
    if eligible is None:
        return None
    if isinstance(eligible, str):
        lists = _plain(batch.column(eligible))
        if not (pa.types.is_list(lists.type) or pa.types.is_large_list(lists.type)
                or pa.types.is_list_view(lists.type) or pa.types.is_fixed_size_list(lists.type)):
            raise InputError(f"eligible column {eligible!r} has type {lists.type}; expected a "
                             "list of arm ids per row")
        if pa.types.is_list_view(lists.type):
            lists = lists.cast(pa.large_list(lists.type.value_type))
        parents = pc.list_parent_indices(lists).to_numpy(zero_copy_only=False)
        values = pc.list_flatten(lists)
        keep = pc.is_valid(values)  # a null id inside a list allows nothing
        codes = arm_codes(values.filter(keep), arms, eligible, role="eligible")
        mask = np.zeros((n, K), dtype=np.uint8)
        mask[parents[keep.to_numpy(zero_copy_only=False)], codes] = 1
        return mask
    mask = np.asarray(eligible)
    if mask.ndim != 2 or mask.shape[1] != K or (n_rows_total is not None
                                                and mask.shape[0] != n_rows_total):
        raise InputError(f"eligible mask must have shape (rows, {K}) = ({n_rows_total}, {K}), "
                         f"got {mask.shape}")
    if mask.dtype != np.bool_ and not np.isin(mask, (0, 1)).all():
        raise InputError("eligible mask must be boolean (or 0/1)")
    part = mask[start:start + n]
    if part.shape[0] != n:  # a streamed input longer than the mask
        raise InputError(f"eligible mask has {mask.shape[0]} rows; the input has more")
    return np.ascontiguousarray(part, dtype=np.uint8)
