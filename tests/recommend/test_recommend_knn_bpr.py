"""ItemKNN against implicit's CosineRecommender / BM25Recommender; BPR learns rankings."""
import numpy as np
import pyarrow as pa
import pytest

from fastengage.recommend import BPR, Interactions, ItemKNN, evaluate, random_split

nn = pytest.importorskip("implicit.nearest_neighbours")  # installs on 3.11: always runs here


@pytest.fixture(scope="module")
def inter():
    rng = np.random.default_rng(2)
    n = 8000
    pi = 1.0 / np.arange(1, 301) ** 0.8
    t = pa.table({"c": rng.integers(0, 400, n), "i": rng.choice(300, n, p=pi / pi.sum()),
                  "w": rng.integers(1, 4, n).astype(float)})
    return Interactions.from_data(t, customer="c", item="i", weight="w")


@pytest.mark.parametrize("kind,peer", [("cosine", "CosineRecommender"),
                                       ("bm25", "BM25Recommender")])
def test_item_knn_matches_implicit(inter, kind, peer):
    ours = ItemKNN(kind, K=15).fit(inter)
    theirs = getattr(nn, peer)(K=15)
    theirs.fit(inter.matrix.astype(np.float64), show_progress=False)
    S = theirs.similarity.tocsr()
    for i in range(inter.n_items):
        ref = np.sort(S[i].data)[::-1]
        got = ours.similarities_[i, :ours.counts_[i]]
        assert got.size == ref.size
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-9)  # same values (ties aside)
    # scores of the recommended items equal implicit's scores of those items
    rows = np.arange(20)
    table = ours.recommend(inter.customers.decode(rows), n=10)
    ids, scores = theirs.recommend(rows, inter.matrix[rows].astype(np.float64), N=10)
    got = table.column("score").to_numpy().reshape(20, 10)
    np.testing.assert_allclose(got, scores, rtol=1e-5, atol=1e-6)


def test_bpr_learns_and_is_reproducible(inter):
    train, test = random_split(inter, 0.2, seed=0)
    a = BPR(factors=16, iterations=30, learning_rate=0.05, seed=4, n_threads=1).fit(train)
    b = BPR(factors=16, iterations=30, learning_rate=0.05, seed=4, n_threads=1).fit(train)
    np.testing.assert_array_equal(a.item_factors_, b.item_factors_)
    assert a.train_accuracy_ > 0.7
    m = evaluate(a, test, k=10)
    assert m["auc"] > 0.55
    # the item bias column learns popularity: popular items get the largest biases
    pop = np.bincount(train.matrix.indices, minlength=train.n_items)
    assert np.corrcoef(a.item_factors_[:, -1], pop)[0, 1] > 0.5
