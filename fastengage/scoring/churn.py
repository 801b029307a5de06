"""Churn training sets: RFM features as of a cutoff, and the label from the window after it.

For every customer with at least one purchase on or before ``cutoff``:

* features = :func:`fastengage.rfm` computed on the events with ``time <= cutoff`` only, with
  ``as_of=cutoff`` (the rows after the cutoff are removed *before* ``rfm`` sees them, so nothing
  after the cutoff can leak into a feature);
* ``churned`` = True iff the customer has no purchase (a row with ``amount > 0``) with
  ``cutoff < time <= cutoff + horizon``.

Customers who first buy after the cutoff are not in the set (they have no features as of the
cutoff). The schema metadata ``b"fastengage.churn"`` records cutoff, horizon and counts.
"""
from __future__ import annotations

import datetime as _dt
import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .._io.sources import US_PER_DAY, amount_to_float64, open_source, time_to_us
from ..features._common import iso, parse_as_of
from ..errors import InputError

__all__ = ["churn_dataset"]


def _horizon_us(horizon) -> int:
    if isinstance(horizon, _dt.timedelta):
        us = (horizon.days * 86_400 + horizon.seconds) * 1_000_000 + horizon.microseconds
    elif isinstance(horizon, np.timedelta64):
        us = int(horizon.astype("timedelta64[us]").astype(np.int64))
    elif isinstance(horizon, (int, float, np.integer, np.floating)) and not isinstance(horizon, bool):
        us = int(round(float(horizon) * US_PER_DAY))
    else:
        raise InputError(f"horizon must be a timedelta or a number of days, got {type(horizon).__name__}")
    if us <= 0:
        raise InputError(f"horizon must be positive, got {horizon!r}")
    return us


def churn_dataset(data, *, customer: str, time: str, amount: str, cutoff, horizon,
                  order: str | None = None, returns: str = "net",
                  drop_null_customers: bool = False, require_full_horizon: bool = True,
                  label: str = "churned") -> pa.Table:
    """RFM features as of ``cutoff`` plus a churn label over ``(cutoff, cutoff + horizon]``.

    Parameters
    ----------
    data : any input of the Arrow layer (read once; streams are materialised column-wise).
    customer, time, amount, order : str
        Column names, as for :func:`fastengage.rfm`.
    cutoff : datetime, date, ISO string or numpy.datetime64
        The point in time of the features (naive = UTC).
    horizon : datetime.timedelta, numpy.timedelta64 or number of days
        Length of the label window after the cutoff.
    returns, drop_null_customers : as for :func:`fastengage.rfm`.
    require_full_horizon : bool
        Raise if the data ends before ``cutoff + horizon`` (labels would call customers churned
        only because the log stops).
    label : str
        Name of the boolean label column.

    Returns
    -------
    pyarrow.Table
        The :func:`fastengage.rfm` columns (one row per customer active by the cutoff, sorted by
        customer id) followed by ``label`` (bool) and ``purchases_in_horizon`` (int64).
    """
    from ..features import rfm

    cutoff_us = parse_as_of(cutoff)
    if cutoff_us is None:
        raise InputError("cutoff is required")
    horizon_us = _horizon_us(horizon)
    src = open_source(data)
    roles = src.require({"customer": customer, "time": time, "amount": amount, "order": order})
    cols = list(roles.values())
    if src.is_in_memory:
        table = _select(src, cols)
    else:  # features and labels both need the rows: keep only the needed columns in memory
        batches = list(src.batches(cols))
        table = pa.Table.from_batches(batches, schema=pa.schema([src.schema.field(c) for c in cols]))
    if table.num_rows == 0:
        raise InputError("the input is empty: no rows to build a churn data set from")
    t_us = time_to_us(table.column(time), time)
    end_us = int(t_us.max())
    if require_full_horizon and end_us < cutoff_us + horizon_us:
        raise InputError(
            f"the data ends at {iso(end_us)}, before cutoff + horizon = {iso(cutoff_us + horizon_us)}; "
            "labels would mark customers as churned only because the log stops (pass "
            "require_full_horizon=False to accept that)")
    before = pa.array(t_us <= cutoff_us)
    past = table.filter(before)
    if past.num_rows == 0:
        raise InputError(f"no events on or before cutoff {iso(cutoff_us)}")
    features = rfm(past, customer=customer, time=time, amount=amount, order=order,
                   as_of=np.datetime64(cutoff_us, "us"), returns=returns,
                   drop_null_customers=drop_null_customers)

    window = (t_us > cutoff_us) & (t_us <= cutoff_us + horizon_us)
    future = table.filter(pa.array(window))
    amounts = amount_to_float64(future.column(amount), amount) if future.num_rows else np.zeros(0)
    buyers = future.column(customer).filter(pa.array(amounts > 0))
    buyers = buyers.drop_null() if buyers.null_count else buyers
    ids = features.column(customer)
    if len(buyers):
        counts = pc.value_counts(buyers.combine_chunks() if isinstance(buyers, pa.ChunkedArray) else buyers)
        values = counts.field("values")
        pos = pc.index_in(ids, value_set=values)
        n_future = pc.fill_null(pc.take(counts.field("counts"), pos), 0).cast(pa.int64())
    else:
        n_future = pa.array(np.zeros(len(ids), np.int64))
    churned = pc.equal(n_future, 0)
    out = features.append_column(label, churned).append_column("purchases_in_horizon", n_future)
    report = {"cutoff": iso(cutoff_us), "horizon_days": horizon_us / US_PER_DAY,
              "customers": out.num_rows, "churned": int(pc.sum(churned.cast(pa.int64())).as_py() or 0),
              "rows_before_cutoff": past.num_rows, "rows_in_horizon": future.num_rows,
              "rows_after_horizon": int(np.count_nonzero(t_us > cutoff_us + horizon_us))}
    meta = dict(out.schema.metadata or {})
    meta[b"fastengage.churn"] = json.dumps(report).encode()
    return out.replace_schema_metadata(meta)


def _select(src, cols):
    data = src._data
    return data.select(cols) if isinstance(data, pa.Table) else pa.Table.from_batches([data.select(cols)])
