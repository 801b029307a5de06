"""Interaction builder and splits: every input path, weightings, bad input, the demo step."""
import datetime as dt
import math

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fastengage.errors import ColumnNotFoundError, InputError
from fastengage.recommend import Interactions, random_split, temporal_split

import naive_recommend as naive


@pytest.fixture()
def events():
    return pa.table({
        "cust": ["a", "b", "a", "c", "a", "b"],
        "sku": [10, 20, 10, 30, 20, 20],
        "spend": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        "ts": pa.array([dt.datetime(2011, 1, d) for d in (1, 2, 3, 4, 5, 6)],
                       pa.timestamp("s")),
    })


def _dense(inter):
    return {(c, i): v for c, i, v in zip(*(inter.to_arrow().column(k).to_pylist()
                                            for k in ("customer", "item", "value")))}


@pytest.mark.parametrize("weighting,expected", [
    ("count", {("a", 10): 2, ("a", 20): 1, ("b", 20): 2, ("c", 30): 1}),
    ("binary", {("a", 10): 1, ("a", 20): 1, ("b", 20): 1, ("c", 30): 1}),
    ("log", {("a", 10): math.log(3), ("a", 20): math.log(2), ("b", 20): math.log(3),
             ("c", 30): math.log(2)}),
])
def test_weightings_without_weight(events, weighting, expected):
    inter = Interactions.from_data(events, customer="cust", item="sku", weighting=weighting)
    got = _dense(inter)
    assert got.keys() == expected.keys()
    for k in expected:
        assert got[k] == pytest.approx(expected[k], rel=1e-6)
    assert inter.shape == (3, 3)


def test_sum_and_log_with_weight(events):
    inter = Interactions.from_data(events, customer="cust", item="sku", weight="spend")
    assert inter.weighting == "sum"
    assert _dense(inter) == {("a", 10): 4.0, ("a", 20): 5.0, ("b", 20): 8.0, ("c", 30): 4.0}
    log = Interactions.from_data(events, customer="cust", item="sku", weight="spend", weighting="log",
                                 log_epsilon=2.0)
    assert _dense(log)[("b", 20)] == pytest.approx(math.log1p(8.0 / 2.0), rel=1e-6)


def test_matches_naive_grouping_on_random_data():
    rng = np.random.default_rng(0)
    c = rng.integers(0, 50, 2000)
    i = rng.integers(0, 40, 2000)
    w = rng.uniform(0.5, 3, 2000)
    inter = Interactions.from_data(pa.table({"c": c, "i": i, "w": w}), customer="c", item="i", weight="w")
    ref = naive.group_pairs(c, i, w)
    coo = inter.matrix.tocoo()
    cid = np.asarray(inter.customers.decode(coo.row))
    iid = np.asarray(inter.items.decode(coo.col))
    got = {(int(a), int(b)): v for a, b, v in zip(cid, iid, coo.data)}
    assert got.keys() == ref.keys()
    for k in ref:
        assert got[k] == pytest.approx(ref[k][0], rel=1e-6)


def test_every_input_path(events, tmp_path):
    ref = _dense(Interactions.from_data(events, customer="cust", item="sku"))
    path = tmp_path / "e.parquet"
    pq.write_table(events, path)
    import polars as pl
    inputs = [events.to_batches()[0], pa.RecordBatchReader.from_batches(events.schema,
                                                                        events.to_batches()),
              str(path), pl.from_arrow(events), events.to_pandas(types_mapper=pd_arrow())]
    for data in inputs:
        assert _dense(Interactions.from_data(data, customer="cust", item="sku")) == ref


def pd_arrow():
    import pandas as pd
    return pd.ArrowDtype


def test_bad_input(events):
    with pytest.raises(ColumnNotFoundError, match="sku2"):
        Interactions.from_data(events, customer="cust", item="sku2")
    with pytest.raises(InputError, match="null"):
        Interactions.from_data(pa.table({"c": [1, None], "i": [1, 2]}), customer="c", item="i")
    with pytest.raises(InputError, match="zero or negative"):
        Interactions.from_data(pa.table({"c": [1, 2], "i": [1, 2], "w": [1.0, -2.0]}),
                               customer="c", item="i", weight="w")
    with pytest.raises(InputError, match="no rows"):
        Interactions.from_data(events.slice(0, 0), customer="cust", item="sku")
    with pytest.raises(InputError, match="ids must be integers or strings"):
        Interactions.from_data(pa.table({"c": [1.5], "i": [1]}), customer="c", item="i")
    with pytest.raises(InputError, match="weighting"):
        Interactions.from_data(events, customer="cust", item="sku", weighting="tfidf")
    with pytest.raises(InputError, match="weight="):
        Interactions.from_data(events, customer="cust", item="sku", weighting="sum")


def test_temporal_split(events):
    split = temporal_split(events, customer="cust", item="sku", time="ts", cutoff="2011-01-04")
    train, test = split
    assert train.customers is test.customers and train.shape == test.shape
    assert _dense(train) == {("a", 10): 2, ("b", 20): 1}
    # (b, 20) after the cutoff is a repeat of a train pair: removed and counted
    assert _dense(test) == {("c", 30): 1, ("a", 20): 1}
    assert split.removed == 1
    keep = temporal_split(events, customer="cust", item="sku", time="ts", cutoff=dt.date(2011, 1, 4),
                          exclude_train_pairs=False)
    assert _dense(keep.test) == {("c", 30): 1, ("a", 20): 1, ("b", 20): 1}
    with pytest.raises(InputError, match="no events before"):
        temporal_split(events, customer="cust", item="sku", time="ts", cutoff="2000-01-01")
    with pytest.raises(InputError, match="timestamp"):
        temporal_split(events, customer="cust", item="sku", time="spend", cutoff="2011-01-04")


def test_random_split_partitions_pairs():
    rng = np.random.default_rng(1)
    t = pa.table({"c": rng.integers(0, 100, 3000), "i": rng.integers(0, 80, 3000)})
    inter = Interactions.from_data(t, customer="c", item="i")
    tr, te = random_split(inter, 0.3, seed=4)
    assert tr.nnz + te.nnz == inter.nnz
    assert tr.matrix.multiply(te.matrix).nnz == 0
    assert abs(te.nnz / inter.nnz - 0.3) < 0.05
    tr2, te2 = random_split(inter, 0.3, seed=4)
    assert (te2.matrix != te.matrix).nnz == 0


def test_demo_step(tmp_path):
    from fastengage.recommend.demo import demo_step
    summary = demo_step(tmp_path)
    recs = pq.read_table(tmp_path / "recommendations.parquet")
    assert recs.column_names == ["customer", "rank", "item", "score"]
    assert recs.schema.field("customer").type == pa.int64()
    assert recs.num_rows == 10 * len(set(recs.column("customer").to_pylist()))
    assert "null CustomerID dropped 135,080" in summary
    assert "precision@10" in summary


def test_evaluate_with_separately_built_test_set():
    """A test set with its own encoders is matched to the model by id values; unknown
    customers and items are counted, not silently dropped."""
    from fastengage.recommend import ALS, evaluate
    rng = np.random.default_rng(3)
    t = pa.table({"c": rng.integers(0, 200, 4000), "i": rng.integers(0, 100, 4000)})
    train = Interactions.from_data(t, customer="c", item="i")
    model = ALS(factors=8, iterations=3, seed=0).fit(train)
    later = pa.table({"c": [5, 5, 7, 99999], "i": [3, 123456, 4, 3]})
    test = Interactions.from_data(later, customer="c", item="i")
    res = evaluate(model, test, k=5)
    assert res["customers_unknown"] == 1 and res["pairs_unknown_item"] == 1
    # the same pairs expressed in the model's own encoders give the same numbers
    import scipy.sparse as sp
    rows = model.customers_.lookup(pa.array([5, 7]))
    cols = model.items_.lookup(pa.array([3, 4]))
    same = Interactions(sp.csr_matrix((np.ones(2, np.float32), (rows, cols)), shape=train.shape),
                        model.customers_, model.items_)
    ref = evaluate(model, same, k=5)
    for key in ("precision", "recall", "map", "ndcg", "auc"):
        assert res[key] == pytest.approx(ref[key])


def test_from_csr_roundtrip():
    import scipy.sparse as sp
    m = sp.random(30, 20, density=0.2, random_state=0, format="csr")
    inter = Interactions.from_csr(m, item_ids=[f"i{k}" for k in range(20)])
    assert inter.shape == (30, 20)
    assert np.allclose(inter.matrix.toarray(), m.toarray().astype(np.float32))
    assert inter.items.decode([3]).to_pylist() == ["i3"]


def test_recency_decay(events):
    inter = Interactions.from_data(events, customer="cust", item="sku", time="ts", half_life_days=1.0)
    got = _dense(inter)
    # as_of = 2011-01-06: (a, 10) events are 5 and 3 days old -> 2**-5 + 2**-3
    assert got[("a", 10)] == pytest.approx(2.0 ** -5 + 2.0 ** -3, rel=1e-6)
    assert got[("b", 20)] == pytest.approx(2.0 ** -4 + 1.0, rel=1e-6)
    spend = Interactions.from_data(events, customer="cust", item="sku", weight="spend", time="ts",
                                   half_life_days=2.0, as_of="2011-01-08")
    assert _dense(spend)[("c", 30)] == pytest.approx(4.0 * 2.0 ** -2, rel=1e-6)
    with pytest.raises(InputError, match="after as_of"):
        Interactions.from_data(events, customer="cust", item="sku", time="ts", half_life_days=1.0,
                               as_of="2011-01-03")
    with pytest.raises(InputError, match="needs a time"):
        Interactions.from_data(events, customer="cust", item="sku", half_life_days=1.0)


def test_temporal_split_with_decay(events):
    train, test = temporal_split(events, customer="cust", item="sku", time="ts", cutoff="2011-01-04", half_life_days=1.0)
    # train events on Jan 1 and 3 for (a, 10): 3 and 1 days before the cutoff
    assert _dense(train)[("a", 10)] == pytest.approx(2.0 ** -3 + 2.0 ** -1, rel=1e-6)
    assert _dense(test) == {("c", 30): 1, ("a", 20): 1}
