"""``fastengage demo`` step for scoring: churn risk of every Online Retail customer.

Builds the holdout churn set (RFM as of 2011-09-01, label = no purchase in the next 90 days)
with :func:`fastengage.churn_dataset`, scores it with the small HistGradientBoosting model shipped
in ``fastengage/data/churn_hgb.onnx`` (trained on the 2011-06-01 cutoff by
``examples/churn_scoring.py``), and reports the holdout AUC. Needs no scikit-learn.
"""
from __future__ import annotations

import pathlib
import time

import numpy as np
import pyarrow.parquet as pq
from scipy.stats import rankdata

#: Model inputs, in order: columns of fastengage.rfm.
CHURN_FEATURES = ["recency_days", "tenure_days", "frequency", "purchase_days",
                  "monetary_total", "monetary_mean"]
TRAIN_CUTOFF = "2011-06-01"
HOLDOUT_CUTOFF = "2011-09-01"
HORIZON_DAYS = 90


def auc(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with average ranks for ties)."""
    y = np.asarray(y, bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(score)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def demo_step(out_dir: pathlib.Path) -> str:
    """Score churn risk for every customer active by the holdout cutoff; return a summary."""
    from .. import churn_dataset
    from ..datasets import data_path, load_online_retail
    from . import load_model

    retail = load_online_retail()
    holdout = churn_dataset(retail, customer="CustomerID", time="InvoiceDate", amount="amount",
                            order="InvoiceNo", cutoff=HOLDOUT_CUTOFF, horizon=HORIZON_DAYS,
                            drop_null_customers=True)
    model = load_model(data_path("churn_hgb.onnx"))
    t0 = time.perf_counter()
    scores = model.score(holdout, id="CustomerID")
    ms = (time.perf_counter() - t0) * 1e3
    path = pathlib.Path(out_dir) / "churn_scores.parquet"
    pq.write_table(scores, path)
    p = scores.column("probability_1").to_numpy()
    y = holdout.column("churned").to_numpy(zero_copy_only=False)
    top = scores.sort_by([("probability_1", "descending")]).slice(0, 3)
    return "\n".join([
        f"churn risk of {scores.num_rows:,} customers active by {HOLDOUT_CUTOFF} -> {path}",
        f"  model: HistGradientBoosting (ONNX, trained on the {TRAIN_CUTOFF} cutoff), "
        f"scored by {model.backend} in {ms:.1f} ms",
        f"  label: no purchase in the {HORIZON_DAYS} days after the cutoff ({y.mean():.1%} of customers)",
        f"  holdout AUC {auc(y, p):.3f} (recency alone {auc(y, holdout.column('recency_days').to_numpy()):.3f})",
        "  highest risk: " + ", ".join(f"{c} ({q:.2f})" for c, q in zip(
            top.column("CustomerID").to_pylist(), top.column("probability_1").to_pylist())),
    ])
