"""forget(customers) on recommenders and Interactions (issue #14 part 3), against the protocol
of fastengage.privacy.forget: no trace in the saved bytes, forgotten ids served as unknown ones,
exact parts equal to a rebuild on the filtered data (ItemKNN) or to the documented item
half-step (ALS, checked against plain normal equations), honest audit records, and no torn
state for concurrent readers."""
import concurrent.futures as cf
import io
import json
import pickle
import threading
import zipfile

import numpy as np
import pyarrow as pa
import pytest
import scipy.sparse as sp

from fastengage.errors import InputError, ModelFormatError
from fastengage.privacy.forget import find_traces, read_log
from fastengage.recommend import ALS, BPR, ItemKNN, Interactions
from fastengage.recommend.als import MAX_ALPHA

from naive_recommend import normal_equations

N_CUST, N_ITEMS = 120, 90


def _ids(str_ids: bool, seed: int = 3):
    rng = np.random.default_rng(seed)
    if str_ids:
        return [f"kunde-{v:012x}-ü" for v in rng.integers(1 << 40, 1 << 47, N_CUST)]
    # distinctive integers: their 8-byte forms cannot occur in the arrays by chance
    return [(1 << 50) + int(v) * 7919 + 12345
            for v in rng.choice(10**9, N_CUST, replace=False)]


def _events(str_ids: bool, seed: int = 5, n: int = 3000) -> pa.Table:
    rng = np.random.default_rng(seed)
    ids = _ids(str_ids)
    pi = 1.0 / np.arange(1, N_ITEMS + 1) ** 0.7
    c = rng.integers(0, N_CUST, n)
    i = rng.choice(N_ITEMS, n, p=pi / pi.sum())
    cust = pa.array([ids[k] for k in c]) if str_ids else pa.array([ids[k] for k in c], pa.int64())
    return pa.table({"c": cust, "i": pa.array(i.astype(np.int64))})


MODELS = {
    "als": lambda: ALS(factors=8, iterations=4, regularization=0.1, seed=1),
    "als-chol64": lambda: ALS(factors=6, iterations=3, solver="cholesky", dtype=np.float64,
                              seed=1),
    "als-numpy": lambda: ALS(factors=6, iterations=3, seed=1, use_native=False),
    "bpr": lambda: BPR(factors=8, iterations=4, seed=1, n_threads=1),
    "cosine": lambda: ItemKNN("cosine", K=10),
    "bm25": lambda: ItemKNN("bm25", K=10),
}


def _saved(model) -> bytes:
    buf = io.BytesIO()
    model.save(buf)
    return buf.getvalue()


def _forgotten(str_ids):
    ids = _ids(str_ids)
    return [ids[0], ids[7], ids[33]]


def _pairs_of(table: pa.Table, customers) -> int:
    """Distinct (customer, item) pairs of ``customers`` in the event table."""
    mask = np.isin(np.array(table.column("c").to_pylist(), dtype=object),
                   np.array(customers, dtype=object))
    sub = table.filter(pa.array(mask))
    return len(set(zip(sub.column("c").to_pylist(), sub.column("i").to_pylist())))


@pytest.mark.parametrize("str_ids", [False, True], ids=["int", "str"])
@pytest.mark.parametrize("name", list(MODELS))
def test_no_trace_and_served_as_unknown(name, str_ids):
    table = _events(str_ids)
    model = MODELS[name]().fit(table, customer="c", item="i")
    gone = _forgotten(str_ids)
    unknown = "never-seen-customer" if str_ids else (1 << 61) + 99
    assert find_traces(_saved(model), gone), "the ids must be found before forget"
    before = {c: model.recommend_one(c, n=5) for c in _ids(str_ids)[1:6]}

    record = model.forget(gone + [unknown], request="ticket-17")

    assert (record.customers_requested, record.customers_found) == (4, 3)
    assert record.rows_removed == _pairs_of(table, gone) > 0
    assert record.exact is (name != "bpr")
    assert record.request == "ticket-17" and record.object == type(model).__name__
    assert record.details["customers_left"] == N_CUST - 3 == model.n_customers
    text = record.to_json()
    assert not any(str(c) in text for c in gone)
    raw = _saved(model)
    assert find_traces(raw, gone) == []
    assert find_traces(pickle.dumps(model), gone) == []
    loaded = type(model).load(io.BytesIO(raw))
    for m in (model, loaded):
        for c in gone + [unknown]:
            with pytest.raises(InputError, match="not in the model"):
                m.recommend_one(c, n=5)
            with pytest.raises(InputError, match="not in the model"):
                m.recommend([c], n=5)
        assert not set(gone) & set(m.recommend(n=3).column("customer").to_pylist())
        # every other customer is still served, the same from the saved file
        for c in before:
            items, scores = m.recommend_one(c, n=5)
            ref_items, ref_scores = model.recommend_one(c, n=5)
            assert list(items) == list(ref_items)
            np.testing.assert_array_equal(scores, ref_scores)
    # a second forget of the same ids finds nothing and changes nothing
    again = model.forget(gone)
    assert (again.customers_requested, again.customers_found, again.rows_removed) == (3, 0, 0)
    assert _saved(model) == raw or find_traces(_saved(model), gone) == []


def _filtered_interactions(table, gone, str_ids):
    """The interaction matrix without ``gone``, built independently: scipy row selection on the
    full matrix, ids in the same order (what forget promises to equal)."""
    full = Interactions.from_data(table, customer="c", item="i")
    ids = full.customers.ids().to_pylist()
    keep = np.array([c not in set(gone) for c in ids])
    m = sp.csr_matrix(full.matrix[np.flatnonzero(keep)])
    kept_ids = [c for c, k in zip(ids, keep) if k]
    return full, keep, Interactions.from_csr(
        m, customer_ids=pa.array(kept_ids, pa.string() if str_ids else pa.int64()),
        item_ids=full.items.ids())


@pytest.mark.parametrize("str_ids", [False, True], ids=["int", "str"])
def test_interactions_forget_equals_filtered_matrix(str_ids):
    table = _events(str_ids)
    gone = _forgotten(str_ids)
    full, keep, ref = _filtered_interactions(table, gone, str_ids)
    nnz = full.nnz
    record = full.forget(gone + (["nobody"] if str_ids else [2 ** 62 + 1]), request="r-1")
    assert (record.customers_requested, record.customers_found) == (4, 3)
    assert record.rows_removed == nnz - ref.nnz == _pairs_of(table, gone)
    assert record.exact
    assert full.customers.ids().to_pylist() == ref.customers.ids().to_pylist()
    assert full.shape == ref.shape and (full.matrix != ref.matrix).nnz == 0
    np.testing.assert_array_equal(full.matrix.indptr, ref.matrix.indptr)
    assert find_traces(pickle.dumps(full), gone) == []
    with pytest.raises(InputError):
        full.forget(5 if str_ids else "five")  # wrong id kind: refused, nothing changed
    assert full.nnz == ref.nnz


@pytest.mark.parametrize("similarity", ["cosine", "bm25"])
@pytest.mark.parametrize("str_ids", [False, True], ids=["int", "str"])
def test_itemknn_forget_equals_rebuild(similarity, str_ids):
    table = _events(str_ids)
    gone = _forgotten(str_ids)
    _, _, ref_inter = _filtered_interactions(table, gone, str_ids)
    model = ItemKNN(similarity, K=10).fit(table, customer="c", item="i")
    full_sim = model.similarities_.copy()
    model.forget(gone)
    ref = ItemKNN(similarity, K=10).fit(ref_inter)
    np.testing.assert_array_equal(model.neighbours_, ref.neighbours_)
    np.testing.assert_array_equal(model.similarities_, ref.similarities_)
    assert not np.array_equal(full_sim, model.similarities_)  # the customers did count
    assert model.recommend(n=8).equals(ref.recommend(n=8))
    assert model.similar_items([0, 1, 2], n=5).equals(ref.similar_items([0, 1, 2], n=5))


def _naive_item_half_step(X, inter, alpha, reg):
    """Item factors from the item-side normal equations (paper eq. 4 with users fixed), solved
    item by item in float64."""
    m = inter.matrix.tocsc()
    Y = np.zeros((inter.n_items, X.shape[1]))
    for j in range(inter.n_items):
        users = m.indices[m.indptr[j]:m.indptr[j + 1]]
        conf = alpha * m.data[m.indptr[j]:m.indptr[j + 1]].astype(np.float64)
        A, b = normal_equations(X, reg, users, conf)
        Y[j] = np.linalg.solve(A, b)
    return Y


@pytest.mark.parametrize("use_native", [True, False])
@pytest.mark.parametrize("solver", ["cg", "cholesky"])
def test_als_forget_is_one_exact_item_half_step(solver, use_native):
    str_ids = False
    table = _events(str_ids)
    gone = _forgotten(str_ids)
    _, keep, ref_inter = _filtered_interactions(table, gone, str_ids)
    model = ALS(factors=8, iterations=4, regularization=0.1, alpha=2.0, solver=solver,
                seed=4, use_native=use_native).fit(table, customer="c", item="i")
    X_before, Y_before = model.user_factors_.copy(), model.item_factors_.copy()
    record = model.forget(gone)
    assert record.exact and record.details["item_factors"] == "re-solved"
    # remaining user factors untouched, in the same order
    np.testing.assert_array_equal(model.user_factors_, X_before[keep])
    # item factors: the exact half-step on the filtered data, against plain normal equations
    Y_ref = _naive_item_half_step(X_before[keep], ref_inter, 2.0, 0.1)
    np.testing.assert_allclose(model.item_factors_, Y_ref, rtol=2e-4, atol=2e-6)
    assert not np.allclose(model.item_factors_, Y_before, rtol=1e-3, atol=1e-5)
    # a model whose item half-step ran on the filtered data serves the same answers
    ref = ALS(factors=8, iterations=0, regularization=0.1, alpha=2.0, seed=4,
              use_native=use_native).fit(ref_inter)
    ref.user_factors_ = X_before[keep]
    ref.item_factors_ = ref.resolve_items(ref.user_factors_, ref.seen_indptr_,
                                          ref.seen_indices_, ref.seen_data_)
    ref._finalize()
    np.testing.assert_array_equal(model.item_factors_, ref.item_factors_)
    assert model.recommend(n=8).equals(ref.recommend(n=8))


def test_bpr_keeps_item_factors_and_says_so():
    table = _events(False)
    gone = _forgotten(False)
    _, keep, _ = _filtered_interactions(table, gone, False)
    model = BPR(factors=8, iterations=4, seed=1, n_threads=1).fit(table, customer="c", item="i")
    X, Y = model.user_factors_.copy(), model.item_factors_.copy()
    record = model.forget(gone)
    assert not record.exact and "gradient steps" in record.notes
    assert record.details["item_factors"] == "kept"
    np.testing.assert_array_equal(model.user_factors_, X[keep])
    np.testing.assert_array_equal(model.item_factors_, Y)


def test_audit_log_round_trip(tmp_path):
    model = ItemKNN(K=5).fit(_events(True), customer="c", item="i")
    log = tmp_path / "erasures.jsonl"
    model.forget(_forgotten(True)[:1], request="A").append_to(log)
    model.forget(_forgotten(True)[1:], request="B").append_to(log)
    records = read_log(log)
    assert [r.request for r in records] == ["A", "B"]
    assert [r.customers_found for r in records] == [1, 2]
    assert not any(c in log.read_text(encoding="utf-8") for c in _forgotten(True))


@pytest.mark.parametrize("name", ["als", "bpr", "cosine"])
def test_forget_while_serving(name):
    """Readers running while customers are forgotten one by one see, for every request, the
    answer of one of the successive models (never a mix of old and new state)."""
    table = _events(False)
    ids = _ids(False)
    model = MODELS[name]().fit(table, customer="c", item="i")
    steps = [[ids[k]] for k in range(60, 80)]
    served = ids[:20]
    # the answers of every successive model, replayed on a copy
    replay = pickle.loads(pickle.dumps(model))
    valid = {c: set() for c in served}

    def snapshot(m):
        for c in served:
            items, scores = m.recommend_one(c, n=6)
            valid[c].add((tuple(items), scores.tobytes()))

    snapshot(replay)
    for step in steps:
        replay.forget(step)
        snapshot(replay)
    stop = threading.Event()
    seen = []

    def serve(offset):
        k = offset
        while not stop.is_set():
            c = served[k % len(served)]
            items, scores = model.recommend_one(c, n=6)
            seen.append((c, (tuple(items), scores.tobytes())))
            batch = model.recommend([c], n=6)
            seen.append((c, (tuple(batch.column("item").to_pylist()),
                             batch.column("score").to_numpy().tobytes())))
            k += 1

    with cf.ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(serve, o) for o in range(3)]
        for step in steps:
            model.forget(step)
        stop.set()
        for f in futures:
            f.result()
    assert len(seen) > 20
    bad = [(c, a) for c, a in seen if a not in valid[c]]
    assert not bad, f"{len(bad)} of {len(seen)} answers match no model state"


def test_alpha_bounded_in_constructor_and_file():
    with pytest.raises(InputError, match="alpha"):
        ALS(alpha=1e308)
    with pytest.raises(InputError, match="alpha"):
        ALS(alpha=MAX_ALPHA * 1.0001)
    ALS(alpha=MAX_ALPHA)
    model = ALS(factors=4, iterations=2, seed=0).fit(_events(False), customer="c", item="i")
    parts = {}
    with zipfile.ZipFile(io.BytesIO(_saved(model))) as zf:
        parts = {info.filename: zf.read(info) for info in zf.infolist()}
    header = json.loads(parts["meta.json"])
    header["meta"]["params"]["alpha"] = 1e308
    parts["meta.json"] = json.dumps(header).encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in parts.items():
            zf.writestr(name, data)
    with pytest.raises(ModelFormatError, match="alpha"):
        ALS.load(io.BytesIO(out.getvalue()))


def test_forget_everything_leaves_a_valid_model():
    for name in ("als", "bpr", "bm25"):
        model = MODELS[name]().fit(_events(True), customer="c", item="i")
        record = model.forget(model.customers_.ids())
        assert record.customers_found == N_CUST and model.n_customers == 0
        loaded = type(model).load(io.BytesIO(_saved(model)))
        assert loaded.recommend(n=3).num_rows == 0
        if name != "bpr":  # fold-in still works from the item side
            new = pa.table({"s": ["x", "x"], "i": pa.array([0, 1], pa.int64())})
            assert loaded.recommend_new(new, customer="s", item="i", n=3).num_rows == 3
