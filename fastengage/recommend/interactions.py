"""Customer x item interaction matrices built from transactions, with the user's ids kept.

Every recommender in :mod:`fastengage.recommend` is fitted on an :class:`Interactions`: a CSR
matrix (customers x items) of *values* ``r_ui`` plus the two id encoders that map the user's
own customer and item ids (integers or strings) to rows and columns and back.

Weighting (the value ``r_ui`` stored for a pair; the ALS confidence is ``alpha * r_ui``, the
implicit library's convention):

``"count"``   number of events (rows) of the pair — the default without ``weight=``;
``"sum"``     sum of the ``weight`` column (spend, quantity) — the default with ``weight=``;
``"binary"``  1 for every pair seen;
``"log"``     ``log(1 + x / log_epsilon)`` of the count (or of the sum when ``weight=`` is
              given): Hu, Koren & Volinsky (2008), section 4, ``c_ui = 1 + alpha log(1 + r/eps)``.

With ``time=`` and ``half_life_days=``, every event is first multiplied by an exponential recency
decay, so recent purchases weigh more.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from .._io import columns as _cols
from .._io.ids import IdEncoder
from .._io.sources import US_PER_DAY, open_source
from .._io.times import parse_time
from ..errors import InputError
from ..kernels.recommend import csr as rec_csr

__all__ = ["Interactions", "WEIGHTINGS", "id_array"]


def id_array(encoder: IdEncoder) -> pa.Array:
    """The encoder's ids in code order, in a type ``take`` supports: ``string_view`` ids (as
    polars hands them over) come back as ``large_string``, every other type unchanged."""
    ids = encoder.ids()
    if pa.types.is_string_view(ids.type):
        ids = ids.cast(pa.large_string())
    return ids

WEIGHTINGS = ("count", "sum", "binary", "log")


@dataclass
class _Events:
    """Coded events read from the input: one entry per row."""
    customer: np.ndarray
    item: np.ndarray
    weight: np.ndarray
    time: np.ndarray | None
    customers: IdEncoder
    items: IdEncoder
    roles: dict = field(default_factory=dict)


def read_events(data, customer: str, item: str, weight: str | None = None,
                time: str | None = None, customers: IdEncoder | None = None,
                items: IdEncoder | None = None, batch_size: int | None = None) -> _Events:
    """Read the columns once through the Arrow input layer and encode the ids.

    Weights must be finite and strictly positive: rows with a zero or negative weight (returns,
    free items) are an error, never dropped quietly; filter them first.
    """
    src = open_source(data)
    roles = src.require({"customer": customer, "item": item, "weight": weight, "time": time})
    customers = customers if customers is not None else IdEncoder(customer, "customer")
    items = items if items is not None else IdEncoder(item, "item")
    cols = _cols.read_columns(src, roles, {"customer": _cols.codes(customers),
                                           "item": _cols.codes(items),
                                           "weight": _cols.positive_float64,
                                           "time": _cols.microseconds}, batch_size=batch_size)
    cust, itm = cols["customer"], cols["item"]
    if cust.size == 0:
        raise InputError(f"the input has no rows (customer column {customer!r})")
    w = cols["weight"] if weight is not None else np.ones(cust.size, np.float64)
    t = cols.get("time")
    return _Events(cust, itm, w, t, customers, items, roles)


def event_decay(t_us: np.ndarray, column: str, half_life_days: float, as_of=None) -> np.ndarray:
    """``2 ** (-(as_of - t) / half_life)`` per event (float64); ``as_of`` defaults to the latest
    event."""

    if not half_life_days > 0:
        raise InputError(f"half_life_days must be > 0, got {half_life_days}")
    ref = int(t_us.max()) if as_of is None else parse_time(as_of, "as_of")
    late = int(np.count_nonzero(t_us > ref))
    if late:
        raise InputError(f"time column {column!r} has {late} event(s) after as_of={as_of!r}")
    age_days = (ref - t_us).astype(np.float64) / US_PER_DAY
    return np.exp2(-age_days / half_life_days)


def _apply_weighting(sums: np.ndarray, counts: np.ndarray, weighting: str, has_weight: bool,
                     log_epsilon: float) -> np.ndarray:
    if weighting == "count":
        return counts.astype(np.float32)
    if weighting == "sum":
        if not has_weight:
            raise InputError('weighting="sum" needs a weight= column')
        return sums.astype(np.float32)
    if weighting == "binary":
        return np.ones(counts.size, np.float32)
    if weighting == "log":
        base = sums if has_weight else counts.astype(np.float64)
        return np.log1p(base / log_epsilon).astype(np.float32)
    raise InputError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")


class Interactions:
    """A customer x item matrix of interaction values, keyed by the user's own ids.

    Attributes
    ----------
    matrix : scipy.sparse.csr_matrix, float32, shape (n_customers, n_items)
        ``r_ui`` per the weighting; indices sorted within rows; int64 index arrays.
    customers, items : IdEncoder
        Row and column ids (codes are row and column numbers).
    weighting : str
    """

    def __init__(self, matrix: sp.csr_matrix, customers: IdEncoder, items: IdEncoder,
                 weighting: str = "count", log_epsilon: float = 1.0):
        self.matrix = matrix
        self.customers = customers
        self.items = items
        self.weighting = weighting
        self.log_epsilon = log_epsilon

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def from_data(cls, data, *args, customer: str | None = None, item: str | None = None,
                  weight: str | None = None, weighting: str | None = None,
                  log_epsilon: float = 1.0, time: str | None = None,
                  half_life_days: float | None = None, as_of=None,
                  batch_size: int | None = None, consent=None) -> "Interactions":
        """Build from transactions (any input the Arrow layer accepts).

        Parameters
        ----------
        data : pyarrow Table / RecordBatch / reader / Dataset / Parquet path / Arrow stream
        customer, item : str
            Id columns (integers or strings, no nulls); keyword-only (by position is
            deprecated).
        weight : str, optional
            Positive numeric column (spend, quantity) summed per pair.
        weighting : {"count", "sum", "binary", "log"}, optional
            Default ``"sum"`` with ``weight``, else ``"count"``.
        log_epsilon : float
            Scale ``eps`` of the ``"log"`` weighting.
        time : str, optional
            Event time column (timestamp or date); needed by ``half_life_days``.
        half_life_days : float, optional
            Recency decay: each event counts ``2 ** (-(as_of - t) / half_life)`` (so "count"
            becomes a decayed count and "sum" a decayed sum; "binary" is unaffected).
        as_of : date, datetime, numpy datetime64 or ISO string, optional
            Reference time of the decay (default: the latest event). Events after it are an
            error.
        consent : fastengage.privacy.ConsentFilter, optional
            Keep only the events whose customer had consent for the filter's purpose at the
            event's ``time`` (at the filter's ``as_of`` without ``time=``); what was excluded is
            in ``consent.last_report``.
        """
        if args:
            from ._compat import positional

            cols = positional("Interactions.from_data", args,
                              ("customer", "item", "weight", "weighting", "log_epsilon", "time",
                               "half_life_days", "as_of", "batch_size"),
                              {"customer": customer, "item": item, "weight": weight,
                               "weighting": weighting, "time": time,
                               "half_life_days": half_life_days, "as_of": as_of,
                               "batch_size": batch_size})
            cols.setdefault("log_epsilon", log_epsilon)
            return cls.from_data(data, **cols)
        if customer is None or item is None:
            raise InputError("Interactions.from_data() needs customer= and item= column names")
        if half_life_days is not None and time is None:
            raise InputError("half_life_days needs a time= column")
        data = _cols.consented_input(data, consent, customer=customer, time=time,
                                     batch_size=batch_size)
        ev = read_events(data, customer, item, weight, time, batch_size=batch_size)
        decay = None
        if half_life_days is not None:
            decay = event_decay(ev.time, time, half_life_days, as_of)
        return cls.from_events(ev, weighting, log_epsilon, has_weight=weight is not None,
                               decay=decay)

    @classmethod
    def from_events(cls, ev: _Events, weighting: str | None, log_epsilon: float,
                    has_weight: bool, mask: np.ndarray | None = None,
                    decay: np.ndarray | None = None) -> "Interactions":
        weighting = weighting or ("sum" if has_weight else "count")
        if weighting not in WEIGHTINGS:
            raise InputError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
        if not log_epsilon > 0:
            raise InputError(f"log_epsilon must be > 0, got {log_epsilon}")
        cust, itm, w = ev.customer, ev.item, ev.weight
        if mask is not None:
            cust, itm, w = cust[mask], itm[mask], w[mask]
            decay = decay[mask] if decay is not None else None
        n_rows, n_cols = len(ev.customers), len(ev.items)
        cust = np.ascontiguousarray(cust)
        itm = np.ascontiguousarray(itm)
        if decay is not None:
            w = w * decay
        indptr, indices, sums, counts = rec_csr.coo_to_csr(cust, itm,
                                                     np.ascontiguousarray(w), n_rows)
        if decay is not None:
            # a decayed count is the sum of the decay factors
            counts = rec_csr.coo_to_csr(cust, itm, np.ascontiguousarray(decay),
                                  n_rows)[2]
        values = _apply_weighting(sums, counts, weighting, has_weight, log_epsilon)
        matrix = sp.csr_matrix((values, indices, indptr), shape=(n_rows, n_cols))
        matrix.has_sorted_indices = True
        return cls(matrix, ev.customers, ev.items, weighting, log_epsilon)

    @classmethod
    def from_csr(cls, matrix, customer_ids=None, item_ids=None) -> "Interactions":
        """Wrap an existing scipy sparse matrix or 2-d array (customers x items; ids default to
        0..n-1 as int64). Duplicate entries are summed; every stored value must then be finite
        and positive, as the events' weights of :meth:`from_data`: an explicitly stored zero
        would be a "seen" item with no weight, and a negative value (implicit's negative
        feedback) is not a confidence the models here define, so both are an error (call
        ``matrix.eliminate_zeros()`` to drop stored zeros)."""
        try:
            m = sp.csr_matrix(matrix, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise InputError(f"from_csr needs a 2-d scipy sparse matrix or array: {exc}") from exc
        m.sum_duplicates()
        m.sort_indices()
        bad = ~(np.isfinite(m.data) & (m.data > 0))
        if bad.any():
            first = int(np.argmax(bad))
            row = int(np.searchsorted(m.indptr, first, side="right") - 1)
            raise InputError(
                f"from_csr: {int(np.count_nonzero(bad))} stored value(s) are not finite and "
                f"positive (first: {float(m.data[first])!r} at row {row}, column "
                f"{int(m.indices[first])}); interaction values must be > 0 (drop stored zeros "
                "with matrix.eliminate_zeros())")
        m = sp.csr_matrix((m.data, m.indices.astype(np.int64), m.indptr.astype(np.int64)),
                          shape=m.shape)
        cids = pa.array(np.arange(m.shape[0], dtype=np.int64)) if customer_ids is None \
            else pa.array(customer_ids)
        iids = pa.array(np.arange(m.shape[1], dtype=np.int64)) if item_ids is None \
            else pa.array(item_ids)
        if len(cids) != m.shape[0] or len(iids) != m.shape[1]:
            raise InputError("customer_ids/item_ids lengths must match the matrix shape")
        encoders = []
        for ids, role in ((cids, "customer"), (iids, "item")):
            if len(ids) and pc.count_distinct(ids, mode="all").as_py() != len(ids):
                raise InputError(f"from_csr: {role}_ids are not unique (one id per "
                                 f"{'row' if role == 'customer' else 'column'})")
            encoders.append(IdEncoder.from_arrow(ids, role, role))
        return cls(m, *encoders, "given")

    # -- views -----------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int]:
        return self.matrix.shape

    @property
    def n_customers(self) -> int:
        return self.matrix.shape[0]

    @property
    def n_items(self) -> int:
        return self.matrix.shape[1]

    @property
    def nnz(self) -> int:
        return self.matrix.nnz

    def csr_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(indptr int64, indices int64, data float32)`` of the matrix, contiguous."""
        m = self.matrix
        return (np.ascontiguousarray(m.indptr, dtype=np.int64),
                np.ascontiguousarray(m.indices, dtype=np.int64),
                np.ascontiguousarray(m.data, dtype=np.float32))

    def to_arrow(self) -> pa.Table:
        """The stored pairs as a table ``(customer, item, value)`` with the user's ids."""
        coo = self.matrix.tocoo()
        return pa.table({
            "customer": id_array(self.customers).take(pa.array(coo.row.astype(np.int64))),
            "item": id_array(self.items).take(pa.array(coo.col.astype(np.int64))),
            "value": pa.array(coo.data.astype(np.float32)),
        })

    def forget(self, customers, *, request: str | None = None):
        """Remove customers (one id or many): their rows and their ids, rebuilt without them
        in the same order (the protocol of :mod:`fastengage.privacy.forget`). Items are kept.
        Returns an ``AuditRecord``; unknown ids are counted, not an error."""
        from ._forget import forget_interactions

        return forget_interactions(self, customers, request)

    def __reduce__(self):
        """Pickled as the bytes of a validated bundle (CSR arrays + id tables), never as Python
        objects: see :mod:`fastengage.recommend._persist`."""
        from ._persist import interactions_from_bytes, save_interactions, to_bytes

        return (interactions_from_bytes, (to_bytes(lambda buf: save_interactions(self, buf)),))

    def __repr__(self) -> str:
        return (f"Interactions({self.n_customers} customers x {self.n_items} items, "
                f"{self.nnz} pairs, weighting={self.weighting!r})")
