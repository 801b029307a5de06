"""The one-shot path across many partitions, dense and hashed ids, against the reference and
against the independent streaming path (pair sets)."""
import numpy as np
import pyarrow as pa
import pytest

import fastengage as fe
from fastengage.kernels import rfm_oneshot
from naive import rfm_reference


@pytest.fixture(scope="module")
def many_customers():
    rng = np.random.default_rng(11)
    n, n_customers = 60_000, 40_000  # 5 partitions of 2**13 customers
    customer = rng.integers(0, n_customers, n)
    times = 1_600_000_000_000_000 + rng.integers(0, 200 * 86_400_000_000, n)
    amounts = np.round(rng.normal(30, 40, n), 2)
    orders = rng.integers(0, 30_000, n)
    return customer, times, amounts, orders


def _table(customer, times, amounts, orders, ids):
    return pa.table({"cust": ids, "ts": pa.array(times, pa.timestamp("us")), "amt": amounts,
                     "ord": orders})


def _assert_matches(result, expected):
    assert result.num_rows == len(expected)
    rows = result.to_pydict()
    keys = sorted(expected)
    assert rows["cust"] == keys
    for col in ("recency_days", "tenure_days", "frequency", "purchase_days"):
        assert rows[col] == [expected[k][col] for k in keys], col
    np.testing.assert_allclose(rows["monetary_total"], [expected[k]["monetary_total"] for k in keys],
                               rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("sort", [False, True])
@pytest.mark.parametrize("with_order", [False, True])
def test_many_partitions_match_reference(many_customers, sort, with_order):
    customer, times, amounts, orders = many_customers
    if sort:
        idx = np.argsort(times, kind="stable")
        customer, times, amounts, orders = customer[idx], times[idx], amounts[idx], orders[idx]
    assert rfm_oneshot.partition_shift(40_000) == 13
    expected = rfm_reference(customer.tolist(), times.tolist(), amounts.tolist(),
                             orders.tolist() if with_order else None)
    kw = dict(customer="cust", time="ts", amount="amt", order="ord" if with_order else None)
    dense = fe.rfm(_table(customer, times, amounts, orders, customer), **kw)
    _assert_matches(dense, expected)
    # sparse ids force the hashed path; same features
    sparse = fe.rfm(_table(customer, times, amounts, orders, customer * 1_000_003 + 7), **kw)
    assert sparse.drop_columns(["cust"]).equals(dense.drop_columns(["cust"]))
    streamed = fe.rfm(_table(customer, times, amounts, orders, customer), **kw, batch_size=7_000)
    for col in ("recency_days", "tenure_days", "frequency", "purchase_days", "r_score", "f_score"):
        assert streamed[col].equals(dense[col]), col


def test_partition_is_a_stable_scatter():
    rng = np.random.default_rng(2)
    codes = rng.integers(0, 50_000, 10_000).astype(np.int64)
    times = np.arange(10_000, dtype=np.int64)
    offsets, local, t, a, o = rfm_oneshot.partition(codes, times, times.astype(float),
                                                    np.empty(0, np.int64), False, 50_000, 13, 3)
    order = np.argsort(codes >> 13, kind="stable")
    np.testing.assert_array_equal(t, times[order])
    np.testing.assert_array_equal(local, (codes[order] & 8191).astype(np.int32))
    np.testing.assert_array_equal(np.diff(offsets), np.bincount(codes >> 13, minlength=7))


def test_numba_and_cython_id_maps_agree():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from fastengage.kernels.idmap import Int64IdMap
    from fastengage.kernels.idmap_numba import encode_int64

    @settings(max_examples=100, deadline=None)
    @given(st.lists(st.integers(-2**63, 2**63 - 1) | st.integers(-5, 5), max_size=300))
    def check(values):
        arr = np.array(values, dtype=np.int64)
        m = Int64IdMap()
        out = np.empty(len(arr), np.int64)
        m.encode(arr, out)
        codes, keys = encode_int64(arr)
        np.testing.assert_array_equal(out, codes)
        np.testing.assert_array_equal(m.keys(), keys)
        np.testing.assert_array_equal(keys[codes], arr)  # decodes back to the input
        _, first = np.unique(arr, return_index=True)
        np.testing.assert_array_equal(keys, arr[np.sort(first)])  # first-seen order

    check()
