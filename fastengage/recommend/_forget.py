"""``forget(customers)`` for recommenders and :class:`Interactions` (issue #14 part 3), following
the protocol of :mod:`fastengage.privacy.forget`.

What is removed, for every model: the customers' rows of the seen (training) matrix, their
user factors (ALS, BPR) and their entries of the customer id map, which is rebuilt without them
by :func:`~fastengage.privacy.forget.drop_ids` (every other customer keeps its relative order,
so new code ``i`` is the ``i``-th kept row). Items are kept, also an item only a forgotten
customer had: item ids are the catalogue, not personal data, and keeping the item codes is what
makes the ItemKNN result exactly a rebuild. What each model then does with its item side:

* ``ALS``: the item factors are re-solved, exactly (Cholesky, whatever the model's solver),
  from the remaining customers' interactions and their current user factors: one item
  half-step of the fit (paper eq. 4 with users fixed) on the data without the forgotten
  customers. "Exact" means exactly that: the new item factors are the unique minimiser of the
  objective over item factors given the remaining interactions and user factors, and hold no
  term of the forgotten customers. It is NOT equal to refitting from scratch: the remaining
  user factors were solved in earlier iterations against item factors that the forgotten
  customers had influenced, and they are kept as they are.
* ``ItemKNN``: the similarities are recomputed from the remaining interactions (the model keeps
  its training matrix), so the model equals ``ItemKNN(...).fit`` on the interactions without
  those customers, bit for bit: exact.
* ``BPR``: the item factors (and biases) keep the SGD steps the forgotten customers' triples
  contributed; removing them would need a refit. Approximate (``exact=False``).

Concurrency: the new arrays are computed first, without blocking anybody; then one short write
section of :class:`ServingLock` swaps the model's state (waiting for calls in flight, holding
new ones back). Batch calls and ``save`` hold the read side for their whole call; the
single-customer serving path reads its immutable serving tuple in one step, so a request sees
the model entirely before or entirely after a ``forget``.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager

from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

if TYPE_CHECKING:  # imported when a forget runs: importing recommend stays as fast as before
    from ..privacy.forget import AuditRecord

__all__ = ["ServingLock", "forget_model", "forget_interactions", "keep_rows"]


class ServingLock:
    """Readers (recommend, save, building the serving state) share it; a writer (forget's swap)
    waits for the readers in flight and holds new ones back meanwhile. Reads never nest, so
    holding readers back while a writer waits cannot deadlock."""

    def __init__(self):
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._writer = False
        #: serialises whole forget calls (computation included)
        self.forgetting = threading.Lock()

    @contextmanager
    def read(self):
        with self._cond:
            while self._writer:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if self._readers == 0:
                    self._cond.notify_all()

    @contextmanager
    def write(self):
        with self._cond:
            while self._writer:
                self._cond.wait()
            self._writer = True
            while self._readers:
                self._cond.wait()
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


def keep_rows(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, keep: np.ndarray):
    """The CSR rows where ``keep`` (bool per row) is set, in order: new arrays, the inputs are
    left as they are."""
    lengths = np.diff(indptr)
    new_indptr = np.zeros(int(keep.sum()) + 1, np.int64)
    np.cumsum(lengths[keep], out=new_indptr[1:])
    entries = np.repeat(keep, lengths)
    return (new_indptr, np.ascontiguousarray(indices[entries], np.int64),
            np.ascontiguousarray(data[entries]))


def forget_model(model, customers, request: str | None) -> AuditRecord:
    """The body of ``Recommender.forget``; the model-specific part is
    ``model._forgotten_state(keep, seen) -> (attributes, exact, notes, details)``."""
    from ..privacy.forget import audit, codes_of, drop_ids

    model._check_fitted()
    name = type(model).__name__
    lock = model._rw
    with lock.forgetting:
        codes, requested = codes_of(model.customers_, customers)
        if codes.size == 0:
            return audit(name, requested=requested, found=0, exact=True, request=request,
                         notes="none of the customers is in the model; nothing changed")
        encoder, remap = drop_ids(model.customers_, codes)
        keep = remap >= 0
        seen = keep_rows(model.seen_indptr_, model.seen_indices_, model.seen_data_, keep)
        removed = int(model.seen_indices_.size - seen[1].size)
        state, exact, notes, details = model._forgotten_state(keep, seen)
        with lock.write():
            model.customers_ = encoder
            model.seen_indptr_, model.seen_indices_, model.seen_data_ = seen
            for key, value in state.items():
                setattr(model, key, value)
            model._cache_ids()
            model._finalize()
    return audit(name, requested=requested, found=int(codes.size), rows_removed=removed,
                 exact=exact, notes=notes, request=request,
                 customers_left=int(keep.sum()), **details)


def forget_interactions(inter, customers, request: str | None) -> AuditRecord:
    """The body of ``Interactions.forget``: the customers' rows and ids are removed; items (the
    columns) are kept. Exact: equal to the matrix built without their events, with the
    remaining customers in the same order."""
    from ..privacy.forget import audit, codes_of, drop_ids

    codes, requested = codes_of(inter.customers, customers)
    if codes.size == 0:
        return audit("Interactions", requested=requested, found=0, exact=True, request=request,
                     notes="none of the customers is in the matrix; nothing changed")
    encoder, remap = drop_ids(inter.customers, codes)
    keep = remap >= 0
    indptr, indices, data = keep_rows(*inter.csr_arrays(), keep)
    matrix = sp.csr_matrix((data, indices, indptr), shape=(int(keep.sum()), inter.n_items))
    matrix.has_sorted_indices = True
    removed = inter.nnz - matrix.nnz
    inter.matrix, inter.customers = matrix, encoder
    return audit("Interactions", requested=requested, found=int(codes.size),
                 rows_removed=removed, exact=True, request=request,
                 notes="rows and ids of the customers removed; items kept",
                 customers_left=int(keep.sum()))
