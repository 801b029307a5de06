"""``fastengage bench``: throughput of the installed fastengage on generated data, side by side
with the peers that are installed, as a table and as pytest-benchmark JSON; ``--compare`` fails
(exit status 1) on a regression against a previous ``--json`` file.

What is compared (both survive a machine of another speed or a busy one better than seconds):

* ``normalized``: fastengage's median time divided by the median of the yardstick (a fixed
  workload compiled with fastengage, ``fastengage.kernels.common.yardstick``) timed in the same
  process; it may not grow by more than the tolerance. It is compared only between runs on the
  same CPU model (``machine``), because how a kernel and the yardstick scale from one CPU to
  another differs by more than any sensible tolerance;
* ``ratios``: the speed-up over each peer, timed interleaved with fastengage round by round
  (so both see the same load); none may shrink by more than the tolerance.
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import statistics
import sys
import time

import numpy as np

from .gendata import SIZES

__all__ = ["run_bench", "compare_results", "add_bench_command", "reference_seconds"]

_ROUNDS = {"tiny": 3, "small": 5, "medium": 5, "large": 3}


#: Names the yardstick in every record: a figure normalized by another workload (the numpy sort,
#: then yardstick-1 with its TLB-sensitive 32 MiB table) is never compared with one normalized
#: by this one.
REFERENCE = "yardstick-2"


def reference_seconds(repeats: int = 5, clock=time.perf_counter) -> float:
    """Median time of the yardstick (``fastengage.kernels.common.yardstick``): what timings are
    divided by to make them comparable between runs whose machine load differs. ``clock`` may be
    ``time.process_time`` for figures measured in CPU seconds."""
    from ..kernels.common import yardstick

    table = yardstick.make_table()
    yardstick.run(table, 100_000)  # page the table in
    times = []
    for _ in range(repeats):
        t0 = clock()
        yardstick.run(table)
        times.append(clock() - t0)
    return statistics.median(times)


def machine() -> str:
    """CPU model, the microarchitecture LLVM compiles the kernels for, and core count: normalized
    times are compared only on the same kind of machine. The model name alone is not enough:
    cloud VMs report Zen 3 and Zen 4 hosts both as "AMD EPYC", and the two run our kernels and
    the peers' at different relative speeds."""
    model = platform.processor() or platform.machine()
    try:
        import llvmlite.binding as ll

        arch = f" ({ll.get_host_cpu_name()})"
    except Exception:  # llvmlite comes with numba; without it the model name has to do
        arch = ""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{model}{arch} x{os.cpu_count()}"


def _stats(times: list[float]) -> dict:
    """pytest-benchmark's ``stats`` block for one benchmark."""
    data = sorted(times)
    q1, q3 = np.percentile(data, [25, 75])
    iqr = q3 - q1
    mean = statistics.fmean(data)
    stddev = statistics.stdev(data) if len(data) > 1 else 0.0
    lo, hi = q1 - 1.5 * iqr, q3 + 1.5 * iqr
    return {"min": data[0], "max": data[-1], "mean": mean, "stddev": stddev,
            "rounds": len(data), "median": statistics.median(data), "iqr": float(iqr),
            "q1": float(q1), "q3": float(q3),
            "iqr_outliers": sum(1 for t in data if t < lo or t > hi),
            "stddev_outliers": sum(1 for t in data if abs(t - mean) > stddev),
            "outliers": "0;0", "ld15iqr": min(t for t in data if t >= lo),
            "hd15iqr": max(t for t in data if t <= hi), "ops": 1.0 / mean, "total": sum(data),
            "data": times, "iterations": 1}


def _measure(case, rounds: int, log) -> dict:
    result = case.ours()  # warm-up: loads or compiles the kernels
    peer_results = {}
    for name, fn in case.peers.items():
        peer_results[name] = fn()
        if case.check is not None:
            case.check(result, peer_results[name], name)
    ours_t = []
    peer_t = {name: [] for name in case.peers}
    for _ in range(rounds):  # interleaved: every round times fastengage then each peer
        t0 = time.perf_counter()
        case.ours()
        ours_t.append(time.perf_counter() - t0)
        for name, fn in case.peers.items():
            t0 = time.perf_counter()
            fn()
            peer_t[name].append(time.perf_counter() - t0)
    median = statistics.median(ours_t)
    ratios = {name: statistics.median(t) / median for name, t in peer_t.items()}
    return {"times": ours_t, "median": median, "ratios": ratios,
            "peer_medians": {n: statistics.median(t) for n, t in peer_t.items()}}


def run_bench(capabilities, size: str = "small", *, log=print, rounds: int | None = None) -> dict:
    """Run the bench cases; return a pytest-benchmark-layout document."""
    from .benchcases import cases

    rows = SIZES[size]
    rounds = rounds or _ROUNDS[size]
    ref = reference_seconds()
    benchmarks = []
    for cap in capabilities:
        for case in cases(cap, rows):
            m = _measure(case, rounds, log)
            extra = {"size": size, "units": case.units, "count": case.count,
                     "throughput": case.count / m["median"], "reference_s": ref,
                     "normalized": m["median"] / ref, "reference": REFERENCE,
                     "machine": machine(), "ratios": m["ratios"],
                     "peer_medians": m["peer_medians"], "skipped_peers": case.skipped}
            benchmarks.append({
                "group": cap, "name": case.name, "fullname": f"fastengage.bench::{case.name}",
                "params": {"size": size}, "param": size, "extra_info": extra,
                "options": {"disable_gc": False, "timer": "perf_counter", "min_rounds": rounds,
                            "max_time": 0, "min_time": 0, "warmup": True},
                "stats": _stats(m["times"]),
            })
            log(benchmarks[-1])
    from .. import __version__

    return {
        "machine_info": {"node": platform.node(), "processor": platform.processor(),
                         "machine": platform.machine(), "python_version": platform.python_version(),
                         "python_implementation": platform.python_implementation(),
                         "release": platform.release(), "system": platform.system(),
                         "cpu": {"count": __import__("os").cpu_count()}},
        "commit_info": {"fastengage": __version__},
        "benchmarks": benchmarks,
        "datetime": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "version": "4.0.0",
    }


def compare_figures(baseline: dict, current: dict, tolerance: float,
                    notes: list | None = None) -> tuple[list, list]:
    """``(regressions, missing)`` as human-readable lines, for figures keyed by benchmark:
    ``{"normalized": time / reference time, "ratios": {peer: speed-up}, "reference": yardstick
    name, "machine": CPU model}``. A normalized time may not grow, nor a speed-up shrink, by more
    than ``tolerance``; a key of the baseline absent from ``current`` is missing (reported, not a
    regression). Normalized times are compared only when both figures name the same yardstick
    and machine; otherwise a line saying why goes to ``notes`` (when given) and only the ratios
    are checked. Shared by ``fastengage bench --compare`` and ``bench/regress.py``."""
    regressions, missing = [], []
    for name, b in sorted(baseline.items()):
        c = current.get(name)
        if c is None:
            missing.append(name)
            continue
        bn, cn = b["normalized"], c["normalized"]
        unlike = [k for k in ("reference", "machine") if b.get(k) != c.get(k)]
        if unlike:
            if notes is not None:
                notes.append(f"{name}: normalized time not compared ("
                             + "; ".join(f"{k} {b.get(k)!r} in the baseline, {c.get(k)!r} now"
                                         for k in unlike) + ")")
        elif cn > bn * (1 + tolerance):
            regressions.append(f"{name}: normalized time {cn:.3g} vs baseline {bn:.3g} "
                               f"(+{cn / bn - 1:.0%})")
        for peer, ratio in b.get("ratios", {}).items():
            got = c.get("ratios", {}).get(peer)
            if got is not None and got < ratio * (1 - tolerance):
                regressions.append(f"{name}: speed-up vs {peer} {got:.2f}x vs baseline {ratio:.2f}x")
    return regressions, missing


def report_comparison(regressions: list, missing: list, notes: list) -> None:
    """Print what :func:`compare_figures` found, one line each (the CLI's and bench/regress.py's
    output)."""
    for name in missing:
        print(f"missing (not run): {name}")
    for line in notes:
        print(f"note: {line}")
    for line in regressions:
        print(f"REGRESSION {line}")


def compare_results(current: dict, baseline: dict, tolerance: float,
                    notes: list | None = None) -> tuple[list, list]:
    """``(regressions, missing)``: human-readable lines; see the module docstring."""
    def figures(results):
        return {b["name"]: {"normalized": _normalized(b),
                            "ratios": b["extra_info"].get("ratios", {}),
                            "reference": b["extra_info"].get("reference"),
                            "machine": b["extra_info"].get("machine")}
                for b in results.get("benchmarks", [])}

    return compare_figures(figures(baseline), figures(current), tolerance, notes)


def _normalized(bench: dict) -> float:
    extra = bench.get("extra_info", {})
    if "normalized" in extra:
        return extra["normalized"]
    return bench["stats"]["median"] / extra.get("reference_s", 1.0)


def add_bench_command(subparsers) -> None:
    """Register ``fastengage bench`` on an ``argparse`` sub-parsers object."""
    from .benchcases import BENCH_CAPABILITIES

    p = subparsers.add_parser(
        "bench", help="benchmark the installed fastengage on generated data (vs installed peers)",
        description="Time each capability on generated data, next to the peers that are "
                    "installed (skipped with a note otherwise). Writes pytest-benchmark JSON; "
                    "with --compare, exits 1 when a figure regressed beyond --tolerance.")
    p.add_argument("--capability", default=",".join(BENCH_CAPABILITIES),
                   help=f"comma-separated subset of {','.join(BENCH_CAPABILITIES)}")
    p.add_argument("--size", choices=["tiny", "small", "medium", "large"], default="small",
                   help="rows of generated transactions: " +
                        ", ".join(f"{k} {v:,}" for k, v in SIZES.items()))
    p.add_argument("--rounds", type=int, default=None, help="timed rounds per case")
    p.add_argument("--json", metavar="OUT", help="write results (pytest-benchmark JSON layout)")
    p.add_argument("--compare", metavar="BASELINE", help="a previous --json file")
    p.add_argument("--tolerance", type=float, default=0.3,
                   help="allowed relative slow-down for --compare (default 0.3 = 30%%)")
    p.set_defaults(run=_run_bench)


def _run_bench(args) -> int:
    from .._io.output import atomic_output, say
    from .benchcases import BENCH_CAPABILITIES
    from .workloads import parse_capabilities

    caps = parse_capabilities(args.capability, BENCH_CAPABILITIES)
    if caps is None:
        return 2
    if args.rounds is not None and args.rounds < 1:
        say("fastengage: error: --rounds must be >= 1")
        return 2
    baseline = None
    if args.compare:
        with open(args.compare) as fh:
            baseline = json.load(fh)
    print(f"{'benchmark':<52}{'median':>10}{'throughput':>22}  speed-up vs peers")

    def log(b):
        e = b["extra_info"]
        peers = ", ".join(f"{p} {r:.2f}x" for p, r in e["ratios"].items()) or "-"
        notes = "; ".join(f"{p} skipped: {why}" for p, why in e["skipped_peers"].items())
        print(f"{b['name']:<52}{b['stats']['median']:>9.4f}s{e['throughput']:>15,.0f} {e['units']}/s"
              f"  {peers}" + (f"  ({notes})" if notes else ""), flush=True)

    doc = run_bench(caps, args.size, log=log, rounds=args.rounds)
    if args.json:
        with atomic_output(args.json) as tmp:
            with open(tmp, "w") as fh:
                json.dump(doc, fh, indent=1)
    if baseline is None:
        return 0
    notes = []
    regressions, missing = compare_results(doc, baseline, args.tolerance, notes)
    report_comparison(regressions, missing, notes)
    print(f"{len(baseline.get('benchmarks', [])) - len(missing)} benchmarks compared with "
          f"{args.compare}: {len(regressions)} regressions (tolerance {args.tolerance:.0%})")
    sys.stdout.flush()
    return 1 if regressions else 0
