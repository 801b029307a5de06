"""``fastengage demo``: every capability on the bundled real data, with a readable summary.

The RFM step always runs. Later capabilities contribute a ``demo_step(out_dir) -> str`` function
in their own subpackage (``fastengage.<name>.demo``); each one is run (two at a time in worker
processes on a machine with two cores or more) and their summaries printed in order.
"""
from __future__ import annotations

import importlib
import json
import os
import pathlib
import sys
import time

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

#: Subpackages whose ``demo`` module adds a step, in the order they run.
DEMO_STEPS = ("clv", "recommend", "scoring")


def rfm_step(out_dir: pathlib.Path) -> str:
    """RFM on UCI Online Retail: amount = Quantity * UnitPrice, order = InvoiceNo."""
    from .datasets import load_online_retail
    from .features import rfm

    retail = load_online_retail()
    features = rfm(retail, customer="CustomerID", time="InvoiceDate", amount="amount",
                   order="InvoiceNo", drop_null_customers=True)
    path = out_dir / "rfm.parquet"
    pq.write_table(features, path)
    report = json.loads(features.schema.metadata[b"fastengage"])
    by_segment = features.group_by("segment").aggregate(
        [("CustomerID", "count"), ("monetary_total", "sum")]).sort_by(
        [("monetary_total_sum", "descending")])
    revenue = pc.sum(features["monetary_total"]).as_py()
    lines = [
        f"RFM features of {features.num_rows:,} customers as of {report['as_of'][:10]} -> {path}",
        f"  rows read {report['rows_read']:,}; null CustomerID dropped "
        f"{report['null_customer_rows_dropped']:,}; return lines netted {report['return_rows']:,}; "
        f"customers with returns only {report['customers_without_purchase']:,}",
        f"  {'segment':<22}{'customers':>10}{'share of revenue':>18}",
    ]
    for row in by_segment.to_pylist():
        lines.append(f"  {row['segment']:<22}{row['CustomerID_count']:>10,}"
                     f"{100 * row['monetary_total_sum'] / revenue:>17.1f}%")
    return "\n".join(lines)


#: Every step, in the order their summaries are printed.
STEPS = ("rfm",) + DEMO_STEPS


def _run_step(name: str, out_dir: pathlib.Path):
    """One step: ``(summary, wall s, CPU s)``, or ``(None, error text, 0)`` if it failed."""
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        if name == "rfm":
            summary = rfm_step(out_dir)
        else:
            # Imported inside the step so that a broken or missing capability fails loudly as
            # that step (a silently skipped step once hid subpackages missing from the wheel).
            summary = importlib.import_module(f"fastengage.{name}.demo").demo_step(out_dir)
    except Exception as exc:  # report every step, then fail overall
        return None, f"{type(exc).__name__}: {exc}", 0.0
    return summary, time.perf_counter() - t0, time.process_time() - c0


def _jobs() -> int:
    raw = os.environ.get("FASTENGAGE_DEMO_JOBS", "").strip()
    if raw.isdigit() and int(raw) > 0:
        return int(raw)
    return min(2, os.cpu_count() or 1)


def run_demo(out: str | pathlib.Path, jobs: int | None = None) -> int:
    """Run every step, print its summary; exit status 1 if any step failed.

    With ``jobs > 1`` (default: 2 on a machine with 2 or more cores; ``FASTENGAGE_DEMO_JOBS``
    overrides) the steps run in that many worker processes, the longest first: on a cold
    Numba cache a step's time is mostly JIT compilation, which is serial within a process, so
    the CLV step compiling on one core while the others run on the second halves the wall time
    of a first demo. Summaries are printed in step order either way.
    """
    out_dir = pathlib.Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = _jobs() if jobs is None else max(1, int(jobs))
    if jobs == 1:
        results = {name: _run_step(name, out_dir) for name in STEPS}
    else:
        from concurrent.futures import ProcessPoolExecutor
        from multiprocessing import get_context

        # spawn: a fresh interpreter per worker (forking a process with Numba's and Arrow's
        # threads running is not safe); longest step first, so it never starts last
        order = sorted(STEPS, key=lambda n: n != "clv")
        with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
            futures = {name: pool.submit(_run_step, name, out_dir) for name in order}
            results = {name: futures[name].result() for name in STEPS}
    failed = 0
    for name in STEPS:
        summary, wall, cpu = results[name]
        if summary is None:
            failed += 1
            print(f"== {name}: FAILED: {wall}", file=sys.stderr)
            continue
        # CPU seconds beside wall seconds: on a busy machine only the CPU figure says where a
        # cold run's time goes (the step's process, all threads, JIT compilation included)
        print(f"== {name} ({wall:.1f} s, {cpu:.1f} s CPU)\n{summary}\n", flush=True)
    return 1 if failed else 0
