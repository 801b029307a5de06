"""Ranking AUC of short lists (issue #9, bug 2): ``-1`` padding is the end of a list, not a miss,
so a customer with fewer candidates than K gets the same AUC at any K, as implicit does."""
import numpy as np
import pytest
import scipy.sparse as sp

from fastengage.recommend import ALS, Interactions, evaluate, ranking_metrics


def test_padding_is_not_a_miss():
    test = sp.csr_matrix(([1.0, 1.0], ([0, 0], [1, 2])), shape=(1, 5))
    at3 = ranking_metrics(np.array([[2, 3, 4]]), test)["auc"]
    at10 = ranking_metrics(np.array([[2, 3, 4] + [-1] * 7]), test)["auc"]
    # hit, miss, miss: AUC = (0 + 1 + 1 + (1 + 2) / 2 * (3 - 2)) / (2 * 3)
    assert at3 == pytest.approx(3.5 / 6)
    assert at10 == at3


def test_evaluate_agrees_with_implicit_when_lists_are_short():
    """Customers who have seen most of a 6-item catalogue: implicit's ranking_metrics_at_k on the
    same factors (its AUC stays 0.875 from K=4 on, where lists run out)."""
    implicit_als = pytest.importorskip("implicit.cpu.als")
    from implicit.evaluation import ranking_metrics_at_k

    train = sp.csr_matrix(np.array([[1, 0, 0, 0, 0, 1], [0, 1, 1, 0, 0, 0], [1, 1, 0, 0, 1, 0]],
                                   dtype=np.float32))
    test = sp.csr_matrix(np.array([[0, 1, 1, 0, 0, 0], [1, 0, 0, 1, 0, 0], [0, 0, 1, 1, 0, 0]],
                                  dtype=np.float32))
    theirs = implicit_als.AlternatingLeastSquares(factors=3, iterations=1, random_state=0)
    theirs.fit(train, show_progress=False)
    ours = ALS(factors=3, iterations=1, seed=0).fit(Interactions.from_csr(train))
    ours.user_factors_ = np.ascontiguousarray(theirs.user_factors)
    ours.item_factors_ = np.ascontiguousarray(theirs.item_factors)
    ours._finalize()
    held_out = Interactions.from_csr(test)
    for k in (2, 3, 4, 6, 10):
        expected = ranking_metrics_at_k(theirs, train, test, K=k, show_progress=False)
        got = evaluate(ours, held_out, k=k)
        assert got["auc"] == pytest.approx(expected["auc"]), k
        if k <= 6:  # past the catalogue implicit pads with item 0 and counts it (precision > 1)
            for name in ("precision", "map", "ndcg"):
                assert got[name] == pytest.approx(expected[name]), (k, name)
