"""The feedback loop on Online Retail: score churn -> monitor -> detect drift -> retrain ->
read out a (simulated) retention campaign with CUPED and ROI, incremental CLV included (BG/NBD +
Gamma-Gamma fitted on the pre-period) -> one HTML report.

    python examples/feedback_loop.py [output-folder]
"""
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sklearn.ensemble import HistGradientBoostingClassifier

import fastengage as fe
from fastengage import clv
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
# Incremental CLV: what the customers the campaign kept are worth. BG/NBD + Gamma-Gamma are
# fitted on the pre-period (purchases up to the campaign's cut-off, returns left out), each
# customer's 12-month CLV is counted for those who came back, and campaign_roi compares arms.
CUTOFF = "2011-09-01"
pre = retail.filter(pc.and_(pc.is_valid(retail["CustomerID"]), pc.greater(retail["amount"], 0)))
stats = clv.summary(pre, customer="CustomerID", time="InvoiceDate", amount="amount", as_of=CUTOFF,
                    freq="D", freq_multiplier=7)  # weeks; later purchases are left out by as_of
bg = clv.BetaGeo().fit(stats)
gg = clv.GammaGamma().fit(stats)
x, rec, T, m = (stats[c].to_numpy() for c in ("frequency", "recency", "T", "monetary_value"))
clv_12m = gg.customer_lifetime_value(bg, x, rec, T, m, months=12, discount_rate=0.01, freq="W")
where = pc.fill_null(pc.index_in(current["CustomerID"], value_set=stats["CustomerID"]), -1)
where = where.to_numpy()
known = where >= 0                                        # customers with a pre-period purchase
customer_clv = np.where(known, clv_12m[np.maximum(where, 0)], 0.0)
campaign = campaign.append_column("retained_clv", pa.array(came_back * customer_clv))
print(f"12-month CLV from the pre-period: mean {customer_clv[known].mean():.0f} over "
      f"{known.sum()} of {n} campaign customers")
roi = ex.uplift.campaign_roi(campaign, treatment="treated",
                             values=["came_back", "spend", "retained_clv"], cost_per_contact=2.0)
print(roi.select(["value", "incremental", "incremental_low", "incremental_high", "roi", "roi_low",
                  "roi_high"]).to_pandas())

# 5. One page for the team.
path = monitor.report(out / "report.html", drift=drift,
                      quality=monitor.quality(current, score="score", label="churned"),
                      reliability=monitor.reliability(current, score="score", label="churned"),
                      lift=monitor.lift(current, score="score", label="churned"),
                      experiments=readout, title="Churn model and retention campaign")
print(f"report written to {path}")
