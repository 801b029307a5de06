"""fastengage.training_set: no leakage (hypothesis), labels against a plain computation, features
equal to rfm()/profile() of the past, and churn_dataset as its one-cut-off case."""
import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastengage as fe
from fastengage.errors import InputError
from naive_profile import DAY, naive_labels

T0 = int(dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc).timestamp()) * 1_000_000
HOUR = 3_600_000_000


def _table(cust, ts, amt, order, chan, str_ids=False):
    return pa.table({
        "cust": pa.array([None if c is None else (f"k{c}" if str_ids else c) for c in cust],
                         pa.string() if str_ids else pa.int64()),
        "ts": pa.array(ts, pa.timestamp("us")),
        "amt": pa.array(amt, pa.float64()),
        "order": pa.array(order, pa.int64()),
        "chan": pa.array(chan, pa.string()),
    })


@st.composite
def logs(draw):
    n = draw(st.integers(2, 50))
    cust = draw(st.lists(st.one_of(st.none(), st.integers(0, 6)), min_size=n, max_size=n))
    hours = draw(st.lists(st.integers(0, 240 * 24), min_size=n, max_size=n))
    amt = draw(st.lists(st.sampled_from([0.0, 5.0, 12.5, -4.0, 30.0]), min_size=n, max_size=n))
    order = draw(st.lists(st.integers(0, 15), min_size=n, max_size=n))
    chan = draw(st.lists(st.sampled_from(["web", "app", "store"]), min_size=n, max_size=n))
    return cust, [T0 + h * HOUR for h in hours], amt, order, chan


KW = dict(customer="cust", time="ts", amount="amt", order="order", drop_null_customers=True,
          require_full_horizon=False)


def _rows_of(table, cut_us):
    rows = table.filter(pc.equal(table.column("cutoff"),
                                 pa.scalar(cut_us, pa.int64()).cast(pa.timestamp("us", tz="UTC"))))
    # a channel first seen after this cut-off has all-null columns in its rows
    keep = [c for c in rows.column_names if rows.column(c).null_count < rows.num_rows or not rows.num_rows]
    return rows.select(keep)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(log=logs(), cut_days=st.lists(st.integers(20, 200), min_size=1, max_size=3, unique=True),
       which=st.integers(0, 2), seed=st.integers(0, 2**32 - 1), str_ids=st.booleans(),
       features=st.sampled_from(["rfm", "profile"]))
def test_no_leakage(log, cut_days, which, seed, str_ids, features):
    """Changing every event after a cut-off (customer, time, amount, order, channel) changes no
    feature of that cut-off."""
    cust, ts, amt, order, chan = log
    cuts = sorted(T0 + d * DAY for d in cut_days)
    c = cuts[min(which, len(cuts) - 1)]
    if not any(t <= c and a >= 0 and k is not None for t, a, k in zip(ts, amt, cust)) \
            or not all(any(t <= x and k is not None for t, k in zip(ts, cust)) for x in cuts):
        return  # (a cut-off with no customer's event before it is an error: tested below)
    opts = dict(channel="chan", windows=(7, 30)) if features == "profile" else {}
    base = fe.training_set(_table(cust, ts, amt, order, chan, str_ids), **KW, features=features,
                           cutoffs=[np.datetime64(x, "us") for x in cuts], horizon=30, **opts)
    rng = np.random.default_rng(seed)
    after = [t > c for t in ts]
    new = (
        [int(rng.integers(0, 9)) if a else k for k, a in zip(cust, after)],
        [c + 1 + int(rng.integers(0, 90 * DAY)) if a else t for t, a in zip(ts, after)],
        [float(rng.choice([-50.0, 0.0, 7.0, 1e6])) if a else x for x, a in zip(amt, after)],
        [int(rng.integers(0, 40)) if a else o for o, a in zip(order, after)],
        [str(rng.choice(["web", "kiosk", "phone"])) if a else h for h, a in zip(chan, after)],
    )
    changed = fe.training_set(_table(*new, str_ids=str_ids), **KW, features=features,
                              cutoffs=[np.datetime64(x, "us") for x in cuts], horizon=30, **opts)
    label = base.column_names[-1]
    mine, theirs = _rows_of(base, c).drop_columns([label]), _rows_of(changed, c).drop_columns([label])
    assert mine.equals(theirs)


def _random_log(n=20_000, seed=0, customers=800):
    rng = np.random.default_rng(seed)
    cust = rng.integers(0, customers, n).astype(object)
    cust[rng.random(n) < 0.01] = None
    ts = T0 + rng.integers(0, 300 * DAY, n)
    amt = np.round(rng.exponential(25, n) * np.where(rng.random(n) < 0.06, -1, 1), 2)
    amt[rng.random(n) < 0.02] = 0.0
    return (list(cust), [int(t) for t in ts], [float(a) for a in amt],
            [int(o) for o in rng.integers(0, n // 4, n)],
            [str(h) for h in rng.choice(["web", "app", "store"], n)])


@pytest.mark.parametrize("label", ["churn", "spend", "purchases"])
@pytest.mark.parametrize("features", ["rfm", "profile"])
def test_labels_and_features_match_plain_computation(label, features):
    log = _random_log()
    table = _table(*log)
    cuts = [T0 + 100 * DAY, T0 + 150 * DAY + 7 * HOUR, T0 + 200 * DAY]
    opts = dict(channel="chan") if features == "profile" else {}
    out = fe.training_set(table, **KW, features=features, label=label, horizon=45,
                          cutoffs=[np.datetime64(x, "us") for x in reversed(cuts)], **opts)
    cust, ts, amt, order, _ = log
    assert out.column_names[0] == "cutoff"
    stamps = out.column("cutoff").cast(pa.int64()).to_numpy()
    assert list(np.unique(stamps)) == cuts and np.all(np.diff(stamps) >= 0)  # ascending
    fn = fe.rfm if features == "rfm" else fe.profile
    for cut in cuts:
        rows = out.filter(pa.array(stamps == cut))
        past = table.filter(pc.less_equal(table.column("ts").cast(pa.int64()), cut))
        want = fn(past, customer="cust", time="ts", amount="amt", order="order",
                  drop_null_customers=True, as_of=np.datetime64(cut, "us"), **opts)
        assert rows.select(want.column_names).equals(want)
        ref = naive_labels(cust, ts, amt, cutoff=cut, horizon_days=45, orders=order)
        ids = rows.column("cust").to_pylist()
        got = rows.column(rows.column_names[-1]).to_pylist()
        k = {"churn": 0, "spend": 1, "purchases": 2}[label]
        expect = [ref.get(i, (True, 0.0, 0))[k] for i in ids]
        if label == "spend":
            np.testing.assert_allclose(got, expect, rtol=1e-12, atol=1e-9)
        else:
            assert got == expect


def test_one_cutoff_equals_churn_dataset(retail_table):
    kw = dict(customer="CustomerID", time="InvoiceDate", amount="amount", order="InvoiceNo",
              drop_null_customers=True)
    for cutoff in ["2011-06-01", "2011-09-01"]:
        ours = fe.training_set(retail_table, **kw, cutoffs=[cutoff], horizon=90,
                               features="rfm", label="churn")
        theirs = fe.churn_dataset(retail_table, **kw, cutoff=cutoff, horizon=90)
        assert ours.drop_columns(["cutoff"]).equals(theirs.drop_columns(["purchases_in_horizon"]))
        assert ours.num_rows > 2000 and 0 < pc.sum(ours.column("churned").cast(pa.int64())).as_py() < ours.num_rows


def test_callable_label_and_profile_options():
    log = _random_log(5_000, seed=2, customers=200)
    table = _table(*log, str_ids=True)

    def big_spender(window, features):
        totals = window.group_by("cust").aggregate([("amt", "sum")])
        pos = pc.index_in(features.column("cust"), value_set=totals.column("cust"))
        return pc.greater(pc.fill_null(pc.take(totals.column("amt_sum"), pos), 0.0), 100.0)

    out = fe.training_set(table, **KW, features="profile", label=big_spender, horizon=30,
                          cutoffs=["2024-05-01", "2024-07-01"], channel="chan", windows=(14, 60))
    assert out.column_names[-1] == "label" and "orders_14d" in out.column_names
    spend = fe.training_set(table, **KW, features="profile", label="spend", horizon=30,
                            cutoffs=["2024-05-01", "2024-07-01"], channel="chan", windows=(14, 60))
    assert out.column("label").to_pylist() == [s > 100.0 for s in spend.column("spend_in_horizon").to_pylist()]


def test_errors():
    table = _table(*_random_log(2_000, seed=1, customers=50))
    kw = dict(customer="cust", time="ts", amount="amt", drop_null_customers=True)
    with pytest.raises(InputError, match="data ends"):
        fe.training_set(table, **kw, cutoffs=["2024-10-01"], horizon=90)
    with pytest.raises(InputError, match="unknown option"):
        fe.training_set(table, **kw, cutoffs=["2024-03-01"], channel="chan")
    with pytest.raises(InputError, match="label"):
        fe.training_set(table, **kw, cutoffs=["2024-03-01"], label="clv")
    with pytest.raises(InputError, match="repeated"):
        fe.training_set(table, **kw, cutoffs=["2024-03-01", "2024-03-01"])
    with pytest.raises(InputError, match="no events"):
        fe.training_set(table, **kw, cutoffs=["2023-03-01"])
    with pytest.raises(InputError, match="null"):
        fe.training_set(table, customer="cust", time="ts", amount="amt", cutoffs=["2024-03-01"])
    with pytest.raises(InputError, match="horizon"):
        fe.training_set(table, **kw, cutoffs=["2024-03-01"], horizon=0)


def test_a_cutoff_with_only_null_customers_before_it_is_named():
    table = _table([None, None, 0], [T0, T0 + DAY, T0 + 30 * DAY], [1.0, 2.0, 3.0], [0, 1, 2],
                   ["web", "web", "web"], False)
    with pytest.raises(InputError, match=r"no events with a customer id on or before cutoff "
                                         r".*2 row\(s\) have a null customer"):
        fe.training_set(table, **KW, cutoffs=[np.datetime64(T0 + 2 * DAY, "us")], horizon=30)
