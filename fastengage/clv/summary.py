"""Per-customer BTYD sufficient statistics from a transaction log.

The convention is lifetimes' ``summary_data_from_transaction_data`` /
``calibration_and_holdout_data`` (and BTYD's ``elog2cbs``): every timestamp is floored to its
period (``freq``) the way pandas' ``to_period(freq)`` floors it, purchases in the same period
count once, and

* ``frequency`` = number of distinct purchase periods minus one (repeat purchases, x),
* ``recency``   = last purchase period - first purchase period (t_x),
* ``T``         = end-of-window period - first purchase period,
* ``monetary_value`` = mean over the repeat periods of the amount summed per period (0 if none),

all durations divided by ``freq_multiplier`` (``freq="D", freq_multiplier=7`` gives weeks with
day resolution, the CDNOW convention of Fader, Hardie & Lee 2005).
"""
from __future__ import annotations


import numpy as np
import pyarrow as pa

from .._io import columns as _cols
from .._io.ids import IdEncoder
from .._io.times import parse_time
from .._io.sources import US_PER_DAY, open_source
from ..errors import InputError
from ..kernels.clv import summary_native as _native
from ..kernels.clv import summary as _k

__all__ = ["summary", "FREQS", "to_us"]

#: Supported period codes -> (period length in microseconds, offset in microseconds). Weeks are
#: pandas' default ``W`` = ``W-SUN`` periods, which start on Monday (1970-01-05 is a Monday).
FREQS = {
    "D": (US_PER_DAY, 0),
    "W": (7 * US_PER_DAY, 4 * US_PER_DAY),
    "h": (3_600_000_000, 0),
    "H": (3_600_000_000, 0),
    "min": (60_000_000, 0),
    "s": (1_000_000, 0),
}


def to_us(value, what: str) -> int:
    """A point in time as int64 µs UTC (the one parser, :func:`fastengage._io.times.parse_time`)."""
    return parse_time(value, what)


def _period(us: np.ndarray, freq: str) -> np.ndarray:
    length, offset = FREQS[freq]
    return np.floor_divide(np.asarray(us, dtype=np.int64) - offset, length)


def summary(data, *, customer: str, time: str, amount: str | None = None, as_of=None,
            freq: str = "D", freq_multiplier: float = 1.0, calibration_end=None,
            batch_size: int | None = None, n_threads: int | None = None,
            consent=None) -> pa.Table:
    """Per-customer frequency, recency, T (and monetary value, and holdout columns).

    Parameters
    ----------
    data : Arrow table, record batch(es), dataset, Parquet path or ``__arrow_c_stream__`` object
        One row per transaction.
    customer, time : str
        Column names of the customer id (integers or strings) and of the transaction time
        (timestamp of any unit/time zone, or date).
    amount : str, optional
        Column of the transaction value; adds ``monetary_value`` (and ``monetary_value_holdout``).
    as_of : datetime-like, optional
        End of the observation window (lifetimes' ``observation_period_end``); defaults to the
        latest transaction time. Rows in a later period are excluded; how many is reported in
        the table's schema metadata (``rows_after_as_of``).
    freq : {"D", "W", "h", "min", "s"}
        Period in which purchases are counted; ``"W"`` is pandas' Monday-to-Sunday week.
    freq_multiplier : float
        Divides recency, T and duration_holdout (e.g. ``freq="D", freq_multiplier=7`` = weeks).
    calibration_end : datetime-like, optional
        Split into calibration (time <= calibration_end) and holdout
        (calibration_end < time <= as_of). The calibration statistics keep the names
        ``frequency``, ``recency``, ``T``, ``monetary_value`` (so the table can go straight to a
        model's ``fit``) and the holdout ones are ``frequency_holdout`` (distinct holdout periods),
        ``monetary_value_holdout`` (mean of the holdout transaction amounts) and
        ``duration_holdout``. Only customers with a calibration purchase are kept, as in
        lifetimes' ``calibration_and_holdout_data``. With no transaction at or before
        ``calibration_end`` an :class:`InputError` says so.
    batch_size : int, optional
        Rows per batch when reading the input.
    n_threads : int, optional
        Threads of the per-customer folds (default ``FASTENGAGE_NUM_THREADS``, else all cores);
        the table does not depend on it.
    consent : fastengage.privacy.ConsentFilter, optional
        Summarise only the rows whose customer had consent for the filter's purpose at the
        row's time (what was excluded: ``consent.last_report``).

    Returns
    -------
    pyarrow.Table
        One row per customer in first-seen order: the customer column (the user's name and type),
        ``frequency``, ``recency``, ``T`` (float64) [, ``monetary_value``] [, holdout columns].

    Raises
    ------
    InputError, ColumnNotFoundError
        Unknown columns, nulls, wrong types, an empty input, an unknown ``freq``.
    """
    if freq not in FREQS:
        raise InputError(f"freq={freq!r} is not supported; use one of {sorted(FREQS)}")
    if not freq_multiplier > 0:
        raise InputError(f"freq_multiplier must be positive, got {freq_multiplier!r}")
    data = _cols.consented_input(data, consent, customer=customer, time=time,
                                 batch_size=batch_size)
    src = open_source(data)
    roles = src.require({"customer": customer, "time": time, "amount": amount})
    enc = IdEncoder(customer, "customer")
    cols = _cols.read_columns(src, roles, {"customer": _cols.codes(enc),
                                           "time": _cols.microseconds, "amount": _cols.float64},
                              batch_size=batch_size)
    # the native kernels take int64 codes and microseconds (no copy when they already are)
    codes = np.ascontiguousarray(cols["customer"], np.int64)
    us = np.ascontiguousarray(cols["time"], np.int64)
    if codes.size == 0:
        raise InputError("the transaction input is empty: no rows to summarise")
    amounts = cols["amount"] if amount is not None else np.zeros(1)
    del cols
    end_us = int(us.max()) if as_of is None else to_us(as_of, "as_of")
    end_period = int(_period(np.array([end_us]), freq)[0])
    ids = enc.ids()
    n_customers = len(ids)
    metadata = {}

    if calibration_end is None:
        # a time-ordered log (the usual case): one sequential pass from the microseconds, which
        # also checks the order (compiled ahead of time: no JIT on a first call, #11)
        length, offset = FREQS[freq]
        ordered, first, last, n_per, monetary, n_after = _native.summarize_sorted_us(
            codes, us, length, offset, end_period, amounts, n_customers, amount is not None)
        if not ordered:
            periods = _period(us, freq)
            keep = periods <= end_period
            n_after = int(codes.shape[0] - np.count_nonzero(keep))
            if n_after:
                codes, periods = codes[keep], periods[keep]
                if amount is not None:
                    amounts = amounts[keep]
            first, last, n_per, monetary = _k.summarize(codes, periods, amounts, n_customers,
                                                        amount is not None, n_threads=n_threads)
        metadata["rows_after_as_of"] = str(int(n_after))
        present = n_per > 0
        if not present.all():
            # customers whose only purchases are after as_of do not exist yet at as_of
            idx = np.flatnonzero(present)
            ids = ids.take(pa.array(idx))
            first, last, n_per, monetary = first[idx], last[idx], n_per[idx], monetary[idx]
        cols = {customer: ids,
                "frequency": (n_per - 1).astype(np.float64),
                "recency": (last - first) / float(freq_multiplier),
                "T": (end_period - first) / float(freq_multiplier)}
        if amount is not None:
            cols["monetary_value"] = monetary
        table = pa.table(cols)
        return table.replace_schema_metadata(metadata)

    cal_us = to_us(calibration_end, "calibration_end")
    if cal_us >= end_us:
        raise InputError(f"calibration_end ({calibration_end}) must be before as_of / the last "
                         "transaction time")
    ordered = bool(np.all(us[1:] >= us[:-1]))
    cal_period = int(_period(np.array([cal_us]), freq)[0])
    periods = _period(us, freq)
    in_cal = us <= cal_us
    in_hold = (us > cal_us) & (us <= end_us)
    if not in_cal.any():
        raise InputError(f"no transaction at or before calibration_end={calibration_end!r} (the "
                         f"earliest is {np.datetime64(int(us.min()), 'us')}): the calibration "
                         "period is empty")
    metadata["rows_after_as_of"] = str(int(np.count_nonzero(us > end_us)))
    cal_args = (codes[in_cal], periods[in_cal], amounts[in_cal] if amount is not None else amounts,
                n_customers, amount is not None)
    first, last, n_per, monetary = _k.summarize_sorted(*cal_args) if ordered else \
        _k.summarize(*cal_args, n_threads=n_threads)
    h_amounts = amounts[in_hold] if amount is not None else np.zeros(int(np.count_nonzero(in_hold)))
    hold_args = (codes[in_hold], periods[in_hold], h_amounts, n_customers)
    h_count, h_mean = _k.holdout_counts_sorted(*hold_args) if ordered else \
        _k.holdout_counts(*hold_args, n_threads=n_threads)
    idx = np.flatnonzero(n_per > 0)
    cols = {customer: ids.take(pa.array(idx)),
            "frequency": (n_per[idx] - 1).astype(np.float64),
            "recency": (last[idx] - first[idx]) / float(freq_multiplier),
            "T": (cal_period - first[idx]) / float(freq_multiplier)}
    if amount is not None:
        cols["monetary_value"] = monetary[idx]
    cols["frequency_holdout"] = h_count[idx].astype(np.float64)
    if amount is not None:
        cols["monetary_value_holdout"] = h_mean[idx]
    cols["duration_holdout"] = np.full(idx.shape[0], (end_period - cal_period) / float(freq_multiplier))
    return pa.table(cols).replace_schema_metadata(metadata)
