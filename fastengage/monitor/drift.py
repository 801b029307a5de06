"""Drift between a reference and a current data set (or their saved profiles), per column."""
from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
from scipy import stats

from ..errors import InputError
from ..kernels.common import config
from ..kernels.monitor.drift import categorical_drift, numeric_drift
from ..kernels.monitor.ksdist import smirnov_many
from .._io.columns import consented_input
from .._io.sources import open_source
from ._columns import NUMERIC
from ._direct import REREADABLE, direct_states, kinds_of
from .profile import Profile

SCHEMA = pa.schema([
    ("column", pa.string()), ("kind", pa.string()),
    ("n_reference", pa.int64()), ("n_current", pa.int64()),
    ("null_rate_reference", pa.float64()), ("null_rate_current", pa.float64()),
    ("null_rate_change", pa.float64()),
    ("psi", pa.float64()), ("js_distance", pa.float64()),
    ("ks_statistic", pa.float64()), ("ks_pvalue", pa.float64()),
    ("wasserstein", pa.float64()), ("wasserstein_norm", pa.float64()),
    ("chi2_statistic", pa.float64()), ("chi2_pvalue", pa.float64()),
    ("new_categories", pa.list_(pa.string())), ("missing_categories", pa.list_(pa.string())),
    ("rank_error", pa.float64()), ("method", pa.string()), ("drift", pa.bool_()),
])


def _as_profile(data, columns, categorical, n_threads, consent, kinds=None) -> Profile:
    if isinstance(data, Profile):
        if consent is not None:
            raise InputError("consent= filters raw data; a Profile is already built: build it "
                             "with Profile.from_data(..., consent=...)")
        return data
    if kinds is not None:
        columns = list(kinds)
        categorical = [c for c, k in kinds.items() if k != NUMERIC]
    return Profile.from_data(data, columns, categorical=categorical or (), mode="exact",
                             n_threads=n_threads, **(consent or {}))


def drift(reference, current, *, columns=None, categorical=(), n_bins: int | None = None,
          psi_threshold: float | None = None, pvalue_threshold: float | None = None,
          wasserstein_threshold: float | None = None, js_threshold: float | None = None,
          null_rate_threshold: float | None = None, ks_method: str = "auto",
          n_threads: int | None = None, consent=None, customer: str | None = None,
          time: str | None = None) -> pa.Table:
    """Drift of every column of ``current`` against ``reference``: one row per column.

    ``reference`` and ``current`` are :class:`Profile` objects (e.g. loaded from disk) or any
    Arrow input (profiled exactly on the fly). Numeric columns get PSI and Jensen-Shannon
    distance on ``n_bins`` (default 10) quantile bins of the reference (bin b holds
    ``edge[b-1] < x <= edge[b]``, edges at the reference's inverted-CDF quantiles b/n_bins,
    repeated edges merged; empty bins count as 1e-4 in PSI), the two-sample Kolmogorov-Smirnov
    statistic with its p-value as ``scipy.stats.ks_2samp`` gives it (``ks_method="auto"``, its
    default and evidently's: the exact distribution when both sides have at most 10,000 values,
    else Smirnov's asymptotic one; ``"asymp"``: always asymptotic), the
    Wasserstein-1 distance and that distance divided by the reference's standard deviation
    (``wasserstein_norm``, as evidently). Categorical columns get the chi-square goodness-of-fit
    of current counts against the reference's proportions (``scipy.stats.chisquare``; a category
    absent from the reference makes it inf), PSI and Jensen-Shannon distance on category
    proportions, and the lists of new and missing categories. Both get the null rates.

    ``drift`` is true when, for references of more than 1000 values, ``wasserstein_norm >= 0.1``
    (numeric) or ``js_distance >= 0.1`` (categorical); for smaller references the test p-value
    is below 0.05 (KS or chi-square); and in every case when ``psi >= 0.2`` or the null rate
    moved by more than 0.1. ``method`` names the rule that was applied. ``rank_error`` is the
    relative rank-error bound of sketched columns (0 when both sides are exact): then the KS
    statistic is within that bound and the Wasserstein distance within bound * (max - min).

    ``consent`` (a :class:`fastengage.privacy.ConsentFilter`) keeps only the rows of raw
    ``reference`` and ``current`` inputs whose customer (column ``customer``) had consent at the
    row's ``time``, as :meth:`Profile.from_data` does (``consent.last_report``: the current
    side's exclusions); a :class:`Profile` input must have been built with it instead.
    """
    n_bins = int(n_bins if n_bins is not None else config.MONITOR_PSI_BINS)
    if n_bins < 2:
        raise InputError(f"n_bins must be >= 2, got {n_bins}")
    if ks_method not in ("auto", "asymp"):
        raise InputError(f"ks_method must be 'auto' or 'asymp', got {ks_method!r}")
    kinds, states, computed = _states(reference, current, columns, categorical,
                                      (consent, customer, time), n_bins, n_threads)
    thresholds = dict(
        psi=config.MONITOR_PSI_THRESHOLD if psi_threshold is None else psi_threshold,
        p=config.MONITOR_PVALUE_THRESHOLD if pvalue_threshold is None else pvalue_threshold,
        w=config.MONITOR_WASSERSTEIN_THRESHOLD if wasserstein_threshold is None
        else wasserstein_threshold,
        js=config.MONITOR_JS_THRESHOLD if js_threshold is None else js_threshold,
        null=config.MONITOR_NULL_RATE_THRESHOLD if null_rate_threshold is None
        else null_rate_threshold)
    rows = {name: [] for name in SCHEMA.names}
    sorted_cols = [c for c, k in kinds.items() if k == NUMERIC and c not in computed]
    num = dict(zip(sorted_cols, _numeric_stats([states[c][0] for c in sorted_cols],
                                               [states[c][1] for c in sorted_cols],
                                               n_bins, ks_method, n_threads)))
    if computed:
        ks, wass, psi, js = (np.array(v) for v in zip(*computed.values()))
        num.update(zip(computed, numeric_rows([states[c][0] for c in computed],
                                              [states[c][1] for c in computed],
                                              ks, wass, psi, js, ks_method, n_threads)))
    for c, kind in kinds.items():
        rs, cs = states[c]
        row = num[c] if kind == NUMERIC else _categorical_stats(rs, cs)
        row["column"], row["kind"] = c, kind
        row["n_reference"], row["n_current"] = rs.n, cs.n
        row["null_rate_reference"] = _rate(rs.n_null, rs.n)
        row["null_rate_current"] = _rate(cs.n_null, cs.n)
        row["null_rate_change"] = row["null_rate_current"] - row["null_rate_reference"]
        row["method"], row["drift"] = _flag(row, kind, rs.n, thresholds)
        for name in SCHEMA.names:
            rows[name].append(row.get(name))
    return pa.table(rows, schema=SCHEMA)


def _states(reference, current, columns, categorical, consent, n_bins, n_threads):
    """``(kinds, {column: (ref state, current state)}, {numeric column: (ks, wasserstein, psi,
    js)} already computed)``. Two raw inputs that can be read again go the direct way
    (``_direct.py``: no sorted profiles); a Profile on either side, or a stream, is profiled.
    ``consent``: ``(ConsentFilter or None, customer column, time column)``."""
    if isinstance(columns, str):
        columns = [columns]
    rule, customer, time = consent
    consent = None if rule is None else dict(consent=rule, customer=customer, time=time)
    if not isinstance(reference, Profile) and not isinstance(current, Profile):
        sources = [open_source(consented_input(data, rule, customer=customer, time=time))
                   for data in (reference, current)]
        consent = None  # applied
        if all(src.kind in REREADABLE for src in sources):
            kinds = kinds_of(*sources, columns, categorical)
            computed, declined, profiles = direct_states(*sources, kinds, n_bins, n_threads)
            states = {c: (ref, cur) for c, (ref, cur, _) in computed.items()}
            states.update(declined)
            if profiles is not None:
                states.update({c: (profiles[0].state(c), profiles[1].state(c))
                               for c in profiles[0].kinds})
            return kinds, {c: states[c] for c in kinds}, \
                {c: stats for c, (_, _, stats) in computed.items()}
        reference, current = sources
    ref = _as_profile(reference, columns, categorical, n_threads, consent)
    if columns is None:
        columns = ref.columns
    missing = [c for c in columns if c not in ref.kinds]
    if missing:
        raise InputError(f"column(s) {missing} are not in the reference profile")
    kinds = {c: ref.kinds[c] for c in columns}
    cur = _as_profile(current, None, None, n_threads, consent, kinds=kinds)
    for c in columns:
        if cur.kinds.get(c) != kinds[c]:
            raise InputError(f"column {c!r} is {kinds[c]} in the reference but "
                             f"{cur.kinds.get(c, 'absent')} in the current data")
    return kinds, {c: (ref.state(c), cur.state(c)) for c in columns}, {}


def _rate(nulls: int, valid: int) -> float:
    total = nulls + valid
    return nulls / total if total else float("nan")


def _flag(row, kind, n_ref, t) -> tuple[str, bool]:
    if kind == NUMERIC:
        method, stat = ("ks_pvalue", row["ks_pvalue"]) if n_ref <= config.MONITOR_SMALL_SAMPLE \
            else ("wasserstein_norm", row["wasserstein_norm"])
    else:
        method, stat = ("chi2_pvalue", row["chi2_pvalue"]) if n_ref <= config.MONITOR_SMALL_SAMPLE \
            else ("js_distance", row["js_distance"])
    if stat is None or not np.isfinite(stat) and method.endswith("pvalue"):
        flagged = False if stat is None or np.isnan(stat) else True
    elif method.endswith("pvalue"):
        flagged = stat < t["p"]
    else:
        flagged = stat >= (t["w"] if method == "wasserstein_norm" else t["js"])
    psi = row["psi"]
    flagged = flagged or (psi is not None and psi >= t["psi"])
    change = row["null_rate_change"]
    flagged = flagged or (np.isfinite(change) and abs(change) > t["null"])
    return method, bool(flagged)


def _numeric_stats(refs, curs, n_bins, ks_method, n_threads) -> list[dict]:
    if not refs:
        return []
    ref_flat = _flatten(refs)
    cur_flat = _flatten(curs)
    m = len(refs)
    ks, wass, psi, js = (np.empty(m) for _ in range(4))
    bins = np.empty(m, dtype=np.int64)
    ref_p = np.zeros((m, n_bins))
    cur_p = np.zeros((m, n_bins))
    numeric_drift(*ref_flat, *cur_flat, n_bins, config.MONITOR_PSI_EPS,
                  ks, wass, psi, js, bins, ref_p, cur_p, n_threads=n_threads)
    return numeric_rows(refs, curs, ks, wass, psi, js, ks_method, n_threads)


def numeric_rows(refs, curs, ks, wass, psi, js, ks_method, n_threads) -> list[dict]:
    """The drift-table entries of numeric columns from their statistics (arrays over columns)
    and states (counts, std, rank error): KS p-values, the normalised Wasserstein distance."""
    n_ref = np.array([float(rs.n) for rs in refs])
    n_cur = np.array([float(cs.n) for cs in curs])
    pvalue = ks_pvalues(ks, n_ref, n_cur, n_threads)
    if ks_method == "auto":
        for j, (rs, cs) in enumerate(zip(refs, curs)):
            if 0 < min(rs.n, cs.n) and max(rs.n, cs.n) <= config.MONITOR_KS_EXACT_MAX_N:
                pvalue[j] = _exact_ks_pvalue(rs.n, cs.n, ks[j], pvalue[j])
    out = []
    for j, (rs, cs) in enumerate(zip(refs, curs)):
        std = rs.std()
        rel = (rs.rank_error / rs.n if rs.n else 0.0) + (cs.rank_error / cs.n if cs.n else 0.0)
        valid = rs.n > 0 and cs.n > 0
        out.append({
            "psi": float(psi[j]) if valid else None, "js_distance": float(js[j]) if valid else None,
            "ks_statistic": float(ks[j]) if valid else None,
            "ks_pvalue": float(pvalue[j]) if valid else None,
            "wasserstein": float(wass[j]) if valid else None,
            "wasserstein_norm": _normalised(float(wass[j]), std) if valid else None,
            "rank_error": rel, "new_categories": None, "missing_categories": None,
        })
    return out


def _normalised(wasserstein: float, std: float) -> float:
    """Wasserstein distance / reference std; a constant reference gives 0 (no move) or inf. An
    undefined distance (NaN: infinities on both sides, inf - inf) stays NaN, as in scipy, and so
    does an undefined std (an infinite reference value, or |x| ~ 1e154 and up, whose squares
    overflow; evidently's distance / np.std gives NaN or 0 there too)."""
    if math.isnan(wasserstein) or not math.isfinite(std):
        return float("nan")
    if std > 0:
        return wasserstein / std
    return 0.0 if wasserstein == 0 else float("inf")


def _exact_ks_pvalue(n_ref: int, n_cur: int, d: float, asymptotic: float) -> float:
    """The exact two-sided p-value of statistic ``d``, from scipy's own exact path of ks_2samp
    (it needs the sizes and the statistic only); where scipy's exact computation gives up, or
    this private function is gone from scipy, the asymptotic value, as ks_2samp falls back."""
    try:
        from scipy.stats._stats_py import _attempt_exact_2kssamp
        success, _, prob = _attempt_exact_2kssamp(n_ref, n_cur, math.gcd(n_ref, n_cur), float(d),
                                                  "two-sided")
    except (ImportError, TypeError, ValueError):
        return asymptotic
    return float(np.clip(prob, 0.0, 1.0)) if success else asymptotic


def ks_pvalues(d, n_ref, n_cur, n_threads=None) -> np.ndarray:
    """Smirnov's asymptotic two-sided p-values, equal to ``scipy.stats.ks_2samp(...,
    method="asymp")``: ``kstwo.sf(d, round(n_ref n_cur / (n_ref + n_cur)))``. Where scipy sums
    Smirnov's series term by term (O(n): 1.3 s at n = 500,000), a kernel sums it from its
    largest term outwards; every other case is scipy's own function."""
    big = np.maximum(n_ref, n_cur)
    small = np.minimum(n_ref, n_cur)
    with np.errstate(invalid="ignore", divide="ignore"):
        en = np.round(big * small / (big + small))
        nx2 = en * d * d
        series = (en > 140) & (en * d > 1) & (en * d < en - 1) & (nx2 >= 2.2) & (nx2 < 370)
        out = np.where(nx2 >= 370, 0.0, np.nan)
        rest = ~series & ~(nx2 >= 370)
        if rest.any():
            out[rest] = stats.kstwo.sf(d[rest], en[rest])
    if series.any():
        tail = np.empty(int(series.sum()))
        smirnov_many(en[series], d[series], tail, n_threads=n_threads)
        out[series] = 2.0 * tail
    return np.clip(out, 0.0, 1.0)


def _flatten(states):
    """Flat (values, cumulative weights, start, length, weight start, total) arrays over
    columns; a sketch column's cumulative weights start with 0 (length + 1 values), an exact
    column has unit weights (weight start -1)."""
    points = [st.points() for st in states]
    values, start = _shared_buffer([v for v, _ in points])
    weights, length, wstart, total = [], [], [], []
    wpos = 0
    for st, (v, w) in zip(states, points):
        length.append(v.shape[0])
        if w is None:
            wstart.append(-1)
        else:
            weights.append(np.concatenate([[0.0], np.cumsum(w)]))
            wstart.append(wpos)
            wpos += w.shape[0] + 1
        total.append(float(st.n))
    flat_w = np.concatenate(weights) if weights else np.empty(0)
    return (values, flat_w, np.array(start, dtype=np.int64), np.array(length, dtype=np.int64),
            np.array(wstart, dtype=np.int64), np.array(total, dtype=np.float64))


def _shared_buffer(arrays):
    """One flat float64 array holding every array, and each one's start in it. A profile built
    from one batch keeps its columns as rows of one matrix: then that matrix is used as it is
    (at 1M x 20 a concatenation would copy 160 MB per side); otherwise the arrays are joined."""
    base = arrays[0].base if arrays else None
    if isinstance(base, np.ndarray) and base.dtype == np.float64 and base.flags.c_contiguous \
            and all(a.base is base and a.flags.c_contiguous for a in arrays):
        origin = base.ctypes.data
        starts = [(a.ctypes.data - origin) // 8 for a in arrays]
        if all(0 <= s and s + a.shape[0] <= base.size for s, a in zip(starts, arrays)):
            return base.reshape(-1), starts
    starts = np.cumsum([0] + [a.shape[0] for a in arrays[:-1]]).tolist()
    return (np.concatenate(arrays) if arrays else np.empty(0)), starts


def _categorical_stats(rs, cs) -> dict:
    ref_vals, cur_vals = rs.values, cs.values
    if len(ref_vals) and len(cur_vals) and ref_vals.type != cur_vals.type:
        raise InputError(f"categories have type {ref_vals.type} in the reference and "
                         f"{cur_vals.type} in the current data")
    union = pa.concat_arrays([ref_vals, cur_vals.cast(ref_vals.type)]).unique() \
        if len(ref_vals) else cur_vals
    ref_counts = _aligned(union, ref_vals, rs.counts)
    cur_counts = _aligned(union, cur_vals, cs.counts)
    new = [str(v) for v, r, c in zip(union.to_pylist(), ref_counts, cur_counts) if r == 0 and c > 0]
    gone = [str(v) for v, r, c in zip(union.to_pylist(), ref_counts, cur_counts) if c == 0 and r > 0]
    row = {"new_categories": new, "missing_categories": gone, "rank_error": 0.0}
    if rs.n == 0 or cs.n == 0:
        return row | {"psi": None, "js_distance": None, "chi2_statistic": None,
                      "chi2_pvalue": None}
    chi2, psi, js = categorical_drift(ref_counts, cur_counts, config.MONITOR_PSI_EPS)
    dof = len(union) - 1
    pvalue = float(stats.chi2.sf(chi2, dof)) if dof > 0 else float("nan")
    return row | {"psi": float(psi), "js_distance": float(js), "chi2_statistic": float(chi2),
                  "chi2_pvalue": pvalue}


def _aligned(union: pa.Array, values: pa.Array, counts: np.ndarray) -> np.ndarray:
    import pyarrow.compute as pc

    out = np.zeros(len(union), dtype=np.float64)
    if len(values):
        idx = pc.index_in(values.cast(union.type), value_set=union).to_numpy()
        out[idx] = counts
    return out
