"""Model quality equals scikit-learn (roc_auc_score, log_loss, brier_score_loss,
calibration_curve) per group; lift, gain and precision/recall@k equal the NumPy reference."""
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings, strategies as st
from sklearn.calibration import calibration_curve
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

import naive_monitor
from fastengage.errors import InputError
from fastengage.monitor import lift, quality, reliability


def _data(seed, n=3000, ties=False):
    rng = np.random.default_rng(seed)
    p = rng.beta(2, 5, n)
    if ties:
        p = np.round(p, 2)
    y = (rng.random(n) < p * 1.2).astype(np.int64)
    t = pa.array(rng.integers(0, 21, n) * 86_400_000_000 + 10**15, pa.timestamp("us"))
    seg = rng.choice(["north", "south", "east"], n)
    return pa.table({"p": p, "y": y, "t": t, "seg": seg}), p, y, seg


def _check_group(row, p, y, k=0.1):
    assert row["n"] == len(y) and row["positives"] == y.sum()
    if 0 < y.sum() < len(y):
        assert row["auc"] == pytest.approx(roc_auc_score(y, p), rel=1e-12)
        assert row["log_loss"] == pytest.approx(log_loss(y, p), rel=1e-10)
    assert row["brier"] == pytest.approx(brier_score_loss(y, p), rel=1e-10)
    ref = naive_monitor.quality(p, y, k)
    for key in ("ece", "precision_at_k", "recall_at_k"):
        assert row[key] == pytest.approx(ref[key], rel=1e-12, nan_ok=True), key


@pytest.mark.parametrize("ties", [False, True])
def test_overall_equals_sklearn(ties):
    table, p, y, _ = _data(0, ties=ties)
    row = quality(table, score="p", label="y").to_pylist()[0]
    _check_group(row, p, y)


def test_per_window_and_segment_equal_sklearn_on_each_group():
    table, p, y, seg = _data(1)
    out = quality(table, score="p", label="y", time="t", window="7d", segment="seg", k=50)
    days = (table["t"].cast(pa.int64()).to_numpy() // 86_400_000_000)
    week = days // 7
    rows = out.to_pylist()
    assert len(rows) == len({(w, s) for w, s in zip(week, seg)})
    for row in rows:
        w = int(row["window_start"].timestamp() // (7 * 86400))
        mask = (week == w) & (seg == row["seg"])
        _check_group(row, p[mask], y[mask], k=50)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 400), st.integers(1, 12),
       st.sampled_from(["uniform", "quantile"]))
def test_reliability_equals_calibration_curve(seed, n, n_bins, strategy):
    rng = np.random.default_rng(seed)
    p = np.round(rng.random(n), rng.integers(1, 4))
    y = (rng.random(n) < p).astype(int)
    if y.min() == y.max():
        y[0] = 1 - y[0]
    t = reliability(pa.table({"p": p, "y": y}), score="p", label="y", n_bins=n_bins,
                    strategy=strategy)
    prob_true, prob_pred = calibration_curve(y, p, n_bins=n_bins, strategy=strategy)
    np.testing.assert_allclose(t["fraction_positive"].to_numpy(), prob_true, rtol=1e-12)
    np.testing.assert_allclose(t["mean_predicted"].to_numpy(), prob_pred, rtol=1e-12)


def test_lift_table_equals_reference_and_threads_agree():
    table, p, y, seg = _data(2, n=5003, ties=True)
    out = lift(table, score="p", label="y", n_threads=1)
    ref = naive_monitor.lift(p, y)
    for key in ref:
        np.testing.assert_allclose(out[key].to_numpy(), ref[key], rtol=1e-12, err_msg=key)
    assert out["cumulative_gain"].to_numpy()[-1] == pytest.approx(1.0)
    assert lift(table, score="p", label="y", n_threads=2).equals(out)
    a = quality(table, score="p", label="y", segment="seg", time="t", window=3, n_threads=1)
    b = quality(table, score="p", label="y", segment="seg", time="t", window=3, n_threads=2)
    assert a.equals(b)


def test_single_class_group_has_null_auc_and_bad_inputs_raise():
    t = pa.table({"p": [0.1, 0.4, 0.8, 0.3], "y": [True, True, False, True], "s": ["a", "a", "b", "b"]})
    rows = {r["s"]: r for r in quality(t, score="p", label="y", segment="s").to_pylist()}
    assert rows["a"]["auc"] is None and rows["b"]["auc"] == 0.0
    with pytest.raises(InputError, match="probabilities"):
        quality(pa.table({"p": [1.5], "y": [1]}), score="p", label="y")
    with pytest.raises(InputError, match="0/1"):
        quality(pa.table({"p": [0.5], "y": [2]}), score="p", label="y")
    with pytest.raises(InputError, match="window"):
        quality(t, score="p", label="y", window="7d")
    with pytest.raises(InputError, match="strategy"):
        reliability(t, score="p", label="y", strategy="median")
