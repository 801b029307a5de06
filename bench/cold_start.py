"""Cold start: the first call of each capability in a fresh process, with an empty Numba cache
(cold) and with the cache that run filled (warm); and a cold ``fastengage demo``.

    python bench/cold_start.py [--capability rfm,profile,...] [--rows 50000] [--no-demo]

Default: every capability of ``fastengage.tools.workloads`` plus ``score`` (scoring alone;
``scoring`` scores rfm features, so it includes rfm's first call) and ``ope`` (the bandits'
off-policy evaluation; ``bandits`` is update + decide + ``decide_one``).

Data: the first 50,000 Online Retail rows with a customer id (``fastengage.datasets``). Each
figure comes from a new interpreter with ``NUMBA_CACHE_DIR`` pointing at a fresh folder, so the
shared cache next to the kernels is neither used nor disturbed. For every measurement both wall
time and CPU time (all threads) are recorded: on a loaded machine the wall time includes waiting
for a core, the CPU time is what a quiet 2-core machine would need (compilation is serial).

Records appended to ``bench/out/results.jsonl`` (compatible with ``bench/regress.py``):
``name = "cold_start.<capability>"``, ``size = "cold"`` or ``"warm"``, ``median_s`` = CPU seconds
of import + first call, ``reference_s`` = CPU seconds of the fixed sort workload. The per-kernel
compile profile (kernel, specialisations, parallel, exclusive compile seconds) of every cold run
goes to ``bench/out/cold_start_profile.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time


HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "out")
sys.path.insert(0, os.path.dirname(HERE))

from fastengage.tools import benchrun  # noqa: E402
from fastengage.tools.coldstart import first_call_in_fresh_process, summarize  # noqa: E402
from fastengage.tools.workloads import CAPABILITIES  # noqa: E402

#: Every first call measured by default, in order.
FIRST_CALLS = CAPABILITIES + ("score", "ope")


def reference_cpu_seconds() -> float:
    """CPU seconds of the yardstick (the same workload bench/_compare.py times in wall seconds)."""
    return benchrun.reference_seconds(clock=time.process_time)


def cold_demo(cache_dir: str) -> dict:
    """``fastengage demo`` in a fresh process with an empty cache: wall and CPU seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "fastengage", "demo", "--out", out],
                              capture_output=True, text=True,
                              env=dict(os.environ, NUMBA_CACHE_DIR=cache_dir))
        wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"demo failed:\n{proc.stderr[-3000:]}")
    steps = [line for line in proc.stdout.splitlines() if line.startswith("== ")]
    return {"wall_s": wall, "cpu_s": (after.ru_utime - before.ru_utime) +
            (after.ru_stime - before.ru_stime), "steps": steps}


def _record(name, size, cpu, ref, **extra) -> dict:
    return {"name": name, "size": size, "median_s": cpu, "reference_s": ref, "ratios": {},
            "reference": benchrun.REFERENCE, "machine": benchrun.machine(), "time": time.strftime("%Y-%m-%dT%H:%M:%S"), **extra}


def _secs(kernel: dict) -> float:
    # CPU seconds of the compiling thread; wall seconds in profiles written before they existed
    return kernel.get("compile_cpu_s", kernel["compile_s"])


def markdown(profiles: dict, top: int = 8) -> str:
    """The heaviest kernels per capability as a Markdown table (from cold_start_profile.json)."""
    lines = ["| capability | kernel | specialisations | parallel | compile s | share |",
             "| --- | --- | --- | --- | --- | --- |"]
    for cap, kernels in profiles.items():
        total = sum(_secs(k) for k in kernels) or 1.0
        lines.append(f"| **{cap}** | all {len(kernels)} kernels | "
                     f"{sum(k['specialisations'] for k in kernels)} | "
                     f"{sum(1 for k in kernels if k['parallel'])} parallel | {total:.1f} | 100% |")
        for k in kernels[:top]:
            name = k["kernel"].replace("fastengage.kernels.", "")
            lines.append(f"| | `{name}` | {k['specialisations']} | {'yes' if k['parallel'] else ''}"
                         f" | {_secs(k):.2f} | {_secs(k) / total:.0%} |")
    return "\n".join(lines)


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", metavar="PROFILE_JSON",
                        help="only print the Markdown table of a saved profile, then exit")
    parser.add_argument("--capability", default=",".join(FIRST_CALLS),
                        help=f"comma-separated subset of {','.join(FIRST_CALLS)} (default: all)")
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--no-demo", action="store_true")
    args = parser.parse_args(argv)
    if args.report:
        with open(args.report) as fh:
            print(markdown(json.load(fh)))
        return []
    ref = reference_cpu_seconds()
    records, profiles = [], {}
    os.makedirs(OUT, exist_ok=True)
    for cap in [c.strip() for c in args.capability.split(",") if c.strip()]:
        cache = tempfile.mkdtemp(prefix=f"fe-cold-{cap}-")
        try:
            cold = first_call_in_fresh_process(cap, cache, rows=args.rows)
            warm = first_call_in_fresh_process(cap, cache, rows=args.rows)
        finally:
            shutil.rmtree(cache, ignore_errors=True)
        for size, r in (("cold", cold), ("warm", warm)):
            cpu = r["import_and_data_cpu_s"] + r["first_call_cpu_s"]
            records.append(_record(f"cold_start.{cap}", size, cpu, ref, wall_s=r["wall_s"],
                                   first_call_s=r["first_call_s"],
                                   first_call_cpu_s=r["first_call_cpu_s"],
                                   import_and_data_cpu_s=r["import_and_data_cpu_s"],
                                   compile_s=r["compile_s"],
                                   specialisations=len(r["compiles"])))
        profiles[cap] = summarize(cold["compiles"])
        print(f"{cap}: cold {records[-2]['median_s']:.1f} s CPU ({cold['wall_s']:.1f} s wall, "
              f"{len(cold['compiles'])} specialisations compiled, {cold['compile_s']:.1f} s "
              f"compiling); warm {records[-1]['median_s']:.2f} s CPU ({warm['wall_s']:.1f} s wall)",
              flush=True)
    if not args.no_demo:
        cache = tempfile.mkdtemp(prefix="fe-cold-demo-")
        try:
            demo = cold_demo(cache)
        finally:
            shutil.rmtree(cache, ignore_errors=True)
        records.append(_record("cold_start.demo", "cold", demo["cpu_s"], ref,
                               wall_s=demo["wall_s"], steps=demo["steps"]))
        print(f"demo: cold {demo['cpu_s']:.1f} s CPU ({demo['wall_s']:.1f} s wall); "
              + "; ".join(demo["steps"]), flush=True)
    with open(os.path.join(OUT, "results.jsonl"), "a") as fh:
        for rec in records:
            fh.write(json.dumps(rec) + "\n")
    with open(os.path.join(OUT, "cold_start_profile.json"), "w") as fh:
        json.dump(profiles, fh, indent=1)
    return records


if __name__ == "__main__":
    main()
