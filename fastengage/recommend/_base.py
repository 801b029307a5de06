"""The shape every recommender shares: fit on interactions, batch top-N, fold-in, similar items,
save/load. Subclasses supply how a block of customers is scored.

Output tables (stable column names):

* :meth:`Recommender.recommend` / :meth:`Recommender.recommend_new` ->
  ``customer`` (user's id type), ``rank`` (int32, 1 = best), ``item`` (user's id type),
  ``score`` (float32, model-specific scale; higher is better);
* :meth:`Recommender.similar_items` -> ``item``, ``rank``, ``similar_item``, ``score``.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from .._io import columns as _cols
from .._io.ids import IdEncoder, id_kind
from .._io.sources import open_source
from ..errors import InputError
from ..kernels.common.config import RECOMMEND_SERIAL_MAX
from ..kernels.recommend import csr as rec_csr
from ._compat import deprecated_threads, positional
from ._forget import ServingLock, forget_model
from ._persist import (load_model, model_file_parts, recommender_from_bytes, save_model,
                       to_bytes)
from ._ids import _as_id_array, _lookup_ids
from .interactions import Interactions, _apply_weighting, id_array

__all__ = ["Recommender"]


class Recommender:
    """Base class: see :class:`~fastengage.recommend.ALS`, :class:`~fastengage.recommend.BPR`,
    :class:`~fastengage.recommend.ItemKNN`."""

    kind = "recommend.base"
    version = 1
    _params: tuple[str, ...] = ()

    def __init__(self, n_threads: int | None = None, use_native: bool = True):
        if n_threads is not None and (isinstance(n_threads, bool) or
                                      not isinstance(n_threads, (int, np.integer)) or n_threads < 1):
            raise InputError(f"n_threads must be None or a positive integer, got {n_threads!r}")
        self.n_threads = None if n_threads is None else int(n_threads)
        self._fit_threads = self.n_threads
        self.use_native = use_native
        self.customers_: IdEncoder | None = None
        self.items_: IdEncoder | None = None
        self._rw = ServingLock()  # calls read the fitted state; forget() swaps it

    # -- fitting ---------------------------------------------------------------------------
    def fit(self, data, *args, customer: str | None = None, item: str | None = None,
            weight: str | None = None, weighting: str | None = None,
            log_epsilon: float = 1.0, n_threads: int | None = None,
            num_threads: int | None = None, consent=None) -> "Recommender":
        """Fit on transactions or on a prebuilt :class:`Interactions`.

        Parameters
        ----------
        data : Interactions or any input of the Arrow layer
        customer, item : str
            Id columns, keyword-only (required unless ``data`` is an Interactions; passing
            them by position is deprecated).
        weight, weighting, log_epsilon
            See :meth:`Interactions.from_data`.
        n_threads : int, optional
            Threads of this fit (default: the model's ``n_threads``).
        consent : fastengage.privacy.ConsentFilter, optional
            Fit only on events of customers with consent (see :meth:`Interactions.from_data`).
        """
        cols = positional("fit", args, ("customer", "item", "weight", "weighting", "log_epsilon"),
                          {"customer": customer, "item": item, "weight": weight,
                           "weighting": weighting})
        cols.setdefault("log_epsilon", log_epsilon)
        self._fit_threads = self._call_threads(n_threads, num_threads)
        if isinstance(data, Interactions):
            if consent is not None:
                raise InputError("consent= applies to events; an Interactions is already built "
                                 "(pass consent= to Interactions.from_data)")
            inter = data
        else:
            if cols["customer"] is None or cols["item"] is None:
                raise InputError("fit() needs customer= and item= column names")
            inter = Interactions.from_data(data, **cols, consent=consent)
        if inter.nnz == 0:
            raise InputError("cannot fit a recommender on an empty interaction matrix")
        self._set_training(inter)
        self._fit(inter)
        return self

    def _call_threads(self, n_threads, num_threads, where="recommenders") -> int | None:
        """Threads of one call: its ``n_threads=`` (``num_threads=`` deprecated), else the
        model's."""
        n = deprecated_threads(n_threads, num_threads, where)
        if n is None:
            return self.n_threads
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise InputError(f"n_threads must be None or a positive integer, got {n!r}")
        return int(n)

    def _set_training(self, inter: Interactions) -> None:
        self.customers_ = inter.customers
        self.items_ = inter.items
        self.weighting_ = inter.weighting
        self.log_epsilon_ = inter.log_epsilon
        self.seen_indptr_, self.seen_indices_, self.seen_data_ = inter.csr_arrays()
        self._cache_ids()

    def _cache_ids(self) -> None:
        self._customer_ids = id_array(self.customers_)
        self._item_ids = id_array(self.items_)
        self._item_ids_np = None
        # equal scores are ordered by training popularity (customers per item), then by code
        popularity = np.bincount(self.seen_indices_, minlength=len(self._item_ids))
        order = np.argsort(-popularity, kind="stable")
        self._tiebreak = np.empty(order.size, np.int64)
        self._tiebreak[order] = np.arange(order.size)

    def _fit(self, inter: Interactions) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def n_customers(self) -> int:
        return self.seen_indptr_.size - 1

    @property
    def n_items(self) -> int:
        return len(self._item_ids)

    def _check_fitted(self) -> None:
        if self.customers_ is None:
            raise InputError(f"this {type(self).__name__} is not fitted yet; call fit() first")

    # -- scoring hooks (subclasses) ----------------------------------------------------------
    def _topn_rows(self, rows: np.ndarray, n: int, seen: tuple, allowed: np.ndarray,
                   use_allowed: bool, n_threads: int | None):
        """Top-n of the model's customers ``rows`` (int64 codes) on ``n_threads`` threads (1:
        on the calling thread only)."""
        raise NotImplementedError

    def _topn_new(self, hist: tuple, n: int, seen: tuple, allowed: np.ndarray,
                  use_allowed: bool, n_threads: int | None):
        """Top-n of new histories ``hist`` = (indptr, indices, values) (fold-in)."""
        raise NotImplementedError

    # -- id handling -------------------------------------------------------------------------
    def _customer_rows(self, customers) -> np.ndarray:
        if customers is None:
            return np.arange(self.n_customers, dtype=np.int64)
        arr = _as_id_array(customers, "customer", self.customers_.type)
        if len(arr) == 0:
            return np.empty(0, np.int64)
        kind = id_kind(arr.type, self.customers_.column, "customer")
        if kind != self.customers_.kind:
            raise InputError(f"customer ids of type {arr.type} given, but the model's customer "
                             f"ids are of type {self.customers_.type}")
        codes = _lookup_ids(self.customers_, arr)
        unknown = int(np.count_nonzero(codes < 0))
        if unknown:
            examples = arr.filter(pa.array(codes < 0))[:3].to_pylist()
            raise InputError(
                f"{unknown} customer id(s) are not in the model (e.g. {examples}); use "
                "recommend_new() to recommend from their items without refitting")
        return codes

    def _item_codes(self, items, role: str, strict: bool) -> np.ndarray:
        arr = _as_id_array(items, "item", self.items_.type)
        if len(arr) == 0:
            return np.empty(0, np.int64)
        codes = _lookup_ids(self.items_, arr)
        if strict and (codes < 0).any():
            unknown = int(np.count_nonzero(codes < 0))
            examples = arr.filter(pa.array(codes < 0))[:3].to_pylist()
            raise InputError(f"{role}: {unknown} item id(s) are not in the model (e.g. {examples})")
        return codes[codes >= 0]

    def _allowed(self, items, exclude_items, items_role="items=") -> tuple[np.ndarray, bool]:
        if items is None and exclude_items is None:
            return np.ones(1, np.uint8), False
        allowed = np.ones(self.n_items, np.uint8)
        if items is not None:
            allowed[:] = 0
            allowed[self._item_codes(items, items_role, strict=True)] = 1
        if exclude_items is not None:
            # excluding an item the model does not know is a no-op, not an error
            allowed[self._item_codes(exclude_items, "exclude_items=", strict=False)] = 0
        return allowed, True

    def _check_n(self, n) -> int:
        """``n`` checked, and capped at the number of items: no answer is longer, and the
        outputs are allocated ``n`` wide (implicit issue #22: N beyond the item count)."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise InputError(f"n must be a positive integer, got {n!r}")
        return min(int(n), self.n_items)

    def _table(self, customer_ids: pa.Array, idx: np.ndarray, score: np.ndarray,
               count: np.ndarray, first: str = "customer", second: str = "item",
               metadata: dict | None = None, second_ids: pa.Array | None = None) -> pa.Table:
        n = idx.shape[1]
        second_ids = self._item_ids if second_ids is None else second_ids
        mask = np.arange(n)[None, :] < count[:, None]
        owner = np.repeat(np.arange(len(customer_ids), dtype=np.int64), count)
        rank = np.broadcast_to(np.arange(1, n + 1, dtype=np.int32), idx.shape)[mask]
        table = pa.table({
            first: customer_ids.take(pa.array(owner)),
            "rank": pa.array(rank, pa.int32()),
            second: second_ids.take(pa.array(idx[mask])),
            "score": pa.array(score[mask].astype(np.float32)),
        })
        if metadata:
            table = table.replace_schema_metadata({k: str(v) for k, v in metadata.items()})
        return table

    # -- public API ----------------------------------------------------------------------------
    def recommend(self, customers=None, n: int = 10, exclude_seen: bool = True, items=None,
                  exclude_items=None, *, n_threads: int | None = None,
                  num_threads: int | None = None) -> pa.Table:
        """Top-``n`` items for customers of the model.

        Parameters
        ----------
        customers : sequence, pyarrow.Array or scalar of customer ids, optional
            Default: every customer of the training data, in code (first-seen) order.
        n : int
            Results per customer: exactly ``n`` whenever at least ``n`` candidate items exist
            (candidates = allowed items minus seen items), else all candidates. Equal scores
            (e.g. a customer with no history) are ordered by the items' training popularity.
        exclude_seen : bool
            Never return an item the customer has in the training data.
        items : sequence of item ids, optional
            Rank only these items (all must be in the model).
        exclude_items : sequence of item ids, optional
            Never return these items (unknown ids are ignored).
        n_threads : int, optional
            Threads of this call (default: the model's ``n_threads``). Requests for at most
            ``RECOMMEND_SERIAL_MAX`` customers run on the calling thread. The answer does not
            depend on it.

        Returns
        -------
        pyarrow.Table
            ``customer``, ``rank`` (int32, 1 = best), ``item``, ``score`` (float32), sorted by
            customer (in the order asked) then rank.
        """
        self._check_fitted()
        n = self._check_n(n)
        threads = self._call_threads(n_threads, num_threads)
        with self._rw.read():
            rows = self._customer_rows(customers)
            allowed, use_allowed = self._allowed(items, exclude_items)
            seen = (self.seen_indptr_, self.seen_indices_) if exclude_seen else None
            idx, score, count = self._topn_rows(
                rows, n, seen, allowed, use_allowed,
                n_threads=1 if rows.size <= RECOMMEND_SERIAL_MAX else threads)
            return self._table(self._customer_ids.take(pa.array(rows)), idx, score, count)

    def recommend_one(self, customer, n: int = 10,
                      exclude_seen: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Top-``n`` items for one customer of the model, as NumPy arrays (the serving path).

        Meant for a service answering one customer per request, possibly from many threads:
        no Arrow table is built, and for ALS and BPR the whole request (id lookup, scoring,
        seen-item filtering, top-n) is a single compiled call that releases the GIL, so
        requests from several threads run on several cores. Results are those of
        ``recommend([customer], n, exclude_seen)``, bit for bit (the same kernel scores both).

        Parameters
        ----------
        customer : int or str
            One customer id of the training data (same kind as the model's ids).
        n : int
            Number of items: exactly ``n`` whenever at least ``n`` candidates exist.
        exclude_seen : bool
            Never return an item the customer has in the training data.

        Returns
        -------
        items : numpy.ndarray
            Item ids, best first: int64 for integer ids, ``object`` (``str``) for string ids.
        scores : numpy.ndarray
            float32 scores, same length.

        Raises
        ------
        InputError
            If the customer is not in the model (use :meth:`recommend_new` for new customers).
        """
        self._check_fitted()
        n = self._check_n(n)
        self._check_one_id(customer)
        table = self.recommend([customer], n=n, exclude_seen=exclude_seen)
        items = self._item_ids_numpy()[self.items_.lookup(table.column("item"))]
        return (items.astype(self._item_id_dtype()) if self.items_.kind == "int" else items,
                table.column("score").to_numpy())

    def _item_id_dtype(self):
        """NumPy type of integer item ids out of recommend_one: int64, uint64 for uint64 ids."""
        return np.uint64 if pa.types.is_uint64(self.items_.type) else np.int64

    def _check_one_id(self, customer) -> None:
        """InputError unless ``customer`` is one id of the model's kind (int or str) that fits
        the model's id type."""
        kind = self.customers_.kind
        is_int = isinstance(customer, (int, np.integer)) and not isinstance(customer,
                                                                            (bool, np.bool_))
        if kind == "int" and is_int:
            low, high = ((0, 2 ** 64) if pa.types.is_uint64(self.customers_.type)
                         else (-2 ** 63, 2 ** 63))
            if not low <= int(customer) < high:
                raise InputError(f"customer id {customer!r} is not in the model")
        elif not (kind == "str" and isinstance(customer, str)):
            raise InputError(
                f"customer id {customer!r} ({type(customer).__name__}) is not one "
                f"{'integer' if kind == 'int' else 'string'} id, the kind of this model's "
                "customer ids")

    def _item_ids_numpy(self) -> np.ndarray:
        """The item ids in code order as a NumPy array (``object`` for strings), cached."""
        ids = getattr(self, "_item_ids_np", None)
        if ids is None:
            ids = self._item_ids.to_numpy(zero_copy_only=False)
            self._item_ids_np = ids
        return ids

    def recommend_new(self, data, *args, customer: str | None = None, item: str | None = None,
                      weight: str | None = None, n: int = 10, exclude_seen: bool = True,
                      items=None, exclude_items=None, unknown_items: str = "error",
                      n_threads: int | None = None) -> pa.Table:
        """Fold-in: recommend from the given histories without refitting.

        Works for customers not in the model and for customers whose history changed; the
        model is not modified. Histories are weighted as the training data was (same
        weighting and ``log_epsilon``; a recency decay used in training is not re-applied).

        Parameters
        ----------
        data : any input of the Arrow layer
            Events of the customers to serve (their whole current history).
        customer, item, weight : str
            Columns, as in :meth:`fit`.
        unknown_items : {"error", "ignore"}
            What to do with items the model has never seen (they cannot be scored). With
            ``"ignore"`` they are left out and their count is in the table's schema metadata
            under ``b"unknown_item_events"``.
        Other parameters as :meth:`recommend`.
        """
        cols = positional("recommend_new", args, ("customer", "item", "weight", "n"),
                          {"customer": customer, "item": item, "weight": weight})
        customer, item, weight = cols["customer"], cols["item"], cols["weight"]
        n = cols.get("n", n)
        if customer is None or item is None:
            raise InputError("recommend_new() needs customer= and item= column names")
        threads = self._call_threads(n_threads, None)
        self._check_fitted()
        n = self._check_n(n)
        if unknown_items not in ("error", "ignore"):
            raise InputError(f'unknown_items must be "error" or "ignore", got {unknown_items!r}')
        src = open_source(data)
        roles = src.require({"customer": customer, "item": item, "weight": weight})
        enc = IdEncoder(customer, "customer")
        cols = _cols.read_columns(src, roles, {"customer": _cols.codes(enc),
                                               "item": _cols.lookup_codes(self.items_),
                                               "weight": _cols.positive_float64})
        cust, itm = cols["customer"], cols["item"]
        if cust.size == 0:
            raise InputError(f"the input has no rows (customer column {customer!r})")
        w = cols["weight"] if weight is not None else np.ones(cust.size)
        unknown = int(np.count_nonzero(itm < 0))
        if unknown and unknown_items == "error":
            raise InputError(
                f"item column {item!r} has {unknown} event(s) with items the model does not "
                'know; pass unknown_items="ignore" to leave them out')
        known = itm >= 0
        indptr, indices, sums, counts = rec_csr.coo_to_csr(cust[known], itm[known], w[known],
                                                           len(enc), n_threads=threads)
        has_w = weight is not None
        weighting = self.weighting_
        if weighting == "sum" and not has_w:
            raise InputError("the model was fitted with weighting='sum'; pass weight=")
        if weighting == "given":
            weighting = "sum" if has_w else "count"
        values = _apply_weighting(sums, counts, weighting, has_w, self.log_epsilon_)
        allowed, use_allowed = self._allowed(items, exclude_items)
        seen = (indptr, indices) if exclude_seen else None
        with self._rw.read():
            idx, score, count = self._topn_new(
                (indptr, indices, values), n, seen, allowed, use_allowed,
                n_threads=1 if len(enc) <= RECOMMEND_SERIAL_MAX else threads)
        meta = {"unknown_item_events": unknown} if unknown_items == "ignore" else None
        return self._table(id_array(enc), idx, score, count, metadata=meta)

    def similar_items(self, items, n: int = 10, *, candidates=None,
                      exclude_items=None) -> pa.Table:
        """The ``n`` items most similar to each of ``items`` (the item itself included, as in
        implicit).

        ``candidates`` (item ids, all in the model) restricts the answers to those items and
        ``exclude_items`` (unknown ids ignored) leaves items out: implicit's ``items=`` and
        ``filter_items=``. ItemKNN answers from its ``K`` stored neighbours, so a filter can
        leave fewer than ``n``.

        Returns
        -------
        pyarrow.Table
            ``item``, ``rank`` (int32), ``similar_item``, ``score`` (float32).
        """
        self._check_fitted()
        n = self._check_n(n)
        arr = _as_id_array(items, "item", self.items_.type)
        codes = self._item_codes(arr, "similar_items", strict=True)
        allowed, use_allowed = self._allowed(candidates, exclude_items, "candidates=")
        with self._rw.read():
            idx, score, count = self._similar(codes, n, allowed, use_allowed)
        return self._table(self._item_ids.take(pa.array(codes)), idx, score, count,
                           first="item", second="similar_item")

    def _similar(self, codes: np.ndarray, n: int, allowed: np.ndarray,
                 use_allowed: bool):  # pragma: no cover - abstract
        raise NotImplementedError

    # -- persistence (fastengage.recommend._persist: bounded, every member validated) ---------
    def _arrays(self) -> dict:
        return {}

    def _file_layout(self) -> tuple[dict, dict]:
        """``({array: (dtype, shape symbols)}, {symbol: value fixed by the parameters})`` of
        the model's own arrays in a file (``C`` customers, ``I`` items)."""
        return {}, {}

    def _check_file_arrays(self, arrays: dict, dims: dict) -> None:
        """Raise ModelFormatError unless the loaded model arrays are safe for every kernel."""

    def _restore_arrays(self, arrays: dict) -> None:
        pass

    def save(self, path) -> None:
        """Write the model to ``path`` (ZIP of JSON + .npy + Arrow IPC; never pickle)."""
        self._check_fitted()
        with self._rw.read():
            parts = model_file_parts(self)
        save_model(path, self.kind, self.version, *parts)

    def forget(self, customers, *, request: str | None = None):
        """Remove customers (one id or many) from the model: their seen rows, factors and id
        map entries (GDPR Art. 17; the protocol of :mod:`fastengage.privacy.forget`). Unknown
        ids are counted, not an error; afterwards they are served as unknown customers. What is
        exact per model (ALS item factors re-solved, ItemKNN recomputed; BPR approximate) is
        said in :mod:`fastengage.recommend._forget` and in the returned ``AuditRecord``.
        Safe while other threads serve: the state is swapped in one short section."""
        return forget_model(self, customers, request)

    @classmethod
    def load(cls, path) -> "Recommender":
        """Read a model written by :meth:`save`. Every member is checked (sizes before reading,
        then dtypes, shapes, index ranges, finite values) before any kernel sees it; a bad file
        raises ModelFormatError naming the member and the problem."""
        return load_model(cls, path)

    def __reduce__(self):
        """Pickling (joblib, multiprocessing, Spark broadcast) goes through the model file
        format: a fitted model is pickled as the bytes :meth:`save` writes and rebuilt by the
        validating loader; an unfitted one as its parameters."""
        if self.customers_ is None:
            return (_unfitted, (type(self), {k: getattr(self, k) for k in self._params}))
        return (recommender_from_bytes, (type(self), to_bytes(self.save)))

    @property
    def num_threads(self) -> int | None:
        """Deprecated spelling of :attr:`n_threads` (implicit's name)."""
        return self.n_threads

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={getattr(self, k)!r}" for k in self._params)
        return f"{type(self).__name__}({params})"



def _unfitted(cls, params: dict):
    """Unpickle an unfitted recommender from its parameters."""
    return cls(**params)
