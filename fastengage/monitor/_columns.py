"""Per-column state of a :class:`~fastengage.monitor.Profile` and its conversion at the Arrow
boundary. Numeric columns hold exact moments plus either every value (sorted) or a quantile
sketch; categorical columns hold exact counts per category."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import InputError
from ..kernels.monitor.profile import (merge_sorted, sketch_compress, sketch_points,
                                       sort_matrix_rows, sorted_row_stats)

NUMERIC = "numeric"
CATEGORICAL = "categorical"


def column_kind(name: str, typ: pa.DataType, forced_categorical: bool) -> str:
    """``numeric`` for integer, float and decimal columns; ``categorical`` for strings, booleans,
    dictionaries (and any integer column named in ``categorical=``)."""
    if pa.types.is_dictionary(typ):
        typ = typ.value_type
    if forced_categorical:
        if pa.types.is_floating(typ):
            raise InputError(f"column {name!r} is floating point; it cannot be categorical")
        if pa.types.is_integer(typ) or pa.types.is_string(typ) or pa.types.is_large_string(typ) \
                or pa.types.is_boolean(typ):
            return CATEGORICAL
    elif pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_decimal(typ):
        return NUMERIC
    elif pa.types.is_string(typ) or pa.types.is_large_string(typ) or pa.types.is_boolean(typ):
        return CATEGORICAL
    raise InputError(f"column {name!r} has type {typ}; drift profiles take numbers, strings, "
                     "booleans or dictionary columns")


@dataclass
class NumericState:
    """Exact count/min/max/moments; ``values`` (sorted, exact mode) or ``levels`` (sketch)."""

    n: int = 0
    n_null: int = 0
    minimum: float = np.inf
    maximum: float = -np.inf
    mean: float = 0.0
    m2: float = 0.0
    values: np.ndarray | None = field(default_factory=lambda: np.empty(0))
    levels: list | None = None
    parities: list | None = None
    rank_error: float = 0.0

    @property
    def exact(self) -> bool:
        return self.levels is None

    def std(self) -> float:
        """Population standard deviation (ddof=0, as np.std and evidently use)."""
        return float(np.sqrt(self.m2 / self.n)) if self.n else float("nan")

    def points(self):
        """Sorted values and their weights (None for unit weights)."""
        if self.exact:
            return self.values, None
        return sketch_points(self.levels)

    def to_sketch(self, k: int) -> None:
        if self.exact:
            self.levels, self.parities = [self.values], [0]
            self.values = None
            self.rank_error += sketch_compress(self.levels, self.parities, k)

    def absorb(self, other: "NumericState", k: int, exact_limit: int | None) -> None:
        """Add ``other``'s values (both states describe disjoint rows)."""
        n = self.n + other.n
        if n:
            delta = other.mean - self.mean
            self.mean = self.mean + delta * (other.n / n)
            self.m2 = self.m2 + other.m2 + delta * delta * (self.n * other.n / n)
        self.minimum = min(self.minimum, other.minimum)
        self.maximum = max(self.maximum, other.maximum)
        self.n_null += other.n_null
        keep_exact = self.exact and other.exact and (exact_limit is None or n <= exact_limit)
        if keep_exact:
            if other.n:
                self.values = merge_sorted(self.values, other.values) if self.n else other.values
        else:
            self.to_sketch(k)
            if other.exact:
                incoming, parities, error = [other.values], [0], 0.0
            else:
                incoming, parities, error = other.levels, other.parities, other.rank_error
            for h, run in enumerate(incoming):
                if h == len(self.levels):
                    self.levels.append(np.empty(0))
                    self.parities.append(parities[h])
                self.levels[h] = merge_sorted(self.levels[h], run)
            self.rank_error += error + sketch_compress(self.levels, self.parities, k)
        self.n = n


def float_values(col, column: str = "", role: str = "") -> np.ndarray:
    """float64 values of a numeric Arrow array, nulls as NaN (missing, like NaN); zero-copy for
    float64 without nulls. (Signature of an ``_io.columns.Convert``.)"""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    if pa.types.is_dictionary(col.type):
        col = col.dictionary_decode()
    if not pa.types.is_float64(col.type):
        # integers past 2**53 round to the nearest float64, as NumPy's and scipy's conversion
        # does (Arrow's safe cast refuses them: a profile of huge ids raised ArrowInvalid)
        col = pc.cast(col, pa.float64(), safe=not pa.types.is_integer(col.type))
    return col.to_numpy(zero_copy_only=False)


def numeric_states(batch: pa.RecordBatch, names: list[str], n_threads) -> list[NumericState]:
    """One state per numeric column of a batch: values sorted (NaN and nulls counted as
    missing), moments from the sorted run."""
    return value_states([float_values(batch.column(name)) for name in names], n_threads)


def value_states(arrays: list[np.ndarray], n_threads) -> list[NumericState]:
    """One state per float64 array of equal length (NaN missing): values sorted, moments from
    the sorted run."""
    if not arrays:
        return []
    names = range(len(arrays))
    rows = arrays[0].shape[0]
    matrix = np.empty((len(arrays), rows), dtype=np.float64)
    for j, values in enumerate(arrays):
        matrix[j] = values
    sort_matrix_rows(matrix)
    # NaN (and nulls, which arrive as NaN) sort last, and searchsorted orders NaN last as well:
    # the first NaN position is each row's count of valid values.
    n_valid = np.array([np.searchsorted(matrix[j], np.nan) for j in range(len(names))],
                       dtype=np.int64)
    mean = np.empty(len(names))
    m2 = np.empty(len(names))
    sorted_row_stats(matrix, n_valid, mean, m2, n_threads=n_threads)
    states = []
    for j in range(len(names)):
        n = int(n_valid[j])
        states.append(NumericState(
            n=n, n_null=rows - n,
            minimum=float(matrix[j, 0]) if n else np.inf,
            maximum=float(matrix[j, n - 1]) if n else -np.inf,
            mean=float(mean[j]), m2=float(m2[j]), values=matrix[j, :n]))
    return states


@dataclass
class CategoricalState:
    """Exact counts: ``values`` (Arrow array of distinct categories, sorted) and ``counts``."""

    values: pa.Array
    counts: np.ndarray
    n_null: int = 0

    @property
    def n(self) -> int:
        return int(self.counts.sum())

    @classmethod
    def empty(cls, typ: pa.DataType | None = None) -> "CategoricalState":
        """No rows yet. ``typ``: the column's Arrow type when known (a dictionary or large string
        type is stored as its value type / string, as :meth:`from_array` does); unknown (a
        profile made from kinds only), the categories are typed ``null`` until rows arrive."""
        if typ is None:
            return cls(pa.array([], pa.null()), np.zeros(0, dtype=np.int64), 0)
        return cls.from_array(pa.array([], typ))

    @classmethod
    def from_array(cls, array) -> "CategoricalState":
        if isinstance(array, pa.ChunkedArray):
            array = array.combine_chunks()
        if pa.types.is_dictionary(array.type):
            array = array.dictionary_decode()
        if pa.types.is_large_string(array.type):
            array = array.cast(pa.string())
        n_null = array.null_count
        counted = pc.value_counts(array.drop_null())
        return cls._sorted(counted.field("values"), counted.field("counts"), n_null)

    @classmethod
    def _sorted(cls, values, counts, n_null) -> "CategoricalState":
        order = pc.sort_indices(values)
        return cls(values.take(order),
                   np.ascontiguousarray(counts.take(order).to_numpy(), dtype=np.int64), n_null)

    def absorb(self, other: "CategoricalState") -> None:
        # No categories on one side: nothing to combine, and its type says nothing about the
        # other's (an empty state may be typed null, or come from a file saved by an older
        # version that typed every empty state string).
        if len(other.values) == 0:
            self.n_null += other.n_null
            return
        if len(self.values) == 0:
            self.values, self.counts = other.values, other.counts.copy()
            self.n_null += other.n_null
            return
        if self.values.type != other.values.type:
            raise InputError(f"cannot merge categories of type {self.values.type} with "
                             f"{other.values.type}")
        table = pa.table({"v": pa.concat_arrays([self.values, other.values]),
                          "c": np.concatenate([self.counts, other.counts])})
        grouped = table.group_by("v").aggregate([("c", "sum")])
        merged = CategoricalState._sorted(grouped.column("v").combine_chunks(),
                                          grouped.column("c_sum").combine_chunks(), 0)
        self.values, self.counts = merged.values, merged.counts
        self.n_null += other.n_null
