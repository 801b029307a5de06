"""fastengage.spark in local[2] mode against the single-machine functions on the same data."""
import numpy as np
import pyarrow as pa
import pytest

import fastengage as fe
from distributed_data import (ARMS, CHURN_MODEL, assert_same_decisions, assert_same_profile,
                               assert_same_rows, bandit_rows, transactions, with_profile_columns)
from fastengage.errors import InputError
from fastengage.features import profile

pyspark = pytest.importorskip("pyspark")
import fastengage.spark as fes  # noqa: E402


def test_rfm_equals_local_with_skew_straddling_batches_and_empty_partitions(spark):
    tab = transactions()
    # 16 partitions of which several empty: repartition a small union by a constant
    df = spark.createDataFrame(tab).repartition(16, "invoice")
    empty = spark.createDataFrame(tab.slice(0, 0)).repartition(3)
    df = df.unionByName(empty)
    result = fes.rfm(df, customer="customer", time="ts", amount="amount", order="invoice",
                     buckets=3)
    got = result.toArrow()
    want = fe.rfm(tab, customer="customer", time="ts", amount="amount", order="invoice")
    assert_same_rows(got, want, ["customer"], report=fes.report(result))
    heavy = got.filter(pa.compute.equal(got.column("customer"), 0))
    assert heavy.column("frequency")[0].as_py() > 500  # the skewed customer is one row


def test_profile_equals_local_with_straddling_batches_and_empty_partitions(spark):
    tab = with_profile_columns(transactions(n=8_000, customers=300, heavy_rows=1_500, seed=6,
                                            string_ids=True))
    df = spark.createDataFrame(tab).repartition(8, "invoice")
    df = df.unionByName(spark.createDataFrame(tab.slice(0, 0)).repartition(2))
    kw = dict(customer="customer", time="ts", amount="amount", order="invoice", item="item",
              category="category", channel="channel", windows=(7, 90), as_of="1971-02-01")
    result = fes.profile(df, **kw, buckets=5)
    assert_same_rows(result.toArrow(), profile(tab, **kw), ["customer"],
                     report=fes.report(result))


def test_rfm_string_ids_as_of_and_returns_exclude(spark):
    tab = transactions(n=6_000, customers=900, heavy_rows=800, seed=3, string_ids=True)
    df = spark.createDataFrame(tab)
    kw = dict(customer="customer", time="ts", amount="amount", as_of="1970-12-01",
              returns="exclude")
    result = fes.rfm(df, **kw, buckets=5)
    assert_same_rows(result.toArrow(), fe.rfm(tab, **kw), ["customer"], report=fes.report(result))


def test_rfm_null_customers(spark):
    tab = transactions(n=2_000, customers=50, heavy_rows=0, seed=5)
    ids = tab.column("customer").to_numpy().astype(object)
    ids[::97] = None
    tab = tab.set_column(0, "customer", pa.array(ids.tolist(), pa.int64()))
    df = spark.createDataFrame(tab)
    with pytest.raises(InputError, match="null"):
        fes.rfm(df, customer="customer", time="ts", amount="amount")
    # 16 buckets of 50 customers: the null ids' bucket may hold nothing else
    result = fes.rfm(df, customer="customer", time="ts", amount="amount",
                     drop_null_customers=True, buckets=16)
    want = fe.rfm(tab, customer="customer", time="ts", amount="amount", drop_null_customers=True)
    assert_same_rows(result.toArrow(), want, ["customer"], report=fes.report(result))


def test_score_equals_local(spark):
    from fastengage.scoring import load_model
    model = load_model(CHURN_MODEL)
    rng = np.random.default_rng(1)
    feats = {name: rng.normal(0, 3, 5_000) for name in model.features}
    tab = pa.table({"customer": np.arange(5_000), **feats})
    got = fes.score(spark.createDataFrame(tab).repartition(5), model, id="customer").toArrow()
    assert_same_rows(got, model.score(tab, id="customer"), ["customer"])


def test_recommend_equals_local(spark):
    from fastengage.recommend import ALS
    rng = np.random.default_rng(2)
    inter = pa.table({"customer": rng.integers(0, 300, 6_000), "item": rng.integers(0, 80, 6_000)})
    model = ALS(factors=8, iterations=3, seed=0).fit(inter, customer="customer", item="item")
    got = fes.recommend(model, spark=spark, n=5, partitions=3).toArrow()
    assert_same_rows(got, model.recommend(n=5), ["customer", "rank"])
    some = spark.createDataFrame(pa.table({"who": [5, 7, 11]}))
    got = fes.recommend(model, some, customer="who", n=3, exclude_seen=False).toArrow()
    assert_same_rows(got, model.recommend([5, 7, 11], n=3, exclude_seen=False),
                     ["customer", "rank"])


def test_clv_summary_fit_predict_equal_local(spark):
    from fastengage.clv import BetaGeo
    from fastengage.clv.datasets import load_cdnow_sample
    tab = load_cdnow_sample()  # 2,357 customers, a published BG/NBD benchmark set
    kw = dict(customer="customer_id", time="date", amount="dollar_value", freq="W")
    summ = fes.clv_summary(spark.createDataFrame(tab), **kw, buckets=3)
    want = fe.clv.summary(tab, **kw).replace_schema_metadata(None)
    assert_same_rows(summ.toArrow(), want, ["customer_id"], rounding=["monetary_value"])
    local = BetaGeo().fit(want)
    dist = fes.clv_fit(BetaGeo(), summ)
    for k, v in local.params_.items():
        assert dist.params_[k] == pytest.approx(v, rel=1e-9, abs=0), k
    got = fes.clv_predict(local, summ, 30.0, customer="customer_id").toArrow()
    assert_same_rows(got, local.predict(want, 30.0, customer="customer_id"),
                     ["customer_id"])


def test_decide_equals_local_and_monitor_profiles_merge(spark):
    from fastengage.bandits import LinTS
    from fastengage.monitor import Profile
    policy = LinTS(ARMS, features=["x0", "x1", "x2"]).update(bandit_rows(2_000, seed=1),
                                                              arm="arm", reward="reward")
    rows = bandit_rows(3_000, seed=2)
    kw = dict(id="customer", eligible="allowed", seed=5, expected=True)

    def local(order):  # local decisions of the rows in the given order of customer ids
        want = policy.decide(rows.take(order.column("customer")), **kw)
        return want.set_column(3, "expected_reward", want.column(3).cast(pa.list_(pa.float64())))
    # 6 shuffled partitions (rows in no promised order: decide checkpoints them), batches of
    # at most 500 rows, and an empty partition; the rows come back in the order decided
    df = spark.createDataFrame(rows).repartition(6)
    df = df.unionByName(spark.createDataFrame(rows.slice(0, 0)))
    got = fes.decide(df, policy, **kw).toArrow()
    assert_same_decisions(got, local(got.rename_columns(["customer", "a", "p", "e"])))
    # a DataFrame with a fixed row order, no checkpoint: equal to decide on df.toArrow()
    fixed = spark.createDataFrame(rows).unionByName(spark.createDataFrame(rows.slice(0, 0)))
    got = fes.decide(fixed, policy, checkpoint=False, **kw).toArrow()
    assert_same_decisions(got, local(fixed.select("customer").toArrow()))
    profile_ = fes.monitor_profile(df, categorical=["customer"], mode="exact")
    assert_same_profile(profile_, Profile.from_data(rows, categorical=["customer"], mode="exact"))
