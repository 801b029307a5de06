"""A/B readouts of many metrics x segments at once from Arrow columns."""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from ..errors import InputError
from . import stats as st
from ._aggregate import codes, combine, load, moments, pooled_cov, value_matrix

SCHEMA = pa.schema([
    ("segment", pa.string()), ("metric", pa.string()), ("variant", pa.string()),
    ("method", pa.string()), ("n_control", pa.int64()), ("n_treatment", pa.int64()),
    ("control", pa.float64()), ("treatment", pa.float64()), ("diff", pa.float64()),
    ("ci_low", pa.float64()), ("ci_high", pa.float64()), ("lift", pa.float64()),
    ("lift_ci_low", pa.float64()), ("lift_ci_high", pa.float64()), ("p_value", pa.float64()),
    ("p_adjusted", pa.float64()), ("srm_pvalue", pa.float64()), ("srm_ok", pa.bool_()),
    ("decision", pa.string()),
])


def readout(data, *, variant: str, control, metrics=(), segment: str | None = None,
            ratios: dict | None = None, covariates: dict | None = None, alpha: float = 0.05,
            correction: str | None = None, srm_expected: dict | None = None,
            srm_alpha: float = 0.001, n_threads: int | None = None) -> pa.Table:
    """Read out an experiment: one row per (segment, metric, treatment variant).

    ``data`` holds one row per user: the ``variant`` column, the ``metrics`` columns (numbers or
    booleans), optional pre-period ``covariates`` ({metric: covariate column}, CUPED), ``ratios``
    ({name: (numerator column, denominator column)}, delta method) and a ``segment`` column
    (every segment and ``"all"`` are read out). Metrics whose values are all 0/1 are conversions
    (two-proportion z-test, pooled; Wald interval), others revenue-like (Welch t-test, t
    interval at the Welch-Satterthwaite df); with a covariate the metric is first CUPED-adjusted
    (theta pooled over the two arms compared). ``lift`` is relative to control with a
    delta-method interval. ``correction`` ("holm", "bonferroni", "fdr_bh") adjusts the p-values
    of all rows together into ``p_adjusted``.

    Every segment gets a sample-ratio-mismatch chi-square test of its arm sizes against
    ``srm_expected`` (shares per variant; equal by default). When it fails (p < ``srm_alpha``)
    the decision is ``"srm_failed"`` and no winner is declared; otherwise ``"treatment"`` or
    ``"control"`` when ``p_adjusted < alpha``, else ``"inconclusive"``.
    """
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    ratios = dict(ratios or {})
    covariates = dict(covariates or {})
    if not metrics and not ratios:
        raise InputError("readout needs metrics= and/or ratios=")
    unknown = set(covariates) - set(metrics)
    if unknown:
        raise InputError(f"covariates= names {sorted(unknown)}, which are not in metrics=")
    if not 0 < alpha < 1:
        raise InputError(f"alpha must lie in (0, 1), got {alpha}")
    st.adjust_pvalues([], correction)  # validates the name
    value_cols = list(dict.fromkeys(metrics + list(covariates.values()) +
                                    [c for pair in ratios.values() for c in pair]))
    table = load(data, {"variant": variant, "segment": segment}, value_cols)
    var_code, var_values = codes(table.column(variant), variant, "variant")
    names = [str(v) for v in var_values.to_pylist()]
    if str(control) not in names:
        raise InputError(f"control {control!r} is not a value of column {variant!r}: {names}")
    ctrl = names.index(str(control))
    if len(names) < 2:
        raise InputError(f"column {variant!r} holds one variant only")
    if segment is not None:
        seg_code, seg_values = codes(table.column(segment), segment, "segment")
        seg_names = [str(v) for v in seg_values.to_pylist()]
    else:
        seg_code, seg_names = np.zeros(table.num_rows, dtype=np.int64), []
    n_var = len(names)
    groups = seg_code * n_var + var_code
    matrix = value_matrix(table, value_cols)
    col = {c: i for i, c in enumerate(value_cols)}
    pairs = [(col[m], col[x]) for m, x in covariates.items()] + \
        [(col[a], col[b]) for a, b in ratios.values()]
    n_seg = max(len(seg_names), 1)
    extra = [[s * n_var + v for s in range(n_seg)] for v in range(n_var)] if seg_names else None
    mom = moments(groups, n_seg * n_var, matrix, pairs, n_threads, extra_rows=extra,
                  names=value_cols)
    binary = {m: bool(mom.binary[col[m]]) for m in metrics}
    segments = [("all", [n_seg * n_var + v for v in range(n_var)] if seg_names
                 else list(range(n_var)))]
    segments += [(name, [s * n_var + v for v in range(n_var)]) for s, name in enumerate(seg_names)]
    shares = _shares(srm_expected, names)
    rows, requests = [], {"welch": [], "cuped_welch": [], "z_proportions": [], "delta_ratio": []}
    for seg_name, arm_groups in segments:
        counts = mom.n[arm_groups]
        srm_p = st.srm(counts, shares)[1] if counts.sum() > 0 else float("nan")
        for v in range(n_var):
            if v == ctrl:
                continue
            c_g, t_g = arm_groups[ctrl], arm_groups[v]
            base = {"segment": seg_name, "variant": names[v], "n_control": int(mom.n[c_g]),
                    "n_treatment": int(mom.n[t_g]), "srm_pvalue": srm_p,
                    "srm_ok": bool(srm_p >= srm_alpha)}
            for m in metrics:
                method, args = _metric(mom, c_g, t_g, col[m], binary[m], covariates.get(m), col,
                                       pairs)
                requests[method].append((len(rows), args))
                rows.append(base | {"metric": m, "method": method})
            for r_name, (num, den) in ratios.items():
                p_idx = len(covariates) + list(ratios).index(r_name)
                requests["delta_ratio"].append((len(rows), _ratio(mom, c_g, t_g, col[num],
                                                                  col[den], p_idx)))
                rows.append(base | {"metric": r_name, "method": "delta_ratio"})
    formulas = {"welch": st.welch, "cuped_welch": st.welch, "z_proportions": st.conversion,
                "delta_ratio": st.delta_ratio}
    for method, items in requests.items():
        if not items:
            continue
        where = [i for i, _ in items]
        out = formulas[method](*np.array([a for _, a in items], dtype=np.float64).T, alpha)
        for k in _FIELDS:
            values = np.broadcast_to(out[k], (len(items),))
            for i, value in zip(where, values):
                rows[i][k] = float(value)
    p_adj = st.adjust_pvalues([r["p_value"] for r in rows], correction)
    for r, p in zip(rows, p_adj):
        r["p_adjusted"] = float(p)
        r["decision"] = "srm_failed" if not r["srm_ok"] else (
            ("treatment" if r["diff"] > 0 else "control") if p < alpha else "inconclusive")
    return pa.table({name: [_clean(r.get(name)) for r in rows] for name in SCHEMA.names},
                    schema=SCHEMA)


def _clean(v):
    if isinstance(v, (np.floating, float)):
        return None if np.isnan(v) else float(v)
    return v


def _shares(expected, names):
    if expected is None:
        return None
    missing = [n for n in names if n not in {str(k) for k in expected}]
    if missing:
        raise InputError(f"srm_expected has no share for variant(s) {missing}")
    shares = np.array([float({str(k): v for k, v in expected.items()}[n]) for n in names])
    if not np.all(np.isfinite(shares) & (shares > 0)):
        # a zero share makes the chi-square 0/0 (NaN), which would read as a failed SRM check
        raise InputError(f"srm_expected shares must be positive numbers; got "
                         f"{dict(zip(names, shares.tolist()))}")
    return shares


_FIELDS = ("control", "treatment", "diff", "ci_low", "ci_high", "lift", "lift_ci_low",
           "lift_ci_high", "p_value")


def _metric(mom, c, t, j, binary, covariate, col, pairs):
    """(method, arguments of its formula) for one metric and pair of arms."""
    n_c, n_t = mom.n[c], mom.n[t]
    if covariate is not None:
        x = col[covariate]
        p = pairs.index((j, x))
        pooled = combine(mom, [c, t])
        theta = float(st.cuped_theta(pooled.var[x], pooled_cov(mom, [c, t], p, j, x)))
        mean_x = pooled.mean[x]
        adj = {}
        for g in (c, t):
            adj[g] = (mom.mean[g, j] - theta * (mom.mean[g, x] - mean_x),
                      max(mom.var[g, j] - 2 * theta * mom.cov[g, p] + theta ** 2 * mom.var[g, x],
                          0.0))
        return "cuped_welch", (adj[c][0], adj[c][1], n_c, adj[t][0], adj[t][1], n_t)
    if binary:
        return "z_proportions", (mom.sums[c, j], n_c, mom.sums[t, j], n_t)
    return "welch", (mom.mean[c, j], mom.var[c, j], n_c, mom.mean[t, j], mom.var[t, j], n_t)


def _ratio(mom, c, t, num, den, p):
    ratio_c, var_c = st.ratio_moments(mom.n[c], mom.sums[c, num], mom.sums[c, den],
                                      mom.var[c, num], mom.var[c, den], mom.cov[c, p])
    ratio_t, var_t = st.ratio_moments(mom.n[t], mom.sums[t, num], mom.sums[t, den],
                                      mom.var[t, num], mom.var[t, den], mom.cov[t, p])
    return (float(ratio_c), float(var_c), float(ratio_t), float(var_t))
