"""RFM kernels against the plain reference in tests/naive.py, on generated Arrow tables."""
import datetime as dt
import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastengage as fe
from fastengage.kernels.features import rfm as k_rfm
from naive import rfm_reference, scores_reference

US = 1_000_000
T0 = 1_600_000_000 * US  # 2020-09-13
UNIT_FACTOR = {"s": 1_000_000, "ms": 1_000, "us": 1}


@st.composite
def transactions(draw, min_rows=1, max_rows=60):
    """A transaction table with int or string ids, any time unit, returns, and chunking."""
    n = draw(st.integers(min_rows, max_rows))
    n_customers = draw(st.integers(1, 8))
    cust = draw(st.lists(st.integers(0, n_customers - 1), min_size=n, max_size=n))
    # seconds within ~40 days, including pre-epoch times to exercise floor semantics
    base = draw(st.sampled_from([T0 // US, -86_400 * 3 - 17]))
    secs = draw(st.lists(st.integers(0, 40 * 86_400), min_size=n, max_size=n))
    amounts = draw(st.lists(st.one_of(st.floats(0, 500, allow_nan=False),
                                      st.floats(-100, -0.01, allow_nan=False)),
                            min_size=n, max_size=n))
    orders = draw(st.lists(st.integers(0, 6), min_size=n, max_size=n))
    id_kind = draw(st.sampled_from(["int64", "int32", "uint16", "string", "large_string", "dict"]))
    unit = draw(st.sampled_from(["s", "ms", "us", "ns"]))
    tz = draw(st.sampled_from([None, "UTC", "Europe/Paris"]))
    if id_kind in ("string", "large_string", "dict"):
        values = [f"cust-{c:03d}" for c in cust]
        ids = pa.array(values, pa.large_string() if id_kind == "large_string" else pa.string())
        if id_kind == "dict":
            ids = ids.dictionary_encode()
    else:
        values = cust
        ids = pa.array(cust, getattr(pa, id_kind)())
    ts_seconds = [base + s for s in secs]
    per_second = {"s": 1, "ms": 1000, "us": 1_000_000, "ns": 1_000_000_000}[unit]
    times = pa.array([s * per_second for s in ts_seconds], pa.timestamp(unit, tz=tz))
    if draw(st.booleans()):  # null customer ids, dropped with drop_null_customers=True
        mask = draw(st.lists(st.booleans(), min_size=n, max_size=n))
        if all(mask):
            mask[0] = False
        ids = pa.array(ids.to_pylist() if not pa.types.is_dictionary(ids.type) else
                       ids.cast(ids.type.value_type).to_pylist(), ids.type if not
                       pa.types.is_dictionary(ids.type) else ids.type.value_type,
                       mask=np.array(mask))
    table = pa.table({"cust": ids, "ts": times, "amt": pa.array(amounts, pa.float64()),
                      "ord": pa.array([f"o{c}-{o}" for c, o in zip(cust, orders)])})
    n_chunks = draw(st.integers(1, 3))
    if n_chunks > 1 and n > 2:
        cut = sorted(draw(st.lists(st.integers(1, n - 1), min_size=n_chunks - 1, max_size=n_chunks - 1)))
        bounds = [0, *cut, n]
        table = pa.Table.from_batches(
            [b for lo, hi in zip(bounds, bounds[1:]) if hi > lo for b in table.slice(lo, hi - lo).to_batches()])
    sort = draw(st.booleans())
    if sort:
        table = table.sort_by("ts")
    return table


def _py_rows(table):
    table = table.filter(pc.is_valid(table["cust"]))  # what drop_null_customers=True keeps
    cust = table.column("cust")
    if pa.types.is_dictionary(cust.type):
        cust = cust.cast(cust.type.value_type)
    ids = cust.to_pylist()
    ts = table.column("ts").cast(pa.int64()).to_pylist()
    unit = table.schema.field("ts").type.unit
    us = [t // 1000 if unit == "ns" else t * UNIT_FACTOR[unit] for t in ts]
    return ids, us, table.column("amt").to_pylist(), table.column("ord").to_pylist()


def _check(result, expected, with_order):
    if pa.types.is_dictionary(result.schema.field(0).type):
        result = result.set_column(0, result.schema.names[0],
                                   result.column(0).cast(result.schema.field(0).type.value_type))
    got = result.to_pylist()
    cname = result.schema.names[0]
    assert [r[cname] for r in got] == sorted(expected)
    for row in got:
        exp = expected[row[cname]]
        epoch = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
        assert row["first_purchase"] == epoch + dt.timedelta(microseconds=exp["first_purchase"])
        assert row["last_purchase"] == epoch + dt.timedelta(microseconds=exp["last_purchase"])
        for key in ("recency_days", "tenure_days", "frequency", "purchase_days"):
            assert row[key] == exp[key], key
        # Exact sums, correctly rounded: equal to the last bit (issue #10.11).
        assert row["monetary_total"] == exp["monetary_total"]
        assert row["monetary_mean"] == exp["monetary_mean"]


RETURNS = ["net", "exclude"]
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(table=transactions(), returns=st.sampled_from(["net", "exclude"]),
       with_order=st.booleans(), cut=st.one_of(st.none(), st.integers(0, 45)))
def test_rfm_matches_reference(table, returns, with_order, cut):
    ids, us, amounts, orders = _py_rows(table)
    n_null = table["cust"].null_count
    as_of_us = None if cut is None else min(us) + cut * 86_400 * US
    expected = rfm_reference(ids, us, amounts, orders if with_order else None, as_of_us, returns)
    kwargs = dict(customer="cust", time="ts", amount="amt", returns=returns,
                  order="ord" if with_order else None, drop_null_customers=True)
    if as_of_us is not None:
        kwargs["as_of"] = np.datetime64(as_of_us, "us")
    if not expected:  # only returns, or everything after as_of: no customer qualifies
        assert fe.rfm(table, **kwargs).num_rows == 0
        return
    result = fe.rfm(table, **kwargs)
    _check(result, expected, with_order)
    assert json.loads(result.schema.metadata[b"fastengage"])["null_customer_rows_dropped"] == n_null
    assert result.schema.field(0).type == table.schema.field(0).type  # dictionary kept too


@SETTINGS
@given(table=transactions(), returns=st.sampled_from(["net", "exclude"]),
       with_order=st.booleans())
def test_hashed_path_matches_reference(table, returns, with_order):
    """Small tables normally use the hash map; force the hash-partitioned path on them."""
    from unittest import mock

    from fastengage.features import _batch as _rfm_batch, _common

    ids, us, amounts, orders = _py_rows(table)
    expected = rfm_reference(ids, us, amounts, orders if with_order else None, None, returns)
    kwargs = dict(customer="cust", time="ts", amount="amt", returns=returns,
                  order="ord" if with_order else None, drop_null_customers=True)
    with mock.patch.object(_rfm_batch, "HASHED_MIN_ROWS", 0), \
            mock.patch.object(_rfm_batch, "SERIAL_MAX_ROWS", 0), \
            mock.patch.object(_common, "FEATURES_DENSE_MAX_RANGE", 0):
        result = fe.rfm(table, **kwargs)
    if not expected:
        assert result.num_rows == 0
        return
    _check(result, expected, with_order)
    assert result.schema.field(0).type == table.schema.field(0).type


@SETTINGS
@given(table=transactions(min_rows=2), with_order=st.booleans(), returns=st.sampled_from(RETURNS),
       data=st.data())
def test_any_split_and_merge_gives_bit_identical_tables(table, with_order, returns, data):
    """Batches one at a time, in any order, or merged states in any order: the same table to the
    last bit, m_score and segment included (issue #10.11: float sums used to depend on order)."""
    kwargs = dict(customer="cust", time="ts", amount="amt", order="ord" if with_order else None,
                  drop_null_customers=True, returns=returns)
    whole = fe.rfm(table, **kwargs)
    n = table.num_rows
    perm = data.draw(st.permutations(range(n)))
    shuffled = table.take(pa.array(perm))
    assert fe.rfm(shuffled, **kwargs).equals(whole)
    batch_size = data.draw(st.integers(1, n))
    streamed = fe.rfm(pa.RecordBatchReader.from_batches(shuffled.schema, shuffled.to_batches(batch_size)),
                      **kwargs)
    assert _same(streamed, whole)
    cuts = sorted(data.draw(st.lists(st.integers(1, n - 1), min_size=1, max_size=3, unique=True)))
    parts = [shuffled.slice(lo, hi - lo) for lo, hi in zip([0, *cuts], [*cuts, n])]
    states = [fe.RFMState(**kwargs).update(p) for p in parts]
    order = data.draw(st.permutations(range(len(states))))
    merged = states[order[0]]
    for k in order[1:]:
        merged = merged.merge(states[k]) if data.draw(st.booleans()) else states[k].merge(merged)
    assert _same(merged.to_table(), whole)


def _same(a, b):
    """Bit-identical tables, up to the report in the schema metadata (rows counted differ when
    the one-shot path reads null ids in a single batch)."""
    return a.replace_schema_metadata(None).equals(b.replace_schema_metadata(None))


def test_split_sums_that_floats_would_round_differently():
    """0.1 + 0.2 + 0.3 is 0.6000000000000001 in one float order and 0.6 in another."""
    t = pa.table({"c": [1, 1, 1, 2, 2, 2], "t": pa.array([1, 2, 3, 1, 2, 3], pa.timestamp("s")),
                  "a": [0.1, 0.2, 0.3, 0.3, 0.2, 0.1]})
    kw = dict(customer="c", time="t", amount="a")
    whole = fe.rfm(t, **kw)
    assert whole["monetary_total"].to_pylist() == [0.6, 0.6]
    merged = fe.RFMState(**kw).update(t.slice(0, 1)).merge(fe.RFMState(**kw).update(t.slice(1)))
    assert merged.to_table().equals(whole.replace_schema_metadata(merged.to_table().schema.metadata))


@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.integers(-5, 5), min_size=1, max_size=40), higher=st.booleans())
def test_scores_match_reference(values, higher):
    got = k_rfm.quintile_scores(np.array(values, dtype=np.int64), higher)
    assert got.tolist() == scores_reference(values, higher)


@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.integers(0, 12), min_size=1, max_size=60), higher=st.booleans(),
       big=st.booleans())
def test_counted_scores_match_reference_and_selection(values, higher, big):
    """Non-negative integers are scored by counting (recency days, frequencies); past
    RFM_COUNTING_MAX_VALUE, and as floats, by selection: all three agree with the reference."""
    ints = np.array(values, dtype=np.int64) + (k_rfm.RFM_COUNTING_MAX_VALUE if big else 0)
    expected = scores_reference(ints.tolist(), higher)
    assert k_rfm.quintile_scores(ints, higher).tolist() == expected
    assert k_rfm.quintile_scores(ints.astype(np.float64), higher).tolist() == expected
