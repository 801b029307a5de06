"""Threads (issue #10, finding 15; issue #9 launch rule): a recommender call never changes
process-wide state such as the BLAS thread count, and answers are bit-identical for any thread
count and from concurrent callers."""
import concurrent.futures as cf
import sys
import types

import numpy as np
import pyarrow as pa
import pytest
from threadpoolctl import threadpool_info

from fastengage.recommend import ALS, BPR, ItemKNN, Interactions, evaluate, temporal_split

MODELS = {
    "als": lambda t: ALS(factors=12, iterations=3, seed=2, n_threads=t),
    "bpr": lambda t: BPR(factors=12, iterations=3, seed=2, n_threads=t),
    "knn": lambda t: ItemKNN("bm25", K=8, n_threads=t),
}


@pytest.fixture(scope="module")
def events():
    rng = np.random.default_rng(11)
    n = 6000
    pi = 1.0 / np.arange(1, 301)
    return pa.table({"c": rng.integers(0, 400, n),
                     "i": rng.choice(300, n, p=pi / pi.sum()),
                     "t": pa.array(rng.integers(0, 10**6, n) * 10**6, pa.timestamp("us"))})


def _blas_threads():
    return sorted((p["internal_api"], p["filepath"], p["num_threads"]) for p in threadpool_info())


def test_no_threadpool_limits_anywhere(events, monkeypatch):
    """No fastengage call enters threadpoolctl: its limits are process-wide and racy."""
    calls = []
    stub = types.ModuleType("threadpoolctl")
    stub.threadpool_limits = lambda *a, **k: calls.append((a, k))
    monkeypatch.setitem(sys.modules, "threadpoolctl", stub)
    inter = Interactions.from_data(events, customer="c", item="i")
    for make in MODELS.values():
        model = make(2).fit(inter)
        model.recommend(n=5)
        model.similar_items([0, 1, 2] * 10, n=4)
        evaluate(model, inter, k=5)
    assert calls == []


def test_concurrent_recommend_leaves_blas_threads_alone(events):
    before = _blas_threads()
    model = ALS(factors=16, iterations=2, seed=1).fit(events, customer="c", item="i")
    customers = events.column("c").unique()
    expected = model.recommend(customers, n=7)

    def run(_):
        return model.recommend(customers, n=7)

    with cf.ThreadPoolExecutor(6) as pool:
        results = list(pool.map(run, range(24)))
    assert all(r.equals(expected) for r in results)
    assert _blas_threads() == before


@pytest.mark.parametrize("name", list(MODELS))
def test_one_and_two_threads_give_identical_bits(events, name):
    if name == "bpr":  # Hogwild SGD: the fit depends on the chunking; scoring must not
        fitted = MODELS[name](1).fit(events, customer="c", item="i")
        one = two = fitted
    else:
        one = MODELS[name](1).fit(events, customer="c", item="i")
        two = MODELS[name](2).fit(events, customer="c", item="i")
    if name != "knn":
        np.testing.assert_array_equal(one.user_factors_, two.user_factors_)
        np.testing.assert_array_equal(one.item_factors_, two.item_factors_)
    a = one.recommend(n=9)
    two.n_threads = 2
    b = two.recommend(n=9)
    assert a.equals(b)
    items = events.column("i").unique()
    assert one.similar_items(items, n=5).equals(two.similar_items(items, n=5))
    one.n_threads = 1
    assert one.recommend(n=9).equals(b)


def test_als_loss_bits_do_not_depend_on_threads(events):
    model = ALS(factors=8, iterations=2, seed=4, n_threads=1).fit(events, customer="c", item="i")
    loss_1 = model.loss()
    model.n_threads = 2
    assert model.loss() == loss_1


@pytest.mark.parametrize("name", ["als", "bpr"])
def test_batch_and_single_customer_paths_agree_exactly(events, name):
    """Batch recommend, recommend_one and fold-in of the training history run one kernel."""
    model = MODELS[name](2).fit(events, customer="c", item="i")
    customers = events.column("c").unique().to_pylist()[:60]
    table = model.recommend(customers, n=6)
    for c in customers[:25]:
        items, scores = model.recommend_one(c, n=6)
        rows = table.filter(pa.compute.equal(table.column("customer"), c))
        assert items.tolist() == rows.column("item").to_pylist()
        np.testing.assert_array_equal(scores, rows.column("score").to_numpy())


def test_evaluate_threads(events):
    split = temporal_split(events, customer="c", item="i", time="t", cutoff="1970-01-07")
    model = ALS(factors=8, iterations=2, seed=4, n_threads=2).fit(split.train)
    a = evaluate(model, split.test, k=5)
    model.n_threads = 1
    assert evaluate(model, split.test, k=5) == a


@pytest.mark.parametrize("name", ["als", "bpr"])
def test_serial_twin_equals_parallel_kernel(events, name):
    """Requests of at most RECOMMEND_SERIAL_MAX customers run the serial twin of the batch
    kernel (dual_kernel): same bits as the parallel launch over the whole batch."""
    model = MODELS[name](2).fit(events, customer="c", item="i")
    customers = events.column("c").unique()
    batch = model.recommend(customers, n=5)
    for start in (0, 7, 30):
        part = customers[start:start + 9]
        small = model.recommend(part, n=5)  # serial twin
        mask = pa.compute.is_in(batch.column("customer"), value_set=part)
        assert small.sort_by([("customer", "ascending"), ("rank", "ascending")]).equals(
            batch.filter(mask).sort_by([("customer", "ascending"), ("rank", "ascending")]))
    items = events.column("i").unique()
    few = model.similar_items(items[:5], n=4)
    many = model.similar_items(items, n=4)
    assert few.equals(many.slice(0, few.num_rows))
