"""Scoring shared by the matrix-factorisation models (ALS, BPR): ``score_ui = x_u^T y_i``."""
from __future__ import annotations

import numpy as np

from .._persist import Bundle
from ..errors import ModelFormatError
from ._base import Recommender, topn_from_scores

# Score blocks of about this many entries (16 MB of float32): large enough for an efficient
# BLAS gemm, small enough to stay near the cache while the top-N kernel scans it.
_BLOCK_ENTRIES = 4_000_000


class MatrixFactorization(Recommender):
    """Base of ALS and BPR: holds ``user_factors_`` (n_customers, f) and ``item_factors_``
    (n_items, f)."""

    user_factors_: np.ndarray
    item_factors_: np.ndarray

    def _finalize(self) -> None:
        # one contiguous transposed copy, so every score block is a plain row-major gemm
        self._item_factors_T = np.ascontiguousarray(self.item_factors_.T)
        norms = np.linalg.norm(self.item_factors_.astype(np.float64), axis=1)
        self._item_norms = np.where(norms > 0, norms, 1.0)

    def _block(self) -> int:
        return max(16, _BLOCK_ENTRIES // max(1, self.n_items))

    def _topn_vectors(self, U: np.ndarray, rows_for_seen: np.ndarray, n, seen, allowed,
                      use_allowed, serial):
        VT = self._item_factors_T

        def score_block(s, e):
            return U[s:e] @ VT

        # the kernel indexes the seen CSR by rows_for_seen[b]; scores come from U[b]
        return topn_from_scores(score_block, rows_for_seen, n, seen, allowed, use_allowed,
                                self._tiebreak, serial, self._block(), native=self.use_native)

    def _topn_rows(self, rows, n, seen, allowed, use_allowed, serial):
        U = self.user_factors_
        VT = self._item_factors_T

        def score_block(s, e):
            return U[rows[s:e]] @ VT

        return topn_from_scores(score_block, rows, n, seen, allowed, use_allowed,
                                self._tiebreak, serial, self._block(), native=self.use_native)

    def _fold_in(self, hist) -> np.ndarray:  # pragma: no cover - per model
        raise NotImplementedError(f"{type(self).__name__} does not support fold-in")

    def _topn_new(self, hist, n, seen, allowed, use_allowed, serial):
        U = self._fold_in(hist)
        rows = np.arange(U.shape[0], dtype=np.int64)
        return self._topn_vectors(U, rows, n, seen, allowed, use_allowed, serial)

    def _similar(self, codes, n):
        V = self.item_factors_
        VT = self._item_factors_T
        norms = self._item_norms.astype(np.float32)

        def score_block(s, e):
            q = codes[s:e]
            return (V[q] @ VT) / (norms[q][:, None] * norms[None, :])

        one = np.ones(1, np.uint8)
        return topn_from_scores(score_block, codes, n, None, one, False, self._tiebreak,
                                codes.size <= 16, self._block(), native=self.use_native)

    def _arrays(self) -> dict:
        return {"user_factors": self.user_factors_, "item_factors": self.item_factors_}

    def _restore(self, b: Bundle) -> None:
        self.user_factors_ = np.ascontiguousarray(b.array("user_factors"))
        self.item_factors_ = np.ascontiguousarray(b.array("item_factors"))
        if self.user_factors_.shape[0] != self.n_customers or \
                self.item_factors_.shape[0] != self.n_items:
            raise ModelFormatError(f"{self.kind} file: factor shapes do not match the ids")
        self._finalize()
