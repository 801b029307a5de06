"""``fastengage.features.profile`` across partitions, equal to the single-machine table.

Every profile column of a customer depends only on its own rows and ``as_of``, except which
``channel_{v}_*`` columns exist: one pair per channel value of the whole input (values on rows
with a customer id, whatever their time or amount). So the driver collects the distinct channel
values (few), builds the output schema once (:func:`output_schema`: ``profile`` of a one-row-per-
channel table in the data's own types, as of before every row, so it has no customer but every
column), and each bucket of whole customers is profiled with the global ``as_of``
(:func:`profile_bucket`); a bucket without some channel gets its columns as ``profile`` computes
them for a customer who never used it: order share 0.0, spend share 0.0 (null when the customer
has no purchase spend, as every other spend share of that customer).
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import InputError
from ..features import profile as local_profile
from ..features._common import RETURNS_MODES
from .folds import fold_bucket, merge_reports
from .rfm import combine_samples

_BEFORE_EVERYTHING = np.datetime64("0001-01-01", "us")  # an as_of before any row: no customer


_OPTIONS = dict(order=None, item=None, category=None, channel=None, windows=(30, 90, 365),
                returns="net", drop_null_customers=False)


def settings_of(customer: str, time: str, amount: str, options: dict):
    """``(columns read, keyword arguments of profile)`` of an adapter's call; ``options``: the
    keywords of ``profile`` other than ``as_of``/``n_threads`` (order, item, ..., returns)."""
    unknown = sorted(set(options) - set(_OPTIONS))
    if unknown:
        raise InputError(f"profile() has no option(s) {unknown}; it takes {sorted(_OPTIONS)}")
    settings = dict(customer=customer, time=time, amount=amount, **{**_OPTIONS, **options})
    if settings["returns"] not in RETURNS_MODES:
        raise InputError(f"returns must be one of {RETURNS_MODES}, got {settings['returns']!r}")
    return _columns(settings), settings


def _columns(settings: dict) -> list:
    return [settings[c] for c in ("customer", "time", "amount", "order", "item", "category",
                                  "channel") if settings[c] is not None]


def run(scan, fold_buckets, settings: dict, n_threads: int):
    """The engine-neutral steps of an adapter's ``profile``: ``scan(sample=, channel=)`` runs
    the sampling scan (-> as_of, rows, null rows, scans), ``fold_buckets(fold, schema)`` folds
    every bucket of whole customers (-> values, reports). Returns ``(values, report)``."""
    as_of_us, rows, nulls, scans = scan(sample=_columns(settings), channel=settings["channel"])
    schema = output_schema(*combine_samples(scans), settings)
    values, reports = fold_buckets(
        lambda t: profile_bucket(t, settings, as_of_us, schema, n_threads), schema)
    return values, merge_reports(reports, rows, nulls)


def output_schema(sample: pa.Table, channels, settings: dict) -> pa.Schema:
    """Schema of the profile table. ``sample``: a row of the input with a customer id (the
    columns profile reads, in the engine's Arrow types); ``channels``: the distinct channel
    values on rows with a customer id (or None)."""
    table = sample.slice(0, 1)
    channel = settings.get("channel")
    if channel is not None:
        values = pa.array(channels).cast(table.schema.field(channel).type)
        table = table.take(pa.array(np.zeros(len(values), np.int64)))
        table = table.set_column(table.schema.get_field_index(channel), channel, values)
    out = local_profile(table, **settings, as_of=_BEFORE_EVERYTHING, n_threads=1)
    return out.schema.remove_metadata()


def profile_bucket(table: pa.Table, settings: dict, as_of_us: int, schema: pa.Schema,
                   n_threads: int = 1):
    """``(values, report)`` of a table holding ALL rows of its customers (see
    :func:`.folds.fold_bucket`), with every channel column of ``schema``."""
    as_of = np.datetime64(as_of_us, "us")

    def fold(t):
        return _fill_channels(local_profile(t, **settings, as_of=as_of, n_threads=n_threads),
                              schema)
    return fold_bucket(table, settings["customer"], fold, schema)


def _fill_channels(out: pa.Table, schema: pa.Schema) -> pa.Table:
    missing = [name for name in schema.names if name not in out.column_names]
    if not missing:
        return out
    spend = [n for n in out.column_names if n.startswith("channel_") and n.endswith("_spend_share")]
    n = out.num_rows
    has_spend = pc.is_valid(out.column(spend[0])) if spend else pa.array(np.zeros(n, bool))
    for name in missing:  # only channel_{v}_order_share / _spend_share columns can be missing
        zeros = pa.array(np.zeros(n))
        column = zeros if name.endswith("_order_share") else pc.if_else(has_spend, zeros, None)
        out = out.append_column(name, column)
    return out
