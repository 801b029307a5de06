"""RFM side by side: fastengage vs polars (lazy, in memory), DuckDB and pandas, same data, same run.

Every peer computes the full output (features, scores, segments, sorted by customer) and the
results are asserted equal before the ratio is reported.

    FASTENGAGE_BENCH=full python -m pytest bench/bench_rfm.py -s    # 20M rows, ~1M customers

``test_rfm_shapes`` covers every shape of customer base of issue #15.5: 1, 2.5, 5, 20 and 100
rows per customer, dense int64, sparse int64 and string ids (5M rows full size), against polars.
On a shared machine wall time drifts; CPU time (summed over threads) survives load better:

    python -m bench.bench_rfm --rows 5000000 --rounds 5    # interleaved CPU-time medians
"""
from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pytest

import fastengage as fe
from bench._compare import bench_size, compare
from bench.datagen import ID_KINDS, shaped_transactions, transactions
from fastengage.segments import DEFAULT_SEGMENTS

FULL = bench_size() == "full"
N_ROWS = int(os.environ.get("FASTENGAGE_BENCH_ROWS", 20_000_000 if FULL else 200_000))
N_CUSTOMERS = N_ROWS // 20
ROUNDS = 3 if FULL else 1
#: Timed rounds per shape (after a warm-up round on each side): three of ours, whose median the
#: regression check normalizes, but one of polars at full size, where three of its rounds over
#: the 30 shapes of rfm() and profile() at 5M rows (polars' profile ~15 s a call under load)
#: would take ~45 min.
SHAPE_ROUNDS = 3
SHAPE_PEER_ROUNDS = 1
US_PER_DAY = 86_400_000_000
SHAPE_ROWS = int(os.environ.get("FASTENGAGE_BENCH_ROWS", 5_000_000 if FULL else 20_000))
ROWS_PER_CUSTOMER = (1, 2.5, 5, 20, 100)
SEGMENT_KEYS = {r * 100 + f * 10 + m: name for (r, f, m), name in DEFAULT_SEGMENTS.items()}


@pytest.fixture(scope="module", params=["a", "b", "c"])
def variant(request):
    return request.param, transactions(N_ROWS, N_CUSTOMERS, request.param)


def run_fastengage(table):
    return fe.rfm(table, customer="customer", time="ts", amount="amount")


def run_polars(df):
    import polars as pl

    purchase = pl.col("amount") >= 0
    as_of = df.lazy().select(pl.col("ts").max()).collect().item()
    n = pl.len()
    out = (
        df.lazy()
        .group_by("customer")
        .agg(
            first_purchase=pl.col("ts").filter(purchase).min(),
            last_purchase=pl.col("ts").filter(purchase).max(),
            frequency=purchase.sum().cast(pl.Int64),
            purchase_days=pl.col("ts").filter(purchase).dt.date().n_unique().cast(pl.Int64),
            monetary_total=pl.col("amount").sum(),
        )
        .filter(pl.col("frequency") > 0)
        .with_columns(
            recency_days=(pl.lit(as_of) - pl.col("last_purchase")).dt.total_days(),
            tenure_days=(pl.lit(as_of) - pl.col("first_purchase")).dt.total_days(),
            monetary_mean=pl.col("monetary_total") / pl.col("frequency"),
        )
        .with_columns(
            r_score=pl.min_horizontal(5, 1 + (5 * (pl.col("recency_days").rank("min", descending=True) - 1)) // n),
            f_score=pl.min_horizontal(5, 1 + (5 * (pl.col("frequency").rank("min") - 1)) // n),
            m_score=pl.min_horizontal(5, 1 + (5 * (pl.col("monetary_total").rank("min") - 1)) // n),
        )
        .with_columns(
            segment=(pl.col("r_score") * 100 + pl.col("f_score") * 10 + pl.col("m_score"))
            .replace_strict(SEGMENT_KEYS, return_dtype=pl.String)
        )
        .sort("customer")
        .collect()
    )
    return out


def run_duckdb(con):
    return con.sql("""
        WITH per AS (
            SELECT customer,
                min(ts) FILTER (WHERE amount >= 0) AS first_purchase,
                max(ts) FILTER (WHERE amount >= 0) AS last_purchase,
                count(*) FILTER (WHERE amount >= 0) AS frequency,
                count(DISTINCT CAST(ts AS DATE)) FILTER (WHERE amount >= 0) AS purchase_days,
                sum(amount) AS monetary_total
            FROM tx GROUP BY customer HAVING count(*) FILTER (WHERE amount >= 0) > 0
        ), cut AS (SELECT max(ts) AS as_of FROM tx),
        f AS (
            SELECT per.*,
                CAST(floor(epoch_us(as_of - last_purchase) / 86400e6) AS BIGINT) AS recency_days,
                CAST(floor(epoch_us(as_of - first_purchase) / 86400e6) AS BIGINT) AS tenure_days,
                monetary_total / frequency AS monetary_mean
            FROM per, cut
        )
        SELECT *,
            least(5, 1 + (5 * (rank() OVER (ORDER BY recency_days DESC) - 1)) // count(*) OVER ()) AS r_score,
            least(5, 1 + (5 * (rank() OVER (ORDER BY frequency) - 1)) // count(*) OVER ()) AS f_score,
            least(5, 1 + (5 * (rank() OVER (ORDER BY monetary_total) - 1)) // count(*) OVER ()) AS m_score
        FROM f ORDER BY customer
    """).fetch_arrow_table() if hasattr(con, "sql") else None


def run_pandas(pdf):
    import pandas as pd

    as_of = pdf["ts"].max()
    buy = pdf[pdf["amount"] >= 0]
    g = buy.groupby("customer", sort=True)
    out = pd.DataFrame({
        "first_purchase": g["ts"].min(),
        "last_purchase": g["ts"].max(),
        "frequency": g.size(),
        "purchase_days": buy["ts"].dt.floor("D").groupby(buy["customer"]).nunique(),
    })
    out["monetary_total"] = pdf.groupby("customer", sort=True)["amount"].sum().reindex(out.index)
    out["recency_days"] = (as_of - out["last_purchase"]) // pd.Timedelta(days=1)
    out["tenure_days"] = (as_of - out["first_purchase"]) // pd.Timedelta(days=1)
    out["monetary_mean"] = out["monetary_total"] / out["frequency"]
    n = len(out)
    for col, score, asc in (("recency_days", "r_score", False), ("frequency", "f_score", True),
                            ("monetary_total", "m_score", True)):
        w = out[col].rank(method="min", ascending=asc) - 1
        out[score] = np.minimum(5, 1 + (5 * w.astype(np.int64)) // n)
    out["segment"] = (out["r_score"] * 100 + out["f_score"] * 10 + out["m_score"]).map(SEGMENT_KEYS)
    return out.reset_index()


def _as_numpy(result, column):
    if isinstance(result, pa.Table):
        col = result[column]
        if pa.types.is_timestamp(col.type):
            col = col.cast(pa.timestamp("us", tz="UTC")).cast(pa.int64())
        return col.to_numpy()
    series = result[column]
    if hasattr(series, "dt") and str(getattr(series, "dtype", "")).startswith("datetime"):
        return series.dt.as_unit("us").astype("int64").to_numpy() if hasattr(series.dt, "as_unit") \
            else series.cast(int).to_numpy()
    if hasattr(series, "to_numpy"):
        return series.to_numpy()
    return np.asarray(series)


def check_same(ours: pa.Table, theirs, peer: str) -> None:
    if not isinstance(theirs, (pa.Table,)) and peer == "polars":
        theirs = theirs.to_arrow()
    assert len(theirs) == ours.num_rows, peer
    np.testing.assert_array_equal(ours["customer"].to_numpy(zero_copy_only=False),
                                  np.asarray(_as_numpy(theirs, "customer")), err_msg=peer)
    for col in ("first_purchase", "last_purchase"):
        np.testing.assert_array_equal(_as_numpy(ours, col), _as_numpy(theirs, col), err_msg=f"{peer} {col}")
    for col in ("recency_days", "tenure_days", "frequency", "purchase_days", "r_score", "f_score"):
        np.testing.assert_array_equal(_as_numpy(ours, col), np.asarray(_as_numpy(theirs, col), dtype=np.int64),
                                      err_msg=f"{peer} {col}")
    for col in ("monetary_total", "monetary_mean"):
        np.testing.assert_allclose(_as_numpy(ours, col), _as_numpy(theirs, col), rtol=1e-9, atol=1e-6,
                                   err_msg=f"{peer} {col}")
    # m_score hinges on exact ties of float sums, which summation order may break differently.
    # Where the scores differ, the peer's must be one a 1e-9 relative nudge of the total allows.
    ours_m = _as_numpy(ours, "m_score").astype(np.int64)
    theirs_m = np.asarray(_as_numpy(theirs, "m_score"), dtype=np.int64)
    differ = np.flatnonzero(ours_m != theirs_m)
    if len(differ):
        totals = np.sort(_as_numpy(ours, "monetary_total"))
        n = len(totals)
        for i in differ:
            v = _as_numpy(ours, "monetary_total")[i]
            eps = 1e-9 * max(1.0, abs(v))
            low = min(5, 1 + 5 * np.searchsorted(totals, v - eps, "left") // n)
            high = min(5, 1 + 5 * np.searchsorted(totals, v + eps, "left") // n)
            assert low <= theirs_m[i] <= high and low <= ours_m[i] <= high, f"{peer} m_score at {i}"


def test_rfm_vs_peers(benchmark, variant):
    import duckdb
    import polars as pl

    name, table = variant
    df = pl.from_arrow(table)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("tx", table)
    peers = {"polars": lambda: run_polars(df), "duckdb": lambda: run_duckdb(con)}
    if not FULL or name == "a":  # pandas takes minutes at 20M rows; measured once on (a)
        pdf = table.to_pandas()
        peers["pandas"] = lambda: run_pandas(pdf)
    record = compare(benchmark, f"rfm_{name}", lambda: run_fastengage(table), peers, check_same,
                     rounds=ROUNDS, size=bench_size() if "FASTENGAGE_BENCH_ROWS" not in os.environ
                     else f"rows={N_ROWS}",
                     extra={"rows": N_ROWS, "customers": N_CUSTOMERS})
    assert record["ratios"]["polars"] > 0


@pytest.mark.parametrize("ids", ID_KINDS)
@pytest.mark.parametrize("rows_per_customer", ROWS_PER_CUSTOMER)
def test_rfm_shapes(benchmark, rows_per_customer, ids):
    bench_shape(benchmark, "rfm", _rfm_run, rows_per_customer, ids)


def bench_shape(benchmark, name: str, run, rows_per_customer, ids: str) -> dict:
    """One shape of customer base: ``run(table, n_threads)`` against ``run.peer(polars frame)``
    on ``run.data(rows, rows_per_customer, ids)``, answers checked by ``run.check``."""
    import polars as pl

    table = run.data(SHAPE_ROWS, rows_per_customer, ids)
    df = pl.from_arrow(table)
    return compare(benchmark, f"{name}_shape_{rows_per_customer}_{ids}", lambda: run(table, None),
                   {"polars": lambda: run.peer(df)}, run.check, rounds=SHAPE_ROUNDS,
                   peer_rounds=SHAPE_PEER_ROUNDS,
                   size=bench_size() if "FASTENGAGE_BENCH_ROWS" not in os.environ
                   else f"rows={SHAPE_ROWS}",
                   extra={"rows": SHAPE_ROWS, "rows_per_customer": rows_per_customer, "ids": ids})


def cpu_seconds(fn, rounds: int, peer, check) -> dict:
    """Interleaved rounds of ``fn`` (fastengage) and ``peer``: median CPU seconds (all threads)
    and wall seconds of each. ``fn`` is also run with one thread (``fn(1)``) for the
    single-thread CPU figure. Both results are checked equal first."""
    import statistics
    import time

    check(fn(None), peer(), "polars")
    spent = {"fastengage": [], "polars": [], "fastengage_1thread": []}
    for _ in range(rounds):
        for name, call in (("fastengage", lambda: fn(None)), ("polars", peer),
                           ("fastengage_1thread", lambda: fn(1))):
            c0, t0 = time.process_time(), time.perf_counter()
            call()
            spent[name].append((time.process_time() - c0, time.perf_counter() - t0))
    return {name: {"cpu_s": statistics.median(c for c, _ in v),
                   "wall_s": statistics.median(w for _, w in v)} for name, v in spent.items()}


def cpu_table(run, rows: int, rounds: int) -> None:
    """Print one Markdown row per shape: ``run(table, n_threads)`` against ``run.peer(df)``."""
    import polars as pl

    print(f"| rows/customer | ids | fastengage CPU s (2 thr) | polars CPU s | CPU ratio | "
          f"wall ratio | fastengage 1-thread CPU s | rows={rows:,}, {os.uname().nodename}, "
          f"load {os.getloadavg()[0]:.1f} |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for rpc in ROWS_PER_CUSTOMER:
        for ids in ID_KINDS:
            table = run.data(rows, rpc, ids)
            df = pl.from_arrow(table)
            got = cpu_seconds(lambda n: run(table, n), rounds, lambda: run.peer(df), run.check)
            ours, peer = got["fastengage"], got["polars"]
            print(f"| {rpc} | {ids} | {ours['cpu_s']:.3f} | {peer['cpu_s']:.3f} | "
                  f"**{peer['cpu_s'] / ours['cpu_s']:.2f}x** | {peer['wall_s'] / ours['wall_s']:.2f}x | "
                  f"{got['fastengage_1thread']['cpu_s']:.3f} | load {os.getloadavg()[0]:.1f} |",
                  flush=True)


def _rfm_run(table, n_threads):
    return fe.rfm(table, customer="customer", time="ts", amount="amount", n_threads=n_threads)


_rfm_run.data = shaped_transactions
_rfm_run.peer = run_polars
_rfm_run.check = check_same


def cpu_main(run, what: str, rounds: int) -> None:
    """Command line of the CPU-time table (``python -m bench.bench_rfm``, ``bench.bench_profile``)."""
    import argparse

    parser = argparse.ArgumentParser(description=f"{what} vs polars: CPU time per customer-base shape")
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--rounds", type=int, default=rounds)
    args = parser.parse_args()
    cpu_table(run, args.rows, args.rounds)


if __name__ == "__main__":
    cpu_main(_rfm_run, "rfm()", 5)
