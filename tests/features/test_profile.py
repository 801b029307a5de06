"""fastengage.profile against the plain reference (tests/naive_profile.py), rfm(), and bad input."""
import datetime as dt
import json
import math

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastengage as fe
from fastengage.errors import ColumnNotFoundError, InputError
from fastengage.features.profile import profile_columns
from fastengage.kernels.features import profile as kernels
from naive_profile import DAY, naive_profile

T0 = int(dt.datetime(2023, 1, 1, tzinfo=dt.timezone.utc).timestamp()) * 1_000_000
RFM_PART = ["first_purchase", "last_purchase", "recency_days", "tenure_days", "frequency",
            "purchase_days", "monetary_total", "monetary_mean"]


@st.composite
def logs(draw):
    n = draw(st.integers(1, 60))
    str_ids = draw(st.booleans())
    pool = draw(st.integers(1, 8))
    ids = draw(st.lists(st.integers(0, pool), min_size=n, max_size=n))
    with_nulls = draw(st.booleans())
    nulls = draw(st.lists(st.booleans(), min_size=n, max_size=n)) if with_nulls else [False] * n
    if all(nulls):
        nulls[0] = False
    customers = [None if z else (f"c{v}" if str_ids else v * 7919) for v, z in zip(ids, nulls)]
    # Times on a 6-hour grid over 400 days: many ties, same-day rows and window edges.
    times = [T0 + k * 6 * 3_600_000_000 for k in draw(
        st.lists(st.integers(0, 1600), min_size=n, max_size=n))]
    amounts = draw(st.lists(st.sampled_from([0.0, 1.5, 2.25, 10.0, 99.99, -3.5, -1.0, 7.0]),
                            min_size=n, max_size=n))
    orders = draw(st.lists(st.integers(0, 12), min_size=n, max_size=n))
    items = draw(st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=n, max_size=n))
    categories = draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
    channels = draw(st.lists(st.sampled_from(["web", "store", "app"]), min_size=n, max_size=n))
    return dict(customers=customers, times=times, amounts=amounts, orders=orders, items=items,
                categories=categories, channels=channels)


def table_of(log, chunks=1):
    table = pa.table({
        "cust": pa.array(log["customers"], pa.string() if any(isinstance(c, str) for c in log["customers"]) else pa.int64()),
        "ts": pa.array(log["times"], pa.timestamp("us")),
        "amt": pa.array(log["amounts"], pa.float64()),
        "order": pa.array(log["orders"], pa.int64()),
        "item": pa.array(log["items"], pa.string()),
        "cat": pa.array(log["categories"], pa.int32()),
        "chan": pa.array(log["channels"], pa.string()),
    })
    if chunks > 1:
        step = max(1, math.ceil(table.num_rows / chunks))
        table = pa.Table.from_batches(table.to_batches(max_chunksize=step))
    return table


def as_dict(table, key):
    rows = table.to_pylist()
    return {r.pop(key): r for r in rows}


def _us(value):
    if isinstance(value, dt.datetime):
        return int(value.timestamp() * 1_000_000) if value.tzinfo else None
    return value


def assert_matches(got: dict, want: dict):
    assert set(got) == set(want)
    for c, ref in want.items():
        row = got[c]
        assert list(row) == list(ref), (list(row), list(ref))
        for name, value in ref.items():
            mine = row[name]
            if name in ("first_purchase", "last_purchase"):
                mine = round(mine.timestamp() * 1_000_000)
            if value is None or mine is None:
                assert value is None and mine is None, (c, name, mine, value)
            elif isinstance(value, float):
                assert mine == pytest.approx(value, rel=1e-12, abs=1e-12), (c, name, mine, value)
            else:
                assert mine == value, (c, name, mine, value)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(log=logs(), chunks=st.integers(1, 3), returns=st.sampled_from(["net", "exclude"]),
       with_order=st.booleans(), cut=st.integers(0, 1700), windows=st.sampled_from(
           [(30, 90, 365), (7,), (90, 1, 30)]), use_as_of=st.booleans())
def test_matches_reference(log, chunks, returns, with_order, cut, windows, use_as_of):
    table = table_of(log, chunks)
    as_of = T0 + cut * 6 * 3_600_000_000 if use_as_of else None
    kept = [i for i, c in enumerate(log["customers"]) if c is not None]
    pick = {k: [v[i] for i in kept] for k, v in log.items()}
    if as_of is not None and min(pick["times"]) > as_of:
        as_of = None
    out = fe.profile(table, customer="cust", time="ts", amount="amt",
                     order="order" if with_order else None, item="item", category="cat",
                     channel="chan", windows=windows, returns=returns, drop_null_customers=True,
                     as_of=None if as_of is None else np.datetime64(as_of, "us"))
    want = naive_profile(pick["customers"], pick["times"], pick["amounts"],
                         orders=pick["orders"] if with_order else None, items=pick["items"],
                         categories=pick["categories"], channels=pick["channels"], as_of=as_of,
                         windows=windows, returns=returns)
    channels_seen = sorted(set(pick["channels"]))
    want_names = ["cust", *profile_columns(windows, returns=returns, item=True, category=True,
                                           channels=channels_seen)]
    assert out.column_names == want_names
    got = as_dict(out, "cust")
    assert list(got) == sorted(got)  # sorted by customer id
    assert_matches(got, want)
    report = json.loads(out.schema.metadata[b"fastengage"])
    assert report["null_customer_rows_dropped"] == len(log["customers"]) - len(kept)
    # RFM columns equal rfm()'s exactly, report included
    ref = fe.rfm(table, customer="cust", time="ts", amount="amt",
                 order="order" if with_order else None, returns=returns,
                 drop_null_customers=True, as_of=None if as_of is None else np.datetime64(as_of, "us"))
    assert out.select(["cust", *RFM_PART]).equals(ref.select(["cust", *RFM_PART]))
    assert report == json.loads(ref.schema.metadata[b"fastengage"])


def _big(n=300_000, customers=20_000, seed=3, string_ids=False):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, customers, n) * 104_729  # sparse: hashed, not dense
    return pa.table({
        "cust": pa.array([f"u{v}" for v in ids]) if string_ids else pa.array(ids),
        "ts": pa.array(T0 + rng.integers(0, 500 * DAY, n), pa.timestamp("us")),
        "amt": np.round(rng.exponential(20, n) * np.where(rng.random(n) < 0.05, -1, 1), 2),
        "order": rng.integers(0, n // 3, n),
        "item": rng.integers(0, 5000, n),
        "cat": rng.integers(0, 20, n).astype(np.int8),
        "chan": pa.array(rng.choice(["web", "app", "store"], n)),
    })


KW = dict(customer="cust", time="ts", amount="amt", order="order", item="item", category="cat",
          channel="chan")


def test_thread_count_and_chunking_do_not_change_bits():
    table = _big()
    one = fe.profile(table, **KW, n_threads=1)
    two = fe.profile(table, **KW, n_threads=2)
    assert one.equals(two)
    chunked = pa.Table.from_batches(table.to_batches(max_chunksize=7_777))
    assert fe.profile(chunked, **KW, n_threads=2).equals(one)
    reader = pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=50_000))
    assert fe.profile(reader, **KW).equals(one)


def test_parquet_path_and_string_ids(tmp_path):
    table = _big(60_000, 3_000, seed=5, string_ids=True)
    path = tmp_path / "log.parquet"
    pq.write_table(table, path, row_group_size=10_000)
    from_file = fe.profile(str(path), **KW)
    assert from_file.equals(fe.profile(table, **KW))
    assert from_file.schema.field("cust").type == pa.string()
    # the RFM part equals rfm() streamed from the same file
    ref = fe.rfm(str(path), customer="cust", time="ts", amount="amt", order="order")
    assert from_file.select(["cust", *RFM_PART]).equals(ref.select(["cust", *RFM_PART]))


def test_online_retail_equals_rfm(retail_table):
    kw = dict(customer="CustomerID", time="InvoiceDate", amount="amount", order="InvoiceNo",
              drop_null_customers=True, as_of="2011-09-30")
    out = fe.profile(retail_table, item="StockCode", channel="Country", **kw)
    ref = fe.rfm(retail_table, **kw)
    assert out.select(["CustomerID", *RFM_PART]).equals(ref.select(["CustomerID", *RFM_PART]))
    assert json.loads(out.schema.metadata[b"fastengage"]) == json.loads(ref.schema.metadata[b"fastengage"])
    # every channel share column of a customer sums to >= 1 (an order may span channels)
    order_shares = [c for c in out.column_names if c.endswith("_order_share")]
    total = sum(np.asarray(out.column(c)) for c in order_shares)
    assert np.all(total >= 1 - 1e-12)
    assert np.all(np.asarray(out.column("n_channels")) >= 1)


def test_dictionary_ids_keep_their_type():
    table = _big(20_000, 500, seed=1, string_ids=True)
    table = table.set_column(0, "cust", table.column("cust").dictionary_encode())
    out = fe.profile(table, **KW)
    assert pa.types.is_dictionary(out.schema.field("cust").type)
    plain = fe.profile(table.set_column(0, "cust", table.column("cust").cast(pa.string())), **KW)
    assert out.column("cust").cast(pa.string()).equals(plain.column("cust"))
    assert out.drop_columns(["cust"]).equals(plain.drop_columns(["cust"]))


def test_errors_name_the_column():
    table = _big(1_000, 50)
    with pytest.raises(ColumnNotFoundError, match="'nope'"):
        fe.profile(table, customer="cust", time="ts", amount="amt", channel="nope")
    bad = table.set_column(4, "item", pa.array([None] + [1] * (table.num_rows - 1), pa.int64()))
    with pytest.raises(InputError, match="item column 'item'"):
        fe.profile(bad, **KW)
    floats = table.set_column(5, "cat", pa.array(np.zeros(table.num_rows)))
    with pytest.raises(InputError, match="category column 'cat'"):
        fe.profile(floats, **KW)
    many = table.set_column(6, "chan", pa.array(np.arange(table.num_rows)))
    with pytest.raises(InputError, match="channel column 'chan'"):
        fe.profile(many, **KW)
    nulls = table.set_column(0, "cust", pa.array([None] + [1] * (table.num_rows - 1), pa.int64()))
    with pytest.raises(InputError, match="customer column 'cust'"):
        fe.profile(nulls, **KW)
    with pytest.raises(InputError, match="returns='error'"):
        fe.profile(table, **KW, returns="error")
    for windows in [(), (0,), (30, 30), ("30",), (1.5,)]:
        with pytest.raises(InputError, match="windows"):
            fe.profile(table, **KW, windows=windows)
    with pytest.raises(InputError, match="empty"):
        fe.profile(table.slice(0, 0), **KW)


def test_returns_error_mode_without_returns_and_exclude_drops_columns():
    table = _big(5_000, 200)
    table = table.set_column(2, "amt", pa.array(np.abs(table.column("amt").to_numpy())))
    assert fe.profile(table, **KW, returns="error").equals(fe.profile(table, **KW))
    excluded = fe.profile(table, **KW, returns="exclude")
    assert not [c for c in excluded.column_names if c.startswith("return")]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(-5, 5), max_size=200))
def test_sort_pairs_is_a_stable_sort(values):
    keys = np.array(values, np.int64)
    vals = np.arange(len(keys), dtype=np.int64)
    k, v = keys.copy(), vals.copy()
    kernels.sort_pairs(k, v)
    order = np.argsort(keys, kind="stable")
    assert np.array_equal(k, keys[order]) and np.array_equal(v, vals[order])


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 6), min_size=1, max_size=300), st.integers(1, 2),
       st.integers(0, 9))
def test_sort_by_customer_is_stable_for_any_thread_count(codes, threads, limit):
    codes = np.array(codes, np.int64)
    times = np.arange(len(codes), dtype=np.int64) % 10
    perm, offsets = kernels.sort_by_customer(codes, times, limit, 7, n_threads=threads)
    keep = np.flatnonzero(times <= limit)
    want = keep[np.argsort(codes[keep], kind="stable")]
    assert np.array_equal(perm, want)
    assert np.array_equal(np.diff(offsets), np.bincount(codes[keep], minlength=7))


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 9), st.sampled_from([-2.0, 0.0, 1.0]),
                          st.integers(0, 9)), min_size=1, max_size=300),
       st.integers(1, 2), st.integers(0, 9), st.integers(0, 2**32 - 1))
def test_group_rows_lays_customers_out_in_any_order(rows, threads, limit, seed):
    """Only customers with a purchase by the cut get a group, at the position the caller
    chose; their rows (returns included) keep their input order; the counts are right."""
    codes = np.array([r[0] for r in rows], np.int64)
    amounts = np.array([r[1] for r in rows])
    times = np.array([r[2] for r in rows], np.int64)
    counts = kernels.count_rows(codes, times, amounts, limit, 10, n_threads=threads)
    by_cut = times <= limit
    bought = {int(c) for c in codes[by_cut & (amounts >= 0)]}
    assert {int(c) for c in np.flatnonzero(counts.kept)} == bought
    assert counts.rows_after == int(np.count_nonzero(~by_cut))
    assert counts.return_rows == int(np.count_nonzero(by_cut & (amounts < 0)))
    assert counts.returns_only == len({int(c) for c in codes[by_cut]} - bought)
    order = np.random.default_rng(seed).permutation(sorted(bought)).astype(np.int64)
    perm, offsets = kernels.group_rows(counts, order, codes, times, limit, n_threads=threads)
    for j, code in enumerate(order):
        want = np.flatnonzero((codes == code) & by_cut)
        assert np.array_equal(perm[offsets[j]:offsets[j + 1]], want)
    assert offsets[-1] == len(perm)


def test_exact_sums_use_rfms_words():
    """The fold's fixed-point words are rfm.fixed_words's: same monetary totals as rfm()."""
    rng = np.random.default_rng(11)
    amounts = np.concatenate([rng.normal(0, 1e6, 500), AWKWARD, [5e-324, 1e-20, 2.0**62]])
    customers = np.arange(len(amounts)) % 7
    times = pa.array(np.full(len(amounts), T0), pa.timestamp("us"))
    table = pa.table({"cust": customers, "ts": times, "amt": amounts})
    kw = dict(customer="cust", time="ts", amount="amt")
    got = fe.profile(table, **kw).column("monetary_total")
    assert got.equals(fe.rfm(table, **kw).column("monetary_total"))


def test_distinct_codes_by_table_and_by_sort_agree(monkeypatch):
    """Items and categories counted in a per-worker table or by sorting give the same table."""
    from fastengage.kernels.features import profile as profile_kernels

    table = _big(30_000, 800, seed=9)
    by_table = fe.profile(table, **KW)
    monkeypatch.setattr(profile_kernels, "PROFILE_STAMP_MAX_CODES", 0)
    assert fe.profile(table, **KW).equals(by_table)


#: Amounts whose float sums depend on the order of the additions (0.1 + 1e16 - 1e16 != 0.1),
#: all on the 2**-64 grid of the exact sums (smaller ones are rounded onto it, as in rfm()).
AWKWARD = [0.1, 0.2, 0.3, 1e16, 123.456, 1e-3, 7.0, -0.1, -1e16, -2.5]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(log=logs(), awkward=st.data(), seed=st.integers(0, 2**32 - 1), chunks=st.integers(1, 4),
       returns=st.sampled_from(["net", "exclude"]), with_order=st.booleans())
def test_row_order_and_splits_do_not_change_bits(log, awkward, seed, chunks, returns, with_order):
    """Any permutation of the rows and any split into batches give the identical table, and
    every sum of amounts is the exact sum correctly rounded (as rfm()'s monetary total)."""
    n = len(log["customers"])
    log["amounts"] = awkward.draw(st.lists(st.sampled_from(AWKWARD), min_size=n, max_size=n))
    kw = dict(KW, order="order" if with_order else None, returns=returns,
              drop_null_customers=True)
    base = fe.profile(table_of(log), **kw)
    perm = np.random.default_rng(seed).permutation(n)
    shuffled = table_of({k: [v[i] for i in perm] for k, v in log.items()})
    step = max(1, math.ceil(n / chunks))
    reader = pa.RecordBatchReader.from_batches(shuffled.schema,
                                               shuffled.to_batches(max_chunksize=step))
    assert fe.profile(shuffled, **kw).equals(base)
    assert fe.profile(reader, **kw).equals(base)
    kept = [i for i, c in enumerate(log["customers"]) if c is not None]
    pick = {k: [v[i] for i in kept] for k, v in log.items()}
    want = naive_profile(pick["customers"], pick["times"], pick["amounts"],
                         orders=pick["orders"] if with_order else None, items=pick["items"],
                         categories=pick["categories"], channels=pick["channels"],
                         returns=returns)
    got = as_dict(base, "cust")
    for c, ref in want.items():
        for name, value in ref.items():
            if name.startswith(("spend", "return_amount", "monetary_total")) or \
                    name in ("last_channel",) or name.endswith("spend_share"):
                assert got[c][name] == value or (value is None and got[c][name] is None), \
                    (c, name, got[c][name], value)
