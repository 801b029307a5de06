"""Customer-profile kernels (issue #15.1): launch plans for the loops of ``profile_native.pyx``.

Times are int64 microseconds UTC, days ``floor(us / 86_400e6)``. A row with ``amount >= 0`` is a
purchase, ``amount < 0`` a return (as in the RFM kernels). The loops are Cython, compiled at
build time (issue #11: a first ``profile()`` call compiles nothing), GIL-free, and run on
``n_threads`` threads by ``kernels.common.launch.run_threaded``: each worker claims chunks of
rows or blocks of customers from a shared counter, every customer is folded by one thread, and
the grouping is a stable counting sort, so results are bit-identical for any thread count.

Steps (``fastengage.features.profile`` runs them):

1. :func:`count_rows`: rows per customer code by the cut (``time <= limit_us``), which customers
   have a purchase, rows after the cut and return rows;
2. the caller puts the customers with a purchase in output order (sorted by id);
3. :func:`group_rows`: row numbers grouped by output position (input order kept per customer);
4. :func:`fold_profiles`: every feature, written straight into its output column.
"""
from __future__ import annotations

import numpy as np

from ..common.config import PROFILE_BLOCK, PROFILE_SORT_CHUNKS, PROFILE_STAMP_MAX_CODES
from ..common.launch import resolve_threads, run_threaded
from . import profile_native as _native
from .profile_native import (  # noqa: F401  (column layout, re-exported for the API layer)
    F_CATEGORY_ENTROPY, F_GAP_MEAN, F_GAP_STD, F_ITEMS_PER_ORDER, F_MONETARY_MEAN,
    F_MONETARY_TOTAL, F_ORDERS_TREND, F_OVERDUE, F_SPEND_PREV, F_SPEND_TREND,
    F_TOP_CATEGORY_SHARE, FLOAT_PER_WINDOW, I_DAYS, I_DISTINCT_CATEGORIES, I_DISTINCT_ITEMS,
    I_FIRST, I_FREQUENCY, I_LAST, I_LAST_CHANNEL, I_LAST_GAP, I_N_CHANNELS, I_ORDERS_PREV,
    I_RECENCY, I_TENURE, INT_PER_WINDOW, MAX_CHANNELS, N_FLOAT, N_INT, sort_pairs)

US_PER_DAY = np.int64(86_400_000_000)
_EMPTY = np.empty(0, np.int64)


class Counts:
    """What :func:`count_rows` found: ``kept[code]`` (uint8) the customer has a purchase by the
    cut; ``slots`` the per-chunk row counts :func:`group_rows` turns into slots."""

    __slots__ = ("kept", "slots", "bounds", "rows_after", "return_rows", "returns_only")

    def __init__(self, kept: np.ndarray, slots: np.ndarray, bounds: np.ndarray, rows_after: int,
                 return_rows: int, returns_only: int):
        self.kept, self.slots, self.bounds = kept, slots, bounds
        self.rows_after, self.return_rows, self.returns_only = rows_after, return_rows, returns_only


def _launch(worker, n_items: int, n_threads: int | None) -> None:
    counter = np.zeros(1, np.int64)
    run_threaded(lambda: worker(counter), min(resolve_threads(n_threads), max(n_items, 1)))


def count_rows(codes, times, amounts, limit_us: int, n_codes: int,
               n_threads: int | None = None) -> Counts:
    """Count pass over chunks of rows (one count per customer and chunk; at most
    ``PROFILE_SORT_CHUNKS`` chunks, as many as threads)."""
    n = codes.shape[0]
    n_chunks = max(1, min(resolve_threads(n_threads), PROFILE_SORT_CHUNKS, n))
    bounds = np.linspace(0, n, n_chunks + 1).astype(np.int64)
    counts = np.zeros((n_chunks, n_codes), np.int64)
    bought = np.zeros((n_chunks, n_codes), np.uint8)
    tallies = np.zeros((n_chunks, 2), np.int64)
    limit = np.int64(limit_us)
    _launch(lambda counter: _native.count_worker(codes, times, amounts, limit, bounds, counts,
                                                 bought, tallies, counter), n_chunks, n_threads)
    kept, returns_only = _native.customers_kept(counts, bought)
    return Counts(kept, counts, bounds, int(tallies[:, 0].sum()), int(tallies[:, 1].sum()),
                  int(returns_only))


def group_rows(counts: Counts, order, codes, times, limit_us: int,
               n_threads: int | None = None) -> tuple:
    """Rows of the kept customers grouped by output position: ``(perm int64[m], offsets
    int64[len(order) + 1])``, the customer ``order[j]``'s rows being
    ``perm[offsets[j]:offsets[j + 1]]`` in input order. ``order``: the kept codes in output
    order. Consumes ``counts.slots``."""
    offsets = _native.place_groups(counts.slots, counts.kept, order)
    perm = np.empty(int(offsets[-1]), np.int64)
    slots, bounds, limit = counts.slots, counts.bounds, np.int64(limit_us)
    _launch(lambda counter: _native.scatter_worker(codes, times, limit, bounds, slots, perm,
                                                   counter), len(bounds) - 1, n_threads)
    counts.slots = None
    return perm, offsets


def sort_by_customer(codes, times, limit_us: int, n_codes: int, n_threads: int | None = None):
    """Row numbers grouped by customer code (every code with a row by the cut, ascending), input
    order kept within a customer: ``(perm, offsets int64[n_codes + 1])``. The grouping of
    :func:`group_rows` with every row counted as a purchase (for tests and callers that want
    all customers)."""
    counts = count_rows(codes, times, np.zeros(len(codes)), limit_us, n_codes, n_threads)
    order = np.flatnonzero(counts.kept).astype(np.int64)
    perm, grouped = group_rows(counts, order, codes, times, limit_us, n_threads)
    offsets = np.zeros(n_codes + 1, np.int64)
    offsets[order + 1] = np.diff(grouped)
    return perm, np.cumsum(offsets)


def fold_profiles(perm, offsets, times, amounts, orders, items, categories, channels,
                  n_items: int, n_categories: int, channel_rank, as_of_us: int, window_lo,
                  trend_window: int, prev_lo: int, prev_hi: int, net_returns: bool,
                  n_threads: int | None = None) -> tuple:
    """Fold every customer's rows (``perm[offsets[j]:offsets[j+1]]``) into its output
    position ``j``. Optional columns (orders, items, categories, channels) are empty arrays
    when absent. Returns ``(ints [N_INT + 3 W, n_out], floats [N_FLOAT + 2 W, n_out], shares
    [2 n_channels, n_out])``: each row a column (see ``profile_native``), NaN / -1 for nulls;
    columns of absent inputs are left unwritten."""
    n_out = offsets.shape[0] - 1
    n_win = window_lo.shape[0]
    n_channels = len(channel_rank) if channels.shape[0] else 0
    ints = np.empty((N_INT + INT_PER_WINDOW * n_win, n_out), np.int64)
    floats = np.empty((N_FLOAT + FLOAT_PER_WINDOW * n_win, n_out), np.float64)
    shares = np.empty((2 * n_channels, n_out) if n_channels else (1, 1), np.float64)
    longest = _native.longest_group(offsets)
    n_blocks = -(-n_out // PROFILE_BLOCK)
    _launch(lambda counter: _native.fold_worker(
        perm, offsets, times, amounts, orders, items, categories, channels, n_items,
        n_categories, n_channels, channel_rank, as_of_us, window_lo, trend_window, prev_lo,
        prev_hi, net_returns, longest, PROFILE_BLOCK, PROFILE_STAMP_MAX_CODES, ints, floats,
        shares, counter), n_blocks, n_threads)
    return ints, floats, shares
