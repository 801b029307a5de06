"""fastengage.monitor.drift vs evidently's DataDriftPreset on the same data, same answers.

evidently does not import under pandas 3, so it runs in its own virtual environment, on the
same generated data written to Parquet; its per-column drift values are read back and compared
with ours. Not part of the default test run. Set-up once, then run::

    python -m venv /tmp/evvenv && /tmp/evvenv/bin/pip install evidently 'pandas<3' pyarrow
    python bench/evidently_compare.py --python /tmp/evvenv/bin/python            # 1M x 20
    python bench/evidently_compare.py --python /tmp/evvenv/bin/python --rows 20000 --cols 5

evidently's 1M x 20 run takes minutes of CPU (half an hour of wall on a loaded machine):
``--save-evidently out.json`` keeps its values and times, ``--evidently-from out.json`` compares
a later fastengage run with them (same generated data, values asserted equal again).

What is compared: with its defaults (evidently 0.7), DataDriftPreset scores a numeric column
of more than 1,000 reference rows by the Wasserstein distance normed by the reference's
standard deviation (``wasserstein_distance / max(std(ref), 0.001)``, drift at >= 0.1): that is
our ``wasserstein_norm`` (the generated columns have std ~1, so the 0.001 floor never applies),
asserted equal to 1e-9 relative. At 1,000 rows or fewer it uses the two-sample KS p-value
(``scipy.stats.ks_2samp``, method "auto": exact for these sizes), which we report with the
asymptotic method; that case is not generated here. Its per-column drift decision is the value
against the threshold; ours adds PSI >= 0.2 and the null-rate change, so the flags are counted,
not asserted. Times: evidently's Report.run on pandas DataFrames already in memory vs our
drift() on Arrow tables already in memory (both include all their own work from there), wall
and CPU time, one round for evidently after a warm-up on a small slice; for fastengage the
median of ``--rounds`` interleaved rounds of one thread (CPU) and of two threads (wall and CPU).
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

EVIDENTLY_SIDE = textwrap.dedent("""
    import json, sys, time
    import pandas as pd
    import evidently
    from evidently import Report
    from evidently.presets import DataDriftPreset

    ref = pd.read_parquet(sys.argv[1])
    cur = pd.read_parquet(sys.argv[2])
    Report([DataDriftPreset()]).run(current_data=cur.head(2000), reference_data=ref.head(2000))
    wall, cpu = time.perf_counter(), time.process_time()
    snapshot = Report([DataDriftPreset()]).run(current_data=cur, reference_data=ref)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    values = {}
    for m in snapshot.dict()["metrics"]:
        cfg = m["config"]
        if cfg.get("type", "").endswith("ValueDrift"):
            values[cfg["column"]] = {"method": cfg["method"], "value": m["value"],
                                     "threshold": cfg["threshold"]}
    json.dump({"version": evidently.__version__, "wall": wall, "cpu": cpu, "columns": values},
              open(sys.argv[3], "w"))
""")


def columns(n: int, f: int, seed: int, shift: float) -> dict:
    """The bench's data (bench/bench_monitor.py): normal columns, some shifted."""
    rng = np.random.default_rng(seed)
    return {f"f{j:02d}": rng.normal(shift * (j % 3), 1.0 + 0.01 * j, n) for j in range(f)}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default="/tmp/evvenv/bin/python",
                        help="the interpreter of the venv holding evidently")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--cols", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--save-evidently", help="write evidently's values and times here")
    parser.add_argument("--evidently-from", help="evidently's values and times from an earlier "
                        "--save-evidently run on the same --rows/--cols (not run again)")
    args = parser.parse_args(argv)

    from fastengage.monitor import drift

    ref = pa.table(columns(args.rows, args.cols, 0, 0.0))
    cur = pa.table(columns(args.rows, args.cols, 1, 0.02))
    if args.evidently_from:
        theirs = json.loads(pathlib.Path(args.evidently_from).read_text())
        assert (theirs.get("rows"), theirs.get("cols")) == (args.rows, args.cols), \
            "evidently's saved run is of another size"
    else:
        with tempfile.TemporaryDirectory() as tmp:
            tmp = pathlib.Path(tmp)
            pq.write_table(ref, tmp / "ref.parquet")
            pq.write_table(cur, tmp / "cur.parquet")
            subprocess.run([args.python, "-c", EVIDENTLY_SIDE, str(tmp / "ref.parquet"),
                            str(tmp / "cur.parquet"), str(tmp / "out.json")], check=True)
            theirs = json.loads((tmp / "out.json").read_text())
        theirs.update(rows=args.rows, cols=args.cols, load=os.getloadavg()[0],
                      finished=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()))
        if args.save_evidently:
            pathlib.Path(args.save_evidently).write_text(json.dumps(theirs))
    for threads in (1, 2):
        drift(ref.slice(0, 2000), cur.slice(0, 2000), n_threads=threads)  # warm-up (JIT cache)
    cpu1, wall2, cpu2 = [], [], []
    for _ in range(args.rounds):
        start = time.process_time()
        ours = drift(ref, cur, n_threads=1)
        cpu1.append(time.process_time() - start)
        start, wall = time.process_time(), time.perf_counter()
        two = drift(ref, cur, n_threads=2)
        wall2.append(time.perf_counter() - wall)
        cpu2.append(time.process_time() - start)
        assert two.equals(ours), "drift differs between 1 and 2 threads"
    cpu, wall, cpu_two = (statistics.median(v) for v in (cpu1, wall2, cpu2))

    rows = {r["column"]: r for r in ours.to_pylist()}
    agree = 0
    for name, got in theirs["columns"].items():
        assert got["method"] == "Wasserstein distance (normed)", got
        mine = rows[name]["wasserstein_norm"]
        assert abs(mine - got["value"]) <= 1e-9 * abs(got["value"]), (name, mine, got["value"])
        agree += (got["value"] >= got["threshold"]) == rows[name]["drift"]
    assert set(theirs["columns"]) == set(rows)
    result = {"rows": args.rows, "cols": args.cols, "evidently": theirs["version"],
              "evidently_wall_s": theirs["wall"], "evidently_cpu_s": theirs["cpu"],
              "evidently_load": theirs.get("load"), "evidently_finished": theirs.get("finished"),
              "fastengage_cpu_1thread_s": cpu, "fastengage_wall_2threads_s": wall,
              "fastengage_cpu_2threads_s": cpu_two,
              "rounds_cpu_1thread": [round(x, 4) for x in cpu1],
              "rounds_wall_2threads": [round(x, 4) for x in wall2],
              "ratio_cpu_1thread": theirs["cpu"] / cpu, "ratio_cpu_2threads": theirs["cpu"] / cpu_two,
              "ratio_wall_2threads": theirs["wall"] / wall,
              "columns_equal": len(rows), "drift_flags_agree": agree,
              "load": os.getloadavg()[0]}
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
