"""CPU time of monitor.drift and experiments.readout beside their peers, interleaved rounds,
medians: figures that survive a loaded machine better than wall time (see bench/RESULTS.md).

    python -m bench.monitor_cpu [--rows 1000000] [--cols 20] [--rounds 3]

Drift: fastengage on one thread (``n_threads=1``) vs the bench's scipy/NumPy peer
(bench/bench_monitor.py::_scipy_drift), both from in-memory data, answers asserted equal; beside
them the sorted path (drift of two profiles) on one thread and the 2-thread wall of drift().
Readout: the bench's 1M users x 10 metrics x 5 segments, CPU time of ``readout`` (all threads).
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import pyarrow as pa


def cpu_of(fn):
    start = time.process_time()
    out = fn()
    return time.process_time() - start, out


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--cols", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-readout", action="store_true")
    args = parser.parse_args(argv)

    from bench.bench_monitor import _scipy_drift
    from bench.evidently_compare import columns
    from fastengage.monitor import drift

    from fastengage.monitor import Profile

    ref, cur = columns(args.rows, args.cols, 0, 0.0), columns(args.rows, args.cols, 1, 0.02)
    t_ref, t_cur = pa.table(ref), pa.table(cur)
    drift(t_ref, t_cur, n_threads=1)
    sorted_path = lambda: drift(Profile.from_data(t_ref, n_threads=1),  # noqa: E731
                                Profile.from_data(t_cur, n_threads=1), n_threads=1)
    sorted_path()
    ours, peer, before, walls, peer_walls = [], [], [], [], []
    for _ in range(args.rounds):
        t, table = cpu_of(lambda: drift(t_ref, t_cur, n_threads=1))
        ours.append(t)
        wall = time.perf_counter()
        drift(t_ref, t_cur, n_threads=2)
        walls.append(time.perf_counter() - wall)
        before.append(cpu_of(sorted_path)[0])
        wall = time.perf_counter()
        t, theirs = cpu_of(lambda: _scipy_drift(ref, cur))
        peer_walls.append(time.perf_counter() - wall)
        peer.append(t)
    rows = {r["column"]: r for r in table.to_pylist()}
    for name, (ks, p, w, js, psi) in theirs.items():
        assert abs(rows[name]["ks_statistic"] - ks) <= 1e-12
        assert abs(rows[name]["ks_pvalue"] - p) <= 1e-9 * max(p, 1e-300) + 1e-15
        assert abs(rows[name]["wasserstein"] - w) <= 1e-9 * w
    o, s = statistics.median(ours), statistics.median(peer)
    print(f"drift {args.rows}x{args.cols}: fastengage CPU {o:.3f} s (1 thread), scipy+NumPy CPU "
          f"{s:.3f} s, ratio {s / o:.1f}x; rounds {[round(x, 3) for x in ours]} vs "
          f"{[round(x, 2) for x in peer]}; load {os.getloadavg()[0]:.1f}")
    print(f"  sorted path (profiles of both sides, the path before the bucket kernel) CPU "
          f"{statistics.median(before):.3f} s {[round(x, 3) for x in before]}; "
          f"2-thread wall of drift() {statistics.median(walls):.3f} s "
          f"{[round(x, 3) for x in walls]} vs scipy+NumPy wall {statistics.median(peer_walls):.2f} s: "
          f"{statistics.median(peer_walls) / statistics.median(walls):.1f}x; load "
          f"{os.getloadavg()[0]:.1f}")
    if args.skip_readout:
        return
    os.environ["FASTENGAGE_BENCH"] = "full"
    import importlib

    import bench.bench_experiments as be
    importlib.reload(be)  # the module reads the size at import
    from fastengage.experiments import readout

    table, arm, cols = be._data()
    metrics = be.REVENUE + be.CONVERSIONS
    run = lambda: readout(table, variant="arm", control="A", metrics=metrics, segment="seg",
                          correction="holm")
    run()
    times = [cpu_of(run)[0] for _ in range(5)]
    walls = []
    for _ in range(5):
        w = time.perf_counter()
        run()
        walls.append(time.perf_counter() - w)
    print(f"readout {be.N} users x 10 metrics x 5 segments: CPU median "
          f"{statistics.median(times):.3f} s, wall median {statistics.median(walls):.3f} s; "
          f"load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
