"""Privacy side by side: keyed pseudonymisation vs polars-hash and Python's hmac/hashlib, and
DP segment reports vs OpenDP's clamp >> sum >> laplace, same data, same run.

    python -m pytest bench/bench_privacy.py -s                          # smoke sizes (CI)
    FASTENGAGE_BENCH=full python -m pytest bench/bench_privacy.py -s    # the issue's sizes

Full sizes: 10M string ids (``"cust-"`` + a random 12-digit number, 17 bytes) for
HMAC-SHA256 against polars-hash's vectorised ``hmac_sha256`` (both give the full 64-hex-digit
token, asserted equal), and 1M of them against a Python ``hmac.digest`` / keyed ``blake2b``
loop (the fast keyed function, SipHash-2-4-128, also against the keyed ``blake2b`` loop: the
loop a user would write for a fast keyed hash; its tokens are checked against the plain-Python
SipHash reference in tests/naive_privacy.py); a DP report over 10M rows x 20 segments (count + sum + mean per segment) against OpenDP's
``clamp >> sum >> laplace`` and ``count >> laplace`` run per segment on prepared Python lists
(OpenDP's float sum keeps only 2**20 rows per call, so a single call over all rows would be
wrong; per segment each list stays under that).

HMAC-SHA256 runs on the SHA-NI kernel where the CPU has SHA extensions (printed by
``python -m bench.bench_privacy``, whose interleaved rounds also time the portable OpenSSL path,
forced with ``FASTENGAGE_NO_SHA_NI=1``).
"""
from __future__ import annotations

import hashlib
import hmac
import os
import statistics
import sys
import time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from bench._compare import bench_size, compare
from fastengage.privacy import dp_report, pseudonymize, siphash_key
from fastengage.privacy.dp import _bounded_aggregates

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir, "tests"))
import naive_privacy  # noqa: E402  (the plain-Python SipHash reference)

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

    from fastengage.privacy.pseudonyms import sha_ni_enabled  # which kernel is measured

    compare(benchmark, "privacy.hmac_sha256", ours, {"polars-hash": peer}, check,
            rounds=ROUNDS, size=f"{N_IDS} string ids",
            extra={"ids": N_IDS, "sha_ni": sha_ni_enabled()})


@pytest.mark.parametrize("method", ["hmac-sha256", "blake2b", "siphash-2-4"])
def test_keyed_hash_vs_python_loop(benchmark, ids, method):
    subset = ids.slice(0, N_LOOP)
    values = [v.encode() for v in subset.column("id").to_pylist()]
    if method == "hmac-sha256":
        def peer():
            return [hmac.digest(KEY, v, "sha256")[:16].hex() for v in values]
    else:  # the keyed-hash loop a user writes with hashlib
        def peer():
            return [hashlib.blake2b(v, key=KEY, digest_size=16).hexdigest() for v in values]

    def ours():
        return pseudonymize(subset, ["id"], key=KEY, method=method).column("id")

    def check(mine, theirs, name):
        if method != "siphash-2-4":
            assert mine.to_pylist() == theirs
            return
        # a different function than the peer's: equal to the plain-Python SipHash on a sample
        sip_key = siphash_key(KEY)
        sample = mine.slice(0, 3000).to_pylist()
        assert sample == [naive_privacy.siphash(sip_key, v, 16).hex() for v in values[:3000]]
        assert len(mine) == len(theirs) == len(values) and mine.null_count == 0

    peer_name = "python hmac-sha256 loop" if method == "hmac-sha256" else "python blake2b loop"
    compare(benchmark, f"privacy.{method}_vs_python", ours, {peer_name: peer},
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


def keyed_hash_rounds(n: int = 2_000_000, rounds: int = 7, n_loop: int = 200_000) -> dict:
    """Per id, CPU time (``time.process_time``: summed over threads) and wall time of each
    keyed hash and its peers on the same ids, in interleaved rounds (every contender once per
    round, in turn, so load changes hit all alike); medians over the rounds, in ns per id.

        python -m bench.bench_privacy
    """
    import polars as pl
    import polars_hash as plh

    rng = np.random.default_rng(7)
    table = pa.table({"id": pa.array(np.char.add("cust-", rng.integers(10**11, 10**12, n)
                                                 .astype(str)))})
    frame = pl.from_arrow(table)
    key = KEY.hex()
    values = [v.encode() for v in table.column("id").to_pylist()[:n_loop]]
    def portable(n_threads):
        # the OpenSSL path that runs where the CPU has no SHA extensions (same tokens)
        os.environ["FASTENGAGE_NO_SHA_NI"] = "1"
        try:
            return pseudonymize(table, ["id"], key=key.encode(), length=32, n_threads=n_threads)
        finally:
            del os.environ["FASTENGAGE_NO_SHA_NI"]

    contenders = {
        "fastengage hmac-sha256, 2 threads": (n, lambda: pseudonymize(
            table, ["id"], key=key.encode(), length=32, n_threads=2)),
        "fastengage hmac-sha256, 1 thread": (n, lambda: pseudonymize(
            table, ["id"], key=key.encode(), length=32, n_threads=1)),
        "fastengage hmac-sha256 portable, 2 thr": (n, lambda: portable(2)),
        "polars-hash hmac_sha256": (n, lambda: frame.select(
            plh.col("id").chash.hmac_sha256(key=key)).to_series()),
        "fastengage siphash-2-4, 2 threads": (n, lambda: pseudonymize(
            table, ["id"], key=key.encode(), method="siphash-2-4", n_threads=2)),
        "fastengage siphash-2-4, 1 thread": (n, lambda: pseudonymize(
            table, ["id"], key=key.encode(), method="siphash-2-4", n_threads=1)),
        "fastengage blake2b, 2 threads": (n, lambda: pseudonymize(
            table, ["id"], key=key.encode(), method="blake2b", n_threads=2)),
        "python blake2b loop": (n_loop, lambda: [hashlib.blake2b(
            v, key=key.encode(), digest_size=16).hexdigest() for v in values]),
        "python hmac loop": (n_loop, lambda: [hmac.digest(key.encode(), v, "sha256")[:16].hex()
                                              for v in values]),
    }
    spent = {name: ([], []) for name in contenders}
    for _, fn in contenders.values():
        fn()  # warm-up (compilation)
    for _ in range(rounds):
        for name, (count, fn) in contenders.items():
            wall, cpu = time.perf_counter(), time.process_time()
            fn()
            spent[name][0].append((time.process_time() - cpu) / count * 1e9)
            spent[name][1].append((time.perf_counter() - wall) / count * 1e9)
    return {name: (statistics.median(c), statistics.median(w)) for name, (c, w) in spent.items()}


def dp_wall_and_cpu(n: int = 10_000_000, rounds: int = 5) -> dict:
    """dp_report over ``n`` rows x 20 segments on 1 and 2 threads, in interleaved rounds:
    wall and CPU seconds (medians), beside the wall/CPU ratio of a serial pure-Python loop
    measured in the same rounds. On a loaded machine the loop's ratio shows how much of the
    wall time is waiting for a core."""
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

    runs = {"1 thread": lambda: dp_report(table, n_threads=1, **kw),
            "2 threads": lambda: dp_report(table, n_threads=2, **kw), "serial loop": burner}
    spent = {name: ([], []) for name in runs}
    for _ in range(rounds):
        for name, fn in runs.items():
            wall, cpu = time.perf_counter(), time.process_time()
            fn()
            spent[name][0].append(time.process_time() - cpu)
            spent[name][1].append(time.perf_counter() - wall)
    out = {f"{name} {kind}_s": statistics.median(values[i]) for name, values in spent.items()
           if name != "serial loop" for i, kind in enumerate(("cpu", "wall"))}
    out["serial_loop_wall_per_cpu"] = statistics.median(
        w / c for c, w in zip(*spent["serial loop"]))
    return out


if __name__ == "__main__":
    from fastengage.privacy.pseudonyms import sha_ni_enabled
    print(f"load average {os.getloadavg()}; HMAC-SHA256 on SHA-NI: {sha_ni_enabled()}")
    for name, (cpu, wall) in keyed_hash_rounds().items():
        print(f"{name:36s} {cpu:7.0f} ns CPU {wall:7.0f} ns wall per id (medians)")
    print(f"load average {os.getloadavg()}")
    print("dp_report 10M rows x 20 segments:", {k: round(v, 3) for k, v in
                                                dp_wall_and_cpu().items()})
    print(f"load average {os.getloadavg()}")
