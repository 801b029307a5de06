"""Customer profiles beyond RFM (issue #15.1): one model-ready row per customer, point in time.

:func:`profile` reads the rows once (any input of the Arrow layer), puts the customers with a
purchase in output order (by id), groups their rows by output position with a stable counting
sort, and folds every customer's rows on one thread straight into the output columns (Cython
kernels compiled at build time, ``fastengage.kernels.features.profile_native``). The columns are listed in the README ("Customer
profiles and training sets"); their definitions:

* a row with ``amount >= 0`` is a purchase, ``amount < 0`` a return; only rows with
  ``time <= as_of`` count (``as_of`` defaults to the latest time in the data);
* ``first_purchase`` .. ``monetary_mean`` are exactly :func:`fastengage.rfm`'s values;
* window ``w`` holds the rows with ``as_of - w days < time <= as_of``: ``orders_{w}d`` are
  the distinct orders with a purchase line in it (purchase rows without ``order=``),
  ``purchase_days_{w}d`` the distinct UTC days of its purchase rows, ``spend_{w}d`` the sum of
  its purchase amounts, ``returns_{w}d``/``return_amount_{w}d`` the count and the summed
  magnitude of its return rows (not produced with ``returns="exclude"``);
* trend, for the shortest window ``w``: ``orders_prev_{w}d``/``spend_prev_{w}d`` are the same
  counts over ``(as_of - 2w, as_of - w]``; ``orders_trend = orders_{w}d / orders_prev_{w}d``
  and ``spend_trend = spend_{w}d / spend_prev_{w}d``, null when the previous period is 0;
* gaps between consecutive distinct purchase days (all history): ``gap_mean_days``,
  ``gap_std_days`` (population standard deviation of the gaps), ``last_gap_days``, and
  ``overdue_ratio = recency_days / gap_mean_days``; null with fewer than two purchase days;
* basket (``item=``): ``items_per_order`` = purchase lines / frequency, ``distinct_items``;
  (``category=``): ``distinct_categories``, ``top_category_share`` (lines of the most bought
  category / purchase lines), ``category_entropy`` (natural log, over the lines' categories);
* channel mix (``channel=``): ``n_channels`` used, ``last_channel`` (of the latest purchase row;
  on a tie of times, the greatest channel value among those rows), and per channel value ``v`` (ascending):
  ``channel_{v}_order_share`` (orders with a purchase line in ``v`` / frequency; an order with
  lines in two channels counts in both) and ``channel_{v}_spend_share`` (purchase spend in
  ``v`` / all purchase spend; null when that is 0).
"""
from __future__ import annotations

import json
import logging

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .._io.columns import consented_input
from .._io.sources import open_source
from .._io.times import iso
from ..errors import InputError
from ..kernels.features import profile as _k
from ._common import RETURNS_MODES, _as_type, parse_as_of
from ._profile_input import Rows, read_rows, sorted_codes

__all__ = ["profile", "profile_columns"]

log = logging.getLogger("fastengage")
_TS = pa.timestamp("us", tz="UTC")
_INT64_MIN = -(2**63)
_EMPTY = np.empty(0, np.int64)


def profile(data, *, customer: str, time: str, amount: str, order: str | None = None,
            item: str | None = None, category: str | None = None, channel: str | None = None,
            as_of=None, windows=(30, 90, 365), returns: str = "net",
            drop_null_customers: bool = False, n_threads: int | None = None,
            consent=None) -> pa.Table:
    """Profile features per customer, point in time (see the module docstring and the README).

    Parameters
    ----------
    data : Arrow table, record batch, reader, dataset, Parquet path, or ``__arrow_c_stream__``
    customer, time, amount, order : str
        As for :func:`fastengage.rfm`.
    item, category, channel : str, optional
        Id-like columns (integers or strings, no nulls) of the basket and channel features.
    as_of : datetime, date, ISO str, numpy.datetime64 or None
        Point in time; default: the latest time in the data.
    windows : sequence of positive int
        Window lengths in days; the shortest one is the trend's.
    returns : {"net", "exclude", "error"}
        As for :func:`fastengage.rfm` (``"exclude"`` also drops the return columns).
    drop_null_customers : bool
    n_threads : int, optional
    consent : fastengage.privacy.ConsentFilter, optional
        Use only the rows whose customer had consent for the filter's purpose at the row's time
        (what was excluded: ``consent.last_report``).

    Returns
    -------
    pyarrow.Table
        One row per customer with a purchase by ``as_of``, sorted by customer id; schema metadata
        ``b"fastengage"`` holds the JSON report (as :func:`fastengage.rfm`'s).
    """
    windows = _check_windows(windows)
    if returns not in RETURNS_MODES:
        raise InputError(f"returns must be one of {RETURNS_MODES}, got {returns!r}")
    source = open_source(consented_input(data, consent, customer=customer, time=time))
    roles = source.require(dict(customer=customer, time=time, amount=amount, order=order,
                                item=item, category=category, channel=channel))
    limit_us = parse_as_of(as_of)
    rows = read_rows(source, roles, returns, drop_null_customers, limit_us)
    return profile_of_rows(rows, roles, limit_us, windows, returns, n_threads)


def _check_windows(windows) -> tuple:
    if isinstance(windows, (int, np.integer)):
        windows = (windows,)
    try:
        values = tuple(windows)
    except TypeError:
        raise InputError(f"windows must be a sequence of days, got {windows!r}") from None
    if not values:
        raise InputError("windows must hold at least one window length (days)")
    for w in values:
        if isinstance(w, bool) or not isinstance(w, (int, np.integer)) or not 0 < w <= 1_000_000:
            raise InputError(f"windows must be whole numbers of days in 1..1,000,000, got {w!r}")
    if len(set(int(w) for w in values)) != len(values):
        raise InputError(f"windows has a repeated length: {values!r}")
    return tuple(int(w) for w in values)


def _clamp(us: int) -> np.int64:
    return np.int64(max(us, _INT64_MIN))


def profile_of_rows(rows: Rows, roles: dict, limit_us: int | None, windows: tuple, returns: str,
                    n_threads: int | None) -> pa.Table:
    """The profile table of converted rows, as of ``limit_us`` (None: the latest time)."""
    as_of_us = int(limit_us) if limit_us is not None else int(rows.times.max())
    counts = _k.count_rows(rows.codes, rows.times, rows.amounts, as_of_us, rows.n_codes,
                           n_threads)
    order, ids = _output_order(rows, counts.kept)
    perm, offsets = _k.group_rows(counts, order, rows.codes, rows.times, as_of_us, n_threads)
    day = int(_k.US_PER_DAY)
    trend = int(np.argmin(windows))
    window_lo = np.array([_clamp(as_of_us - w * day) for w in windows], np.int64)
    # channel values in ascending order and the rank of each code (last_channel's tie rule)
    channel_values, channel_rank = (sorted_codes(rows.encoders["channel"])
                                    if "channel" in rows.encoders else (None, _EMPTY))
    ints, floats, shares = _k.fold_profiles(
        perm, offsets, rows.times, rows.amounts, rows.codes_of("order"), rows.codes_of("item"),
        rows.codes_of("category"), rows.codes_of("channel"), _n_codes(rows, "item"),
        _n_codes(rows, "category"), channel_rank, as_of_us, window_lo, trend,
        _clamp(as_of_us - 2 * windows[trend] * day), _clamp(as_of_us - windows[trend] * day),
        returns == "net", n_threads)
    del perm, offsets
    report = dict(rows.report)
    report["rows_after_as_of"] = counts.rows_after
    report["return_rows"] = counts.return_rows
    if returns == "exclude":
        report["return_rows_excluded"] = report["return_rows"]
    channel_type = rows.encoders["channel"].input_type if "channel" in rows.encoders else None
    table = _table(ids, ints, floats, shares, channel_values, channel_rank, roles, windows,
                   returns, channel_type)
    if table.schema.field(0).type != rows.output_type:
        table = table.set_column(0, roles["customer"], _as_type(table.column(0), rows.output_type))
    report.update(as_of=iso(as_of_us), customers=len(order),
                  customers_without_purchase=counts.returns_only, returns=returns)
    log.info("fastengage.profile: %s", json.dumps(report))
    return table.replace_schema_metadata({"fastengage": json.dumps(report)})


def _output_order(rows: Rows, kept: np.ndarray) -> tuple:
    """(codes of the customers with a purchase, sorted by id; their ids)."""
    if rows.ids_sorted:  # dense integer ids: codes ascend with the ids
        order = np.flatnonzero(kept)
    else:
        by_id = pc.sort_indices(rows.ids).to_numpy()
        order = by_id[kept[by_id].view(bool)]
    order = order.astype(np.int64, copy=False)
    if len(order) == len(rows.ids):
        ids = rows.ids if rows.ids_sorted else rows.ids.take(pa.array(order))
    else:
        ids = rows.ids.take(pa.array(order))
    return order, ids


def _n_codes(rows: Rows, role: str) -> int:
    return len(rows.encoders[role]) if role in rows.encoders else 0


def profile_columns(windows=(30, 90, 365), *, returns: str = "net", item: bool = False,
                    category: bool = False, channels=()) -> list:
    """Names of the output columns after the customer column, in order (``channels``: the
    channel values, ascending)."""
    names = ["first_purchase", "last_purchase", "recency_days", "tenure_days", "frequency",
             "purchase_days", "monetary_total", "monetary_mean"]
    for w in windows:
        names += [f"orders_{w}d", f"purchase_days_{w}d", f"spend_{w}d"]
        if returns != "exclude":
            names += [f"returns_{w}d", f"return_amount_{w}d"]
    w0 = min(windows)
    names += [f"orders_prev_{w0}d", f"spend_prev_{w0}d", "orders_trend", "spend_trend",
              "gap_mean_days", "gap_std_days", "last_gap_days", "overdue_ratio"]
    if item:
        names += ["items_per_order", "distinct_items"]
    if category:
        names += ["distinct_categories", "top_category_share", "category_entropy"]
    if len(channels):
        names += ["n_channels", "last_channel"]
        names += [f"channel_{v}_order_share" for v in channels]
        names += [f"channel_{v}_spend_share" for v in channels]
    return names


def _nullable(values: np.ndarray) -> pa.Array:
    return pa.array(values, from_pandas=True)  # NaN -> null


def _as_channel_type(last: pa.Array, typ: pa.DataType) -> pa.Array:
    """``last_channel`` in the channel column's own type: the encoder gives plain values
    (large_string for string_view); a dictionary column gets a dictionary of the channels
    (at most PROFILE_MAX_CHANNELS, within any index type)."""
    if not pa.types.is_dictionary(typ):
        return last.cast(typ)
    encoded = pc.dictionary_encode(last.cast(typ.value_type))
    return pa.DictionaryArray.from_arrays(encoded.indices.cast(typ.index_type), encoded.dictionary,
                                          ordered=typ.ordered)


def _table(ids, ints, floats, shares, channel_values, channel_rank, roles: dict, windows, returns,
           channel_type=None):
    """The output table; ``ints``/``floats``/``shares`` hold one column per row (contiguous, so
    the Arrow arrays are built without copying the values)."""
    k = _k
    cols = [ids,
            pa.array(ints[k.I_FIRST]).cast(_TS), pa.array(ints[k.I_LAST]).cast(_TS),
            pa.array(ints[k.I_RECENCY]), pa.array(ints[k.I_TENURE]),
            pa.array(ints[k.I_FREQUENCY]), pa.array(ints[k.I_DAYS]),
            pa.array(floats[k.F_MONETARY_TOTAL]), pa.array(floats[k.F_MONETARY_MEAN])]
    for w in range(len(windows)):
        i0 = k.N_INT + k.INT_PER_WINDOW * w
        f0 = k.N_FLOAT + k.FLOAT_PER_WINDOW * w
        cols += [pa.array(ints[i0]), pa.array(ints[i0 + 1]), pa.array(floats[f0])]
        if returns != "exclude":
            cols += [pa.array(ints[i0 + 2]), pa.array(floats[f0 + 1])]
    last_gap = ints[k.I_LAST_GAP]
    cols += [pa.array(ints[k.I_ORDERS_PREV]), pa.array(floats[k.F_SPEND_PREV]),
             _nullable(floats[k.F_ORDERS_TREND]), _nullable(floats[k.F_SPEND_TREND]),
             _nullable(floats[k.F_GAP_MEAN]), _nullable(floats[k.F_GAP_STD]),
             pa.array(last_gap, mask=last_gap < 0), _nullable(floats[k.F_OVERDUE])]
    if "item" in roles:
        cols += [pa.array(floats[k.F_ITEMS_PER_ORDER]), pa.array(ints[k.I_DISTINCT_ITEMS])]
    if "category" in roles:
        cols += [pa.array(ints[k.I_DISTINCT_CATEGORIES]),
                 pa.array(floats[k.F_TOP_CATEGORY_SHARE]),
                 pa.array(floats[k.F_CATEGORY_ENTROPY])]
    values = []
    if "channel" in roles:
        by_value = np.argsort(channel_rank)  # code of the i-th smallest value
        n = len(channel_rank)
        cols += [pa.array(ints[k.I_N_CHANNELS]),
                 _as_channel_type(channel_values.take(
                     pa.array(channel_rank[ints[k.I_LAST_CHANNEL]])), channel_type)]
        cols += [pa.array(shares[c]) for c in by_value]
        cols += [_nullable(shares[n + c]) for c in by_value]
        values = [v.as_py() for v in channel_values]
    names = [roles["customer"], *profile_columns(windows, returns=returns, item="item" in roles,
                                                 category="category" in roles, channels=values)]
    if len(set(names)) != len(names):
        raise InputError(f"the customer column {roles['customer']!r} has the name of an output "
                         "column; rename it")
    return pa.Table.from_arrays(cols, names=names)
