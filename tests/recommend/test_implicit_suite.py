"""implicit's own test suite, ported: every case of benfred/implicit v0.7.3 ``tests/`` (the
version installed here) that has a fastengage.recommend counterpart, each cited beside it as
``implicit: <file>::<test>``. Where implicit is deterministic (item-item neighbours, ALS from the
same seed, the metrics, the random split) the answer is compared with implicit itself, run in
the same test; otherwise the contract its mixin checks is checked on ours.

Mapping (README "Coming from implicit"): a user_items row -> the customer's events (an Arrow
table) or an :class:`Interactions`; ``filter_already_liked_items`` -> ``exclude_seen``;
``filter_items`` / ``items`` -> ``exclude_items`` / ``items``; ``recalculate_user`` ->
``recommend_new`` (fold-in); model ids -> the user's own ids (here 0..n-1, so codes == ids).

Deliberate differences, asserted as our documented behaviour (see the comments at each case):

* ``exclude_seen=True`` never returns a seen item, also with ``items=`` (implicit ranks the
  filtered items last with a -inf score); ``n`` beyond the candidates returns the candidates;
* ids outside the model are an ``InputError`` (a ValueError) naming ``items=``, not IndexError;
* an empty interaction matrix is an ``InputError``, not an empty model (bpr_test issue #264);
* ``save`` needs a fitted model (pickling an unfitted one works);
* interaction values must be finite and > 0 (implicit reads negatives as negative feedback);
* ``ALS.loss()`` is the unnormalised objective; implicit divides it by
  ``sum(c) + n_users * n_items - nnz`` (compared after that division).

Not ported (no counterpart in fastengage): similar_users (all three cases), similar_items with
``filter_items=``/``items=``/``recalculate_item``, fit callbacks, ``explain``,
``partial_fit_users``/``partial_fit_items`` (their fold-in half is ported), TFIDFRecommender and
``all_pairs_knn`` with tfidf weights (ported with cosine and bm25), ``leave_k_out_split``,
GPU/ANN/LMF models, and the MovieLens-100k download (evaluation_test.py).
"""
import io
import pickle

import numpy as np
import pyarrow as pa
import pytest
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from fastengage.errors import ConvergenceError, InputError
from fastengage.kernels.recommend import als as rec_als
from fastengage.recommend import (ALS, BPR, Interactions, ItemKNN, evaluate, random_split,
                                  ranking_metrics)

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
        assert implicit_eval.precision_at_k(theirs, checker_board(50), sp.identity(50, format="csr"),
                                            K=1, show_progress=False) == got["precision"]


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
