"""consent= on the bandit entry points (issue #14): decisions keep every row in place, with the
null decision for rows of customers without consent; learning drops those rows."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from fastengage.bandits import EpsilonGreedy, LinTS, LinUCB
from fastengage.errors import InputError
from fastengage.privacy import ConsentFilter, consented

T0 = np.datetime64("2021-01-01T00:00:00", "us")
DAY = np.timedelta64(1, "D")
AS_OF = T0 + 200 * DAY
ARMS = ["a", "b", "c"]


def _consents(n_customers):
    """Granted to every third customer from day 0, withdrawn at day 90 for every third + 1, and
    nothing for the rest (so several exclusion reasons occur)."""
    rows = []
    for k in range(n_customers):
        cid = f"cust-{k:03d}"
        if k % 3 != 2:
            rows.append((cid, "offers", "granted", T0))
        if k % 3 == 1:
            rows.append((cid, "offers", "withdrawn", T0 + 90 * DAY))
    customer, purpose, status, start = zip(*rows)
    return pa.table({"customer": list(customer), "purpose": list(purpose),
                     "status": list(status), "valid_from": pa.array(list(start),
                                                                    pa.timestamp("us")),
                     "valid_to": pa.array([None] * len(rows), pa.timestamp("us"))})


def _rows(n=900, n_customers=60, seed=0):
    rng = np.random.default_rng(seed)
    c = rng.integers(0, n_customers, n)
    X = rng.normal(size=(n, 3))
    arms = rng.integers(0, 3, n)
    r = X @ np.array([0.5, -0.2, 0.1]) * (arms + 1) + 0.1 * rng.normal(size=n)
    return pa.table({"customer": [f"cust-{k:03d}" for k in c], "x0": X[:, 0], "x1": X[:, 1],
                     "x2": X[:, 2], "arm": pa.array(np.asarray(ARMS)[arms]), "r": r,
                     "time": pa.array(T0 + rng.integers(0, 150 * 86_400, n).astype(
                         "timedelta64[s]"), pa.timestamp("us"))})


def _rule(n_customers=60):
    return ConsentFilter(_consents(n_customers), purpose="offers", as_of=AS_OF)


@pytest.mark.parametrize("cls", [LinUCB, LinTS, EpsilonGreedy])
def test_decide_keeps_rows_in_place_with_null_decisions(cls):
    data = _rows()
    features = ["x0", "x1", "x2"]
    policy = cls(ARMS, features=features).update(data, arm="arm", reward="r")
    kept, report = consented(data, _consents(60), customer="customer", time=None,
                             purpose="offers", as_of=AS_OF)
    allowed = np.isin(data["customer"].to_numpy(zero_copy_only=False),
                      kept["customer"].to_numpy(zero_copy_only=False))
    assert 0 < allowed.sum() < data.num_rows
    rng = np.random.default_rng(1)
    mask = rng.random((data.num_rows, 3)) < 0.8
    rule = _rule()
    mine = policy.decide(data, id="customer", eligible=mask, seed=3, expected=True,
                         consent=rule)
    plain = policy.decide(data, id="customer", eligible=mask, seed=3, expected=True)
    assert mine.num_rows == data.num_rows and mine["id"].equals(plain["id"])
    for column in ("arm", "propensity", "expected_reward"):
        got, want = mine[column].to_pylist(), plain[column].to_pylist()
        assert all(g is None for g, ok in zip(got, allowed) if not ok)
        got = [g for g, ok in zip(got, allowed) if ok]
        want = [w for w, ok in zip(want, allowed) if ok]
        if column == "expected_reward":  # NaN for arms a row may not get
            np.testing.assert_array_equal(np.array(got), np.array(want))
        else:
            assert got == want
    assert rule.last_report.equals(report)


def test_excluded_rows_are_not_read():
    data = _rows()
    policy = LinUCB(ARMS, features=["x0", "x1", "x2"]).update(data, arm="arm", reward="r")
    kept, _ = consented(data, _consents(60), customer="customer", time=None, purpose="offers",
                        as_of=AS_OF)
    allowed = np.isin(data["customer"].to_numpy(zero_copy_only=False),
                      kept["customer"].to_numpy(zero_copy_only=False))
    x0 = data["x0"].to_numpy().copy()
    x0[~allowed] = np.nan  # bad values and unknown arms only in rows without consent
    lists = [["a", "c"] if ok else ["no-such-arm"] for ok in allowed]
    dirty = data.set_column(1, "x0", pa.array(x0)).append_column("allowed", pa.array(lists))
    clean = data.append_column("allowed", pa.array([["a", "c"]] * data.num_rows))
    mine = policy.decide(dirty, id="customer", eligible="allowed", seed=1, consent=_rule())
    ref = policy.decide(clean, id="customer", eligible="allowed", seed=1)
    assert mine["arm"].to_pylist() == [a if ok else None
                                       for a, ok in zip(ref["arm"].to_pylist(), allowed)]
    with pytest.raises(InputError, match="no-such-arm"):  # without the rule they are read
        policy.decide(dirty, id="customer", eligible="allowed")
    with pytest.raises(InputError, match="x0"):
        policy.decide(dirty, id="customer")


def test_streamed_input_and_update_with_consent():
    data = _rows()
    features = ["x0", "x1", "x2"]
    policy = LinUCB(ARMS, features=features).update(data, arm="arm", reward="r")
    reader = pa.RecordBatchReader.from_batches(data.schema, data.to_batches(max_chunksize=128))
    streamed = policy.decide(reader, id="customer", seed=2, consent=_rule())
    assert streamed.equals(policy.decide(data, id="customer", seed=2, consent=_rule()))
    # update learns only consented rows, judged at each row's time
    rule = _rule()
    learned = LinUCB(ARMS, features=features).update(data, arm="arm", reward="r",
                                                     customer="customer", time="time",
                                                     consent=rule)
    kept, report = consented(data, _consents(60), customer="customer", time="time",
                             purpose="offers", as_of=AS_OF)
    ref = LinUCB(ARMS, features=features).update(kept, arm="arm", reward="r")
    assert 0 < kept.num_rows < data.num_rows
    np.testing.assert_array_equal(learned._G, ref._G)
    np.testing.assert_array_equal(learned._counts, ref._counts)
    assert rule.last_report.equals(report)


def test_consent_needs_a_filter_and_the_customer_column():
    data = _rows(50)
    policy = EpsilonGreedy(ARMS)
    with pytest.raises(InputError, match="id="):
        policy.decide(data, consent=_rule())
    with pytest.raises(InputError, match="ConsentFilter"):
        policy.decide(data, id="customer", consent=_consents(60))
    with pytest.raises(InputError, match="customer="):
        policy.update(data, arm="arm", reward="r", consent=_rule())
    with pytest.raises(InputError, match="as_of"):
        policy.decide(data, id="customer",
                      consent=ConsentFilter(_consents(60), purpose="offers"))
