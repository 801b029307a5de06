"""recommend_one: the single-customer serving path (one nogil kernel call for ALS and BPR)."""
import concurrent.futures as cf

import numpy as np
import pyarrow as pa
import pytest

from fastengage.errors import InputError
from fastengage.kernels.recommend import serve as rec_serve
from fastengage.recommend import ALS, BPR, ItemKNN, Interactions

from naive_recommend import topn as naive_topn


def _events(seed=7, n=20_000, n_cust=300, n_items=2000, str_ids=False):
    rng = np.random.default_rng(seed)
    pu = 1.0 / np.arange(1, n_cust + 1) ** 0.6
    pi = 1.0 / np.arange(1, n_items + 1)
    c = rng.permutation(n_cust)[rng.choice(n_cust, n, p=pu / pu.sum())] * 7 + 3
    i = rng.permutation(n_items)[rng.choice(n_items, n, p=pi / pi.sum())]
    if str_ids:
        return pa.table({"c": pa.array([f"kü{v}" for v in c]),
                         "i": pa.array([f"sku-{v}" for v in i])})
    return pa.table({"c": c.astype(np.int64), "i": i.astype(np.int32)})


MODELS = {
    "als": lambda: ALS(factors=16, iterations=5, seed=1),
    "als64": lambda: ALS(factors=12, iterations=4, seed=1, dtype=np.float64),
    "bpr": lambda: BPR(factors=16, iterations=5, seed=1, n_threads=1),
    "knn": lambda: ItemKNN("cosine", K=20),
}


@pytest.fixture(scope="module", params=[(m, s) for m in MODELS for s in (False, True)],
                ids=lambda p: f"{p[0]}-{'str' if p[1] else 'int'}")
def fitted(request):
    name, str_ids = request.param
    return MODELS[name]().fit(_events(str_ids=str_ids), customer="c", item="i")


def _customers(model):
    return model.customers_.ids().to_pylist()


@pytest.mark.parametrize("exclude_seen", [True, False])
def test_equals_recommend(fitted, exclude_seen):
    model = fitted
    for c in _customers(model):
        items, scores = model.recommend_one(c, n=10, exclude_seen=exclude_seen)
        ref = model.recommend([c], n=10, exclude_seen=exclude_seen)
        assert list(items) == ref.column("item").to_pylist(), c
        assert scores.dtype == np.float32
        np.testing.assert_allclose(scores, ref.column("score").to_numpy(), rtol=1e-5,
                                   atol=1e-6)


@pytest.mark.parametrize("model_cls", [ALS, BPR])
@pytest.mark.parametrize("n", [1, 10, 60])
def test_equals_naive_topn(model_cls, n):
    """Against the plain NumPy reference: exhaustive scores, seen items dropped, ties by
    training popularity."""
    inter = Interactions.from_data(_events(seed=3), customer="c", item="i")
    model = (ALS(factors=16, iterations=5, seed=2) if model_cls is ALS
             else BPR(factors=16, iterations=5, seed=2, n_threads=1)).fit(inter)
    indptr, indices, _ = inter.csr_arrays()
    scores = model.user_factors_.astype(np.float64) @ model.item_factors_.T.astype(np.float64)
    ids = inter.customers.ids().to_pylist()
    item_ids = inter.items.ids().to_numpy()
    for row in range(0, inter.n_customers, 3):
        want, want_s = naive_topn(scores[row], n, indices[indptr[row]:indptr[row + 1]],
                                  tiebreak=model._tiebreak)
        got, got_s = model.recommend_one(ids[row], n=n)
        np.testing.assert_allclose(got_s, want_s, rtol=1e-4, atol=1e-6)
        # float32 rounding may swap exact near-ties only
        same = np.mean(got == item_ids[want])
        assert same == 1.0 or np.ptp(np.asarray(want_s)[got != item_ids[want]]) < 1e-5


def test_fewer_candidates_than_n(fitted):
    model = fitted
    c = _customers(model)[0]
    seen = model.seen_indptr_[1] - model.seen_indptr_[0]
    items, scores = model.recommend_one(c, n=model.n_items + 5)
    assert items.size == scores.size == model.n_items - seen
    assert len(set(items.tolist())) == items.size
    items, _ = model.recommend_one(c, n=model.n_items + 5, exclude_seen=False)
    assert items.size == model.n_items


def test_unknown_or_wrong_kind_and_bad_n(fitted):
    model = fitted
    kind = model.customers_.kind
    with pytest.raises(InputError, match="not in the model"):
        model.recommend_one("nope" if kind == "str" else -12345)
    if kind == "int":
        with pytest.raises(InputError, match="not in the model"):
            model.recommend_one(2 ** 70)
    with pytest.raises(InputError):
        model.recommend_one(1.5)
    for bad in (0, -1, 2.0, True):
        with pytest.raises(InputError, match="n must be"):
            model.recommend_one(_customers(model)[0], n=bad)


def test_numpy_scalar_ids_and_item_id_type(fitted):
    model = fitted
    c = _customers(model)[4]
    key = np.int64(c) if model.customers_.kind == "int" else np.str_(c)
    items, _ = model.recommend_one(key, n=5)
    assert list(items) == model.recommend_one(c, n=5)[0].tolist()
    if model.items_.kind == "int":
        assert items.dtype == np.int64  # int32 ids in the data: int64 out
    else:
        assert items.dtype == object and isinstance(items[0], str)


def test_threads_equal_serial(fitted):
    """recommend_one from 8 threads at once gives exactly the serial answers."""
    model = fitted
    customers = _customers(model) * 3
    serial = [model.recommend_one(c, n=7) for c in customers]
    with cf.ThreadPoolExecutor(8) as pool:
        par = list(pool.map(lambda c: model.recommend_one(c, n=7), customers))
    for (a, sa), (b, sb) in zip(serial, par):
        assert np.array_equal(a, b) and np.array_equal(sa, sb)


def test_after_save_load(fitted, tmp_path):
    model = fitted
    path = tmp_path / "m.fe"
    model.save(path)
    loaded = type(model).load(path)
    for c in _customers(model)[:20]:
        a, sa = model.recommend_one(c, n=6)
        b, sb = loaded.recommend_one(c, n=6)
        assert np.array_equal(a, b) and np.array_equal(sa, sb)


def test_numpy_model_uses_generic_path():
    events = _events(seed=5, n=4000, n_cust=60, n_items=200)
    native = ALS(factors=6, iterations=3, seed=4, dtype=np.float64).fit(events, customer="c", item="i")
    plain = ALS(factors=6, iterations=3, seed=4, dtype=np.float64,
                use_native=False).fit(events, customer="c", item="i")
    for c in _customers(native)[:10]:
        a, sa = native.recommend_one(c, n=5)
        b, sb = plain.recommend_one(c, n=5)
        assert np.array_equal(a, b)
        np.testing.assert_allclose(sa, sb, rtol=1e-6)


def test_find_kernels():
    keys = np.array([-5, 3, 9, 2 ** 40], np.int64)
    codes = np.array([2, 0, 3, 1], np.int64)
    assert [rec_serve.find_int(keys, codes, k) for k in (-5, 3, 9, 2 ** 40, 4)] == \
        [2, 0, 3, 1, -1]
    words = ["b", "", "ab", "a", "é", "abc"]
    raw = [w.encode() for w in words]
    offsets = np.cumsum([0] + [len(r) for r in raw]).astype(np.int64)
    data = np.frombuffer(b"".join(raw) or b"\0", np.uint8)
    order = np.array(sorted(range(len(raw)), key=lambda k: raw[k]), np.int64)
    for code, r in enumerate(raw):
        assert rec_serve.find_str(offsets, data, order, np.frombuffer(r, np.uint8)) == code
    for miss in (b"abd", b"aa", b"\xff", b"b\0"):
        assert rec_serve.find_str(offsets, data, order, np.frombuffer(miss, np.uint8)) == -1


def test_server_refuses_mismatched_arguments(fitted):
    """The compiled Server checks what it is built from and called with (it reads raw pointers
    afterwards, so a mismatch must never reach the kernel)."""
    model = fitted
    if not hasattr(model, "user_factors_"):
        pytest.skip("factor models only")
    model.recommend_one(_customers(model)[0])
    kind, server, _ = model._serve
    out_idx, out_score = np.empty(3, np.int64), np.empty(3, np.float32)
    with pytest.raises(ValueError):
        server.topn_int(0, True, out_idx, np.empty(2, np.float32))
    with pytest.raises(ValueError):
        server.topn_int(0, True, np.empty(0, np.int64), np.empty(0, np.float32))
    wrong_kind = server.topn_str if kind == "int" else server.topn_int
    with pytest.raises((ValueError, TypeError)):
        wrong_kind(b"1" if kind == "int" else 1, True, out_idx, out_score)
    V = model.item_factors_
    static = (model._sorted_norms, model._perm, 1.0, model.seen_indptr_[:-1],
              model.seen_indices_, model._tiebreak, np.arange(model.n_items, dtype=np.int64))
    proj, proj_T, resid = model._bounds()
    lookup = (np.zeros(0, np.int64), np.zeros(0, np.int64))
    with pytest.raises(ValueError, match="seen_indptr"):
        rec_serve.Server(lookup, model.user_factors_, V, proj, proj_T, resid, *static)
