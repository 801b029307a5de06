"""Does decide_one scale with threads? Two threads against one, for the ways a service calls it.

    python bench/thread_scaling.py            # 10 arms x 20 features
    python bench/thread_scaling.py 50 50      # another model size

Meant for a free-threaded CPython (3.14t), where threads run Python code in parallel; on a GIL
build every line is ~1x or less (see bench/gil_handoff.py for that case). Each pattern runs
~0.5 s of calls on one thread, then the same number split over two, medians of 7 rounds:

- plain Python: a loop of float arithmetic, the ceiling the machine gives two threads;
- policy.decide_one(x): a service handler, the policy a local, unseeded (service stream);
- bound method: ``decide = policy.decide_one`` once per thread, seeded;
- server: the snapshot's compiled server called directly (no policy, no thread cache).

Every thread decides its own rows (its own arrays), as request threads do.
"""
from __future__ import annotations

import os
import sys

import numpy as np
from gil_handoff import logs, two_over_one  # run as a script: bench/ is on the path

from fastengage.bandits import LinUCB


def policy_and_rows(K: int, D: int):
    table, X, names, ids = logs(K, D)
    return LinUCB(ids, features=names).update(table, arm="arm", reward="r"), X[:1000]


def patterns(policy, X):
    def plain(m):
        rows = [np.ascontiguousarray(x) for x in X]
        total = 0.0
        for i in range(m):
            total += rows[i % 1000][0] * 1.5

    def handler(m):
        rows, local = [np.ascontiguousarray(x) for x in X], policy
        for i in range(m):
            local.decide_one(rows[i % 1000])

    def bound(m):
        rows, decide = [np.ascontiguousarray(x) for x in X], policy.decide_one
        for i in range(m):
            decide(rows[i % 1000], None, i)

    def server(m):
        rows, decide = [np.ascontiguousarray(x) for x in X], policy._snapshot.server.decide_one
        for i in range(m):
            decide(rows[i % 1000], None, i)

    return {"plain Python": plain, "policy.decide_one(x)": handler, "bound method": bound,
            "server": server}


def main(argv):
    K, D = (int(a) for a in argv[:2]) if len(argv) >= 2 else (10, 20)
    policy, X = policy_and_rows(K, D)
    gil = getattr(sys, "_is_gil_enabled", lambda: True)()
    print(f"{K} arms x {D} features; {'GIL build' if gil else 'free-threaded, GIL off'}; "
          f"server releases the GIL: {policy._snapshot.server.releases_gil}")
    for name, loop in patterns(policy, X).items():
        seconds, ratio = two_over_one(loop, seconds=0.5, n_rounds=7)
        print(f"{name:>22}: {seconds * 1e6:6.3f} us a call, 2 threads / 1 {ratio:5.2f}x   "
              f"load {os.getloadavg()[0]:.1f}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
