"""Drift and model quality side by side: fastengage.monitor vs scipy / NumPy / scikit-learn.

    python -m pytest bench/bench_monitor.py -s                          # smoke sizes (CI)
    FASTENGAGE_BENCH=full python -m pytest bench/bench_monitor.py -s    # the issue's sizes

Drift, full size: 1M reference rows vs 1M current rows of 20 numeric columns (the issue's
setting). fastengage starts from the two Arrow tables and computes every statistic (PSI, JS,
KS + p-value, Wasserstein, normalised Wasserstein, null rates) for every column: two raw inputs
go the direct way (kernels/monitor/buckets.py, the C bucket kernel of drift_native.pyx; no sorted
profiles kept). The peer is what a user writes by hand per column: scipy's ``ks_2samp``,
``wasserstein_distance`` and ``jensenshannon`` on the reference's decile bins, plus a NumPy PSI.
Quality: AUC, log loss, Brier and the reliability curve on 1M scores vs scikit-learn.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from bench._compare import bench_size, compare
from fastengage.monitor import drift

FULL = bench_size() == "full"
ROUNDS = 3 if FULL else 1
N = 1_000_000 if FULL else 20_000
F = 20 if FULL else 5


def _columns(seed, shift):
    rng = np.random.default_rng(seed)
    return {f"f{j:02d}": rng.normal(shift * (j % 3), 1.0 + 0.01 * j, N) for j in range(F)}


def _scipy_drift(ref, cur):
    from scipy import stats
    from scipy.spatial.distance import jensenshannon

    out = {}
    for name in ref:
        r, c = ref[name], cur[name]
        ks = stats.ks_2samp(r, c, method="asymp")
        w = stats.wasserstein_distance(r, c)
        edges = np.unique(np.quantile(r, np.arange(1, 10) / 10, method="inverted_cdf"))
        # bin of x = number of edges < x: bins (e[b-1], e[b]], as fastengage documents
        k = len(edges) + 1
        p = np.bincount(np.searchsorted(edges, r, side="left"), minlength=k) / len(r)
        q = np.bincount(np.searchsorted(edges, c, side="left"), minlength=k) / len(c)
        js = jensenshannon(p, q)
        pp, qq = np.where(p > 0, p, 1e-4), np.where(q > 0, q, 1e-4)
        psi = np.sum((qq - pp) * np.log(qq / pp))
        out[name] = (ks.statistic, ks.pvalue, w, js, psi)
    return out


def test_drift_vs_scipy(benchmark):
    ref, cur = _columns(0, 0.0), _columns(1, 0.02)
    t_ref, t_cur = pa.table(ref), pa.table(cur)

    def check(ours, theirs, peer):
        rows = {r["column"]: r for r in ours.to_pylist()}
        for name, (ks, p, w, js, psi) in theirs.items():
            row = rows[name]
            assert abs(row["ks_statistic"] - ks) <= 1e-12
            assert abs(row["ks_pvalue"] - p) <= 1e-9 * max(p, 1e-300) + 1e-15
            assert abs(row["wasserstein"] - w) <= 1e-9 * w
            assert abs(row["js_distance"] - js) <= 1e-9
            assert abs(row["psi"] - psi) <= 1e-9

    compare(benchmark, f"monitor.drift {N}x{F}", lambda: drift(t_ref, t_cur),
            {"scipy KS+Wasserstein+JS + NumPy PSI": lambda: _scipy_drift(ref, cur)}, check,
            rounds=ROUNDS, size=f"{N}x{F}")
