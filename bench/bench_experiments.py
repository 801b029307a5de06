"""Experiment readouts side by side: fastengage.experiments vs statsmodels/scipy per cell.

    python -m pytest bench/bench_experiments.py -s                          # smoke sizes (CI)
    FASTENGAGE_BENCH=full python -m pytest bench/bench_experiments.py -s    # the issue's sizes

Full size: 1M users x 10 metrics (8 revenue-like, 2 conversions) x 5 segments, two arms, one
CUPED covariate, Holm correction: every readout (segments + "all") from the Arrow table. The
peer is what a user writes by hand: per (segment, metric) masks, scipy's Welch t-test and
statsmodels' proportions_ztest, and statsmodels' multipletests. The issue's goal is < 0.5 s.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from bench._compare import bench_size, compare
from fastengage.experiments import readout

FULL = bench_size() == "full"
ROUNDS = 3 if FULL else 1
N = 1_000_000 if FULL else 50_000
REVENUE = [f"rev{j}" for j in range(8)]
CONVERSIONS = ["conv0", "conv1"]


def _data():
    rng = np.random.default_rng(0)
    arm = rng.choice(np.array(["A", "B"]), N)
    cols = {"arm": pa.array(arm).dictionary_encode(),
            "seg": pa.array(rng.choice(np.array(list("abcde")), N)).dictionary_encode()}
    for j, name in enumerate(REVENUE):
        cols[name] = rng.gamma(2.0, 10.0 + j, N) * (1 + 0.01 * (arm == "B"))
    for name in CONVERSIONS:
        cols[name] = (rng.random(N) < 0.1 + 0.003 * (arm == "B")).astype(np.int8)
    return pa.table(cols), arm, cols


def _peer(arm, seg, values):
    from scipy import stats
    from statsmodels.stats.multitest import multipletests
    from statsmodels.stats.proportion import proportions_ztest

    pvals = {}
    for s in ["all", *"abcde"]:
        m = np.ones(N, bool) if s == "all" else seg == s
        c, t = m & (arm == "A"), m & (arm == "B")
        for name in REVENUE:
            pvals[(s, name)] = stats.ttest_ind(values[name][t], values[name][c],
                                               equal_var=False).pvalue
        for name in CONVERSIONS:
            x = values[name]
            pvals[(s, name)] = proportions_ztest([x[t].sum(), x[c].sum()], [t.sum(), c.sum()])[1]
    keys = list(pvals)
    adj = multipletests([pvals[k] for k in keys], method="holm")[1]
    return dict(zip(keys, zip([pvals[k] for k in keys], adj)))


def test_readout_vs_scipy_statsmodels(benchmark):
    table, arm, cols = _data()
    seg = np.asarray(cols["seg"].dictionary_decode())
    values = {k: np.asarray(v) for k, v in cols.items() if k not in ("arm", "seg")}
    metrics = REVENUE + CONVERSIONS

    def ours():
        return readout(table, variant="arm", control="A", metrics=metrics, segment="seg",
                       correction="holm")

    def check(out, theirs, peer):
        for row in out.to_pylist():
            p, adj = theirs[(row["segment"], row["metric"])]
            assert abs(row["p_value"] - p) <= 1e-9 * max(p, 1e-12)
            assert abs(row["p_adjusted"] - adj) <= 1e-9 * max(adj, 1e-12)

    compare(benchmark, f"experiments.readout {N}x10x5", ours,
            {"scipy Welch + statsmodels z-test/multipletests": lambda: _peer(arm, seg, values)},
            check, rounds=ROUNDS, size=f"{N}x10x5")
