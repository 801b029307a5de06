"""``fastengage demo``: every capability on the bundled real data, with a readable summary.

The RFM step always runs. Later capabilities contribute a ``demo_step(out_dir) -> str`` function
in their own subpackage (``fastengage.<name>.demo``); each one found is run in order.
"""
from __future__ import annotations

import importlib
import json
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


def _step_of(name: str):
    def step(out_dir: pathlib.Path) -> str:
        return importlib.import_module(f"fastengage.{name}.demo").demo_step(out_dir)

    return step


def run_demo(out: str | pathlib.Path) -> int:
    """Run every step, print its summary; exit status 1 if any step failed."""
    out_dir = pathlib.Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    steps = [("rfm", rfm_step)]
    for name in DEMO_STEPS:
        # Imported inside the step so that a broken or missing capability fails loudly as that
        # step (a silently skipped step once hid subpackages missing from the wheel).
        steps.append((name, _step_of(name)))
    failed = 0
    for name, step in steps:
        t0 = time.perf_counter()
        try:
            summary = step(out_dir)
        except Exception as exc:  # report every step, then fail overall
            failed += 1
            print(f"== {name}: FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
            continue
        print(f"== {name} ({time.perf_counter() - t0:.1f} s)\n{summary}\n")
    return 1 if failed else 0
