"""The service calls' GIL rule (serve_native.decision_work against BANDIT_SERVE_NOGIL_WORK /
_ROWS_WORK) and the service stream: small models decide holding the GIL, large ones and every
Thompson-sampling decision release it (another thread runs meanwhile), the decisions are the same
either way, and unseeded calls from several threads each take their own row of the stream."""
from __future__ import annotations

import sys
import threading
import time

import numpy as np
import pytest

import fastengage.bandits._serving as serving
from fastengage.bandits import UCB1, BetaTS, EpsilonGreedy, GaussianTS, LinEpsilonGreedy, LinTS, \
    LinUCB
from fastengage.kernels.bandits import serve_native
from fastengage.kernels.common.config import BANDIT_SERVE_NOGIL_WORK, BANDIT_TS_PROPENSITY_DRAWS
from test_serve_native import _logs


def _linucb(K, d, n=600):
    table, X, names, ids = _logs(n, d, K, 7)
    return LinUCB(ids, features=names).update(table, arm="arm", reward="r"), X


def test_decision_work_counts_means_widths_and_draws():
    work = serve_native.decision_work
    assert work(10, 20, 1, 100) == 10 * 20 + 10 * 20 * 21 // 2  # UCB: means + triangular widths
    assert work(10, 20, 0, 100) == 10 * 20  # greedy: means only
    assert work(10, 20, 2, 100) == 10 * 20 + 10 * 210 + 101 * 10 * 1000
    assert work(3, 0, 3, 100) == 101 * 3 * 3200


def test_which_decisions_release_the_gil():
    small, _ = _linucb(10, 20)
    assert not small._snapshot.server.releases_gil  # 2,300 multiply-adds: keeps the GIL
    middle, _ = _linucb(20, 50)  # 26,500: a hand-over can cost more (bench/RESULTS.md)
    assert not middle._snapshot.server.releases_gil
    big, _ = _linucb(50, 50)  # 66,250
    assert big._snapshot.server.work >= BANDIT_SERVE_NOGIL_WORK
    assert big._snapshot.server.releases_gil
    for policy in (GaussianTS(["a", "b"]), BetaTS(["a", "b"])):  # the propensity draws
        assert policy._snapshot.server.releases_gil
    for policy in (EpsilonGreedy(["a", "b"], epsilon=0.1), UCB1(["a", "b"])):
        assert not policy._snapshot.server.releases_gil
    table, X, names, ids = _logs(300, 4, 3, 1)
    assert LinTS(ids, features=names)._snapshot.server.releases_gil
    assert not LinEpsilonGreedy(ids, features=names)._snapshot.server.releases_gil


@pytest.mark.parametrize("make", [lambda: _linucb(10, 20)[0], lambda: _linucb(20, 50)[0]])
def test_released_and_held_decide_alike(monkeypatch, make):
    held, released = {}, {}
    for out, threshold in ((held, 1 << 62), (released, 0)):
        monkeypatch.setattr(serving, "BANDIT_SERVE_NOGIL_WORK", threshold)
        monkeypatch.setattr(serving, "BANDIT_SERVE_NOGIL_ROWS_WORK", threshold)
        policy = make()
        assert policy._snapshot.server.releases_gil == (threshold == 0)
        X = np.random.default_rng(3).normal(size=(200, policy.n_features))
        out["one"] = [policy.decide_one(x, seed=i) for i, x in enumerate(X)]
        out["rows"] = [a.tolist() for a in policy.decide_rows(X, seed=5)]
    assert held == released


@pytest.mark.skipif(not getattr(sys, "_is_gil_enabled", lambda: True)(),
                    reason="about handing over a GIL; a free-threaded build has none to hand over")
def test_a_large_decision_lets_another_thread_run():
    # With a 1 s switch interval, a thread that never releases the GIL would run its whole
    # loop before the main thread got the GIL back; a released decision hands it over each call.
    policy, _ = _linucb(60, 120, n=2000)
    assert policy._snapshot.server.releases_gil
    x = np.random.default_rng(0).normal(size=120)
    calls, ticks = 300, []
    done = threading.Event()

    def decide():
        for i in range(calls):
            policy.decide_one(x, seed=i)
        done.set()

    old = sys.getswitchinterval()
    sys.setswitchinterval(1.0)
    try:
        worker = threading.Thread(target=decide)
        worker.start()
        while not done.is_set():
            ticks.append(1)
            time.sleep(0)  # gives the GIL back to the worker
        worker.join()
    finally:
        sys.setswitchinterval(old)
    assert len(ticks) >= calls // 4, len(ticks)


def test_unseeded_calls_follow_the_service_stream():
    # Unseeded decide_one takes rows 0, 1, 2, ... of the policy's service stream: the same
    # decisions and propensities as decide(seed=stream seed) row by row.
    policy = GaussianTS(["a", "b", "c"])
    policy._service = serve_native.ServiceStream(12345)
    policy._refresh()  # the server binds the policy's stream
    ref = policy.decide_rows(np.zeros((50, 0)), seed=12345)
    got = [policy.decide_one() for _ in range(50)]
    assert [g[0] for g in got] == list(ref[0])
    np.testing.assert_array_equal([g[1] for g in got], ref[1])


def test_unseeded_calls_from_threads_take_distinct_rows():
    # Each thread takes blocks of ROW_BLOCK rows by one atomic add and uses them in order.
    policy, X = _linucb(4, 5)
    stream = policy._service
    start = stream.take() + 1
    n_threads, per_thread = 4, 5000
    rows = [[] for _ in range(n_threads)]

    def serve(k):
        for i in range(per_thread):
            policy.decide_one(X[i % len(X)])
        rows[k] = [serve_native.take_service_row(policy) for _ in range(per_thread)]

    threads = [threading.Thread(target=serve, args=(k,)) for k in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    taken = [r for part in rows for r in part]
    assert len(set(taken)) == len(taken)  # no row used twice
    assert all(start <= r for r in taken)
    block = serve_native.ROW_BLOCK
    per_thread_blocks = -(-2 * per_thread // block)
    assert stream.take() == start + n_threads * per_thread_blocks * block  # no block lost


def test_one_thread_takes_consecutive_rows_across_updates():
    policy, X = _linucb(3, 4)
    first = [serve_native.take_service_row(policy) for _ in range(10)]
    policy.update_one(X[0], arm=policy.arms[0].as_py(), reward=1.0)  # a new snapshot and server
    after = [serve_native.take_service_row(policy) for _ in range(10)]
    assert first + after == list(range(first[0], first[0] + 20))


def test_decide_one_is_the_compiled_method():
    assert LinUCB.decide_one is serve_native.ServingBase.decide_one
    assert "One decision for a service" in LinUCB.decide_one.__doc__
    assert BANDIT_TS_PROPENSITY_DRAWS > 0
