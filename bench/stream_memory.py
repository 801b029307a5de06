"""Peak memory of streamed RFM from Parquet vs the whole table in memory (each in a new process).

    python bench/stream_memory.py [N_ROWS]          # default 20M rows, ~1M customers
    python bench/stream_memory.py [N_ROWS] --order  # time-sorted log with an order column

Writes two Parquet files of the given size, variant "a" (time-sorted, as logs usually are) and
variant "b" (sparse ids, unsorted), then for each runs three child processes and reports their
peak RSS (VmHWM), absolute and above the child's own baseline after imports:

* ``load``: read the whole table (what loading it takes);
* ``table``: read the whole table and compute RFM on it;
* ``stream``: compute RFM straight from the Parquet path, 1M rows per batch.

With ``--order`` only the time-sorted variant runs, with an int64 ``order`` column (a running
invoice number, one per row: the largest (customer, order) set a log of that size can need) and
``order="order"`` in every call.

The streamed and whole-table results must be identical (to the last bit: money sums are exact);
the JSON summary is printed and appended to bench/out/results.jsonl.
"""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
KW = dict(customer="customer", time="ts", amount="amount")


def peak_rss_mib() -> float:
    """High-water mark of this process's resident memory (VmHWM).

    Not ``ru_maxrss``: on Linux that survives ``execve`` and would report the parent's peak.
    """
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(mode: str, path: str, out: str, with_order: str = "0") -> None:
    import pyarrow.parquet as pq

    import fastengage as fe

    kw = dict(KW, order="order") if with_order == "1" else KW

    baseline_mib = peak_rss_mib()
    t0 = time.perf_counter()
    if mode == "load":
        table = pq.read_table(path)
        result = None
    elif mode == "table":
        result = fe.rfm(pq.read_table(path), **kw)
    else:
        result = fe.rfm(path, **kw, batch_size=1_000_000)
    seconds = time.perf_counter() - t0
    if result is not None:
        pq.write_table(result, out)
    peak_mib = peak_rss_mib()
    print(json.dumps({"mode": mode, "peak_rss_mib": peak_mib, "baseline_mib": baseline_mib,
                      "seconds": seconds}))


def measure(n_rows: int, variant: str, tmp: str, with_order: bool = False) -> dict:
    import numpy as np
    import pyarrow.parquet as pq

    from bench.datagen import transactions

    path = os.path.join(tmp, f"tx_{variant}.parquet")
    table = transactions(n_rows, n_rows // 20, variant)
    if with_order:
        table = table.append_column("order", pa_int64(np.arange(n_rows, dtype=np.int64) + 10**9))
    pq.write_table(table, path, row_group_size=1_000_000)
    del table
    runs = {}
    for mode in ("load", "table", "stream"):
        out = os.path.join(tmp, f"{mode}.parquet")
        proc = subprocess.run([sys.executable, __file__, "--child", mode, path, out,
                               "1" if with_order else "0"],
                              capture_output=True, text=True, check=True)
        runs[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
    whole = pq.read_table(os.path.join(tmp, "table.parquet"))
    streamed = pq.read_table(os.path.join(tmp, "stream.parquet"))
    identical = whole.replace_schema_metadata(None).equals(streamed.replace_schema_metadata(None))
    peak = {m: r["peak_rss_mib"] for m, r in runs.items()}
    above = {m: r["peak_rss_mib"] - r["baseline_mib"] for m, r in runs.items()}
    return {
        "name": f"rfm_stream_memory_{variant}" + ("_order" if with_order else ""), "rows": n_rows, "identical": identical,
        "peak_rss_mib": {m: round(v, 1) for m, v in peak.items()},
        "above_baseline_mib": {m: round(v, 1) for m, v in above.items()},
        "seconds": {m: round(r["seconds"], 3) for m, r in runs.items()},
        "stream_vs_load_peak": round(peak["stream"] / peak["load"], 3),
        "stream_vs_load_above_baseline": round(above["stream"] / max(above["load"], 1e-9), 3),
        "stream_vs_table_rfm_peak": round(peak["stream"] / peak["table"], 3),
    }


def pa_int64(values):
    import pyarrow as pa

    return pa.array(values, pa.int64())


def main(n_rows: int, with_order: bool = False) -> list:
    sys.path.insert(0, ROOT)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for variant in (("a",) if with_order else ("a", "b")):
            results.append(measure(n_rows, variant, tmp, with_order))
    os.makedirs(os.path.join(HERE, "out"), exist_ok=True)
    with open(os.path.join(HERE, "out", "results.jsonl"), "a") as fh:
        for summary in results:
            fh.write(json.dumps(summary) + "\n")
    return results


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(*sys.argv[2:6])
    else:
        args = [a for a in sys.argv[1:] if a != "--order"]
        print(json.dumps(main(int(args[0]) if args else 20_000_000, "--order" in sys.argv[1:]),
                         indent=1))
