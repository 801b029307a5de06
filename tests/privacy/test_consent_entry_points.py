"""consent= on the entry points that read events (issue #14 part 2): each one with
``consent=ConsentFilter(...)`` equals the same entry point on ``privacy.consented(...).data``,
and the report of what was excluded is reachable (``filter.last_report``) and equal to
consented()'s own report."""
import numpy as np
import pyarrow as pa
import pytest

import fastengage as fe
from fastengage import clv
from fastengage.privacy import ConsentFilter, consented
from fastengage.recommend import ALS, ItemKNN, Interactions
from fastengage.scoring.linear import LinearModel

T0 = np.datetime64("2021-01-01T00:00:00", "us")
DAY = np.timedelta64(1, "D")
AS_OF = T0 + 200 * DAY


def _events(n=2500, n_customers=120, seed=3) -> pa.Table:
    rng = np.random.default_rng(seed)
    c = rng.integers(0, n_customers, n)
    return pa.table({
        "customer": pa.array([f"cust-{k:04d}" for k in c]),
        "item": pa.array(rng.integers(0, 40, n)),
        "order": pa.array(c * 100 + rng.integers(0, 6, n)),
        "time": pa.array(T0 + rng.integers(0, 180 * 86_400, n).astype("timedelta64[s]"),
                         pa.timestamp("us")),
        "amount": np.round(rng.gamma(2.0, 20.0, n), 2),
        "x1": rng.normal(size=n), "x2": rng.normal(size=n),
    })


def _consents(n_customers=120, seed=5) -> pa.Table:
    """Granted from day 0 to 30% of customers; from day 60 to 30%; granted then withdrawn at
    day 90 to 20%; nothing for the rest (so every exclusion reason occurs)."""
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(n_customers):
        u = rng.random()
        cid = f"cust-{k:04d}"
        if u < 0.3:
            rows.append((cid, "analytics", "granted", T0, None))
        elif u < 0.6:
            rows.append((cid, "analytics", "granted", T0 + 60 * DAY, None))
        elif u < 0.8:
            rows.append((cid, "analytics", "granted", T0, None))
            rows.append((cid, "analytics", "withdrawn", T0 + 90 * DAY, None))
        rows.append((cid, "marketing", "granted", T0, None))  # another purpose: ignored
    customer, purpose, status, start, end = zip(*rows)
    return pa.table({"customer": list(customer), "purpose": list(purpose),
                     "status": list(status),
                     "valid_from": pa.array(list(start), pa.timestamp("us")),
                     "valid_to": pa.array(list(end), pa.timestamp("us"))})


def _filter():
    return ConsentFilter(_consents(), purpose="analytics", as_of=AS_OF)


def _rfm(data, **kw):
    return fe.rfm(data, customer="customer", time="time", amount="amount", order="order", **kw)


def _profile(data, **kw):
    return fe.profile(data, customer="customer", time="time", amount="amount", order="order",
                      **kw)


def _summary(data, **kw):
    return clv.summary(data, customer="customer", time="time", amount="amount", **kw)


def _training_set(data, **kw):
    return fe.training_set(data, customer="customer", time="time", amount="amount",
                           cutoffs=[T0 + 120 * DAY], horizon=30, require_full_horizon=False,
                           **kw)


def _rfm_state(data, **kw):
    state = fe.RFMState(customer="customer", time="time", amount="amount", order="order")
    return state.update(data, **kw).to_table()


def _interactions(data, **kw):
    return Interactions.from_data(data, customer="customer", item="item", **kw).to_arrow()


def _interactions_timed(data, **kw):
    return Interactions.from_data(data, customer="customer", item="item", time="time",
                                  **kw).to_arrow()


def _als(data, **kw):
    model = ALS(factors=4, iterations=2, seed=1).fit(data, customer="customer", item="item",
                                                     **kw)
    return model.recommend(n=3)


def _knn(data, **kw):
    return ItemKNN("cosine", K=5).fit(data, customer="customer", item="item", **kw).recommend(n=3)


_MODEL = LinearModel([[0.5, -1.0]], [0.1], features=["x1", "x2"], link="logistic",
                     classes=[0, 1])


def _score(data, **kw):
    return _MODEL.score(data, id="customer", **kw)


# name: (entry point, the callable that must take consent=, time column the filter judges by;
# None: the entry point was given no time column, so every row is judged at the filter's as_of)
ENTRY_POINTS = {
    "rfm": (_rfm, fe.rfm, "time"),
    "profile": (_profile, fe.profile, "time"),
    "RFMState.update": (_rfm_state, fe.RFMState.update, "time"),
    "clv.summary": (_summary, clv.summary, "time"),
    "training_set": (_training_set, fe.training_set, "time"),
    "Interactions.from_data": (_interactions, Interactions.from_data, None),
    "Interactions.from_data(time=)": (_interactions_timed, Interactions.from_data, "time"),
    "ALS.fit": (_als, ALS.fit, None),
    "ItemKNN.fit": (_knn, ItemKNN.fit, None),
    "Model.score": (_score, LinearModel.score, None),
}


@pytest.mark.parametrize("name", list(ENTRY_POINTS))
def test_consent_equals_entry_point_on_consented_data(name):
    run, target, time = ENTRY_POINTS[name]
    events = _events()
    kept, report = consented(events, _consents(), customer="customer", time=time,
                             purpose="analytics", as_of=AS_OF)
    assert 0 < kept.num_rows < events.num_rows  # the filter really excludes rows
    rule = _filter()
    mine = run(events, consent=rule)
    theirs = run(kept)
    assert mine.equals(theirs), name
    # the exclusion report is reachable, and is consented()'s
    assert rule.last_report is not None and rule.last_report.equals(report)
    rows = dict(zip(report["reason"].to_pylist(), report["rows"].to_pylist()))
    assert rows["kept"] == kept.num_rows and sum(rows.values()) == events.num_rows
    assert rows["no_consent"] > 0 and rows["withdrawn"] + rows["not_consented_as_of"] > 0


@pytest.mark.parametrize("name", [n for n in ENTRY_POINTS if n != "Model.score"])
def test_consent_refuses_what_is_not_a_filter(name):
    run, target, _ = ENTRY_POINTS[name]
    with pytest.raises(fe.errors.InputError, match="ConsentFilter"):
        run(_events(), consent=_consents())
