"""ALS: objective, solvers, and agreement with implicit (factors, metrics, fold-in)."""
import numpy as np
import pyarrow as pa
import pytest
from threadpoolctl import threadpool_limits

from fastengage.kernels.recommend import als as rec_als
from fastengage.recommend import ALS, Interactions, evaluate, random_split, ranking_metrics

implicit_als = pytest.importorskip("implicit.als")  # installs on 3.11: this always runs here
from implicit.evaluation import ranking_metrics_at_k  # noqa: E402


@pytest.fixture(autouse=True)
def _one_blas_thread():
    # implicit asks for a single BLAS thread (its own threads do the parallel work)
    with threadpool_limits(1, "blas"):
        yield


@pytest.fixture(scope="module")
def inter():
    rng = np.random.default_rng(11)
    n = 6000
    t = pa.table({"c": rng.integers(0, 300, n), "i": rng.zipf(1.4, n) % 150})
    return Interactions.from_data(t, customer="c", item="i")


@pytest.mark.parametrize("solver", ["cg", "cholesky"])
def test_objective_decreases_every_iteration(inter, solver):
    m = ALS(factors=10, iterations=8, regularization=0.1, alpha=3.0, seed=0, solver=solver,
            dtype=np.float64, calculate_loss=True).fit(inter)
    loss = np.array(m.loss_history_)
    assert (np.diff(loss) < 0).all(), loss
    assert m.loss() == pytest.approx(loss[-1])


def test_cg_converges_to_cholesky_half_step(inter):
    rng = np.random.default_rng(0)
    indptr, indices, data = inter.csr_arrays()
    conf = 2.0 * data.astype(np.float64)
    f = 6
    Y = rng.random((inter.n_items, f))
    A0 = Y.T @ Y + 0.1 * np.eye(f)
    X_chol = np.zeros((inter.n_customers, f))
    rec_als.als_cholesky_half(indptr, indices, conf, X_chol, Y, A0)
    X_cg = rng.random((inter.n_customers, f)) * 0.01
    rec_als.als_cg_half(indptr, indices, conf, X_cg, Y, A0, 30)
    np.testing.assert_allclose(X_cg, X_chol, rtol=1e-6, atol=1e-8)


def test_cg_fit_close_to_cholesky_fit(inter):
    kw = dict(factors=10, iterations=15, regularization=0.1, alpha=2.0, seed=0, dtype=np.float64)
    ch = ALS(solver="cholesky", **kw).fit(inter)
    # implicit's 3 warm-started CG steps: not an exact solve, but the same objective value
    cg3 = ALS(solver="cg", **kw).fit(inter)
    assert cg3.loss() == pytest.approx(ch.loss(), rel=5e-3)
    # with f steps CG solves each half-step exactly, so it follows Cholesky's trajectory
    cgf = ALS(solver="cg", cg_steps=10, **kw).fit(inter)
    s_cg = cgf.user_factors_ @ cgf.item_factors_.T
    s_ch = ch.user_factors_ @ ch.item_factors_.T
    np.testing.assert_allclose(s_cg, s_ch, atol=1e-3 * np.abs(s_ch).max())


def test_native_equals_numpy(inter):
    kw = dict(factors=6, iterations=3, seed=2, dtype=np.float64)
    for solver in ("cg", "cholesky"):
        a = ALS(solver=solver, **kw).fit(inter)
        b = ALS(solver=solver, use_native=False, **kw).fit(inter)
        np.testing.assert_allclose(a.user_factors_, b.user_factors_, rtol=1e-7, atol=1e-9)
        np.testing.assert_allclose(a.item_factors_, b.item_factors_, rtol=1e-7, atol=1e-9)


def _implicit_model(inter, **kw):
    m = implicit_als.AlternatingLeastSquares(**kw)
    m.fit(inter.matrix.astype(np.float32), show_progress=False)
    return m


def test_same_factors_as_implicit(inter):
    """Same hyper-parameters and seed give implicit's model (float32 rounding apart)."""
    ours = ALS(factors=12, iterations=6, regularization=0.05, alpha=4.0, seed=5).fit(inter)
    theirs = _implicit_model(inter, factors=12, iterations=6, regularization=0.05, alpha=4.0,
                             random_state=5)
    scale = np.abs(theirs.item_factors).max()
    np.testing.assert_allclose(ours.item_factors_, theirs.item_factors, atol=1e-2 * scale)
    np.testing.assert_allclose(ours.user_factors_ @ ours.item_factors_.T,
                               theirs.user_factors @ theirs.item_factors.T,
                               atol=1e-2 * np.abs(theirs.user_factors @ theirs.item_factors.T).max())


def test_metrics_agree_with_implicit_evaluation(inter):
    train, test = random_split(inter, 0.25, seed=3)
    tr = train.matrix.astype(np.float32)
    te = test.matrix.astype(np.float32)
    theirs = _implicit_model(train, factors=8, iterations=5, alpha=2.0, random_state=1)
    ref = ranking_metrics_at_k(theirs, tr, te, K=10, show_progress=False)
    # same recommendations -> same numbers
    users = np.arange(train.n_customers)
    ids, _ = theirs.recommend(users, tr[users], N=10)
    got = ranking_metrics(ids, test)
    for key in ("precision", "map", "ndcg", "auc"):
        assert got[key] == pytest.approx(ref[key], rel=1e-9), key
    # our model with the same settings on the same split: implicit's quality
    ours = evaluate(ALS(factors=8, iterations=5, alpha=2.0, seed=1).fit(train), test, k=10)
    for key in ("precision", "map", "ndcg", "auc"):
        assert ours[key] == pytest.approx(ref[key], rel=0.02), key


def test_fold_in_equals_implicit_recalculate_user(inter):
    ours = ALS(factors=8, iterations=4, alpha=2.0, seed=9).fit(inter)
    theirs = _implicit_model(inter, factors=8, iterations=4, alpha=2.0, random_state=9)
    theirs.item_factors = ours.item_factors_.copy()  # isolate the fold-in step
    rows = np.array([0, 5, 17])
    user_items = inter.matrix[rows].astype(np.float32)
    ids, scores = theirs.recommend(rows, user_items, N=5, recalculate_user=True)
    coo = user_items.tocoo()
    hist = pa.table({"c": pa.array(rows[coo.row] + 10_000), "i": inter.items.decode(coo.col),
                     "w": pa.array(coo.data.astype(np.float64))})
    # counts: the bundled weighting is "count", so pass one row per event
    reps = coo.data.astype(int)
    hist = pa.table({"c": np.repeat(rows[coo.row] + 10_000, reps),
                     "i": np.repeat(np.asarray(inter.items.decode(coo.col)), reps)})
    t = ours.recommend_new(hist, customer="c", item="i", n=5)
    got = np.asarray(inter.items.lookup(t.column("item"))).reshape(3, 5)
    np.testing.assert_array_equal(got, ids)
    np.testing.assert_allclose(t.column("score").to_numpy().reshape(3, 5), scores, rtol=1e-3,
                               atol=1e-5)
