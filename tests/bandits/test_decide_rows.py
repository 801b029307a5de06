"""decide_rows (a service's micro-batch through the compiled server, one compiled call): the
same arms and propensities as ``decide`` on the same rows and seed, for every policy kind, with
and without a mask and ``first_row``; its errors; and from several threads at once."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa
import pytest

from fastengage.bandits import UCB1, BetaTS, EpsilonGreedy, GaussianTS, LinEpsilonGreedy, LinTS, \
    LinUCB
from fastengage.errors import InputError
from test_serve_native import _logs  # the same seeded logs


def _same(ids, props, ref):
    assert list(ids) == ref["arm"].to_pylist()
    want = np.array([np.nan if p is None else p for p in ref["propensity"].to_pylist()])
    np.testing.assert_array_equal(props, want)


@pytest.mark.parametrize("cls", [LinUCB, LinTS, LinEpsilonGreedy])
def test_decide_rows_equals_decide(cls):
    table, X, names, ids = _logs(600, 5, 4, 1)
    policy = cls(ids, features=names).update(table.slice(0, 300), arm="arm", reward="r")
    rows, Xr = table.slice(300), X[300:]
    mask = np.random.default_rng(2).random((300, 4)) < 0.6
    mask[:7] = False  # rows with no eligible arm: None / NaN
    for seed in (0, 9):
        _same(*policy.decide_rows(Xr, seed=seed), policy.decide(rows, seed=seed))
        _same(*policy.decide_rows(Xr, eligible=mask, seed=seed),
              policy.decide(rows, seed=seed, eligible=mask))
        _same(*policy.decide_rows(Xr[100:], seed=seed, first_row=100),
              policy.decide(rows, seed=seed).slice(100))


@pytest.mark.parametrize("make", [lambda a: UCB1(a), lambda a: EpsilonGreedy(a, epsilon=0.2),
                                  lambda a: BetaTS(a), lambda a: GaussianTS(a)])
def test_non_contextual_decide_rows_equals_decide(make):
    policy = make(["a", "b", "c"]).update(
        pa.table({"arm": ["a", "b", "b", "c"], "r": [1.0, 0.0, 1.0, 1.0]}), arm="arm",
        reward="r")
    table = pa.table({"x": np.zeros(40)})
    _same(*policy.decide_rows(np.zeros((40, 0)), seed=5), policy.decide(table, seed=5))


def test_errors_and_unseeded_calls():
    table, X, names, ids = _logs(200, 3, 3, 4)
    policy = LinUCB(ids, features=names).update(table, arm="arm", reward="r")
    with pytest.raises(InputError, match=r"\(rows, 3\)"):
        policy.decide_rows(X[:, :2])
    with pytest.raises(InputError, match=r"\(rows, 3\)"):
        policy.decide_rows(X[0])
    with pytest.raises(InputError, match="eligible"):
        policy.decide_rows(X[:5], eligible=np.ones((5, 2), bool))
    bad = X[:5].copy()
    bad[3, 1] = np.nan
    with pytest.raises(InputError, match=r"NaN.*\[3\]"):
        policy.decide_rows(bad)
    arms, props = policy.decide_rows(X[:0])
    assert arms.shape == props.shape == (0,)
    arms, props = policy.decide_rows(np.asfortranarray(X[:50]))  # any layout, converted
    assert set(arms) <= set(ids) and np.all((props > 0) & (props <= 1))


def test_decide_rows_from_threads_equals_serial():
    table, X, names, ids = _logs(4000, 6, 5, 7)
    policy = LinTS(ids, features=names).update(table.slice(0, 2000), arm="arm", reward="r")
    parts = [(X[2000 + 50 * i: 2050 + 50 * i], i) for i in range(40)]
    serial = [policy.decide_rows(x, seed=s) for x, s in parts]
    with ThreadPoolExecutor(4) as pool:
        threaded = list(pool.map(lambda p: policy.decide_rows(p[0], seed=p[1]), parts))
    for (a, p), (b, q) in zip(serial, threaded):
        assert list(a) == list(b)
        np.testing.assert_array_equal(p, q)
