"""Churn model on UCI Online Retail: train with scikit-learn, export to ONNX, score with fastengage.

    python examples/churn_scoring.py [--out DIR] [--update-bundled-model]

1. Build point-in-time training and holdout sets with ``fastengage.churn_dataset``: RFM
   features as of a cutoff, label = no purchase in the 90 days after it. Training cutoff
   2011-06-01, holdout cutoff 2011-09-01 (a later period: the honest way to test a churn model).
2. Train a scikit-learn ``HistGradientBoostingClassifier`` on the training set.
3. Export it to ONNX (``fastengage.scoring.export.sklearn_to_onnx`` stores the feature names and
   works around skl2onnx 1.20's failure on HistGradientBoosting under protobuf 7).
4. Score every holdout customer with ``fastengage.scoring.load_model(...).score(...)`` (native
   tree kernel, identical to ONNX Runtime) and report the holdout AUC.
5. Profile features against RFM alone: ``fastengage.training_set(features="profile")`` stacks
   features as of four monthly cut-offs (2011-03-01 .. 2011-06-01, labels up to 2011-08-30, so
   nothing overlaps the holdout period) and the same model is trained once on the six RFM columns
   and once on every numeric profile column; the holdout AUC of each and the gain are printed.

Needs the test extra (scikit-learn, skl2onnx). ``--update-bundled-model`` rewrites
``fastengage/data/churn_hgb.onnx``, the model ``fastengage demo`` scores with.
"""
from __future__ import annotations

import argparse
import pathlib
import time

import numpy as np

import fastengage as fe
from fastengage.datasets import load_online_retail
from fastengage.scoring import load_model
from fastengage.scoring.demo import CHURN_FEATURES, HORIZON_DAYS, HOLDOUT_CUTOFF, TRAIN_CUTOFF
from fastengage.scoring.export import sklearn_to_onnx

BUNDLED = pathlib.Path(fe.__file__).parent / "data" / "churn_hgb.onnx"


def churn_set(retail, cutoff):
    return fe.churn_dataset(retail, customer="CustomerID", time="InvoiceDate", amount="amount",
                            order="InvoiceNo", cutoff=cutoff, horizon=HORIZON_DAYS,
                            drop_null_customers=True)


PROFILE_CUTOFFS = ["2011-03-01", "2011-04-01", "2011-05-01", "2011-06-01"]
#: Profile columns that are not model inputs (ids, times, the label).
NOT_FEATURES = {"cutoff", "CustomerID", "first_purchase", "last_purchase", "churned"}


def _matrix(table, columns):
    return np.column_stack([table.column(c).to_numpy(zero_copy_only=False).astype(np.float64)
                            for c in columns])


def profile_auc_gain(retail) -> dict:
    """Holdout AUC of one model trained on RFM columns and on all numeric profile columns (same
    rolling-origin training rows, same holdout customers)."""
    import pyarrow as pa
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score

    kw = dict(customer="CustomerID", time="InvoiceDate", amount="amount", order="InvoiceNo",
              horizon=HORIZON_DAYS, features="profile", item="StockCode",
              drop_null_customers=True)
    train = fe.training_set(retail, cutoffs=PROFILE_CUTOFFS, **kw)
    holdout = fe.training_set(retail, cutoffs=[HOLDOUT_CUTOFF], **kw)
    numeric = [f.name for f in train.schema if f.name not in NOT_FEATURES and
               (pa.types.is_integer(f.type) or pa.types.is_floating(f.type))]
    y = train.column("churned").to_numpy(zero_copy_only=False).astype(int)
    y_hold = holdout.column("churned").to_numpy(zero_copy_only=False).astype(int)
    result = {"training_rows": train.num_rows, "holdout_customers": holdout.num_rows,
              "profile_columns": len(numeric)}
    for name, columns in (("rfm", CHURN_FEATURES), ("profile", numeric)):
        clf = HistGradientBoostingClassifier(max_iter=100, learning_rate=0.05,
                                             max_leaf_nodes=15, random_state=0)
        clf.fit(_matrix(train, columns), y)
        result[f"auc_{name}"] = roc_auc_score(
            y_hold, clf.predict_proba(_matrix(holdout, columns))[:, 1])
    result["auc_gain"] = result["auc_profile"] - result["auc_rfm"]
    return result


def main() -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="churn-example", help="output folder")
    parser.add_argument("--update-bundled-model", action="store_true")
    args = parser.parse_args()
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    retail = load_online_retail()
    train = churn_set(retail, TRAIN_CUTOFF)
    holdout = churn_set(retail, HOLDOUT_CUTOFF)
    X = np.column_stack([train.column(c).to_numpy().astype(np.float64) for c in CHURN_FEATURES])
    y = train.column("churned").to_numpy(zero_copy_only=False).astype(int)
    print(f"training set: {train.num_rows:,} customers active by {TRAIN_CUTOFF}, "
          f"{y.mean():.1%} churned within {HORIZON_DAYS} days")

    clf = HistGradientBoostingClassifier(max_iter=100, learning_rate=0.05, max_leaf_nodes=15,
                                         random_state=0).fit(X, y)
    onnx_bytes = sklearn_to_onnx(clf, CHURN_FEATURES)
    path = out / "churn_hgb.onnx"
    path.write_bytes(onnx_bytes)
    if args.update_bundled_model:
        BUNDLED.write_bytes(onnx_bytes)
        print(f"updated {BUNDLED}")

    model = load_model(path)
    t0 = time.perf_counter()
    scores = model.score(holdout, id="CustomerID")
    elapsed = time.perf_counter() - t0
    p = scores.column("probability_1").to_numpy()
    y_hold = holdout.column("churned").to_numpy(zero_copy_only=False).astype(int)
    auc = roc_auc_score(y_hold, p)
    X_hold = np.column_stack([holdout.column(c).to_numpy().astype(np.float64) for c in CHURN_FEATURES])
    sk = clf.predict_proba(X_hold)[:, 1]
    rt = load_model(path, backend="onnxruntime").score(holdout, id="CustomerID")
    same = np.array_equal(p, rt.column("probability_1").to_numpy())
    print(f"holdout: {holdout.num_rows:,} customers active by {HOLDOUT_CUTOFF}, "
          f"{y_hold.mean():.1%} churned")
    print(f"scored with fastengage ({model.backend}) in {elapsed * 1e3:.1f} ms; "
          f"identical to ONNX Runtime: {same}; max |fastengage - scikit-learn| = "
          f"{np.abs(p - sk).max():.2e} (ONNX tree models compare features in float32)")
    print(f"holdout AUC = {auc:.4f}  (recency alone: "
          f"{roc_auc_score(y_hold, holdout.column('recency_days').to_numpy()):.4f})")
    top = scores.sort_by([("probability_1", "descending")]).slice(0, 5)
    print("highest churn risk:", ", ".join(
        f"{c} ({q:.2f})" for c, q in zip(top.column("CustomerID").to_pylist(),
                                          top.column("probability_1").to_pylist())))
    gain = profile_auc_gain(retail)
    print(f"profile features vs RFM alone ({gain['training_rows']:,} training rows from "
          f"{len(PROFILE_CUTOFFS)} cut-offs, {gain['profile_columns']} profile columns): "
          f"holdout AUC {gain['auc_profile']:.4f} vs {gain['auc_rfm']:.4f}, "
          f"gain {gain['auc_gain']:+.4f}")


if __name__ == "__main__":
    main()
