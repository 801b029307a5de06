"""CLV sufficient statistics (frequency, recency, T, monetary value) and pattern compression.

Transactions arrive as dense customer codes and integer period numbers (days, weeks, hours since
the epoch, already floored the way pandas' ``to_period`` floors them). A time-ordered log is
summarised in one sequential pass; rows in any other order are grouped by customer with a
counting sort (O(n)) and each customer's periods sorted stably in place, which is cheap because
a customer has few transactions. The loops are compiled ahead of time (``summary_native.pyx``; no JIT
on a first call, issue #11); customers are spread over the launch rule's threads in chunks, each
customer computed by one thread, so nothing depends on the thread count.
"""
import numpy as np

from ..common.config import CLV_REDUCE_CHUNK
from . import summary_native as _native
from .special import run_workers, worker_count


def customer_periods(codes, periods, amounts, n_customers, has_amount, n_threads=None):
    """Per-customer BTYD statistics from transactions already restricted to a window.

    Parameters
    ----------
    codes : int64[n]     customer codes in 0..n_customers-1
    periods : int64[n]   period number of each transaction
    amounts : float64[n] (ignored unless has_amount)
    n_threads : threads (one per chunk of CLV_REDUCE_CHUNK customers at most)

    Returns
    -------
    first : int64[n_customers]   first period (or INT64 max for a customer with no rows)
    last : int64[n_customers]    last period
    n_periods : int64[n_customers] distinct periods with a purchase
    monetary : float64[n_customers] mean over repeat periods of the per-period amount sums
        (the first period excluded; 0 when there is no repeat period)
    mean_amount : float64[n_customers] mean of the raw amounts (0 without a row)
    """
    n_customers = int(n_customers)
    offsets, keys, vals = _native.scatter_by_customer(codes, periods, amounts, n_customers,
                                                      bool(has_amount))
    first = np.full(n_customers, np.iinfo(np.int64).max, dtype=np.int64)
    last = np.full(n_customers, np.iinfo(np.int64).min, dtype=np.int64)
    n_periods = np.zeros(n_customers, dtype=np.int64)
    monetary = np.zeros(n_customers, dtype=np.float64)
    mean_amount = np.zeros(n_customers, dtype=np.float64)
    run_workers(lambda t, k: _native.customer_periods_chunks(
        offsets, keys, vals, first, last, n_periods, monetary, mean_amount, CLV_REDUCE_CHUNK,
        t, k), worker_count(n_customers, n_threads))
    return first, last, n_periods, monetary, mean_amount


def summarize(codes, periods, amounts, n_customers, has_amount, n_threads=None):
    """(first, last, n_periods, monetary) of :func:`customer_periods`."""
    return customer_periods(codes, periods, amounts, n_customers, has_amount,
                            n_threads=n_threads)[:4]


def holdout_counts(codes, periods, amounts, n_customers, n_threads=None):
    """Holdout statistics of :func:`customer_periods`: distinct periods per customer and the
    mean of the raw amounts."""
    out = customer_periods(codes, periods, amounts, n_customers, True, n_threads=n_threads)
    return out[2], out[4]


def summarize_sorted(codes, periods, amounts, n_customers, has_amount):
    """``summarize`` for rows already in time order: ``summary_native.summarize_sorted_us`` on
    periods (length 1, no cut). One sequential pass, no grouping."""
    return _native.summarize_sorted_us(codes, periods, 1, 0, np.iinfo(np.int64).max, amounts,
                                       n_customers, has_amount)[1:5]


#: ``holdout_counts`` for rows in time order (one pass): (distinct periods, mean raw amount).
holdout_counts_sorted = _native.holdout_counts_sorted


def unique_patterns(cols):
    """Distinct rows of a float64 (n, k) matrix by exact bit pattern: (first_row[m], inverse[n],
    counts[m]), patterns in first-seen order, so that a likelihood over the m patterns weighted
    by counts equals the one over the n rows."""
    return _native.unique_patterns(np.ascontiguousarray(cols, np.float64).view(np.uint64))
