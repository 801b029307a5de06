"""Each recommend kernel against its plain reference in tests/naive_recommend.py."""
import numba
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from fastengage.kernels.recommend import als as rec_als
from fastengage.kernels.recommend import csr as rec_csr
from fastengage.kernels.recommend import knn as rec_knn
from fastengage.kernels.recommend import metrics as rec_metrics
from fastengage.kernels.recommend import vectorized as rec_numpy
from fastengage.kernels.common import sched as rec_sched
from fastengage.kernels.recommend import topn as rec_topn

import naive_recommend as naive

SETTINGS = settings(max_examples=40, deadline=None)


@st.composite
def score_matrices(draw):
    B = draw(st.integers(1, 5))
    I = draw(st.integers(1, 30))
    # small integers so that ties are frequent; some NaN
    vals = draw(st.lists(st.one_of(st.integers(-3, 3).map(float), st.just(float("nan"))),
                         min_size=B * I, max_size=B * I))
    scores = np.array(vals, dtype=np.float32).reshape(B, I)
    seen = [sorted(draw(st.sets(st.integers(0, I - 1), max_size=I))) for _ in range(B)]
    use_allowed = draw(st.booleans())
    allowed = np.array(draw(st.lists(st.booleans(), min_size=I, max_size=I)), np.uint8)
    n = draw(st.integers(1, I + 2))
    tb = np.array(draw(st.permutations(list(range(I)))), np.int64)
    return scores, seen, use_allowed, allowed, n, tb


def _seen_csr(seen):
    indptr = np.zeros(len(seen) + 1, np.int64)
    indptr[1:] = np.cumsum([len(s) for s in seen])
    indices = np.array([j for s in seen for j in s], np.int64)
    return indptr, indices


@SETTINGS
@given(score_matrices())
def test_topn_matches_naive(case):
    scores, seen, use_allowed, allowed, n, tb = case
    B = scores.shape[0]
    indptr, indices = _seen_csr(seen)
    rows = np.arange(B, dtype=np.int64)
    for kernel in (rec_topn.topn_block, rec_topn.topn_block_serial, rec_numpy.topn_block):
        idx = np.empty((B, n), np.int64)
        sc = np.empty((B, n), np.float32)
        cnt = np.empty(B, np.int64)
        kernel(scores, rows, indptr, indices, allowed if use_allowed else np.ones(1, np.uint8),
               use_allowed, tb, n, idx, sc, cnt)
        for b in range(B):
            ref_idx, ref_sc = naive.topn(scores[b], n, seen[b], allowed if use_allowed else None,
                                         tb)
            assert cnt[b] == len(ref_idx)
            assert idx[b, :cnt[b]].tolist() == ref_idx
            np.testing.assert_array_equal(sc[b, :cnt[b]], np.array(ref_sc, np.float32))
            assert (idx[b, cnt[b]:] == -1).all()


@SETTINGS
@given(st.integers(1, 6), st.integers(1, 8),
       st.lists(st.tuples(st.integers(0, 5), st.integers(0, 7),
                          st.floats(0.1, 10.0)), min_size=0, max_size=60))
def test_coo_to_csr_matches_naive(n_rows, n_cols, events):
    events = [(r % n_rows, c % n_cols, w) for r, c, w in events]
    rows = np.array([e[0] for e in events], np.int64)
    cols = np.array([e[1] for e in events], np.int64)
    w = np.array([e[2] for e in events], np.float64)
    indptr, indices, sums, counts = rec_csr.coo_to_csr(rows, cols, w, n_rows)
    ref = naive.group_pairs(rows, cols, w)
    got = {}
    for r in range(n_rows):
        row_idx = indices[indptr[r]:indptr[r + 1]]
        assert (np.diff(row_idx) > 0).all()  # sorted, unique
        for p in range(indptr[r], indptr[r + 1]):
            got[(r, int(indices[p]))] = (sums[p], counts[p])
    assert got.keys() == ref.keys()
    for k in ref:
        assert got[k][1] == ref[k][1]
        assert got[k][0] == pytest.approx(ref[k][0], rel=1e-12)


def _random_problem(rng, n_users, n_items, f, density=0.2):
    m = sp.random(n_users, n_items, density=density, random_state=rng.integers(1 << 30),
                  format="csr", data_rvs=lambda k: rng.integers(1, 5, k).astype(float))
    m.sort_indices()
    conf = (2.0 * m.data).astype(np.float64)
    return (m.indptr.astype(np.int64), m.indices.astype(np.int64), conf, m,
            rng.random((n_items, f)) * 0.5)


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 4), st.sampled_from([5, 8, 13, 24]))
def test_cg_half_matches_naive_cg(seed, steps, f):
    # f = 5 runs only the scalar tails of the compiled row solver, 8 and 24 only its
    # eight-lane vectors, 13 both
    rng = np.random.default_rng(seed)
    indptr, indices, conf, m, Y = _random_problem(rng, 7, 40, f)  # ~8 entries: groups of 4 and tails
    reg = 0.1
    X0 = rng.random((7, f)) * 0.1
    A0 = Y.T @ Y + reg * np.eye(f)
    for k in (rec_als, rec_numpy):
        X = X0.copy()
        k.als_cg_half(indptr, indices, conf, X, Y, A0, steps)
        for u in range(7):
            items = indices[indptr[u]:indptr[u + 1]]
            c = conf[indptr[u]:indptr[u + 1]]
            np.testing.assert_allclose(X[u], naive.cg_user(X0[u], Y, reg, items, c, steps),
                                       rtol=1e-8, atol=1e-10)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.integers(0, 11), st.integers(1, 19),
       st.sampled_from([np.float32, np.float64]))
def test_gram_is_the_row_order_sum_of_exact_products(seed, n, f, dtype):
    Y = np.random.default_rng(seed).standard_normal((n, f)).astype(dtype)
    expected = np.zeros((f, f))
    for row in Y.astype(np.float64):  # each product exact in double, added in row order
        expected += np.outer(row, row)
    np.testing.assert_array_equal(rec_als.gram(Y), expected)
    np.testing.assert_allclose(rec_numpy.gram(Y), expected, rtol=1e-12, atol=1e-12)


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 10_000))
def test_cholesky_half_and_loss_match_naive(seed):
    rng = np.random.default_rng(seed)
    indptr, indices, conf, m, Y = _random_problem(rng, 6, 9, 4)
    reg = 0.05
    A0 = Y.T @ Y + reg * np.eye(4)
    for k in (rec_als, rec_numpy):
        X = np.zeros((6, 4))
        k.als_cholesky_half(indptr, indices, conf, X, Y, A0)
        for u in range(6):
            A, b = naive.normal_equations(Y, reg, indices[indptr[u]:indptr[u + 1]],
                                          conf[indptr[u]:indptr[u + 1]])
            np.testing.assert_allclose(X[u], np.linalg.solve(A, b), rtol=1e-9, atol=1e-12)
        C = sp.csr_matrix((conf, indices, indptr), shape=(6, 9)).toarray()
        loss = k.als_loss(indptr, indices, conf, X, Y, Y.T @ Y, reg)
        assert loss == pytest.approx(naive.als_objective(C, X, Y, reg), rel=1e-10)


@SETTINGS
@given(st.integers(0, 10_000), st.integers(1, 6))
def test_ranking_metrics_match_naive(seed, K):
    rng = np.random.default_rng(seed)
    n_users, n_items = 8, 15
    test_sets = [sorted(rng.choice(n_items, rng.integers(0, 5), replace=False).tolist())
                 for _ in range(n_users)]
    if not any(test_sets):
        test_sets[0] = [1]
    recs = np.array([rng.permutation(n_items)[:K] for _ in range(n_users)], np.int64)
    recs[0, -1] = -1  # padding never counts as a hit
    indptr = np.zeros(n_users + 1, np.int64)
    indptr[1:] = np.cumsum([len(s) for s in test_sets])
    indices = np.array([j for s in test_sets for j in s], np.int64)
    out = np.empty((n_users, 6))
    rec_metrics.ranking_metrics(recs, np.arange(n_users, dtype=np.int64), indptr, indices,
                                n_items, out)
    from fastengage.recommend import ranking_metrics
    test = sp.csr_matrix((np.ones(indices.size), indices, indptr), shape=(n_users, n_items))
    got = ranking_metrics(recs, test)
    ref = naive.ranking_metrics(recs.tolist(), test_sets, n_items, K)
    for key in ("precision", "map", "ndcg", "auc", "recall"):
        assert got[key] == pytest.approx(ref[key], rel=1e-12, abs=1e-15), key


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 6))
def test_item_knn_matches_naive(seed, K):
    W = sp.random(10, 8, density=0.3, random_state=seed, format="csr")
    W.sort_indices()
    Wt = W.T.tocsr()
    Wt.sort_indices()
    nbr, sim, count = rec_knn.item_knn(
        Wt.indptr.astype(np.int64), Wt.indices.astype(np.int64), Wt.data.astype(np.float64),
        W.indptr.astype(np.int64), W.indices.astype(np.int64), W.data.astype(np.float64), 8, K)
    ref = naive.item_knn(W.toarray(), K)
    for i in range(8):
        assert count[i] == len(ref[i])
        assert nbr[i, :count[i]].tolist() == [j for _, j in ref[i]]
        np.testing.assert_allclose(sim[i, :count[i]], [s for s, _ in ref[i]], rtol=1e-12)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 50), min_size=0, max_size=200), st.integers(0, 20),
       st.integers(1, 64))
def test_cost_chunks_cover_rows_once_in_balanced_chunks(lengths, row_cost, n_chunks):
    indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    bounds, order = rec_sched.cost_chunks(indptr, row_cost, n_chunks)
    assert bounds[0] == 0 and bounds[-1] == len(lengths)
    assert (np.diff(bounds) > 0).all()  # contiguous, non-empty, every row exactly once
    assert sorted(order.tolist()) == list(range(order.size))
    cost = np.array([sum(lengths[a:b]) + row_cost * (b - a)
                     for a, b in zip(bounds[:-1], bounds[1:])])
    assert (np.diff(cost[order]) <= 0).all()  # claimed heaviest first
    if len(lengths):
        total = sum(lengths) + row_cost * len(lengths)
        target = max(1, -(-total // n_chunks))
        # a chunk closes as soon as it reaches the target: only its last row can overshoot
        last = np.array([lengths[b - 1] + row_cost for b in bounds[1:]])
        assert (cost - last < target).all()
        # every chunk but the last reaches the target, so there are at most n_chunks + 1
        assert order.size <= n_chunks + 1


@numba.njit(parallel=True)
def _claim_tickets(counter, workers, per_worker):
    out = np.empty(workers * per_worker, np.int64)
    for w in numba.prange(workers):
        for k in range(per_worker):
            out[w * per_worker + k] = rec_sched.fetch_add(counter, 1)
    return out


def test_fetch_add_is_atomic_across_threads():
    counter = np.zeros(1, np.int64)
    claimed = _claim_tickets(counter, 4, 100_000)
    # every ticket 0 .. total-1 handed out exactly once, whatever the interleaving
    assert counter[0] == claimed.size == 4 * 100_000
    assert np.array_equal(np.sort(claimed), np.arange(claimed.size))


@pytest.mark.parametrize("solver", ["cg", "cholesky"])
def test_als_half_steps_do_not_depend_on_thread_count(solver):
    """Rows are independent and each is solved in a fixed order, so the dynamic schedule
    cannot change a single bit of the result."""
    rng = np.random.default_rng(4)
    m = sp.random(3000, 400, density=0.02, random_state=5, format="csr", dtype=np.float64)
    m.data = (1.0 + 4.0 * m.data).astype(np.float32)
    indptr = m.indptr.astype(np.int64)
    indices = m.indices.astype(np.int64)
    Y = rng.random((400, 16), dtype=np.float32)
    A0 = Y.T.astype(np.float64) @ Y + 0.1 * np.eye(16)
    X0 = rng.random((3000, 16), dtype=np.float32) * 0.01
    results = []
    old = numba.get_num_threads()
    try:
        for threads in sorted({1, numba.config.NUMBA_NUM_THREADS}):
            numba.set_num_threads(threads)
            X = X0.copy()
            if solver == "cg":
                rec_als.als_cg_half(indptr, indices, m.data, X, Y, A0.astype(np.float32), 3)
            else:
                rec_als.als_cholesky_half(indptr, indices, m.data, X, Y, A0)
            results.append(X)
    finally:
        numba.set_num_threads(old)
    for X in results[1:]:
        assert np.array_equal(X, results[0])
