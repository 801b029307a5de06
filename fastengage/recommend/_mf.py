"""Scoring shared by the matrix-factorisation models (ALS, BPR): ``score_ui = x_u^T y_i``.

Top-n is exact but scores few items. Items are visited in decreasing factor norm, and two
bounds (see :func:`fastengage.kernels.recommend.serve.mf_topn_vec`) skip the items that cannot
enter a customer's top n: by Cauchy-Schwarz no later item scores above ``|x_u| * norm``, and a
projection on the top principal directions of the item factors bounds each item's score from
``k + 1`` floats. On implicit-feedback factors a few percent of the items need scoring.

Batch requests, fold-in and single-customer serving all run that one kernel (the batch one
spreads chunks of customers over ``n_threads`` threads), so a customer's answer is bit-identical
whatever the path and thread count, and no BLAS call is made: nothing process-wide (such as a
BLAS thread limit) is changed by a request.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .._io.ids import string_buffers
from ..errors import InputError, ModelFormatError
from ..kernels.common.config import RECOMMEND_SERIAL_MAX
from ..kernels.common.launch import resolve_threads
from ..kernels.recommend import serve as rec_serve
from ._base import Recommender
from ._ids import _as_id_array, _lookup_ids

#: relative margin of the pruning bounds (covers float rounding of the scores)
_SLACK = 1.0 + 1e-3

# Principal directions of the item factors in the pruning bound.
SERVE_DIRECTIONS = 8

# NumPy fallback (use_native=False): score blocks of about this many entries (16 MB of float32).
_BLOCK_ENTRIES = 4_000_000


class MatrixFactorization(Recommender):
    """Base of ALS and BPR: holds ``user_factors_`` (n_customers, f) and ``item_factors_``
    (n_items, f)."""

    user_factors_: np.ndarray
    item_factors_: np.ndarray

    def _finalize(self) -> None:
        norms = np.linalg.norm(self.item_factors_.astype(np.float64), axis=1)
        self._item_norms = np.where(norms > 0, norms, 1.0)
        self._perm = np.argsort(-norms, kind="stable").astype(np.int64)
        self._sorted_norms = norms[self._perm]
        self._bounds_cache = None
        self._serve = None
        self._item_count = self.item_factors_.shape[0]

    def _bounds(self):
        """``(P, P^T y, residual norms)`` of the pruning bound, in decreasing-norm order:
        ``P`` the top ``SERVE_DIRECTIONS`` principal directions of the item factors."""
        cached = self._bounds_cache
        if cached is None:
            V = self.item_factors_
            Vs = V[self._perm].astype(np.float64)
            k = min(SERVE_DIRECTIONS, V.shape[1])
            _, vecs = np.linalg.eigh(Vs.T @ Vs)
            proj = np.ascontiguousarray(vecs[:, ::-1][:, :k])
            coords = Vs @ proj
            resid = np.linalg.norm(Vs - coords @ proj.T, axis=1) * (1.0 + 1e-6)
            cached = (proj, np.ascontiguousarray(coords.T, V.dtype), resid.astype(V.dtype))
            self._bounds_cache = cached
        return cached

    def _topn_factors(self, U, urows, seen_rows, n, seen, allowed, use_allowed, n_threads):
        """Exact top-n of customers whose factors are ``U[urows[b]]``; ``seen_rows[b]`` is their
        row of the seen CSR ``seen`` (-1, or ``seen=None``: nothing excluded)."""
        B = urows.size
        out_idx, out_score, out_count = _topn_outputs(B, n)
        if seen is None:
            seen, seen_rows = _NOTHING_SEEN, np.full(B, -1, np.int64)
        proj, proj_T, resid = self._bounds()
        rec_serve.mf_topn_block(
            np.ascontiguousarray(U), urows, seen_rows, seen[0], seen[1], self.item_factors_,
            proj, proj_T, resid, self._sorted_norms, self._perm, _SLACK, allowed, use_allowed,
            self._tiebreak, out_idx, out_score, out_count, resolve_threads(n_threads),
            n_threads=n_threads)
        return out_idx, out_score, out_count

    # -- single-customer serving (one nogil kernel call per request) -----------------------
    def _serving(self):
        """Everything :meth:`recommend_one` passes to the serving kernel, built on its first
        call: ``(kind, server, item_names)`` where ``server`` (:class:`rec_serve.Server`) holds
        the customer ids sorted for its binary search (int ids: keys and codes; string ids:
        offsets, UTF-8 bytes and the codes in byte order) and the model arguments, among them
        the top ``SERVE_DIRECTIONS`` principal
        directions ``P`` of the item factors, ``P^T y`` and residual norms in the
        decreasing-norm order of ``_perm``, and what the kernel writes out per item (the
        integer item ids themselves, or codes for string ids, whose names are the last
        element)."""
        with self._rw.read():  # never built from a half-swapped state (see forget)
            state = self._serve
            if state is None:
                state = self._build_serving()
                self._serve = state
        return state

    def _build_serving(self):
        ids = self._customer_ids
        if self.customers_.kind == "int":
            values = np.ascontiguousarray(ids.to_numpy(zero_copy_only=False), np.int64)
            order = np.argsort(values, kind="stable").astype(np.int64)
            # uint64 ids as their int64 bits (recommend_one converts a key the same way)
            kind = "uint64" if pa.types.is_uint64(self.customers_.type) else "int"
            lookup = (np.ascontiguousarray(values[order]), order)
        else:
            strings = ids.cast(pa.large_string())
            offsets, data = string_buffers(strings)
            order = pc.sort_indices(strings).to_numpy().astype(np.int64)
            kind, lookup = "str", (np.ascontiguousarray(offsets), data, order)
        V = self.item_factors_
        proj, proj_T, resid = self._bounds()
        self._unsigned_items = pa.types.is_uint64(self.items_.type)
        if self.items_.kind == "int":
            # uint64 item ids as their int64 bits, viewed back as uint64 by recommend_one
            item_out = np.ascontiguousarray(self._item_ids_numpy().astype(np.int64, copy=False))
            item_names = None
        else:
            item_out, item_names = np.arange(self.n_items, dtype=np.int64), self._item_ids_numpy()
        server = rec_serve.Server(lookup, self.user_factors_, V, proj, proj_T, resid,
                                  self._sorted_norms, self._perm, _SLACK, self.seen_indptr_,
                                  self.seen_indices_, self._tiebreak, item_out)
        return kind, server, item_names

    def recommend_one(self, customer, n: int = 10,
                      exclude_seen: bool = True) -> tuple[np.ndarray, np.ndarray]:
        # Everything under the GIL is kept short: threads serving requests queue for it.
        if self.customers_ is None or not self.use_native:
            return super().recommend_one(customer, n, exclude_seen)
        if type(n) is not int or n < 1 or n > self._item_count:
            n = self._check_n(n)  # checked, capped at the item count
        kind, server, item_names = self._serve or self._serving()
        out_idx = np.empty(n, np.int64)
        out_score = np.empty(n, np.float32)
        count = -1
        if kind != "str" and isinstance(customer, (int, np.integer)) \
                and not isinstance(customer, bool):
            key = int(customer)
            if kind == "uint64":  # the server holds uint64 ids as their int64 bits;
                # a negative key is no uint64 id (2 ** 63: out of range, not in the model)
                key = key if 0 <= key < 2 ** 63 else (key - 2 ** 64 if 0 <= key < 2 ** 64
                                                      else 2 ** 63)
            if -2 ** 63 <= key < 2 ** 63:
                count = server.topn_int(key, bool(exclude_seen), out_idx, out_score)
        elif kind == "str" and isinstance(customer, str):
            count = server.topn_str(customer.encode("utf-8"), bool(exclude_seen), out_idx,
                                    out_score)
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
        if self._unsigned_items:  # the kernel wrote the uint64 ids' int64 bits
            return out_idx.view(np.uint64), out_score
        return out_idx, out_score

    recommend_one.__doc__ = Recommender.recommend_one.__doc__

    def _topn_rows(self, rows, n, seen, allowed, use_allowed, n_threads):
        if not self.use_native:
            U = self.user_factors_
            return _numpy_topn(lambda s, e: U[rows[s:e]] @ self.item_factors_.T, rows, n, seen,
                               allowed, use_allowed, self._tiebreak, self._block())
        return self._topn_factors(self.user_factors_, rows, rows, n, seen, allowed,
                                  use_allowed, n_threads)

    def _fold_in(self, hist, n_threads=None) -> np.ndarray:  # pragma: no cover - per model
        raise NotImplementedError(f"{type(self).__name__} does not support fold-in")

    def _topn_new(self, hist, n, seen, allowed, use_allowed, n_threads):
        U = self._fold_in(hist, n_threads)
        rows = np.arange(U.shape[0], dtype=np.int64)
        if not self.use_native:
            return _numpy_topn(lambda s, e: U[s:e] @ self.item_factors_.T, rows, n, seen,
                               allowed, use_allowed, self._tiebreak, self._block())
        return self._topn_factors(U, rows, rows, n, seen, allowed, use_allowed, n_threads)

    def _block(self) -> int:
        return max(16, _BLOCK_ENTRIES // max(1, self.n_items))

    def _similar(self, codes, n, allowed, use_allowed):
        V = self.item_factors_
        norms = self._item_norms.astype(V.dtype)
        if not self.use_native:
            def score_block(s, e):
                q = codes[s:e]
                return (V[q] @ V.T) / (norms[q][:, None] * norms[None, :])
            return _numpy_topn(score_block, codes, n, None, allowed, use_allowed,
                               self._tiebreak, self._block())
        B = codes.size
        out_idx = np.empty((B, n), np.int64)
        out_score = np.empty((B, n), np.float32)
        out_count = np.empty(B, np.int64)
        n_threads = 1 if B <= RECOMMEND_SERIAL_MAX else self.n_threads
        rec_serve.mf_similar(V, norms, codes, allowed, use_allowed, self._tiebreak, out_idx,
                             out_score, out_count, resolve_threads(n_threads),
                             n_threads=n_threads)
        return out_idx, out_score, out_count

    def similar_customers(self, customers, n: int = 10, *, candidates=None,
                          exclude_customers=None) -> pa.Table:
        """The ``n`` customers whose factors are closest in cosine to each of ``customers``
        (the customer itself included), implicit's ``similar_users``; ``candidates`` (ids of
        the model) restricts the answers, ``exclude_customers`` (unknown ids ignored) leaves
        customers out.

        Returns
        -------
        pyarrow.Table
            ``customer``, ``rank`` (int32), ``similar_customer``, ``score`` (float32, cosine).
        """
        self._check_fitted()
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise InputError(f"n must be a positive integer, got {n!r}")
        with self._rw.read():
            U = self.user_factors_
            n = min(int(n), U.shape[0])
            rows = self._customer_rows(customers)
            allowed, use_allowed = np.ones(1, np.uint8), False
            if candidates is not None or exclude_customers is not None:
                allowed, use_allowed = np.ones(U.shape[0], np.uint8), True
                if candidates is not None:
                    allowed[:] = 0
                    allowed[self._customer_rows(candidates)] = 1
                if exclude_customers is not None:
                    codes = _lookup_ids(self.customers_, _as_id_array(
                        exclude_customers, "customer", self.customers_.type))
                    allowed[codes[codes >= 0]] = 0
            norms = np.linalg.norm(U.astype(np.float64), axis=1)
            norms = np.where(norms > 0, norms, 1.0).astype(U.dtype)
            out_idx, out_score, out_count = _topn_outputs(rows.size, n)
            threads = 1 if rows.size <= RECOMMEND_SERIAL_MAX else self.n_threads
            # equal scores: the lower customer code (first seen) first
            rec_serve.mf_similar(U, norms, rows, allowed, use_allowed,
                                 np.arange(U.shape[0], dtype=np.int64), out_idx, out_score,
                                 out_count, resolve_threads(threads), n_threads=threads)
            ids = self._customer_ids
            return self._table(ids.take(pa.array(rows)), out_idx, out_score, out_count,
                               second="similar_customer", second_ids=ids)

    def _forgotten_state(self, keep, seen):
        """(attributes, exact, notes, details) after forgetting the rows not in ``keep``; the
        item side is kept as it is (BPR; ALS re-solves it)."""
        users = np.ascontiguousarray(self.user_factors_[keep])
        return ({"user_factors_": users}, False,
                "user factors, seen rows and ids removed; the item factors still carry the "
                "gradient steps the forgotten customers' samples contributed (refit to remove "
                "them)", {"item_factors": "kept"})

    def _arrays(self) -> dict:
        return {"user_factors": self.user_factors_, "item_factors": self.item_factors_}

    #: columns of the factor matrices beyond ``factors`` (BPR's bias column)
    _extra_columns = 0

    def _file_layout(self):
        dtype = np.dtype(self.dtype)
        return ({"user_factors": (dtype, ("C", "W")), "item_factors": (dtype, ("I", "W"))},
                {"W": self.factors + self._extra_columns})

    def _check_file_arrays(self, arrays, dims) -> None:
        for name in ("user_factors", "item_factors"):
            if not np.isfinite(arrays[name]).all():
                raise ModelFormatError(f"{self.kind} file: member '{name}.npy' has values that "
                                       "are not finite")

    def _restore_arrays(self, arrays) -> None:
        self.user_factors_ = arrays["user_factors"]
        self.item_factors_ = arrays["item_factors"]
        self._finalize()


#: An empty "seen" CSR (indptr, indices): nothing is excluded.
_NOTHING_SEEN = (np.zeros(2, np.int64), np.zeros(0, np.int64))


def _topn_outputs(rows: int, n: int):
    """Caller-owned outputs of a top-n kernel: item indices, scores, counts per row."""
    return np.empty((rows, n), np.int64), np.empty((rows, n), np.float32), np.empty(rows, np.int64)


def _numpy_topn(score_block, rows, n, seen, allowed, use_allowed, tiebreak, block):
    """The NumPy fallback (``use_native=False``): score blocks of rows with NumPy and select
    with :func:`fastengage.kernels.recommend.vectorized.topn_block`, on the calling thread."""
    from ..kernels.recommend import vectorized as rec_numpy

    B = rows.size
    out_idx, out_score, out_count = _topn_outputs(B, n)
    if seen is None:
        seen, seen_rows = _NOTHING_SEEN, np.full(B, -1, np.int64)
    else:
        seen_rows = rows
    for start in range(0, B, block):
        stop = min(B, start + block)
        scores = np.ascontiguousarray(score_block(start, stop), dtype=np.float32)
        rec_numpy.topn_block(scores, seen_rows[start:stop], seen[0], seen[1], allowed,
                             use_allowed, tiebreak, n, out_idx[start:stop],
                             out_score[start:stop], out_count[start:stop])
    return out_idx, out_score, out_count
