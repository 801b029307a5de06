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
import pyarrow as pa
import pyarrow.compute as pc

from .._io.ids import string_buffers
from .._io.persist import Bundle
from ..errors import InputError, ModelFormatError
from ..kernels.recommend import heap as rec_heap
from ..kernels.recommend import serve as rec_serve
from ..kernels.recommend import topn as rec_topn
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

# Principal directions of the item factors in the single-customer serving bound.
SERVE_DIRECTIONS = 8

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
        self._serve = None

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

    # -- single-customer serving (one nogil kernel call per request) -----------------------
    def _serving(self):
        """Everything :meth:`recommend_one` passes to the serving kernel, built on its first
        call: ``(kind, lookup, static)`` where ``lookup`` holds the customer ids sorted for the
        kernel's binary search (int ids: keys and codes; string ids: offsets, UTF-8 bytes and
        the codes in byte order) and ``static`` the kernel's model arguments (see
        :func:`rec_serve.mf_topn_row`), among them the top ``SERVE_DIRECTIONS`` principal
        directions ``P`` of the item factors, ``P^T y`` and residual norms in the
        decreasing-norm order of ``_perm``, and what the kernel writes out per item (the
        integer item ids themselves, or codes for string ids, whose names are the last
        element)."""
        state = self._serve
        if state is not None:
            return state
        ids = self._customer_ids
        if self.customers_.kind == "int":
            values = np.ascontiguousarray(ids.to_numpy(zero_copy_only=False), np.int64)
            order = np.argsort(values, kind="stable").astype(np.int64)
            kind, lookup = "int", (np.ascontiguousarray(values[order]), order)
        else:
            strings = ids.cast(pa.large_string())
            offsets, data = string_buffers(strings)
            order = pc.sort_indices(strings).to_numpy().astype(np.int64)
            kind, lookup = "str", (np.ascontiguousarray(offsets), data, order)
        V = self.item_factors_
        Vs = V[self._perm].astype(np.float64)
        k = min(SERVE_DIRECTIONS, V.shape[1])
        _, vecs = np.linalg.eigh(Vs.T @ Vs)
        proj = np.ascontiguousarray(vecs[:, ::-1][:, :k])
        coords = Vs @ proj
        resid = np.linalg.norm(Vs - coords @ proj.T, axis=1) * (1.0 + 1e-6)
        if self.items_.kind == "int":
            item_out, item_names = np.ascontiguousarray(self._item_ids_numpy(), np.int64), None
        else:
            item_out, item_names = np.arange(self.n_items, dtype=np.int64), self._item_ids_numpy()
        static = (self.user_factors_, V, proj, np.ascontiguousarray(coords.T, V.dtype),
                  resid.astype(V.dtype), self._sorted_norms, self._perm, _SLACK,
                  self.seen_indptr_, self.seen_indices_, self._tiebreak, item_out)
        self._serve = state = (kind, lookup, static, item_names)
        return state

    def recommend_one(self, customer, n: int = 10,
                      exclude_seen: bool = True) -> tuple[np.ndarray, np.ndarray]:
        # Everything under the GIL is kept short: threads serving requests queue for it.
        if type(n) is not int or n < 1:
            n = self._check_n(n)
        if self.customers_ is None or not self.use_native:
            return super().recommend_one(customer, n, exclude_seen)
        kind, lookup, static, item_names = self._serve or self._serving()
        out_idx = np.empty(n, np.int64)
        out_score = np.empty(n, np.float32)
        count = -1
        if kind == "int" and isinstance(customer, (int, np.integer)) \
                and not isinstance(customer, bool):
            key = int(customer)
            if -2 ** 63 <= key < 2 ** 63:
                count = rec_serve.mf_topn_int(key, *lookup, *static, bool(exclude_seen),
                                              out_idx, out_score)
        elif kind == "str" and isinstance(customer, str):
            key = np.frombuffer(customer.encode("utf-8"), np.uint8)
            count = rec_serve.mf_topn_str(key, *lookup, *static, bool(exclude_seen),
                                          out_idx, out_score)
        else:
            self._check_one_id(customer)  # raises: an id of the other kind
        if count < 0:
            raise InputError(
                f"customer id {customer!r} is not in the model; use recommend_new() to "
                "recommend from their items without refitting")
        if count < n:
            out_idx, out_score = out_idx[:count], out_score[:count]
        if item_names is not None:  # string item ids: the kernel wrote codes
            return item_names[out_idx], out_score
        return out_idx, out_score

    recommend_one.__doc__ = Recommender.recommend_one.__doc__

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
