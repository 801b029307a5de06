"""The Arrow input layer shared by every fastengage module.

Anything Arrow can read without a copy comes in through :func:`open_source`; columns are picked by
the names the user gave; each column is converted once, at this boundary, to the contiguous NumPy
array a kernel takes. Every problem is raised as :class:`~fastengage.errors.InputError` naming the
column and what is wrong with it.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Iterator, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import ColumnNotFoundError, InputError

__all__ = [
    "Source",
    "open_source",
    "time_to_us",
    "amount_to_float64",
    "US_PER_DAY",
    "TIME_MIN_US",
    "TIME_MAX_US",
]

US_PER_DAY = 86_400_000_000
#: Times fastengage accepts: the range of Python's datetime, 0001-01-01 .. 9999-12-31 23:59:59.999999
#: UTC, in microseconds. Any two such times differ by less than 2**63 microseconds, so no
#: difference of times (recency, tenure, T) can overflow.
TIME_MIN_US = -62_135_596_800_000_000
TIME_MAX_US = 253_402_300_799_999_999
_US_PER_UNIT = {"s": 1_000_000, "ms": 1_000, "us": 1}


@dataclass
class Source:
    """An opened input: its schema and a way to read the selected columns as record batches.

    Attributes
    ----------
    schema : pyarrow.Schema
        Schema of the whole input.
    kind : str
        What the user passed: ``"table"``, ``"batch"``, ``"reader"``, ``"parquet_file"`` (a path to
        one file), ``"dataset"`` (a Dataset or a folder) or ``"stream"``.
    num_rows : int or None
        Row count when known without reading the data (tables, batches, Parquet files).
    """

    schema: pa.Schema
    kind: str
    num_rows: int | None
    _data: object

    @property
    def is_in_memory(self) -> bool:
        """True when the user handed over data already in memory (a table or a batch)."""
        return self.kind in ("table", "batch")

    def require(self, columns: Mapping[str, str | None]) -> dict[str, str]:
        """Check that every named column exists; return ``{role: column}`` for the given ones.

        Raises
        ------
        ColumnNotFoundError
            Naming the role, the missing column and the columns that are available.
        """
        names = self.schema.names
        chosen = {}
        for role, name in columns.items():
            if name is None:
                continue
            if not isinstance(name, str):
                raise InputError(f"{role}= must be a column name (str), got {type(name).__name__}")
            if name not in names:
                raise ColumnNotFoundError(
                    f"{role} column {name!r} is not in the input; available columns: "
                    + ", ".join(repr(n) for n in names)
                )
            chosen[role] = name
        return chosen

    def batches(self, columns: list[str], *, batch_size: int | None = None,
                combine: bool = True,
                validated_by_caller: tuple = ()) -> Iterator[pa.RecordBatch]:
        """Yield record batches holding only ``columns``.

        In-memory tables are yielded as one batch when ``combine`` is true (kernels then make a
        single pass over contiguous arrays); everything else is streamed batch by batch so that
        data larger than memory never has to be materialised.

        Every batch is validated in full before it is yielded (offsets inside their buffers,
        UTF-8 of strings, dictionary indices in range), so no kernel ever reads outside an
        array, and a file that cannot be decoded or a batch that mixes types is an
        :class:`InputError` naming the file or the column; never a pyarrow error or garbage.
        ``validated_by_caller``: columns only checked for buffer sizes here, because the caller
        reads them through a kernel that bounds-checks every offset and validates them in full
        before anything else touches them (the UTF-8 check of 1M short strings costs ~5 ms,
        an eighth of a bandit fit).
        """
        columns = list(dict.fromkeys(columns))
        where = self.description
        iterator = self._raw_batches(columns, batch_size, combine)
        while True:
            try:
                batch = next(iterator)
            except StopIteration:
                return
            except (pa.ArrowException, OSError, ValueError) as exc:
                if isinstance(exc, InputError):
                    raise
                raise InputError(f"cannot read {where}: {exc}") from exc
            _validate(batch, where, validated_by_caller)
            yield batch

    @property
    def description(self) -> str:
        """What the input is, for error messages (the path of a file or folder when there is one)."""
        if self.kind == "parquet_file":
            return repr(getattr(self, "_path", "the Parquet file"))
        if self.kind == "dataset" and getattr(self, "_path", None):
            return repr(self._path)
        return {"table": "the input table", "batch": "the input record batch",
                "dataset": "the input dataset"}.get(self.kind, "the input stream")

    def _raw_batches(self, columns, batch_size, combine):
        data = self._data
        if self.kind == "table":
            table = data.select(columns)
            if combine and batch_size is None:
                table = _widen_dictionary_indices(table).combine_chunks()
            yield from table.to_batches(max_chunksize=batch_size)
        elif self.kind == "batch":
            batch = data.select(columns)
            if batch_size is None:
                yield batch
            else:
                for start in range(0, batch.num_rows, batch_size):
                    yield batch.slice(start, batch_size)
        elif self.kind == "parquet_file":
            yield from data.iter_batches(batch_size=batch_size or 1_000_000, columns=columns)
        elif self.kind == "dataset":
            # Folders fastengage opened itself are checked file by file; a Dataset the user built
            # (possibly with an explicit schema that casts on purpose) is read as given.
            opened_here = getattr(self, "_path", None) is not None
            yield from _dataset_batches(data, columns, batch_size, self.schema if opened_here else None)
        else:  # "reader" / "stream": single pass
            if self._data is None:
                raise InputError("this input stream was already consumed; pass a new one")
            reader = data
            self._data = None
            for batch in reader:
                batch = batch.select(columns)
                if batch_size is None or batch.num_rows <= batch_size:
                    yield batch
                else:
                    for start in range(0, batch.num_rows, batch_size):
                        yield batch.slice(start, batch_size)


def _widen_dictionary_indices(table: pa.Table) -> pa.Table:
    """``table`` with int32 indices for each dictionary column whose chunks' dictionaries
    together hold more values than its index type addresses: combining the chunks unifies their
    dictionaries, which Arrow refuses when the union outgrows the indices (a valid table of
    int8-indexed chunks, each with its own 100 ids, is not a bad input)."""
    for i, column in enumerate(table.columns):
        typ = column.type
        if not pa.types.is_dictionary(typ) or column.num_chunks < 2 or typ.index_type.bit_width >= 32:
            continue
        held = sum(len(chunk.dictionary) for chunk in column.chunks)
        if held >= 2 ** (typ.index_type.bit_width - 1):
            wide = pa.dictionary(pa.int32(), typ.value_type, typ.ordered)
            table = table.set_column(i, table.field(i).with_type(wide), column.cast(wide))
    return table


def _validate(batch: pa.RecordBatch, where: str, validated_by_caller=()) -> None:
    for name, column in zip(batch.schema.names, batch.columns):
        validate_column(column, f"column {name!r} of {where}", full=name not in validated_by_caller)


def validate_column(column, label: str, full: bool = True) -> None:
    """Arrow's validation of one column (``full``: offsets inside their buffers, UTF-8,
    dictionary indices), as an :class:`InputError` "<label> is corrupt: ..."."""
    try:
        column.validate(full=full)
    except pa.ArrowException as exc:
        raise InputError(f"{label} is corrupt: {exc}") from exc


def _dataset_batches(data, columns, batch_size, schema):
    """A dataset's batches; each Parquet file's own types must equal the dataset's (a folder
    of files written with different types would otherwise be cast silently to the first's)."""
    import pyarrow.dataset as ds

    # Arrow reads ahead 16 batches x 4 files by default; one of each keeps the memory of
    # a stream bounded by the batch size, and the decoding still runs on Arrow's threads.
    kwargs = {"columns": columns, "batch_readahead": 1, "fragment_readahead": 1}
    if isinstance(data.format, ds.ParquetFileFormat):
        # Pre-buffering coalesces reads of whole row groups far ahead of the scan; off,
        # the memory of a 20M-row scan drops from ~350 MiB to ~160 MiB.
        kwargs["fragment_scan_options"] = ds.ParquetFragmentScanOptions(
            pre_buffer=False, page_checksum_verification=True)
        if schema is not None:
            _check_fragment_types(data, columns, schema)
    if batch_size is not None:
        kwargs["batch_size"] = batch_size
    yield from data.to_batches(**kwargs)


def _check_fragment_types(data, columns, schema) -> None:
    for fragment in data.get_fragments():
        try:
            physical = fragment.physical_schema
        except (pa.ArrowException, OSError) as exc:
            raise InputError(f"cannot read {fragment.path!r} as Parquet: {exc}") from exc
        for name in columns:
            want = schema.field(name).type
            index = physical.get_field_index(name)
            if index < 0:
                raise InputError(f"file {fragment.path!r} has no column {name!r} (other files do)")
            got = physical.field(index).type
            if got != want:
                raise InputError(
                    f"column {name!r} is {got} in {fragment.path!r} but {want} in the dataset's "
                    "first file; files of one folder must agree (cast them, or pass a dataset "
                    "with an explicit schema)")


def open_source(data) -> Source:
    """Open any supported input without reading its rows (see :func:`_open_source`); every
    column name must be valid UTF-8."""
    source = _open_source(data)
    try:
        source.schema.names
    except UnicodeDecodeError as exc:
        raise InputError(f"the input has a column name that is not valid UTF-8 ({exc})") from exc
    return source


def _open_source(data) -> Source:
    """Open any supported input without reading its rows.

    Parameters
    ----------
    data : pyarrow.Table, pyarrow.RecordBatch, pyarrow.RecordBatchReader, pyarrow.dataset.Dataset,
           str or os.PathLike (a Parquet file or a directory of Parquet files), or any object
           implementing the Arrow PyCapsule stream protocol ``__arrow_c_stream__`` (polars and
           pandas DataFrames, DuckDB relations, ...).

    Returns
    -------
    Source
    """
    if isinstance(data, Source):
        return data
    if isinstance(data, pa.Table):
        return Source(data.schema, "table", data.num_rows, data)
    if isinstance(data, pa.RecordBatch):
        return Source(data.schema, "batch", data.num_rows, data)
    if isinstance(data, pa.RecordBatchReader):
        return Source(data.schema, "reader", None, data)
    # pyarrow.dataset/parquet are imported only when needed: they cost a service ~0.2 s of
    # start-up, and a Dataset object can only exist if its module was already imported.
    if "pyarrow.dataset" in sys.modules and isinstance(data, sys.modules["pyarrow.dataset"].Dataset):
        return Source(data.schema, "dataset", None, data)
    if isinstance(data, (str, os.PathLike)):
        import pyarrow.dataset as ds
        import pyarrow.parquet as pq

        path = os.fspath(data)
        if not os.path.exists(path):
            raise InputError(f"input path {path!r} does not exist")
        if os.path.isfile(path):
            # One file: the plain sequential reader holds the least memory (one row group's
            # pages at a time, no async read-ahead), which is what streaming is for.
            try:
                # Pages written with CRC checksums are verified: corruption is then an error,
                # not garbage values (files without checksums cannot be checked).
                parquet = pq.ParquetFile(path, pre_buffer=False, page_checksum_verification=True)
            except (pa.ArrowException, OSError) as exc:  # Arrow{Invalid,NotImplemented}Error...
                raise InputError(f"cannot read {path!r} as Parquet: {exc}") from exc
            source = Source(parquet.schema_arrow, "parquet_file", parquet.metadata.num_rows, parquet)
            source._path = path
            return source
        try:
            dataset = ds.dataset(path, format="parquet")
        except (pa.ArrowException, OSError) as exc:
            raise InputError(f"cannot read {path!r} as Parquet: {exc}") from exc
        source = Source(dataset.schema, "dataset", None, dataset)
        source._path = path
        return source
    if hasattr(data, "__arrow_c_stream__"):
        reader = pa.RecordBatchReader.from_stream(data)
        return Source(reader.schema, "stream", None, reader)
    raise InputError(
        f"unsupported input of type {type(data).__name__}: pass a pyarrow Table, RecordBatch, "
        "RecordBatchReader or Dataset, a Parquet path, or an object with __arrow_c_stream__ "
        "(polars, pandas, DuckDB)"
    )


def time_to_us(array: pa.Array, column: str) -> np.ndarray:
    """Convert a time column to int64 microseconds since the Unix epoch, UTC.

    Timestamps of any unit are accepted; tz-aware ones are converted to UTC (Arrow already stores
    them as UTC instants) and naive ones are taken as UTC. ``date32``/``date64`` mean midnight UTC.
    Nanoseconds are floored to the microsecond, so that ordering is kept for times before 1970.

    Raises
    ------
    InputError
        If the column holds nulls or is not a timestamp or date.
    """
    array = _one_array(array)
    typ = array.type
    if array.null_count:
        raise InputError(f"time column {column!r} has {array.null_count} null value(s)")
    if pa.types.is_dictionary(typ):
        array = array.dictionary_decode()
        typ = array.type
    if pa.types.is_timestamp(typ):
        raw = array.view(pa.int64()).to_numpy(zero_copy_only=False)
        if typ.unit == "ns":
            return np.floor_divide(raw, 1000)  # every int64 of ns is a time in range
        return _scaled(raw, _US_PER_UNIT[typ.unit], column, typ.unit)
    if pa.types.is_date32(typ):
        days = array.view(pa.int32()).to_numpy(zero_copy_only=False).astype(np.int64)
        return _scaled(days, US_PER_DAY, column, "days")
    if pa.types.is_date64(typ):
        return _scaled(array.view(pa.int64()).to_numpy(zero_copy_only=False), 1000, column, "ms")
    raise InputError(
        f"time column {column!r} has type {typ}; expected a timestamp or a date "
        "(cast strings first, e.g. pyarrow.compute.strptime or pyarrow.compute.cast)"
    )


def _one_array(array):
    """A chunked column as one array; chunks of a dictionary column are decoded one by one
    (their own dictionaries may not combine into the index type: 3 int8 chunks x 100 values)."""
    if not isinstance(array, pa.ChunkedArray):
        return array
    if pa.types.is_dictionary(array.type) and array.num_chunks > 1:
        return pa.concat_arrays([chunk.dictionary_decode() for chunk in array.chunks])
    return array.combine_chunks()


def _scaled(raw: np.ndarray, factor: int, column: str, unit: str) -> np.ndarray:
    """``raw * factor`` (microseconds), after checking that every value is a time in
    [TIME_MIN_US, TIME_MAX_US]: the product would otherwise wrap around silently."""
    if len(raw):
        lo, hi = int(raw.min()), int(raw.max())
        if lo < -(-TIME_MIN_US // factor) or hi > TIME_MAX_US // factor:
            bad = lo if lo < -(-TIME_MIN_US // factor) else hi
            raise InputError(
                f"time column {column!r} has a value of {bad} {unit} since 1970-01-01, outside "
                "the supported range 0001-01-01 .. 9999-12-31"
            )
    return raw if factor == 1 else raw * factor


def amount_to_float64(array: pa.Array, column: str, role: str = "amount",
                      ids: pa.Array | None = None, id_role: str = "customer",
                      max_abs: float | None = None,
                      first_row: int | np.ndarray = 0) -> np.ndarray:
    """Convert a numeric column to a contiguous float64 array.

    Parameters
    ----------
    ids : pyarrow.Array, optional
        The rows' ids (customers), named in the error for the first bad value.
    max_abs : float, optional
        Largest magnitude accepted (RFM: 2**63, so that exact per-customer sums cannot overflow).
    first_row : int or int64 array
        Row number of the array's first value in the whole input (for the error message), or
        every value's row number when rows were taken out before (dropped null customers).

    Raises
    ------
    InputError
        If the column is not numeric, or holds nulls, NaN or infinite values (or values beyond
        ``max_abs``).
    """
    array = _one_array(array)
    typ = array.type
    if pa.types.is_dictionary(typ):
        array = array.dictionary_decode()
        typ = array.type
    if not (pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_decimal(typ)):
        raise InputError(f"{role} column {column!r} has type {typ}; expected a number")
    if array.null_count:
        raise InputError(f"{role} column {column!r} has {array.null_count} null value(s)")
    try:
        if pa.types.is_float64(typ):
            values = array.to_numpy(zero_copy_only=False)
        elif pa.types.is_decimal(typ):
            values = decimal_to_float64(array)
        else:
            # integers past 2**53 become the nearest float64 (as decimals do; a safe cast
            # refused them although |amount| < 2**63 is documented); max_abs bounds them
            values = pc.cast(array, pa.float64(), safe=False).to_numpy(zero_copy_only=False)
    except pa.ArrowInvalid as exc:
        raise InputError(f"{role} column {column!r}: {exc}") from exc
    values = np.ascontiguousarray(values, dtype=np.float64)
    if (pa.types.is_floating(typ) or max_abs is not None) and not _all_within(values, max_abs):
        bad = ~np.isfinite(values)
        n_nan = int(np.count_nonzero(np.isnan(values)))
        if max_abs is not None:
            bad |= np.abs(values) >= max_abs
        if bad.any():
            i = int(np.argmax(bad))
            what = (f"{n_nan} NaN value(s)" if n_nan else
                    f"the value {float(values[i])!r}" + (f" (|amount| must be < {max_abs:.4g})"
                                                   if np.isfinite(values[i]) else ""))
            row = int(first_row[i]) if isinstance(first_row, np.ndarray) else first_row + i
            who = f" (first at row {row:,}, {id_role} {ids[i].as_py()!r})" if ids is not None else ""
            raise InputError(f"{role} column {column!r} has {what}{who}; amounts must be finite")
    return values


def decimal_to_float64(array: pa.Array) -> np.ndarray:
    """Each decimal (no nulls) as the float64 nearest to it.

    Arrow's cast multiplies by a rounded 10**-scale (Decimal("0.47") -> 0.47000000000000003, an
    eighth of the values of a decimal(18, 4) column), so an exact sum of amounts would sum the
    wrong numbers. Unscaled values of magnitude < 2**53 at a scale of 0..22 are exact float64s,
    as is 10**scale, and one IEEE division rounds their quotient correctly; the rest are
    printed exactly and parsed back (Arrow's parser rounds correctly), ~50x slower.
    """
    typ = array.type
    width, scale = typ.bit_width, typ.scale
    if 0 <= scale <= 22 and len(array):
        word = np.int32 if width == 32 else np.int64
        per_value = max(1, width // 64)
        words = np.frombuffer(array.buffers()[1], dtype=word,
                              count=(array.offset + len(array)) * per_value)
        words = words[array.offset * per_value:].reshape(len(array), per_value)
        low = words[:, 0].astype(np.int64, copy=False)
        # -2**53 <= low < 2**53, in one unsigned comparison (wrapped sums land far above)
        fits = (low + np.int64(2**53)).view(np.uint64) < np.uint64(2**54)
        for k in range(1, per_value):  # the higher words only extend the low word's sign
            fits &= words[:, k] == (low >> 63)
        values = low.astype(np.float64)
        values /= 10.0 ** scale
        if fits.all():
            return values
        rest = np.flatnonzero(~fits)
        values[rest] = _printed_and_parsed(array.take(pa.array(rest)))
        return values
    return _printed_and_parsed(array)


def _printed_and_parsed(array: pa.Array) -> np.ndarray:
    return pc.cast(pc.cast(array, pa.string()), pa.float64()).to_numpy(zero_copy_only=False)


def _all_within(values: np.ndarray, max_abs: float | None) -> bool:
    """True when every value is finite (and of magnitude < ``max_abs``), proved with reductions
    that need no mask: a NaN makes the min/max NaN, an infinity makes them infinite. False
    means "check value by value" (the caller finds and names the bad value)."""
    if values.size == 0:
        return True
    lo, hi = values.min(), values.max()
    limit = np.inf if max_abs is None else max_abs
    return bool(-limit < lo and hi < limit)
