"""Ranking metrics at K, computed in a parallel kernel (:mod:`fastengage.kernels.recommend.metrics`).

Definitions match ``implicit.evaluation.ranking_metrics_at_k`` (so numbers can be compared with
implicit's on the same split): only customers with at least one held-out item count;

* ``precision`` = sum of hits / sum of min(K, |test_u|)  (implicit's precision@K);
* ``recall``    = mean of hits / |test_u|;
* ``map``       = mean of AP@K, AP normalised by min(K, |test_u|);
* ``ndcg``      = mean of DCG@K / ideal DCG@K (binary relevance, log2 discount);
* ``auc``       = mean of implicit's top-K-limited AUC.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import scipy.sparse as sp

from ..errors import InputError
from ..kernels.recommend import metrics as rec_metrics
from ._ids import _lookup_ids
from .interactions import Interactions, id_array

__all__ = ["ranking_metrics", "evaluate"]


def _test_csr(test):
    m = test.matrix if isinstance(test, Interactions) else sp.csr_matrix(test)
    if not m.has_sorted_indices:
        m = m.copy()
        m.sort_indices()
    return (np.ascontiguousarray(m.indptr, np.int64), np.ascontiguousarray(m.indices, np.int64),
            m.shape)


def ranking_metrics(recs: np.ndarray, test, users: np.ndarray | None = None, *,
                    n_threads: int | None = None) -> dict:
    """Metrics of recommendation lists against held-out items.

    Parameters
    ----------
    recs : int array (U, K)
        Item codes (columns of ``test``), best first; -1 pads short lists.
    test : Interactions or scipy sparse matrix (n_rows, n_items)
        Held-out interactions.
    users : int array (U,), optional
        Row of ``test`` for each row of ``recs`` (default ``0..U-1``).

    Returns
    -------
    dict
        ``precision``, ``recall``, ``map``, ``ndcg``, ``auc`` (floats) and ``customers`` (number
        of customers with held-out items that were scored), for ``k = K``.
    """
    recs = np.ascontiguousarray(recs, dtype=np.int64)
    if recs.ndim != 2:
        raise InputError(f"recs must be a 2-d array (customers x K), got shape {recs.shape}")
    indptr, indices, shape = _test_csr(test)
    users = np.arange(recs.shape[0], dtype=np.int64) if users is None else \
        np.ascontiguousarray(users, dtype=np.int64)
    if users.size != recs.shape[0]:
        raise InputError("users must have one entry per row of recs")
    if users.size and (users.min() < 0 or users.max() >= shape[0]):
        raise InputError("users has rows outside the test matrix")
    out = np.empty((recs.shape[0], 6), np.float64)
    rec_metrics.ranking_metrics(recs, users, indptr, indices, shape[1], out,
                                n_threads=n_threads)
    out = out[out[:, 0] > 0]
    if out.shape[0] == 0:
        raise InputError("no customer has held-out items: metrics are undefined")
    return {
        "precision": float(out[:, 1].sum() / out[:, 2].sum()),
        "recall": float(np.mean(out[:, 1] / out[:, 0])),
        "map": float(out[:, 3].mean()),
        "ndcg": float(out[:, 4].mean()),
        "auc": float(out[:, 5].mean()),
        "customers": int(out.shape[0]),
    }


def evaluate(model, test: Interactions, k: int = 10, exclude_seen: bool = True, *,
             n_threads: int | None = None, num_threads: int | None = None) -> dict:
    """Fit quality of ``model`` on held-out ``test`` interactions.

    ``test`` should come from the same :func:`temporal_split` / :func:`random_split` as the
    training data (same id encoders). Otherwise ids are matched by value; test customers and
    items unknown to the model are then not scored, and their counts are returned as
    ``customers_unknown`` / ``pairs_unknown_item``.

    ``n_threads`` (default: the model's) runs the top-k and the metrics; the numbers do not
    depend on it (``num_threads=`` is the deprecated spelling).

    Returns
    -------
    dict
        As :func:`ranking_metrics`, plus ``k``.
    """
    model._check_fitted()
    threads = model._call_threads(n_threads, num_threads, "evaluate")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InputError(f"k must be a positive integer, got {k!r}")
    if not isinstance(test, Interactions):
        raise InputError("test must be an Interactions (e.g. from temporal_split)")
    extra = {}
    m = test.matrix
    has_test = np.diff(m.indptr) > 0
    test_rows = np.nonzero(has_test)[0].astype(np.int64)
    same = test.customers is model.customers_ and test.items is model.items_
    if same:
        model_rows = test_rows
        test_use = test
    else:
        model_rows = _lookup_ids(model.customers_,
                                 id_array(test.customers).take(pa.array(test_rows)))
        known = model_rows >= 0
        extra["customers_unknown"] = int(np.count_nonzero(~known))
        test_rows, model_rows = test_rows[known], model_rows[known]
        # re-express test columns as model item codes; unknown items stay as unreachable -1
        col_map = _lookup_ids(model.items_, test.items.ids())
        coo = m.tocoo()
        cols = col_map[coo.col]
        ok = cols >= 0
        extra["pairs_unknown_item"] = int(np.count_nonzero(~ok))
        mm = sp.csr_matrix((coo.data[ok], (coo.row[ok], cols[ok])),
                           shape=(m.shape[0], model.n_items))
        mm.sort_indices()
        test_use = mm
    seen = (model.seen_indptr_, model.seen_indices_) if exclude_seen else None
    # k beyond the item count: the same metrics as k = n_items (no list is longer)
    idx, _, _ = model._topn_rows(model_rows, min(int(k), model.n_items), seen,
                                 np.ones(1, np.uint8), False,
                                 n_threads=threads)
    res = ranking_metrics(idx, test_use, test_rows, n_threads=threads)
    res["k"] = int(k)
    res.update(extra)
    return res
