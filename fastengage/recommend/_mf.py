"""Scoring shared by the matrix-factorisation models (ALS, BPR): ``score_ui = x_u^T y_i``.

Batch top-N is exact but skips most of the score matrix. Items are visited in blocks of
decreasing factor norm; by Cauchy-Schwarz no item of a block can score above
``|x_u| * max_norm(block)``, so once a customer's n-th best candidate beats that bound (with a
1e-3 relative margin that covers float rounding) the remaining blocks cannot change the answer
and the customer leaves the gemm. On implicit-feedback factors a few percent of the items
typically need scoring (popular items have the largest norms and fill the top-N first).
"""
from __future__ import annotations

import concurrent.futures as cf

import numba
import numpy as np

from .._persist import Bundle
from ..errors import ModelFormatError
from ..kernels import rec_heap, rec_topn
from ._base import Recommender, _single_thread_blas, topn_from_scores

# The heap kernels: Cython (compiled ahead, so a service's first request has no JIT warm-up)
# by default; the Numba twins give the same results and are kept as a cross-check.
HEAP_KERNELS = {
    "cython": (rec_heap.topn_update, rec_heap.heap_finalize),
    "numba": (rec_topn.topn_update, rec_topn.heap_finalize),
}

_USER_BLOCK = 256
_FIRST_ITEM_BLOCK = 512
_SLACK = 1.0 + 1e-3

# Score blocks of about this many entries (16 MB of float32): large enough for an efficient
# BLAS gemm, small enough to stay near the cache while the top-N kernel scans it.
_BLOCK_ENTRIES = 4_000_000


class MatrixFactorization(Recommender):
    """Base of ALS and BPR: holds ``user_factors_`` (n_customers, f) and ``item_factors_``
    (n_items, f)."""

    user_factors_: np.ndarray
    item_factors_: np.ndarray
    #: items in the first pruning block, and the growth factor of the later ones
    first_item_block = _FIRST_ITEM_BLOCK
    block_growth = 1.5
    #: "cython" or "numba" (see HEAP_KERNELS)
    heap_kernel = "cython"

    def _finalize(self) -> None:
        # one contiguous transposed copy, so every score block is a plain row-major gemm
        self._item_factors_T = np.ascontiguousarray(self.item_factors_.T)
        norms = np.linalg.norm(self.item_factors_.astype(np.float64), axis=1)
        self._item_norms = np.where(norms > 0, norms, 1.0)
        self._perm = np.argsort(-norms, kind="stable").astype(np.int64)
        self._sorted_T = np.ascontiguousarray(self.item_factors_[self._perm].T)
        self._sorted_norms = norms[self._perm]
        bounds = [0]
        size = float(self.first_item_block)
        while bounds[-1] < norms.size:
            bounds.append(min(norms.size, bounds[-1] + int(size)))
            size *= self.block_growth
        self._item_blocks = list(zip(bounds[:-1], bounds[1:]))

    def _pruned_block(self, U, seen_rows, n, seen_indptr, seen_indices, allowed, use_allowed,
                      out_idx, out_score, out_count):
        update, finalize = HEAP_KERNELS[self.heap_kernel]
        B = U.shape[0]
        hs = np.empty((B, n), U.dtype)
        hi = np.empty((B, n), np.int64)
        size = np.zeros(B, np.int64)
        unorm = np.linalg.norm(U.astype(np.float64), axis=1) * _SLACK
        active = np.arange(B, dtype=np.int64)
        for a, b in self._item_blocks:
            if a > 0:
                bound = unorm[active] * self._sorted_norms[a]
                need = (size[active] < n) | (bound >= hs[active, 0])
                active = active[need]
                if active.size == 0:
                    break
            scores = U[active] @ self._sorted_T[:, a:b]
            update(scores, active, seen_rows, self._perm[a:b], seen_indptr, seen_indices,
                   allowed, use_allowed, self._tiebreak, hs, hi, size)
        finalize(hs, hi, size, self._tiebreak, out_idx, out_score, out_count)

    def _pruned_topn(self, get_u, seen_rows, n, seen, allowed, use_allowed, serial):
        """Exact top-n of customers whose factors are ``get_u(start, stop)``; ``seen_rows[b]``
        is the seen-CSR row of customer b (-1: none)."""
        B = seen_rows.size
        out_idx = np.empty((B, n), np.int64)
        out_score = np.empty((B, n), np.float32)
        out_count = np.empty(B, np.int64)
        if seen is None:
            seen = (np.zeros(2, np.int64), np.zeros(0, np.int64))
            seen_rows = np.full(B, -1, np.int64)

        def run(start):
            stop = min(B, start + _USER_BLOCK)
            self._pruned_block(np.ascontiguousarray(get_u(start, stop)), seen_rows[start:stop],
                               n, seen[0], seen[1], allowed, use_allowed,
                               out_idx[start:stop], out_score[start:stop],
                               out_count[start:stop])

        starts = range(0, B, _USER_BLOCK)
        workers = numba.get_num_threads()
        if serial or workers <= 1 or len(starts) <= 1:
            for start in starts:
                run(start)
        else:
            with _single_thread_blas(), cf.ThreadPoolExecutor(workers) as pool:
                for fut in [pool.submit(run, start) for start in starts]:
                    fut.result()
        return out_idx, out_score, out_count

    def _block(self) -> int:
        return max(16, _BLOCK_ENTRIES // max(1, self.n_items))

    def _topn_vectors(self, U: np.ndarray, rows_for_seen: np.ndarray, n, seen, allowed,
                      use_allowed, serial):
        if self.use_native:
            return self._pruned_topn(lambda s, e: U[s:e], rows_for_seen, n, seen, allowed,
                                     use_allowed, serial)
        VT = self._item_factors_T

        def score_block(s, e):
            return U[s:e] @ VT

        # the kernel indexes the seen CSR by rows_for_seen[b]; scores come from U[b]
        return topn_from_scores(score_block, rows_for_seen, n, seen, allowed, use_allowed,
                                self._tiebreak, serial, self._block(), native=self.use_native)

    def _topn_rows(self, rows, n, seen, allowed, use_allowed, serial):
        U = self.user_factors_
        if self.use_native:
            return self._pruned_topn(lambda s, e: U[rows[s:e]], rows, n, seen, allowed,
                                     use_allowed, serial)
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
