"""The engine-neutral core (fastengage._distributed) without any engine: any bucketing of the
customers, merged, equals fastengage.rfm; models pickle as their model files."""
import json
import pickle

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings, strategies as st

import fastengage as fe
from distributed_data import (ARMS, CHURN_MODEL, assert_same_decisions, assert_same_profile,
                               assert_same_rows,
                               bandit_rows, transactions, with_null_ids, with_profile_columns)
from fastengage._distributed import decisions, folds, models, monitoring, profile as prof
from fastengage._distributed import rfm as core
from fastengage.features import profile
from fastengage._io.times import parse_time
from fastengage._distributed.buckets import bucket_of


def _bucketed_rfm(tab, buckets, **kw):
    """What every adapter does, with the buckets made here."""
    scans = pa.Table.from_batches(list(core.scan(tab.to_batches(max_chunksize=97), "customer", "ts")))
    as_of, rows, nulls = core.combine_scans(scans, "customer", kw.get("drop_null_customers", False))
    if kw.get("as_of") is not None:
        as_of = parse_time(kw["as_of"], "as_of")
    settings_ = dict(customer="customer", time="ts", amount="amount", order=kw.get("order"),
                     returns=kw.get("returns", "net"),
                     drop_null_customers=kw.get("drop_null_customers", False))
    which = bucket_of(tab.column("customer"), buckets)
    parts = [core.rfm_bucket(tab.filter(pa.array(which == b)), settings_, as_of)
             for b in range(buckets)]
    values = pa.concat_tables([values for values, _ in parts])
    plan = core.score_plan(values.select(list(core.METRICS)))
    report = folds.merge_reports([r for _, r in parts], rows, nulls)
    return folds.with_report(core.add_scores(values, plan), report)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), buckets=st.integers(1, 9),
       returns=st.sampled_from(["net", "exclude"]), customers=st.integers(1, 60),
       string_ids=st.booleans())
def test_any_bucketing_equals_local_rfm(seed, buckets, returns, customers, string_ids):
    tab = transactions(n=400, customers=customers + 1, heavy_rows=50, seed=seed,
                       string_ids=string_ids)
    kw = dict(order="invoice", returns=returns)
    want = fe.rfm(tab, customer="customer", time="ts", amount="amount", **kw)
    got = _bucketed_rfm(tab, buckets, **kw)
    assert_same_rows(got, want, ["customer"])


def test_score_cuts_match_local_scores_with_ties():
    # many ties at the quintile boundaries: the cut points must give the local scores exactly
    tab = transactions(n=3_000, customers=40, heavy_rows=0, seed=11)
    tab = tab.set_column(2, "amount", pc.round(pc.abs(tab.column("amount")), -1))
    want = fe.rfm(tab, customer="customer", time="ts", amount="amount")
    got = _bucketed_rfm(tab, 4)
    assert_same_rows(got, want, ["customer"])


PROFILE_COLUMNS = ["customer", "ts", "amount", "invoice", "item", "category", "channel"]


def _bucketed_profile(tab, buckets, partitions=5, **kw):
    """What every adapter does for profile(), with the partitions and buckets made here."""
    scans = pa.Table.from_batches(
        [next(core.scan([part], "customer", "ts", PROFILE_COLUMNS, "channel"))
         for part in tab.to_batches(max_chunksize=tab.num_rows // partitions + 1)])
    as_of, rows, nulls = core.combine_scans(scans, "customer", kw.get("drop_null_customers", False))
    if kw.get("as_of") is not None:
        as_of = parse_time(kw["as_of"], "as_of")
    kw.pop("as_of", None)
    settings_ = dict(customer="customer", time="ts", amount="amount", order="invoice",
                     item="item", category="category", channel="channel", **kw)
    schema = prof.output_schema(*core.combine_samples(scans), settings_)
    which = bucket_of(tab.column("customer"), buckets)
    parts = [prof.profile_bucket(tab.filter(pa.array(which == b)), settings_, as_of, schema)
             for b in range(buckets)]
    values = pa.concat_tables([values for values, _ in parts])
    return folds.with_report(values, folds.merge_reports([r for _, r in parts], rows, nulls))


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), buckets=st.integers(1, 9),
       returns=st.sampled_from(["net", "exclude"]), windows=st.sampled_from([(30,), (7, 90)]),
       as_of=st.sampled_from([None, "1971-01-01"]), string_ids=st.booleans())
def test_any_bucketing_equals_local_profile(seed, buckets, returns, windows, as_of, string_ids):
    tab = with_profile_columns(transactions(n=600, customers=40, heavy_rows=80, seed=seed,
                                            string_ids=string_ids), seed)
    kw = dict(returns=returns, windows=windows, as_of=as_of)
    want = profile(tab, customer="customer", time="ts", amount="amount", order="invoice",
                   item="item", category="category", channel="channel", **kw)
    got = _bucketed_profile(tab, buckets, **kw)
    assert_same_rows(got, want, ["customer"])
    assert "channel_kiosk_spend_share" in got.column_names


def test_profile_options_are_checked():
    with pytest.raises(fe.errors.InputError, match="no option"):
        prof.settings_of("customer", "ts", "amount", {"window": (30,)})
    with pytest.raises(fe.errors.InputError, match="returns"):
        prof.settings_of("customer", "ts", "amount", {"returns": "keep"})
    cols, _ = prof.settings_of("customer", "ts", "amount", {"channel": "channel"})
    assert cols == ["customer", "ts", "amount", "channel"]


@pytest.mark.parametrize("as_of", [None, "1970-06-01"])
def test_report_of_buckets_equals_local_report_with_null_only_bucket(as_of):
    # 64 buckets of 10 customers: several hold nothing but the null-id rows, or nothing at all
    tab = with_null_ids(transactions(n=3_000, customers=10, heavy_rows=0, seed=4,
                                     string_ids=True), every=7)
    kw = dict(drop_null_customers=True, returns="exclude")
    want = fe.rfm(tab, customer="customer", time="ts", amount="amount", as_of=as_of, **kw)
    got = _bucketed_rfm(tab, 64, as_of=as_of, **kw)
    assert_same_rows(got, want, ["customer"])
    assert json.loads(want.schema.metadata[b"fastengage"])["null_customer_rows_dropped"] > 400


def test_scan_refuses_empty_and_null_ids():
    tab = transactions(n=50, customers=5, heavy_rows=0)
    with pytest.raises(fe.errors.InputError, match="empty"):
        core.combine_scans(pa.Table.from_batches(list(core.scan([tab.slice(0, 0)], "customer", "ts"))),
                           "customer", False)
    nulls = tab.set_column(0, "customer", pa.array([None] * 50, pa.int64()))
    scans = pa.Table.from_batches(list(core.scan([nulls], "customer", "ts")))
    with pytest.raises(fe.errors.InputError, match="null"):
        core.combine_scans(scans, "customer", False)
    with pytest.raises(fe.errors.InputError, match="every row"):
        core.combine_scans(scans, "customer", True)


def test_models_ship_as_their_files():
    from fastengage.scoring import LinearModel, load_model
    onnx = load_model(CHURN_MODEL)
    linear = LinearModel([[0.5, -1.0]], 0.25, link="logistic", features=["a", "b"])
    X = np.random.default_rng(0).normal(size=(50, 6))
    for model, x in ((onnx, X), (linear, X[:, :2])):
        token, data = models.ship(model)
        again = models.worker_model(token, data)
        assert models.worker_model(token, b"not read again") is again  # loaded once per process
        assert np.array_equal(again.predict(x), model.predict(x))
    # what travels is the model file plus the loader's name: no other object of the driver
    assert pickle.dumps(onnx).count(open(CHURN_MODEL, "rb").read()[:200]) == 1
    plain = load_model(CHURN_MODEL)
    del plain._file
    with pytest.raises(TypeError, match="model file"):
        pickle.dumps(plain)


def test_buckets_ignore_batch_boundaries_and_spread():
    ids = pa.array([f"id-{i}" for i in range(4_000)] + ["", "x" * 300])
    whole = bucket_of(ids, 16)
    pieces = np.concatenate([bucket_of(ids.slice(i, 333), 16) for i in range(0, len(ids), 333)])
    assert np.array_equal(whole, pieces)
    assert np.array_equal(bucket_of(pa.chunked_array([ids.slice(0, 10), ids.slice(10)]), 16), whole)
    assert np.bincount(whole, minlength=16).min() > 150
    dict_ids = ids.dictionary_encode()
    assert np.array_equal(bucket_of(dict_ids, 16), whole)


@pytest.mark.parametrize("kind", ["LinTS", "EpsilonGreedy", "LinUCB"])
def test_decisions_of_partitions_equal_local_decide(kind):
    from fastengage import bandits
    logs = bandit_rows(2_000, seed=1)
    policy = getattr(bandits, kind)(ARMS, features=["x0", "x1", "x2"]).update(
        logs, arm="arm", reward="reward")
    rows = bandit_rows(1_500, seed=2)
    options = decisions.check_options(dict(id="customer", eligible="allowed", seed=7,
                                           expected=True))
    want = policy.decide(rows, **options)
    assert decisions.output_schema(policy, pa.int64(), options) == want.schema
    features = ["x0", "x1", "x2"] if policy.features else []
    assert decisions.columns_read(policy, options) == [*features, "customer", "allowed"]
    token, data = decisions.ship(policy)
    shipped = decisions.worker_policy(token, data)
    assert shipped is not policy and decisions.worker_policy(token, b"") is shipped
    sizes = [0, 400, 1, 0, 733, 366]  # empty partitions, one-row ones, straddling batches
    starts = np.concatenate([[0], np.cumsum(sizes)])
    counts = pa.concat_tables(
        [pa.Table.from_batches(list(decisions.count_rows([rows.slice(starts[p], n)], p)))
         for p, n in reversed(list(enumerate(sizes)))])  # the engine returns them unordered
    first = decisions.first_rows(counts)
    got = pa.concat_tables([pa.Table.from_batches(
        list(decisions.decide_batches(rows.slice(starts[p], n).to_batches(max_chunksize=97),
                                      shipped, first[p], options)), want.schema)
        for p, n in enumerate(sizes)])
    assert_same_decisions(got, want)
    with pytest.raises(fe.errors.InputError, match="eligible"):
        decisions.check_options(dict(eligible=np.ones((3, 4), bool)))


def test_monitor_profiles_of_partitions_merge_to_the_local_profile():
    from fastengage.monitor import Profile
    rows = bandit_rows(5_000, seed=3).drop_columns(["allowed"])
    options = dict(mode="auto")
    kinds = monitoring.kinds_of(rows.schema, None, ["customer"], options)
    want = Profile.from_data(rows, categorical=["customer"], **options)
    assert kinds == want.kinds
    pieces = [rows.slice(0, 0), rows.slice(0, 1234), rows.slice(1234, 0), rows.slice(1234)]
    blobs = pa.concat_tables([pa.Table.from_batches(list(monitoring.partition_profile(
        piece.to_batches(max_chunksize=500), kinds, options, partition=p)))
        for p, piece in reversed(list(enumerate(pieces)))])
    assert_same_profile(monitoring.merge_profiles(blobs, kinds, options), want)
