"""Saving and loading drift profiles in the safe bundle format, validating every member.

Layout (kind ``monitor_profile``, version 1): ``meta.json`` holds the mode, sizes and, per
column, its name, kind and scalars; arrays ``c<j>_values`` (exact sorted values) or
``c<j>_level<h>`` (sketch level h, weight 2**h); Arrow tables ``c<j>_categories`` (``value``,
``count``). A loader checks every field and array (type, shape, finiteness, order, totals)
before anything uses it; a problem raises ModelFormatError naming the member.
"""
from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .._io.persist import load_bundle, save_bundle
from ..errors import ModelFormatError
from ._columns import CATEGORICAL, NUMERIC, CategoricalState, NumericState

KIND = "monitor_profile"
VERSION = 1


def save_profile(profile, path) -> None:
    columns, arrays, tables = [], {}, {}
    for j, (name, kind) in enumerate(profile.kinds.items()):
        st = profile.state(name)
        entry = {"name": name, "kind": kind, "n_null": int(st.n_null)}
        if kind == NUMERIC:
            entry.update(n=int(st.n), exact=bool(st.exact), rank_error=float(st.rank_error),
                         mean=float(st.mean), m2=float(st.m2),
                         min=float(st.minimum) if st.n else None,
                         max=float(st.maximum) if st.n else None)
            if st.exact:
                arrays[f"c{j}_values"] = st.values
            else:
                entry["parities"] = [int(p) for p in st.parities]
                for h, level in enumerate(st.levels):
                    arrays[f"c{j}_level{h}"] = level
        else:
            tables[f"c{j}_categories"] = pa.table({"value": st.values, "count": st.counts})
        columns.append(entry)
    meta = {"mode": profile.mode, "exact_limit": profile.exact_limit,
            "sketch_size": profile.sketch_size, "columns": columns}
    save_bundle(path, KIND, VERSION, meta, arrays, tables)


def _fail(member: str, problem: str):
    raise ModelFormatError(f"{KIND} file: {member}: {problem}")


def _int(entry: dict, key: str, member: str, minimum: int = 0) -> int:
    value = entry.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        _fail(member, f"{key} must be an integer >= {minimum}, got {value!r}")
    return value


def _float(entry: dict, key: str, member: str, *, nonneg: bool = False) -> float:
    value = entry.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or (nonneg and value < 0):
        _fail(member, f"{key} must be a finite {'non-negative ' if nonneg else ''}number, "
                      f"got {value!r}")
    return float(value)


def _sorted_finite(bundle, name: str, max_len: int | None = None) -> np.ndarray:
    arr = bundle.arrays.get(name)
    if arr is None:
        _fail(name, "array is missing")
    if arr.dtype != np.float64 or arr.ndim != 1:
        _fail(name, f"must be a 1-D float64 array, got {arr.dtype} with shape {arr.shape}")
    if max_len is not None and arr.shape[0] > max_len:
        _fail(name, f"holds {arr.shape[0]} values, more than the sketch size {max_len}")
    if not np.all(np.isfinite(arr)):
        _fail(name, "holds NaN or infinite values")
    if arr.shape[0] > 1 and np.any(arr[1:] < arr[:-1]):
        _fail(name, "values are not sorted")
    return np.ascontiguousarray(arr)


def _numeric(bundle, j: int, entry: dict, member: str, sketch_size: int) -> NumericState:
    n = _int(entry, "n", member)
    st = NumericState(n=n, n_null=_int(entry, "n_null", member),
                      mean=_float(entry, "mean", member), m2=_float(entry, "m2", member,
                                                                    nonneg=True),
                      rank_error=_float(entry, "rank_error", member, nonneg=True))
    if n:
        st.minimum = _float(entry, "min", member)
        st.maximum = _float(entry, "max", member)
        slack = 1e-9 * (abs(st.minimum) + abs(st.maximum) + 1.0)  # rounding of the mean
        if st.minimum > st.maximum or not st.minimum - slack <= st.mean <= st.maximum + slack:
            _fail(member, "min, mean and max are inconsistent")
    exact = entry.get("exact")
    if not isinstance(exact, bool):
        _fail(member, f"exact must be true or false, got {exact!r}")
    if exact:
        values = _sorted_finite(bundle, f"c{j}_values")
        if values.shape[0] != n:
            _fail(f"c{j}_values", f"holds {values.shape[0]} values but the column counts {n}")
        if n and (values[0] != st.minimum or values[-1] != st.maximum):
            _fail(f"c{j}_values", "first/last value differ from the stored min/max")
        st.values = values
        return st
    parities = entry.get("parities")
    if not isinstance(parities, list) or not parities or len(parities) > 64 or \
            any(p not in (0, 1) or isinstance(p, bool) for p in parities):
        _fail(member, f"parities must be a non-empty list of 0/1 (one per level), got {parities!r}")
    levels = [_sorted_finite(bundle, f"c{j}_level{h}", sketch_size) for h in range(len(parities))]
    extra = [k for k in bundle.arrays if k.startswith(f"c{j}_level") and
             k not in {f"c{j}_level{h}" for h in range(len(parities))}]
    if extra:
        _fail(extra[0], "is not one of the column's sketch levels")
    total = sum(level.shape[0] * 2 ** h for h, level in enumerate(levels))
    if total != n:
        _fail(member, f"sketch levels hold a total weight of {total} but the column counts {n}")
    for h, level in enumerate(levels):
        if level.shape[0] and (level[0] < st.minimum or level[-1] > st.maximum):
            _fail(f"c{j}_level{h}", "holds values outside the stored min/max")
    st.values, st.levels, st.parities = None, levels, list(parities)
    return st


def _categorical(bundle, j: int, entry: dict, member: str) -> CategoricalState:
    name = f"c{j}_categories"
    try:
        table = bundle.tables.get(name)
    except UnicodeDecodeError as exc:  # a field name that is not UTF-8 escapes the bundle reader
        _fail(name, f"unreadable ({exc})")
    if table is None:
        _fail(name, "table is missing")
    if table.schema.names != ["value", "count"]:
        _fail(name, f"must have columns ['value', 'count'], got {table.schema.names}")
    values = table.column("value").combine_chunks()
    counts = table.column("count").combine_chunks()
    typ = values.type
    if pa.types.is_null(typ) and len(values) == 0:
        pass  # no rows yet and the column's type unknown (CategoricalState.empty)
    elif not (pa.types.is_integer(typ) or pa.types.is_string(typ) or pa.types.is_boolean(typ)):
        _fail(name, f"category values have unsupported type {typ}")
    if not pa.types.is_int64(counts.type):
        _fail(name, f"counts must be int64, got {counts.type}")
    if values.null_count or counts.null_count:
        _fail(name, "holds null values or counts")
    counts_np = np.ascontiguousarray(counts.to_numpy(), dtype=np.int64)
    if np.any(counts_np <= 0):
        _fail(name, "counts must be positive")
    if len(values) and pc.count_distinct(values).as_py() != len(values):
        _fail(name, "categories are not distinct")
    state = CategoricalState._sorted(values, counts, _int(entry, "n_null", member))
    return state


def load_profile(cls, path):
    bundle = load_bundle(path, KIND, VERSION)
    meta = bundle.meta
    if not isinstance(meta, dict):
        _fail("meta.json", "meta must be an object")
    mode = meta.get("mode")
    if mode not in ("auto", "exact", "sketch"):
        _fail("meta.json", f"unknown mode {mode!r}")
    sketch_size = _int(meta, "sketch_size", "meta.json", 8)
    exact_limit = _int(meta, "exact_limit", "meta.json")
    columns = meta.get("columns")
    if not isinstance(columns, list):
        _fail("meta.json", "columns must be a list")
    kinds, states = {}, {}
    for j, entry in enumerate(columns):
        member = f"meta.json columns[{j}]"
        if not isinstance(entry, dict):
            _fail(member, "must be an object")
        name, kind = entry.get("name"), entry.get("kind")
        if not isinstance(name, str) or name in kinds:
            _fail(member, f"name must be a distinct string, got {name!r}")
        if kind not in (NUMERIC, CATEGORICAL):
            _fail(member, f"unknown kind {kind!r}")
        kinds[name] = kind
        states[name] = _numeric(bundle, j, entry, member, sketch_size) if kind == NUMERIC \
            else _categorical(bundle, j, entry, member)
    profile = cls(kinds, mode=mode, exact_limit=exact_limit, sketch_size=sketch_size)
    profile.states.update(states)
    return profile
