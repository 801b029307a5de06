"""fastengage inside Ray Data: the same functions over ``ray.data.Dataset`` s.

>>> import fastengage.ray as fer
>>> features = fer.rfm(ds, customer="customer", time="ts", amount="amount")   # a Dataset

Every result equals the single-machine function on the collected data (rows unordered). All
maps use ``batch_format="pyarrow"``. Per-customer folds (RFM, CLV summaries): each row gets the
stable bucket of its customer id (:mod:`fastengage._distributed.buckets`), and
Ray tasks split every block by bucket and fold each bucket's pieces as one Arrow table, so Ray's
block and batch boundaries never cut a customer. Scoring, recommendations and CLV predictions:
``map_batches`` with the model shipped as its model file, loaded once per worker process. On
the driver: the default ``as_of``, the RFM score cut points (24 bytes per customer), CLV fits
from pattern counts.
"""
from __future__ import annotations

import json

import numpy as np
import pyarrow as pa

from ._distributed import decisions as _decisions
from ._distributed import folds as _folds
from ._distributed import models as _models
from ._distributed import monitoring as _monitoring
from ._distributed import profile as _profile
from ._distributed import rfm as _rfm
from ._distributed.buckets import bucket_of
from ._io.times import parse_time
from .errors import ColumnNotFoundError, InputError
from .features._common import RETURNS_MODES

__all__ = ["rfm", "profile", "report", "score", "recommend", "clv_summary", "clv_fit",
           "clv_predict", "decide", "monitor_profile"]


def _require(ds, columns) -> None:
    names = ds.schema().names
    missing = [c for c in columns if c is not None and c not in names]
    if missing:
        raise ColumnNotFoundError(", ".join(repr(c) for c in missing)
                                  + " not in the Dataset; available columns: "
                                  + ", ".join(repr(n) for n in names))


def _collect(ds) -> pa.Table:
    import ray
    tables = [t for t in ray.get(ds.to_arrow_refs())]
    return pa.concat_tables(tables, promote_options="permissive") if tables else None


def _scan(ds, customer, time, as_of, drop_null_customers, sample=None, channel=None):
    """``(as_of in microseconds, rows, null-id rows, the scans)`` from per-batch scans."""
    scans = ds.map_batches(
        lambda t: pa.Table.from_batches(list(_rfm.scan([t], customer, time, sample, channel))),
        batch_format="pyarrow", batch_size=None)
    table = _collect(scans)
    if table is None:
        table = (_rfm.SCAN_SCHEMA if sample is None else _rfm.SAMPLE_SCAN_SCHEMA).empty_table()
    latest, rows, nulls = _rfm.combine_scans(table, customer, drop_null_customers)
    return (latest if as_of is None else parse_time(as_of, "as_of")), rows, nulls, table


def _buckets(buckets: int | None) -> int:
    if buckets is None:
        import ray
        return max(1, 4 * int(ray.cluster_resources().get("CPU", 1)))
    if int(buckets) < 1:
        raise InputError(f"buckets must be a positive number, got {buckets!r}")
    return int(buckets)


def _split_block(table: pa.Table, customer: str, n: int):
    """The rows of one block in ``n`` pieces by the bucket of their customer (0-row pieces keep
    the schema; a column-less empty block, which Ray makes of empty inputs, gives Nones)."""
    if table.num_rows == 0:
        return [None] * n if n > 1 else None
    which = bucket_of(table.column(customer), n)
    grouped = table.take(pa.array(np.argsort(which, kind="stable")))
    starts = np.concatenate([[0], np.cumsum(np.bincount(which, minlength=n))])
    pieces = [grouped.slice(int(starts[b]), int(starts[b + 1] - starts[b])) for b in range(n)]
    return pieces if n > 1 else pieces[0]


def _fold_pieces(fold, *pieces):
    """``fold(table)`` of one bucket, its pieces from every block in block order."""
    tables = [t for t in pieces if t is not None]
    return fold(pa.concat_tables(tables, promote_options="permissive"))


def _by_customer(ds, customer, buckets, fold):
    """``fold(table) -> (values, report)`` once per bucket of customers, every row of a customer
    in one table: ``(Dataset of the values, reports)``.

    A map-reduce of Ray tasks over the blocks (not Ray Data's hash shuffle: Ray 2.60 hands an
    empty input block on as a column-less table, which its shuffle then fails to concatenate
    with the real pieces of a partition)."""
    import ray
    import ray.data
    n = _buckets(buckets)
    split = ray.remote(_split_block).options(num_returns=n)
    blocks = [split.remote(ref, customer, n) for ref in ds.to_arrow_refs()]
    if n == 1:
        blocks = [[b] for b in blocks]
    reduce = ray.remote(_fold_pieces).options(num_returns=2)
    outs = [reduce.remote(fold, *[pieces[b] for pieces in blocks]) for b in range(n)]
    reports = ray.get([report for _, report in outs])
    return ray.data.from_arrow_refs([values for values, _ in outs]), [r for r in reports if r]


def report(result) -> dict | None:
    """The report (as ``fastengage.rfm`` / ``profile`` attach it to their table) of a result of
    :func:`rfm` or :func:`profile` (a Dataset, or a table collected from it): its schema
    metadata."""
    schema = result.schema if isinstance(result, pa.Table) else result.schema().base_schema
    meta = schema.metadata or {}
    return json.loads(meta[_folds.KEY.encode()]) if _folds.KEY.encode() in meta else None


def rfm(ds, *, customer: str, time: str, amount: str, order: str | None = None, as_of=None,
        returns: str = "net", drop_null_customers: bool = False, segments=None,
        buckets: int | None = None, n_threads: int = 1):
    """:func:`fastengage.rfm` of a Ray Dataset, as a Dataset (same columns and values, scores
    and segments included). The per-customer values are materialised once; ``rfm``'s report
    is the schema metadata of every block (:func:`report`)."""
    if returns not in RETURNS_MODES:
        raise InputError(f"returns must be one of {RETURNS_MODES}, got {returns!r}")
    cols = [c for c in (customer, time, amount, order) if c is not None]
    _require(ds, cols)
    ds = ds.select_columns(cols)
    as_of_us, rows, nulls, _ = _scan(ds.select_columns([customer, time]), customer, time, as_of,
                                     drop_null_customers)
    settings = dict(customer=customer, time=time, amount=amount, order=order, returns=returns,
                    drop_null_customers=drop_null_customers)
    values, reports = _by_customer(ds, customer, buckets,
                                   lambda t: _rfm.rfm_bucket(t, settings, as_of_us, n_threads))
    plan = _rfm.score_plan(_collect(values.select_columns(list(_rfm.METRICS))), segments)
    merged = _folds.merge_reports(reports, rows, nulls)
    return values.map_batches(lambda t: _folds.with_report(_rfm.add_scores(t, plan), merged),
                              batch_format="pyarrow")


def profile(ds, *, customer: str, time: str, amount: str, as_of=None,
            buckets: int | None = None, n_threads: int = 1, **options):
    """:func:`fastengage.features.profile` of a Ray Dataset, as a Dataset (same columns and
    values, channel columns for every channel value of the whole input; the report:
    :func:`report`). Folded per bucket of customers like :func:`rfm`. ``options``: order,
    item, category, channel, windows, returns, drop_null_customers, as for ``profile``."""
    cols, settings = _profile.settings_of(customer, time, amount, options)
    _require(ds, cols)
    ds = ds.select_columns(cols)
    values, merged = _profile.run(
        lambda **sample: _scan(ds, customer, time, as_of, settings["drop_null_customers"],
                               **sample),
        lambda fold, schema: _by_customer(ds, customer, buckets, fold), settings, n_threads)
    return values.map_batches(lambda t: _folds.with_report(t, merged), batch_format="pyarrow")


def score(ds, model, *, id: str | None = None, features=None, nulls: str | None = None,
          n_threads: int = 1):
    """``model.score`` of every row of a Ray Dataset (``map_batches``)."""
    feats = _models.score_features(model, features)
    _require(ds, [id, *feats])
    token, data = _models.ship(model)
    options = dict(id=id, features=feats, nulls=nulls, n_threads=n_threads)

    def scored(table):
        return pa.Table.from_batches(list(_models.score_batches(
            [table], _models.worker_model(token, data), options)))
    cols = ([id] if id is not None else []) + [f for f in feats if f != id]
    return ds.select_columns(cols).map_batches(scored, batch_format="pyarrow")


def recommend(model, customers=None, *, customer: str = "customer", n: int = 10,
              exclude_seen: bool = True, items=None, exclude_items=None, blocks: int = 4,
              n_threads: int = 1):
    """Batch top-``n`` for the customers of a Dataset column (default: every customer of the
    model, in ``blocks`` blocks)."""
    import ray.data
    if customers is None:
        customers = ray.data.from_arrow(pa.table({customer: model.customers_.ids()}))
        customers = customers.repartition(blocks)
    _require(customers, [customer])
    token, data = _models.ship(model)
    schema = _models.recommend_schema(model)
    options = dict(n=n, exclude_seen=exclude_seen, items=items, exclude_items=exclude_items,
                   n_threads=n_threads)

    def top_n(table):
        return pa.Table.from_batches(list(_models.recommend_batches(
            [table], _models.worker_model(token, data), customer, options)), schema)
    return customers.select_columns([customer]).map_batches(top_n, batch_format="pyarrow")


def clv_summary(ds, *, customer: str, time: str, amount: str | None = None, as_of=None,
                freq: str = "D", freq_multiplier: float = 1.0, calibration_end=None,
                buckets: int | None = None):
    """:func:`fastengage.clv.summary` of a Ray Dataset (same columns and values)."""
    cols = [c for c in (customer, time, amount) if c is not None]
    _require(ds, cols)
    ds = ds.select_columns(cols)
    as_of_us = _scan(ds.select_columns([customer, time]), customer, time, as_of, False)[0]
    settings = dict(customer=customer, time=time, amount=amount, freq=freq,
                    freq_multiplier=freq_multiplier, calibration_end=calibration_end)
    return _by_customer(ds, customer, buckets,
                        lambda t: (_models.summary_bucket(t, settings, as_of_us), None))[0]


def clv_fit(model, summary, *, frequency_col: str = "frequency", recency_col: str = "recency",
            T_col: str = "T", n_threads: int | None = None):
    """Fit a CLV transaction model on the driver from the summary's pattern counts."""
    cols = [frequency_col, recency_col, T_col]
    _require(summary, cols)
    patterns = _collect(summary.groupby(cols).count())
    return _models.fit_patterns(model, patterns, cols, weights=patterns.column_names[-1],
                                n_threads=n_threads)


def clv_predict(model, summary, t: float, *, customer: str | None = None,
                frequency_col: str = "frequency", recency_col: str = "recency", T_col: str = "T",
                n_threads: int = 1):
    """``model.predict`` per summary row (``map_batches``)."""
    cols = [c for c in (customer, frequency_col, recency_col, T_col) if c is not None]
    _require(summary, cols)
    token, data = _models.ship(model)
    options = dict(customer=customer, frequency_col=frequency_col, recency_col=recency_col,
                   T_col=T_col, n_threads=n_threads)

    def predicted(table):
        return pa.Table.from_batches(list(_models.predict_batches(
            [table], _models.worker_model(token, data), t, options)))
    return summary.select_columns(cols).map_batches(predicted, batch_format="pyarrow")


def _num_rows(table: pa.Table) -> int:
    return table.num_rows


def _decide_block(table: pa.Table, first_row: int, token: str, data: bytes, options: dict,
                  schema: pa.Schema) -> pa.Table:
    if table.num_rows == 0:  # Ray's empty blocks may have no columns at all
        return schema.empty_table()
    batches = _decisions.decide_batches([table], _decisions.worker_policy(token, data),
                                        first_row, options)
    return pa.Table.from_batches(list(batches), schema)


def decide(ds, policy, *, seed: int | None = None, n_threads: int = 1, **options):
    """``policy.decide`` (:mod:`fastengage.bandits`) of every row of a Ray Dataset, equal to
    the single-machine call on the collected rows (row ``i`` draws from ``(seed, i)``), as a
    Dataset in block order. ``options``: ``features``, ``id``, ``eligible`` (a column of arm
    lists), ``expected``, ``propensity_draws``. Ray tasks over the blocks: their rows are
    counted first; the policy travels once (object store), as its safe file."""
    import ray
    import ray.data
    options = _decisions.check_options(dict(options, seed=seed, n_threads=n_threads))
    cols = _decisions.columns_read(policy, options)
    _require(ds, cols)
    blocks = ds.select_columns(cols).to_arrow_refs()
    counts = ray.get([ray.remote(_num_rows).remote(b) for b in blocks])
    starts = np.concatenate([[0], np.cumsum(counts)]).tolist()
    token, data = _models.ship_saved(policy)
    id_col = options.get("id")
    id_type = ds.schema().base_schema.field(id_col).type if id_col else None
    schema = _decisions.output_schema(policy, id_type, options)
    shared = ray.put(data)
    task = ray.remote(_decide_block)
    return ray.data.from_arrow_refs([task.remote(b, start, token, shared, options, schema)
                                     for b, start in zip(blocks, starts)])


def _profile_block(table, partition, kinds, options, n_threads):
    return pa.Table.from_batches(list(_monitoring.partition_profile(
        [table], kinds, options, partition, n_threads)))


def monitor_profile(ds, columns=None, *, categorical=(), mode: str = "auto",
                    exact_limit: int | None = None, sketch_size: int | None = None,
                    n_threads: int = 1):
    """A drift profile (:class:`fastengage.monitor.Profile`, on the driver) of a Ray Dataset:
    one per block (Ray tasks), sent back as its safe file and merged in block order; equal to
    ``Profile.from_data`` of the collected rows (exact values and counts, moments to
    rounding). Arguments as for ``Profile.from_data``."""
    import ray
    options = dict(mode=mode, exact_limit=exact_limit, sketch_size=sketch_size)
    kinds = _monitoring.kinds_of(ds.schema().base_schema, columns, categorical, options)
    task = ray.remote(_profile_block)
    blobs = ray.get([task.remote(b, i, kinds, options, n_threads)
                     for i, b in enumerate(ds.select_columns(list(kinds)).to_arrow_refs())])
    return _monitoring.merge_profiles(pa.concat_tables(blobs), kinds, options)
