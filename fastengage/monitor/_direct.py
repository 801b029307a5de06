"""drift() of two raw inputs without building sorted profiles.

A profile keeps every value sorted so that it can be saved, merged and compared later. When
both sides of ``drift`` are data, nothing needs keeping: each numeric column goes straight from
its Arrow buffer (zero-copy for float64 without nulls) to ``kernels/monitor/buckets.py``, which
gets every statistic from bucket counts and sorts only the few buckets that need order. A column
the kernel declines (few distinct values: most buckets would need sorting) is sorted as a
profile does it. Categorical columns are counted as a profile counts them.
"""
from __future__ import annotations

import numpy as np

from .._io.columns import Convert, read_columns
from ..kernels.common import config
from ..kernels.common.launch import resolve_threads
from ..kernels.monitor import buckets
from ._columns import CATEGORICAL, NUMERIC, NumericState, column_kind, float_values, value_states
from .profile import Profile, _kinds

#: Sources that can be read more than once (a stream is read once, by the profile path).
REREADABLE = ("table", "batch", "parquet_file", "dataset")
_FLOAT = Convert(float_values, np.float64)


def kinds_of(ref_src, cur_src, columns, categorical) -> dict[str, str]:
    """Column kinds from the reference (as a profile decides them), checked on the current."""
    from ..errors import InputError

    kinds = _kinds(ref_src.schema, columns, categorical)
    for c, kind in kinds.items():
        if c not in cur_src.schema.names:
            raise InputError(f"column {c!r} is {kind} in the reference but absent in the "
                             f"current data")
        cur_kind = column_kind(c, cur_src.schema.field(c).type, kind == CATEGORICAL)
        if cur_kind != kind:
            raise InputError(f"column {c!r} is {kind} in the reference but {cur_kind} in the "
                             f"current data")
    return kinds


def direct_states(ref_src, cur_src, kinds, n_bins, n_threads):
    """Per numeric column ``(ref state, current state, (ks, wasserstein, psi, js))`` (states
    without values: counts and moments), and the categorical columns' two profiles."""
    numeric = [c for c, k in kinds.items() if k == NUMERIC]
    categorical = {c: k for c, k in kinds.items() if k == CATEGORICAL}
    roles = {c: c for c in numeric}
    ref_vals = read_columns(ref_src, roles, {c: _FLOAT for c in numeric})
    cur_vals = read_columns(cur_src, roles, {c: _FLOAT for c in numeric})
    out, declined = {}, []
    m = len(numeric)
    stats = np.empty((m, buckets.N_STATS))
    ref_p = np.zeros((m, n_bins))
    cur_p = np.zeros((m, n_bins))
    # every column straight from its buffer (zero-copy for float64 without nulls), one launch
    ref_cols = [np.ascontiguousarray(ref_vals[c]) for c in numeric]  # alive during the launch
    cur_cols = [np.ascontiguousarray(cur_vals[c]) for c in numeric]
    rows_a = ref_cols[0].shape[0] if m else 0
    rows_b = cur_cols[0].shape[0] if m else 0
    if m:
        buckets.drift_columns(_addresses(ref_cols), _addresses(cur_cols), rows_a, rows_b, n_bins,
                              config.MONITOR_PSI_EPS, config.MONITOR_BUCKET_ROWS,
                              config.MONITOR_BUCKET_MAX, config.MONITOR_BUCKET_SAMPLE,
                              config.MONITOR_BUCKET_GRID, config.MONITOR_BUCKET_GATHER_LIMIT,
                              stats, ref_p, cur_p, resolve_threads(n_threads),
                              n_threads=n_threads)
    for j, c in enumerate(numeric):
        st = stats[j]
        if st[buckets.STATUS]:
            declined.append(c)
            continue
        na, nb = int(st[buckets.N_REF]), int(st[buckets.N_CUR])
        ref = NumericState(n=na, n_null=rows_a - na, mean=float(st[buckets.MEAN_REF]),
                           m2=float(st[buckets.M2_REF]), values=None)
        cur = NumericState(n=nb, n_null=rows_b - nb, values=None)
        out[c] = (ref, cur, tuple(float(st[s]) for s in
                                  (buckets.KS, buckets.WASS, buckets.PSI, buckets.JS)))
    sorted_ref = value_states([ref_vals[c] for c in declined], n_threads) if declined else []
    sorted_cur = value_states([cur_vals[c] for c in declined], n_threads) if declined else []
    profiles = None
    if categorical:
        profiles = tuple(Profile.from_data(src, list(categorical), categorical=list(categorical),
                                           mode="exact", n_threads=n_threads)
                         for src in (ref_src, cur_src))
    return out, dict(zip(declined, zip(sorted_ref, sorted_cur))), profiles


def _addresses(columns: list[np.ndarray]) -> np.ndarray:
    """The address of each column's first value (the kernel reads ``rows`` values there)."""
    return np.array([col.__array_interface__["data"][0] for col in columns], dtype=np.int64)
