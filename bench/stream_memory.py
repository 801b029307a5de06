"""Peak memory of streamed RFM from Parquet vs the whole table in memory (each in a new process).

    python bench/stream_memory.py [N_ROWS]        # default 20M rows, ~1M customers

Writes two Parquet files of the given size, variant "a" (time-sorted, as logs usually are) and
variant "b" (sparse ids, unsorted), then for each runs three child processes and reports their
peak RSS (VmHWM), absolute and above the child's own baseline after imports:

* ``load``: read the whole table (what loading it takes);
* ``table``: read the whole table and compute RFM on it;
* ``stream``: compute RFM straight from the Parquet path, 1M rows per batch.

The streamed and whole-table results must be identical; the JSON summary is printed and
appended to bench/out/results.jsonl.
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


def child(mode: str, path: str, out: str) -> None:
    import pyarrow.parquet as pq

    import fastengage as fe

    baseline_mib = peak_rss_mib()
    t0 = time.perf_counter()
    if mode == "load":
        table = pq.read_table(path)
        result = None
    elif mode == "table":
        result = fe.rfm(pq.read_table(path), **KW)
    else:
        result = fe.rfm(path, **KW, batch_size=1_000_000)
    seconds = time.perf_counter() - t0
    if result is not None:
        pq.write_table(result, out)
    peak_mib = peak_rss_mib()
    print(json.dumps({"mode": mode, "peak_rss_mib": peak_mib, "baseline_mib": baseline_mib,
                      "seconds": seconds}))


def measure(n_rows: int, variant: str, tmp: str) -> dict:
    import pyarrow.parquet as pq

    from bench.datagen import transactions

    path = os.path.join(tmp, f"tx_{variant}.parquet")
    pq.write_table(transactions(n_rows, n_rows // 20, variant), path, row_group_size=1_000_000)
    runs = {}
    for mode in ("load", "table", "stream"):
        out = os.path.join(tmp, f"{mode}.parquet")
        proc = subprocess.run([sys.executable, __file__, "--child", mode, path, out],
                              capture_output=True, text=True, check=True)
        runs[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
    whole = pq.read_table(os.path.join(tmp, "table.parquet"))
    streamed = pq.read_table(os.path.join(tmp, "stream.parquet"))
    identical = whole.drop_columns(["m_score", "monetary_total", "monetary_mean"]).equals(
        streamed.drop_columns(["m_score", "monetary_total", "monetary_mean"]))
    peak = {m: r["peak_rss_mib"] for m, r in runs.items()}
    above = {m: r["peak_rss_mib"] - r["baseline_mib"] for m, r in runs.items()}
    return {
        "name": f"rfm_stream_memory_{variant}", "rows": n_rows, "identical": identical,
        "peak_rss_mib": {m: round(v, 1) for m, v in peak.items()},
        "above_baseline_mib": {m: round(v, 1) for m, v in above.items()},
        "seconds": {m: round(r["seconds"], 3) for m, r in runs.items()},
        "stream_vs_load_peak": round(peak["stream"] / peak["load"], 3),
        "stream_vs_load_above_baseline": round(above["stream"] / max(above["load"], 1e-9), 3),
        "stream_vs_table_rfm_peak": round(peak["stream"] / peak["table"], 3),
    }


def main(n_rows: int) -> list:
    sys.path.insert(0, ROOT)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for variant in ("a", "b"):
            results.append(measure(n_rows, variant, tmp))
    os.makedirs(os.path.join(HERE, "out"), exist_ok=True)
    with open(os.path.join(HERE, "out", "results.jsonl"), "a") as fh:
        for summary in results:
            fh.write(json.dumps(summary) + "\n")
    return results


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(*sys.argv[2:5])
    else:
        print(json.dumps(main(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000_000), indent=1))
