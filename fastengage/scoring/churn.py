"""Churn training sets: RFM features as of a cutoff, and the label from the window after it.

For every customer with at least one purchase on or before ``cutoff``:

* features = :func:`fastengage.rfm` computed on the events with ``time <= cutoff`` only, with
  ``as_of=cutoff`` (the rows after the cutoff are removed *before* ``rfm`` sees them, so nothing
  after the cutoff can leak into a feature);
* ``churned`` = True iff the customer has no purchase (a row with ``amount > 0``) with
  ``cutoff < time <= cutoff + horizon``;
* ``purchases_in_horizon`` = the distinct orders (``order=``) with such a row, or such rows
  when there is no ``order=`` column.

It is the one-cut-off case of :func:`fastengage.training_set` (``label="purchases"``, the
churn label derived from it), so the two cannot disagree.

Customers who first buy after the cutoff are not in the set (they have no features as of the
cutoff). The schema metadata ``b"fastengage.churn"`` records cutoff, horizon and counts.
"""
from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.compute as pc

from ..errors import InputError

__all__ = ["churn_dataset"]


def churn_dataset(data, *, customer: str, time: str, amount: str, cutoff, horizon,
                  order: str | None = None, returns: str = "net",
                  drop_null_customers: bool = False, require_full_horizon: bool = True,
                  label: str = "churned", n_threads: int | None = None,
                  consent=None) -> pa.Table:
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
    consent : fastengage.privacy.ConsentFilter, optional
        Only rows whose customer had consent at the row's time (see :func:`training_set`).

    Returns
    -------
    pyarrow.Table
        The :func:`fastengage.rfm` columns (one row per customer active by the cutoff, sorted by
        customer id) followed by ``label`` (bool) and ``purchases_in_horizon`` (int64). Schema
        metadata ``b"fastengage.churn"``: cutoff, horizon, customers, churned and row counts.
    """
    from ..features.training import training_set

    if cutoff is None:
        raise InputError("cutoff is required")
    stacked = training_set(data, customer=customer, time=time, amount=amount, order=order,
                           cutoffs=[cutoff], horizon=horizon, label="purchases",
                           features="rfm", returns=returns,
                           drop_null_customers=drop_null_customers,
                           require_full_horizon=require_full_horizon, n_threads=n_threads,
                           consent=consent)
    facts = json.loads(stacked.schema.metadata[b"fastengage.training_set"])
    purchases = stacked.column("purchases_in_horizon")
    churned = pc.equal(purchases, 0)
    out = stacked.drop_columns(["cutoff", "purchases_in_horizon"]) \
        .append_column(label, churned).append_column("purchases_in_horizon", purchases)
    cut = facts["cutoffs"][0]
    report = {"cutoff": cut["cutoff"], "horizon_days": facts["horizon_days"],
              "customers": out.num_rows,
              "churned": int(pc.sum(churned.cast(pa.int64())).as_py() or 0),
              "rows_before_cutoff": cut["rows_before_cutoff"],
              "rows_in_horizon": cut["rows_in_horizon"],
              "rows_after_horizon": cut["rows_after_horizon"]}
    return out.replace_schema_metadata({b"fastengage.churn": json.dumps(report).encode()})
