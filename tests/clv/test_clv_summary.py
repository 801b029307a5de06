"""clv.summary: the CDNOW paper's own summary, lifetimes' conventions, input types and errors."""
import datetime as dt

import numpy as np
import pyarrow as pa
import pytest

from fastengage import clv
from fastengage.clv.datasets import load_cdnow_sample, load_cdnow_summary
from fastengage.errors import ColumnNotFoundError, InputError


@pytest.fixture(scope="module")
def cdnow():
    return load_cdnow_sample()


def test_cdnow_reproduces_published_summary(cdnow):
    s = clv.summary(cdnow, customer="customer_id", time="date", amount="dollar_value",
                    as_of="1997-09-30", freq="D", freq_multiplier=7)
    ref = load_cdnow_summary()
    assert s.num_rows == ref.num_rows == 2357
    # the paper numbers customers by first-purchase date, then id
    order = np.lexsort((s["customer_id"].to_numpy(), -s["T"].to_numpy()))
    for ours, theirs in [("frequency", "x"), ("recency", "t_x"), ("T", "T"), ("monetary_value", "zbar")]:
        got = s[ours].to_numpy()[order]
        np.testing.assert_allclose(got, ref[theirs].to_numpy(), atol=0.005 + 1e-9, err_msg=ours)
    assert s.schema.metadata[b"rows_after_as_of"] == b"1959"


def _pd(table):
    pd = pytest.importorskip("pandas")
    df = table.to_pandas()
    df["date"] = pd.to_datetime(df["date"])
    return df


@pytest.mark.parametrize("freq,mult", [("D", 1), ("D", 7), ("W", 1)])
def test_equals_lifetimes_summary(cdnow, freq, mult):
    from lifetimes.utils import summary_data_from_transaction_data
    ref = summary_data_from_transaction_data(_pd(cdnow), "customer_id", "date", "dollar_value",
                                             observation_period_end="1997-09-30", freq=freq,
                                             freq_multiplier=mult)
    ours = clv.summary(cdnow, customer="customer_id", time="date", amount="dollar_value",
                       as_of="1997-09-30", freq=freq, freq_multiplier=mult)
    ours = ours.to_pandas().set_index("customer_id").loc[ref.index]
    for col in ref.columns:
        np.testing.assert_allclose(ours[col].to_numpy(), ref[col].to_numpy(), rtol=1e-12, atol=1e-9)


def test_equals_lifetimes_calibration_holdout(cdnow):
    from lifetimes.utils import calibration_and_holdout_data
    ref = calibration_and_holdout_data(_pd(cdnow), "customer_id", "date",
                                       calibration_period_end="1997-09-30",
                                       observation_period_end="1998-06-30", freq="W",
                                       monetary_value_col="dollar_value")
    ours = clv.summary(cdnow, customer="customer_id", time="date", amount="dollar_value",
                       as_of="1998-06-30", calibration_end="1997-09-30", freq="W")
    assert ours.num_rows == len(ref)
    ours = ours.to_pandas().set_index("customer_id").loc[ref.index]
    for col in ref.columns:
        np.testing.assert_allclose(ours[col.replace("_cal", "")].to_numpy(), ref[col].to_numpy(),
                                   rtol=1e-12, atol=1e-9, err_msg=col)


def test_input_types_agree(cdnow, tmp_path):
    pl = pytest.importorskip("polars")
    kw = dict(customer="customer_id", time="date", amount="dollar_value", freq="D")
    base = clv.summary(cdnow, **kw)
    path = tmp_path / "t.parquet"
    import pyarrow.parquet as pq
    pq.write_table(cdnow, path, row_group_size=1000)
    for data in (path, str(path), pl.from_arrow(cdnow), cdnow.combine_chunks().to_batches()[0],
                 pa.RecordBatchReader.from_batches(cdnow.schema, cdnow.to_batches(700))):
        got = clv.summary(data, **kw)
        assert got.equals(base)


def test_string_ids_and_timestamps():
    t = pa.table({
        "c": ["a", "b", "a", "a", "b"],
        "t": pa.array([dt.datetime(2024, 1, 1, 10), dt.datetime(2024, 1, 3), dt.datetime(2024, 1, 1, 20),
                       dt.datetime(2024, 1, 5), dt.datetime(2024, 1, 3, 5)], pa.timestamp("ms", "UTC")),
        "v": [1.0, 2.0, 3.0, 4.0, 5.0],
    })
    s = clv.summary(t, customer="c", time="t", amount="v", as_of=dt.date(2024, 1, 10))
    assert s["c"].to_pylist() == ["a", "b"]
    assert s["frequency"].to_pylist() == [1.0, 0.0]
    assert s["recency"].to_pylist() == [4.0, 0.0]
    assert s["T"].to_pylist() == [9.0, 7.0]
    assert s["monetary_value"].to_pylist() == [4.0, 0.0]


def test_errors(cdnow):
    with pytest.raises(ColumnNotFoundError, match="nope"):
        clv.summary(cdnow, customer="nope", time="date")
    with pytest.raises(InputError, match="freq"):
        clv.summary(cdnow, customer="customer_id", time="date", freq="Q")
    with pytest.raises(InputError, match="empty"):
        clv.summary(cdnow.slice(0, 0), customer="customer_id", time="date")
    with pytest.raises(InputError, match="time column 'dollar_value'"):
        clv.summary(cdnow, customer="customer_id", time="dollar_value")
    bad = pa.table({"c": [1, None], "t": pa.array([1, 2], pa.timestamp("s"))})
    with pytest.raises(InputError, match="null"):
        clv.summary(bad, customer="c", time="t")
    with pytest.raises(InputError, match="calibration_end"):
        clv.summary(cdnow, customer="customer_id", time="date", calibration_end="1999-01-01")


def test_time_ordered_and_shuffled_logs_agree(cdnow):
    # a time-ordered log takes the one-pass path, a shuffled one the grouping path
    ordered = cdnow.sort_by([("date", "ascending")])
    rng = np.random.default_rng(0)
    shuffled = cdnow.take(pa.array(rng.permutation(cdnow.num_rows)))
    for kw in (dict(as_of="1997-09-30"), dict(as_of="1998-06-30", calibration_end="1997-09-30")):
        a = clv.summary(ordered, customer="customer_id", time="date", amount="dollar_value", **kw)
        b = clv.summary(shuffled, customer="customer_id", time="date", amount="dollar_value", **kw)
        a = a.sort_by("customer_id")
        b = b.sort_by("customer_id")
        for col in a.column_names:
            np.testing.assert_allclose(a[col].to_numpy(), b[col].to_numpy(), rtol=1e-12)
