"""Train/test splits for evaluating recommenders: temporal (by event time) and random (by pair).

Both return train and test :class:`~fastengage.recommend.Interactions` with the *same* id
encoders and shape, so test rows and columns line up with the model fitted on train.
"""
from __future__ import annotations


import numpy as np
import pyarrow as pa
import scipy.sparse as sp

from .._io.times import parse_time
from ..errors import InputError
from ._compat import positional
from ..kernels.recommend import csr as rec_csr
from .interactions import Interactions, read_events

__all__ = ["Split", "temporal_split", "random_split", "leave_k_out_split"]


class Split:
    """``train, test = split``; ``removed`` counts test pairs dropped because train has them."""

    def __init__(self, train: Interactions, test: Interactions, removed: int):
        self.train = train
        self.test = test
        self.removed = removed

    def __iter__(self):
        return iter((self.train, self.test))

    def __repr__(self) -> str:
        return (f"Split(train={self.train.nnz} pairs, test={self.test.nnz} pairs, "
                f"removed={self.removed} test pairs already in train)")


def _cutoff_us(cutoff, name: str = "cutoff") -> int:
    return parse_time(cutoff, name)


def _drop_seen(train: Interactions, test: Interactions) -> tuple[Interactions, int]:
    tr, te = train.matrix, test.matrix
    keep = rec_csr.csr_difference_mask(te.indptr.astype(np.int64), te.indices.astype(np.int64),
        tr.indptr.astype(np.int64), tr.indices.astype(np.int64))
    removed = int(keep.size - np.count_nonzero(keep))
    if removed:
        coo = te.tocoo()
        k = keep.astype(bool)
        m = sp.csr_matrix((coo.data[k], (coo.row[k], coo.col[k])), shape=te.shape)
        m.sort_indices()
        test = Interactions(m, test.customers, test.items, test.weighting, test.log_epsilon)
    return test, removed


def temporal_split(data, *args, customer: str | None = None, item: str | None = None,
                   time: str | None = None, cutoff=None, weight: str | None = None,
                   weighting: str | None = None, log_epsilon: float = 1.0,
                   exclude_train_pairs: bool = True,
                   half_life_days: float | None = None) -> Split:
    """Events before ``cutoff`` train, events at or after it test.

    Parameters
    ----------
    data : any input of the Arrow layer
    customer, item, time : str
        Columns, keyword-only (by position is deprecated); ``time`` is a timestamp or date
        column (UTC).
    cutoff : str, datetime.date, datetime.datetime or numpy.datetime64
        Read by the one time parser (:func:`fastengage._io.times.parse_time`): ISO 8601 or
        ``YYYYMMDD`` (``"20150201"`` is 1 February 2015), midnight UTC for dates.
    weight, weighting, log_epsilon
        As in :meth:`Interactions.from_data`.
    exclude_train_pairs : bool
        Drop from test the (customer, item) pairs already in train (they are filtered from
        recommendations, so they could never be hit); the count is ``Split.removed``.
    half_life_days : float, optional
        Recency decay of the train values, measured back from the cutoff (see
        :meth:`Interactions.from_data`); test values are not decayed.

    Returns
    -------
    Split
        ``train, test`` over the same customers and items (all ids of ``data``).
    """
    if args:
        cols = positional("temporal_split", args,
                          ("customer", "item", "time", "cutoff", "weight", "weighting",
                           "log_epsilon", "exclude_train_pairs", "half_life_days"),
                          {"customer": customer, "item": item, "time": time, "cutoff": cutoff,
                           "weight": weight, "weighting": weighting,
                           "half_life_days": half_life_days})
        return temporal_split(data, **{"log_epsilon": log_epsilon,
                                       "exclude_train_pairs": exclude_train_pairs, **cols})
    if customer is None or item is None or time is None or cutoff is None:
        raise InputError("temporal_split() needs customer=, item=, time= and cutoff=")
    t0 = _cutoff_us(cutoff)
    ev = read_events(data, customer, item, weight, time)
    before = ev.time < t0
    if not before.any():
        raise InputError(f"no events before the cutoff {cutoff!r} in time column {time!r}")
    has_w = weight is not None
    decay = None
    if half_life_days is not None:
        from .interactions import event_decay
        decay = np.ones(ev.time.size)
        decay[before] = event_decay(ev.time[before], time, half_life_days, np.datetime64(t0, "us"))
    train = Interactions.from_events(ev, weighting, log_epsilon, has_w, mask=before, decay=decay)
    test = Interactions.from_events(ev, weighting, log_epsilon, has_w, mask=~before)
    removed = 0
    if exclude_train_pairs:
        test, removed = _drop_seen(train, test)
    return Split(train, test, removed)


def random_split(interactions: Interactions, test_fraction: float = 0.2,
                 seed: int | None = None) -> Split:
    """Hold out each stored pair with probability ``test_fraction``; train and test never
    share a pair.

    This is implicit's ``train_test_split(ratings, train_percentage=1 - test_fraction,
    random_state=seed)`` draw for draw: one uniform number per stored pair in row-major order
    from ``numpy.random.default_rng(seed)``, the pair held out when it is at least
    ``1 - test_fraction``, so the same matrix and seed give implicit's split."""
    if not 0.0 < test_fraction < 1.0:
        raise InputError(f"test_fraction must be in (0, 1), got {test_fraction}")
    rng = np.random.default_rng(seed)
    m = interactions.matrix.tocoo()
    test_mask = rng.random(m.nnz) >= 1.0 - test_fraction
    return _split_pairs(interactions, m, test_mask)


def _split_pairs(interactions: Interactions, m: sp.coo_matrix, test_mask: np.ndarray) -> Split:
    """Train (pairs of ``m`` outside ``test_mask``) and test (inside), same ids and shape."""
    def part(mask):
        out = sp.csr_matrix((m.data[mask], (m.row[mask], m.col[mask])), shape=m.shape)
        out.sort_indices()
        return Interactions(out, interactions.customers, interactions.items,
                            interactions.weighting, interactions.log_epsilon)

    return Split(part(~test_mask), part(test_mask), 0)


def leave_k_out_split(interactions: Interactions, k: int = 1, train_only_fraction: float = 0.0,
                      seed: int | None = None) -> Split:
    """Hold out ``k`` random pairs of every customer with more than ``k + 1`` pairs (implicit's
    ``leave_k_out_split(ratings, K, train_only_size)`` protocol; ``k=1``: leave-one-out).

    Parameters
    ----------
    interactions : Interactions
    k : int
        Pairs held out per eligible customer (>= 1).
    train_only_fraction : float
        Share of the customers with pairs (``int(n * fraction)`` of them, drawn at random) kept
        in train only, whatever their number of pairs; in [0, 1).
    seed : int, optional
        Seeds both draws: unlike implicit's (whose pair shuffle uses NumPy's global state),
        the same seed gives the same split.

    Returns
    -------
    Split
        ``train + test`` is the input; every test customer has exactly ``k`` test pairs.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InputError(f"k must be an integer >= 1, got {k!r}")
    if not 0.0 <= train_only_fraction < 1.0:
        raise InputError(f"train_only_fraction must be in [0, 1), got {train_only_fraction}")
    try:
        rng = np.random.default_rng(seed)
    except (TypeError, ValueError) as exc:
        raise InputError(f"seed must be None or a non-negative integer, got {seed!r}") from exc
    m = interactions.matrix.tocoo()  # row-major: the CSR's order
    counts = np.diff(interactions.matrix.indptr)
    eligible = counts > k + 1
    customers = np.flatnonzero(counts > 0)
    if train_only_fraction > 0.0 and customers.size:
        size = max(1, int(customers.size * train_only_fraction))
        eligible[rng.choice(customers, size=size, replace=False)] = False
    # a random key per pair; the k smallest keys of an eligible customer's pairs are held out
    candidate = eligible[m.row]
    keys = rng.random(m.nnz)
    order = np.lexsort((keys, m.row))
    first = np.asarray(interactions.matrix.indptr[:-1], np.int64)[m.row[order]]
    rank_in_row = np.arange(m.nnz) - first
    test_mask = np.zeros(m.nnz, bool)
    test_mask[order[(rank_in_row < k) & candidate[order]]] = True
    return _split_pairs(interactions, m, test_mask)
