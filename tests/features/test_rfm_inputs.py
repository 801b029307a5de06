"""Every input path of the Arrow layer, and every bad input, through rfm()."""
import datetime as dt
import json
import threading

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

import fastengage as fe

KW = dict(customer="cust", time="ts", amount="amt")


@pytest.fixture
def table():
    rng = np.random.default_rng(3)
    n = 500
    return pa.table({
        "cust": pa.array(rng.integers(0, 40, n)),
        "ts": pa.array(rng.integers(0, 90 * 86_400, n) + 1_700_000_000, pa.timestamp("s")),
        "amt": pa.array(np.round(rng.normal(20, 15, n), 2)),
        "ord": pa.array(rng.integers(0, 200, n)),
        "other": pa.array(np.zeros(n)),
    })


@pytest.fixture
def expected(table):
    return fe.rfm(table, **KW, order="ord")


def test_record_batch_reader_dataset_and_parquet(table, expected, tmp_path):
    batch = table.combine_chunks().to_batches()[0]
    assert fe.rfm(batch, **KW, order="ord").equals(expected)
    reader = pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=37))
    assert fe.rfm(reader, **KW, order="ord").equals(expected)
    path = tmp_path / "tx.parquet"
    pq.write_table(table, path, row_group_size=64)
    assert fe.rfm(str(path), **KW, order="ord").equals(expected)
    assert fe.rfm(path, **KW, order="ord", batch_size=50).equals(expected)
    folder = tmp_path / "parts"
    folder.mkdir()
    pq.write_table(table.slice(0, 200), folder / "a.parquet")
    pq.write_table(table.slice(200), folder / "b.parquet")
    assert fe.rfm(str(folder), **KW, order="ord").equals(expected)
    assert fe.rfm(ds.dataset(folder), **KW, order="ord").equals(expected)


def test_polars_duckdb_and_pandas_through_the_stream_protocol(table, expected):
    pl = pytest.importorskip("polars")
    duckdb = pytest.importorskip("duckdb")
    assert fe.rfm(pl.from_arrow(table), **KW, order="ord").equals(expected)
    rel = duckdb.from_arrow(table)
    assert fe.rfm(rel, **KW, order="ord").equals(expected)
    pdf = table.to_pandas(types_mapper=None)
    result = fe.rfm(pdf, **KW, order="ord")
    assert result.drop_columns(["first_purchase", "last_purchase"]).equals(
        expected.drop_columns(["first_purchase", "last_purchase"]))


def test_string_ids_keep_their_type(table):
    for typ in (pa.string(), pa.large_string()):
        t = table.set_column(0, "cust", table["cust"].cast(pa.string()).cast(typ))
        result = fe.rfm(t, **KW)
        assert result.schema.field("cust").type == typ
        assert result["cust"].to_pylist() == sorted(set(t["cust"].to_pylist()) & set(result["cust"].to_pylist()))
    small = table.set_column(0, "cust", table["cust"].cast(pa.int16()))
    assert fe.rfm(small, **KW).schema.field("cust").type == pa.int16()


def test_time_types_agree(table):
    base = fe.rfm(table, **KW)
    secs = table["ts"].cast(pa.int64()).to_numpy()
    for typ, values in [
        (pa.timestamp("ms"), secs * 1000), (pa.timestamp("us", tz="UTC"), secs * 1_000_000),
        (pa.timestamp("ns", tz="America/New_York"), secs * 1_000_000_000),
    ]:
        t = table.set_column(1, "ts", pa.array(values, typ))
        assert fe.rfm(t, **KW).equals(base), typ
    # dates: midnight UTC
    days = (secs // 86_400).astype(np.int32)
    d32 = table.set_column(1, "ts", pa.array(days, pa.date32()))
    d64 = table.set_column(1, "ts", pa.array(days.astype(np.int64) * 86_400_000, pa.date64()))
    assert fe.rfm(d32, **KW).equals(fe.rfm(d64, **KW))


def test_as_of_accepts_datetime_date_and_iso(table):
    cut = dt.datetime(2023, 12, 1, 12, tzinfo=dt.timezone.utc)
    a = fe.rfm(table, **KW, as_of=cut)
    assert a.equals(fe.rfm(table, **KW, as_of="2023-12-01T12:00:00+00:00"))
    assert a.equals(fe.rfm(table, **KW, as_of=dt.datetime(2023, 12, 1, 12)))  # naive = UTC
    d = fe.rfm(table, **KW, as_of=dt.date(2023, 12, 1))
    assert d.equals(fe.rfm(table, **KW, as_of="2023-12-01"))
    report = json.loads(a.schema.metadata[b"fastengage"])
    assert report["rows_after_as_of"] > 0
    assert report["as_of"] == "2023-12-01T12:00:00+00:00"
    assert (a["last_purchase"].cast(pa.int64()).to_numpy() <= int(cut.timestamp() * 1e6)).all()
    with pytest.raises(fe.InputError, match="as_of"):
        fe.rfm(table, **KW, as_of="yesterday")


def test_unknown_column_lists_the_available_ones(table):
    with pytest.raises(fe.ColumnNotFoundError, match=r"customer column 'customer_id'.*'cust', 'ts'"):
        fe.rfm(table, customer="customer_id", time="ts", amount="amt")


@pytest.mark.parametrize("column,value,message", [
    ("cust", pa.array([1.5] * 3), r"customer column 'cust' has type double"),
    ("ts", pa.array(["2020-01-01"] * 3), r"time column 'ts' has type string"),
    ("amt", pa.array(["1"] * 3), r"amount column 'amt' has type string"),
])
def test_wrong_types_are_named(column, value, message):
    cols = {"cust": pa.array([1, 2, 3]), "ts": pa.array([1, 2, 3], pa.timestamp("s")),
            "amt": pa.array([1.0, 2.0, 3.0])}
    cols[column] = value
    with pytest.raises(fe.InputError, match=message):
        fe.rfm(pa.table(cols), **KW)


def test_null_customers_raise_or_are_dropped_and_counted():
    t = pa.table({"cust": pa.array([1, None, 2, None]), "ts": pa.array([1, 2, 3, 4], pa.timestamp("s")),
                  "amt": pa.array([1.0, 2.0, 3.0, 4.0])})
    with pytest.raises(fe.InputError, match=r"customer column 'cust' has 2 null value\(s\) in rows 1..4;"):
        fe.rfm(t, **KW)
    result = fe.rfm(t, **KW, drop_null_customers=True)
    assert result["cust"].to_pylist() == [1, 2]
    assert json.loads(result.schema.metadata[b"fastengage"])["null_customer_rows_dropped"] == 2


@pytest.mark.parametrize("amounts,message", [
    ([1.0, None, 2.0], r"amount column 'amt' has 1 null value\(s\)"),
    ([1.0, float("nan"), 2.0], r"amount column 'amt' has 1 NaN value\(s\)"),
])
def test_bad_amounts(amounts, message):
    t = pa.table({"cust": [1, 2, 3], "ts": pa.array([1, 2, 3], pa.timestamp("s")), "amt": amounts})
    with pytest.raises(fe.InputError, match=message):
        fe.rfm(t, **KW)


def test_null_times_and_empty_input():
    t = pa.table({"cust": [1, 2], "ts": pa.array([1, None], pa.timestamp("s")), "amt": [1.0, 2.0]})
    with pytest.raises(fe.InputError, match=r"time column 'ts' has 1 null"):
        fe.rfm(t, **KW)
    with pytest.raises(fe.InputError, match="empty"):
        fe.rfm(t.slice(0, 0), **KW)
    reader = pa.RecordBatchReader.from_batches(t.schema, [])
    with pytest.raises(fe.InputError, match="empty"):
        fe.rfm(reader, **KW)


def test_returns_modes():
    t = pa.table({"cust": [1, 1, 2, 3], "ts": pa.array([1, 2, 3, 4], pa.timestamp("s")),
                  "amt": [10.0, -4.0, 5.0, -1.0]})
    net = fe.rfm(t, **KW)
    assert net["monetary_total"].to_pylist() == [6.0, 5.0]
    meta = json.loads(net.schema.metadata[b"fastengage"])
    assert meta["customers_without_purchase"] == 1 and meta["return_rows"] == 2
    excl = fe.rfm(t, **KW, returns="exclude")
    assert excl["monetary_total"].to_pylist() == [10.0, 5.0]
    assert json.loads(excl.schema.metadata[b"fastengage"])["return_rows_excluded"] == 2
    with pytest.raises(fe.InputError, match=r"2 negative value\(s\)"):
        fe.rfm(t, **KW, returns="error")
    with pytest.raises(fe.InputError, match="returns must be one of"):
        fe.rfm(t, **KW, returns="ignore")


def test_custom_segments():
    t = pa.table({"cust": [1, 2], "ts": pa.array([1, 86_400 * 3], pa.timestamp("s")), "amt": [1.0, 2.0]})
    result = fe.rfm(t, **KW, segments=lambda r, f, m: "recent" if r >= 3 else "old")
    assert result["segment"].to_pylist() == ["old", "recent"]
    with pytest.raises(fe.InputError, match="no entry for"):
        fe.rfm(t, **KW, segments={(1, 1, 1): "x"})


def test_state_save_load_and_incremental_updates(table, tmp_path):
    kw = dict(KW, order="ord")
    whole = fe.rfm(table, **kw)
    state = fe.RFMState(**kw).update(table.slice(0, 300))
    path = tmp_path / "state.fe"
    state.save(path)
    loaded = fe.RFMState.load(path)
    assert loaded.to_table().equals(state.to_table())
    loaded.update(table.slice(300))
    assert loaded.to_table().drop_columns(["m_score"]).equals(whole.drop_columns(["m_score"]))
    with pytest.raises(fe.ModelFormatError):
        fe.RFMState.load(__file__)


def test_to_table_refuses_an_as_of_before_held_events(table):
    state = fe.RFMState(**KW).update(table)
    with pytest.raises(fe.InputError, match="before events the state already holds"):
        state.to_table(as_of="2000-01-01")


def test_concurrent_updates_from_threads_equal_serial(table):
    kw = dict(KW, order="ord")
    state = fe.RFMState(**kw)
    parts = [table.slice(i, 25) for i in range(0, table.num_rows, 25)]
    threads = [threading.Thread(target=lambda p=p: state.update(p)) for p in parts]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    np.testing.assert_allclose(state.to_table()["monetary_total"].to_numpy(),
                               fe.rfm(table, **kw)["monetary_total"].to_numpy())
    assert state.to_table()["frequency"].equals(fe.rfm(table, **kw)["frequency"])


def test_parquet_time_sorted_pass_and_its_fallback(table, tmp_path):
    """rfm(path) streams a time-sorted file without a day set, and restarts on the exact
    general path when a later batch goes back in time; both equal the in-memory result."""
    kw = dict(KW, order="ord")
    ordered = table.sort_by("ts")
    late = pa.concat_tables([ordered.slice(100), ordered.slice(0, 100)])  # old events at the end
    for data in (ordered, late):
        path = tmp_path / "tx.parquet"
        pq.write_table(data, path, row_group_size=64)
        expected = fe.rfm(data, **kw)
        got = fe.rfm(str(path), **kw, batch_size=50)
        assert got.drop_columns(["monetary_total", "monetary_mean", "m_score"]).equals(
            expected.drop_columns(["monetary_total", "monetary_mean", "m_score"]))
