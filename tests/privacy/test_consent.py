"""consented: the point-in-time consent join against the plain-Python reference."""
import datetime as dt
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import naive_privacy
from fastengage.errors import ColumnNotFoundError, InputError
from fastengage.privacy import ConsentFilter, consented

DAY = 86_400_000_000


def _ts(us_values):
    return pa.array(us_values, pa.timestamp("us"))


def _consent_table(records, customer_type=pa.int64()):
    customers, purposes, granted, starts, ends = zip(*records) if records else ([],) * 5
    return pa.table({
        "customer": pa.array(list(customers), customer_type),
        "purpose": pa.array(list(purposes), pa.string()),
        "status": pa.array(["granted" if g else "withdrawn" for g in granted], pa.string()),
        "valid_from": _ts(list(starts)),
        "valid_to": _ts(list(ends)),
    })


def _check(events, records, purpose, as_of=None, customer_type=pa.int64(), n_threads=None):
    table = pa.table({"customer": pa.array([c for c, _ in events], customer_type),
                      "t": _ts([t for _, t in events]), "row": np.arange(len(events))})
    kept, report = consented(table, _consent_table(records, customer_type), customer="customer",
                             time="t", purpose=purpose, n_threads=n_threads,
                             as_of=None if as_of is None else np.datetime64(as_of, "us"))
    want = naive_privacy.consent_reasons(events, records, purpose, as_of)
    assert kept.column("row").to_pylist() == [i for i, r in enumerate(want) if r == "kept"]
    assert report.column("reason").to_pylist() == list(naive_privacy.REASONS)
    assert report.column("rows").to_pylist() == [want.count(r) for r in naive_privacy.REASONS]
    customers = [len({c for (c, _), r in zip(events, want) if r == reason})
                 for reason in naive_privacy.REASONS]
    assert report.column("customers").to_pylist() == customers
    meta = json.loads(report.schema.metadata[b"fastengage.privacy.consent"])
    all_customers = {c for c, _ in events}
    kept_customers = {c for (c, _), r in zip(events, want) if r == "kept"}
    assert meta["customers"] == len(all_customers)
    assert meta["customers_fully_excluded"] == len(all_customers - kept_customers)
    return kept, report


times = st.integers(0, 40)
records_strategy = st.lists(st.tuples(
    st.integers(0, 5), st.sampled_from(["marketing", "analytics"]), st.booleans(),
    st.one_of(st.none(), times), st.one_of(st.none(), times)).filter(
        lambda r: r[3] is None or r[4] is None or r[3] < r[4]), max_size=25)


@settings(max_examples=150, deadline=None)
@given(records=records_strategy,
       events=st.lists(st.tuples(st.integers(0, 7), times), max_size=60),
       as_of=st.one_of(st.none(), times), string_ids=st.booleans())
def test_matches_reference(records, events, as_of, string_ids):
    if string_ids:
        records = [(f"c{c}", *rest) for c, *rest in records]
        events = [(f"c{c}", t) for c, t in events]
    _check(events, records, "marketing", as_of, pa.string() if string_ids else pa.int64())


def test_point_in_time_story():
    # customer 1: granted day 0..10, withdrawn from day 10; customer 2: granted from day 5,
    # open-ended; customer 3: only an analytics consent; customer 4: unknown.
    records = [(1, "marketing", True, 0, 10 * DAY), (1, "marketing", False, 10 * DAY, None),
               (2, "marketing", True, 5 * DAY, None), (3, "analytics", True, None, None)]
    events = [(1, 3 * DAY), (1, 12 * DAY), (2, 4 * DAY), (2, 6 * DAY), (3, DAY), (4, DAY)]
    _, report = _check(events, records, "marketing")
    assert report.column("rows").to_pylist() == [2, 3, 1, 0]
    # processing at day 20: customer 1 has withdrawn since, so even the day-3 row goes
    _, report = _check(events, records, "marketing", as_of=20 * DAY)
    assert report.column("rows").to_pylist() == [1, 3, 1, 1]
    # as of day 7 the withdrawal record (from day 10) is not known yet: the day-12 row is
    # covered by no known record
    _, report = _check(events, records, "marketing", as_of=7 * DAY)
    assert report.column("rows").to_pylist() == [2, 4, 0, 0]


def test_threads_streams_and_column_names(tmp_path):
    rng = np.random.default_rng(3)
    n = 20_000
    records = [(int(c), "m", bool(rng.random() < 0.8), int(s) * DAY, int(s + d) * DAY)
               for c, s, d in zip(rng.integers(0, 500, 800), rng.integers(0, 300, 800),
                                  rng.integers(1, 200, 800))]
    events = list(zip(rng.integers(0, 600, n).tolist(), (rng.integers(0, 500, n) * DAY).tolist()))
    kept1, rep1 = _check(events, records, "m", n_threads=1)
    kept2, rep2 = _check(events, records, "m", n_threads=2)
    assert kept1.equals(kept2) and rep1.equals(rep2)
    table = pa.table({"cust": pa.array([c for c, _ in events], pa.int64()),
                      "when": _ts([t for _, t in events]), "row": np.arange(n)})
    path = tmp_path / "events.parquet"
    pq.write_table(table, path, row_group_size=3000)
    consents = _consent_table(records).rename_columns(["cust", "why", "state", "start", "end"])
    kept, report = consented(str(path), consents, customer="cust", time="when", purpose="m",
                             batch_size=2500, consent_columns={"purpose": "why", "status": "state",
                                                               "valid_from": "start",
                                                               "valid_to": "end"})
    assert kept.column("row").equals(kept1.column("row"))
    assert report.equals(rep1)


def test_boolean_status_dates_and_dictionary_ids():
    consents = pa.table({"customer": pa.array(["a", "b"]).dictionary_encode(),
                         "purpose": ["m", "m"], "status": [True, False],
                         "valid_from": pa.array([dt.date(2020, 1, 1)] * 2, pa.date32()),
                         "valid_to": pa.array([None, None], pa.date32())})
    events = pa.table({"customer": ["a", "b", "a"],
                       "t": pa.array([dt.datetime(2021, 1, 1), dt.datetime(2021, 1, 1),
                                      dt.datetime(2019, 1, 1)], pa.timestamp("ms", tz="UTC"))})
    kept, report = consented(events, consents, customer="customer", time="t", purpose="m")
    assert kept.column("customer").to_pylist() == ["a"]
    assert report.column("rows").to_pylist() == [1, 1, 1, 0]


def test_bad_consent_tables():
    events = pa.table({"customer": [1], "t": _ts([0])})
    good = _consent_table([(1, "m", True, 0, None)])
    with pytest.raises(InputError, match="'status' has values \\['maybe'\\]"):
        consented(events, good.set_column(2, "status", pa.array(["maybe"])), customer="customer",
                  time="t", purpose="m")
    with pytest.raises(InputError, match="valid_from >= valid_to"):
        consented(events, _consent_table([(1, "m", True, 5, 5)]), customer="customer", time="t",
                  purpose="m")
    with pytest.raises(ColumnNotFoundError, match="'valid_to'"):
        consented(events, good.drop_columns(["valid_to"]), customer="customer", time="t",
                  purpose="m")
    with pytest.raises(InputError, match="unknown role"):
        consented(events, good, customer="customer", time="t", purpose="m",
                  consent_columns={"reason": "x"})
    with pytest.raises(InputError, match="purpose"):
        consented(events, good, customer="customer", time="t", purpose="")


def test_consent_filter_applies_the_same_rule():
    records = [(1, "m", True, 0, 10 * DAY), (2, "m", False, 0, None)]
    events = pa.table({"customer": pa.array([1, 1, 2], pa.int64()),
                       "t": _ts([DAY, 11 * DAY, DAY])})
    rule = ConsentFilter(_consent_table(records), purpose="m", as_of=np.datetime64(5 * DAY, "us"))
    kept, report = rule.apply(events, customer="customer", time="t")
    direct = consented(events, _consent_table(records), customer="customer", time="t",
                       purpose="m", as_of=np.datetime64(5 * DAY, "us"))
    assert kept.equals(direct.data) and report.equals(direct.report)
    assert kept.num_rows == 1
    with pytest.raises(InputError, match="purpose"):
        ConsentFilter(_consent_table(records), purpose="")
