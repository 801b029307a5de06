"""fastengage.dask with the threaded scheduler against the single-machine functions."""
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import fastengage as fe
from distributed_data import (CHURN_MODEL, assert_same_rows, bandit_rows,
                               check_clv_equals_local, check_decide_and_monitor_equal_local,
                               transactions, with_null_ids, with_profile_columns)
from fastengage.errors import InputError
from fastengage.features import profile

dd = pytest.importorskip("dask.dataframe")
import dask  # noqa: E402

import fastengage.dask as fed  # noqa: E402


@pytest.fixture(autouse=True)
def threaded():
    with dask.config.set(scheduler="threads"):
        yield


def _ddf(tab, npartitions, empty=0, arrow_dtypes=False):
    """A Dask DataFrame of ``tab`` in ``npartitions`` pieces plus ``empty`` empty partitions
    (``arrow_dtypes``: pandas Arrow dtypes, which keep list columns as lists in Dask)."""
    pdf = tab.to_pandas(types_mapper=pd.ArrowDtype if arrow_dtypes else None)
    parts = [pdf.iloc[i::npartitions] for i in range(npartitions)] + [pdf.iloc[:0]] * empty
    return dd.from_delayed([dask.delayed(p) for p in parts], meta=pdf.iloc[:0])


def _arrow(ddf):
    return pa.Table.from_pandas(ddf.compute(), preserve_index=False)


def _check_rfm(result, want):
    """A Dask RFM result equals the local table, report included (on the Dask frame and on
    the pandas frame it computes to)."""
    pdf = result.compute()
    assert fed.report(result) == fed.report(pdf)
    assert_same_rows(pa.Table.from_pandas(pdf, preserve_index=False), want, ["customer"],
                     report=fed.report(pdf))


def test_rfm_equals_local_with_skew_and_empty_partitions():
    tab = transactions()
    got = fed.rfm(_ddf(tab, 5, empty=2), customer="customer", time="ts", amount="amount",
                  order="invoice", buckets=3)
    want = fe.rfm(tab, customer="customer", time="ts", amount="amount", order="invoice")
    _check_rfm(got, want)


def test_rfm_string_ids_as_of_returns_exclude_and_nulls():
    tab = transactions(n=6_000, customers=900, heavy_rows=800, seed=3, string_ids=True)
    kw = dict(customer="customer", time="ts", amount="amount", as_of="1970-12-01",
              returns="exclude")
    _check_rfm(fed.rfm(_ddf(tab, 4), **kw), fe.rfm(tab, **kw))
    tab = with_null_ids(tab)
    with pytest.raises(InputError, match="null"):
        fed.rfm(_ddf(tab, 3), customer="customer", time="ts", amount="amount")
    kw["drop_null_customers"] = True
    _check_rfm(fed.rfm(_ddf(tab, 3), **kw, buckets=7), fe.rfm(tab, **kw))


def test_profile_equals_local_with_empty_partitions():
    tab = with_profile_columns(transactions(n=6_000, customers=250, heavy_rows=1_000, seed=6))
    kw = dict(customer="customer", time="ts", amount="amount", order="invoice", item="item",
              category="category", channel="channel", windows=(7, 90), returns="exclude")
    result = fed.profile(_ddf(tab, 4, empty=2), **kw, buckets=5)
    pdf = result.compute()
    assert_same_rows(pa.Table.from_pandas(pdf, preserve_index=False), profile(tab, **kw),
                     ["customer"], report=fed.report(pdf))


def test_score_equals_local():
    from fastengage.scoring import load_model
    model = load_model(CHURN_MODEL)
    rng = np.random.default_rng(1)
    tab = pa.table({"customer": np.arange(3_000),
                    **{name: rng.normal(0, 3, 3_000) for name in model.features}})
    got = fed.score(_ddf(tab, 3, empty=1), model, id="customer")
    assert_same_rows(_arrow(got), model.score(tab, id="customer"), ["customer"])


def test_recommend_equals_local():
    from fastengage.recommend import ALS
    rng = np.random.default_rng(2)
    inter = pa.table({"customer": rng.integers(0, 300, 6_000), "item": rng.integers(0, 80, 6_000)})
    model = ALS(factors=8, iterations=3, seed=0).fit(inter, customer="customer", item="item")
    got = fed.recommend(model, n=5, npartitions=3)
    assert_same_rows(_arrow(got), model.recommend(n=5), ["customer", "rank"])


def test_clv_summary_fit_predict_equal_local():
    from fastengage.clv.datasets import load_cdnow_sample
    tab = load_cdnow_sample()  # 2,357 customers, a published BG/NBD benchmark set
    # pandas has no date dtype (dates become objects): give Dask timestamps
    tab = tab.set_column(1, "date", tab.column("date").cast(pa.timestamp("us")))
    kw = dict(customer="customer_id", time="date", amount="dollar_value", freq="W")
    summ = fed.clv_summary(_ddf(tab, 4, empty=1), **kw, buckets=3)
    check_clv_equals_local(fed, summ, tab, kw, _arrow)


def test_decide_equals_local_and_monitor_profiles_merge():
    data = _ddf(bandit_rows(3_000, seed=2), 4, empty=1, arrow_dtypes=True)
    check_decide_and_monitor_equal_local(fed, data, _arrow(data), _arrow)
