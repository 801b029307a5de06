"""Customer profiles side by side: fastengage.profile vs polars (lazy, in memory), same data, same
run, every column asserted equal before the ratio is reported.

The polars query computes the same columns: RFM, three windows (orders, purchase days, spend,
returns), trend, gaps over distinct purchase days, basket (items, categories, entropy) and the
channel mix, joined and sorted by customer.

    FASTENGAGE_BENCH=full python -m pytest bench/bench_profile.py -s   # 20M rows, 1M customers

``test_profile_shapes``: every shape of customer base of issue #15.5 (1, 2.5, 5, 20 and 100 rows
per customer; dense int64, sparse int64 and string ids; 5M rows full size). CPU-time medians of
interleaved rounds (steadier on a loaded machine):

    python -m bench.bench_profile --rows 5000000 --rounds 3
"""
from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pytest

import fastengage as fe
from bench._compare import bench_size, compare
from bench.bench_rfm import ROWS_PER_CUSTOMER, bench_shape, cpu_main
from bench.datagen import ID_KINDS, shaped_transactions, transactions

FULL = bench_size() == "full"
N_ROWS = int(os.environ.get("FASTENGAGE_BENCH_ROWS", 20_000_000 if FULL else 200_000))
N_CUSTOMERS = N_ROWS // 20
ROUNDS = 3 if FULL else 1
DAY = 86_400_000_000
WINDOWS = (30, 90, 365)
CHANNELS = ("app", "store", "web")
KW = dict(customer="customer", time="ts", amount="amount", order="order", item="item",
          category="category", channel="channel", windows=WINDOWS)


def with_profile_columns(table: pa.Table) -> pa.Table:
    """``table`` with order, item, category (40) and channel (3) columns drawn at random."""
    rng = np.random.default_rng(7)
    n = table.num_rows
    item = rng.integers(0, 50_000, n)
    return (table.append_column("order", pa.array(rng.integers(0, max(n // 3, 1), n)))
            .append_column("item", pa.array(item))
            .append_column("category", pa.array((item % 40).astype(np.int32)))
            .append_column("channel", pa.array(np.array(CHANNELS)[rng.integers(0, 3, n)])))


@pytest.fixture(scope="module", params=["a", "b", "c"])
def variant(request):
    return request.param, with_profile_columns(transactions(N_ROWS, N_CUSTOMERS, request.param))


def run_polars(df):
    import polars as pl

    t = pl.col("ts").dt.epoch("us")
    as_of = df.lazy().select(t.max()).collect().item()
    buy = pl.col("amount") >= 0
    back = ~buy
    lo = {w: as_of - w * DAY for w in WINDOWS}
    w0 = min(WINDOWS)
    prev = (t > as_of - 2 * w0 * DAY) & (t <= as_of - w0 * DAY)
    lf = df.lazy().with_columns(day=t // DAY)
    aggs = [
        t.filter(buy).min().alias("first"), t.filter(buy).max().alias("last"),
        pl.col("order").filter(buy).n_unique().cast(pl.Int64).alias("frequency"),
        pl.col("day").filter(buy).n_unique().cast(pl.Int64).alias("purchase_days"),
        buy.sum().cast(pl.Int64).alias("purchase_rows"),
        pl.col("amount").filter(buy).sum().alias("purchase_sum"),
        pl.col("amount").filter(back).sum().alias("return_sum"),
    ]
    for w in WINDOWS:
        inside = t > lo[w]
        aggs += [pl.col("order").filter(buy & inside).n_unique().cast(pl.Int64).alias(f"orders_{w}d"),
                 pl.col("day").filter(buy & inside).n_unique().cast(pl.Int64).alias(f"purchase_days_{w}d"),
                 pl.col("amount").filter(buy & inside).sum().alias(f"spend_{w}d"),
                 (back & inside).sum().cast(pl.Int64).alias(f"returns_{w}d"),
                 (-pl.col("amount").filter(back & inside)).sum().alias(f"return_amount_{w}d")]
    aggs += [pl.col("order").filter(buy & prev).n_unique().cast(pl.Int64).alias(f"orders_prev_{w0}d"),
             pl.col("amount").filter(buy & prev).sum().alias(f"spend_prev_{w0}d"),
             pl.col("item").filter(buy).n_unique().cast(pl.Int64).alias("distinct_items"),
             pl.col("channel").filter(buy).n_unique().cast(pl.Int64).alias("n_channels"),
             # on a tie of times, the greatest channel value (fastengage's documented rule)
             pl.col("channel").filter(buy).sort_by([t.filter(buy), pl.col("channel").filter(buy)])
             .last().alias("last_channel")]
    for v in CHANNELS:
        here = buy & (pl.col("channel") == v)
        aggs += [pl.col("order").filter(here).n_unique().alias(f"_orders_{v}"),
                 pl.col("amount").filter(here).sum().alias(f"_spend_{v}")]
    base = lf.group_by("customer").agg(aggs).filter(pl.col("purchase_rows") > 0)
    gaps = (lf.filter(buy).select("customer", "day").unique().sort("customer", "day")
            .with_columns(gap=pl.col("day").diff().over("customer"))
            .group_by("customer")
            .agg(gap_mean_days=pl.col("gap").mean(), gap_std_days=pl.when(pl.col("gap").count() > 0).then(pl.col("gap").std(ddof=0)),
                 last_gap_days=pl.col("gap").last()))
    cats = (lf.filter(buy).group_by("customer", "category").agg(n=pl.len())
            .with_columns(p=pl.col("n") / pl.col("n").sum().over("customer"))
            .group_by("customer")
            .agg(distinct_categories=pl.len().cast(pl.Int64), top=pl.col("n").max(),
                 category_entropy=-(pl.col("p") * pl.col("p").log()).sum()))
    f = pl.col("frequency")
    out = (base.join(gaps, on="customer", how="left").join(cats, on="customer", how="left")
           .with_columns(
               recency_days=(as_of - pl.col("last")) // DAY,
               tenure_days=(as_of - pl.col("first")) // DAY,
               monetary_total=pl.col("purchase_sum") + pl.col("return_sum"),
               orders_trend=pl.when(pl.col(f"orders_prev_{w0}d") > 0)
               .then(pl.col(f"orders_{w0}d") / pl.col(f"orders_prev_{w0}d")),
               spend_trend=pl.when(pl.col(f"spend_prev_{w0}d") > 0)
               .then(pl.col(f"spend_{w0}d") / pl.col(f"spend_prev_{w0}d")),
               items_per_order=pl.col("purchase_rows") / f,
               top_category_share=pl.col("top") / pl.col("purchase_rows"),
               **{f"channel_{v}_order_share": pl.col(f"_orders_{v}") / f for v in CHANNELS},
               **{f"channel_{v}_spend_share": pl.when(pl.col("purchase_sum") > 0)
                  .then(pl.col(f"_spend_{v}") / pl.col("purchase_sum")) for v in CHANNELS})
           .with_columns(monetary_mean=pl.col("monetary_total") / f,
                         overdue_ratio=pl.col("recency_days") / pl.col("gap_mean_days"))
           .sort("customer")
           .collect())
    return out


def check_same(ours: pa.Table, theirs, peer: str) -> None:
    theirs = theirs.to_arrow() if not isinstance(theirs, pa.Table) else theirs
    assert theirs.num_rows == ours.num_rows, peer
    assert ours["customer"].to_pylist()[:1000] == theirs["customer"].to_pylist()[:1000]
    assert ours["customer"].equals(theirs["customer"].cast(ours["customer"].type))
    for name in ours.column_names[1:]:
        mine = ours[name]
        other = theirs[{"first_purchase": "first", "last_purchase": "last"}.get(name, name)]
        if pa.types.is_timestamp(mine.type):
            mine = mine.cast(pa.int64())
        if pa.types.is_string(mine.type) or pa.types.is_large_string(mine.type):
            assert mine.to_pylist() == other.to_pylist(), f"{peer} {name}"
            continue
        a = mine.to_numpy(zero_copy_only=False).astype(np.float64)
        b = other.cast(pa.float64()).to_numpy(zero_copy_only=False)
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b), err_msg=f"{peer} {name} nulls")
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-6, equal_nan=True, err_msg=f"{peer} {name}")


def test_profile_vs_polars(benchmark, variant):
    import polars as pl

    name, table = variant
    df = pl.from_arrow(table)
    peers = {"polars": lambda: run_polars(df)}
    record = compare(benchmark, f"profile_{name}", lambda: fe.profile(table, **KW), peers,
                     check_same, rounds=ROUNDS,
                     size=bench_size() if "FASTENGAGE_BENCH_ROWS" not in os.environ
                     else f"rows={N_ROWS}",
                     extra={"rows": N_ROWS, "customers": N_CUSTOMERS, "windows": list(WINDOWS)})
    assert record["ratios"]["polars"] > 0


@pytest.mark.parametrize("ids", ID_KINDS)
@pytest.mark.parametrize("rows_per_customer", ROWS_PER_CUSTOMER)
def test_profile_shapes(benchmark, rows_per_customer, ids):
    bench_shape(benchmark, "profile", _profile_run, rows_per_customer, ids)


def _profile_run(table, n_threads):
    return fe.profile(table, **KW, n_threads=n_threads)


_profile_run.data = lambda rows, rpc, ids: with_profile_columns(shaped_transactions(rows, rpc, ids))
_profile_run.peer = run_polars
_profile_run.check = check_same


if __name__ == "__main__":
    cpu_main(_profile_run, "profile()", 3)
