"""The compiled-ahead partition kernels of rfm() (partition_native.pyx: oneshot.partition,
hashed.partition / encode_partitions / estimated_ids / pack_short_strings) against plain NumPy
references, on inputs hypothesis varies, at 1 and 2 threads and several chunk plans: the
outputs must be the references' exactly, whatever the plan or the thread count."""
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastengage._io.ids import string_buffers
from fastengage.kernels.features import hashed, oneshot

SIGN = np.uint64(1) << np.uint64(63)


def _payload(n, seed):
    rng = np.random.default_rng(seed)
    times = rng.integers(-10**15, 10**15, n)
    return times, rng.normal(0, 100, n), rng.integers(0, 1000, n)


@settings(max_examples=60, deadline=None)
@given(codes=st.lists(st.integers(0, 5_000), max_size=400), shift=st.integers(0, 13),
       n_chunks=st.integers(1, 7), n_threads=st.sampled_from([1, 2]), has_order=st.booleans())
def test_code_partition_is_a_stable_sort_by_partition(codes, shift, n_chunks, n_threads, has_order):
    codes = np.array(codes, np.int64)
    n_codes = int(codes.max()) + 1 if len(codes) else 0
    times, amounts, orders = _payload(len(codes), 1)
    got = oneshot.partition(codes, times, amounts, orders if has_order else np.empty(0, np.int64),
                            has_order, n_codes, shift, n_chunks, n_threads=n_threads)
    offsets, local, p_times, p_amounts, p_orders = got
    order = np.argsort(codes >> shift, kind="stable")
    n_parts = ((max(n_codes, 1) - 1) >> shift) + 1
    sizes = np.bincount(codes >> shift, minlength=n_parts)
    np.testing.assert_array_equal(offsets, np.concatenate([[0], np.cumsum(sizes)]))
    np.testing.assert_array_equal(local, codes[order] & ((1 << shift) - 1))
    np.testing.assert_array_equal(p_times, times[order])
    np.testing.assert_array_equal(p_amounts, amounts[order])
    np.testing.assert_array_equal(p_orders, orders[order] if has_order else np.empty(0))


def _chao(keys):
    """Chao's estimate of the distinct ids from an evenly spaced sample of the rows (NumPy)."""
    n = len(keys)
    m = max(1, min(n, hashed.SAMPLE_ROWS))
    _, counts = np.unique(keys[(np.arange(m) * n) // m], return_counts=True, axis=0)
    f1, f2 = int((counts == 1).sum()), int((counts == 2).sum())
    return min(float(n), len(counts) + f1 * (f1 - 1) / (2.0 * (f2 + 1)))


def _check_numbering(keys0, keys1, two_words, signed, sort_keys, n_chunks, n_threads, bits):
    """hashed.partition then encode_partitions against np.unique of the sort keys."""
    n = len(keys0)
    rows = np.arange(n, dtype=np.int64)
    offsets, p0, p1, p_rows, p_amounts, _ = hashed.partition(
        keys0, keys1, two_words, signed, rows, rows * 0.5, np.empty(0, np.int64), False, bits,
        n_chunks, n_threads=n_threads)
    np.testing.assert_array_equal(np.sort(p_rows), rows)  # every row exactly once
    np.testing.assert_array_equal(p0, keys0[p_rows])
    np.testing.assert_array_equal(p_amounts, p_rows * 0.5)
    if two_words:
        np.testing.assert_array_equal(p1, keys1[p_rows])
    local, bases, ids0, ids1 = hashed.encode_partitions(offsets, p0, p1, two_words, signed,
                                                        n_threads=n_threads)
    distinct, rank = np.unique(sort_keys, axis=0, return_inverse=True)
    part_of_row = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    for p in range(len(offsets) - 1):  # input order kept inside a partition
        assert np.all(np.diff(p_rows[offsets[p]:offsets[p + 1]]) > 0)
    codes = bases[part_of_row] + local
    assert bases[-1] == len(distinct)
    np.testing.assert_array_equal(codes, rank.reshape(-1)[p_rows])  # codes are the ids' ranks
    np.testing.assert_array_equal(ids0[codes], p0)
    if two_words:
        np.testing.assert_array_equal(ids1[codes], p1)
    assert hashed.estimated_ids(keys0, keys1, two_words, signed) == _chao(sort_keys)


@settings(max_examples=60, deadline=None)
@given(pool=st.lists(st.integers(-2**63, 2**63 - 1), min_size=1, max_size=60, unique=True),
       picks=st.lists(st.integers(0, 10**6), min_size=1, max_size=500),
       signed=st.booleans(), n_chunks=st.integers(1, 5), n_threads=st.sampled_from([1, 2]),
       bits=st.integers(1, 4), small_tables=st.booleans())
def test_integer_ids_are_numbered_in_id_order(pool, picks, signed, n_chunks, n_threads, bits,
                                              small_tables):
    values = np.array([pool[k % len(pool)] for k in picks], np.int64)
    keys0 = values.view(np.uint64)
    sort_keys = (keys0 ^ SIGN if signed else keys0).reshape(-1, 1)
    with pytest.MonkeyPatch.context() as mp:
        if small_tables:  # the numbering tables start tiny and grow
            mp.setattr(hashed, "NUMBER_TABLE_ROWS", 1)
        _check_numbering(keys0, np.empty(0, np.uint64), False, signed, sort_keys, n_chunks,
                         n_threads, bits)


def _reference_pack(values):
    """(words0, words1) of each string: bytes 0..7 and 8..14 little-endian, length on top."""
    words0, words1 = [], []
    for v in values:
        b = v.encode()
        words0.append(int.from_bytes(b[:8], "little"))
        words1.append(int.from_bytes(b[8:], "little") | (len(b) << 56))
    return np.array(words0, np.uint64), np.array(words1, np.uint64)


_SHORT = st.text(st.sampled_from("ab\x00é"), max_size=7) | st.binary(max_size=15).map(
    lambda b: b.decode("latin-1")).filter(lambda t: len(t.encode()) <= 15)


@settings(max_examples=60, deadline=None)
@given(pool=st.lists(_SHORT, min_size=1, max_size=40, unique=True),
       picks=st.lists(st.integers(0, 10**6), min_size=1, max_size=300),
       large=st.booleans(), n_chunks=st.integers(1, 5), n_threads=st.sampled_from([1, 2]),
       small_tables=st.booleans())
def test_short_strings_pack_and_number_in_byte_order(pool, picks, large, n_chunks, n_threads,
                                                    small_tables):
    values = [pool[k % len(pool)] for k in picks]
    column = pa.array(values, pa.large_string() if large else pa.string())
    offsets, data = string_buffers(column)
    want0, want1 = _reference_pack(values)
    for aligned in (data[:len(data) // 8 * 8].view(np.uint64), np.empty(0, np.uint64)):
        keys0, keys1 = np.empty(len(values), np.uint64), np.empty(len(values), np.uint64)
        assert hashed.pack_short_strings(offsets, data, aligned, keys0, keys1,
                                         n_threads=n_threads) == 0
        np.testing.assert_array_equal(keys0, want0)
        np.testing.assert_array_equal(keys1, want1)
    str_offsets, str_data = hashed.unpack_short_strings(keys0, keys1)
    assert pa.Array.from_buffers(pa.large_string(), len(values), [
        None, pa.py_buffer(str_offsets), pa.py_buffer(str_data)]).to_pylist() == values
    # byte order: the bytes big-endian, then the length
    sort_keys = np.stack([keys0.byteswap(), keys1.byteswap()], axis=1)
    with pytest.MonkeyPatch.context() as mp:
        if small_tables:  # the numbering tables start tiny and grow
            mp.setattr(hashed, "NUMBER_TABLE_ROWS", 1)
        _check_numbering(keys0, keys1, True, False, sort_keys, n_chunks, n_threads, 2)


def test_strings_it_cannot_pack_are_counted_not_read():
    column = pa.array(["short", "x" * 16, "", "fifteen-bytes!!"])
    offsets, data = string_buffers(column)
    keys0, keys1 = np.ones(4, np.uint64), np.ones(4, np.uint64)
    assert hashed.pack_short_strings(offsets, data, np.empty(0, np.uint64), keys0, keys1) == 1
    assert keys0[1] == 0 and keys1[1] == 0
    bad = offsets.copy()
    bad[2] = len(data) + 100  # offsets outside the data: counted, nothing read
    assert hashed.pack_short_strings(bad, data, np.empty(0, np.uint64), keys0, keys1) == 2


@pytest.mark.parametrize("small_tables", [False, True])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_large_partitions_match_at_any_thread_count(monkeypatch, n_threads, small_tables):
    """Enough rows for several partitions and row chunks per thread, and thousands of ids per
    partition: with tables sized for one row (small_tables) they grow several times."""
    if small_tables:
        monkeypatch.setattr(hashed, "NUMBER_TABLE_ROWS", 1)
    rng = np.random.default_rng(4)
    pick = rng.integers(0, 20_000, 200_000)
    values = rng.integers(-2**62, 2**62, 20_000)[pick]
    keys0 = values.view(np.uint64)
    _check_numbering(keys0, np.empty(0, np.uint64), False, True, (keys0 ^ SIGN).reshape(-1, 1),
                     5, n_threads, 3)
    names = [f"id-{v:x}"[:15] for v in rng.integers(0, 2**60, 20_000)]
    column = pa.array(names).take(pa.array(pick[:50_000]))
    offsets, data = string_buffers(column)
    keys0, keys1 = np.empty(len(column), np.uint64), np.empty(len(column), np.uint64)
    hashed.pack_short_strings(offsets, data, data[:len(data) // 8 * 8].view(np.uint64), keys0,
                              keys1, n_threads=n_threads)
    _check_numbering(keys0, keys1, True, False,
                     np.stack([keys0.byteswap(), keys1.byteswap()], axis=1), 3, n_threads, 1)
