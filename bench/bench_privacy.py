"""Privacy side by side: keyed pseudonymisation vs polars-hash and Python's hmac/hashlib, and
DP segment reports vs OpenDP's clamp >> sum >> laplace, same data, same run.

    python -m pytest bench/bench_privacy.py -s                          # smoke sizes (CI)
    FASTENGAGE_BENCH=full python -m pytest bench/bench_privacy.py -s    # the issue's sizes

Full sizes: 10M string ids (``"cust-"`` + a random 12-digit number, 17 bytes) for
HMAC-SHA256 against polars-hash's vectorised ``hmac_sha256`` (both give the full 64-hex-digit
token, asserted equal), and 1M of them against a Python ``hmac.digest`` / keyed ``blake2b``
loop; a DP report over 10M rows x 20 segments (count + sum + mean per segment) against OpenDP's
``clamp >> sum >> laplace`` and ``count >> laplace`` run per segment on prepared Python lists
(OpenDP's float sum keeps only 2**20 rows per call, so a single call over all rows would be
wrong; per segment each list stays under that).
"""
from __future__ import annotations

import hashlib
import hmac
import statistics
import time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from bench._compare import bench_size, compare
from fastengage.privacy import dp_report, pseudonymize
from fastengage.privacy.dp import _bounded_aggregates

FULL = bench_size() == "full"
ROUNDS = 3 if FULL else 1
N_IDS = 10_000_000 if FULL else 200_000
N_LOOP = 1_000_000 if FULL else 50_000
N_DP = 10_000_000 if FULL else 200_000
KEY = bytes(range(100, 132))


@pytest.fixture(scope="module")
def ids():
    rng = np.random.default_rng(7)
    numbers = rng.integers(10**11, 10**12, N_IDS)
    return pa.table({"id": pa.array(np.char.add("cust-", numbers.astype(str)))})


def test_hmac_sha256_vs_polars_hash(benchmark, ids):
    pl = pytest.importorskip("polars")
    plh = pytest.importorskip("polars_hash", reason="polars-hash not installed: no peer")
    frame = pl.from_arrow(ids)
    key_text = KEY.hex()  # polars-hash takes a str key (its UTF-8 bytes are the HMAC key)
    key_bytes = key_text.encode()

    def ours():
        return pseudonymize(ids, ["id"], key=key_bytes, length=32).column("id")

    def peer():
        return frame.select(plh.col("id").chash.hmac_sha256(key=key_text)).to_series()

    def check(mine, theirs, name):
        theirs = pa.chunked_array([theirs.to_arrow()]).cast(pa.string())
        assert len(mine) == len(theirs) and pc.all(pc.equal(mine, theirs)).as_py()

    compare(benchmark, "privacy.hmac_sha256", ours, {"polars-hash": peer}, check,
            rounds=ROUNDS, size=f"{N_IDS} string ids", extra={"ids": N_IDS})


@pytest.mark.parametrize("method", ["hmac-sha256", "blake2b"])
def test_keyed_hash_vs_python_loop(benchmark, ids, method):
    subset = ids.slice(0, N_LOOP)
    values = [v.encode() for v in subset.column("id").to_pylist()]
    if method == "hmac-sha256":
        def peer():
            return [hmac.digest(KEY, v, "sha256")[:16].hex() for v in values]
    else:
        def peer():
            return [hashlib.blake2b(v, key=KEY, digest_size=16).hexdigest() for v in values]

    def ours():
        return pseudonymize(subset, ["id"], key=KEY, method=method).column("id")

    def check(mine, theirs, name):
        assert mine.to_pylist() == theirs

    compare(benchmark, f"privacy.{method}_vs_python", ours, {f"python {method} loop": peer},
            check, rounds=ROUNDS, size=f"{N_LOOP} string ids")


@pytest.fixture(scope="module")
def dp_data():
    rng = np.random.default_rng(11)
    segments = np.array([f"segment-{i:02d}" for i in range(20)])
    seg = rng.integers(0, 20, N_DP)
    table = pa.table({"segment": pa.array(segments[seg]),
                      "customer": rng.integers(0, N_DP // 10, N_DP),
                      "amount": np.round(rng.gamma(2.0, 25.0, N_DP), 2)})
    amounts = table.column("amount").to_numpy()
    per_segment = [amounts[seg == s].tolist() for s in range(20)]  # peer input, prepared
    return table, segments, per_segment


def test_dp_report_vs_opendp(benchmark, dp_data):
    dp = pytest.importorskip("opendp.prelude")
    dp.enable_features("contrib")
    table, segments, per_segment = dp_data
    bounds, epsilon = (0.0, 200.0), 1.0
    space = dp.vector_domain(dp.atom_domain(T=float, nan=False)), dp.symmetric_distance()
    # row-level DP like ours without customer=: per segment, count and sum at epsilon/2 each
    summ = space >> dp.t.then_clamp(bounds) >> dp.t.then_sum()
    sum_meas = summ >> dp.m.then_laplace(scale=200.0 / (epsilon / 2))
    count_meas = space >> dp.t.then_count() >> dp.m.then_laplace(scale=1.0 / (epsilon / 2))

    def ours():
        return dp_report(table, by=["segment"], amount="amount", epsilon=epsilon, bounds=bounds)

    def peer():
        return [(count_meas(x), sum_meas(x)) for x in per_segment]

    def check(mine, theirs, name):
        t = mine.table
        assert t.column("segment").to_pylist() == segments.tolist()
        exact_counts = np.array([len(x) for x in per_segment])
        exact_sums = np.array([summ(x) for x in per_segment])
        # the noiseless bounded sums agree (ours are exact cents, OpenDP's float sums)
        segs, counts, sums, _, _ = _bounded_aggregates(table, ["segment"], None, "amount",
                                                       bounds, None, None, 0.01, None)
        order = np.argsort(segs.key_columns()["segment"].to_numpy(zero_copy_only=False))
        counts, sums = counts[order], sums[order]
        np.testing.assert_array_equal(counts, exact_counts)
        np.testing.assert_allclose(sums * 0.01, exact_sums, rtol=1e-9)
        # both noisy answers within 5x their 95% accuracy (P(miss) = 0.05**5 per cell)
        parts = mine.budget["parts"]
        assert np.all(np.abs(t.column("count").to_numpy() - exact_counts)
                      <= 5 * parts["count"]["accuracy"])
        assert np.all(np.abs(t.column("sum").to_numpy() - exact_sums)
                      <= 5 * parts["sum"]["accuracy"])
        peer_sums = np.array([s for _, s in theirs])
        accuracy = dp.laplacian_scale_to_accuracy(200.0 / (epsilon / 2), 0.05)
        assert np.all(np.abs(peer_sums - exact_sums) <= 5 * accuracy)

    # one round of the peer (~35 s at 10M rows); ours is timed again below for the goal
    compare(benchmark, "privacy.dp_report", ours, {"opendp per segment": peer}, check,
            rounds=1, size=f"{N_DP} rows x 20 segments")
    times = []
    for _ in range(5 if FULL else 1):
        start = time.perf_counter()
        ours()
        times.append(time.perf_counter() - start)
    print(f"[privacy.dp_report] fastengage times {', '.join(f'{t:.3f}' for t in times)} s "
          f"(median {statistics.median(times):.3f} s; goal < 1 s at 10M rows)")


def test_dp_report_with_customer_cap(benchmark, dp_data):
    """The same report with the customer as privacy unit (at most 10 rows each): the extra
    per-customer pass, timed against the row-level report."""
    table, _, _ = dp_data
    kw = dict(by=["segment"], amount="amount", epsilon=1.0, bounds=(0.0, 200.0))

    def ours():
        return dp_report(table, customer="customer", max_rows_per_customer=10, **kw)

    def check(mine, theirs, name):
        assert mine.table.column("segment").equals(theirs.table.column("segment"))

    compare(benchmark, "privacy.dp_report_customer_cap", ours,
            {"row-level dp_report": lambda: dp_report(table, **kw)}, check, rounds=ROUNDS,
            size=f"{N_DP} rows x 20 segments, 10 rows per customer")


def cpu_time_per_id(n: int = 2_000_000) -> dict:
    """CPU time (``time.process_time``: summed over threads, median of 3) per id of each keyed
    hash and its peers, on the same ids. Steadier than wall time on a loaded machine.

        python -m bench.bench_privacy
    """
    import polars as pl
    import polars_hash as plh

    rng = np.random.default_rng(7)
    table = pa.table({"id": pa.array(np.char.add("cust-", rng.integers(10**11, 10**12, n)
                                                 .astype(str)))})
    frame = pl.from_arrow(table)
    key = KEY.hex()
    values = [v.encode() for v in table.column("id").to_pylist()[:300_000]]

    def cpu(fn, reps=3, per=n):
        fn()
        spent = []
        for _ in range(reps):
            start = time.process_time()
            fn()
            spent.append(time.process_time() - start)
        return statistics.median(spent) / per * 1e9

    return {
        "fastengage hmac-sha256": cpu(lambda: pseudonymize(table, ["id"], key=key.encode(),
                                                           length=32)),
        "fastengage blake2b": cpu(lambda: pseudonymize(table, ["id"], key=key.encode(),
                                                       method="blake2b")),
        "polars-hash hmac_sha256": cpu(lambda: frame.select(
            plh.col("id").chash.hmac_sha256(key=key)).to_series()),
        "python hmac loop": cpu(lambda: [hmac.digest(key.encode(), v, "sha256")[:16].hex()
                                         for v in values], 1, len(values)),
        "python blake2b loop": cpu(lambda: [hashlib.blake2b(v, key=key.encode(),
                                                            digest_size=16).hexdigest()
                                            for v in values], 1, len(values)),
    }


def dp_wall_and_cpu(n: int = 10_000_000, rounds: int = 3) -> dict:
    """dp_report over ``n`` rows x 20 segments: wall and CPU seconds (medians), beside the
    wall/CPU ratio of a serial pure-Python loop measured in the same rounds. On a loaded
    machine the loop's ratio shows how much of the wall time is waiting for a core."""
    rng = np.random.default_rng(11)
    segments = np.array([f"segment-{i:02d}" for i in range(20)])
    table = pa.table({"segment": pa.array(segments[rng.integers(0, 20, n)]),
                      "amount": np.round(rng.gamma(2.0, 25.0, n), 2)})
    kw = dict(by=["segment"], amount="amount", epsilon=1.0, bounds=(0.0, 200.0))
    dp_report(table.slice(0, 100_000), **kw)

    def burner():
        total = 0
        for i in range(2_000_000):
            total += i
        return total

    walls, cpus, loop_ratios = [], [], []
    for _ in range(rounds):
        wall, cpu = time.perf_counter(), time.process_time()
        dp_report(table, **kw)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
        wall, cpu = time.perf_counter(), time.process_time()
        burner()
        loop_ratios.append((time.perf_counter() - wall) / (time.process_time() - cpu))
    return {"wall_s": statistics.median(walls), "cpu_s": statistics.median(cpus),
            "serial_loop_wall_per_cpu": statistics.median(loop_ratios)}


if __name__ == "__main__":
    import os

    print(f"load average {os.getloadavg()}")
    for name, ns in cpu_time_per_id().items():
        print(f"{name:28s} {ns:7.0f} ns of CPU per id")
    print("dp_report 10M rows x 20 segments:", {k: round(v, 3) for k, v in
                                                dp_wall_and_cpu().items()})
    print(f"load average {os.getloadavg()}")
