"""decide_one through the compiled server (kernels/bandits/serve_native.pyx): the same decisions
as ``decide``, every input form checked, one snapshot per call under concurrent updates."""
from __future__ import annotations

import threading

import numpy as np
import pyarrow as pa
import pytest

from fastengage.bandits import UCB1, BetaTS, EpsilonGreedy, GaussianTS, LinEpsilonGreedy, LinTS, \
    LinUCB
from fastengage.errors import InputError


def _logs(n, d, K, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    arms = rng.integers(0, K, n)
    r = np.einsum("nd,nd->n", X, rng.normal(size=(K, d))[arms]) + 0.3 * rng.normal(size=n)
    ids = [f"arm{k}" for k in range(K)]
    names = [f"f{j}" for j in range(d)]
    table = pa.table({**{f: X[:, j] for j, f in enumerate(names)},
                      "arm": pa.array(np.asarray(ids)[arms]), "r": r})
    return table, X, names, ids


@pytest.mark.parametrize("cls", [LinUCB, LinTS, LinEpsilonGreedy])
def test_decide_one_equals_decide_row_by_row(cls):
    # decide_one(x, seed=s) is row 0 of decide(seed=s) on that row; with and without a mask.
    table, X, names, ids = _logs(400, 5, 4, 1)
    policy = cls(ids, features=names).update(table.slice(0, 300), arm="arm", reward="r")
    mask = np.random.default_rng(2).random((100, 4)) < 0.6
    for i in range(100):
        row = table.slice(300 + i, 1)
        for elig in (None, mask[i]):
            ref = policy.decide(row, seed=i, eligible=None if elig is None else elig[None])
            want = (ref["arm"][0].as_py(), ref["propensity"][0].as_py())
            got = policy.decide_one(X[300 + i], eligible=elig, seed=i)
            if want[0] is None:
                assert got[0] is None and np.isnan(got[1])
            else:
                assert got == want


@pytest.mark.parametrize("policy", [UCB1(["a", "b", "c"]), EpsilonGreedy(["a", "b", "c"],
                                                                         epsilon=0.2),
                                    BetaTS(["a", "b", "c"]), GaussianTS(["a", "b", "c"])])
def test_non_contextual_decide_one_equals_decide(policy):
    policy.update(pa.table({"arm": ["a", "b", "b", "c"], "r": [1.0, 0.0, 1.0, 1.0]}), arm="arm",
                  reward="r")
    table = pa.table({"x": np.zeros(1)})
    for s in range(50):
        ref = policy.decide(table, seed=s)
        assert policy.decide_one(seed=s) == (ref["arm"][0].as_py(), ref["propensity"][0].as_py())


def test_input_forms_and_errors():
    table, X, names, ids = _logs(200, 3, 3, 4)
    policy = LinUCB(ids, features=names).update(table, arm="arm", reward="r")
    want = policy.decide_one(X[0], seed=3)
    # Any array-like that converts to 3 float64 values gives the same decision.
    for x in (list(X[0]), X[0].astype(np.float32).astype(np.float64), X[:1].T[:, 0],
              np.asfortranarray(X[:1]).ravel(), X[0].astype(">f8")):
        assert policy.decide_one(x, seed=3) == want
    assert policy.decide_one(X[0], eligible=[True, True, True], seed=3) == want
    assert policy.decide_one(X[:, 0][:3].copy(), seed=3) == policy.decide_one(X[:, 0][:3], seed=3)
    assert policy.decide_one(X[0], eligible=np.zeros(3, bool), seed=3)[0] is None
    assert policy.decide_one(X[0], eligible=np.array([0, 0, 1], np.uint8), seed=3)[0] == ids[2]
    for bad in (X[0][:2], X[:2], None, np.append(X[0], 1.0)):
        with pytest.raises(InputError, match="x must be"):
            policy.decide_one(bad)
    with pytest.raises(InputError, match="NaN"):
        policy.decide_one(np.array([1.0, np.nan, 0.0]))
    with pytest.raises(InputError, match="eligible"):
        policy.decide_one(X[0], eligible=np.ones(4, bool))


def test_each_decision_reads_one_snapshot_under_concurrent_updates():
    # One thread applies updates 1..n in order; others decide meanwhile. A decision must equal
    # the decision of one of the states that existed while it ran (replayed serially after).
    table, X, names, ids = _logs(3000, 4, 3, 5)
    policy = LinUCB(ids, features=names).update(table.slice(0, 100), arm="arm", reward="r")
    steps = [table.slice(100 + 50 * k, 50) for k in range(20)]
    applied = [0]
    seen, errors = [], []

    def learn():
        for k, batch in enumerate(steps):
            policy.update(batch, arm="arm", reward="r")
            applied[0] = k + 1

    def serve(offset):
        try:
            for i in range(offset, 2000, 2):
                before = applied[0]
                got = policy.decide_one(X[i], seed=i)
                seen.append((i, before, applied[0], got))
        except Exception as exc:  # noqa: BLE001 - re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=learn)] + [threading.Thread(target=serve, args=(o,))
                                                  for o in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(seen) == 2000
    replay = LinUCB(ids, features=names).update(table.slice(0, 100), arm="arm", reward="r")
    states = [replay._snapshot]
    for batch in steps:  # the same updates in the same order: the same snapshots
        states.append(replay.update(batch, arm="arm", reward="r")._snapshot)
    for i, before, after, got in seen:
        # A snapshot is installed just before ``applied`` counts it: state ``after + 1`` too.
        options = set()
        for snap in states[before:after + 2]:
            replay._snapshot = snap
            options.add(replay.decide_one(X[i], seed=i))
        assert got in options, (i, before, after)
