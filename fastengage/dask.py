"""fastengage inside Dask: the same functions over Dask DataFrames.

>>> import fastengage.dask as fed
>>> features = fed.rfm(ddf, customer="customer", time="ts", amount="amount")  # Dask DataFrame

Every result equals the single-machine function on the computed data (rows in no particular
order). Per-customer folds (RFM, CLV summaries) run on each partition after
``shuffle(on=customer)``, which puts every row of a customer in one partition; scoring,
recommendations and CLV predictions map partitions with the model passed once as a graph node
(its model file; loaded once per worker process). On the client: the default ``as_of`` from
per-partition scans, the RFM score cut points from the three metric columns of all customers
(24 bytes per customer), CLV fits from pattern counts. Partitions cross into fastengage as Arrow
(``pyarrow.Table.from_pandas``) and come back as pandas.
"""
from __future__ import annotations

import json

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pyarrow as pa

from ._distributed import decisions as _decisions
from ._distributed import folds as _folds
from ._distributed import models as _models
from ._distributed import monitoring as _monitoring
from ._distributed import profile as _profile
from ._distributed import rfm as _rfm
from ._io.times import parse_time
from .errors import ColumnNotFoundError, InputError
from .features._common import RETURNS_MODES

__all__ = ["rfm", "profile", "report", "score", "recommend", "clv_summary", "clv_fit",
           "clv_predict", "decide", "monitor_profile"]


def _require(ddf, columns) -> None:
    missing = [c for c in columns if c is not None and c not in ddf.columns]
    if missing:
        raise ColumnNotFoundError(
            ", ".join(repr(c) for c in missing) + " not in the DataFrame; available columns: "
            + ", ".join(repr(str(c)) for c in ddf.columns))


def _arrow(pdf) -> pa.Table:
    # without pandas' metadata: it would carry the frame's attrs (the reports) into every output
    return pa.Table.from_pandas(pdf, preserve_index=False).replace_schema_metadata(None)


def _arrow_meta(schema: pa.Schema):
    """Empty pandas frame of an Arrow schema in Arrow dtypes (nullable integers: profile)."""
    return schema.empty_table().to_pandas(types_mapper=pd.ArrowDtype)


def _meta(schema: pa.Schema, like=None, keep: str | None = None):
    """Empty pandas frame of an Arrow schema (``keep`` takes its dtype from ``like``)."""
    meta = schema.empty_table().to_pandas()
    if keep is not None:
        meta[keep] = like[keep].iloc[:0]
    return meta


def _scan(ddf, customer, time, as_of, drop_null_customers, sample=None, channel=None):
    """``(as_of in microseconds, rows, null-id rows, the scans)`` from per-partition scans."""
    schema = _rfm.SCAN_SCHEMA if sample is None else _rfm.SAMPLE_SCAN_SCHEMA
    scans = ddf.map_partitions(
        lambda pdf: next(_rfm.scan([_arrow(pdf)], customer, time, sample, channel)).to_pandas(),
        meta=_meta(schema)).compute()
    scans = pa.Table.from_pandas(scans, schema=schema, preserve_index=False)
    latest, rows, nulls = _rfm.combine_scans(scans, customer, drop_null_customers)
    return (latest if as_of is None else parse_time(as_of, "as_of")), rows, nulls, scans


def _by_customer(ddf, customer, buckets, fold, meta):
    """``fold(table)`` per partition after a shuffle on ``customer`` (``buckets`` partitions)."""
    shuffled = ddf.shuffle(on=customer, npartitions=buckets)
    return shuffled.map_partitions(lambda pdf: fold(_arrow(pdf)).to_pandas(), meta=meta)


def _folded(ddf, customer, buckets, fold, meta):
    """Per-customer values of every bucket (``fold(table) -> (values, report)``), persisted,
    and the buckets' reports (kept in each partition's ``attrs``). Pandas dtypes as in
    ``meta``: numpy ones, or Arrow ones (nullable integers) when its first column has one."""
    arrow_dtypes = isinstance(meta.dtypes.iloc[0], pd.ArrowDtype)

    def run(pdf):
        values, report = fold(_arrow(pdf))
        out = values.to_pandas(types_mapper=pd.ArrowDtype if arrow_dtypes else None)
        if report:
            out.attrs[_folds.REPORT] = report
        return out
    shuffled = ddf.shuffle(on=customer, npartitions=buckets)
    values = shuffled.map_partitions(run, meta=meta).persist()
    reports = dask.compute(*[dask.delayed(lambda p: p.attrs.get(_folds.REPORT))(part)
                             for part in values.to_delayed()])
    return values, [r for r in reports if r]


def _with_report(frame, report: dict):
    # only the report: pandas keeps attrs through a concat only when every frame has the same
    frame.attrs = {_folds.KEY: json.dumps(report)}
    return frame


def report(result) -> dict | None:
    """The report (as ``fastengage.rfm`` / ``profile`` attach it to their table) of a result of
    :func:`rfm` or :func:`profile`: a Dask DataFrame or the pandas frame it computes to (its
    ``attrs``)."""
    attrs = result.attrs if isinstance(result, pd.DataFrame) else result._meta.attrs
    return json.loads(attrs[_folds.KEY]) if _folds.KEY in attrs else None


def rfm(ddf, *, customer: str, time: str, amount: str, order: str | None = None, as_of=None,
        returns: str = "net", drop_null_customers: bool = False, segments=None,
        buckets: int | None = None, n_threads: int = 1):
    """:func:`fastengage.rfm` of a Dask DataFrame, as a Dask DataFrame (same columns and
    values, scores and segments included). The per-customer values are persisted (they feed
    both the score cut points and the result). ``rfm``'s report: :func:`report`."""
    if returns not in RETURNS_MODES:
        raise InputError(f"returns must be one of {RETURNS_MODES}, got {returns!r}")
    cols = [c for c in (customer, time, amount, order) if c is not None]
    _require(ddf, cols)
    ddf = ddf[cols]
    as_of_us, rows, nulls, _ = _scan(ddf[[customer, time]], customer, time, as_of,
                                     drop_null_customers)
    settings = dict(customer=customer, time=time, amount=amount, order=order, returns=returns,
                    drop_null_customers=drop_null_customers)
    values, reports = _folded(ddf, customer, buckets,
                              lambda t: _rfm.rfm_bucket(t, settings, as_of_us, n_threads),
                              _meta(_rfm.value_schema(customer, pa.null()), ddf._meta, customer))
    plan = _rfm.score_plan(_arrow(values[list(_rfm.METRICS)].compute()), segments)
    merged = _folds.merge_reports(reports, rows, nulls)
    meta = _with_report(_meta(_rfm.output_schema(customer, pa.null()), ddf._meta, customer), merged)
    return values.map_partitions(
        lambda pdf: _with_report(_rfm.add_scores(_arrow(pdf), plan).to_pandas(), merged),
        meta=meta)


def profile(ddf, *, customer: str, time: str, amount: str, as_of=None,
            buckets: int | None = None, n_threads: int = 1, **options):
    """:func:`fastengage.features.profile` of a Dask DataFrame, as a Dask DataFrame (same
    columns and values, in pandas Arrow dtypes; channel columns for every channel value of
    the whole input; the report: :func:`report`). Folded per partition after a shuffle on
    the customer. ``options``: order, item, category, channel, windows, returns,
    drop_null_customers, as for ``profile``."""
    cols, settings = _profile.settings_of(customer, time, amount, options)
    _require(ddf, cols)
    ddf = ddf[cols]
    values, merged = _profile.run(
        lambda **sample: _scan(ddf, customer, time, as_of, settings["drop_null_customers"],
                               **sample),
        lambda fold, schema: _folded(ddf, customer, buckets, fold, _arrow_meta(schema)),
        settings, n_threads)
    meta = _with_report(values._meta.copy(), merged)
    return values.map_partitions(lambda pdf: _with_report(pdf.copy(), merged), meta=meta)


def _shipped(model):
    from dask import delayed
    token, data = _models.ship(model)
    return token, delayed(data, pure=True)  # one graph node, not a copy per task


def score(ddf, model, *, id: str | None = None, features=None, nulls: str | None = None,
          n_threads: int = 1):
    """``model.score`` of every row of a Dask DataFrame (``map_partitions``)."""
    feats = _models.score_features(model, features)
    _require(ddf, [id, *feats])
    dtype = np.asarray(model.predict(np.zeros((1, model.n_features)))).dtype
    out = pa.schema(([(id, pa.null())] if id is not None else [])
                    + [(name, pa.from_numpy_dtype(dtype)) for name in model.output_names])
    token, data = _shipped(model)
    options = dict(id=id, features=feats, nulls=nulls, n_threads=n_threads)

    def scored(pdf, data):
        batches = list(_models.score_batches([_arrow(pdf)], _models.worker_model(token, data),
                                             options))
        if not batches:
            return _meta(out, pdf, id)
        return pa.Table.from_batches(batches).to_pandas()
    cols = ([id] if id is not None else []) + [f for f in feats if f != id]
    return ddf[cols].map_partitions(scored, data, meta=_meta(out, ddf._meta, id))


def recommend(model, customers=None, *, customer: str = "customer", n: int = 10,
              exclude_seen: bool = True, items=None, exclude_items=None,
              npartitions: int = 4, n_threads: int = 1):
    """Batch top-``n`` for the customers of a Dask DataFrame column (default: every customer of
    the model, in ``npartitions`` partitions), model passed once."""
    if customers is None:
        ids = pa.table({customer: model.customers_.ids()}).to_pandas()
        customers = dd.from_pandas(ids, npartitions=npartitions)
    _require(customers, [customer])
    out = _models.recommend_schema(model)
    token, data = _shipped(model)
    options = dict(n=n, exclude_seen=exclude_seen, items=items, exclude_items=exclude_items,
                   n_threads=n_threads)

    def top_n(pdf, data):
        batches = list(_models.recommend_batches([_arrow(pdf)], _models.worker_model(token, data),
                                                 customer, options))
        return pa.Table.from_batches(batches, out).to_pandas()
    return customers[[customer]].map_partitions(top_n, data, meta=_meta(out))


def clv_summary(ddf, *, customer: str, time: str, amount: str | None = None, as_of=None,
                freq: str = "D", freq_multiplier: float = 1.0, calibration_end=None,
                buckets: int | None = None):
    """:func:`fastengage.clv.summary` of a Dask DataFrame (same columns and values)."""
    cols = [c for c in (customer, time, amount) if c is not None]
    _require(ddf, cols)
    ddf = ddf[cols]
    as_of_us = _scan(ddf[[customer, time]], customer, time, as_of, False)[0]
    settings = dict(customer=customer, time=time, amount=amount, freq=freq,
                    freq_multiplier=freq_multiplier, calibration_end=calibration_end)
    meta = _meta(_models.summary_schema(pa.null(), settings), ddf._meta, customer)
    return _by_customer(ddf, customer, buckets,
                        lambda t: _models.summary_bucket(t, settings, as_of_us), meta)


def clv_fit(model, summary, *, frequency_col: str = "frequency", recency_col: str = "recency",
            T_col: str = "T", n_threads: int | None = None):
    """Fit a CLV transaction model on the client from the summary's pattern counts."""
    cols = [frequency_col, recency_col, T_col]
    _require(summary, cols)
    patterns = summary.groupby(cols).size().rename("count").reset_index().compute()
    return _models.fit_patterns(model, _arrow(patterns), cols, n_threads=n_threads)


def clv_predict(model, summary, t: float, *, customer: str | None = None,
                frequency_col: str = "frequency", recency_col: str = "recency", T_col: str = "T",
                n_threads: int = 1):
    """``model.predict`` per summary row (``map_partitions``, model passed once)."""
    cols = [c for c in (customer, frequency_col, recency_col, T_col) if c is not None]
    _require(summary, cols)
    out = pa.schema(([(customer, pa.null())] if customer else [])
                    + [("probability_alive", pa.float64()), ("expected_purchases", pa.float64())])
    token, data = _shipped(model)
    options = dict(customer=customer, frequency_col=frequency_col, recency_col=recency_col,
                   T_col=T_col, n_threads=n_threads)

    def predicted(pdf, data):
        if len(pdf) == 0:
            return _meta(out, pdf, customer)
        batches = list(_models.predict_batches([_arrow(pdf)], _models.worker_model(token, data),
                                               t, options))
        return pa.Table.from_batches(batches).to_pandas()
    return summary[cols].map_partitions(predicted, data, meta=_meta(out, summary._meta, customer))


def decide(ddf, policy, *, seed: int | None = None, persist: bool = True, n_threads: int = 1,
           **options):
    """``policy.decide`` (:mod:`fastengage.bandits`) of every row of a Dask DataFrame, equal to
    the single-machine call on the computed rows (row ``i`` draws from ``(seed, i)``), as a
    Dask DataFrame in pandas Arrow dtypes. ``options``: ``features``, ``id``, ``eligible`` (a
    column of arm lists), ``expected``, ``propensity_draws``. The partitions' rows are counted
    first, so both passes must see the same rows in the same order: the columns read are
    persisted first (a shuffle need not give its rows in the same order twice);
    ``persist=False`` skips that for a DataFrame already persisted or read from files. The
    policy is passed once, as its safe file."""
    options = _decisions.check_options(dict(options, seed=seed, n_threads=n_threads))
    cols = _decisions.columns_read(policy, options)
    _require(ddf, cols)
    parts = (ddf[cols].persist() if persist else ddf[cols]).to_delayed()
    starts = np.concatenate([[0], np.cumsum(dask.compute(*[dask.delayed(len)(p) for p in parts]))])
    token, data = _models.ship_saved(policy)
    data = dask.delayed(data, pure=True)
    id_col = options.get("id")
    schema = _decisions.output_schema(
        policy, _arrow(ddf._meta[[id_col]]).schema.field(0).type if id_col else None, options)

    def decided(pdf, first_row, data):
        batches = _decisions.decide_batches([_arrow(pdf)], _decisions.worker_policy(token, data),
                                            int(first_row), options)
        return pa.Table.from_batches(list(batches), schema).to_pandas(types_mapper=pd.ArrowDtype)
    return dd.from_delayed([dask.delayed(decided)(p, start, data)
                            for p, start in zip(parts, starts)], meta=_arrow_meta(schema))


def monitor_profile(ddf, columns=None, *, categorical=(), mode: str = "auto",
                    exact_limit: int | None = None, sketch_size: int | None = None,
                    n_threads: int = 1):
    """A drift profile (:class:`fastengage.monitor.Profile`, on the client) of a Dask
    DataFrame: one per partition, sent back as its safe file and merged in partition order;
    equal to ``Profile.from_data`` of the computed rows (exact values and counts, moments to
    rounding). Arguments as for ``Profile.from_data``."""
    options = dict(mode=mode, exact_limit=exact_limit, sketch_size=sketch_size)
    kinds = _monitoring.kinds_of(_arrow(ddf._meta).schema, columns, categorical, options)

    def one(pdf, partition):
        return _monitoring.partition_profile([_arrow(pdf)], kinds, options, partition, n_threads)
    blobs = dask.compute(*[dask.delayed(lambda p, i: next(one(p, i)))(part, i)
                           for i, part in enumerate(ddf[list(kinds)].to_delayed())])
    return _monitoring.merge_profiles(pa.Table.from_batches(blobs), kinds, options)
