"""Point-in-time training sets (issue #15.2): features as of each cut-off, labels from the horizon
after it, stacked with a ``cutoff`` column (rolling origin).

For every cut-off ``c`` (ascending):

* the rows with ``time <= c`` are selected *first* and only they are given to
  :func:`fastengage.rfm` or :func:`fastengage.profile` (``as_of=c``): no feature of a cut-off can
  depend on anything after it (a test changes every later event and checks this);
* one row per customer with a purchase on or before ``c`` (the customers of those features);
* the label comes from the rows with ``c < time <= c + horizon``:

  - ``"churn"`` -> ``churned`` (bool): no purchase in the horizon. A purchase here is a row with
    ``amount > 0`` (:func:`fastengage.churn_dataset` is this function at one cut-off);
  - ``"purchases"`` -> ``purchases_in_horizon`` (int64): distinct orders with a row of
    ``amount > 0`` (such rows when there is no ``order=``);
  - ``"spend"`` -> ``spend_in_horizon`` (float64): the sum of the amounts (returns included with
    ``returns="net"``, left out with ``"exclude"``);
  - a callable ``label(window, features)`` -> ``label``: ``window`` is the horizon's rows (the
    columns read, null customers dropped), ``features`` the cut-off's feature table; it returns
    one value per feature row.

With ``features="profile"``, a channel first seen after a cut-off has its share columns null in
that cut-off's rows (the columns of every cut-off are stacked into one schema).
"""
from __future__ import annotations

import datetime as _dt
import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .._io.columns import consented_input
from .._io.sources import US_PER_DAY, amount_to_float64, open_source, time_to_us
from .._io.times import iso, parse_time
from ..errors import InputError
from ._common import RETURNS_MODES

__all__ = ["training_set", "LABELS"]

LABELS = {"churn": "churned", "purchases": "purchases_in_horizon", "spend": "spend_in_horizon"}
_OPTIONS = {"rfm": ("segments",), "profile": ("item", "category", "channel", "windows")}
_TS = pa.timestamp("us", tz="UTC")


def training_set(data, *, customer: str, time: str, amount: str, order: str | None = None,
                 cutoffs, horizon=90, label="churn", features: str = "rfm",
                 returns: str = "net", drop_null_customers: bool = False,
                 require_full_horizon: bool = True, n_threads: int | None = None,
                 consent=None, **feature_options) -> pa.Table:
    """Features as of each cut-off and labels over the ``horizon`` after it, stacked.

    Parameters
    ----------
    data : any input of the Arrow layer (read once; the columns used are kept in memory).
    customer, time, amount, order : str
        Column names, as for :func:`fastengage.rfm`.
    cutoffs : sequence of datetime, date, ISO str or numpy.datetime64
        Points in time of the features (naive = UTC); no repeats.
    horizon : number of days, datetime.timedelta or numpy.timedelta64
    label : "churn", "purchases", "spend" or callable(window, features) -> values
    features : "rfm" or "profile"
    returns, drop_null_customers : as for :func:`fastengage.rfm`.
    require_full_horizon : bool
        Raise if the data ends before ``cutoff + horizon`` for some cut-off.
    n_threads : int, optional
    consent : fastengage.privacy.ConsentFilter, optional
        Build features and labels only from rows whose customer had consent for the filter's
        purpose at the row's time (what was excluded: ``consent.last_report``).
    **feature_options
        ``segments=`` for "rfm"; ``item=``, ``category=``, ``channel=``, ``windows=`` for
        "profile".

    Returns
    -------
    pyarrow.Table
        ``cutoff`` (timestamp[us, UTC]), the feature columns, then the label column. Schema
        metadata ``b"fastengage.training_set"`` records cut-offs, horizon and per-cut-off counts.
    """
    if features not in _OPTIONS:
        raise InputError(f"features must be 'rfm' or 'profile', got {features!r}")
    unknown = sorted(set(feature_options) - set(_OPTIONS[features]))
    if unknown:
        raise InputError(f"unknown option(s) {unknown} for features={features!r}; accepted: "
                         f"{list(_OPTIONS[features])}")
    if not callable(label) and label not in LABELS:
        raise InputError(f"label must be one of {sorted(LABELS)} or a callable, got {label!r}")
    if returns not in RETURNS_MODES:
        raise InputError(f"returns must be one of {RETURNS_MODES}, got {returns!r}")
    cuts = _cutoffs(cutoffs)
    horizon_us = _horizon_us(horizon)
    source = open_source(consented_input(data, consent, customer=customer, time=time))
    roles = source.require(dict(customer=customer, time=time, amount=amount, order=order,
                                **{k: feature_options.get(k) for k in ("item", "category", "channel")}))
    table = _materialise(source, list(dict.fromkeys(roles.values())))
    table, views = _without_string_views(table)
    if table.num_rows == 0:
        raise InputError("the input is empty: no rows to build a training set from")
    times = time_to_us(table.column(time), time)
    amounts = amount_to_float64(table.column(amount), amount)
    ids = table.column(customer)
    if ids.null_count and not drop_null_customers:
        raise InputError(f"customer column {customer!r} has {ids.null_count} null value(s); pass "
                         "drop_null_customers=True to drop those rows (the count is reported)")
    if returns == "error" and np.any(amounts < 0):
        raise InputError(f"amount column {amount!r} has {int(np.count_nonzero(amounts < 0))} "
                         "negative value(s) (returns) and returns='error'; use returns='net' or "
                         "'exclude'")
    end_us = int(times.max())
    compute = _feature_function(features, dict(customer=customer, time=time, amount=amount,
                                                order=order, returns=returns,
                                                drop_null_customers=drop_null_customers,
                                                n_threads=n_threads, **feature_options))
    parts, report = [], []
    for cut in cuts:
        if require_full_horizon and end_us < cut + horizon_us:
            raise InputError(
                f"the data ends at {iso(end_us)}, before cutoff + horizon = "
                f"{iso(cut + horizon_us)}; labels would mark customers as churned only because "
                "the log stops (pass require_full_horizon=False to accept that)")
        past = table.filter(pa.array(times <= cut))  # the features never see a later row
        if past.num_rows == 0:
            raise InputError(f"no events on or before cutoff {iso(cut)}")
        if past.column(customer).null_count == past.num_rows:
            raise InputError(f"no events with a customer id on or before cutoff {iso(cut)} (its "
                             f"{past.num_rows} row(s) have a null customer, dropped)")
        feats = compute(past, np.datetime64(cut, "us"))
        del past
        window = (times > cut) & (times <= cut + horizon_us)
        values = _labels(table, window, amounts, feats, roles, label, returns)
        name = LABELS[label] if not callable(label) else "label"
        feats = feats.replace_schema_metadata(None)
        feats = feats.add_column(0, "cutoff", pa.array(np.full(feats.num_rows, cut),
                                                      pa.int64()).cast(_TS))
        parts.append(feats.append_column(name, values))
        report.append({"cutoff": iso(cut), "customers": feats.num_rows,
                       "rows_before_cutoff": int(np.count_nonzero(times <= cut)),
                       "rows_in_horizon": int(np.count_nonzero(window)),
                       "rows_after_horizon": int(np.count_nonzero(times > cut + horizon_us))})
    out = _stack(parts, features, roles)
    for name, column in ((customer, customer), ("last_channel", roles.get("channel"))):
        if column in views and name in out.column_names:  # back to the user's type
            i = out.column_names.index(name)
            out = out.set_column(i, name, out.column(i).cast(views[column]))
    meta = {"horizon_days": horizon_us / US_PER_DAY, "features": features,
            "label": label if not callable(label) else getattr(label, "__name__", "callable"),
            "cutoffs": report}
    return out.replace_schema_metadata({"fastengage.training_set": json.dumps(meta)})


def _cutoffs(cutoffs) -> list:
    if cutoffs is None or isinstance(cutoffs, (str, bytes)) or not hasattr(cutoffs, "__iter__"):
        cutoffs = [cutoffs]
    values = [parse_time(c, "cutoffs") for c in cutoffs]
    if not values:
        raise InputError("cutoffs must hold at least one point in time")
    if len(set(values)) != len(values):
        raise InputError("cutoffs has a repeated point in time")
    return sorted(values)


def _horizon_us(horizon) -> int:
    if isinstance(horizon, _dt.timedelta):
        us = (horizon.days * 86_400 + horizon.seconds) * 1_000_000 + horizon.microseconds
    elif isinstance(horizon, np.timedelta64):
        us = int(horizon.astype("timedelta64[us]").astype(np.int64))
    elif isinstance(horizon, (int, float, np.integer, np.floating)) and not isinstance(horizon, bool):
        if not np.isfinite(horizon):
            raise InputError(f"horizon must be finite, got {horizon!r}")
        us = int(round(float(horizon) * US_PER_DAY))
    else:
        raise InputError(f"horizon must be a timedelta or a number of days, got {type(horizon).__name__}")
    if us <= 0:
        raise InputError(f"horizon must be positive, got {horizon!r}")
    return us


def _materialise(source, columns: list) -> pa.Table:
    """The columns used, in memory (one pass over a stream or a file)."""
    if source.is_in_memory:
        data = source._data
        return data.select(columns) if isinstance(data, pa.Table) else \
            pa.Table.from_batches([data.select(columns)])
    schema = pa.schema([source.schema.field(c) for c in columns])
    return pa.Table.from_batches(list(source.batches(columns)), schema=schema)


def _without_string_views(table: pa.Table) -> tuple:
    """(``table`` with string_view values as large_string, ``{name: original type}`` of those
    columns): Arrow has no filter or take kernel for string_view (polars' strings and
    categoricals), and the cut-offs filter the rows."""
    views, fields = {}, []
    for f in table.schema:
        value_type = f.type.value_type if pa.types.is_dictionary(f.type) else f.type
        if pa.types.is_string_view(value_type):
            views[f.name] = f.type
            f = f.with_type(pa.dictionary(f.type.index_type, pa.large_string(), f.type.ordered)
                            if pa.types.is_dictionary(f.type) else pa.large_string())
        fields.append(f)
    return (table.cast(pa.schema(fields)) if views else table), views


def _feature_function(features: str, kw: dict):
    from ._rfm import rfm
    from .profile import profile

    fn = rfm if features == "rfm" else profile
    return lambda past, as_of: fn(past, as_of=as_of, **kw)


def _plain(ids):
    """Ids as a plain array (dictionaries decoded), for matching label keys to features and
    grouping: chunk by chunk, because chunks' dictionaries may differ (Arrow's group-by does
    not unify them, and combining them may outgrow the index type)."""
    if isinstance(ids, pa.ChunkedArray):
        if not pa.types.is_dictionary(ids.type):
            return ids.combine_chunks()
        return pa.concat_arrays([chunk.dictionary_decode() for chunk in ids.chunks]) \
            if ids.num_chunks else pa.array([], ids.type.value_type)
    return ids.dictionary_decode() if pa.types.is_dictionary(ids.type) else ids


def _labels(table, window, amounts, feats, roles, label, returns):
    customer = roles["customer"]
    ids = table.column(customer)
    if ids.null_count:
        window = window & pc.is_valid(ids).to_numpy(zero_copy_only=False)
    rows = table.filter(pa.array(window))
    amt = amounts[window]
    if callable(label):
        values = label(rows, feats)
        values = values if isinstance(values, (pa.Array, pa.ChunkedArray)) else pa.array(values)
        if len(values) != feats.num_rows:
            raise InputError(f"the label function returned {len(values)} values for "
                             f"{feats.num_rows} customers")
        return values
    keys = _plain(feats.column(customer))
    if label == "spend":
        keep = amt >= 0 if returns == "exclude" else np.ones(len(amt), bool)
        sums = pa.table({"k": _plain(rows.column(customer)), "v": pa.array(amt)}) \
            .filter(pa.array(keep)).group_by("k", use_threads=False).aggregate([("v", "sum")])
        pos = pc.index_in(keys, value_set=sums.column("k"))
        return pc.fill_null(pc.take(sums.column("v_sum"), pos), 0.0).cast(pa.float64())
    buys = rows.filter(pa.array(amt > 0))
    k = pa.table({"k": _plain(buys.column(customer)),
                  "o": (_plain(buys.column(roles["order"])) if "order" in roles
                        else pa.array(np.arange(buys.num_rows)))})
    counts = k.group_by("k", use_threads=False).aggregate([("o", "count_distinct")])
    pos = pc.index_in(keys, value_set=counts.column("k"))
    n = pc.fill_null(pc.take(counts.column("o_count_distinct"), pos), 0).cast(pa.int64())
    return pc.equal(n, 0) if label == "churn" else n


def _stack(parts, features, roles) -> pa.Table:
    if len(parts) == 1:
        return parts[0]
    customer = roles["customer"]
    types = {part.schema.field(customer).type for part in parts}
    if len(types) > 1 and all(pa.types.is_dictionary(t) for t in types):  # dictionary ids: a cut-off with more customers widened its index type
        widest = max(types, key=lambda t: t.index_type.bit_width)
        parts = [p.set_column(p.column_names.index(customer), customer, p[customer].cast(widest))
                 for p in parts]
    out = pa.concat_tables(parts, promote_options="default")
    if features != "profile" or "channel" not in roles:
        return out
    # Channel share columns: those of every cut-off, order shares then spend shares, each
    # in the order of the channel values.
    fixed = [n for n in out.column_names if not (n.startswith("channel_") and n.endswith("_share"))]
    shares = [n for n in out.column_names if n not in fixed]
    label = fixed.pop()
    by_kind = sorted(shares, key=lambda n: (n.endswith("_spend_share"), _value_key(n)))
    return out.select(fixed + by_kind + [label])


def _value_key(name: str) -> tuple:
    value = name[len("channel_"):].rsplit("_", 2)[0]
    return (0, int(value), "") if value.lstrip("-").isdigit() else (1, 0, value)
