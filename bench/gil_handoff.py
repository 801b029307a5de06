"""When should a bandit service call release the GIL? Two threads against one, released vs held.

    python bench/gil_handoff.py                 # the grid behind BANDIT_SERVE_NOGIL_WORK / _ROWS_WORK
    python bench/gil_handoff.py 10 20 0 64      # one model (arms, features), rows per call (0: decide_one)

For each model, two LinUCB policies with the same statistics: one whose server always releases
the GIL around a decision, one that always holds it. Each is timed deciding for ~0.4 s on one
thread, then the same calls split over two threads (medians of 3 rounds). Released and held give
the same decisions (asserted); only the rate differs. A CPython thread waiting for the GIL sleeps
on a condition variable, so each hand-over costs a wake-up and a sleep (~1 us on a 2-vCPU VM):
below a certain decision length, releasing the GIL makes two threads slower than one.
"""
from __future__ import annotations

import os
import statistics
import sys
import threading
import time

import numpy as np
import pyarrow as pa

import fastengage.bandits._serving as serving
from fastengage.bandits import LinUCB

GRID = [(10, 20, 0), (10, 50, 0), (30, 30, 0), (15, 50, 0), (10, 70, 0), (20, 50, 0),
        (10, 20, 16), (10, 20, 64), (10, 20, 128), (10, 20, 256), (20, 50, 16), (20, 50, 64)]


def logs(K, D, n=20_000):
    """Seeded logs of K arms x D features with linear rewards: (table, X, feature names, arms)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, D))
    names, ids = [f"f{j}" for j in range(D)], [f"a{a}" for a in range(K)]
    codes = rng.integers(0, K, n)
    table = pa.table({**{f: X[:, j] for j, f in enumerate(names)},
                      "arm": pa.array(np.asarray(ids)[codes]),
                      "r": X[:, 0] * codes + rng.normal(size=n)})
    return table, X, names, ids


def policies(K, D, n=20_000):
    table, X, names, ids = logs(K, D, n)
    out = {}
    saved = serving.BANDIT_SERVE_NOGIL_WORK, serving.BANDIT_SERVE_NOGIL_ROWS_WORK
    try:
        for released, threshold in ((True, 0), (False, 1 << 62)):
            serving.BANDIT_SERVE_NOGIL_WORK = serving.BANDIT_SERVE_NOGIL_ROWS_WORK = threshold
            out[released] = LinUCB(ids, features=names).update(table, arm="arm", reward="r")
    finally:
        serving.BANDIT_SERVE_NOGIL_WORK, serving.BANDIT_SERVE_NOGIL_ROWS_WORK = saved
    return out, X


def caller(policy, X, rows_per_call):
    """A loop of n seeded calls, and the decisions of one call."""
    if rows_per_call == 0:
        rows = [np.ascontiguousarray(x) for x in X[:1000]]
        decide = policy.decide_one

        def loop(n):
            for i in range(n):
                decide(rows[i % 1000], None, i)
        return loop, 1, [decide(rows[i], None, i) for i in range(1000)]
    blocks = [np.ascontiguousarray(X[i:i + rows_per_call]) for i in range(0, 8192, rows_per_call)]
    decide = policy.decide_rows

    def loop(n):
        for i in range(n):
            decide(blocks[i % len(blocks)], None, 0)
    return loop, rows_per_call, [decide(b, None, 0)[0].tolist() for b in blocks]


def two_over_one(loop, seconds=0.4, n_rounds=3):
    """(seconds a call on one thread, rate of two threads / rate of one), medians of n_rounds."""
    t0 = time.perf_counter()
    loop(50)
    n = max(2 * int(seconds / ((time.perf_counter() - t0) / 50) / 2), 20)
    rounds = []
    for _ in range(n_rounds):
        t0 = time.perf_counter()
        loop(n)
        one = time.perf_counter() - t0
        threads = [threading.Thread(target=loop, args=(n // 2,)) for _ in range(2)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        rounds.append((one, time.perf_counter() - t0))
    one = statistics.median(r[0] for r in rounds)
    return one / n, one / statistics.median(r[1] for r in rounds)


def measure(K, D, rows_per_call):
    pols, X = policies(K, D)
    res, answers = {}, {}
    for released, policy in pols.items():
        assert policy._snapshot.server.releases_gil == released or rows_per_call
        loop, per, answers[released] = caller(policy, X, rows_per_call)
        per_call, ratio = two_over_one(loop)
        res[released] = (per_call / per * 1e6, ratio)
    assert answers[True] == answers[False]
    work = pols[True]._snapshot.server.work * max(rows_per_call, 1)
    return {"arms": K, "features": D, "rows_per_call": rows_per_call, "work": work,
            "released_us_per_decision": res[True][0], "released_2_over_1": res[True][1],
            "held_us_per_decision": res[False][0], "held_2_over_1": res[False][1],
            "load": os.getloadavg()[0]}


def main(argv):
    grid = [tuple(int(a) for a in argv[:3])] if len(argv) >= 3 else GRID
    print(f"{'model':>8} {'rows/call':>9} {'work':>9}  released: us/decision 2t/1t   "
          f"held: us/decision 2t/1t   load")
    for K, D, rows in grid:
        r = measure(K, D, rows)
        print(f"{K:>3} x {D:<3} {rows:>9} {r['work']:>9,}  {r['released_us_per_decision']:>10.3f} "
              f"{r['released_2_over_1']:>6.2f}x   {r['held_us_per_decision']:>10.3f} "
              f"{r['held_2_over_1']:>6.2f}x   {r['load']:.1f}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
