"""Side-by-side measurement: fastengage and the tool a user would otherwise pick, in one run.

Every benchmark calls :func:`compare`. It checks that every peer gives the same answer, then
times fastengage through pytest-benchmark (so ``--benchmark-*`` options and JSON output work as
usual) with one round of each peer before each of its rounds (interleaved, in the same process),
and records medians and ratios. Ratios (peer time / fastengage time, >1 means fastengage is
faster) are what we quote: the machine is shared and absolute times drift.

Each call also appends one JSON line to ``bench/out/results.jsonl`` holding the medians, the
ratios and the median of the yardstick (a fixed compiled workload) timed in the same run, which is what
``bench/regress.py`` compares with the committed baseline.
"""
from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path
from typing import Any, Callable, Mapping

from fastengage.tools import benchrun

OUT_DIR = Path(__file__).parent / "out"
RESULTS = OUT_DIR / "results.jsonl"

_REFERENCE_CACHE: dict[str, float] = {}

#: Pause before every timed call, on both sides. A library's idle worker threads keep spinning
#: for a while after a call (OpenBLAS ~0.1 s, the THREAD_TIMEOUT of 2^28 cycles; OpenMP's
#: active wait), on the cores the next call needs: with the sides interleaved, MABWiser's BLAS
#: threads were measured spinning through fastengage's 40 ms fit (its CPU time twice its wall
#: time on one thread). Each side is timed without the other's spinning threads. Smoke runs
#: (CI: tiny data, timings not quoted) skip the pause; it cost ~0.4 s a benchmark there.
SETTLE_S = 0.2


def settle() -> None:
    """Let the other side's worker threads go idle before a timed call (see ``SETTLE_S``);
    only in full-size runs, whose timings are the ones quoted."""
    if bench_size() == "full":
        time.sleep(SETTLE_S)


def reference_seconds() -> float:
    """Median time of the yardstick (``fastengage.tools.benchrun.reference_seconds``), measured
    once per process: what bench/regress.py divides every median by."""
    if "ref" not in _REFERENCE_CACHE:
        _REFERENCE_CACHE["ref"] = benchrun.reference_seconds()
    return _REFERENCE_CACHE["ref"]


def compare(benchmark, name: str, ours: Callable[[], Any], peers: Mapping[str, Callable[[], Any]],
            check: Callable[[Any, Any, str], None], *, rounds: int = 3,
            peer_rounds: int | None = None, size: str = "",
            extra: Mapping[str, Any] | None = None) -> dict:
    """Measure ``ours`` against each peer on the same data in this run.

    Parameters
    ----------
    benchmark : pytest-benchmark fixture
    name : str
        Stable identifier of the measurement (used as the baseline key).
    ours : callable
        Runs fastengage; its return value is passed to ``check``.
    peers : mapping of peer name to callable
        Each runs the peer on the same data.
    check : callable(ours_result, peer_result, peer_name)
        Asserts that the two results are the same answer.
    rounds : int
        Timed repetitions of each side (after one warm-up call).
    peer_rounds : int, optional
        Timed repetitions of each peer, when a peer is too slow for ``rounds`` of them (default
        ``rounds``). Our own median, which the regression check normalizes, still gets ``rounds``.

    Returns
    -------
    dict with ``median_s`` (ours), ``peers`` ({name: median_s}) and ``ratios`` ({name: peer/ours}).
    """
    ours_result = ours()  # warm-up, also JIT compilation
    n_peer_rounds = rounds if peer_rounds is None else peer_rounds
    for peer_name, fn in peers.items():
        check(ours_result, fn(), peer_name)  # the peer's warm-up call is the one checked
    del ours_result
    peer_times: dict[str, list[float]] = {peer_name: [] for peer_name in peers}

    def one_peer_round():
        # Runs before each of our timed rounds, untimed by pytest-benchmark: with the sides
        # interleaved, another process's burst of load lands on both, not on one side's block
        # of back-to-back rounds (which swung memory-bound ratios by 1.6x between quiet runs).
        for peer_name, fn in peers.items():
            if len(peer_times[peer_name]) < n_peer_rounds:
                settle()
                t0 = time.perf_counter()
                fn()
                peer_times[peer_name].append(time.perf_counter() - t0)
        settle()  # before our round

    benchmark.pedantic(ours, setup=one_peer_round, rounds=rounds, iterations=1, warmup_rounds=0)
    ours_median = benchmark.stats.stats.median if benchmark.stats is not None else None
    if ours_median is None:  # --benchmark-disable (pytest-xdist): time it ourselves
        ours_times = []
        for _ in range(rounds):
            one_peer_round()  # ends with settle()
            t0 = time.perf_counter()
            ours()
            ours_times.append(time.perf_counter() - t0)
        ours_median = statistics.median(ours_times)
    while any(len(t) < n_peer_rounds for t in peer_times.values()):
        one_peer_round()  # peers timed more often than ours
    peer_medians = {peer_name: statistics.median(t) for peer_name, t in peer_times.items()}
    ratios = {peer_name: median / ours_median for peer_name, median in peer_medians.items()}
    record = {
        "name": name,
        "size": size,
        "median_s": ours_median,
        "peers": peer_medians,
        "ratios": ratios,
        "reference_s": reference_seconds(),
        "reference": benchrun.REFERENCE,
        "machine": benchrun.machine(),
        "rounds": rounds,
        "peer_rounds": n_peer_rounds,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        **(dict(extra) if extra else {}),
    }
    benchmark.extra_info.update({k: v for k, v in record.items() if k != "name"})
    OUT_DIR.mkdir(exist_ok=True)
    with open(RESULTS, "a") as fh:
        fh.write(json.dumps(record) + "\n")
    line = ", ".join(f"{p}: {r:.2f}x" for p, r in ratios.items())
    print(f"\n[{name}] fastengage median {ours_median:.4f}s; speed-up vs {line}")
    return record


def bench_size() -> str:
    """``"smoke"`` (default: tiny sizes, for CI) or ``"full"`` (FASTENGAGE_BENCH=full)."""
    return os.environ.get("FASTENGAGE_BENCH", "smoke")
