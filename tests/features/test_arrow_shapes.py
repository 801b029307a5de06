"""rfm(), profile(), training_set() and RFMState over Arrow data shapes never seen before.

The strategy below is written in the style of pyarrow's own test strategies
(apache/arrow python/pyarrow/tests/strategies.py: ``integer_types`` int8..uint64,
``decimal_type``, ``timestamp_types`` of every unit with time zones, ``date_types``,
``string_type`` / ``large_string_type``, ``chunked_arrays`` with empty chunks, ``record_batches``),
extended with what that file leaves out and users hand us: dictionary ids (several index types,
string and integer values, unused entries), string_view, uint64 ids above 2**63, slices with an
offset into a parent holding other rows (nulls included), columns chunked differently from each
other, record batches, streams with empty batches, duplicate rows, one row.

Every value is compared with plain references that share no code with fastengage: the
Python-object references of tests/naive.py / tests/naive_profile.py fed from the rows as drawn
(ids, microseconds and amounts computed here with Python ints and ``fractions``), and pandas
computing the same aggregations from ``Table.to_pandas()`` the way a user would by hand.

Documented differences kept as such (see the comments where they are asserted):

* decimal amounts are converted to the nearest float64 before they are summed (exactly, as any
  amount is), so ``Decimal("1.10") + Decimal("0.30")`` gives the float64 nearest to
  float(1.1) + float(0.3) (1.4000000000000001), not 1.4; pandas' Decimal sum gives 1.40.
"""
from __future__ import annotations

import datetime as dt
import json
import math
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastengage as fe
from naive import exact_total, rfm_reference, scores_reference
from naive_profile import naive_labels, naive_profile

DAY_US = 86_400_000_000
TIME_MIN_US = -62_135_596_800_000_000  # 0001-01-01, README "Streaming and incremental features"
TIME_MAX_US = 253_402_300_799_999_999  # 9999-12-31T23:59:59.999999
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
KW = dict(customer="cust", time="ts", amount="amt")

# -- the types (pyarrow strategies.py: integer_types, string types, plus dictionary/view) -------
INT_ID_POOLS = {  # each type's extreme values, and ordinary ones
    pa.int8(): [-128, 127, 0, -1, 5], pa.int16(): [-32768, 32767, 3, -7],
    pa.int32(): [-2**31, 2**31 - 1, 12, 13], pa.int64(): [-2**63, 2**63 - 1, 0, 42, 43],
    pa.uint8(): [0, 255, 7, 8], pa.uint16(): [0, 65535, 9], pa.uint32(): [0, 2**32 - 1, 77],
    pa.uint64(): [0, 1, 2**63 - 1, 2**63, 2**64 - 1, 2**63 + 5],
}
# "" and a NUL inside an id, non-ASCII, ids past the 15 bytes of the packed short-string path
STRING_POOL = ["", "a", "a\x00", "b", "Z", "é", "日本", "long-customer-id-0001", "long-customer-id-0002"]
STRING_TYPES = [pa.string(), pa.large_string(), pa.string_view()]
DICT_TYPES = [pa.dictionary(pa.int8(), pa.string()), pa.dictionary(pa.int16(), pa.large_string()),
              pa.dictionary(pa.int32(), pa.int64()), pa.dictionary(pa.uint8(), pa.string()),
              pa.dictionary(pa.int64(), pa.uint64()),
              pa.dictionary(pa.uint32(), pa.string_view())]  # polars' Categorical
ID_TYPES = [*INT_ID_POOLS, *STRING_TYPES, *DICT_TYPES]
TIME_ZONES = [None, "UTC", "America/New_York", "Asia/Kathmandu", "-03:30"]
US_PER = {"s": (10**6, 1), "ms": (10**3, 1), "us": (1, 1), "ns": (1, 1000)}  # num/den


def _pool(typ):
    value_type = typ.value_type if pa.types.is_dictionary(typ) else typ
    return STRING_POOL if pa.types.is_string(value_type) or pa.types.is_large_string(
        value_type) or pa.types.is_string_view(value_type) else INT_ID_POOLS[value_type]


def _id_array(values, typ, junk=()):
    """``values`` as ``typ``; a dictionary also holds ``junk`` entries no row uses."""
    if not pa.types.is_dictionary(typ):
        return pa.array(values, typ)
    dictionary = list(dict.fromkeys([*junk, *values]))
    position = {v: i for i, v in enumerate(dictionary)}
    return pa.DictionaryArray.from_arrays(
        pa.array([position[v] for v in values], typ.index_type),
        pa.array(dictionary, typ.value_type))


@st.composite
def id_columns(draw, n, max_ids=5):
    """(type, Python values) of an id column of ``n`` rows drawn from a few distinct ids."""
    typ = draw(st.sampled_from(ID_TYPES))
    pool = _pool(typ)
    if pa.types.is_dictionary(typ) and pa.types.is_int8(typ.index_type):
        pool = pool[:5]  # room for the junk entries within int8's indices
    ids = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=max_ids, unique=True))
    return typ, [ids[draw(st.integers(0, len(ids) - 1))] for _ in range(n)]


@st.composite
def time_columns(draw, n):
    """(type, raw values, microseconds UTC): every timestamp unit and zone, date32, date64;
    around 2020, just before 1970 (floor, not truncation) and near 0001-01-01 / 9999-12-31."""
    kind = draw(st.sampled_from(["s", "ms", "us", "ns", "date32", "date64"]))
    base_days = [18_300, -3] + ([-719_162, 2_932_800] if kind != "ns" else [])
    base = draw(st.sampled_from(base_days))
    days = draw(st.lists(st.integers(0, 60), min_size=n, max_size=n))
    if kind in ("date32", "date64"):
        raw = [base + d for d in days]
        us = [r * DAY_US for r in raw]
        if kind == "date64":
            raw = [r * 86_400_000 for r in raw]
        return (pa.date32() if kind == "date32" else pa.date64()), raw, us
    per_day = 86_400 * 10**6 * US_PER[kind][1] // US_PER[kind][0]
    within = draw(st.lists(st.integers(0, per_day - 1), min_size=n, max_size=n))
    raw = [(base + d) * per_day + w for d, w in zip(days, within)]
    num, den = US_PER[kind]
    us = [r * num // den for r in raw]  # Python ints: exact floor
    return pa.timestamp(kind, tz=draw(st.sampled_from(TIME_ZONES))), raw, us


AMOUNT_KINDS = ["float64", "float32", "float16", "int8", "int32", "int64", "uint16",
                "decimal128", "decimal256", "dict"]


@st.composite
def amount_columns(draw, n):
    """(arrow array, Python float each row stands for): cents in every numeric type."""
    kind = draw(st.sampled_from(AMOUNT_KINDS))
    low = 0 if kind.startswith("uint") else -5_000
    cents = draw(st.lists(st.integers(low, 90_000), min_size=n, max_size=n))
    if kind in ("float64", "dict"):
        values = [c / 100 for c in cents]
        array = pa.array(values, pa.float64())
        return (array.dictionary_encode() if kind == "dict" else array), values
    if kind in ("float32", "float16"):
        dtype = np.float32 if kind == "float32" else np.float16
        stored = np.array([c / 100 for c in cents], dtype)
        return pa.array(stored), [float(v) for v in stored]
    if kind.startswith("decimal"):
        scale = draw(st.integers(0, 4))
        values = [Decimal(c).scaleb(-2).quantize(Decimal(1).scaleb(-scale)) for c in cents]
        typ = (pa.decimal128 if kind == "decimal128" else pa.decimal256)(18, scale)
        # documented: a decimal is taken as the float64 nearest to it, then summed exactly
        return pa.array(values, typ), [float(Fraction(v)) for v in values]
    whole = [c // 100 for c in cents]
    if kind == "int8":
        whole = [max(-128, min(127, w)) for w in whole]
    return pa.array(whole, getattr(pa, kind)()), [float(w) for w in whole]


@st.composite
def logs(draw, min_rows=1, max_rows=30):
    """Rows as Python values (the reference's input) and the Arrow columns built from them."""
    n = draw(st.integers(min_rows, max_rows))
    cust_type, cust = draw(id_columns(n))
    time_type, time_raw, time_us = draw(time_columns(n))
    amount_array, amounts = draw(amount_columns(n))
    order_type, orders = draw(id_columns(n, max_ids=4))
    chan_type, channels = draw(id_columns(n, max_ids=3))
    if draw(st.booleans()) and n > 1:  # duplicate rows: the same row again, every column
        src, dst = draw(st.integers(0, n - 1)), draw(st.integers(0, n - 1))
        for values in (cust, time_raw, time_us, amounts, orders, channels):
            values[dst] = values[src]
        amount_array = pa.array(amount_array.to_pylist()[:dst] + [amount_array[src].as_py()]
                                + amount_array.to_pylist()[dst + 1:], amount_array.type)
    columns = {"cust": (cust_type, cust), "ts": (time_type, time_raw), "amt": amount_array,
               "ord": (order_type, orders), "chan": (chan_type, channels)}
    return dict(n=n, columns=columns, cust=cust, us=time_us, amounts=amounts, orders=orders,
                channels=channels)


def _column(spec, lo=0, hi=None, junk_rows=0, junk_nulls=False):
    """One column's array for rows lo..hi, with ``junk_rows`` other rows around it (nulls among
    them with ``junk_nulls``) when the caller slices them away again."""
    if isinstance(spec, pa.Array):  # the amount column, built once for all rows
        part = spec.slice(lo, None if hi is None else hi - lo)
        if not junk_rows:
            return part
        pad = pa.array([None] * junk_rows, spec.type) if junk_nulls else \
            pa.concat_arrays([spec.slice(0, 1)] * junk_rows)
        return pa.concat_arrays([pad, part, pad])
    typ, values = spec
    values = values[lo:hi]
    if not junk_rows:
        return _id_array(values, typ) if not _is_time(typ) else pa.array(values, typ)
    filler = [None if junk_nulls else (values[0] if values else None)] * junk_rows
    if _is_time(typ):
        return pa.array(filler + values + filler, typ)
    if pa.types.is_dictionary(typ):
        junk = [v for v in _pool(typ) if v not in values][:2]
        padded = _id_array([values[0] if values else _pool(typ)[0]] * (2 * junk_rows) + values, typ, junk)
        indices = padded.indices.to_pylist()
        indices = indices[:junk_rows] + indices[2 * junk_rows:] + indices[junk_rows:2 * junk_rows]
        mask = [junk_nulls] * junk_rows + [False] * len(values) + [junk_nulls] * junk_rows
        return pa.DictionaryArray.from_arrays(pa.array(indices, typ.index_type, mask=np.array(mask)),
                                              padded.dictionary)
    return pa.array(filler + values + filler, typ)


def _is_time(typ):
    return pa.types.is_timestamp(typ) or pa.types.is_date(typ)


LAYOUTS = ["table", "chunks", "ragged", "sliced", "batch", "reader"]


@st.composite
def arrow_inputs(draw, log):
    """The log in one of the layouts users hand us, and the list of its batches (for RFMState)."""
    layout = draw(st.sampled_from(LAYOUTS))
    names = list(log["columns"])
    n = log["n"]
    whole = pa.table({name: _column(log["columns"][name]) for name in names})
    if layout == "table":
        return layout, whole, whole.to_batches() or []
    cuts = sorted(draw(st.lists(st.integers(0, n), max_size=4)))  # repeated cuts: empty chunks
    bounds = list(zip([0, *cuts], [*cuts, n]))
    if layout == "chunks":  # every column cut at the same rows, empty chunks included
        batches = [pa.record_batch([_column(log["columns"][c], lo, hi) for c in names], names=names)
                   for lo, hi in bounds]
        return layout, pa.Table.from_batches(batches), batches
    if layout == "ragged":  # each column chunked its own way
        arrays = {}
        for name in names:
            own = sorted(draw(st.lists(st.integers(0, n), max_size=3)))
            arrays[name] = pa.chunked_array(
                [_column(log["columns"][name], lo, hi) for lo, hi in zip([0, *own], [*own, n])],
                whole.schema.field(name).type)
        table = pa.table(arrays)
        return layout, table, table.to_batches()
    if layout in ("sliced", "batch"):  # offsets into a parent whose other rows hold anything
        junk = draw(st.integers(1, 3))
        nulls = draw(st.booleans())
        parent = pa.table({c: _column(log["columns"][c], junk_rows=junk, junk_nulls=nulls)
                           for c in names})
        view = parent.slice(junk, n)
        if layout == "batch":
            view = view.combine_chunks().to_batches()[0] if view.num_rows else \
                pa.RecordBatch.from_pylist([], schema=view.schema)
            return layout, view, [view]
        return layout, view, view.to_batches()
    batches = [pa.record_batch([_column(log["columns"][c], lo, hi) for c in names], names=names)
               for lo, hi in bounds]
    return layout, pa.RecordBatchReader.from_batches(batches[0].schema, batches), batches


# -- references --------------------------------------------------------------------------------
SEGMENT_GRID = [  # segments.py's documented grid: (segment, r values, fm values)
    ("Champions", {5}, {4, 5}), ("Loyal", {3, 4}, {4, 5}), ("Potential Loyalists", {4, 5}, {2, 3}),
    ("New Customers", {5}, {1}), ("Promising", {4}, {1}), ("Need Attention", {3}, {3}),
    ("About To Sleep", {3}, {1, 2}), ("Can't Lose Them", {1, 2}, {5}), ("At Risk", {1, 2}, {3, 4}),
    ("Lost", {1}, {1}), ("Hibernating", {1, 2}, {1, 2}),
]


def naive_segment(r, f, m):
    fm = math.ceil((f + m) / 2)
    return next(name for name, rs, fms in SEGMENT_GRID if r in rs and fm in fms)


def _decoded(column):
    """A dictionary column's values (Arrow has no take kernel for string_view dictionaries)."""
    if isinstance(column, pa.ChunkedArray):  # chunk by chunk: their dictionaries may differ
        return pa.chunked_array([_decoded(chunk) for chunk in column.chunks],
                                _decoded(column.chunks[0]).type if column.num_chunks else None)
    if not pa.types.is_dictionary(column.type):
        return column
    dictionary = column.dictionary
    if pa.types.is_string_view(dictionary.type):
        dictionary = dictionary.cast(pa.large_string())
    return pa.DictionaryArray.from_arrays(column.indices, dictionary).dictionary_decode()


def _plain_ids(column):
    if isinstance(column, pa.ChunkedArray):  # chunk by chunk: their dictionaries may differ
        return [v for chunk in column.chunks for v in _plain_ids(chunk)]
    return _decoded(column).to_pylist()


def _us(value: dt.datetime) -> int:
    delta = value - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 10**6 + delta.microseconds


def check_rfm(result, log, as_of_us, with_order, returns="net", scores=True):
    """Every value of ``result`` against tests/naive.py on the drawn rows."""
    expected = rfm_reference(log["cust"], log["us"], log["amounts"],
                             log["orders"] if with_order else None, as_of_us, returns)
    assert result.schema.field(0).type == log["columns"]["cust"][0]
    ids = _plain_ids(result.column(0))
    assert ids == sorted(expected)  # sorted by the id's value (uint64 as unsigned, str by bytes)
    rows = result.to_pylist()
    for cid, row in zip(ids, rows):
        want = expected[cid]
        assert _us(row["first_purchase"]) == want["first_purchase"]
        assert _us(row["last_purchase"]) == want["last_purchase"]
        for key in ("recency_days", "tenure_days", "frequency", "purchase_days",
                    "monetary_total", "monetary_mean"):
            assert row[key] == want[key], (cid, key, row[key], want[key])
    if not rows or not scores:
        return
    r = scores_reference([row["recency_days"] for row in rows], higher_is_better=False)
    f = scores_reference([row["frequency"] for row in rows], higher_is_better=True)
    m = scores_reference([row["monetary_total"] for row in rows], higher_is_better=True)
    assert [row["r_score"] for row in rows] == r
    assert [row["f_score"] for row in rows] == f
    assert [row["m_score"] for row in rows] == m
    assert [row["segment"] for row in rows] == [naive_segment(*s) for s in zip(r, f, m)]


def check_against_pandas(result, table, as_of_us, with_order):
    """What a user computes by hand in pandas from ``Table.to_pandas()`` (returns netted)."""
    table = pa.table({name: _decoded(column) if column.num_chunks else column
                      for name, column in zip(table.column_names, table.columns)})
    ts_type = table.schema.field("ts").type
    if pa.types.is_timestamp(ts_type) and ts_type.tz is not None and pc.min(
            pc.cast(table["ts"], pa.timestamp("us"), safe=False).cast(pa.int64())).as_py() < -(2**63 // 1000):
        # pandas cannot place times near 0001-01-01 in a zone: the same instants, naive UTC
        table = table.set_column(table.schema.get_field_index("ts"), "ts",
                                 table["ts"].cast(pa.timestamp(ts_type.unit)))
    df = table.to_pandas()
    ts = df["ts"]
    if isinstance(ts.dtype, pd.DatetimeTZDtype):
        ts = ts.dt.tz_convert("UTC").dt.tz_localize(None)
    if ts.dtype == object:  # date32 / far times: Python dates and datetimes
        ts = ts.map(lambda v: _us(dt.datetime.combine(v, dt.time(), dt.timezone.utc))
                    if type(v) is dt.date else _us(v.replace(tzinfo=dt.timezone.utc) if v.tzinfo is None else v))
    else:
        ts = ts.astype("datetime64[us]").astype("int64")
    df["us"] = ts
    df["amt"] = df["amt"].map(float)  # pandas keeps decimals as Decimal objects
    df = df[df["us"] <= as_of_us]
    buys = df[df["amt"] >= 0]
    if buys.empty:
        assert result.num_rows == 0
        return
    got = {cid: row for cid, row in zip(_plain_ids(result.column(0)), result.to_pylist())}
    grouped = buys.groupby("cust", sort=True)
    first, last = grouped["us"].min(), grouped["us"].max()
    frequency = grouped["ord"].nunique() if with_order else grouped.size()
    days = buys.assign(day=buys["us"] // DAY_US).groupby("cust")["day"].nunique()
    total = df[df["cust"].isin(first.index)].groupby("cust")["amt"].sum()
    assert sorted(got) == sorted(first.index)
    for cid in first.index:
        row = got[cid]
        assert _us(row["first_purchase"]) == first[cid]
        assert _us(row["last_purchase"]) == last[cid]
        assert row["frequency"] == frequency[cid]
        assert row["purchase_days"] == days[cid]
        assert row["recency_days"] == (as_of_us - last[cid]) // DAY_US
        # pandas sums floats in row order; ours is the exact sum correctly rounded (README)
        assert row["monetary_total"] == pytest.approx(total[cid], rel=1e-12, abs=1e-9)


SETTINGS = settings(max_examples=80, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _report(table):
    return json.loads(table.schema.metadata[b"fastengage"])


# -- the property tests ------------------------------------------------------------------------
@SETTINGS
@given(log=logs(), data=st.data(), with_order=st.booleans(), cut=st.one_of(st.none(), st.integers(0, 70)))
def test_rfm_over_arrow_shapes_equals_the_references(log, data, with_order, cut):
    layout, data_in, _ = data.draw(arrow_inputs(log))
    as_of_us = None if cut is None else min(log["us"]) + cut * DAY_US - 1
    expected = rfm_reference(log["cust"], log["us"], log["amounts"],
                             log["orders"] if with_order else None, as_of_us)
    kwargs = dict(KW, order="ord" if with_order else None)
    if as_of_us is not None:
        kwargs["as_of"] = np.datetime64(as_of_us, "us")
        if not TIME_MIN_US <= as_of_us <= TIME_MAX_US:  # before 0001-01-01 or after 9999-12-31
            with pytest.raises(fe.InputError, match="as_of=.* is outside the supported range"):
                fe.rfm(data_in, **kwargs)
            return
    result = fe.rfm(data_in, **kwargs)
    check_rfm(result, log, as_of_us, with_order)
    report = _report(result)
    assert report["rows_read"] == log["n"]
    limit = max(log["us"]) if as_of_us is None else as_of_us
    assert report["rows_after_as_of"] == sum(t > limit for t in log["us"])
    assert report["customers"] == len(expected)
    if layout != "reader":
        check_against_pandas(result, data_in if isinstance(data_in, pa.Table)
                             else pa.Table.from_batches([data_in]), limit, with_order)


@SETTINGS
@given(log=logs(), data=st.data(), with_order=st.booleans(), returns=st.sampled_from(["net", "exclude"]),
       windows=st.sampled_from([(30, 90, 365), (1, 7)]))
def test_profile_over_arrow_shapes_equals_the_reference(log, data, with_order, returns, windows):
    _, data_in, _ = data.draw(arrow_inputs(log))
    order = "ord" if with_order else None
    out = fe.profile(data_in, **KW, order=order, channel="chan", windows=windows, returns=returns)
    want = naive_profile(log["cust"], log["us"], log["amounts"],
                         orders=log["orders"] if with_order else None, channels=log["channels"],
                         windows=windows, returns=returns)
    assert out.schema.field(0).type == log["columns"]["cust"][0]
    assert out.schema.field("last_channel").type == log["columns"]["chan"][0]
    ids = _plain_ids(out.column(0))
    assert ids == sorted(want)
    rows = out.to_pylist()
    for cid, row in zip(ids, rows):
        ref = want[cid]
        row = {k: v for k, v in row.items() if k != "cust"}
        assert list(row) == list(ref), (list(row), list(ref))
        for name, value in ref.items():
            mine = row[name]
            if name in ("first_purchase", "last_purchase"):
                mine = _us(mine)
            if value is None or mine is None:
                assert value is None and mine is None, (cid, name, mine, value)
            elif isinstance(value, float):
                assert mine == pytest.approx(value, rel=1e-12, abs=1e-12), (cid, name, mine, value)
            else:
                assert mine == value, (cid, name, mine, value)
    # profile's RFM columns are rfm()'s, to the bit (README)
    if isinstance(data_in, pa.RecordBatchReader):
        return
    rfm_part = ["cust", "first_purchase", "last_purchase", "recency_days", "tenure_days",
                "frequency", "purchase_days", "monetary_total", "monetary_mean"]
    ref = fe.rfm(data_in, **KW, order=order, returns=returns)
    assert out.select(rfm_part).equals(ref.select(rfm_part))


@SETTINGS
@given(log=logs(min_rows=2), data=st.data(), with_order=st.booleans())
def test_rfm_state_over_arrow_shapes_equals_rfm(log, data, with_order, tmp_path_factory):
    layout, data_in, batches = data.draw(arrow_inputs(log))
    kwargs = dict(KW, order="ord" if with_order else None)
    state = fe.RFMState(**kwargs)
    for batch in batches:  # empty batches included
        state.update(batch)
    got = state.to_table()
    check_rfm(got, log, None, with_order)
    path = tmp_path_factory.mktemp("state") / "s.fe"
    state.save(path)
    loaded = fe.RFMState.load(path).to_table()
    assert loaded.equals(got)  # the customer column's type (dictionary, string_view) included
    if layout != "reader":
        whole = fe.rfm(data_in, **kwargs)
        assert got.replace_schema_metadata(None).equals(whole.replace_schema_metadata(None))


@SETTINGS
@given(log=logs(min_rows=2), data=st.data(), cut_day=st.integers(0, 60), horizon=st.integers(1, 30),
       label=st.sampled_from(["churn", "purchases", "spend"]))
def test_training_set_over_arrow_shapes(log, data, cut_day, horizon, label):
    _, data_in, _ = data.draw(arrow_inputs(log))
    if isinstance(data_in, pa.RecordBatchReader):
        data_in = data_in.read_all()
    cut = min(log["us"]) + cut_day * DAY_US - 1
    if cut_day == 0:  # a cut-off before every event is refused, not an empty set
        message = "outside the supported range" if cut < TIME_MIN_US else \
            "no events on or before cutoff"
        with pytest.raises(fe.InputError, match=message):
            fe.training_set(data_in, **KW, order="ord", cutoffs=[np.datetime64(cut, "us")],
                            horizon=horizon, label=label, require_full_horizon=False)
        return
    if cut > TIME_MAX_US:  # a cut-off after 9999-12-31 (events near the end of the range)
        with pytest.raises(fe.InputError, match="outside the supported range"):
            fe.training_set(data_in, **KW, order="ord", cutoffs=[np.datetime64(cut, "us")],
                            horizon=horizon, label=label, require_full_horizon=False)
        return
    out = fe.training_set(data_in, **KW, order="ord", cutoffs=[np.datetime64(cut, "us")],
                          horizon=horizon, label=label, require_full_horizon=False)
    past = [i for i, t in enumerate(log["us"]) if t <= cut]
    sub = {k: [log[k][i] for i in past] for k in ("cust", "us", "amounts", "orders", "channels")}
    sub.update(n=len(past), columns={"cust": log["columns"]["cust"]})
    features = out.drop_columns(["cutoff", out.column_names[-1]])
    check_rfm(features, sub, cut, with_order=True)
    ref = naive_labels(log["cust"], log["us"], log["amounts"], cutoff=cut, horizon_days=horizon,
                       orders=log["orders"])
    k = {"churn": 0, "spend": 1, "purchases": 2}[label]
    got = out.column(out.column_names[-1]).to_pylist()
    want = [ref.get(c, (True, 0.0, 0))[k] for c in _plain_ids(out.column("cust"))]
    if label == "spend":  # the window's amounts; exact sum, correctly rounded
        want = [exact_total([a for c2, t, a in zip(log["cust"], log["us"], log["amounts"])
                             if c2 == c and cut < t <= cut + horizon * DAY_US])
                for c in _plain_ids(out.column("cust"))]
        assert got == pytest.approx(want, rel=1e-12, abs=1e-12)
    else:
        assert got == want


# -- nulls in each column ----------------------------------------------------------------------
@SETTINGS
@given(log=logs(min_rows=2), column=st.sampled_from(["cust", "ts", "amt", "ord", "chan"]),
       data=st.data(), drop=st.booleans(), entry=st.sampled_from(["rfm", "profile", "state"]))
def test_nulls_in_any_column_are_named_or_dropped_and_counted(log, column, data, drop, entry):
    n = log["n"]
    mask = data.draw(st.lists(st.booleans(), min_size=n, max_size=n).filter(any))
    names = list(log["columns"])
    arrays = {name: _column(log["columns"][name]) for name in names}
    arr = arrays[column]
    if pa.types.is_dictionary(arr.type):
        nulled = pa.DictionaryArray.from_arrays(
            pa.array(arr.indices.to_pylist(), arr.indices.type, mask=np.array(mask)), arr.dictionary)
    else:  # from the raw values: times near 0001-01-01 have no Python datetime in every zone
        spec = log["columns"][column]
        raw = spec.to_pylist() if isinstance(spec, pa.Array) else spec[1]
        nulled = pa.array([None if m else v for v, m in zip(raw, mask)], arr.type)
    arrays[column] = nulled
    table = pa.table(arrays)
    kwargs = dict(KW, order="ord", drop_null_customers=drop)
    run = {"rfm": lambda: fe.rfm(table, **kwargs),
           "profile": lambda: fe.profile(table, **kwargs, channel="chan"),
           "state": lambda: fe.RFMState(**kwargs).update(table).to_table()}[entry]
    if column == "chan" and entry != "profile":
        run()  # a column the call does not read may hold anything
        return
    if column == "cust" and drop:
        kept = [i for i in range(n) if not mask[i]]
        if not kept:
            # a state keeps the rows it dropped counted, and has no events to build a table from
            message = "holds no events yet" if entry == "state" else \
                "no rows left after dropping null customer ids"
            with pytest.raises(fe.InputError, match=message):
                run()
            return
        result = run()
        sub = {k: [log[k][i] for i in kept] for k in ("cust", "us", "amounts", "orders")}
        sub.update(n=len(kept), columns=log["columns"])
        as_of = max(log["us"][i] for i in kept)  # the latest time of the rows that count
        check_rfm(result, sub, as_of, True, scores=entry != "profile")
        assert _report(result)["null_customer_rows_dropped"] == sum(mask)
        assert _report(result)["rows_read"] == n
        return
    role = {"cust": "customer", "ts": "time", "amt": "amount", "ord": "order", "chan": "channel"}[column]
    with pytest.raises(fe.InputError, match=rf"{role} column '{column}' has {sum(mask)} null"):
        run()


# -- the shapes found wrong by the tests above, one regression test each ----------------------
def _small(**columns):
    base = {"cust": [1, 2, 1], "ts": pa.array([0, 86_400, 172_800], pa.timestamp("s")),
            "amt": [1.0, 2.0, 3.0]}
    base.update(columns)
    return pa.table(base)


def test_chunks_whose_dictionaries_outgrow_the_index_type():
    """Three int8-indexed chunks with 100 ids each: the union (300) does not fit int8. Was
    "cannot read the input table: ... requires a larger index type" (rfm, profile) and a raw
    ArrowInvalid from RFMState.to_table; now the ids come out dictionary-encoded with the
    narrowest index type that holds them, the same from every entry point."""
    chunks = [pa.DictionaryArray.from_arrays(pa.array(np.arange(100), pa.int8()),
                                             pa.array([f"id{k}-{i:03d}" for i in range(100)]))
              for k in range(3)]
    ids = pa.chunked_array(chunks)
    table = pa.table({"cust": ids, "ts": pa.array(np.arange(300) * 3600, pa.timestamp("s")),
                      "amt": np.ones(300)})
    wide = pa.dictionary(pa.int16(), pa.string())
    got = fe.rfm(table, **KW)
    assert got.schema.field("cust").type == wide and got.num_rows == 300
    assert _plain_ids(got["cust"]) == sorted(_plain_ids(ids))
    assert fe.profile(table, **KW).schema.field("cust").type == wide
    state = fe.RFMState(**KW)
    for batch in table.to_batches():
        state.update(batch)
    assert state.to_table().equals(got)
    # time and amount columns chunked the same way (training_set combined them: the same error);
    # two cut-offs with 60 and 289 customers: int8 and int16 parts are stacked as int16
    def chunked(values):
        return pa.chunked_array([pa.DictionaryArray.from_arrays(
            pa.array(np.arange(100), pa.int8()), values[100 * k:100 * (k + 1)]) for k in range(3)])
    table = pa.table({"cust": ids, "ts": chunked(pa.array(np.arange(300) * 3600, pa.timestamp("s"))),
                      "amt": chunked(pa.array(np.arange(300) * 0.5))})
    assert fe.rfm(table, **KW)["monetary_total"].to_pylist()[:2] == [0.0, 0.5]
    out = fe.training_set(table, **KW, cutoffs=["1970-01-03T11:00", "1970-01-13"], horizon=1,
                          require_full_horizon=False)
    assert out.schema.field("cust").type == wide and out.num_rows == 60 + 289


@pytest.mark.parametrize("typ", [pa.dictionary(pa.int8(), pa.string()), pa.string_view(),
                                 pa.dictionary(pa.int32(), pa.uint64())])
def test_saved_state_keeps_the_customer_type(typ, tmp_path):
    """RFMState.save wrote the ids in their value type: a loaded state's table had plain
    string / int64 / large_string ids where the live one had dictionary / string_view ids."""
    values = [2**64 - 1, 2**63, 2**64 - 1] if pa.types.is_dictionary(typ) and \
        pa.types.is_uint64(typ.value_type) else ["x", "y", "x"]
    table = _small(cust=_id_array(values, typ))
    state = fe.RFMState(**KW).update(table)
    state.save(tmp_path / "s.fe")
    loaded = fe.RFMState.load(tmp_path / "s.fe")
    assert loaded.to_table().equals(state.to_table())
    assert loaded.to_table().schema.field("cust").type == typ
    loaded.update(table)  # and it goes on accepting the same input
    assert loaded.to_table()["frequency"].to_pylist() == ([4, 2] if values[0] == "x" else [2, 4])


@pytest.mark.parametrize("typ", [pa.decimal128(18, 2), pa.decimal128(38, 10), pa.decimal256(40, 4),
                                 pa.decimal32(9, 2), pa.decimal64(18, 2)])
def test_decimal_amounts_are_the_nearest_float64(typ):
    """Arrow's decimal -> float64 cast multiplies by a rounded 10**-scale: Decimal("0.47") became
    0.47000000000000003 (an eighth of a decimal(18, 4) column was off by an ulp), so a customer
    with one 0.47 purchase had monetary_total 0.47000000000000003. Each decimal is now the
    float64 nearest to it (pandas: float(Decimal)), then summed exactly as any amount."""
    values = [Decimal("0.47"), Decimal("2.20"), Decimal("-0.30")]
    table = _small(amt=pa.array(values, typ))
    got = fe.rfm(table, **KW)
    assert got["monetary_total"].to_pylist() == [exact_total([0.47, -0.30]), 2.2]
    assert got["monetary_total"].to_pylist()[0] == 0.47 + -0.30  # one exact-enough float add
    wide = pa.array([Decimal("123456789012.3456789012")] * 2, pa.decimal128(38, 10))  # > 2**53 units
    out = fe.rfm(_small(amt=pa.concat_arrays([wide, pa.array([Decimal(1)], pa.decimal128(38, 10))])), **KW)
    assert out["monetary_total"].to_pylist()[1] == float(Decimal("123456789012.3456789012"))


def test_integer_amounts_past_2_53_are_the_nearest_float64():
    """README: amounts need |amount| < 2**63. An int64 amount past 2**53 was refused by Arrow's
    safe cast ("Integer value 9007199254740993 not in range"); it is now the nearest float64,
    and 2**63 (int64 max rounds to it, uint64) is refused naming the row and the customer."""
    amounts = pa.array([2**53 + 1, 2**62, 3], pa.int64())
    got = fe.rfm(_small(amt=amounts), **KW)["monetary_total"].to_pylist()
    assert got == [exact_total([float(2**53 + 1), 3.0]), float(2**62)] == [2.0**53 + 4, 2.0**62]
    for big in (pa.array([1, 2**63, 2], pa.uint64()), pa.array([1, 2**63 - 1, 2], pa.int64())):
        with pytest.raises(fe.InputError, match=r"amount column 'amt' has the value 9.22\d+e\+18 "
                                                r"\(\|amount\| must be < 9.223e\+18\) \(first at row 1, "
                                                r"customer 2\)"):
            fe.rfm(_small(amt=big), **KW)


def test_decimal_sums_are_of_the_nearest_floats_not_of_the_decimals():
    """Documented difference from pandas' Decimal sum: amounts are float64 (the nearest), so
    1.10 + 0.30 is the correctly rounded sum of those floats, 1.4000000000000001, not 1.40."""
    table = _small(amt=pa.array([Decimal("1.10"), Decimal("2.20"), Decimal("0.30")],
                                pa.decimal128(10, 2)))
    got = fe.rfm(table, **KW)["monetary_total"].to_pylist()
    assert got == [exact_total([1.1, 0.3]), 2.2] == [1.4000000000000001, 2.2]
    assert float(table.to_pandas().groupby("cust")["amt"].sum()[1]) == 1.4


@pytest.mark.parametrize("typ", [pa.string_view(), pa.dictionary(pa.int8(), pa.string()),
                                 pa.dictionary(pa.int16(), pa.int64())])
def test_profile_last_channel_keeps_the_channel_type(typ):
    """README: last_channel has the channel's type; string_view came out large_string and
    dictionary channels as their value type."""
    values = ["web", "app", "web"] if not pa.types.is_dictionary(typ) or pa.types.is_string(
        typ.value_type) else [7, 9, 7]
    out = fe.profile(_small(chan=_id_array(values, typ)), **KW, channel="chan")
    assert out.schema.field("last_channel").type == typ
    assert _plain_ids(out["last_channel"]) == [values[2], values[1]]


def test_unused_dictionary_entries_are_not_channels_or_ids():
    """A dictionary entry no row uses made profile() add channel_<entry>_*_share columns (and
    counted towards the 64 channels), and an unused null entry raised "has 1 null value"."""
    chan = pa.DictionaryArray.from_arrays(pa.array([0, 1, 0], pa.int8()),
                                          pa.array(["web", "app", "unused", None]))
    cust = pa.DictionaryArray.from_arrays(pa.array([1, 2, 1], pa.int8()),
                                          pa.array([None, "b", "a", "never"]))
    out = fe.profile(_small(cust=cust, chan=chan), **KW, channel="chan")
    assert [n for n in out.column_names if n.startswith("channel_")] == [
        "channel_app_order_share", "channel_web_order_share",
        "channel_app_spend_share", "channel_web_spend_share"]
    assert _plain_ids(out["cust"]) == ["a", "b"]
    report = _report(fe.rfm(_small(cust=cust), **KW))
    assert report["customers"] == 2 and report["customers_without_purchase"] == 0


@pytest.mark.parametrize("entry", ["rfm", "profile", "state", "training_set"])
def test_string_view_columns_with_dropped_nulls_and_cutoffs(entry):
    """Arrow has no filter/take kernel for string_view: dropping null customers (rfm, profile,
    RFMState) and cutting rows at a cut-off (training_set) raised ArrowNotImplementedError."""
    table = _small(cust=pa.array(["b", None, "a"], pa.string_view()),
                   ord=pa.array(["o1", "o2", "o3"], pa.string_view()))
    kw = dict(KW, order="ord", drop_null_customers=True)
    if entry == "training_set":
        out = fe.training_set(table, **kw, cutoffs=["1970-01-02"], horizon=1,
                              require_full_horizon=False)
        assert out.schema.field("cust").type == pa.string_view()
        assert out["cust"].to_pylist() == ["b"] and out["churned"].to_pylist() == [True]
        return
    run = {"rfm": lambda: fe.rfm(table, **kw), "profile": lambda: fe.profile(table, **kw),
           "state": lambda: fe.RFMState(**kw).update(table).to_table()}[entry]
    out = run()
    assert out.schema.field("cust").type == pa.string_view()
    assert out["cust"].to_pylist() == ["a", "b"]
    assert _report(out)["null_customer_rows_dropped"] == 1


def test_training_set_orders_with_chunks_of_differing_dictionaries():
    """The purchases/churn label grouped the order column as given: Arrow's group-by raised
    "Unifying differing dictionaries" for chunks with their own dictionaries."""
    orders = pa.chunked_array([_id_array(["a", "b"], pa.dictionary(pa.uint8(), pa.string())),
                               _id_array(["c", "c"], pa.dictionary(pa.uint8(), pa.string()))])
    table = pa.table({"cust": [1, 1, 1, 2], "amt": [1.0] * 4, "ord": orders,
                      "ts": pa.array([0, 86_400, 2 * 86_400, 3 * 86_400], pa.timestamp("s"))})
    out = fe.training_set(table, **KW, order="ord", cutoffs=["1970-01-01"], horizon=5,
                          label="purchases", require_full_horizon=False)
    assert out.select(["cust", "purchases_in_horizon"]).to_pylist() == [
        {"cust": 1, "purchases_in_horizon": 2}]


def test_polars_strings_and_categoricals_everywhere():
    """polars exports strings as string_view and Categorical as dictionary<uint32, string_view>
    (unused entries included): rfm with null ids dropped and training_set raised
    ArrowNotImplementedError (no take kernel for string_view)."""
    pl = pytest.importorskip("polars")
    frame = pl.DataFrame({"cust": ["b", None, "a", "b"], "amt": [1.0, 2.0, 3.0, 4.0],
                          "ts": [dt.datetime(2024, 1, d) for d in (1, 2, 3, 4)],
                          "chan": ["web", "app", "web", "app"]})
    for cat in (False, True):
        data = frame.with_columns(pl.col("cust", "chan").cast(pl.Categorical)) if cat else frame
        got = fe.rfm(data, **KW, drop_null_customers=True)
        assert _plain_ids(got["cust"]) == ["a", "b"] and got["frequency"].to_pylist() == [1, 2]
        out = fe.training_set(data.drop_nulls(), **KW, cutoffs=["2024-01-02"], horizon=1,
                              features="profile", channel="chan")
        assert _plain_ids(out["cust"]) == ["b"] and out["churned"].to_pylist() == [True]
        assert out.schema.field("cust").type == pa.RecordBatchReader.from_stream(
            data).schema.field("cust").type


def test_as_of_outside_the_supported_times_is_an_input_error():
    """np.datetime64 a microsecond before 0001-01-01 (or after 9999-12-31) raised OverflowError
    from the report's ISO string; it is refused as as_of, like such a time in a column."""
    table = _small(ts=pa.array([-62_135_596_800, -62_135_596_800, 0], pa.timestamp("s")))
    for bad in (np.datetime64(-62_135_596_800_000_001, "us"), np.datetime64("10000-01-01")):
        with pytest.raises(fe.InputError, match="as_of=.* outside the supported range"):
            fe.rfm(table, **KW, as_of=bad)


def test_state_batches_of_other_integer_types():
    """RFMState fed int8 ids then int64 ids: 300 was folded in, then to_table raised a raw
    ArrowInvalid (the output has the first batch's type) and the state was lost; uint64 2**63
    after int64 -2**63 (the same 64 bits) silently became one customer. Ids that fit the first
    type are taken as it, the others are an InputError before anything is folded."""
    def batch(ids, typ):
        return pa.table({"cust": pa.array(ids, typ), "ts": pa.array([0] * len(ids), pa.timestamp("s")),
                         "amt": [1.0] * len(ids)})
    state = fe.RFMState(**KW).update(batch([1, 2], pa.int8())).update(batch([2, 5], pa.int64()))
    assert state.to_table()["cust"].to_pylist() == [1, 2, 5]
    assert state.to_table().schema.field("cust").type == pa.int8()
    with pytest.raises(fe.InputError, match=r"customer column 'cust' has the id 300 \(int64\), which "
                                            r"does not fit int8"):
        state.update(batch([300], pa.int64()))
    assert state.to_table()["frequency"].to_pylist() == [1, 2, 1]  # nothing of it folded
    signed = fe.RFMState(**KW).update(batch([-2**63], pa.int64()))
    with pytest.raises(fe.InputError, match="does not fit int64"):
        signed.update(batch([2**63], pa.uint64()))
    with pytest.raises(fe.InputError, match="does not fit uint64"):
        fe.RFMState(**KW).update(batch([2**63], pa.uint64())).merge(signed)


# -- shapes that were right: zero rows, one row, duplicates, huge ids -------------------------
@pytest.mark.parametrize("layout", ["table", "empty_chunks", "batch", "reader", "slice"])
@pytest.mark.parametrize("entry", ["rfm", "profile", "training_set"])
def test_zero_rows_in_every_layout_is_named_empty(layout, entry):
    table = _small()
    no_rows = pa.RecordBatch.from_pylist([], schema=table.schema)
    empty = {"table": table.slice(0, 0), "empty_chunks": pa.Table.from_batches([no_rows] * 3),
             "batch": no_rows, "reader": pa.RecordBatchReader.from_batches(table.schema, [no_rows]),
             "slice": table.slice(3)}[layout]
    run = {"rfm": fe.rfm, "profile": fe.profile,
           "training_set": lambda data, **kw: fe.training_set(data, **kw, cutoffs=["1970-01-02"])}
    with pytest.raises(fe.InputError, match="empty"):
        run[entry](empty, **KW)


def test_one_row_duplicates_and_uint64_ids_above_2_63_against_polars():
    """One row; the same row five times (frequency 5 rows, 1 order); uint64 ids on both sides of
    2**63 sorted as unsigned: against polars computing the same group-by by hand."""
    pl = pytest.importorskip("polars")
    one = _small().slice(1, 1)
    got = fe.rfm(one, **KW)
    assert got.select(["cust", "frequency", "monetary_total", "recency_days", "r_score"]).to_pylist() == [
        {"cust": 2, "frequency": 1, "monetary_total": 2.0, "recency_days": 0, "r_score": 1}]
    ids = pa.array([2**64 - 1, 2**63, 5, 2**63 - 1] + [2**63] * 5, pa.uint64())
    table = pa.table({"cust": ids, "ts": pa.array([86_400 * k for k in range(4)] + [7 * 86_400] * 5,
                                                  pa.timestamp("s", "Asia/Tokyo")),
                      "amt": [1.5, 2.5, 3.5, 4.5] + [0.1] * 5, "ord": [1, 2, 3, 4] + [9] * 5})
    for order, want_freq in ((None, 6), ("ord", 2)):
        got = fe.rfm(table, **KW, order=order)
        frame = pl.from_arrow(table).group_by("cust").agg(
            pl.col("ord").n_unique().alias("f") if order else pl.len().alias("f"),
            pl.col("amt").sum().alias("m"), pl.col("ts").max().alias("last")).sort("cust")
        assert got["cust"].to_pylist() == frame["cust"].to_list() == [5, 2**63 - 1, 2**63, 2**64 - 1]
        assert got["frequency"].to_pylist() == frame["f"].to_list()
        assert got["frequency"].to_pylist()[2] == want_freq
        assert got["monetary_total"].to_pylist() == pytest.approx(frame["m"].to_list(), rel=1e-15)
        assert got["monetary_total"].to_pylist()[2] == exact_total([2.5] + [0.1] * 5)
        last = [_us(v) for v in frame["last"].to_list()]
        assert [_us(v) for v in got["last_purchase"].to_pylist()] == last


def test_state_file_needing_a_newer_zip_version_is_a_model_format_error():
    """Found by the rfm_state fuzz target (tests/fuzz/harness.py, 30 s): a central directory
    entry whose "version needed to extract" is 10.1 made zipfile raise NotImplementedError out
    of RFMState.load (every bundle loader shares the opening)."""
    import io

    buffer = io.BytesIO()
    fe.RFMState(**KW).update(_small()).save(buffer)
    raw = bytearray(buffer.getvalue())
    entry = raw.find(b"PK\x01\x02")  # the first central directory entry
    raw[entry + 6:entry + 8] = (101).to_bytes(2, "little")
    with pytest.raises(fe.ModelFormatError, match="zip file version 10.1"):
        fe.RFMState.load(io.BytesIO(bytes(raw)))
