"""The one-shot path across many partitions, dense and hashed ids, against the reference and
against the independent streaming path (pair sets)."""
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastengage as fe
from fastengage.features import _batch as _rfm_batch, _common
from fastengage._io.ids import string_buffers
from fastengage.kernels.features import fewids as rfm_fewids
from fastengage.kernels.features import hashed as rfm_hashed
from fastengage.kernels.features import oneshot as rfm_oneshot
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
@pytest.mark.parametrize("wide", [False, True])
def test_many_partitions_match_reference(many_customers, sort, with_order, wide):
    customer, times, amounts, orders = many_customers
    if wide:  # 16 years: day bitmaps would not fit in cache, so days are counted after a sort
        times = times[0] + (times - times[0]) * 30
        assert 8192 * rfm_oneshot.day_words(times.min(), times.max())[1] > rfm_oneshot.BITMAP_WORDS
    if sort:
        idx = np.argsort(times, kind="stable")
        customer, times, amounts, orders = customer[idx], times[idx], amounts[idx], orders[idx]
    assert rfm_oneshot.partition_shift(40_000) == 13
    expected = rfm_reference(customer.tolist(), times.tolist(), amounts.tolist(),
                             orders.tolist() if with_order else None)
    kw = dict(customer="cust", time="ts", amount="amt", order="ord" if with_order else None)
    dense = fe.rfm(_table(customer, times, amounts, orders, customer), **kw)
    _assert_matches(dense, expected)
    # sparse ids: the hash map below HASHED_MIN_ROWS, the hash partitions above; same features
    sparse_ids = customer * 1_000_003 + 7
    sparse = fe.rfm(_table(customer, times, amounts, orders, sparse_ids), **kw)
    assert sparse.drop_columns(["cust"]).equals(dense.drop_columns(["cust"]))
    with pytest.MonkeyPatch.context() as mp:
        # the serial fold of a small input against the partitioned, parallel one (dense ids,
        # then the hash map's codes)
        mp.setattr(_rfm_batch, "SERIAL_MAX_ROWS", 0)
        assert fe.rfm(_table(customer, times, amounts, orders, customer), **kw).equals(dense)
        assert fe.rfm(_table(customer, times, amounts, orders, sparse_ids), **kw).equals(sparse)
        mp.setattr(_rfm_batch, "HASHED_MIN_ROWS", 0)
        hashed = fe.rfm(_table(customer, times, amounts, orders, sparse_ids), **kw)
        names = pa.array([f"customer-{c:07d}" for c in customer])
        hashed_str = fe.rfm(_table(customer, times, amounts, orders, names), **kw)
    assert hashed.equals(sparse)
    assert hashed_str.drop_columns(["cust"]).equals(dense.drop_columns(["cust"]))
    assert hashed_str["cust"].to_pylist() == [f"customer-{c:07d}" for c in dense["cust"].to_pylist()]
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


def test_cython_id_map_against_first_seen_reference():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from fastengage.kernels.common.idmap import Int64IdMap

    @settings(max_examples=100, deadline=None)
    @given(st.lists(st.integers(-2**63, 2**63 - 1) | st.integers(-5, 5), max_size=300))
    def check(values):
        arr = np.array(values, dtype=np.int64)
        m = Int64IdMap()
        out = np.empty(len(arr), np.int64)
        m.encode(arr, out)
        keys = np.asarray(m.keys())
        np.testing.assert_array_equal(keys[out], arr)  # decodes back to the input
        _, first = np.unique(arr, return_index=True)
        np.testing.assert_array_equal(keys, arr[np.sort(first)])  # first-seen order

    check()


@pytest.mark.parametrize("unique_share", [1.0, 0.6, 0.01])
def test_id_maps_that_grow_by_projection_keep_first_seen_codes(unique_share):
    """Calls long enough for the table to be sized by the projected count of new ids (nearly
    unique ids, half unique, many rows per id), over two calls: codes are the first-seen
    numbering of a plain reference, for int64 and string ids alike."""
    from fastengage.kernels.common.idmap import BytesIdMap, Int64IdMap

    rng = np.random.default_rng(11)
    n = 300_000
    pool = rng.choice(2**62, max(1, int(n * unique_share)), replace=False) - 2**61
    values = np.where(rng.random(n) < unique_share, rng.choice(2**62, n) - 2**61,
                      pool[rng.integers(0, len(pool), n)])
    _, first = np.unique(values, return_index=True)
    in_first_seen = values[np.sort(first)]
    expected = np.searchsorted(np.sort(first), first[np.searchsorted(np.unique(values), values)])
    strings = pa.array(values.astype(str))
    for encode_call in ("int", "string"):
        m = Int64IdMap() if encode_call == "int" else BytesIdMap()
        out = np.empty(n, np.int64)
        for lo, hi in ((0, n // 3), (n // 3, n)):
            if encode_call == "int":
                m.encode(values[lo:hi], out[lo:hi])
            else:
                offsets, data = string_buffers(strings.slice(lo, hi - lo))
                m.encode(np.ascontiguousarray(offsets), data, out[lo:hi])
        np.testing.assert_array_equal(out, expected, err_msg=encode_call)
        assert len(m) == len(in_first_seen)
        if encode_call == "int":
            np.testing.assert_array_equal(np.asarray(m.keys()), in_first_seen)


def _codes_by_row(offsets, local, bases, rows):
    part_of_row = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    codes = np.empty(len(rows), np.int64)
    codes[rows] = bases[part_of_row] + local
    return codes


@pytest.mark.parametrize("n_chunks", [1, 3])
def test_hash_partitions_number_ids_densely_and_exactly(n_chunks):
    """Codes from the range partitions against np.unique: one code per distinct id, dense, and
    ascending with the ids (so the records come out in id order)."""
    rng = np.random.default_rng(5)
    ids = rng.choice(np.array([-2**63, -1, 0, 1, 2**63 - 1] + list(rng.integers(-2**62, 2**62, 3000))),
                     50_000)
    rows = np.arange(len(ids), dtype=np.int64)  # travels as the "time" payload
    offsets, k0, k1, p_rows, _, _ = rfm_hashed.partition(
        ids.view(np.uint64), np.empty(0, np.uint64), False, True, rows, rows.astype(float),
        np.empty(0, np.int64), False, 4, n_chunks)
    np.testing.assert_array_equal(k0.view(np.int64), ids[p_rows])  # keys travel with their row
    np.testing.assert_array_equal(np.sort(p_rows), rows)  # every row lands exactly once
    for p in range(len(offsets) - 1):  # and keeps input order within its partition
        assert np.all(np.diff(p_rows[offsets[p]:offsets[p + 1]]) > 0)
    local, bases, ids0, _ = rfm_hashed.encode_partitions(offsets, k0, k1, False, True)
    codes = _codes_by_row(offsets, local, bases, p_rows)
    distinct = np.unique(ids)
    assert bases[-1] == len(distinct)
    np.testing.assert_array_equal(ids0.view(np.int64)[codes], ids)  # each code decodes to its id
    np.testing.assert_array_equal(ids0.view(np.int64), distinct)  # one code per id, in id order
    # unsigned ids: the same ids as uint64 come out in unsigned order
    u_offsets, u0, u1, _, _, _ = rfm_hashed.partition(
        ids.view(np.uint64), np.empty(0, np.uint64), False, False, rows, rows.astype(float),
        np.empty(0, np.int64), False, 4, n_chunks)
    _, _, u_ids, _ = rfm_hashed.encode_partitions(u_offsets, u0, u1, False, False)
    np.testing.assert_array_equal(u_ids, np.unique(ids.view(np.uint64)))


def _pack(column):
    offsets, data = string_buffers(column)
    k0 = np.empty(len(column), np.uint64)
    k1 = np.empty(len(column), np.uint64)
    aligned = data[:len(data) // 8 * 8].view(np.uint64)
    rfm_hashed.pack_short_strings(offsets, data, aligned, k0, k1)
    slow0, slow1 = np.empty_like(k0), np.empty_like(k1)  # the byte-by-byte path agrees
    rfm_hashed.pack_short_strings(offsets, data, np.empty(0, np.uint64), slow0, slow1)
    np.testing.assert_array_equal(k0, slow0)
    np.testing.assert_array_equal(k1, slow1)
    return k0, k1


def test_short_strings_pack_injectively_and_unpack_back():
    """Strings that differ only by length or trailing NULs get different codes."""
    values = ["", "a", "a\x00", "\x00", "ab", "abcdefgh", "abcdefgh\x00", "abcdefghijklmno",
              "abcdefghijklmn", "é", "e"]
    column = pa.array(values * 50)
    k0, k1 = _pack(column)
    assert len(set(zip(k0.tolist(), k1.tolist()))) == len(values)
    str_offsets, str_data = rfm_hashed.unpack_short_strings(k0, k1)
    unpacked = pa.Array.from_buffers(pa.large_string(), len(column),
                                     [None, pa.py_buffer(str_offsets), pa.py_buffer(str_data)])
    assert unpacked.to_pylist() == column.to_pylist()
    rows = np.arange(len(column), dtype=np.int64)
    offsets, p0, p1, p_rows, _, _ = rfm_hashed.partition(
        k0, k1, True, False, rows, rows.astype(float), np.empty(0, np.int64), False, 2, 2)
    local, bases, ids0, ids1 = rfm_hashed.encode_partitions(offsets, p0, p1, True, False)
    codes = _codes_by_row(offsets, local, bases, p_rows)
    assert bases[-1] == len(values)
    np.testing.assert_array_equal(ids0[codes], k0)
    np.testing.assert_array_equal(ids1[codes], k1)
    str_offsets, str_data = rfm_hashed.unpack_short_strings(ids0, ids1)  # codes in byte order
    assert pa.Array.from_buffers(pa.large_string(), len(ids0), [
        None, pa.py_buffer(str_offsets), pa.py_buffer(str_data)]).to_pylist() == sorted(
        values, key=lambda v: v.encode())


@settings(max_examples=200, deadline=None)
@given(st.lists((st.text(max_size=5) | st.binary(max_size=15).map(lambda b: b.decode("latin-1")))
                .filter(lambda t: len(t.encode()) <= 15), unique=True))
def test_short_string_order_is_byte_order(values):
    column = pa.array(values, pa.string())
    k0, k1 = _pack(column)
    order = rfm_hashed.short_string_order(k0, k1)
    assert [values[i] for i in order] == sorted(values, key=lambda v: v.encode())
    assert column.take(pa.array(order, pa.int64())).equals(column.take(pc.sort_indices(column)))


def test_long_string_ids_take_the_hash_map(monkeypatch, many_customers):
    customer, times, amounts, orders = many_customers
    kw = dict(customer="cust", time="ts", amount="amt")
    names = pa.array([f"a-customer-id-longer-than-fifteen-bytes-{c}" for c in customer])
    exact = fe.rfm(_table(customer, times, amounts, orders, names), **kw)
    monkeypatch.setattr(_rfm_batch, "HASHED_MIN_ROWS", 0)
    monkeypatch.setattr(_rfm_batch, "SERIAL_MAX_ROWS", 0)
    checked = []
    assert _rfm_batch._id_keys(names, "cust", 1, lambda: checked.append(1)) is None
    assert checked  # a string it cannot pack: validated before the hash map reads it
    assert fe.rfm(_table(customer, times, amounts, orders, names), **kw).equals(exact)


@pytest.mark.parametrize("few_ids", [False, True])  # partitions, or the few-ids fold
@pytest.mark.parametrize("typ", [pa.int8(), pa.int32(), pa.uint16(), pa.uint64(), pa.int64(),
                                 pa.string(), pa.large_string(), pa.string_view()])
def test_hashed_path_keeps_every_id_type(monkeypatch, typ, few_ids):
    rng = np.random.default_rng(8)
    n = 5_000
    raw = rng.integers(0, 100, n)
    if pa.types.is_integer(typ):
        if typ == pa.uint64():  # beyond int64: must not be cast through it
            values = pa.array(raw.astype(np.uint64) + np.uint64(2**64 - 101), type=typ)
        else:
            values = pa.array(raw - 100 if typ == pa.int8() else raw, type=typ)
    else:
        values = pa.array([f"id{v}" for v in raw]).cast(typ)
    table = pa.table({"cust": values,
                      "ts": pa.array(1_600_000_000_000_000 + rng.integers(0, 10**12, n),
                                     pa.timestamp("us")),
                      "amt": rng.random(n)})
    kw = dict(customer="cust", time="ts", amount="amt")
    expected = fe.rfm(table, **kw, batch_size=1_000)  # the streaming path: hash map, no partitions
    monkeypatch.setattr(_rfm_batch, "HASHED_MIN_ROWS", 0)
    monkeypatch.setattr(_rfm_batch, "SERIAL_MAX_ROWS", 0)
    monkeypatch.setattr(_common, "FEATURES_DENSE_MAX_RANGE", 0)
    monkeypatch.setattr(rfm_fewids, "takes", lambda *args: few_ids)
    result = fe.rfm(table, **kw)
    assert result.schema.field("cust").type == typ
    assert result.equals(expected)


@settings(max_examples=100, deadline=None)
@given(values=st.lists(st.integers(-50, 50), max_size=200), lo=st.integers(0, 5),
       cut=st.integers(0, 5))
def test_sort_slice_sorts_only_its_slice(values, lo, cut):
    """The insertion sort (<= 32 values) and the heapsort against NumPy's sort."""
    data = np.array(values, np.int64)
    lo = min(lo, len(data))
    hi = max(lo, len(data) - cut)
    expected = data.copy()
    expected[lo:hi] = np.sort(data[lo:hi])
    rfm_oneshot.sort_slice(data, lo, hi)
    assert data.tolist() == expected.tolist()


_AMOUNTS = (st.floats(-2.0**62, 2.0**62, allow_nan=False, allow_infinity=False)
            | st.sampled_from([0.0, -0.0, 0.1, -0.1, 1e-30, -1e-30, 2.0**-64, 0.5, 2.0**62]))


@settings(max_examples=300, deadline=None)
@given(st.lists(_AMOUNTS, min_size=1, max_size=12))
def test_compiled_ahead_money_matches_the_numba_kernels(amounts):
    """fold_native.pyx (the one-shot fold) and rfm.py (streaming, merges, profile) keep the
    same 192-bit fixed point: same words per amount, same total (both read out by
    rfm.money_values, checked against exact fractions in the reference tests)."""
    from fastengage.kernels.features import fold_native, rfm as rfm_kernels

    state = rfm_kernels.new_state(1)
    for a in amounts:
        words = rfm_kernels.fixed_words(a)
        assert fold_native.fixed_words_of(a) == tuple(int(w) for w in words)
        frac, lo, hi = words
        rfm_kernels.add_money(state[0], np.uint64(frac), np.uint64(lo), np.int64(hi))
    rec = state[0]
    # and the one-shot fold of these rows gives the record the streaming kernels made
    n = len(amounts)
    folded = rfm_kernels.uninitialised_state(1)
    times = np.arange(n, dtype=np.int64)
    rfm_oneshot.fold(folded, np.array([0, n]), np.zeros(n, np.int32), times, np.array(amounts),
                     np.empty(0, np.int64), np.array([0, 1]), False, n, False, True, 0, 1)
    for field in ("money_frac", "money_lo", "money_hi"):
        assert folded[0][field] == rec[field], field


_WORDS = st.integers(0, 2**64 - 1)


@settings(max_examples=300, deadline=None)
@given(frac=_WORDS | st.sampled_from([0, 1, 2**63, 2**64 - 1]),
       lo=_WORDS | st.sampled_from([0, 1, 2**53 - 1, 2**53 + 1, 2**63]),
       hi=st.integers(-2**63, 2**63 - 1) | st.sampled_from([0, -1, 1, 2**30]))
def test_compiled_ahead_read_out_matches_the_numba_rounding(frac, lo, hi):
    """fold_native's read-out of a total (what rfm() returns) and rfm.money_value (streaming,
    profile) round every 192-bit total to the same float64 bits, ties and negatives included."""
    from fastengage.kernels.features import fold_native, rfm as rfm_kernels

    ours = fold_native.money_value_of(frac, lo, hi)
    theirs = rfm_kernels.money_value(np.uint64(frac), np.uint64(lo), np.int64(hi))
    assert np.float64(ours).tobytes() == np.float64(theirs).tobytes()


@pytest.mark.parametrize("permuted", [False, True])
def test_read_out_does_not_depend_on_threads_or_chunks(monkeypatch, permuted):
    """The read-out's chunks (several per thread here) land at the rows their counts give,
    customers without a purchase skipped: same columns at 1 and 2 threads and in one chunk."""
    from fastengage.kernels.features import rfm as rfm_kernels

    rng = np.random.default_rng(5)
    n = 10_000
    state = rfm_kernels.new_state(n)
    bought = rng.random(n) < 0.8
    state["purchase_rows"] = np.where(bought, rng.integers(1, 5, n), 0)
    state["return_rows"] = np.where(rng.random(n) < 0.3, 1, 0)
    state["frequency"] = state["purchase_rows"]
    state["purchase_days"] = state["purchase_rows"]
    state["first_us"] = rng.integers(0, 10**15, n)
    state["last_us"] = state["first_us"] + rng.integers(0, 10**12, n)
    money = np.round(rng.normal(50, 80, n), 2)
    rfm_kernels.set_money(state, money)
    order = rng.permutation(n).astype(np.int64) if permuted else np.empty(0, np.int64)
    as_of = 10**15 + 10**12
    one_chunk = rfm_kernels.read_out(state, order, as_of, True, n_threads=1)
    monkeypatch.setattr(rfm_kernels, "RFM_READOUT_CHUNK", 999)
    for threads in (1, 2):
        got = rfm_kernels.read_out(state, order, as_of, True, n_threads=threads)
        for a, b in zip(got, one_chunk):
            assert np.array_equal(a, b)
    codes, first, last, recency, tenure, frequency, days, total, mean, returns_only = one_chunk
    records = state[order] if permuted else state
    keep = np.flatnonzero(records["purchase_rows"] > 0)
    assert codes.tolist() == keep.tolist()
    assert first.tolist() == records["first_us"][keep].tolist()
    assert recency.tolist() == ((as_of - records["last_us"][keep]) // 86_400_000_000).tolist()
    assert total.tolist() == (money[order] if permuted else money)[keep].tolist()
    assert mean.tolist() == (total / frequency).tolist()
    assert returns_only == int(np.count_nonzero((records["purchase_rows"] == 0)
                                                & (records["return_rows"] > 0)))


@pytest.mark.parametrize("shape", ["one_heavy_id", "clustered", "shared_prefix"])
def test_range_partitions_with_skewed_ids(monkeypatch, shape):
    """Range partitions whose splitters repeat (an id holding half the rows), ids packed in a
    narrow range, and strings sharing their first 8 bytes: same table as the streaming path."""
    rng = np.random.default_rng(21)
    n = 40_000
    if shape == "one_heavy_id":
        ids = pa.array(np.where(rng.random(n) < 0.5, 7, rng.integers(-2**63, 2**63 - 1, n)))
    elif shape == "clustered":
        ids = pa.array(rng.integers(0, 50, n) * 3 + np.where(rng.random(n) < 0.1, 2**62, 0))
    else:
        ids = pa.array([f"customer{v:05d}" for v in rng.integers(0, 30_000, n)])
    table = pa.table({"cust": ids, "ts": pa.array(1_600_000_000_000_000 + rng.integers(0, 10**12, n),
                                                  pa.timestamp("us")),
                      "amt": np.round(rng.normal(20, 30, n), 2)})
    kw = dict(customer="cust", time="ts", amount="amt")
    expected = fe.rfm(table, **kw, batch_size=7_000)  # hash map, no partitions
    monkeypatch.setattr(_rfm_batch, "HASHED_MIN_ROWS", 0)
    monkeypatch.setattr(_rfm_batch, "SERIAL_MAX_ROWS", 0)
    for threads in (1, 2):
        assert fe.rfm(table, **kw, n_threads=threads).equals(expected)
