"""fastengage.ray on a local Ray against the single-machine functions on the same data."""
import numpy as np
import pyarrow as pa
import pytest

import fastengage as fe
from distributed_data import (CHURN_MODEL, assert_same_rows, bandit_rows,
                               check_clv_equals_local, check_decide_and_monitor_equal_local,
                               transactions, with_null_ids, with_profile_columns)
from fastengage.errors import InputError
from fastengage.features import profile

ray = pytest.importorskip("ray")
import ray.data  # noqa: E402

import fastengage.ray as fer  # noqa: E402


@pytest.fixture(scope="module")
def local_ray():
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 ignore_reinit_error=True)
    except Exception as exc:  # raylet start-up is bounded by 30 s: an overloaded machine
        pytest.skip(f"a local Ray did not start: {exc}")
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield
    ray.shutdown()


def _ds(tab, blocks, empty=0):
    """A Dataset of ``tab`` in ``blocks`` blocks plus ``empty`` empty blocks."""
    parts = [tab.take(np.arange(i, tab.num_rows, blocks)) for i in range(blocks)]
    return ray.data.from_arrow(parts + [tab.slice(0, 0)] * empty)


def _arrow(ds):
    return pa.concat_tables(ray.get(ds.to_arrow_refs()))


def test_rfm_equals_local_with_skew_and_empty_blocks(local_ray):
    tab = transactions()
    got = fer.rfm(_ds(tab, 5, empty=2), customer="customer", time="ts", amount="amount",
                  order="invoice", buckets=3)
    want = fe.rfm(tab, customer="customer", time="ts", amount="amount", order="invoice")
    assert_same_rows(_arrow(got), want, ["customer"], report=fer.report(got))


def test_rfm_string_ids_and_nulls(local_ray):
    tab = transactions(n=6_000, customers=900, heavy_rows=800, seed=3, string_ids=True)
    kw = dict(customer="customer", time="ts", amount="amount", as_of="1970-12-01")
    got = fer.rfm(_ds(tab, 4), **kw, buckets=4)
    assert_same_rows(_arrow(got), fe.rfm(tab, **kw), ["customer"])
    tab = with_null_ids(tab)
    with pytest.raises(InputError, match="null"):
        fer.rfm(_ds(tab, 3), customer="customer", time="ts", amount="amount")
    kw["drop_null_customers"] = True
    got = fer.rfm(_ds(tab, 3, empty=1), **kw, buckets=7)
    assert_same_rows(_arrow(got), fe.rfm(tab, **kw), ["customer"])


def test_profile_equals_local_with_empty_blocks(local_ray):
    tab = with_profile_columns(transactions(n=6_000, customers=250, heavy_rows=1_000, seed=6,
                                            string_ids=True))
    kw = dict(customer="customer", time="ts", amount="amount", order="invoice", item="item",
              category="category", channel="channel", windows=(30,))
    result = fer.profile(_ds(tab, 4, empty=2), **kw, buckets=5)
    assert_same_rows(_arrow(result), profile(tab, **kw), ["customer"])
    assert fer.report(result) == fer.report(_arrow(result))


def test_score_and_recommend_equal_local(local_ray):
    from fastengage.recommend import ALS
    from fastengage.scoring import load_model
    model = load_model(CHURN_MODEL)
    rng = np.random.default_rng(1)
    tab = pa.table({"customer": np.arange(3_000),
                    **{name: rng.normal(0, 3, 3_000) for name in model.features}})
    got = fer.score(_ds(tab, 3), model, id="customer")
    assert_same_rows(_arrow(got), model.score(tab, id="customer"), ["customer"])
    inter = pa.table({"customer": rng.integers(0, 300, 6_000), "item": rng.integers(0, 80, 6_000)})
    als = ALS(factors=8, iterations=3, seed=0).fit(inter, customer="customer", item="item")
    assert_same_rows(_arrow(fer.recommend(als, n=5, blocks=3)), als.recommend(n=5),
                     ["customer", "rank"])


def test_clv_summary_fit_predict_equal_local(local_ray):
    from fastengage.clv.datasets import load_cdnow_sample
    tab = load_cdnow_sample()
    kw = dict(customer="customer_id", time="date", amount="dollar_value", freq="W")
    summ = fer.clv_summary(_ds(tab, 4, empty=1), **kw, buckets=3).materialize()
    check_clv_equals_local(fer, summ, tab, kw, _arrow)


def test_decide_equals_local_and_monitor_profiles_merge(local_ray):
    data = _ds(bandit_rows(3_000, seed=2), 4, empty=1)
    check_decide_and_monitor_equal_local(fer, data, _arrow(data), _arrow)
