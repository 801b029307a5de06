"""Contract tests every recommender must pass (the benfred/implicit style: one suite, all models)."""
import concurrent.futures as cf

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastengage.errors import InputError, ModelFormatError
from fastengage.recommend import ALS, BPR, ItemKNN, Interactions

MODELS = {
    "als_cg": lambda: ALS(factors=8, iterations=4, seed=3),
    "als_cholesky": lambda: ALS(factors=8, iterations=4, seed=3, solver="cholesky"),
    "als_numpy": lambda: ALS(factors=8, iterations=4, seed=3, use_native=False),
    "bpr": lambda: BPR(factors=8, iterations=10, seed=3, n_threads=1),
    "knn_cosine": lambda: ItemKNN("cosine", K=10),
    "knn_bm25": lambda: ItemKNN("bm25", K=10),
}


@pytest.fixture(scope="module")
def events():
    rng = np.random.default_rng(7)
    n = 3000
    cust = rng.integers(0, 120, n)
    item = (rng.zipf(1.3, n) % 60)
    return pa.table({
        "cust": pa.array([f"c{c}" for c in cust]),
        "sku": pa.array(item.astype(np.int64)),
        "spend": pa.array(rng.uniform(1, 20, n)),
    })


@pytest.fixture(scope="module", params=list(MODELS))
def fitted(request, events):
    model = MODELS[request.param]().fit(events, customer="cust", item="sku")
    return request.param, model


def _seen(events):
    d = {}
    for c, i in zip(events.column("cust").to_pylist(), events.column("sku").to_pylist()):
        d.setdefault(c, set()).add(i)
    return d


def test_recommend_exact_n_never_seen(fitted, events):
    _, model = fitted
    n = 10
    table = model.recommend(n=n)
    assert table.column_names == ["customer", "rank", "item", "score"]
    assert table.schema.field("rank").type == pa.int32()
    seen = _seen(events)
    n_items = model.n_items
    per = {}
    for c, r, i in zip(*(table.column(k).to_pylist() for k in ("customer", "rank", "item"))):
        assert i not in seen[c]
        per.setdefault(c, []).append((r, i))
    assert set(per) == set(seen)
    for c, lst in per.items():
        expected = min(n, n_items - len(seen[c]))
        assert len(lst) == expected
        assert [r for r, _ in lst] == list(range(1, expected + 1))
        assert len({i for _, i in lst}) == expected
    # scores sorted within customer
    df = table.to_pandas()
    assert (df.groupby("customer", sort=False)["score"].apply(lambda s: s.is_monotonic_decreasing)).all()


def test_recommend_when_few_candidates(fitted, events):
    """A customer who has seen almost everything still gets every remaining item (implicit #736)."""
    _, model = fitted
    seen = _seen(events)
    cust = max(seen, key=lambda c: len(seen[c]))
    table = model.recommend([cust], n=model.n_items)
    assert table.num_rows == model.n_items - len(seen[cust])
    assert not set(table.column("item").to_pylist()) & seen[cust]


def test_items_and_exclude_items(fitted, events):
    _, model = fitted
    seen = _seen(events)
    cust = "c1"
    whitelist = list(range(0, 60, 3))
    t = model.recommend([cust], n=5, items=whitelist)
    got = t.column("item").to_pylist()
    cand = [i for i in whitelist if i not in seen[cust]]
    assert set(got) <= set(cand) and len(got) == min(5, len(cand))
    full = model.recommend([cust], n=5).column("item").to_pylist()
    t2 = model.recommend([cust], n=5, exclude_items=full[:2] + [999999])
    got2 = t2.column("item").to_pylist()
    assert not set(got2) & set(full[:2]) and len(got2) == 5
    assert got2[:3] == full[2:5]


def test_exclude_seen_false_can_return_seen(fitted):
    _, model = fitted
    t = model.recommend(["c1"], n=model.n_items, exclude_seen=False)
    assert t.num_rows == model.n_items


def test_customer_subset_order_and_ids(fitted):
    _, model = fitted
    t = model.recommend(["c5", "c2"], n=3)
    assert t.column("customer").to_pylist() == ["c5"] * 3 + ["c2"] * 3
    assert t.schema.field("customer").type == pa.string()
    assert t.schema.field("item").type == pa.int64()
    all_t = model.recommend(n=3)
    sub = all_t.filter(pa.compute.equal(all_t.column("customer"), "c2"))
    assert sub.column("item").to_pylist() == t.column("item").to_pylist()[3:]


def test_empty_requests(fitted):
    _, model = fitted
    assert model.recommend([], n=3).num_rows == 0
    assert model.recommend(["c1"], n=3, items=[]).num_rows == 0


def test_unknown_customer_and_bad_n(fitted):
    _, model = fitted
    with pytest.raises(InputError, match="not in the model"):
        model.recommend(["nobody"])
    with pytest.raises(InputError, match="n must be"):
        model.recommend(n=0)
    with pytest.raises(InputError, match="items="):
        model.recommend(["c1"], items=[123456])


def test_similar_items(fitted):
    _, model = fitted
    t = model.similar_items([1, 2], n=5)
    assert t.column_names == ["item", "rank", "similar_item", "score"]
    assert t.num_rows == 10
    firsts = t.filter(pa.compute.equal(t.column("rank"), 1))
    # an item is its own nearest neighbour (cosine 1) for factor models and cosine knn
    name, _ = fitted
    if name != "knn_bm25" and not name.startswith("bpr"):
        assert firsts.column("similar_item").to_pylist() == [1, 2]


def test_save_load_roundtrip(fitted, tmp_path):
    name, model = fitted
    path = tmp_path / f"{name}.fe"
    model.save(path)
    loaded = type(model).load(path)
    assert loaded.recommend(n=5).equals(model.recommend(n=5))
    assert loaded.similar_items([1], n=3).equals(model.similar_items([1], n=3))
    other = ALS if type(model) is not ALS else BPR
    with pytest.raises(ModelFormatError):
        other.load(path)


def test_threads_equal_serial(fitted):
    """recommend for single customers from 8 threads at once equals the serial answers."""
    _, model = fitted
    customers = [f"c{i}" for i in range(120) if i % 2 == 0]
    customers = [c for c in customers if c in set(model.recommend(n=1).column("customer").to_pylist())]
    serial = {c: model.recommend([c], n=7) for c in customers}
    with cf.ThreadPoolExecutor(8) as pool:
        par = dict(zip(customers, pool.map(lambda c: model.recommend([c], n=7), customers * 1)))
    for c in customers:
        assert par[c].equals(serial[c])


def test_fold_in_matches_known_customer(fitted, events):
    name, model = fitted
    hist = events.filter(pa.compute.is_in(events.column("cust"), pa.array(["c3", "c9"])))
    hist = hist.set_column(0, "cust", pa.compute.binary_join_element_wise(hist.column("cust"),
                                                                         "new", ""))
    if name == "bpr":
        with pytest.raises(InputError, match="fold in"):
            model.recommend_new(hist, customer="cust", item="sku")
        return
    new = model.recommend_new(hist, customer="cust", item="sku", n=5)
    old = model.recommend(["c3", "c9"], n=5)
    assert new.column("customer").to_pylist()[:5] == ["c3new"] * 5
    assert new.num_rows == old.num_rows
    if name.startswith("knn"):
        # item-item fold-in is the same computation as for a known customer
        assert new.column("item").equals(old.column("item"))
        np.testing.assert_allclose(new.column("score").to_numpy(), old.column("score").to_numpy(),
                                   rtol=1e-6)
    # unknown items: error by default, counted when ignored
    extra = pa.table({"cust": ["zz"], "sku": pa.array([987654], pa.int64())})
    with pytest.raises(InputError, match="does not"):
        model.recommend_new(pa.concat_tables([hist.select(["cust", "sku"]), extra]),
                            customer="cust", item="sku")
    t = model.recommend_new(pa.concat_tables([hist.select(["cust", "sku"]), extra]),
                            customer="cust", item="sku", unknown_items="ignore")
    assert t.schema.metadata[b"unknown_item_events"] == b"1"


def test_fit_from_interactions_equals_fit_from_table(events):
    inter = Interactions.from_data(events, customer="cust", item="sku")
    a = ALS(factors=4, iterations=2, seed=1).fit(inter).recommend(n=3)
    b = ALS(factors=4, iterations=2, seed=1).fit(events, customer="cust", item="sku").recommend(n=3)
    assert a.equals(b)


@pytest.mark.parametrize("model_cls", [ALS, BPR])
def test_pruned_topn_equals_exhaustive(model_cls):
    """The norm-bounded block pruning returns exactly the exhaustive top-n."""
    rng = np.random.default_rng(5)
    n = 40_000
    pu = 1.0 / np.arange(1, 801) ** 0.6
    pi = 1.0 / np.arange(1, 5001)
    t = pa.table({"c": rng.choice(800, n, p=pu / pu.sum()),
                  "i": rng.permutation(5000)[rng.choice(5000, n, p=pi / pi.sum())]})
    inter = Interactions.from_data(t, customer="c", item="i")
    model = (ALS(factors=16, iterations=5, seed=1) if model_cls is ALS
             else BPR(factors=16, iterations=5, seed=1, n_threads=1)).fit(inter)
    catalogue = inter.items.ids().to_pylist()[::2]
    for kw in ({}, {"items": catalogue}, {"exclude_items": catalogue}, {"exclude_seen": False}):
        pruned = model.recommend(n=20, **kw)
        model.use_native = False
        try:
            full = model.recommend(n=20, **kw)
        finally:
            model.use_native = True
        assert pruned.num_rows == full.num_rows
        a = pruned.column("item").to_numpy().reshape(-1, 20)
        b = full.column("item").to_numpy().reshape(-1, 20)
        assert (a == b).all(axis=1).mean() > 0.99  # float rounding may swap near-ties
        np.testing.assert_allclose(pruned.column("score").to_numpy(),
                                   full.column("score").to_numpy(), rtol=1e-4, atol=1e-6)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(1, 12), st.booleans())
def test_recommend_equals_naive_topn(seed, n, with_items):
    """End to end through the pruned path: recommend == naive top-n of X Y^T with
    seen items removed and ties ordered by training popularity."""
    import naive_recommend as naive

    rng = np.random.default_rng(seed)
    n_users, n_items = 40, 30  # more customers than the serial path takes: batch path
    k = rng.integers(60, 300)
    t = pa.table({"c": rng.integers(0, n_users, k), "i": rng.integers(0, n_items, k)})
    model = ALS(factors=3, iterations=2, seed=int(seed % 1000)).fit(t, customer="c", item="i")
    # coarse factors create exact score ties, which must follow the tie-break rule
    # (multiples of 1/4: every product and sum is exact in float32, whatever the order)
    model.user_factors_ = (np.round(model.user_factors_ * 40) / 4).astype(np.float32)
    model.item_factors_ = (np.round(model.item_factors_ * 40) / 4).astype(np.float32)
    model._finalize()
    items = None
    if with_items:
        items = model.items_.ids().to_pylist()[::2]
    table = model.recommend(n=n, items=items)
    S = model.user_factors_.astype(np.float32) @ model.item_factors_.T.astype(np.float32)
    allowed = None
    if items is not None:
        allowed = np.zeros(model.n_items, bool)
        allowed[model.items_.lookup(pa.array(items))] = True
    got_c = model.customers_.lookup(table.column("customer"))
    got_i = model.items_.lookup(table.column("item"))
    for u in range(model.n_customers):
        seen = model.seen_indices_[model.seen_indptr_[u]:model.seen_indptr_[u + 1]]
        ref, _ = naive.topn(S[u], n, seen, allowed, model._tiebreak)
        assert got_i[got_c == u].tolist() == ref


def test_fold_in_from_threads_equals_serial(fitted, events):
    name, model = fitted
    if name == "bpr":
        return
    baskets = [events.filter(pa.compute.equal(events.column("cust"), f"c{i}")).select(["cust", "sku"])
               for i in range(0, 40, 3)]
    serial = [model.recommend_new(b, customer="cust", item="sku", n=6) for b in baskets]
    with cf.ThreadPoolExecutor(8) as pool:
        par = list(pool.map(lambda b: model.recommend_new(b, customer="cust", item="sku", n=6),
                            baskets))
    for a, b in zip(serial, par):
        assert a.equals(b)
