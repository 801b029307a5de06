"""Performance regression check against the committed baseline (bench/baseline.json).

    python bench/regress.py check  [--tolerance 0.30] [--results F] [--baseline F]
    python bench/regress.py update [--results F] [--baseline F]     # accept the latest run
    (``--size full`` or ``--size smoke`` restricts either command to runs of that size,
    ``--match REGEX`` to the ``name@size`` keys matching it, and ``--since TIME`` to records
    written from that time on, e.g. one quiet run's)

Each benchmark run appends records to bench/out/results.jsonl (see bench/_compare.py). For every
(name, size) in the baseline, ``check`` takes the newest record and compares two figures that do
not depend on the machine's speed:

* ``normalized``: fastengage's median divided by the median of the yardstick, a fixed workload
  compiled with fastengage (``kernels/common/yardstick.pyx``), timed in the same process
  (``reference_s``) — it must not grow by more than the tolerance. Compared only when the record
  and the baseline name the same yardstick (``reference``) and CPU (``machine``): a baseline is
  per kind of machine, and a record from another is checked on its ratios alone (with a note);
* ``ratios``: the speed-up over each peer measured in the same run — none may shrink by more
  than the tolerance.

Exit status 1 lists every regression; benchmarks absent from the latest results are reported
as missing but do not fail the check (run the benchmark first).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from fastengage.tools.benchrun import compare_figures, report_comparison  # noqa: E402

DEFAULT_RESULTS = os.path.join(HERE, "out", "results.jsonl")
DEFAULT_BASELINE = os.path.join(HERE, "baseline.json")


def latest_records(path: str, since: str | None = None) -> dict:
    """Newest record per (name, size) key, from a JSON-lines results file; with ``since`` (ISO
    time, as records write it) only records written then or later."""
    latest = {}
    if not os.path.exists(path):
        return latest
    with open(path) as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            rec = json.loads(line)
            if since is not None and rec.get("time", "") < since:
                continue
            if "median_s" in rec and "reference_s" in rec:
                latest[f"{rec['name']}@{rec.get('size', '')}"] = rec
    return latest


def figures(rec: dict) -> dict:
    return {"normalized": rec["median_s"] / rec["reference_s"], "ratios": dict(rec.get("ratios", {})),
            "reference": rec.get("reference"), "machine": rec.get("machine")}


def compare(baseline: dict, latest: dict, tolerance: float,
            notes: list | None = None) -> tuple[list, list]:
    """Return (regressions, missing) as lists of human-readable lines."""
    return compare_figures(baseline, {key: figures(rec) for key, rec in latest.items()},
                           tolerance, notes)


def _selected(key: str, args) -> bool:
    if args.size is not None and not key.endswith(f"@{args.size}"):
        return False
    return args.match is None or re.search(args.match, key) is not None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["check", "update"])
    parser.add_argument("--results", default=DEFAULT_RESULTS)
    parser.add_argument("--baseline", default=DEFAULT_BASELINE)
    parser.add_argument("--size", default=None,
                        help="only benchmarks run at this size (smoke or full)")
    parser.add_argument("--match", default=None,
                        help="only benchmarks whose 'name@size' key matches this regular expression")
    parser.add_argument("--since", default=None,
                        help="only records written at or after this time (e.g. 2026-12-02T09:13), "
                             "so that one run's records make the baseline")
    parser.add_argument("--tolerance", type=float, default=0.30,
                        help="allowed relative slow-down (default 0.30 = 30%%)")
    args = parser.parse_args(argv)
    latest = latest_records(args.results, args.since)
    latest = {k: v for k, v in latest.items() if _selected(k, args)}
    if args.command == "update":
        baseline = {}
        if os.path.exists(args.baseline):
            with open(args.baseline) as fh:
                baseline = json.load(fh)
        baseline.update({key: figures(rec) for key, rec in latest.items()})
        with open(args.baseline, "w") as fh:
            json.dump(baseline, fh, indent=1, sort_keys=True)
        print(f"baseline: {len(baseline)} benchmarks written to {args.baseline}")
        return 0
    if not os.path.exists(args.baseline):
        print(f"no baseline at {args.baseline}", file=sys.stderr)
        return 1
    with open(args.baseline) as fh:
        baseline = json.load(fh)
    baseline = {k: v for k, v in baseline.items() if _selected(k, args)}
    notes = []
    regressions, missing = compare(baseline, latest, args.tolerance, notes)
    report_comparison(regressions, missing, notes)
    checked = len(baseline) - len(missing)
    print(f"{checked} benchmarks checked against the baseline, {len(regressions)} regressions "
          f"(tolerance {args.tolerance:.0%})")
    return 1 if regressions else 0


if __name__ == "__main__":
    sys.exit(main())
