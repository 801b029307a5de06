"""The few-ids fold (many rows per customer: rows folded straight into per-thread records, no
partitions; kernels/features/fewids.py) against the partitioned path's records, bit for bit,
and rfm() through it against the plain reference."""
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastengage as fe
from fastengage._io.ids import string_buffers
from fastengage.features import _batch as rfm_batch
from fastengage.kernels.features import fewids, hashed, oneshot
from fastengage.kernels.features import rfm as rfm_kernels
from naive import rfm_reference

US_PER_DAY = 86_400_000_000


def _keys(ids):
    """Key words of a list of ids (int64, uint64 or str), as rfm() makes them."""
    if isinstance(ids[0], str):
        offsets, data = string_buffers(pa.array(ids, pa.string()))
        keys0 = np.empty(len(ids), np.uint64)
        keys1 = np.empty(len(ids), np.uint64)
        hashed.pack_short_strings(offsets, data, np.empty(0, np.uint64), keys0, keys1)
        return keys0, keys1, True, False
    signed = min(ids) < 0 or max(ids) < 2 ** 63
    values = np.array(ids, np.int64 if signed else np.uint64)
    return values.view(np.uint64), np.empty(0, np.uint64), False, signed


def _partitioned(keys0, keys1, two_words, signed, times, amounts, limit, exclude, first_day,
                 words):
    offsets, p0, p1, p_times, p_amounts, p_orders = hashed.partition(
        keys0, keys1, two_words, signed, times, amounts, np.empty(0, np.int64), False, 1, 2)
    local, bases, ids0, ids1 = hashed.encode_partitions(offsets, p0, p1, two_words, signed)
    state = rfm_kernels.uninitialised_state(int(bases[-1]))
    counts = oneshot.fold(state, offsets, local, p_times, p_amounts, p_orders, bases, False,
                          limit, exclude, False, first_day, words)
    return state, ids0, ids1, counts


_ID_POOLS = st.sampled_from(["int64", "uint64", "str"]).flatmap(lambda kind: st.lists(
    st.integers(-2 ** 63, 2 ** 63 - 1) if kind == "int64"
    else st.integers(2 ** 63, 2 ** 64 - 1) if kind == "uint64"
    else st.text(st.sampled_from("ab\x00é"), max_size=7),  # up to 14 bytes, "" and "\0" too
    min_size=1, max_size=40, unique=True))


@settings(max_examples=150, deadline=None)
@given(pool=_ID_POOLS, data=st.data())
def test_fold_matches_the_partitioned_records(pool, data):
    n = data.draw(st.integers(1, 300), label="rows")
    ids = [pool[k] for k in data.draw(st.lists(st.integers(0, len(pool) - 1), min_size=n,
                                               max_size=n), label="id indexes")]
    times = np.array(data.draw(st.lists(st.integers(-3 * US_PER_DAY, 400 * US_PER_DAY),
                                        min_size=n, max_size=n), label="times"), np.int64)
    amounts = np.array(data.draw(st.lists(
        st.sampled_from([0.0, -0.0, 1e-30, -2.5]) | st.floats(-1e6, 1e6), min_size=n,
        max_size=n), label="amounts"))
    limit = int(data.draw(st.sampled_from([times.max(), times.min(), int(np.median(times))])))
    exclude = data.draw(st.booleans(), label="exclude returns")
    keys0, keys1, two_words, signed = _keys(ids)
    first_day, words = oneshot.day_words(int(times.min()), int(times.max()))
    want_state, want0, want1, want_counts = _partitioned(keys0, keys1, two_words, signed, times,
                                                         amounts, limit, exclude, first_day, words)
    with pytest.MonkeyPatch.context() as mp:
        # tiny tables and blocks: the tables grow, and threads share the blocks
        mp.setattr(fewids, "MIN_ROOM", 2)
        mp.setattr(fewids, "RFM_FEW_IDS_BLOCK_ROWS", data.draw(st.integers(1, 64), label="block"))
        for n_threads in (1, 2):
            state, ids0, ids1, n_after, n_returns = fewids.fold(
                keys0, keys1, two_words, signed, times, amounts, limit, exclude, first_day, words,
                1.0, n_threads=n_threads)
            assert state.tobytes() == want_state.tobytes()
            np.testing.assert_array_equal(ids0, want0)
            np.testing.assert_array_equal(ids1, want1)
            assert (n_after, n_returns) == want_counts


def test_fold_gives_up_on_more_ids_than_allowed(monkeypatch):
    rng = np.random.default_rng(3)
    keys0 = rng.integers(0, 500, 5_000).astype(np.uint64)
    times = rng.integers(0, 90 * US_PER_DAY, 5_000)
    first_day, words = oneshot.day_words(int(times.min()), int(times.max()))
    args = (keys0, np.empty(0, np.uint64), False, True, times, rng.random(5_000),
            int(times.max()), False, first_day, words, 1.0)
    monkeypatch.setattr(fewids, "MIN_ROOM", 2)
    assert fewids.fold(*args)[0].shape == (500,)
    monkeypatch.setattr(fewids, "RFM_FEW_IDS_MAX_IDS", 256)
    assert fewids.fold(*args) is None


def test_takes_only_few_ids_with_many_rows_each():
    assert fewids.takes(5_000_000, 26_000, 12)  # 100 rows a customer, two years
    assert not fewids.takes(5_000_000, 62_000, 12)  # 20 rows a customer: partitions are faster
    assert not fewids.takes(100_000, 26_000, 12)  # a few rows per id
    assert not fewids.takes(5_000_000, 26_000, 4_000)  # 700 years of day bitmaps


def _rows(n_customers, n_rows, seed=5):
    rng = np.random.default_rng(seed)
    customer = rng.integers(0, n_customers, n_rows)
    times = 1_600_000_000_000_000 + rng.integers(-40 * US_PER_DAY, 500 * US_PER_DAY, n_rows)
    amounts = np.round(rng.normal(30, 40, n_rows), 2)
    return customer, times, amounts


@pytest.mark.parametrize("ids", ["sparse", "string", "uint64"])
@pytest.mark.parametrize("returns", ["net", "exclude"])
def test_rfm_through_the_few_ids_fold_matches_the_reference(monkeypatch, ids, returns):
    customer, times, amounts = _rows(150, 30_000)
    user_ids = {"sparse": customer * 1_000_003 - 7_000_000,
                "string": np.array([f"c{c * 7919:06d}" for c in customer]),
                "uint64": customer.astype(np.uint64) + np.uint64(2 ** 63)}[ids]
    table = pa.table({"cust": user_ids, "ts": pa.array(times, pa.timestamp("us")),
                      "amt": amounts})
    as_of = int(np.quantile(times, 0.9))
    kw = dict(customer="cust", time="ts", amount="amt", returns=returns,
              as_of=np.datetime64(as_of, "us"))
    monkeypatch.setattr(rfm_batch, "SERIAL_MAX_ROWS", 0)
    monkeypatch.setattr(rfm_batch, "HASHED_MIN_ROWS", 0)
    calls = []
    real_fold = fewids.fold
    monkeypatch.setattr(fewids, "fold", lambda *a, **k: calls.append(1) or real_fold(*a, **k))
    result = fe.rfm(table, **kw, n_threads=2)
    assert calls, "the few-ids fold was not taken"
    assert fe.rfm(table, **kw, n_threads=1).equals(result)
    expected = rfm_reference(user_ids.tolist(), times.tolist(), amounts.tolist(), as_of_us=as_of,
                             returns=returns)
    rows = result.to_pydict()
    assert rows["cust"] == sorted(expected)
    for col in ("recency_days", "tenure_days", "frequency", "purchase_days"):
        assert rows[col] == [expected[k][col] for k in rows["cust"]], col
    assert rows["monetary_total"] == [expected[k]["monetary_total"] for k in rows["cust"]]
    # the partitioned path gives the same table, report included
    monkeypatch.setattr(fewids, "takes", lambda *args: False)
    assert fe.rfm(table, **kw, n_threads=2).equals(result, check_metadata=True)
    # and so does a fold that gives up half-way through (more ids than it allows)
    monkeypatch.setattr(fewids, "takes", lambda *args: True)
    monkeypatch.setattr(fewids, "RFM_FEW_IDS_MAX_IDS", 64)
    monkeypatch.setattr(fewids, "MIN_ROOM", 2)
    n_calls = len(calls)
    assert fe.rfm(table, **kw, n_threads=2).equals(result, check_metadata=True)
    assert len(calls) == n_calls + 1


def _string_ids(offsets, data):
    return pa.Array.from_buffers(pa.string(), len(offsets) - 1,
                                 [None, pa.py_buffer(np.asarray(offsets, np.int32)),
                                  pa.py_buffer(data)])


@pytest.mark.parametrize("few_ids", [True, False])  # the few-ids fold, or the partitions
@pytest.mark.parametrize("corruption", ["utf8", "offset past the data", "offsets backwards"])
def test_large_string_columns_validated_where_read_still_reject_corrupt_ids(monkeypatch, few_ids,
                                                                             corruption):
    """A large plain-string customer column is validated as it is packed (offsets) and once
    numbered (UTF-8 of the distinct ids), not in full up front: a corrupt one is still an
    InputError naming the column, and nothing reads outside its data."""
    n = 3_000
    data = b"".join(b"c%03d" % (k % 100) for k in range(n))  # 100 ids of 4 bytes, 30 rows each
    offsets = np.arange(0, 4 * n + 1, 4)
    if corruption == "utf8":
        data = data[:4 * 1_234] + b"\xff" + data[4 * 1_234 + 1:]
    elif corruption == "offset past the data":
        offsets[1_500] = 4 * n + 10
    else:
        offsets[1_500] = offsets[1_499] - 2
    table = pa.table({"cust": _string_ids(offsets, data),
                      "ts": pa.array(np.arange(n) * 3_600_000_000, pa.timestamp("us")),
                      "amt": np.ones(n)})
    monkeypatch.setattr(rfm_batch, "SERIAL_MAX_ROWS", 0)
    monkeypatch.setattr(rfm_batch, "HASHED_MIN_ROWS", 0)
    monkeypatch.setattr(fewids, "takes", lambda *args: few_ids)
    with pytest.raises(fe.InputError, match="column 'cust' of the input table is corrupt"):
        fe.rfm(table, customer="cust", time="ts", amount="amt")


def test_deferred_string_ids_are_still_named_in_amount_errors_and_dropped_when_null(monkeypatch):
    n = 3_000
    ids = [None if k == 17 else f"c{k % 100:03d}" for k in range(n)]
    amounts = np.ones(n)
    table = pa.table({"cust": pa.array(ids, pa.string()),
                      "ts": pa.array(np.arange(n) * 3_600_000_000, pa.timestamp("us")),
                      "amt": amounts})
    kw = dict(customer="cust", time="ts", amount="amt", drop_null_customers=True)
    expected = fe.rfm(table, **kw)  # small: validated up front, hash map
    monkeypatch.setattr(rfm_batch, "SERIAL_MAX_ROWS", 0)
    monkeypatch.setattr(rfm_batch, "HASHED_MIN_ROWS", 0)
    assert fe.rfm(table, **kw).equals(expected, check_metadata=True)
    amounts[40] = np.nan
    with pytest.raises(fe.InputError, match="'amt' has 1 NaN value.*customer 'c040'"):
        fe.rfm(table.set_column(2, "amt", pa.array(amounts)), **kw)
