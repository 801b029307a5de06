"""Mergeable drift profiles: what a service keeps about its traffic so that drift can be read
later by comparing two profiles."""
from __future__ import annotations

import threading
from typing import Sequence

import pyarrow as pa

from .._io.columns import consented_input
from .._io.sources import open_source
from ..errors import InputError
from ..kernels.common.config import MONITOR_EXACT_LIMIT, MONITOR_SKETCH_K
from ._columns import (CATEGORICAL, NUMERIC, CategoricalState, NumericState, column_kind,
                       numeric_states)

_MODES = ("auto", "exact", "sketch")


class Profile:
    """Per-column summaries of a data set, built batch by batch and mergeable across workers.

    Numeric columns (integers, floats, decimals) keep exact count, null count, min, max, mean and
    variance, plus either every value sorted (``exact``: drift statistics equal scipy's) or a
    quantile sketch (``sketch``) whose guaranteed rank error is tracked per column
    (``summary()["rank_error"]``: every count of values <= x is within that many of the truth;
    at most ``n * (ceil(log2(n / sketch_size)) + 1) / sketch_size``). ``mode="auto"`` (default)
    stays exact up to ``exact_limit`` values per column (default 2,000,000), then sketches.
    NaN counts as missing, like null. Categorical columns (strings, booleans, dictionaries, and
    integer columns named in ``categorical=``) keep exact counts per category.

    ``update`` and ``merge`` are thread-safe and give the same profile for any split of the rows
    (exact mode: identical values; moments up to floating-point rounding).
    """

    def __init__(self, kinds: dict[str, str], *, mode: str = "auto",
                 exact_limit: int | None = None, sketch_size: int | None = None):
        if mode not in _MODES:
            raise InputError(f"mode must be one of {_MODES}, got {mode!r}")
        self.kinds = dict(kinds)
        self.mode = mode
        self.exact_limit = int(exact_limit if exact_limit is not None else MONITOR_EXACT_LIMIT)
        self.sketch_size = int(sketch_size if sketch_size is not None else MONITOR_SKETCH_K)
        if self.sketch_size < 8:
            raise InputError(f"sketch_size must be >= 8, got {self.sketch_size}")
        self.states: dict[str, NumericState | CategoricalState | None] = \
            {name: None for name in self.kinds}
        self._lock = threading.RLock()

    # --- construction ---------------------------------------------------------------------
    @classmethod
    def from_data(cls, data, columns: Sequence[str] | None = None, *,
                  categorical: Sequence[str] = (), mode: str = "auto",
                  exact_limit: int | None = None, sketch_size: int | None = None,
                  n_threads: int | None = None, consent=None, customer: str | None = None,
                  time: str | None = None) -> "Profile":
        """Profile ``columns`` (default: every numeric, string, boolean or dictionary column) of
        any Arrow input (table, batches, Parquet path or dataset streamed, polars/pandas/DuckDB).

        ``consent`` (a :class:`fastengage.privacy.ConsentFilter`) profiles only the rows whose
        customer (column ``customer``) had consent for the filter's purpose at the row's
        ``time`` (without ``time``: at the filter's ``as_of``); what was excluded is in
        ``consent.last_report``. The profiled columns are the same as without it.
        """
        source = open_source(consented_input(data, consent, customer=customer, time=time))
        profile = cls(_kinds(source.schema, columns, categorical), mode=mode,
                      exact_limit=exact_limit, sketch_size=sketch_size)
        for batch in source.batches(list(profile.kinds)):
            profile.update(batch, n_threads=n_threads)
        for name, kind in profile.kinds.items():
            if kind == CATEGORICAL and profile.states[name] is None:
                # no rows: keep the column's type (a saved empty profile reads back the same)
                profile.states[name] = CategoricalState.empty(source.schema.field(name).type)
        return profile

    @property
    def columns(self) -> list[str]:
        return list(self.kinds)

    def update(self, batch, *, n_threads: int | None = None, consent=None,
               customer: str | None = None, time: str | None = None) -> "Profile":
        """Add the rows of ``batch`` (any Arrow input holding the profiled columns); with
        ``consent``, only those whose customer had consent (as in :meth:`from_data`)."""
        source = open_source(consented_input(batch, consent, customer=customer, time=time))
        source.require({name: name for name in self.kinds})
        for part in source.batches(list(self.kinds)):
            self._add(_batch_states(part, self.kinds, n_threads))
        return self

    def merge(self, other: "Profile") -> "Profile":
        """Add another profile of the same columns (e.g. from another worker) to this one."""
        if not isinstance(other, Profile):
            raise InputError(f"merge takes a Profile, got {type(other).__name__}")
        if other.kinds != self.kinds:
            raise InputError(f"profiles differ in columns or kinds: {self.kinds} vs {other.kinds}")
        if other is self:
            raise InputError("a profile cannot be merged with itself")
        with other._lock:
            states = {name: _copy_state(state) for name, state in other.states.items()}
        self._add(states)
        return self

    def _add(self, states: dict) -> None:
        with self._lock:
            for name, incoming in states.items():
                if incoming is None:
                    continue
                current = self.states[name]
                if current is None:
                    current = incoming
                    if isinstance(current, NumericState):
                        current.absorb(NumericState(), self.sketch_size, self._limit())
                else:
                    if isinstance(current, NumericState):
                        current.absorb(incoming, self.sketch_size, self._limit())
                    else:
                        current.absorb(incoming)
                if isinstance(current, NumericState) and self.mode == "sketch":
                    current.to_sketch(self.sketch_size)
                self.states[name] = current

    def _limit(self) -> int | None:
        return None if self.mode == "exact" else (0 if self.mode == "sketch" else self.exact_limit)

    # --- reading --------------------------------------------------------------------------
    def state(self, column: str):
        if column not in self.kinds:
            raise InputError(f"column {column!r} is not in this profile; it has {self.columns}")
        state = self.states[column]
        if state is None:
            return NumericState() if self.kinds[column] == NUMERIC else CategoricalState.empty()
        return state

    def summary(self) -> pa.Table:
        """One row per column: kind, count, null_count, min, max, mean, std (numeric), exact,
        rank_error (absolute bound on any count of values <= x), distinct (categorical)."""
        rows = {k: [] for k in ("column", "kind", "count", "null_count", "min", "max", "mean",
                                "std", "exact", "rank_error", "distinct")}
        with self._lock:
            for name, kind in self.kinds.items():
                st = self.state(name)
                numeric = kind == NUMERIC
                rows["column"].append(name)
                rows["kind"].append(kind)
                rows["count"].append(st.n)
                rows["null_count"].append(st.n_null)
                rows["min"].append(st.minimum if numeric and st.n else None)
                rows["max"].append(st.maximum if numeric and st.n else None)
                rows["mean"].append(st.mean if numeric and st.n else None)
                rows["std"].append(st.std() if numeric and st.n else None)
                rows["exact"].append(st.exact if numeric else True)
                rows["rank_error"].append(st.rank_error if numeric else 0.0)
                rows["distinct"].append(None if numeric else len(st.values))
        return pa.table(rows, schema=pa.schema([
            ("column", pa.string()), ("kind", pa.string()), ("count", pa.int64()),
            ("null_count", pa.int64()), ("min", pa.float64()), ("max", pa.float64()),
            ("mean", pa.float64()), ("std", pa.float64()), ("exact", pa.bool_()),
            ("rank_error", pa.float64()), ("distinct", pa.int64())]))

    # --- privacy --------------------------------------------------------------------------
    def forget(self, customers, *, request: str | None = None, id_columns=None):
        """Erase customers' ids from this profile (the ``fastengage.privacy.forget`` protocol);
        returns an :class:`~fastengage.privacy.AuditRecord`.

        A profile links no value to a customer; it holds ids only in a column that is an id
        column. Categories equal to a forgotten id are dropped from every categorical column
        (or only from ``id_columns``); numeric columns lose their values equal to a forgotten
        id only when named in ``id_columns`` (exact mode; a sketched one is refused). Values of
        the other columns carry no id but still count the customers' rows: the record is then
        ``exact=False`` and says so. See ``fastengage/monitor/_forget.py``.
        """
        from ._forget import forget_ids

        return forget_ids(self, customers, request, id_columns)

    # --- persistence ----------------------------------------------------------------------
    def save(self, path) -> None:
        """Write the profile in the safe bundle format (JSON + .npy + Arrow IPC, never pickle)."""
        from ._persist import save_profile

        with self._lock:
            save_profile(self, path)

    @classmethod
    def load(cls, path) -> "Profile":
        """Read a saved profile; a malformed file raises ModelFormatError naming the member."""
        from ._persist import load_profile

        return load_profile(cls, path)

    def __repr__(self) -> str:
        return f"Profile({len(self.kinds)} columns, mode={self.mode!r})"


def _kinds(schema: pa.Schema, columns, categorical) -> dict[str, str]:
    categorical = set(categorical or ())
    if columns is None:
        kinds = {}
        for fld in schema:
            try:
                kinds[fld.name] = column_kind(fld.name, fld.type, fld.name in categorical)
            except InputError:
                continue  # default columns: every column a profile can describe
        if not kinds:
            raise InputError("no numeric, string, boolean or dictionary column to profile")
        return kinds
    if isinstance(columns, str):
        columns = [columns]
    missing = [c for c in columns if c not in schema.names]
    if missing:
        from ..errors import ColumnNotFoundError

        raise ColumnNotFoundError(f"column(s) {missing} not in the input; available: "
                                  f"{schema.names}")
    unknown = categorical - set(columns)
    if unknown:
        raise InputError(f"categorical= names {sorted(unknown)}, which are not in columns=")
    return {c: column_kind(c, schema.field(c).type, c in categorical) for c in columns}


def _batch_states(batch: pa.RecordBatch, kinds: dict[str, str], n_threads) -> dict:
    numeric = [c for c, k in kinds.items() if k == NUMERIC]
    states = dict(zip(numeric, numeric_states(batch, numeric, n_threads)))
    for c, k in kinds.items():
        if k == CATEGORICAL:
            states[c] = CategoricalState.from_array(batch.column(c))
    return states


def _copy_state(state):
    if state is None:
        return None
    if isinstance(state, CategoricalState):
        return CategoricalState(state.values, state.counts.copy(), state.n_null)
    copy = NumericState(state.n, state.n_null, state.minimum, state.maximum, state.mean,
                        state.m2, None if state.values is None else state.values,
                        None if state.levels is None else list(state.levels),
                        None if state.parities is None else list(state.parities),
                        state.rank_error)
    return copy
