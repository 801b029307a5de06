"""Policy.forget: the privacy.forget protocol on policies (which hold sums, never ids)."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from fastengage.bandits import BetaTS, HybridLinUCB, LinUCB
from fastengage.errors import InputError
from fastengage.privacy.forget import AuditRecord, find_traces


def _logs(customer_ids, seed=0, n=1500, d=3):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    arms = rng.integers(0, 3, n)
    r = (rng.random(n) < 0.3).astype(float)
    who = np.asarray(customer_ids, dtype=object)[rng.integers(0, len(customer_ids), n)]
    return pa.table({"customer": pa.array(who.tolist()),
                     **{f"f{j}": X[:, j] for j in range(d)},
                     "arm": pa.array(np.asarray(["a", "b", "c"])[arms]), "r": r})


def _make(kind):
    if kind == "hybrid":
        return HybridLinUCB(["a", "b", "c"], features=["f1", "f2"], shared=["f0"])
    if kind == "beta":
        return BetaTS(["a", "b", "c"])
    return LinUCB(["a", "b", "c"], features=["f0", "f1", "f2"])


@pytest.mark.parametrize("kind", ["linucb", "hybrid", "beta"])
@pytest.mark.parametrize("ids", [
    [f"customer-{i:04d}-zq" for i in range(40)],
    [int(v) for v in np.random.default_rng(9).integers(10**15, 10**17, 40)],
])
def test_forget_with_logs_equals_learning_without_them(tmp_path, kind, ids):
    logs = _logs(ids)
    gone = ids[:3] + [ids[0], "x" if isinstance(ids[0], str) else 7]  # a duplicate, an unknown
    policy = _make(kind).update(logs, arm="arm", reward="r")
    record = policy.forget(gone, request="ticket-1", logs=logs, customer="customer", arm="arm",
                           reward="r")
    keep = logs.filter(pa.compute.invert(pa.compute.is_in(logs["customer"],
                                                          value_set=pa.array(ids[:3]))))
    fresh = _make(kind).update(keep, arm="arm", reward="r")
    assert isinstance(record, AuditRecord) and record.exact and record.request == "ticket-1"
    assert record.customers_requested == 4 and record.customers_found == 3
    assert record.rows_removed == logs.num_rows - keep.num_rows > 0
    np.testing.assert_array_equal(policy._counts, fresh._counts)
    for mine, theirs in ((policy._sums, fresh._sums), (policy._G, fresh._G),
                         (policy._g, fresh._g), (policy._snapshot.theta, fresh._snapshot.theta)):
        np.testing.assert_allclose(mine, theirs, rtol=1e-9, atol=1e-9)
    assert policy.decide(keep, seed=1)["arm"].equals(fresh.decide(keep, seed=1)["arm"])
    policy.save(tmp_path / "p.fe")
    assert find_traces(tmp_path / "p.fe", ids) == []
    assert str(ids[0]) not in record.to_json()


def test_forget_without_logs_is_a_recorded_no_op():
    ids = [f"customer-{i:04d}-zq" for i in range(10)]
    policy = LinUCB(["a", "b", "c"], features=["f0", "f1", "f2"])
    empty = policy.forget(ids[:2])
    assert empty.exact and empty.customers_found == 0 and empty.rows_removed == 0
    policy.update(_logs(ids), arm="arm", reward="r")
    before = policy._G.copy()
    record = policy.forget(ids[:2], request="t2")
    assert not record.exact and record.customers_found == 0 and "logs=" in record.notes
    assert np.array_equal(policy._G, before)


def test_forget_refuses_logs_it_did_not_learn():
    ids = [f"customer-{i:04d}-zq" for i in range(10)]
    logs = _logs(ids)
    policy = LinUCB(["a", "b", "c"], features=["f0", "f1", "f2"]).update(logs.slice(0, 10),
                                                                       arm="arm", reward="r")
    before = policy._G.copy()
    with pytest.raises(InputError, match="more rows"):
        policy.forget(ids, logs=logs, customer="customer", arm="arm", reward="r")
    assert np.array_equal(policy._G, before)
    with pytest.raises(InputError, match="customer="):
        policy.forget(ids, logs=logs)
