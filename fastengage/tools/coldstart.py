"""Where cold-start time goes: per-kernel compile times, and first calls in fresh processes.

:class:`CompileProfiler` listens to Numba's ``numba:compile`` event, which fires only when a
kernel specialisation is compiled (not when it is loaded from the on-disk cache). Compiles nest
(typing a kernel compiles the kernels it calls), so each record has the inclusive time and the
exclusive time (minus nested compiles); the exclusive times add up to the total compile time.

:func:`first_call_in_fresh_process` runs one capability's first call (see
:mod:`fastengage.tools.workloads`) in a new interpreter with a given ``NUMBA_CACHE_DIR``: an
empty folder gives the cold figure, the same folder again the warm one.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import defaultdict

__all__ = ["CompileProfiler", "first_call_in_fresh_process", "summarize"]


class CompileProfiler:
    """Context manager recording every Numba compilation made inside it.

    ``records``: list of dicts with ``kernel`` (module.qualname), ``signature``, ``parallel``,
    ``inclusive_s`` and ``exclusive_s``.
    """

    def __init__(self):
        self.records: list[dict] = []
        self._stack: list[list] = []

    def __enter__(self):
        from numba.core import event

        profiler = self

        class _Listener(event.Listener):
            def on_start(self, ev):
                profiler._stack.append([time.perf_counter(), 0.0, time.thread_time(), 0.0])

            def on_end(self, ev):
                start, nested, cpu_start, cpu_nested = profiler._stack.pop()
                inclusive = time.perf_counter() - start
                inclusive_cpu = time.thread_time() - cpu_start
                if profiler._stack:
                    profiler._stack[-1][1] += inclusive
                    profiler._stack[-1][3] += inclusive_cpu
                dispatcher = ev.data["dispatcher"]
                func = dispatcher.py_func
                profiler.records.append({
                    "kernel": f"{func.__module__}.{func.__qualname__}",
                    "signature": ", ".join(str(a) for a in ev.data["args"]),
                    "parallel": bool(dispatcher.targetoptions.get("parallel")),
                    "inclusive_s": inclusive,
                    "exclusive_s": inclusive - nested,
                    "exclusive_cpu_s": inclusive_cpu - cpu_nested,
                })

        self._listener = _Listener()
        event.register("numba:compile", self._listener)
        return self

    def __exit__(self, *exc):
        from numba.core import event

        event.unregister("numba:compile", self._listener)
        return False


def summarize(records: list[dict]) -> list[dict]:
    """Per kernel: specialisations compiled, parallel or not, total exclusive compile seconds;
    sorted by that time, largest first."""
    by = defaultdict(lambda: {"specialisations": 0, "compile_s": 0.0, "compile_cpu_s": 0.0,
                              "parallel": False, "signatures": []})
    for r in records:
        k = by[r["kernel"]]
        k["specialisations"] += 1
        k["compile_s"] += r["exclusive_s"]
        k["compile_cpu_s"] += r.get("exclusive_cpu_s", r["exclusive_s"])
        k["parallel"] = k["parallel"] or r["parallel"]
        k["signatures"].append(r["signature"])
    rows = [{"kernel": name, **v} for name, v in by.items()]
    return sorted(rows, key=lambda r: -r["compile_cpu_s"])


_CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import fastengage
from fastengage.tools import workloads
from fastengage.tools.coldstart import CompileProfiler
table = workloads.retail_sample({rows})
t1 = time.perf_counter()
c1 = time.process_time()
with CompileProfiler() as prof:
    workloads.first_call({capability!r}, table)
t2 = time.perf_counter()
c2 = time.process_time()
print("@@RESULT@@" + json.dumps({{"import_and_data_s": t1 - t0, "first_call_s": t2 - t1,
       "import_and_data_cpu_s": c1, "first_call_cpu_s": c2 - c1,
       "compile_s": sum(r["exclusive_s"] for r in prof.records),
       "compile_cpu_s": sum(r["exclusive_cpu_s"] for r in prof.records),
       "compiles": prof.records}}))
"""


def first_call_in_fresh_process(capability: str, cache_dir: str, *, rows: int = 50_000,
                                env: dict | None = None, timeout: float = 1800) -> dict:
    """Run ``capability``'s first call in a new interpreter with ``NUMBA_CACHE_DIR=cache_dir``.

    Returns ``import_and_data_s``, ``first_call_s``, their CPU-time twins ``*_cpu_s`` (all
    threads; what a quiet machine would need: the wall figures include waiting for the CPU on a
    loaded one), ``compile_s`` (sum of compile times),
    ``compiles`` (per-kernel records) and ``wall_s`` (the whole process, interpreter start to
    exit, as a container's first request sees it).
    """
    child_env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir, **(env or {}))
    code = _CHILD.format(capability=capability, rows=rows)
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=child_env, timeout=timeout)
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        raise RuntimeError(f"{capability}: first call failed:\n{out.stderr[-3000:]}")
    line = next(x for x in out.stdout.splitlines() if x.startswith("@@RESULT@@"))
    result = json.loads(line[len("@@RESULT@@"):])
    result["wall_s"] = wall
    return result
