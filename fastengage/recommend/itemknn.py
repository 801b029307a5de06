"""Item-item nearest-neighbour recommenders (Sarwar et al. 2001, "Item-based collaborative
filtering recommendation algorithms"), as implicit's ``CosineRecommender`` and
``BM25Recommender``.

``sim(i, j) = sum_u W_ui W_uj`` over a weighted customer x item matrix W, keeping the ``K``
largest per item (the item itself included); a customer's score for item j is
``sum_{i in history} r_ui sim(i, j)``. Weighting of W:

* ``"cosine"``: each item column of the interaction values L2-normalised;
* ``"bm25"``: Okapi BM25 (Robertson et al. 1995) with items as documents and customers as
  terms: ``W_ui = r_ui (K1 + 1) / (K1 ((1 - B) + B |i| / avg|i|) + r_ui) * idf_u``,
  ``idf_u = log(n_items) - log(1 + n_items_of_u)``, ``|i|`` the item's total value.
"""
from __future__ import annotations

from functools import partial

import numpy as np
import scipy.sparse as sp

from ..errors import InputError, ModelFormatError
from ..kernels.recommend import knn as rec_knn
from ..kernels.recommend import topn as rec_topn
from ._base import Recommender
from ._compat import deprecated_threads

__all__ = ["ItemKNN"]


def _cosine_weight(m: sp.csr_matrix) -> sp.csr_matrix:
    coo = m.tocoo()
    data = coo.data.astype(np.float64)
    norms = np.sqrt(np.bincount(coo.col, data * data, minlength=m.shape[1]))
    return sp.csr_matrix((data / norms[coo.col], (coo.row, coo.col)), shape=m.shape)


def _bm25_weight(m: sp.csr_matrix, K1: float, B: float) -> sp.csr_matrix:
    coo = m.tocoo()
    data = coo.data.astype(np.float64)
    n_items = float(m.shape[1])
    idf = np.log(n_items) - np.log1p(np.bincount(coo.row, minlength=m.shape[0]))
    item_len = np.bincount(coo.col, data, minlength=m.shape[1])
    mean_len = item_len.mean() if item_len.size and item_len.any() else 1.0  # 0: no pairs
    length_norm = (1.0 - B) + B * item_len / mean_len
    w = data * (K1 + 1.0) / (K1 * length_norm[coo.col] + data) * idf[coo.row]
    return sp.csr_matrix((w, (coo.row, coo.col)), shape=m.shape)


class ItemKNN(Recommender):
    """Item-item neighbours recommender.

    Parameters
    ----------
    similarity : {"cosine", "bm25"}
    K : int
        Neighbours kept per item (implicit's default 20).
    K1, B : float
        BM25 parameters (implicit's defaults 1.2, 0.75).
    n_threads : int, optional
        Threads of the parallel kernels (default ``FASTENGAGE_NUM_THREADS``, else all cores;
        ``num_threads=`` is the deprecated spelling).

    Attributes
    ----------
    neighbours_ : int64 (n_items, K), -1 padded;  similarities_ : float64 (n_items, K)
    """

    kind = "recommend.itemknn"
    _params = ("similarity", "K", "K1", "B", "n_threads")

    def __init__(self, similarity: str = "cosine", K: int = 20, K1: float = 1.2, B: float = 0.75,
                 n_threads: int | None = None,
                 num_threads: int | None = None):
        super().__init__(n_threads=deprecated_threads(n_threads, num_threads), use_native=True)
        if similarity not in ("cosine", "bm25"):
            raise InputError(f'similarity must be "cosine" or "bm25", got {similarity!r}')
        if int(K) < 1:
            raise InputError(f"K must be >= 1, got {K}")
        self.similarity = similarity
        self.K = int(K)
        self.K1 = float(K1)
        self.B = float(B)

    def _fit(self, inter) -> None:
        self.neighbours_, self.similarities_, self.counts_ = self._neighbours(
            self.seen_indptr_, self.seen_indices_, self.seen_data_, inter.n_items,
            self._fit_threads)
        self._finalize()

    def _neighbours(self, indptr, indices, data, n_items, n_threads):
        """(neighbours, similarities, counts) of the interactions ``(indptr, indices, data)``."""
        m = sp.csr_matrix((data, indices, indptr), shape=(indptr.size - 1, n_items))
        w = _cosine_weight(m) if self.similarity == "cosine" else _bm25_weight(m, self.K1, self.B)
        w.sort_indices()
        wt = w.T.tocsr()
        wt.sort_indices()
        return rec_knn.item_knn(
            wt.indptr.astype(np.int64), wt.indices.astype(np.int64), wt.data.astype(np.float64),
            w.indptr.astype(np.int64), w.indices.astype(np.int64), w.data.astype(np.float64),
            n_items, self.K, n_threads=n_threads)

    def _forgotten_state(self, keep, seen):
        # the model keeps its training matrix: recompute, which is exactly a rebuild
        nbr, sim, count = self._neighbours(*seen, self.n_items, self.n_threads)
        return ({"neighbours_": nbr, "similarities_": sim, "counts_": count}, True,
                "seen rows and ids removed; item-item similarities recomputed from the "
                "remaining interactions (equal to a fit without these customers)",
                {"similarities": "recomputed"})

    def _finalize(self) -> None:
        mask = self.neighbours_ >= 0
        self._sim_indptr = np.concatenate([[0], np.cumsum(self.counts_)]).astype(np.int64)
        self._sim_indices = np.ascontiguousarray(self.neighbours_[mask], np.int64)
        self._sim_data = np.ascontiguousarray(self.similarities_[mask], np.float64)

    def _run(self, rows, hist, n, seen, allowed, use_allowed, n_threads):
        B = rows.size
        out_idx = np.empty((B, n), np.int64)
        out_score = np.empty((B, n), np.float32)
        out_count = np.empty(B, np.int64)
        h_indptr, h_indices, h_data = hist
        if seen is None:
            seen = (np.zeros(h_indptr.size, np.int64), np.zeros(0, np.int64))
        kernel = (rec_topn.knn_topn_serial if n_threads == 1
                  else partial(rec_topn.knn_topn, n_threads=n_threads))
        kernel(rows, h_indptr, h_indices, np.ascontiguousarray(h_data, np.float64), seen[0],
               seen[1], self._sim_indptr, self._sim_indices, self._sim_data, self.n_items,
               allowed, use_allowed, self._tiebreak, n, out_idx, out_score, out_count)
        return out_idx, out_score, out_count

    def _topn_rows(self, rows, n, seen, allowed, use_allowed, n_threads):
        hist = (self.seen_indptr_, self.seen_indices_, self.seen_data_)
        return self._run(rows, hist, n, seen, allowed, use_allowed, n_threads)

    def _topn_new(self, hist, n, seen, allowed, use_allowed, n_threads):
        rows = np.arange(hist[0].size - 1, dtype=np.int64)
        return self._run(rows, hist, n, seen, allowed, use_allowed, n_threads)

    def _similar(self, codes, n, allowed, use_allowed):
        # the stored K neighbours (as implicit's item-item models): a filter leaves fewer
        nbr, sim = self.neighbours_[codes], self.similarities_[codes]
        kept = nbr >= 0
        if use_allowed:
            kept &= allowed[np.maximum(nbr, 0)] != 0
            order = np.argsort(~kept, axis=1, kind="stable")  # kept first, in rank order
            nbr = np.take_along_axis(nbr, order, axis=1)
            sim = np.take_along_axis(sim, order, axis=1)
        count = np.minimum(kept.sum(axis=1), n)
        k = min(n, self.K)
        idx = np.full((codes.size, n), -1, np.int64)
        score = np.full((codes.size, n), np.nan, np.float32)
        idx[:, :k] = nbr[:, :k]
        score[:, :k] = sim[:, :k]
        return idx, score, count

    def _arrays(self) -> dict:
        return {"neighbours": self.neighbours_, "similarities": self.similarities_,
                "counts": self.counts_}

    def _file_layout(self):
        i64 = np.dtype(np.int64)
        return ({"neighbours": (i64, ("I", "K")), "similarities": (np.dtype(np.float64), ("I", "K")),
                 "counts": (i64, ("I",))}, {"K": self.K})

    def _check_file_arrays(self, arrays, dims) -> None:
        # _knn_scores_row writes acc[neighbour]: every stored neighbour must be an item code
        nbr, sim, counts = arrays["neighbours"], arrays["similarities"], arrays["counts"]
        n_items = dims["I"]

        def bad(member, problem):
            return ModelFormatError(f"{self.kind} file: member '{member}.npy' {problem}")

        if counts.size and (counts.min() < 0 or counts.max() > self.K):
            raise bad("counts", f"has neighbour counts outside 0..K={self.K}")
        used = np.arange(self.K)[None, :] < counts[:, None]
        if ((nbr < 0) | (nbr >= n_items))[used].any():
            raise bad("neighbours", f"has neighbour ids outside 0..{n_items - 1}")
        if (nbr[~used] != -1).any():
            raise bad("neighbours", "has entries past an item's count that are not -1 padding")
        if not np.isfinite(sim[used]).all():
            raise bad("similarities", "has similarities that are not finite")

    def _restore_arrays(self, arrays) -> None:
        self.neighbours_ = arrays["neighbours"]
        self.similarities_ = arrays["similarities"]
        self.counts_ = arrays["counts"]
        self._finalize()
