"""The feedback loop on Online Retail: score churn -> monitor -> detect drift -> retrain ->
read out a (simulated) retention campaign with CUPED and ROI -> one HTML report.

    python examples/feedback_loop.py [output-folder]
"""
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sklearn.ensemble import HistGradientBoostingClassifier

import fastengage as fe
from fastengage import experiments as ex
from fastengage import monitor
from fastengage.datasets import load_online_retail

out = Path(sys.argv[1] if len(sys.argv) > 1 else "feedback-loop")
out.mkdir(exist_ok=True)
retail = load_online_retail()
cols = dict(customer="CustomerID", time="InvoiceDate", amount="amount", order="InvoiceNo",
            horizon=90, drop_null_customers=True)
FEATURES = ["recency_days", "tenure_days", "frequency", "purchase_days", "monetary_total",
            "monetary_mean"]


def matrix(table):
    return np.column_stack([table[f].to_numpy(zero_copy_only=False).astype(float)
                            for f in FEATURES])


# 1. Train a churn model at one cut-off and score the customers.
train = fe.churn_dataset(retail, cutoff="2011-03-01", **cols)
model = HistGradientBoostingClassifier(max_iter=100, random_state=0)
model.fit(matrix(train), train["churned"].to_numpy(zero_copy_only=False))
train = train.append_column("score", pa.array(model.predict_proba(matrix(train))[:, 1]))
reference = monitor.Profile.from_data(train, FEATURES + ["score"])
reference.save(out / "reference.profile")        # what a service keeps, not the raw data

# 2. Next cut-off: monitor features and scores (no labels needed), then model quality.
current = fe.churn_dataset(retail, cutoff="2011-09-01", **cols)
current = current.append_column("score", pa.array(model.predict_proba(matrix(current))[:, 1]))
drift = monitor.drift(monitor.Profile.load(out / "reference.profile"), current)
print(drift.select(["column", "psi", "ks_statistic", "wasserstein_norm", "drift"]).to_pandas())
quality_before = monitor.quality(current, score="score", label="churned").to_pylist()[0]
print(f"AUC of the old model at the new cut-off: {quality_before['auc']:.3f}")

# 3. Drift detected -> retrain on the newer data (half of the customers; evaluate on the rest).
if any(drift["drift"].to_pylist()):
    rng = np.random.default_rng(0)
    fit_rows = rng.random(current.num_rows) < 0.5
    model = HistGradientBoostingClassifier(max_iter=100, random_state=0)
    model.fit(matrix(current)[fit_rows],
              current["churned"].to_numpy(zero_copy_only=False)[fit_rows])
    holdout = current.filter(pa.array(~fit_rows))
    holdout = holdout.set_column(holdout.schema.get_field_index("score"), "score",
                                 pa.array(model.predict_proba(matrix(holdout))[:, 1]))
    after = monitor.quality(holdout, score="score", label="churned").to_pylist()[0]
    print(f"AUC after retraining (held-out customers): {after['auc']:.3f}")
    current = holdout

# 4. A retention campaign on these customers (simulated): half get an offer; the offer lifts the
#    next-90-day spend of at-risk customers. CUPED uses the pre-period spend from rfm().
rng = np.random.default_rng(1)
n = current.num_rows
offer = rng.random(n) < 0.5
risk = current["score"].to_numpy()
pre_spend = current["monetary_total"].to_numpy(zero_copy_only=False)
spend = np.maximum(0.3 * pre_spend * rng.lognormal(0, 0.5, n) * (1 - risk), 0)
spend = spend * (1 + 0.25 * offer * risk)                 # the true effect: +25% x churn risk
came_back = rng.random(n) < (1 - risk) * (1 + 0.2 * offer)
campaign = pa.table({"arm": np.where(offer, "offer", "control"), "treated": offer,
                     "spend": spend, "pre_spend": pre_spend, "came_back": came_back,
                     "risk": pc.if_else(pc.greater(current["score"], 0.5), "high", "low")})
readout = ex.readout(campaign, variant="arm", control="control", metrics=["spend", "came_back"],
                     covariates={"spend": "pre_spend"}, segment="risk", correction="holm")
print(readout.select(["segment", "metric", "method", "diff", "ci_low", "ci_high", "p_adjusted",
                      "decision"]).to_pandas())
roi = ex.uplift.campaign_roi(campaign, treatment="treated", values=["came_back", "spend"],
                             cost_per_contact=2.0)
print(roi.to_pandas())

# 5. One page for the team.
path = monitor.report(out / "report.html", drift=drift,
                      quality=monitor.quality(current, score="score", label="churned"),
                      reliability=monitor.reliability(current, score="score", label="churned"),
                      lift=monitor.lift(current, score="score", label="churned"),
                      experiments=readout, title="Churn model and retention campaign")
print(f"report written to {path}")
