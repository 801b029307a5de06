"""The one-shot RFM pass over a whole in-memory table (what :func:`fastengage.rfm` runs when the
user hands over a table rather than a stream).

Customer ids become dense codes in one of three ways, cheapest first:

* **dense integers** (range close to the row count): ``code = id - min``, no hashing, and the codes
  are already in id order;
* **range-partitioned** (sparse integers or strings, at least :data:`HASHED_MIN_ROWS` rows): rows
  are scattered into partitions of consecutive id ranges and each partition numbers its own
  ids in cache, in id order (``kernels/features/hashed.py``), so the codes ascend with the ids;
* **hash map** (small inputs, dictionary-encoded ids, strings over 15 bytes): the Cython map
  of ``kernels/idmap.pyx``, then a scatter by code.

Sparse integers and short strings with many rows per customer (a sample suggests few ids, and
there is no order column) skip the partitions: every row is folded straight into per-thread
records that stay in cache (``kernels/features/fewids.py``), which gives the same records.

Every way ends in the same fold (``kernels/features/oneshot.fold``, whose loop is compiled ahead
of time in ``fold_native.pyx``) and gives the same table. Below :data:`SERIAL_MAX_ROWS` rows
(config ``RFM_SERIAL_MAX_ROWS``) none of that pays: dense codes or the hash map's, then the rows
folded as one partition on one thread, so a first call compiles no Numba kernel at all (#11). The output is built by reading the records in id
order (``finalize`` takes the permutation), not by gathering them first.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .._io.ids import IdEncoder, id_kind, string_buffers
from .._io.sources import Source, validate_column
from ._common import check_types, dense_id_codes, features_table, new_report, prepare_batch
from ..errors import InputError
from ..kernels.common.config import RFM_SERIAL_MAX_ROWS
from ..kernels.features import rfm as _k
from ..kernels.features import fewids as _fewids
from ..kernels.features import hashed as _hashed
from ..kernels.features import oneshot as _one
from ..kernels.common.launch import resolve_threads

#: Below this many rows the hash map is as fast and keeps the kernels a first call loads few.
HASHED_MIN_ROWS = 1 << 18
#: Below this many rows one serial fold, no partitions (module-level so tests can force a path).
SERIAL_MAX_ROWS = RFM_SERIAL_MAX_ROWS


def rfm_in_memory(source: Source, columns: dict, limit_us: int | None, returns: str,
                  drop_null_customers: bool, segments, n_threads: int | None) -> pa.Table:
    """RFM of a whole in-memory table in one parallel pass (no hash sets)."""
    roles = source.require(columns)
    check_types(source.schema, roles)
    name = columns["customer"]
    # A large column of plain strings is validated in full only where its ids are read: packed
    # into key words by a kernel that checks every offset against the data, and the distinct
    # ids' UTF-8 checked once numbered (the UTF-8 check of 5M short ids was ~30 ms of ~0.25 s
    # at 100 rows per customer); any other path validates it in full first (check_ids).
    id_type = source.schema.field(name).type
    deferred = ((pa.types.is_string(id_type) or pa.types.is_large_string(id_type))
                and (source.num_rows or 0) >= max(SERIAL_MAX_ROWS, HASHED_MIN_ROWS))
    batches = list(source.batches(list(roles.values()),
                                  validated_by_caller=(name,) if deferred else ()))
    if not batches or batches[0].num_rows == 0:
        raise InputError("the input is empty: no rows to compute features from")
    (batch,) = batches  # in-memory inputs come as one combined batch
    unchecked = [batch.column(name)] if deferred else []

    def check_ids():
        """Validate the deferred customer column in full, once (InputError if corrupt)."""
        if unchecked:
            _validate_ids(unchecked.pop(), name, source.description)

    report = new_report()
    report["rows_read"] = batch.num_rows
    limit = limit_us if limit_us is not None else _k.INT64_MAX
    batch, n_null, times, amounts = prepare_batch(batch, columns, drop_null_customers, 0, returns,
                                                  limit, check_ids if deferred else None)
    report["null_customer_rows_dropped"] = n_null
    if batch.num_rows == 0:
        raise InputError("no rows left after dropping null customer ids")
    has_order = columns["order"] is not None
    order_codes = (IdEncoder(columns["order"], "order").encode(batch.column(columns["order"]))
                   if has_order else np.empty(0, np.int64))
    column = batch.column(name)
    # Detected, never assumed: with non-decreasing times each customer's days arrive in order,
    # so a new day is simply a day different from the customer's latest one.
    days_sorted = _one.is_sorted(times)
    first_day, words = _one.day_words(int(times.min()), int(times.max()))
    fold_settings = (has_order, limit, returns == "exclude", days_sorted, first_day, words)
    if batch.num_rows < SERIAL_MAX_ROWS:
        check_ids()
        state, (n_after, n_returns), ids_by_code, id_order, output_type = _fold_serial(
            column, name, times, amounts, order_codes, fold_settings)
    else:
        chunks = resolve_threads(n_threads)
        rows = (times, amounts, order_codes, has_order, chunks)
        parts = _dense_partitions(column, name, rows)
        folded = keys = None
        if parts is None and len(column) >= HASHED_MIN_ROWS and not pa.types.is_dictionary(column.type):
            keys = _id_keys(column, name, chunks, check_ids)
        if keys is None:
            check_ids()  # the ids go to the hash map
        elif deferred:
            unchecked.clear()  # offsets checked while packing; UTF-8 on the distinct ids below
        if keys is not None and not has_order:
            folded = _few_ids_fold(keys, column, rows, fold_settings)
        if folded is not None:
            state, (n_after, n_returns), ids_by_code = folded
            id_order, output_type = True, column.type
        else:
            if keys is not None:
                parts = _hashed_partitions(keys, column, rows)
            if parts is None:
                parts = _mapped_partitions(column, name, rows)
            # id_order: True when codes already ascend with the ids, None when the sorting
            # permutation is still to be computed, or (permutation, ids in that order).
            part_rows, bases, ids_by_code, id_order, output_type = parts
            state = _k.uninitialised_state(int(bases[-1]))
            n_after, n_returns = _one.fold(state, *part_rows, bases, *fold_settings,
                                           n_threads=chunks)
            del parts, part_rows
        del folded, keys
        if deferred and not unchecked:
            try:
                ids_by_code.validate(full=True)
            except pa.ArrowException:  # report it as the input's: the row it is at
                _validate_ids(column, name, source.description)
                raise
    order = None
    if isinstance(id_order, tuple):  # (permutation, ids already in that order)
        order, ids_by_code = id_order
    elif id_order is not True:
        order, ids_by_code = _sort_by_id(ids_by_code, id_order)
    report["rows_after_as_of"] = int(n_after)
    report["return_rows"] = int(n_returns)
    if returns == "exclude":
        report["return_rows_excluded"] = int(n_returns)
    as_of_us = limit_us if limit_us is not None else int(times.max())
    if pa.types.is_dictionary(id_type):  # the declared type: chunks may have been widened
        output_type = id_type
    return features_table(state, lambda codes: _ids_at(ids_by_code, codes), name, as_of_us,
                          returns, not has_order, report, segments, True, output_type, order,
                          n_threads)


def _ids_at(ids: pa.Array, codes: np.ndarray) -> pa.Array:
    """``ids[codes]`` for ascending ``codes``: all of them (every customer bought) need no take."""
    return ids if len(codes) == len(ids) else ids.take(pa.array(codes))


def _fold_serial(column: pa.Array, name: str, times, amounts, order_codes, fold_settings):
    """A small input: codes (dense or from the hash map), then one serial fold of every row."""
    dense = dense_id_codes(column, name)
    if dense is not None:
        codes, n_codes, ids_by_code = dense
        id_order, output_type = True, column.type
    else:
        encoder = IdEncoder(name, "customer")
        codes = encoder.encode(column)
        n_codes, ids_by_code, id_order, output_type = (len(encoder), encoder.ids(), None,
                                                       encoder.input_type)
    state = _k.uninitialised_state(n_codes)
    counts = _one.fold(state, np.array([0, len(codes)]), codes.astype(np.int32), times, amounts,
                       order_codes, np.array([0, n_codes]), *fold_settings, n_threads=1)
    return state, counts, ids_by_code, id_order, output_type


def _dense_partitions(column: pa.Array, name: str, rows: tuple):
    """Integer ids whose range is close to the row count index the records directly."""
    dense = dense_id_codes(column, name)
    if dense is None:
        return None
    codes, n_codes, ids_by_code = dense
    return _code_partitions(codes, n_codes, rows) + (ids_by_code, True, column.type)  # in order


def _mapped_partitions(column: pa.Array, name: str, rows: tuple):
    """Codes from the Cython hash map, then a scatter by code."""
    encoder = IdEncoder(name, "customer")
    codes = encoder.encode(column)
    return _code_partitions(codes, len(encoder), rows) + (encoder.ids(), None, encoder.input_type)


def _code_partitions(codes: np.ndarray, n_codes: int, rows: tuple):
    times, amounts, order_codes, has_order, chunks = rows
    shift = _one.partition_shift(n_codes)
    offsets, local, p_times, p_amounts, p_orders = _one.partition(
        codes, times, amounts, order_codes, has_order, n_codes, shift, chunks, n_threads=chunks)
    return (offsets, local, p_times, p_amounts, p_orders), _one.code_bases(n_codes, shift)


def _id_keys(column: pa.Array, name: str, chunks: int, check_ids):
    """[keys0, keys1, two_words, signed]: each row's id as one key word (an integer) or two (a
    string of at most ``MAX_SHORT`` bytes, packed); None for longer strings (the hash map's).
    A list, so that ``_hashed_partitions`` can empty it and free the words once scattered.

    A string that cannot be packed is either longer than ``MAX_SHORT`` or has offsets outside
    the data: ``check_ids()`` (full validation, if not done yet) raises for the latter."""
    two_words = id_kind(column.type, name, "customer") == "str"
    if two_words:
        offsets, data = string_buffers(column)
        # Whole-word loads need an 8-byte aligned buffer (Arrow's are 64-byte aligned).
        aligned = (data[:len(data) // 8 * 8].view(np.uint64) if data.ctypes.data % 8 == 0
                   else np.empty(0, np.uint64))
        keys0 = np.empty(len(column), np.uint64)
        keys1 = np.empty(len(column), np.uint64)
        if _hashed.pack_short_strings(offsets, data, aligned, keys0, keys1, n_threads=chunks):
            check_ids()
            return None
        return [keys0, keys1, True, False]
    values = column.to_numpy(zero_copy_only=False)
    keys0 = values.astype(np.uint64 if values.dtype.kind == "u" else np.int64,
                          copy=False).view(np.uint64)
    return [keys0, np.empty(0, np.uint64), False, values.dtype.kind != "u"]


def _validate_ids(column: pa.Array, name: str, where: str) -> None:
    """Arrow's full validation of the customer column (offsets, UTF-8), as Source.batches
    does it for every other column."""
    validate_column(column, f"column {name!r} of {where}")


def _ids_of_keys(ids0: np.ndarray, ids1: np.ndarray, two_words: bool, signed: bool,
                 column: pa.Array) -> pa.Array:
    """The ids (the input column's type) whose key words are ``ids0``/``ids1``: strings are
    unpacked from the words (no take of the strings, no second look at the input)."""
    if two_words:
        str_offsets, str_data = _hashed.unpack_short_strings(ids0, ids1)
        ids = pa.Array.from_buffers(
            pa.large_string(), len(ids0), [None, pa.py_buffer(str_offsets), pa.py_buffer(str_data)])
    else:
        ids = pa.array(ids0.view(np.int64) if signed else ids0)
    if ids.type != column.type and not pa.types.is_string_view(column.type):
        ids = ids.cast(column.type)  # string_view: cast by features_table
    return ids


def _few_ids_fold(keys: tuple, column: pa.Array, rows: tuple, fold_settings: tuple):
    """Many rows per customer and few customers: every row folded straight into its customer's
    record (``kernels/features/fewids.py``), no partitions; (state, counts, ids in code order),
    or None when the ids are not few enough for it (then the partitions pay)."""
    keys0, keys1, two_words, signed = keys
    times, amounts, _, _, chunks = rows
    _, limit, exclude_returns, _, first_day, words = fold_settings
    estimate = _hashed.estimated_ids(keys0, keys1, two_words, signed)
    if not _fewids.takes(len(keys0), estimate, words):
        return None
    folded = _fewids.fold(keys0, keys1, two_words, signed, times, amounts, limit,
                          exclude_returns, first_day, words, estimate, n_threads=chunks)
    if folded is None:  # more ids than the sample suggested
        return None
    state, ids0, ids1, n_after, n_returns = folded
    return state, (n_after, n_returns), _ids_of_keys(ids0, ids1, two_words, signed, column)


def _hashed_partitions(keys: tuple, column: pa.Array, rows: tuple):
    """Scatter rows into partitions of id ranges and number the ids partition by partition,
    in id order."""
    times, amounts, order_codes, has_order, chunks = rows
    keys0, keys1, two_words, signed = keys
    keys.clear()  # the caller's reference too: the words go once scattered
    bits = _hashed.partition_bits(len(column))
    part_offsets, p_keys0, p_keys1, p_times, p_amounts, p_orders = _hashed.partition(
        keys0, keys1, two_words, signed, times, amounts, order_codes, has_order, bits, chunks,
        n_threads=chunks)
    del keys0, keys1
    # codes ascend with the ids: partitions are id ranges in order, each numbered in order
    local, bases, ids0, ids1 = _hashed.encode_partitions(part_offsets, p_keys0, p_keys1, two_words,
                                                         signed, n_threads=chunks)
    del p_keys0, p_keys1
    ids_by_code = _ids_of_keys(ids0, ids1, two_words, signed, column)
    return ((part_offsets, local, p_times, p_amounts, p_orders), bases, ids_by_code, True,
            column.type)


def _sort_by_id(ids_by_code: pa.Array, order: np.ndarray | None):
    """(permutation of the codes that sorts their ids, the ids in that order); the records are
    read through it when the output is made (one pass, no gather of 64-byte records).

    ``order`` is the sorting permutation when the caller already has it, else None.
    """
    if order is None and pa.types.is_integer(ids_by_code.type):
        order = np.argsort(ids_by_code.to_numpy(zero_copy_only=False))  # ids are distinct
    elif order is None:
        order = pc.sort_indices(ids_by_code).to_numpy()
    order = np.ascontiguousarray(order, dtype=np.int64)
    return order, ids_by_code.take(pa.array(order))
