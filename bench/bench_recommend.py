"""Recommendations side by side: fastengage vs implicit, same data, same run, same thread count.

implicit runs with its BLAS pinned to one thread (as it asks; its own OpenMP threads do the
parallel work); both libraries use every core otherwise. Each measurement asserts the answers
agree before the ratio is reported.

    python -m pytest bench/bench_recommend.py -s                       # smoke sizes
    FASTENGAGE_BENCH=full python -m pytest bench/bench_recommend.py -s # 100k x 20k x 5M
"""
from __future__ import annotations

import concurrent.futures as cf
import os
import statistics
import time

import numpy as np
import pyarrow as pa
import pytest
from threadpoolctl import threadpool_limits

from bench._compare import bench_size, compare
from fastengage.recommend import ALS, Interactions, evaluate, temporal_split
from fastengage.recommend.demo import RETAIL_CUTOFF, RETAIL_PARAMS, retail_purchases

implicit_als = pytest.importorskip("implicit.als")  # installs on 3.11: always runs here
from implicit.evaluation import ranking_metrics_at_k  # noqa: E402

FULL = bench_size() == "full"
N_USERS, N_ITEMS, NNZ = (100_000, 20_000, 5_000_000) if FULL else (4_000, 1_500, 60_000)
FACTORS = 64
ITERATIONS = 15 if FULL else 3
ROUNDS = 3 if FULL else 1


def powerlaw_events(n_users: int, n_items: int, nnz: int, seed: int = 0) -> pa.Table:
    """Synthetic implicit feedback: power-law item popularity (Zipf-like, exponent 1) and
    customer activity (exponent 0.6); ids shuffled so popularity is not code order. About 1.31
    events per distinct pair are drawn so that ``nnz`` pairs remain after merging repeats."""
    rng = np.random.default_rng(seed)
    pu = 1.0 / np.arange(1, n_users + 1) ** 0.6
    pi = 1.0 / np.arange(1, n_items + 1) ** 1.0
    m = int(nnz * 1.31)
    u = rng.permutation(n_users)[rng.choice(n_users, m, p=pu / pu.sum())]
    i = rng.permutation(n_items)[rng.choice(n_items, m, p=pi / pi.sum())]
    return pa.table({"customer": u.astype(np.int64), "item": i.astype(np.int64)})


@pytest.fixture(scope="module")
def synthetic():
    return Interactions.from_data(powerlaw_events(N_USERS, N_ITEMS, NNZ), customer="customer",
                                  item="item")


def _implicit_fit(matrix, **kw):
    with threadpool_limits(1, "blas"):
        model = implicit_als.AlternatingLeastSquares(**kw)
        model.fit(matrix, show_progress=False)
    return model


FITTED = {}


def test_als_fit(benchmark, synthetic):
    matrix = synthetic.matrix.astype(np.float32)
    params = dict(factors=FACTORS, iterations=ITERATIONS, regularization=0.01, alpha=1.0)

    def ours():
        FITTED["als"] = ALS(seed=0, **params).fit(synthetic)
        return FITTED["als"]

    def peer():
        return _implicit_fit(matrix, random_state=0, **params)

    def check(model, theirs, name):
        # same objective value (eq. 3) for both factorisations, evaluated by the same kernel
        probe = ALS(seed=0, **params)
        probe.__dict__.update(model.__dict__)
        mine = model.loss()
        probe.user_factors_, probe.item_factors_ = theirs.user_factors, theirs.item_factors
        other = probe.loss()
        assert abs(mine - other) <= 1e-2 * abs(other), (mine, other)

    compare(benchmark, "recommend.als_fit", ours, {"implicit": peer}, check, rounds=ROUNDS,
            size=f"{synthetic.n_customers}x{synthetic.n_items}x{synthetic.nnz}",
            extra={"factors": FACTORS, "iterations": ITERATIONS, "solver": "cg"})


def test_recommend_all(benchmark, synthetic):
    # the fully trained model of test_als_fit (how well top-N pruning works depends on it)
    model = FITTED.get("als") or ALS(factors=FACTORS, iterations=ITERATIONS, seed=0).fit(synthetic)
    matrix = synthetic.matrix.astype(np.float32)
    theirs = implicit_als.AlternatingLeastSquares(factors=FACTORS)
    theirs.user_factors, theirs.item_factors = model.user_factors_, model.item_factors_
    users = np.arange(synthetic.n_customers)

    def ours():
        return model.recommend(n=10)

    def peer():
        with threadpool_limits(1, "blas"):
            return theirs.recommend(users, matrix, N=10, filter_already_liked_items=True)

    def check(table, res, name):
        ids = np.asarray(res[0])
        assert table.num_rows == 10 * users.size  # exactly n for everyone
        got = synthetic.items.lookup(table.column("item")).reshape(-1, 10)
        seen = synthetic.matrix
        rows = np.repeat(users, 10)
        assert not np.asarray(seen[rows, got.ravel()]).any(), "a seen item was recommended"
        same = (np.sort(got, axis=1) == np.sort(ids, axis=1)).all(axis=1).mean()
        assert same >= 0.995, same  # float rounding may swap near-ties at rank 10

    compare(benchmark, "recommend.recommend_all_n10", ours, {"implicit": peer}, check,
            rounds=ROUNDS, size=f"{synthetic.n_customers}x{synthetic.n_items}x{synthetic.nnz}")


def _in_threads(fn, parts):
    """Run ``fn(part)`` for every part, one thread per part; results in part order."""
    if len(parts) == 1:
        return [fn(parts[0])]
    with cf.ThreadPoolExecutor(len(parts)) as pool:
        return list(pool.map(fn, parts))


def test_recommend_one_threads(benchmark, synthetic):
    """Single-customer serving: throughput of ``recommend_one`` from 2 threads vs 1 thread (the
    "serial" ratio is the 2-thread/1-thread throughput ratio) and vs implicit's single-user
    ``recommend`` from 2 threads; 8 threads on the 2 cores are timed too and must give the
    serial answers."""
    model = FITTED.get("als") or ALS(factors=FACTORS, iterations=ITERATIONS, seed=0).fit(synthetic)
    matrix = synthetic.matrix.astype(np.float32).tocsr()
    theirs = implicit_als.AlternatingLeastSquares(factors=FACTORS)
    theirs.user_factors, theirs.item_factors = model.user_factors_, model.item_factors_
    rng = np.random.default_rng(3)
    rows = rng.choice(synthetic.n_customers, 20_000 if FULL else 500, replace=False)
    ids = [int(c) for c in np.asarray(synthetic.customers.decode(rows))]

    def serve(part):
        return [model.recommend_one(c, n=10)[0] for c in part]

    def split(k):
        return [ids[i::k] for i in range(k)]

    def merge(results, k):
        out = [None] * len(ids)
        for i, res in enumerate(results):
            out[i::k] = res
        return out

    def ours():
        return merge(_in_threads(serve, split(2)), 2)

    def serial():
        return serve(ids)

    def implicit_two_threads():
        def one(part):
            return [theirs.recommend(int(r), matrix[int(r)], N=10)[0] for r in part]
        with threadpool_limits(1, "blas"):
            parts = [rows[i::2] for i in range(2)]
            return merge(_in_threads(one, parts), 2)

    def check(got, theirs_result, name):
        if name == "serial":
            assert all(np.array_equal(a, b) for a, b in zip(got, theirs_result))
            eight = merge(_in_threads(serve, split(8)), 8)
            assert all(np.array_equal(a, b) for a, b in zip(eight, theirs_result))
        else:  # implicit: item codes, same factors -> same top-10 sets up to float near-ties
            same = np.mean([set(synthetic.items.lookup(pa.array(a)).tolist()) == set(b.tolist())
                            for a, b in zip(got, theirs_result)])
            assert same >= 0.995, same

    def timed_interleaved(fns, rounds=5):
        # one round times every variant in turn, so load changes hit all of them alike
        times = [[] for _ in fns]
        cpu = [[] for _ in fns]
        for _ in range(rounds):
            for k, fn in enumerate(fns):
                c0, t0 = time.process_time(), time.perf_counter()
                fn()
                times[k].append(time.perf_counter() - t0)
                cpu[k].append((time.process_time() - c0) / times[k][-1])
        return [(statistics.median(t), statistics.median(c)) for t, c in zip(times, cpu)]

    (t1, cpu1), (t2, cpu2), (t8, cpu8) = timed_interleaved(
        [serial, ours, lambda: _in_threads(serve, split(8))])
    extra = {"customers": len(ids), "n": 10, "ratio_2_over_1_threads": t1 / t2,
             "ratio_8_over_1_threads": t1 / t8, "cpu_per_wall": {"1": cpu1, "2": cpu2, "8": cpu8},
             "loadavg": os.getloadavg()}
    print(f"\n[recommend.recommend_one] {len(ids)} calls: 1 thread "
          f"{t1 / len(ids) * 1e6:.1f} us/call"
          f", 2 threads {t2 / len(ids) * 1e6:.1f}, 8 threads {t8 / len(ids) * 1e6:.1f}; throughput"
          f" 2/1 threads {t1 / t2:.2f}x, 8/1 {t1 / t8:.2f}x; cpu/wall {cpu1:.2f} {cpu2:.2f} "
          f"{cpu8:.2f}; load {os.getloadavg()[0]:.2f}")
    rec = compare(benchmark, "recommend.recommend_one_2threads", ours,
                  {"serial": serial, "implicit": implicit_two_threads}, check, rounds=5,
                  size=f"{synthetic.n_customers}x{synthetic.n_items}x{len(ids)}", extra=extra)
    if FULL:  # a shared machine can starve the second thread: asserted on full runs only
        assert rec["ratios"]["serial"] > 1.0, rec["ratios"]


QUALITY = {}


def test_retail_quality(benchmark):
    """Online Retail, temporal split at 2011-10-01: fit time ratio and precision/NDCG@10."""
    purchases, _ = retail_purchases()
    train, test = temporal_split(purchases, customer="CustomerID", item="StockCode",
                                 time="InvoiceDate", cutoff=RETAIL_CUTOFF)
    tr = train.matrix.astype(np.float32)
    te = test.matrix.astype(np.float32)

    def ours():
        return ALS(seed=0, **RETAIL_PARAMS).fit(train)

    def peer():
        return _implicit_fit(tr, random_state=0, **RETAIL_PARAMS)

    def check(model, theirs, name):
        mine = evaluate(model, test, k=10)
        with threadpool_limits(1, "blas"):
            ref = ranking_metrics_at_k(theirs, tr, te, K=10, show_progress=False)
        QUALITY.update(ours=mine, implicit=ref)
        print(f"\n[recommend.retail_quality] ours P@10 {mine['precision']:.4f} "
              f"NDCG@10 {mine['ndcg']:.4f} | implicit P@10 {ref['precision']:.4f} "
              f"NDCG@10 {ref['ndcg']:.4f}")
        assert mine["precision"] >= 0.98 * ref["precision"]
        assert mine["ndcg"] >= 0.98 * ref["ndcg"]

    compare(benchmark, "recommend.retail_als_fit", ours, {"implicit": peer}, check,
            rounds=3 if FULL else 1, size=f"{train.n_customers}x{train.n_items}x{train.nnz}",
            extra={"params": RETAIL_PARAMS})
