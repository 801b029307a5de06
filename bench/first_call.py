"""First-call latency: ``import fastengage`` plus the first ``rfm`` on 1,000 rows, in a new
process with a warm Numba cache (the situation of a service's first request after a restart).

    python bench/first_call.py [REPEATS]

Prints the median over REPEATS fresh processes (after one process that warms the cache), split
into import and first call, next to the floor Numba itself sets (import numba + one trivial
cached function), and appends the figures to bench/out/results.jsonl.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile

CACHE_DIR = os.path.join(tempfile.gettempdir(), "fastengage-first-call")
os.makedirs(CACHE_DIR, exist_ok=True)

CHILD = r"""
import time
t0 = time.perf_counter()
import fastengage as fe, pyarrow as pa, numpy as np
t1 = time.perf_counter()
n = 1000
t = pa.table({"c": np.arange(n) % 97, "t": pa.array(np.arange(n) * 10**9, pa.timestamp("ns")),
              "a": np.ones(n)})
fe.rfm(t, customer="c", time="t", amount="a")
t2 = time.perf_counter()
print(t1 - t0, t2 - t1)
"""

FLOOR = r"""
import time
t0 = time.perf_counter()
import numba
@numba.njit(cache=True)
def _f(x):
    return x + 1
_f(1)
print(time.perf_counter() - t0)
"""


def run(code: str) -> list[float]:
    # A real file: numba's on-disk cache needs a source file to key on.
    path = os.path.join(CACHE_DIR, f"first_call_{abs(hash(code))}.py")
    if not os.path.exists(path):
        with open(path, "w") as fh:
            fh.write(code)
    out = subprocess.run([sys.executable, path], capture_output=True, text=True, check=True)
    return [float(x) for x in out.stdout.split()]


def main(repeats: int = 7) -> dict:
    run(CHILD)  # warm the on-disk cache
    run(FLOOR)
    samples = [run(CHILD) for _ in range(repeats)]
    floor = [run(FLOOR)[0] for _ in range(repeats)]
    result = {
        "name": "rfm_first_call",
        "import_s": statistics.median(s[0] for s in samples),
        "first_rfm_s": statistics.median(s[1] for s in samples),
        "total_s": statistics.median(s[0] + s[1] for s in samples),
        "numba_floor_s": statistics.median(floor),
        "repeats": repeats,
    }
    here = os.path.dirname(os.path.abspath(__file__))
    os.makedirs(os.path.join(here, "out"), exist_ok=True)
    with open(os.path.join(here, "out", "results.jsonl"), "a") as fh:
        fh.write(json.dumps(result) + "\n")
    return result


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]) if len(sys.argv) > 1 else 7), indent=1))
