"""Uplift models and curves on a simulated campaign with known true uplift; curves equal
scikit-uplift's; campaign ROI intervals cover the true incremental value."""
import numpy as np
import pyarrow as pa
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression

from fastengage.experiments.uplift import (TransformedOutcomeUplift, TwoModelUplift, campaign_roi,
                                           curve_area, qini_curve, uplift_curve)


def _campaign(seed=0, n=40_000):
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    treated = rng.random(n) < 0.5
    base = 1 / (1 + np.exp(-(-1.5 + 0.5 * x1)))
    true_uplift = 0.15 / (1 + np.exp(-2 * x2)) - 0.03   # persuadables where x2 is high
    p = np.clip(base + treated * true_uplift, 0, 1)
    y = (rng.random(n) < p).astype(int)
    revenue = y * rng.gamma(3.0, 20.0, n)
    return pa.table({"x1": x1, "x2": x2, "treated": treated, "y": y, "revenue": revenue}), \
        true_uplift


def test_models_recover_the_true_uplift_ranking():
    table, true = _campaign()
    y, t = table["y"].to_numpy(), table["treated"].to_numpy(zero_copy_only=False)
    two = TwoModelUplift(LogisticRegression()).fit(table, features=["x1", "x2"],
                                                   treatment="treated", outcome="y")
    tom = TransformedOutcomeUplift(LinearRegression()).fit(table, features=["x1", "x2"],
                                                          treatment="treated", outcome="y")
    random = np.random.default_rng(1).random(len(y))
    areas = {name: curve_area(*qini_curve(y, u, t)) for name, u in
             {"true": true, "two": two.predict(table), "tom": tom.predict(table),
              "random": random}.items()}
    assert np.corrcoef(two.predict(table), true)[0, 1] > 0.8
    assert np.corrcoef(tom.predict(table), true)[0, 1] > 0.8
    assert areas["two"] > 0.7 * areas["true"] and areas["tom"] > 0.7 * areas["true"]
    assert abs(areas["random"]) < 0.3 * areas["true"]


def test_curves_equal_scikit_uplift():
    sklift = pytest.importorskip("sklift.metrics")
    rng = np.random.default_rng(2)
    n = 3000
    u = np.round(rng.normal(size=n), 1)  # ties
    t = rng.random(n) < 0.4
    y = (rng.random(n) < 0.2 + 0.05 * t * (u > 0)).astype(int)
    for ours, theirs in ((uplift_curve, sklift.uplift_curve), (qini_curve, sklift.qini_curve)):
        x1, y1 = ours(y, u, t)
        x2, y2 = theirs(y, u, t.astype(int))
        np.testing.assert_allclose(x1, x2)
        np.testing.assert_allclose(y1, y2, rtol=1e-12, atol=1e-12)


def test_campaign_roi_interval_covers_the_truth():
    table, true = _campaign(3, n=60_000)
    out = campaign_roi(table, treatment="treated", values=["y", "revenue"],
                       cost_per_contact=0.5).to_pylist()
    n_t = int(table["treated"].to_numpy(zero_copy_only=False).sum())
    conv = out[0]
    assert conv["incremental_low"] < true.mean() * n_t < conv["incremental_high"]
    assert conv["cost"] == 0.5 * n_t
    rev = out[1]
    assert rev["roi"] == pytest.approx((rev["incremental"] - rev["cost"]) / rev["cost"])
    assert rev["roi_low"] < rev["roi"] < rev["roi_high"]
