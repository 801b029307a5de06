"""churn_dataset: point-in-time features (no leakage), labels against a plain computation."""
import datetime as dt
import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

import fastengage as fe
from fastengage.errors import InputError

CUTOFF = dt.datetime(2024, 3, 1)
KW = dict(customer="cust", time="ts", amount="amt", cutoff=CUTOFF, horizon=30)


def _log(seed=0, n=4000):
    rng = np.random.default_rng(seed)
    start = int(dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc).timestamp())
    ts = start + rng.integers(0, 120 * 86_400, n)
    return pa.table({
        "cust": pa.array(rng.integers(0, 300, n)),
        "ts": pa.array(ts, pa.timestamp("s")),
        "amt": pa.array(np.round(rng.exponential(30, n) * np.where(rng.random(n) < 0.05, -1, 1), 2)),
    })


def test_labels_match_plain_computation():
    log = _log()
    out = fe.churn_dataset(log, **KW)
    c_us = int(CUTOFF.replace(tzinfo=dt.timezone.utc).timestamp()) * 10**6
    ts = log.column("ts").cast(pa.int64()).to_numpy() * 10**6
    cust = log.column("cust").to_numpy()
    amt = log.column("amt").to_numpy()
    active = set(cust[(ts <= c_us) & (amt > 0)])
    future = (ts > c_us) & (ts <= c_us + 30 * 86_400 * 10**6) & (amt > 0)
    buyers = {}
    for c in cust[future]:
        buyers[c] = buyers.get(c, 0) + 1
    ids = out.column("cust").to_numpy()
    assert set(ids) == active
    np.testing.assert_array_equal(out.column("churned").to_numpy(zero_copy_only=False),
                                  [c not in buyers for c in ids])
    np.testing.assert_array_equal(out.column("purchases_in_horizon").to_numpy(),
                                  [buyers.get(c, 0) for c in ids])
    # features equal rfm() on the past alone, as of the cutoff
    past = log.filter(pc.less_equal(log.column("ts"), pa.scalar(CUTOFF, pa.timestamp("s"))))
    ref = fe.rfm(past, customer="cust", time="ts", amount="amt", as_of=CUTOFF)
    assert out.select(ref.column_names).equals(ref)


def test_no_leakage_from_after_cutoff():
    log = _log(1)
    base = fe.churn_dataset(log, **KW)
    after = pc.greater(log.column("ts"), pa.scalar(CUTOFF, pa.timestamp("s")))
    # rewrite everything after the cutoff: other amounts, new customers, shuffled ids
    rng = np.random.default_rng(9)
    n = log.num_rows
    new_amt = pc.if_else(after, pa.array(rng.exponential(500, n)), log.column("amt"))
    new_cust = pc.if_else(after, pa.array(rng.integers(1000, 1100, n)), log.column("cust"))
    changed = log.set_column(0, "cust", new_cust).set_column(2, "amt", new_amt)
    other = fe.churn_dataset(changed, **KW)
    feature_cols = [c for c in base.column_names if c not in ("churned", "purchases_in_horizon")]
    assert other.select(feature_cols).equals(base.select(feature_cols))
    # every known customer now has no purchase in the window: all churned
    assert pc.all(other.column("churned")).as_py()


def test_streamed_input_and_errors():
    log = _log(2)
    ref = fe.churn_dataset(log, **KW)
    reader = pa.RecordBatchReader.from_batches(log.schema, log.to_batches(max_chunksize=700))
    assert fe.churn_dataset(reader, **KW).equals(ref)
    with pytest.raises(InputError, match="before cutoff \\+ horizon"):
        fe.churn_dataset(log, **dict(KW, horizon=200))
    assert fe.churn_dataset(log, **dict(KW, horizon=200), require_full_horizon=False).num_rows == ref.num_rows
    with pytest.raises(InputError, match="horizon must be positive"):
        fe.churn_dataset(log, **dict(KW, horizon=0))
    with pytest.raises(InputError, match="no events on or before"):
        fe.churn_dataset(log, **dict(KW, cutoff="2020-01-01"))
    with pytest.raises(fe.ColumnNotFoundError, match="available columns"):
        fe.churn_dataset(log, **dict(KW, amount="amount"))


def test_demo_step_scores_retail_with_bundled_model(tmp_path):
    from sklearn.metrics import roc_auc_score

    from fastengage.scoring.demo import auc, demo_step

    rng = np.random.default_rng(0)
    y, s = rng.random(500) < 0.4, np.round(rng.random(500), 2)
    assert auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    summary = demo_step(tmp_path)
    assert "holdout AUC" in summary and "native-trees" in summary
    assert (tmp_path / "churn_scores.parquet").exists()
    auc_value = float(summary.split("holdout AUC ")[1].split()[0])
    assert auc_value > 0.7


def test_purchases_in_horizon_counts_orders_with_order_column():
    # one customer: a purchase before the cut-off, then one order of three lines and a second
    # order of one line in the horizon -> 2 purchases, not 4 rows
    ts = pa.array([dt.datetime(2024, 2, 1), dt.datetime(2024, 3, 5), dt.datetime(2024, 3, 5),
                   dt.datetime(2024, 3, 5), dt.datetime(2024, 3, 20), dt.datetime(2024, 4, 30)],
                  pa.timestamp("us"))
    log = pa.table({"cust": [7] * 6, "ts": ts, "amt": [5.0, 1.0, 2.0, 3.0, 4.0, 1.0],
                    "order": ["a", "b", "b", "b", "c", "d"]})
    with_order = fe.churn_dataset(log, **KW, order="order")
    assert with_order.column("purchases_in_horizon").to_pylist() == [2]
    assert with_order.column("churned").to_pylist() == [False]
    rows = fe.churn_dataset(log, **KW)
    assert rows.column("purchases_in_horizon").to_pylist() == [4]
    meta = json.loads(with_order.schema.metadata[b"fastengage.churn"])
    assert (meta["rows_before_cutoff"], meta["rows_in_horizon"], meta["rows_after_horizon"]) == (1, 4, 1)
