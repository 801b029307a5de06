"""Hostile and careless rows (issue #10, findings 9, 10, 12): every one is a correct answer or an
InputError naming the column (and the customer or the file), never a silent wrong answer."""
import datetime as dt
import os
import random

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import fastengage as fe
from fastengage._io.sources import time_to_us

KW = dict(customer="cust", time="ts", amount="amt")
TS = pa.array([86_400 * k for k in (1, 2, 3)], pa.timestamp("s"))


@pytest.mark.parametrize("amounts,message", [
    ([1.0, np.inf, 2.0], r"'amt' has the value inf \(first at row 1, customer 7\)"),
    ([1.0, 2.0, -np.inf], r"'amt' has the value -inf \(first at row 2, customer 8\)"),
    ([1e308, 1e308, 1.0], r"'amt' has the value 1e\+308 .*customer 7"),
    ([2.0 ** 63, 1.0, 1.0], r"'amt' has the value .*\|amount\| must be < 9.223e\+18"),
])
@pytest.mark.parametrize("streamed", [False, True])
def test_non_finite_and_huge_amounts_name_the_customer_and_column(amounts, message, streamed):
    """Finding 9: inf was accepted (monetary_total inf/NaN, scored 'Lost'); 1e308 + 1e308
    overflowed silently."""
    t = pa.table({"cust": [7, 7, 8], "ts": TS, "amt": amounts})
    with pytest.raises(fe.InputError, match=message):
        fe.rfm(t, **KW, batch_size=2 if streamed else None)


def test_largest_accepted_amounts_sum_without_overflow():
    big = 2.0 ** 62
    t = pa.table({"cust": [1, 1, 1], "ts": TS, "amt": [big, big, big]})
    assert fe.rfm(t, **KW)["monetary_total"].to_pylist() == [3 * big]


@pytest.mark.parametrize("array", [
    pa.array([2 ** 62], pa.timestamp("s")), pa.array([-2 ** 62], pa.timestamp("ms")),
    pa.array([2 ** 62], pa.timestamp("us")), pa.array([2 ** 31 - 1], pa.date32()),
    pa.array([-2 ** 31], pa.date32()), pa.array([2 ** 62], pa.date64()),
])
def test_time_units_out_of_range_are_input_errors(array):
    """Finding 10: timestamp[s] 2**62 was read as 1970-01-01; the largest date32 gave T=12443823."""
    with pytest.raises(fe.InputError, match="time column 'ts' has a value of .* outside"):
        time_to_us(array, "ts")
    t = pa.table({"cust": [1], "ts": array, "amt": [1.0]})
    with pytest.raises(fe.InputError, match="column 'ts'"):
        fe.rfm(t, **KW)


def test_time_range_edges_are_kept_exactly():
    edges = pa.array([dt.datetime(1, 1, 1), dt.datetime(9999, 12, 31, 23, 59, 59)], pa.timestamp("s"))
    us = time_to_us(edges, "ts")
    assert us.tolist() == [-62_135_596_800_000_000, 253_402_300_799_000_000]
    assert time_to_us(pa.array([2 ** 62], pa.timestamp("ns")), "ts")[0] == 2 ** 62 // 1000


@pytest.mark.parametrize("index_type", [pa.int8(), pa.int32()])
@pytest.mark.parametrize("batch_size", [None, 2])
def test_dictionary_of_int64_ids(index_type, batch_size):
    """Finding 12: dictionary<int64> ids raised ArrowNotImplementedError."""
    ids = pa.DictionaryArray.from_arrays(pa.array([1, 0, 1, 2], index_type),
                                         pa.array([30, 10, 20], pa.int64()))
    ts = pa.array([86_400 * k for k in (1, 2, 3, 4)], pa.timestamp("s"))
    t = pa.table({"cust": ids, "ts": ts, "amt": [1.0, 2.0, 3.0, 4.0]})
    got = fe.rfm(t, **KW, batch_size=batch_size)
    plain = fe.rfm(t.set_column(0, "cust", ids.dictionary_decode()), **KW)
    assert got.schema.field(0).type == t.schema.field(0).type
    assert got["cust"].to_pylist() == [10, 20, 30]
    assert got.drop_columns(["cust"]).equals(plain.drop_columns(["cust"]))


def _bad_utf8():
    return pa.Array.from_buffers(pa.string(), 3, [None, pa.py_buffer(np.array([0, 1, 2, 3], np.int32)),
                                                  pa.py_buffer(b"a\xffc")])


@pytest.mark.parametrize("wrap", ["table", "reader", "state"])
def test_invalid_utf8_ids_are_an_input_error_naming_the_column(wrap):
    """Finding 12: invalid UTF-8 inside string ids passed through into the output."""
    t = pa.table({"cust": _bad_utf8(), "ts": TS, "amt": [1.0, 2.0, 3.0]})
    with pytest.raises(fe.InputError, match="column 'cust' .*UTF8"):
        if wrap == "table":
            fe.rfm(t, **KW)
        elif wrap == "reader":
            fe.rfm(pa.RecordBatchReader.from_batches(t.schema, t.to_batches()), **KW)
        else:
            fe.RFMState(**KW).update(t)


def test_parquet_folder_with_mixed_schemas_names_the_file_and_column(tmp_path):
    """Finding 12: a folder of files with different types was cast to the first file's types."""
    t = pa.table({"cust": [1, 2], "ts": TS[:2], "amt": [1.0, 2.0]})
    pq.write_table(t, tmp_path / "a.parquet")
    pq.write_table(t.set_column(0, "cust", pa.array(["x", "y"])), tmp_path / "b.parquet")
    with pytest.raises(fe.InputError, match=r"column 'cust' is string in '.*b\.parquet'"):
        fe.rfm(str(tmp_path), **KW)


def test_corrupted_parquet_pages_are_input_errors_naming_the_file(tmp_path):
    """Finding 12: corrupted page data raised OverflowError from rfm (or was read as garbage).
    Pages written with checksums are verified, so corruption cannot pass as data."""
    rng = np.random.default_rng(0)
    n = 500
    t = pa.table({"cust": rng.integers(0, 50, n),
                  "ts": pa.array(rng.integers(1.6e9, 1.7e9, n), pa.timestamp("s")),
                  "amt": rng.random(n)})
    path = tmp_path / "good.parquet"
    pq.write_table(t, path, compression="none", write_page_checksum=True)
    raw = path.read_bytes()
    expected = fe.rfm(t, **KW)
    data_start, data_end = 4, len(raw) - pq.ParquetFile(path).metadata.serialized_size - 8
    rnd = random.Random(0)
    outcomes = set()
    for k in range(40):
        bad = bytearray(raw)
        for _ in range(4):
            bad[rnd.randrange(data_start, data_end)] ^= 1 << rnd.randrange(8)
        target = tmp_path / f"bad{k}.parquet"
        target.write_bytes(bytes(bad))
        try:
            got = fe.rfm(str(target), **KW)
        except fe.InputError as exc:
            assert str(target) in str(exc) or "Parquet" in str(exc), exc
            outcomes.add("error")
        else:
            assert got.equals(expected)  # only flips in unused bytes may pass, and change nothing
            outcomes.add("same")
    assert "error" in outcomes
