"""implicit's own test suite, ported: every case of benfred/implicit v0.7.3 ``tests/`` (the
version installed here) that has a fastengage.recommend counterpart, each cited beside it as
``implicit: <file>::<test>``. Where implicit is deterministic (item-item neighbours, ALS from the
same seed, the metrics, the random split) the answer is compared with implicit itself, run in
the same test; otherwise the contract its mixin checks is checked on ours.

Mapping (README "Coming from implicit"): a user_items row -> the customer's events (an Arrow
table) or an :class:`Interactions`; ``filter_already_liked_items`` -> ``exclude_seen``;
``filter_items`` / ``items`` -> ``exclude_items`` / ``items`` (``candidates`` in
``similar_items``); ``recalculate_user`` -> ``recommend_new`` (fold-in); model ids -> the user's
own ids (here 0..n-1, so codes == ids); ``similar_users`` -> ``similar_customers`` (``users`` /
``filter_users`` -> ``candidates`` / ``exclude_customers``).

Deliberate differences, asserted as our documented behaviour (see the comments at each case):

* ``exclude_seen=True`` never returns a seen item, also with ``items=`` (implicit ranks the
  filtered items last with a -inf score); ``n`` beyond the candidates returns the candidates;
* ids outside the model are an ``InputError`` (a ValueError) naming ``items=``, not IndexError;
* an empty interaction matrix is an ``InputError``, not an empty model (bpr_test issue #264);
* ``save`` needs a fitted model (pickling an unfitted one works);
* interaction values must be finite and > 0 (implicit reads negatives as negative feedback);
* ``ALS.loss()`` is the unnormalised objective; implicit divides it by
  ``sum(c) + n_users * n_items - nnz`` (compared after that division).

Not ported (no counterpart in fastengage): similar_users of item-item models (implicit's raise
NotImplementedError too), similar_items with ``recalculate_item``, fit callbacks, ``explain``,
``partial_fit_users``/``partial_fit_items`` (their fold-in half is ported), TFIDFRecommender and
``all_pairs_knn`` with tfidf weights (ported with cosine and bm25), GPU/ANN/LMF models, and the
MovieLens-100k download (evaluation_test.py).
"""
import io
import pickle

import numpy as np
import pyarrow as pa
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from threadpoolctl import threadpool_limits

import naive_recommend

from fastengage.errors import ConvergenceError, InputError
from fastengage.kernels.recommend import als as rec_als
from fastengage.kernels.recommend import serve as rec_serve
from fastengage.recommend import (ALS, BPR, Interactions, ItemKNN, evaluate, leave_k_out_split,
                                  random_split, ranking_metrics)

implicit = pytest.importorskip("implicit")  # installed on 3.11: these always run here
import implicit.als  # noqa: E402
import implicit.bpr  # noqa: E402
import implicit.cpu.als  # noqa: E402
import implicit.evaluation as implicit_eval  # noqa: E402
import implicit.nearest_neighbours as implicit_nn  # noqa: E402


# implicit's item-item fit converts a matrix it builds itself, and says so
pytestmark = pytest.mark.filterwarnings("ignore::implicit.utils.ParameterWarning")


@pytest.fixture(autouse=True)
def _one_blas_thread():
    # implicit asks for one BLAS thread (its own threads do the parallel work)
    with threadpool_limits(1, "blas"):
        yield


# -- implicit: recommender_base_test.py::get_checker_board ---------------------------------------
def checker_board(n: int) -> sp.csr_matrix:
    """Even customers liked every even item, odd customers every odd item; the diagonal is
    withheld, so customer u's best unseen item is item u."""
    liked = (np.arange(n)[:, None] % 2) == (np.arange(n)[None, :] % 2)
    liked[np.arange(n), np.arange(n)] = False
    return sp.csr_matrix(liked.astype(np.float64))


def events_of(matrix, customer_offset: int = 0) -> pa.Table:
    """The pairs of a count matrix as an event table (one row per counted event), the Arrow
    input a user has; ``customer_offset`` renames the customers (fold-in of new ids)."""
    coo = sp.coo_matrix(matrix)
    reps = np.rint(coo.data).astype(np.int64)
    return pa.table({"customer": np.repeat(coo.row.astype(np.int64) + customer_offset, reps),
                     "item": np.repeat(coo.col.astype(np.int64), reps)})


# implicit: als_test.py::ALSTest, bpr_test.py::BPRTest, knn_test.py::CosineTest / BM25Test
# (their _get_model). BPR runs on one thread: its multi-threaded fit is Hogwild (README), and a
# test must give one answer.
MODELS = {
    "als": lambda: ALS(factors=32, regularization=0, seed=23),
    "bpr": lambda: BPR(factors=3, regularization=0, seed=42, n_threads=1),
    "cosine": lambda: ItemKNN("cosine", K=50),
    "bm25": lambda: ItemKNN("bm25", K=50),
}
KINDS = list(MODELS)


def peer_model(kind: str):
    """implicit's model with the same settings (its tests' _get_model)."""
    if kind == "als":
        return implicit.als.AlternatingLeastSquares(factors=32, regularization=0,
                                                    random_state=23, use_gpu=False)
    if kind == "bpr":
        return implicit.bpr.BayesianPersonalizedRanking(factors=3, regularization=0,
                                                        random_state=42, use_gpu=False)
    return {"cosine": implicit_nn.CosineRecommender,
            "bm25": implicit_nn.BM25Recommender}[kind](K=50)


_FITTED = {}


def fitted(kind: str, n: int):
    """Our model fitted on checker_board(n), cached. Through ``Interactions.from_csr``: codes
    are then the matrix's rows and columns, as in implicit, so ALS and BPR start from the
    factors implicit draws for the seed. (From an event table, codes follow first appearance,
    and each item gets another random start: with the suite's regularization=0 and 32 factors
    on a rank-2 board the ALS model is degenerate and its similar items depend on that start,
    e.g. one of 500 of another parity; the Arrow path is covered by test_arrow_events_*.)"""
    key = (kind, n)
    if key not in _FITTED:
        _FITTED[key] = MODELS[kind]().fit(Interactions.from_csr(checker_board(n)))
    return _FITTED[key]


def peer_fitted(kind: str, n: int):
    key = ("peer", kind, n)
    if key not in _FITTED:
        model = peer_model(kind)
        model.fit(checker_board(n).astype(np.float32), show_progress=False)
        _FITTED[key] = model
    return _FITTED[key]


def top_items(table: pa.Table, n_customers: int, n: int) -> np.ndarray:
    """The ``item`` column of a recommend table as (customers, n)."""
    return table.column("item").to_numpy().reshape(n_customers, n)


def top_scores(table: pa.Table, n_customers: int, n: int) -> np.ndarray:
    return table.column("score").to_numpy().reshape(n_customers, n)


# -- recommender_base_test.py: the contract every model passes -------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_recommend(kind):
    # implicit: recommender_base_test.py::test_recommend
    model = fitted(kind, 50)
    for customer in range(50):
        items, _ = model.recommend_one(customer, n=1)
        assert items.tolist() == [customer]  # the withheld item, liked by all similar customers
        table = model.recommend([customer], n=1)
        assert table.column("item").to_pylist() == [customer]
    # more than possible (implicit issue #22): every candidate once, never a seen item
    table = model.recommend([0], n=10000)
    seen = set(range(2, 50, 2))
    assert set(table.column("item").to_pylist()) == set(range(50)) - seen
    assert table.num_rows == 26 and table.column("rank").to_pylist() == list(range(1, 27))
    # an extra filter list (implicit issue #26)
    table = model.recommend([0], n=1, exclude_items=[0])
    assert table.num_rows == 1 and 0 not in table.column("item").to_pylist()


@pytest.mark.parametrize("kind", KINDS)
def test_n_far_beyond_the_item_count(kind):
    # implicit: recommender_base_test.py::test_recommend, "more than possible" (implicit issue
    # #22: N is capped at the item count). Regression: our outputs were allocated n wide before
    # any cap, so n=2**40 raised MemoryError (8 TiB) instead of answering.
    model = fitted(kind, 50)
    huge = 2 ** 40
    assert model.recommend([0], n=huge).equals(model.recommend([0], n=50))
    items, scores = model.recommend_one(0, n=huge)
    assert items.size == 26 and scores.size == 26
    assert model.similar_items([0], n=huge).equals(model.similar_items([0], n=50))
    if kind != "bpr":
        history = events_of(checker_board(50)[:2], customer_offset=100)
        assert model.recommend_new(history, customer="customer", item="item", n=huge).equals(
            model.recommend_new(history, customer="customer", item="item", n=50))
    held_out = Interactions.from_csr(sp.identity(50, format="csr"))
    at_huge = evaluate(model, held_out, k=huge)
    at_all = evaluate(model, held_out, k=50)
    assert at_huge.pop("k") == huge and at_all.pop("k") == 50
    assert at_huge == at_all


@pytest.mark.parametrize("kind", ["als", "cosine", "bm25"])
def test_recommend_same_answer_as_implicit(kind):
    # implicit: recommender_base_test.py::test_recommend, answers compared with implicit's.
    # Item-item models are deterministic. ALS starts from implicit's factors for the seed
    # (uniform [0, 0.01), users then items) and runs the same CG, so both land on the same
    # model; but with the suite's regularization=0 and 32 factors on this rank-2 board each
    # half-step is nearly singular and float rounding decides the factors (both fits are valid,
    # scores differ by 30%), so ALS is compared at regularization=0.1 in float64 (factors agree
    # to ~1e-6). Scores are compared per rank: equal scores may be ordered differently.
    board = checker_board(50)
    if kind == "als":
        ours = ALS(factors=32, regularization=0.1, dtype=np.float64, seed=23).fit(
            Interactions.from_csr(board))
        theirs = implicit.als.AlternatingLeastSquares(
            factors=32, regularization=0.1, dtype=np.float64, random_state=23, use_gpu=False)
        theirs.fit(board, show_progress=False)
    else:
        ours, theirs = fitted(kind, 50), peer_fitted(kind, 50)
    users = np.arange(50)
    ids, scores = theirs.recommend(users, board[users], N=5)
    table = ours.recommend(users, n=5)
    np.testing.assert_array_equal(top_items(table, 50, 5)[:, 0], ids[:, 0])
    np.testing.assert_allclose(top_scores(table, 50, 5), scores, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_recommend_batch(kind):
    # implicit: recommender_base_test.py::test_recommend_batch
    model = fitted(kind, 50)
    table = model.recommend(np.arange(50), n=1)
    assert top_items(table, 50, 1)[:, 0].tolist() == list(range(50))
    for customer in range(50):  # batch results equal single-customer results
        items, scores = model.recommend_one(customer, n=1)
        assert items[0] == table.column("item")[customer].as_py()
        assert scores[0] == table.column("score")[customer].as_py()
    table = model.recommend([2, 3, 4], n=1)
    assert table.column("item").to_pylist() == [2, 3, 4]
    table = model.recommend([2, 3, 4], n=1, exclude_items=[0])
    assert 0 not in table.column("item").to_pylist() and table.num_rows == 3
    # exclude_seen=False: batch equals single customers too (bit for bit here)
    table = model.recommend(np.arange(50), n=5, exclude_seen=False)
    for customer in range(50):
        items, scores = model.recommend_one(customer, n=5, exclude_seen=False)
        np.testing.assert_array_equal(items, top_items(table, 50, 5)[customer])
        np.testing.assert_array_equal(scores, top_scores(table, 50, 5)[customer])


@pytest.mark.parametrize("kind", KINDS)
def test_recalculate_user(kind):
    # implicit: recommender_base_test.py::test_recalculate_user (recalculate_user=True ->
    # recommend_new with the customer's history; BPR has no fold-in, implicit raises
    # NotImplementedError and the case returns: ours is an InputError that says so)
    model = fitted(kind, 50)
    board = checker_board(50)
    if kind == "bpr":
        with pytest.raises(InputError, match="BPR cannot fold in"):
            model.recommend_new(events_of(board[:1]), customer="customer", item="item")
        return
    known = model.recommend(np.arange(50), n=1)
    # every customer's history under a new id (customer + 1000): a fold-in, not a lookup
    folded = model.recommend_new(events_of(board, customer_offset=1000), customer="customer",
                                 item="item", n=1)
    assert folded.column("customer").to_pylist() == list(range(1000, 1050))
    assert folded.column("item").to_pylist() == known.column("item").to_pylist()
    np.testing.assert_allclose(folded.column("score").to_numpy(),
                               known.column("score").to_numpy(), atol=1e-3)
    for customer in (0, 7, 31):  # one history at a time: same answer as in the batch
        single = model.recommend_new(events_of(board[customer], customer_offset=customer),
                                     customer="customer", item="item", n=1)
        assert single.column("item").to_pylist() == [customer]
        assert single.column("score")[0].as_py() == pytest.approx(
            folded.column("score")[customer].as_py(), abs=1e-3)


@pytest.mark.parametrize("kind", KINDS)
def test_evaluation(kind):
    # implicit: recommender_base_test.py::test_evaluation: the withheld diagonal is each
    # customer's top item, so precision@1 is 1 (and so is every other metric at 1)
    model = fitted(kind, 50)
    held_out = Interactions.from_csr(sp.identity(50, format="csr"))
    got = evaluate(model, held_out, k=1)
    assert got["precision"] == 1.0 and got["map"] == 1.0 and got["ndcg"] == 1.0
    assert got["customers"] == 50 and got["customers_unknown"] == 0
    if kind != "bpr":  # implicit's own model: the same number from implicit's evaluation
        theirs = peer_fitted(kind, 50)
        identity = sp.identity(50, format="csr")
        assert implicit_eval.precision_at_k(theirs, checker_board(50), identity, K=1,
                                            show_progress=False) == got["precision"]


@pytest.mark.parametrize("kind", ["als", "bpr"])
def test_similar_users(kind):
    # implicit: recommender_base_test.py::test_similar_users and ::test_similar_users_batch
    # (similar_users -> similar_customers, matrix-factorisation models; implicit's item-item
    # models raise NotImplementedError, ours have no such method)
    model = fitted(kind, 50)
    for customer in range(50):
        got = model.similar_customers([customer], n=10).column("similar_customer").to_numpy()
        assert (got % 2 == customer % 2).all()
    model = fitted(kind, 256)
    table = model.similar_customers(np.arange(50), n=10)
    similar = table.column("similar_customer").to_numpy().reshape(50, 10)
    scores = table.column("score").to_numpy().reshape(50, 10)
    assert similar[:, 0].tolist() == list(range(50))  # itself first, cosine ~1
    np.testing.assert_allclose(scores[:, 0], 1.0, atol=1e-4)
    assert (similar % 2 == np.arange(50)[:, None] % 2).all()
    # implicit's similar_users on the same factors: the same scores per rank
    peer = implicit.als.AlternatingLeastSquares(factors=model.user_factors_.shape[1],
                                                use_gpu=False)
    peer.user_factors = model.user_factors_.copy()
    peer.item_factors = model.item_factors_.copy()
    ids, peer_scores = peer.similar_users(np.arange(50), N=10)
    np.testing.assert_array_equal(ids[:, 0], np.arange(50))
    np.testing.assert_allclose(scores, peer_scores, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", ["als", "bpr"])
def test_similar_users_filter(kind):
    # implicit: recommender_base_test.py::test_similar_users_filter (filter_users= ->
    # exclude_customers=, users= -> candidates=)
    model = fitted(kind, 256)
    table = model.similar_customers(np.arange(50), n=10, exclude_customers=np.arange(52) * 5)
    assert table.num_rows == 500 and (table.column("similar_customer").to_numpy() % 5 != 0).all()
    selected = np.arange(10)
    table = model.similar_customers(np.arange(50), n=10, candidates=selected)
    for customer in range(50):
        got = table.filter(pa.compute.equal(table.column("customer"), customer))
        assert set(got.column("similar_customer").to_pylist()) == set(selected.tolist())
    with pytest.raises(InputError, match="not in the model"):
        model.similar_customers([0], candidates=[0, 10_000])
    huge = model.similar_customers([0], n=2 ** 40)  # capped at the customer count
    assert huge.num_rows == 256


@pytest.mark.parametrize("kind", KINDS)
def test_similar_items(kind):
    # implicit: recommender_base_test.py::test_similar_items and ::test_similar_items_batch
    # (the item itself first, then items of its parity only)
    model = fitted(kind, 256)
    table = model.similar_items(np.arange(50), n=10)
    assert table.num_rows == 500
    similar = table.column("similar_item").to_numpy().reshape(50, 10)
    assert similar[:, 0].tolist() == list(range(50))
    assert (similar % 2 == np.arange(50)[:, None] % 2).all()
    scores = table.column("score").to_numpy().reshape(50, 10)
    assert (np.diff(scores, axis=1) <= 0).all()
    for item in (0, 1, 17):  # one at a time equals the batch
        one = model.similar_items([item], n=10)
        assert one.column("similar_item").to_pylist() == similar[item].tolist()


@pytest.mark.parametrize("kind", ["cosine", "bm25"])
def test_similar_items_same_scores_as_implicit(kind):
    # implicit: recommender_base_test.py::test_similar_items, compared with implicit's answer
    ours, theirs = fitted(kind, 256), peer_fitted(kind, 256)
    ids, scores = theirs.similar_items(np.arange(50), N=10)
    table = ours.similar_items(np.arange(50), n=10)
    np.testing.assert_array_equal(table.column("similar_item").to_numpy().reshape(50, 10)[:, 0],
                                  ids[:, 0])
    np.testing.assert_allclose(table.column("score").to_numpy().reshape(50, 10), scores,
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_similar_items_filter(kind):
    # implicit: recommender_base_test.py::test_similar_items_filter (filter_items= ->
    # exclude_items=, items= -> candidates=)
    model = fitted(kind, 256)
    table = model.similar_items(np.arange(50), n=10, exclude_items=np.arange(52) * 5)
    similar = table.column("similar_item").to_numpy()
    assert similar.size and (similar % 5 != 0).all()
    selected = np.arange(10)
    table = model.similar_items(np.arange(50), n=10, candidates=selected)
    for item in range(50):
        got = table.filter(pa.compute.equal(table.column("item"), item))
        got = got.column("similar_item").to_pylist()
        if kind in ("als", "bpr"):
            assert set(got) == set(selected.tolist())
        else:
            # item-item: from the stored K neighbours (implicit's raise NotImplementedError
            # here): the candidates among them, in rank order
            stored = model.neighbours_[item][:model.counts_[item]].tolist()
            assert got == [j for j in stored if j < 10][:10]
    if kind in ("cosine", "bm25"):  # implicit's filter_items answer, score for score
        ids, scores = peer_fitted(kind, 256).similar_items(np.arange(50), N=10,
                                                           filter_items=np.arange(52) * 5)
        ours = model.similar_items(np.arange(50), n=10, exclude_items=np.arange(52) * 5)
        np.testing.assert_allclose(top_scores(ours, 50, 10), scores, rtol=1e-5, atol=1e-6)
    with pytest.raises(InputError, match="candidates=.*not in the model"):
        model.similar_items([0], candidates=[0, 10_000])
    if kind in ("als", "bpr"):  # the NumPy path (use_native=False) filters alike
        numpy_model = pickle.loads(pickle.dumps(model))
        numpy_model.use_native = False
        for kw in (dict(candidates=selected), dict(exclude_items=np.arange(52) * 5)):
            a = model.similar_items(np.arange(50), n=10, **kw)
            b = numpy_model.similar_items(np.arange(50), n=10, **kw)
            assert a.column("similar_item").equals(b.column("similar_item"))
            np.testing.assert_allclose(a.column("score").to_numpy(),
                                       b.column("score").to_numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_zero_length_row(kind):
    # implicit: recommender_base_test.py::test_zero_length_row (an item and a customer with no
    # interaction, also the last ones: implicit issue #86): never similar to anything
    board = checker_board(50).toarray()
    for k in (42, 49):
        board[k] = 0
        board[:, k] = 0
    model = MODELS[kind]().fit(Interactions.from_csr(sp.csr_matrix(board)))
    similar = model.similar_items(np.arange(40), n=10).column("similar_item").to_pylist()
    assert 42 not in similar and 49 not in similar
    # the empty customer still gets exactly n items (equal scores: ordered by popularity)
    table = model.recommend([42], n=5)
    assert table.num_rows == 5 and np.isfinite(table.column("score").to_numpy()).all()


@pytest.mark.parametrize("kind", KINDS)
def test_fit_non_csr_matrix(kind):
    # implicit: recommender_base_test.py::test_fit_non_csr_matrix (COO and LIL are accepted;
    # implicit warns, ours converts: the same model as from CSR)
    board = checker_board(50)
    ref = MODELS[kind]().fit(Interactions.from_csr(board)).recommend(n=3)
    for matrix in (board.tocoo(), board.tolil(), board.toarray()):
        got = MODELS[kind]().fit(Interactions.from_csr(matrix)).recommend(n=3)
        assert got.equals(ref)


@pytest.mark.parametrize("kind", KINDS)
def test_fit_ordering(kind):
    # implicit: recommender_base_test.py::test_fit_ordering (scores never increase with rank;
    # the same random likes, duplicates summed)
    rng = np.random.RandomState(10)
    items = rng.randint(0, 200, size=1000, dtype=np.int32)
    customers = rng.randint(0, 100, size=1000, dtype=np.int32)
    likes = sp.coo_matrix((np.ones(1000), (customers, items))).tocsr()
    model = MODELS[kind]().fit(Interactions.from_csr(likes))
    table = model.recommend(n=10)
    owner = table.column("customer").to_numpy()
    scores = table.column("score").to_numpy()
    same_owner = owner[1:] == owner[:-1]
    assert (np.diff(scores)[same_owner] <= 0).all()
    assert (np.bincount(owner) == 10).all()  # every customer: exactly n (190+ candidates)


@pytest.mark.parametrize("kind", KINDS)
def test_dtype(kind):
    # implicit: recommender_base_test.py::test_dtype (float32 and float64 input: same model)
    board = checker_board(50)
    a = MODELS[kind]().fit(Interactions.from_csr(board.astype(np.float64))).recommend(n=3)
    b = MODELS[kind]().fit(Interactions.from_csr(board.astype(np.float32))).recommend(n=3)
    assert a.equals(b)
    # a float32 weight column in the event table: the same model as float64 weights
    t = events_of(board)
    w32 = t.append_column("w", pa.array(np.ones(t.num_rows, np.float32)))
    w64 = t.append_column("w", pa.array(np.ones(t.num_rows, np.float64)))
    a = MODELS[kind]().fit(w32, customer="customer", item="item", weight="w").recommend(n=3)
    b = MODELS[kind]().fit(w64, customer="customer", item="item", weight="w").recommend(n=3)
    assert a.equals(b)


@pytest.mark.parametrize("kind", KINDS)
def test_rank_items(kind):
    # implicit: recommender_base_test.py::test_rank_items. Deliberate difference: implicit
    # ranks the seen items of ``items=`` last (score -inf); ours never returns a seen item with
    # exclude_seen=True (README), so customer 0 gets its three unseen items, and with
    # exclude_seen=False all six.
    model = fitted(kind, 50)
    table = model.recommend([0], n=20, items=[1, 2, 3, 4, 5, 6])
    assert sorted(table.column("item").to_pylist()) == [1, 3, 5]
    table = model.recommend([0], n=20, items=[1, 2, 3, 4, 5, 6], exclude_seen=False)
    assert sorted(table.column("item").to_pylist()) == [1, 2, 3, 4, 5, 6]
    if kind == "als":  # implicit's ALS ranks the same three unseen items first
        # (its item-item models do not: their -inf filter meets sparse zero scores)
        ids, _ = peer_fitted(kind, 50).recommend(0, checker_board(50)[0], N=20,
                                                 items=np.array([1, 2, 3, 4, 5, 6]))
        assert set(ids[:3]) == {1, 3, 5} and set(ids[3:]) == {2, 4, 6}
    rng = np.random.default_rng(0)
    for customer in range(50):
        selected = rng.choice(50, 10, replace=False)
        table = model.recommend([customer], n=10, items=selected, exclude_seen=False)
        assert set(table.column("item").to_pylist()) == set(selected.tolist())
        # ids outside the model: implicit raises IndexError, ours an InputError naming items=
        for wrong in ([-1, -3, -5], [51, 300, 200]):
            with pytest.raises(InputError, match="items=.*not in the model"):
                model.recommend([customer], items=np.concatenate([selected, wrong]))


@pytest.mark.parametrize("kind", KINDS)
def test_rank_items_batch(kind):
    # implicit: recommender_base_test.py::test_rank_items_batch (each customer ranks exactly
    # the selected items; seen ones are left out with exclude_seen=True, see test_rank_items)
    model = fitted(kind, 50)
    selected = np.arange(10) * 3
    table = model.recommend(np.arange(50), n=10, items=selected, exclude_seen=False)
    for customer in range(50):
        got = table.filter(pa.compute.equal(table.column("customer"), customer))
        assert set(got.column("item").to_pylist()) == set(selected.tolist())
    table = model.recommend(np.arange(50), n=10, items=selected)
    for customer in range(50):
        got = set(table.filter(pa.compute.equal(table.column("customer"), customer))
                  .column("item").to_pylist())
        assert got == {i for i in selected.tolist() if i % 2 != customer % 2 or i == customer}


@pytest.mark.parametrize("kind", KINDS)
def test_pickle(kind):
    # implicit: recommender_base_test.py::test_pickle (implicit issue #631) and
    # ::test_pickle_unfitted_model
    model = fitted(kind, 50)
    reloaded = pickle.loads(pickle.dumps(model))
    assert reloaded.recommend([0]).equals(model.recommend([0]))
    assert reloaded.similar_items([0]).equals(model.similar_items([0]))
    unfitted = pickle.loads(pickle.dumps(MODELS[kind]()))
    assert repr(unfitted) == repr(MODELS[kind]())


@pytest.mark.parametrize("kind", KINDS)
def test_invalid_user_items(kind):
    # implicit: recommender_base_test.py::test_invalid_user_items (a user_items matrix that is
    # not CSR is a ValueError). Ours takes events: a scipy matrix where events are expected is
    # an InputError (a ValueError) saying what to pass.
    model = fitted(kind, 50)
    with pytest.raises(InputError, match="unsupported input"):
        model.recommend_new(checker_board(50).tocsc(), customer="customer", item="item")
    with pytest.raises(ValueError):
        model.recommend_new(checker_board(50).tocoo(), customer="customer", item="item")


@pytest.mark.parametrize("kind", KINDS)
def test_serialization(kind, tmp_path):
    # implicit: recommender_base_test.py::test_serialization (a path and a file object)
    model = fitted(kind, 50)
    path = tmp_path / "model.fe"
    model.save(path)
    reloaded = type(model).load(path)
    assert reloaded.similar_items([1]).equals(model.similar_items([1]))
    buffer = io.BytesIO()
    model.save(buffer)
    buffer.seek(0)
    reloaded = type(model).load(buffer)
    assert reloaded.similar_items([1]).equals(model.similar_items([1]))
    assert reloaded.recommend().equals(model.recommend())


@pytest.mark.parametrize("kind", KINDS)
def test_serialization_without_fit(kind, tmp_path):
    # implicit: recommender_base_test.py::test_serialization_without_fit. Deliberate
    # difference: our file holds a fitted model only; saving an unfitted one is an InputError
    # (pickle keeps unfitted parameters, test_pickle)
    with pytest.raises(InputError, match="not fitted"):
        MODELS[kind]().save(tmp_path / "model.fe")


# -- als_test.py ----------------------------------------------------------------------------------
def test_zero_iterations_with_loss():
    # implicit: als_test.py::test_zero_iterations_with_loss (no sweep: nothing recorded, and
    # the model still serves from its initial factors)
    model = ALS(factors=128, iterations=0, calculate_loss=True, seed=0).fit(
        Interactions.from_csr(np.ones((10, 10))))
    assert model.loss_history_ == []
    assert np.isfinite(model.loss())
    assert model.recommend(n=3, exclude_seen=False).num_rows == 30


def test_recalculate_after_pickle():
    # implicit: als_test.py::test_recalculate_after_pickle (fold-in answers survive pickling)
    board = checker_board(10)
    model = ALS(factors=2, regularization=0.1, seed=0).fit(Interactions.from_csr(board))
    history = events_of(board[:1])
    before = model.recommend_new(history, customer="customer", item="item")
    after = pickle.loads(pickle.dumps(model)).recommend_new(history, customer="customer",
                                                              item="item")
    assert after.equals(before)


# implicit: als_test.py::test_cg_nan (the matrix of implicit issue #19, published in the test)
CG_NAN_COUNTS = np.array([
    [0.0, 2.0, 1.5, 1.33333333, 1.25, 1.2, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    [0.0, 0.0, 2.0, 1.5, 1.33333333, 1.25, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    [0.0, 0.0, 0.0, 2.0, 1.5, 1.33333333, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    [0.0, 0.0, 0.0, 0.0, 2.0, 1.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    [0.0, 0.0, 0.0, 0.0, 0.0, 2.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    [0.0] * 12,
    [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.0, 1.5, 1.33333333, 1.25, 1.2],
    [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.0, 1.5, 1.33333333, 1.25],
    [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.0, 1.5, 1.33333333],
    [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.0, 1.5],
    [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.0],
    [0.0] * 12,
])


@pytest.mark.parametrize("use_native", [True, False])
def test_cg_nan(use_native):
    # implicit: als_test.py::test_cg_nan (implicit issue #19): finite factors, and implicit's
    # factors (same seed, same CG; empty rows and columns included)
    counts = sp.csr_matrix(CG_NAN_COUNTS)
    ours = ALS(factors=3, regularization=0.01, dtype=np.float64, use_native=use_native,
               seed=23).fit(Interactions.from_csr(counts))
    theirs = implicit.als.AlternatingLeastSquares(
        factors=3, regularization=0.01, dtype=np.float64, use_native=use_native, use_cg=True,
        use_gpu=False, random_state=23)
    theirs.fit(counts, show_progress=False)
    assert np.isfinite(ours.user_factors_).all() and np.isfinite(ours.item_factors_).all()
    np.testing.assert_allclose(ours.user_factors_, theirs.user_factors, atol=1e-6)
    np.testing.assert_allclose(ours.item_factors_, theirs.item_factors, atol=1e-6)


@pytest.mark.parametrize("use_native", [True, False])
def test_cg_nan2(use_native):
    # implicit: als_test.py::test_cg_nan2 (implicit issue #106: 5 pairs in 100 x 100, heavy
    # regularization): finite, and implicit's factors
    counts = sp.random(m=100, n=100, density=0.0005, format="coo", dtype=np.float32,
                       random_state=42, data_rvs=None).T.tocsr()
    ours = ALS(factors=32, regularization=10, iterations=10, seed=23,
               use_native=use_native).fit(Interactions.from_csr(counts))
    theirs = implicit.als.AlternatingLeastSquares(
        factors=32, regularization=10, iterations=10, dtype=np.float32, random_state=23,
        use_native=use_native, use_gpu=False)
    theirs.fit(counts, show_progress=False)
    assert np.isfinite(ours.user_factors_).all() and np.isfinite(ours.item_factors_).all()
    np.testing.assert_allclose(ours.user_factors_, theirs.user_factors, atol=1e-6)
    np.testing.assert_allclose(ours.item_factors_, theirs.item_factors, atol=1e-6)


# implicit: als_test.py::test_factorize (the published 7 x 6 matrix)
FACTORIZE_COUNTS = np.array([
    [1, 1, 0, 1, 0, 0],
    [0, 1, 1, 1, 0, 0],
    [1, 0, 1, 0, 0, 0],
    [1, 1, 0, 0, 0, 0],
    [0, 0, 1, 1, 0, 1],
    [0, 1, 0, 0, 0, 1],
    [0, 0, 0, 0, 1, 1],
], dtype=np.float64)


@pytest.mark.parametrize("use_native", [True, False])
@pytest.mark.parametrize("solver", ["cg", "cholesky"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_factorize(use_native, solver, dtype):
    # implicit: als_test.py::test_factorize (6 factors, no regularization: x_u^T y_i
    # reconstructs the 0/1 matrix to 1e-3)
    model = ALS(factors=6, regularization=0, alpha=2.0, dtype=dtype, use_native=use_native,
                solver=solver, seed=42).fit(Interactions.from_csr(FACTORIZE_COUNTS))
    reconstructed = model.user_factors_.astype(np.float64) @ model.item_factors_.T
    np.testing.assert_allclose(reconstructed, FACTORIZE_COUNTS, atol=1e-3)


def test_recommend_equals_recalculated_user():
    # implicit: als_test.py::test_explain, its first half (explain itself has no counterpart):
    # recommending from the fitted factors equals recommending from a recalculated user
    # (Cholesky, 100 iterations, heavy regularization), items and scores to 1e-4
    counts = sp.csr_matrix(np.array([
        [1, 1, 0, 1, 0, 0],
        [0, 1, 1, 1, 0, 0],
        [1, 4, 1, 0, 7, 0],
        [1, 1, 0, 0, 0, 0],
        [9, 0, 4, 1, 0, 1],
        [0, 1, 0, 0, 0, 1],
        [0, 0, 2, 0, 1, 1],
    ], dtype=np.float32))
    user_items = counts.T.tocsr()
    model = ALS(factors=4, regularization=20, alpha=2.0, use_native=False, solver="cholesky",
                iterations=100, seed=23).fit(Interactions.from_csr(user_items))
    known = model.recommend([0], n=3)
    folded = model.recommend_new(events_of(user_items[0]), customer="customer", item="item",
                                 n=3)
    assert folded.column("item").to_pylist() == known.column("item").to_pylist()
    np.testing.assert_allclose(folded.column("score").to_numpy(),
                               known.column("score").to_numpy(), atol=1e-4)


def test_small_nan():
    # implicit: als_test.py::test_small_nan (implicit issue #377: more factors than customers)
    identity = sp.identity(10, format="csr")
    model = ALS(factors=15, seed=0).fit(Interactions.from_csr(identity))
    table = model.recommend([0], n=10, exclude_seen=False)
    assert table.num_rows == 10 and not np.isnan(table.column("score").to_numpy()).any()
    assert table.column("item")[0].as_py() == 0  # the liked item first


def test_incremental_retrain_by_fold_in():
    # implicit: als_test.py::test_incremental_retrain, its recommend half: a customer whose
    # history becomes customer 1's, and a new customer (id 100) with that history, get item 1
    # first. partial_fit_users / partial_fit_items (changing the model) have no counterpart:
    # recommend_new folds in without modifying the model.
    likes = checker_board(50)
    model = ALS(factors=2, regularization=0, seed=23).fit(Interactions.from_csr(likes))
    assert model.recommend([0], n=1).column("item").to_pylist() == [0]
    for customer in (0, 100):
        table = model.recommend_new(events_of(likes[1], customer_offset=customer),
                                    customer="customer", item="item", n=1)
        assert table.column("customer").to_pylist() == [customer]
        assert table.column("item").to_pylist() == [1]
    assert model.recommend([0], n=1).column("item").to_pylist() == [0]  # model unchanged


def _implicit_normaliser(counts: sp.csr_matrix) -> float:
    # implicit divides the objective by sum(c) + n_users * n_items - nnz (cpu/_als.pyx)
    return float(counts.sum() + counts.shape[0] * counts.shape[1] - counts.nnz)


@pytest.mark.parametrize("regularization,expected", [(0.0, 1.0), (1.0, 2.0)])
def test_calculate_loss_simple(regularization, expected):
    # implicit: als_test.py::test_calculate_loss_simple (factors "perfectly wrong"; implicit's
    # published 1.0 and 2.0 are the normalised loss). Ours is the unnormalised objective.
    ratings = sp.coo_matrix(([1.0], ([0], [0])), shape=(1, 2)).tocsr()
    items = np.array([[0.0], [1.0]], dtype=np.float32)
    users = np.array([[1.0]], dtype=np.float32)
    ours = rec_als.als_loss(ratings.indptr.astype(np.int64), ratings.indices.astype(np.int64),
                            ratings.data.astype(np.float32), users, items, items.T @ items,
                            regularization)
    assert ours / _implicit_normaliser(ratings) == pytest.approx(expected)
    assert implicit.cpu.als.calculate_loss(ratings, users, items,
                                           regularization=regularization) == pytest.approx(
        expected)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_calculate_loss_equals_implicit(seed):
    # implicit: als_test.py::test_calculate_loss_segfault (4 x 4, one factor) and
    # ::test_gpu_loss (its CPU reference): our loss equals implicit's calculate_loss
    rng = np.random.default_rng(seed)
    for n_users, n_items, factors, reg in ((4, 4, 1, 0.0), (30, 20, 5, 0.7)):
        items = rng.random((n_items, factors)).astype(np.float32)
        users = rng.random((n_users, factors)).astype(np.float32)
        c_ui = sp.random(n_users, n_items, density=0.3, format="csr", dtype=np.float32,
                         random_state=seed)
        c_ui.data = (c_ui.data * 5 + 0.5).astype(np.float32)
        c_ui.sort_indices()
        ours = rec_als.als_loss(c_ui.indptr.astype(np.int64), c_ui.indices.astype(np.int64),
                                c_ui.data, users, items, items.T @ items, reg)
        theirs = implicit.cpu.als.calculate_loss(c_ui, users, items, regularization=reg)
        assert ours > 0
        assert ours / _implicit_normaliser(c_ui) == pytest.approx(theirs, rel=1e-5)


def test_fit_diverging_to_nan_is_an_error():
    # implicit: recommender_base.py _check_factors (ModelFitError "NaN encountered in factors",
    # raised by implicit's ALS here). Regression: our fit returned NaN factors and recommend
    # then returned nothing at all, silently. Now a ConvergenceError saying what to change.
    one_pair = sp.csr_matrix(np.array([[0, 0, 0], [0, 1.0, 0], [0, 0, 0]]))
    with pytest.raises(implicit.recommender_base.ModelFitError):
        implicit.als.AlternatingLeastSquares(factors=32, regularization=0, random_state=23,
                                             use_gpu=False).fit(one_pair, show_progress=False)
    for solver in ("cg", "cholesky"):
        with pytest.raises(ConvergenceError, match="regularization"):
            ALS(factors=32, regularization=0, seed=23, solver=solver).fit(
                Interactions.from_csr(one_pair))
    # with regularization the same data is fine, and every candidate is served
    model = ALS(factors=32, regularization=0.01, seed=23).fit(Interactions.from_csr(one_pair))
    assert model.recommend(n=3).num_rows == 8
    # BPR: an SGD that diverges is the same error, not NaN factors
    rng = np.random.default_rng(0)
    events = pa.table({"customer": rng.integers(0, 50, 2000), "item": rng.integers(0, 40, 2000)})
    with pytest.raises(ConvergenceError, match="learning_rate"):
        BPR(learning_rate=1e6, iterations=20, seed=1, n_threads=1).fit(
            events, customer="customer", item="item")


# -- bpr_test.py ----------------------------------------------------------------------------------
def test_fit_empty_matrix():
    # implicit: bpr_test.py::test_fit_empty_matrix (implicit issue #264: a crash). implicit now
    # fits an all-zero matrix; deliberate difference: ours says there is nothing to fit
    implicit.bpr.BayesianPersonalizedRanking(use_gpu=False).fit(
        sp.csr_matrix(np.zeros((3, 3))), show_progress=False)
    for make in MODELS.values():
        with pytest.raises(InputError, match="empty interaction matrix"):
            make().fit(Interactions.from_csr(np.zeros((3, 3))))


@pytest.mark.parametrize("kind", KINDS)
def test_fit_almost_empty_matrix(kind):
    # implicit: bpr_test.py::test_fit_almost_empty_matrix (implicit issue #264), on every model:
    # one pair in 3 x 3 fits, and every customer gets each unseen item once
    one_pair = np.array([[0, 0, 0], [0, 1.0, 0], [0, 0, 0]])
    model = MODELS[kind]() if kind != "als" else ALS(factors=32, regularization=0.01, seed=23)
    table = model.fit(Interactions.from_csr(one_pair)).recommend(n=3)
    assert table.group_by("customer").aggregate([("item", "count")]).sort_by("customer") \
        .column("item_count").to_pylist() == [3, 2, 3]
    assert np.isfinite(table.column("score").to_numpy()).all()


# -- knn_test.py ----------------------------------------------------------------------------------
# implicit: knn_test.py::test_all_pairs_knn (the published 7 x 6 count matrix)
KNN_COUNTS = np.array([
    [5, 1, 0, 9, 0, 0],
    [0, 2, 1, 1, 0, 0],
    [7, 0, 3, 0, 0, 0],
    [1, 8, 0, 0, 0, 0],
    [0, 0, 4, 4, 0, 0],
    [0, 3, 0, 0, 0, 2],
    [0, 0, 0, 0, 6, 0],
], dtype=np.float64)


@pytest.mark.parametrize("similarity", ["cosine", "bm25"])
def test_all_pairs_knn(similarity):
    # implicit: knn_test.py::test_all_pairs_knn, with implicit's own cosine and bm25 weights
    # (tfidf has no counterpart): the neighbours are the K largest entries of W^T W, values
    # equal, W weighted by implicit's functions
    counts = sp.csr_matrix(KNN_COUNTS)
    if similarity == "cosine":
        weighted = implicit_nn.normalize(counts.T).T
    else:
        weighted = implicit_nn.bm25_weight(counts.T, 1.2, 0.75).T
    weighted = sp.csr_matrix(weighted)
    all_neighbours = (weighted.T @ weighted).toarray()
    K = 3
    model = ItemKNN(similarity, K=K).fit(Interactions.from_csr(counts))
    theirs = getattr(implicit_nn, {"cosine": "CosineRecommender",
                                   "bm25": "BM25Recommender"}[similarity])(K=K)
    theirs.fit(counts, show_progress=False)
    peer = theirs.similarity.toarray()
    for item in range(counts.shape[1]):
        count = model.counts_[item]
        ids = model.neighbours_[item, :count]
        np.testing.assert_allclose(model.similarities_[item, :count], all_neighbours[item, ids],
                                   rtol=1e-6)
        row = all_neighbours[item]
        best = np.argsort(-row, kind="stable")[:K]
        expected = set(best[row[best] > 0].tolist())
        assert set(ids.tolist()) == expected
        # implicit's stored neighbours: the same items and values
        assert set(np.nonzero(peer[item])[0].tolist()) == expected
        np.testing.assert_allclose(peer[item, ids], model.similarities_[item, :count],
                                   rtol=1e-5)


# -- evaluation_test.py ---------------------------------------------------------------------------
def test_train_test_split():
    # implicit: evaluation_test.py::test_train_test_split (the same seed, the same split) and
    # the protocol itself: random_split(f, seed) is implicit's train_test_split(1 - f, seed)
    # pair for pair (same uniform draws, same threshold)
    rng = np.random.default_rng(7)
    matrix = sp.csr_matrix((rng.random((10, 10)) > 0.5).astype(np.float64))
    inter = Interactions.from_csr(matrix)
    for seed in (0, 11, 999):
        train, test = random_split(inter, 0.2, seed=seed)
        train2, _ = random_split(inter, 0.2, seed=seed)
        assert (train.matrix != train2.matrix).nnz == 0
        their_train, their_test = implicit_eval.train_test_split(matrix, 0.8, seed)
        assert (train.matrix != their_train).nnz == 0
        assert (test.matrix != their_test).nnz == 0
        assert train.nnz + test.nnz == inter.nnz
        assert ((train.matrix + test.matrix) != inter.matrix).nnz == 0


def test_train_test_split_larger():
    # the same on a 300 x 200 matrix with counts, several fractions
    rng = np.random.default_rng(3)
    matrix = sp.random(300, 200, density=0.05, format="csr", random_state=5)
    matrix.data = np.ceil(matrix.data * 4)
    inter = Interactions.from_csr(matrix)
    for fraction in (0.1, 0.25, 0.5):
        seed = int(rng.integers(1000))
        train, test = random_split(inter, fraction, seed=seed)
        their_train, their_test = implicit_eval.train_test_split(matrix, 1.0 - fraction, seed)
        assert (train.matrix != their_train).nnz == 0 and (test.matrix != their_test).nnz == 0


def _leave_k_matrix(seed: int = 0) -> sp.csr_matrix:
    # implicit: evaluation_test.py::_get_matrix (100 x 100, density 0.5)
    return sp.random(100, 100, density=0.5, format="csr", dtype=np.float32, random_state=seed)


@pytest.mark.parametrize("k", [1, 3])
def test_leave_k_out_shape_and_sum(k):
    # implicit: evaluation_test.py::test_leave_k_out_returns_correct_shape,
    # ::test_leave_k_out_outputs_produce_input and ::test_leave_k_split_is_reservable
    matrix = _leave_k_matrix()
    inter = Interactions.from_csr(matrix)
    train, test = leave_k_out_split(inter, k=k, seed=1)
    assert train.shape == test.shape == inter.shape
    assert ((train.matrix + test.matrix) != inter.matrix).nnz == 0
    assert inter.matrix.sum() > 0 and test.matrix.sum() > 0 and train.matrix.sum() > 0
    # every customer with more than k + 1 pairs has exactly k test pairs: as implicit's split
    their_train, their_test = implicit_eval.leave_k_out_split(matrix, K=k, random_state=1)
    eligible = np.diff(inter.matrix.indptr) > k + 1
    np.testing.assert_array_equal(np.diff(test.matrix.indptr), np.where(eligible, k, 0))
    np.testing.assert_array_equal(np.diff(sp.csr_matrix(their_test).indptr),
                                  np.where(eligible, k, 0))
    assert ((their_train + their_test) != matrix).nnz == 0
    # the same seed, the same split (implicit's shuffle reads NumPy's global state instead)
    again = leave_k_out_split(inter, k=k, seed=1)
    assert (again.test.matrix != test.matrix).nnz == 0
    other = leave_k_out_split(inter, k=k, seed=2)
    assert (other.test.matrix != test.matrix).nnz > 0


def test_leave_k_out_train_only():
    # implicit: evaluation_test.py::test_leave_k_out_gets_correct_train_only_shape
    inter = Interactions.from_csr(_leave_k_matrix())
    train, test = leave_k_out_split(inter, k=1, train_only_fraction=0.8, seed=3)
    train_only = ~np.isin(np.unique(train.matrix.tocoo().row), test.matrix.tocoo().row)
    assert train_only.sum() == int(train.shape[0] * 0.8)
    their_train, their_test = implicit_eval.leave_k_out_split(_leave_k_matrix(), K=1,
                                                              train_only_size=0.8, random_state=3)
    theirs = ~np.isin(np.unique(their_train.tocoo().row), their_test.tocoo().row)
    assert theirs.sum() == train_only.sum()


def test_leave_k_out_customers_with_few_pairs_stay_in_train():
    # the eligibility rule (more than k + 1 pairs), on customers of 1..6 pairs, k = 2
    rows = np.repeat(np.arange(6), np.arange(1, 7))
    cols = np.concatenate([np.arange(n) for n in range(1, 7)])
    inter = Interactions.from_csr(sp.csr_matrix((np.ones(rows.size), (rows, cols))))
    train, test = leave_k_out_split(inter, k=2, seed=0)
    assert np.diff(test.matrix.indptr).tolist() == [0, 0, 0, 2, 2, 2]
    assert np.diff(train.matrix.indptr).tolist() == [1, 2, 3, 2, 3, 4]


@pytest.mark.parametrize("k,fraction", [(0, 0.0), (-1, 0.0), (1, -1.0), (1, 1.0)])
def test_leave_k_out_bad_arguments(k, fraction):
    # implicit: evaluation_test.py::test_leave_k_out_raises_error_for_k_less_than_zero,
    # ::..._invalid_train_only_size_lower_bound and ::..._upper_bound (ValueError; ours is an
    # InputError, a ValueError)
    with pytest.raises(ValueError):
        implicit_eval.leave_k_out_split(None, K=k, train_only_size=fraction)
    with pytest.raises(InputError, match="k must be|train_only_fraction"):
        leave_k_out_split(Interactions.from_csr(np.eye(3)), k=k, train_only_fraction=fraction)
    with pytest.raises(InputError, match="k must be"):
        leave_k_out_split(Interactions.from_csr(np.eye(3)), k=1.5)


def _peer_knn_on_random_data():
    rng = np.random.default_rng(21)
    pairs = 6000
    # continuous values: no two similarities tie at a neighbour list's K-th place (a tie there
    # is broken by the lower item code in ours, another way in implicit: both valid)
    matrix = sp.coo_matrix((0.5 + 3.0 * rng.random(pairs),
                            (rng.integers(0, 300, pairs), rng.zipf(1.3, pairs) % 200)),
                           shape=(300, 200)).tocsr()
    inter = Interactions.from_csr(matrix)
    train, test = random_split(inter, 0.2, seed=4)
    return train, test


@pytest.mark.parametrize("K", [1, 5, 10, 50, 150])
def test_metrics_equal_implicit_functions(K):
    # implicit: evaluation_test.py (precision_at_k; and its functions mean_average_precision_at_k,
    # ndcg_at_k, AUC_at_k, ranking_metrics_at_k): on implicit's own recommendations, our
    # ranking_metrics gives implicit's numbers; our ItemKNN evaluated gives them too
    train, test = _peer_knn_on_random_data()
    tr = train.matrix.astype(np.float64)
    te = test.matrix.astype(np.float64)
    theirs = implicit_nn.BM25Recommender(K=30)
    theirs.fit(tr, show_progress=False)
    ref = {
        "precision": implicit_eval.precision_at_k(theirs, tr, te, K=K, show_progress=False),
        "map": implicit_eval.mean_average_precision_at_k(theirs, tr, te, K=K,
                                                         show_progress=False),
        "ndcg": implicit_eval.ndcg_at_k(theirs, tr, te, K=K, show_progress=False),
        "auc": implicit_eval.AUC_at_k(theirs, tr, te, K=K, show_progress=False),
    }
    together = implicit_eval.ranking_metrics_at_k(theirs, tr, te, K=K, show_progress=False)
    users = np.arange(train.n_customers)
    ids, scores = theirs.recommend(users, tr[users], N=K)
    # implicit's item-item lists stop at the items with a score (a few zeros, then -1 padding)
    padded = bool((ids < 0).any())
    assert padded == (K == 150)
    got = ranking_metrics(ids, test)
    model = ItemKNN("bm25", K=30).fit(train)
    for key, value in ref.items():
        assert together[key] == pytest.approx(value, rel=1e-12)
        if key == "auc" and padded:
            # Deliberate difference (README "Coming from implicit", issue #9 bug 2): implicit's
            # AUC counts each -1 padding entry as a miss, ours ends the list there, so a short
            # list scores higher here than in implicit, never lower
            assert got[key] > value
            continue
        assert got[key] == pytest.approx(value, rel=1e-9), key
    if not padded:
        ours = evaluate(model, test, k=K)
        for key, value in ref.items():
            assert ours[key] == pytest.approx(value, rel=1e-6), key
    else:
        # Deliberate difference (README: exactly n items whenever n candidates exist): our
        # lists go on past the scored items with zero-score items by popularity, so only the
        # scored prefix is implicit's (scores per rank; equal scores may swap items)
        table = model.recommend(train.customers.decode(users), n=K)
        ours_scores = top_scores(table, users.size, K)
        for row in range(users.size):
            scored = int(np.count_nonzero(scores[row] > 0))
            np.testing.assert_allclose(ours_scores[row, :scored], scores[row, :scored],
                                       rtol=1e-5)
            assert (ours_scores[row, scored:] == 0).all()


def test_evaluate_als_with_implicit_factors():
    # implicit: evaluation_test.py::test_evaluate_movielens_100k, on data we ship (no
    # download): implicit's metrics of an ALS model equal ours for the same factors (our
    # factors given to implicit's model), and our fit matches implicit's fit on the same split
    train, test = _peer_knn_on_random_data()
    tr = train.matrix.astype(np.float32)
    te = test.matrix.astype(np.float32)
    ours = ALS(factors=16, regularization=0.05, iterations=10, dtype=np.float64, seed=2).fit(train)
    theirs = implicit.als.AlternatingLeastSquares(factors=16, regularization=0.05,
                                                  iterations=10, dtype=np.float64,
                                                  random_state=2, use_gpu=False)
    theirs.fit(train.matrix.astype(np.float64), show_progress=False)
    np.testing.assert_allclose(ours.item_factors_, theirs.item_factors, atol=1e-6)
    got = evaluate(ours, test, k=10)
    theirs.user_factors = ours.user_factors_.copy()
    theirs.item_factors = ours.item_factors_.copy()
    ref = implicit_eval.ranking_metrics_at_k(theirs, tr.astype(np.float64), te.astype(np.float64),
                                             K=10, show_progress=False)
    for key in ("precision", "map", "ndcg", "auc"):
        assert got[key] == pytest.approx(ref[key], rel=1e-9), key


# -- the peer's edge cases, on our input path -----------------------------------------------------
@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
@pytest.mark.parametrize("values,problem", [
    ([1.0, -1.0], "-1.0 at row 0, column 1"),      # implicit: negative feedback (ALS)
    ([1.0, np.nan], "nan at row 0, column 1"),
    ([1.0, np.inf], "inf at row 0, column 1"),
    ([1.0, 1e300], "inf at row 0, column 1"),      # overflows float32
    ([1.0, 0.0], "0.0 at row 0, column 1"),        # a stored zero
])
def test_from_csr_values_must_be_positive(values, problem):
    # Regression (found porting recommender_base_test.py::test_fit_non_csr_matrix/test_dtype
    # with other matrices): from_csr took any stored value; a negative or NaN one gave NaN
    # ALS scores and an empty recommend(), a stored zero a "seen" item with no weight and an
    # ALS score of 3e5. Deliberate difference: implicit reads negatives as negative feedback,
    # ours asks for interaction values > 0, as from_data does for weights.
    matrix = sp.csr_matrix((np.array(values), np.array([0, 1]), np.array([0, 2, 2])),
                           shape=(2, 2))
    with pytest.raises(InputError, match=problem.replace("(", r"\(").replace(".", r"\.")):
        Interactions.from_csr(matrix)


def test_from_csr_ids():
    # duplicate ids (one per row/column) and nulls are errors naming the role
    eye = np.eye(3)
    with pytest.raises(InputError, match="customer_ids are not unique"):
        Interactions.from_csr(eye, customer_ids=[1, 1, 2])
    with pytest.raises(InputError, match="item_ids are not unique"):
        Interactions.from_csr(eye, item_ids=["a", "b", "a"])
    with pytest.raises(InputError, match="null"):
        Interactions.from_csr(eye, customer_ids=[1, None, 2])
    with pytest.raises(InputError, match="2-d"):
        Interactions.from_csr("not a matrix")


@pytest.mark.parametrize("kind", KINDS)
def test_arrow_events_unsorted_duplicated_equal_the_matrix(kind):
    # recommender_base_test.py fits on a matrix; our users pass events. Shuffled rows with
    # repeated (customer, item) events give the counted matrix's model: the same
    # recommendations by id (ItemKNN, cosine/bm25: bit for bit; ALS/BPR: the codes follow first
    # appearance, so the starting factors differ: the same top item for the checker board)
    board = checker_board(50)
    counts = board.copy()
    counts.data = 1.0 + (np.arange(counts.nnz) % 3)  # 1..3 events per pair
    events = events_of(counts)
    order = np.random.default_rng(0).permutation(events.num_rows)
    shuffled = events.take(pa.array(order))
    # (ALS: regularized; at the suite's regularization=0 the model on this rank-2 board is
    # degenerate, and which of its equally good answers comes out depends on the start)
    make = MODELS[kind] if kind != "als" else (lambda: ALS(factors=32, regularization=0.1,
                                                            seed=23))
    from_events = make().fit(shuffled, customer="customer", item="item")
    from_matrix = make().fit(Interactions.from_csr(counts))
    a = from_events.recommend(np.arange(50), n=5).sort_by([("customer", "ascending"),
                                                            ("rank", "ascending")])
    b = from_matrix.recommend(np.arange(50), n=5)
    if kind in ("cosine", "bm25"):
        np.testing.assert_array_equal(a.column("score").to_numpy(), b.column("score").to_numpy())
        same_score = np.isclose(top_scores(a, 50, 5)[:, :, None],
                                top_scores(b, 50, 5)[:, None, :])
        # every item ours puts at a rank has its score at that rank in the matrix model
        assert same_score.any(axis=2).all()
    assert top_items(a, 50, 5)[:, 0].tolist() == list(range(50))
    assert top_items(b, 50, 5)[:, 0].tolist() == list(range(50))


@pytest.mark.parametrize("kind", KINDS)
def test_huge_and_string_ids(kind):
    # ids at the ends of int64 and of uint64, and strings, kept and served as given: the same
    # model as on the codes 0..n-1 (same first appearance, so the same codes and seeds)
    coo = sp.coo_matrix(checker_board(8))
    plain = pa.table({"customer": coo.row.astype(np.int64), "item": coo.col.astype(np.int64)})
    reference = MODELS[kind]().fit(plain, customer="customer", item="item")
    expected = reference.recommend(np.arange(8), n=3)
    i64 = np.iinfo(np.int64)
    big = np.array([i64.min, -1, 0, 7, 2 ** 62, i64.max - 1, i64.max, i64.min + 1])
    for customers, items in (
            (pa.array(big), pa.array(big[::-1])),
            (pa.array([2 ** 64 - 1 - k for k in range(8)], pa.uint64()),
             pa.array([2 ** 63 + k for k in range(8)], pa.uint64())),
            (pa.array([f"customer-{k}" for k in range(8)]),
             pa.array([f"é{k}" for k in range(8)]))):
        events = pa.table({"customer": customers.take(pa.array(coo.row)),
                           "item": items.take(pa.array(coo.col))})
        model = MODELS[kind]().fit(events, customer="customer", item="item")
        table = model.recommend(customers, n=3)
        assert table.column("customer").to_pylist() == \
            customers.take(expected.column("customer")).to_pylist()
        assert table.column("item").to_pylist() == \
            items.take(expected.column("item")).to_pylist()
        assert table.column("score").equals(expected.column("score"))
        # as Python values too (a list of ints above 2**63 is not an int64 array)
        assert model.recommend(customers.to_pylist(), n=3).equals(table)
        for code in range(8):
            got, scores = model.recommend_one(customers[code].as_py(), n=3)
            want = table.filter(pa.compute.equal(table.column("customer"), customers[code]))
            assert got.tolist() == want.column("item").to_pylist()
            np.testing.assert_array_equal(scores, want.column("score").to_numpy())
        if pa.types.is_integer(customers.type):
            # an id of the other signedness with the same 64 bits is another customer
            other = (customers.cast(pa.int64(), safe=False) if pa.types.is_uint64(customers.type)
                     else customers.cast(pa.uint64(), safe=False))
            wrapped = [v for v, c in zip(other.to_pylist(), customers.to_pylist()) if v != c]
            assert wrapped
            for value in wrapped:
                with pytest.raises(InputError, match="not in the model"):
                    model.recommend_one(value, n=3)
                with pytest.raises(InputError, match="not in the model"):
                    model.recommend([value], n=3)


@pytest.mark.parametrize("kind", KINDS)
def test_one_customer(kind):
    # one customer: every item seen -> no candidates, an empty table with the columns
    model = MODELS[kind]() if kind != "als" else ALS(factors=8, seed=0)
    model.fit(pa.table({"customer": [5] * 4, "item": [1, 2, 3, 4]}), customer="customer",
              item="item")
    empty = model.recommend([5], n=3)
    assert empty.num_rows == 0 and empty.column_names == ["customer", "rank", "item", "score"]
    table = model.recommend([5], n=3, exclude_seen=False)
    assert table.num_rows == 3 and len(set(table.column("item").to_pylist())) == 3


@pytest.mark.parametrize("kind", KINDS)
def test_ties_are_ordered_by_popularity(kind):
    # a customer with no history scores every item alike (0 for ALS and item-item): the README
    # orders equal scores by the items' training popularity (customers per item), then code
    counts = np.zeros((6, 5))
    counts[0, [0, 1, 2]] = 1
    counts[1, [2, 3]] = 1
    counts[2, [2, 3]] = 1
    counts[3, [4]] = 1
    counts[4, [3]] = 1  # customer 5: no history
    model = MODELS[kind]() if kind != "als" else ALS(factors=3, regularization=0.1, seed=0)
    model.fit(Interactions.from_csr(counts))
    table = model.recommend([5], n=5)
    if kind != "bpr":  # BPR's item bias makes popular items score higher anyway
        assert (table.column("score").to_numpy() == 0).all()
    popularity_order = [2, 3, 0, 1, 4]  # 3, 3 customers (code 2 first), then 1 each by code
    if kind != "bpr":
        assert table.column("item").to_pylist() == popularity_order


@pytest.mark.parametrize("bad,problem", [
    (pa.array([1.0, float("nan"), 2.0], pa.float32()), "w"),
    (pa.array([1.0, 0.0, 2.0]), "w"),
    (pa.array([1.0, -3.0, 2.0]), "w"),
])
def test_bad_weights_name_the_column(bad, problem):
    events = pa.table({"c": [1, 2, 3], "i": [1, 1, 2], "w": bad})
    for make in MODELS.values():
        with pytest.raises(InputError, match=f"'{problem}'"):
            make().fit(events, customer="c", item="i", weight="w")


def test_null_ids_name_the_column():
    events = pa.table({"c": [1, None, 3], "i": ["a", "b", "c"]})
    with pytest.raises(InputError, match="'c'.*null"):
        ItemKNN().fit(events, customer="c", item="i")
    events = pa.table({"c": [1, 2, 3], "i": ["a", None, "c"]})
    with pytest.raises(InputError, match="'i'.*null"):
        ALS(factors=2).fit(events, customer="c", item="i")


def test_evaluate_online_retail_like_implicit(retail_table):
    # implicit: evaluation_test.py::test_evaluate_movielens_100k (a download; here the Online
    # Retail table we ship): binary preferences, implicit's train_test_split, ALS, metrics.
    # Same split (pair for pair), same seed and settings: implicit's numbers to float32 noise
    # (and a model that learns: precision@10 well above the 0.0027 of a random list)
    table = retail_table.filter(pa.compute.is_valid(retail_table.column("CustomerID")))
    inter = Interactions.from_data(table, customer="CustomerID", item="StockCode",
                                   weighting="binary")
    train, test = random_split(inter, 0.2, seed=0)
    their_train, their_test = implicit_eval.train_test_split(inter.matrix, 0.8, 0)
    assert (their_train != train.matrix).nnz == 0 and (their_test != test.matrix).nnz == 0
    ours = evaluate(ALS(factors=32, iterations=10, seed=0).fit(train), test, k=10)
    peer = implicit.als.AlternatingLeastSquares(factors=32, iterations=10, random_state=0,
                                                use_gpu=False)
    peer.fit(their_train.astype(np.float32), show_progress=False)
    theirs = implicit_eval.ranking_metrics_at_k(peer, their_train.astype(np.float32),
                                                their_test.astype(np.float32), K=10,
                                                show_progress=False)
    assert ours["precision"] > 0.15
    for key in ("precision", "map", "ndcg", "auc"):
        assert ours[key] == pytest.approx(theirs[key], rel=5e-3), key


@pytest.mark.parametrize("kind", ["als", "bpr"])
def test_similar_customers_after_forget(kind):
    # similar_customers reads the state forget() swaps: a forgotten customer is no answer
    # and no longer a valid query
    model = MODELS[kind]().fit(Interactions.from_csr(checker_board(50)))
    model.forget([4, 7])
    table = model.similar_customers(np.arange(10)[~np.isin(np.arange(10), [4, 7])], n=50)
    assert not set(table.column("similar_customer").to_pylist()) & {4, 7}
    assert table.num_rows == 8 * 48
    with pytest.raises(InputError, match="not in the model"):
        model.similar_customers([4])


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2 ** 32 - 1), st.integers(1, 40), st.integers(1, 6), st.integers(1, 12),
       st.booleans())
def test_mf_similar_kernel_matches_naive(seed, n_items, f, n, use_allowed):
    # the kernel behind similar_items / similar_customers (filters added for the ports above)
    # against the plain reference: cosine scores, allowed mask, ties by the tie-break rank.
    # Small integer factors: exact dot products, many ties.
    rng = np.random.default_rng(seed)
    V = rng.integers(-2, 3, (n_items, f)).astype(np.float64)
    norms = np.linalg.norm(V, axis=1)
    norms = np.where(norms > 0, norms, 1.0)
    codes = rng.integers(0, n_items, 5).astype(np.int64)
    allowed = (rng.random(n_items) < 0.6).astype(np.uint8) if use_allowed else np.ones(1, np.uint8)
    tiebreak = rng.permutation(n_items).astype(np.int64)
    for kernel in (rec_serve.mf_similar.serial, rec_serve.mf_similar.parallel):
        out_idx = np.empty((codes.size, n), np.int64)
        out_score = np.empty((codes.size, n), np.float32)
        out_count = np.empty(codes.size, np.int64)
        args = (V, norms, codes, allowed, use_allowed, tiebreak, out_idx, out_score, out_count,
                2)
        kernel(*args) if kernel is rec_serve.mf_similar.serial else kernel(*args, n_threads=2)
        for b, q in enumerate(codes):
            scores = [float(V[q] @ V[j]) / (norms[q] * norms[j]) for j in range(n_items)]
            ids, ref = naive_recommend.topn(scores, n, allowed=allowed if use_allowed else None,
                                            tiebreak=tiebreak)
            assert out_count[b] == len(ids)
            assert out_idx[b, :len(ids)].tolist() == ids
            np.testing.assert_allclose(out_score[b, :len(ids)], ref, rtol=1e-6)
