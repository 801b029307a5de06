"""fastengage inside Apache Spark (4.0+): the same functions over Spark DataFrames.

>>> import fastengage.spark as fes
>>> features = fes.rfm(df, customer="customer", time="ts", amount="amount")   # Spark DataFrame
>>> scores = fes.score(df, model, id="customer")
>>> recs = fes.recommend(als, spark=spark, n=10)

Every result equals the single-machine function on the collected data (``fastengage.rfm``,
``Model.score``, ``Recommender.recommend``, ``clv.summary`` and a model's ``fit``/``predict``).
The kernels run in the executors' Python workers on Arrow batches; Spark does the shuffling.
What runs where (see README "Scaling out"):

* per-customer folds (RFM, CLV summaries): executors, one call per bucket of customers. Rows go
  to bucket ``pmod(hash(customer), buckets)`` (Spark's Murmur3: stable), ``groupBy(bucket)
  .applyInArrow`` hands each bucket's rows over as one Arrow table, so no customer is cut where
  Spark cuts Arrow batches (``spark.sql.execution.arrow.maxRecordsPerBatch``);
* scoring, recommendations, CLV predictions: executors, ``mapInArrow`` per batch, the model
  broadcast once as its model file and loaded once per Python worker;
* on the driver: the default ``as_of`` (a max over per-partition scans), the RFM score cut
  points (four exact order statistics per metric from the three metric columns of all
  customers: 24 bytes per customer), CLV fits (from pattern counts aggregated by Spark).
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
from ._io.times import parse_time
from .errors import ColumnNotFoundError, InputError
from .features._common import RETURNS_MODES

__all__ = ["rfm", "profile", "report", "score", "recommend", "clv_summary", "clv_fit",
           "clv_predict", "decide", "monitor_profile"]

BUCKET = "__fastengage_bucket"


def _require(df, columns) -> None:
    missing = [c for c in columns if c is not None and c not in df.columns]
    if missing:
        raise ColumnNotFoundError(
            ", ".join(repr(c) for c in missing) + " not in the DataFrame; available columns: "
            + ", ".join(repr(c) for c in df.columns))


def _struct(df, keep: str | None, arrow_schema: pa.Schema, keep_as: str | None = None):
    """Spark schema of an Arrow output schema; the field ``keep_as`` (default ``keep``) takes
    the type of column ``keep`` of ``df``."""
    from pyspark.sql.pandas.types import from_arrow_type
    from pyspark.sql.types import StructField, StructType
    fields = []
    for field in arrow_schema:
        if keep is not None and field.name == (keep_as or keep):
            fields.append(StructField(field.name, df.schema[keep].dataType, True))
        else:
            fields.append(StructField(field.name, from_arrow_type(field.type), True))
    return StructType(fields)


def _scan(df, customer: str, time: str, as_of, drop_null_customers: bool, sample=None,
          channel=None):
    """One pass of partial scans merged on the driver: checks nulls/emptiness; returns
    ``(as_of in microseconds, rows, null-id rows, the scans)``."""
    schema = _rfm.SCAN_SCHEMA if sample is None else _rfm.SAMPLE_SCAN_SCHEMA
    scans = df.mapInArrow(lambda batches: _rfm.scan(batches, customer, time, sample, channel),
                          _struct(df, None, schema)).toArrow()
    latest, rows, nulls = _rfm.combine_scans(scans, customer, drop_null_customers)
    return (latest if as_of is None else parse_time(as_of, "as_of")), rows, nulls, scans


def _by_customer(df, customer: str, buckets: int | None, fold, schema):
    """``fold(table)`` once per bucket of customers; every row of a customer in one table."""
    from pyspark.sql import functions as F
    if buckets is None:
        buckets = int(df.sparkSession.conf.get("spark.sql.shuffle.partitions"))
    if int(buckets) < 1:
        raise InputError(f"buckets must be a positive number, got {buckets!r}")
    keyed = df.withColumn(BUCKET, F.pmod(F.hash(F.col(customer)), F.lit(int(buckets))))
    return keyed.groupBy(BUCKET).applyInArrow(lambda t: fold(t.drop_columns([BUCKET])), schema)


def _folded(df, customer: str, buckets, fold, values_schema: pa.Schema):
    """Per-customer values of every bucket (``fold(table) -> (values, report)``), checkpointed,
    and the buckets' reports (one extra row per bucket, see ``_distributed.folds``)."""
    carried = values_schema.append(pa.field(_folds.REPORT, pa.string()))
    values = _by_customer(df, customer, buckets, lambda t: _folds.with_report_row(*fold(t)),
                          _struct(df, customer, carried))
    values = values.localCheckpoint(eager=True)
    reports = values.where(values[_folds.REPORT].isNotNull()).select(_folds.REPORT).toArrow()
    reports = [json.loads(r) for r in reports.column(0).to_pylist()]
    return values.where(values[_folds.REPORT].isNull()).drop(_folds.REPORT), reports


def _with_report(result, customer: str, report: dict):
    return result.withMetadata(customer, {_folds.KEY: json.dumps(report)})


def report(result) -> dict | None:
    """The report (as ``fastengage.rfm`` / ``profile`` attach it to their table) of a DataFrame
    returned by :func:`rfm` or :func:`profile`: kept in its customer column's metadata."""
    for field in result.schema.fields:
        if _folds.KEY in (field.metadata or {}):
            return json.loads(field.metadata[_folds.KEY])
    return None


def rfm(df, *, customer: str, time: str, amount: str, order: str | None = None, as_of=None,
        returns: str = "net", drop_null_customers: bool = False, segments=None,
        buckets: int | None = None, n_threads: int = 1):
    """:func:`fastengage.rfm` of a Spark DataFrame, as a Spark DataFrame (same columns, same
    values, scores and segments included; rows unordered).

    ``buckets``: groups of customers folded per call (default ``spark.sql.shuffle.partitions``);
    an executor holds one bucket's rows as Arrow at a time. ``n_threads``: threads per call.
    Runs four Spark jobs (scan, bucketed fold checkpointed with ``localCheckpoint``, the
    buckets' reports and the metric columns to the driver); the returned DataFrame adds the
    scores lazily. ``rfm``'s report (rows read, returns, customers, ...) is in the customer
    column's metadata: :func:`report`.
    """
    if returns not in RETURNS_MODES:
        raise InputError(f"returns must be one of {RETURNS_MODES}, got {returns!r}")
    _require(df, (customer, time, amount, order))
    df = df.select(*[c for c in (customer, time, amount, order) if c is not None])
    as_of_us, rows, nulls, _ = _scan(df.select(customer, time), customer, time, as_of,
                                     drop_null_customers)
    settings = dict(customer=customer, time=time, amount=amount, order=order, returns=returns,
                    drop_null_customers=drop_null_customers)
    values, reports = _folded(df, customer, buckets,
                              lambda t: _rfm.rfm_bucket(t, settings, as_of_us, n_threads),
                              _rfm.value_schema(customer, pa.null()))
    plan = _rfm.score_plan(values.select(*_rfm.METRICS).toArrow(), segments)

    def scored(batches):
        for batch in batches:
            yield from _rfm.add_scores(pa.Table.from_batches([batch]), plan).to_batches()
    out = values.mapInArrow(scored, _struct(df, customer, _rfm.output_schema(customer, pa.null())))
    return _with_report(out, customer, _folds.merge_reports(reports, rows, nulls))


def profile(df, *, customer: str, time: str, amount: str, as_of=None,
            buckets: int | None = None, n_threads: int = 1, **options):
    """:func:`fastengage.features.profile` of a Spark DataFrame, as a Spark DataFrame (same
    columns and values, channel columns for every channel value of the whole input; rows
    unordered; the report: :func:`report`). Folded per bucket of customers like :func:`rfm`;
    the driver collects one sample row and the distinct channel values. ``options``: order,
    item, category, channel, windows, returns, drop_null_customers, as for ``profile``."""
    cols, settings = _profile.settings_of(customer, time, amount, options)
    _require(df, cols)
    df = df.select(*cols)
    values, merged = _profile.run(
        lambda **sample: _scan(df, customer, time, as_of, settings["drop_null_customers"],
                               **sample),
        lambda fold, schema: _folded(df, customer, buckets, fold, schema), settings, n_threads)
    return _with_report(values, customer, merged)


def _broadcast(spark, model, ship=_models.ship):
    """(token, zero-argument callable giving the model bytes on an executor)."""
    token, data = ship(model)
    try:
        shared = spark.sparkContext.broadcast(data)
    except Exception:  # Spark Connect has no SparkContext: the bytes travel with the function
        return token, data
    return token, lambda: shared.value


def score(df, model, *, id: str | None = None, features=None, nulls: str | None = None,
          n_threads: int = 1):
    """``model.score`` (:mod:`fastengage.scoring`) of every row of a Spark DataFrame, via
    ``mapInArrow``; the model is broadcast once as its model file. Output: ``id`` then the
    model's ``output_names``, float32 or float64 as the local scorer gives them."""
    feats = _models.score_features(model, features)
    _require(df, [id, *feats])
    token, data = _broadcast(df.sparkSession, model)
    dtype = np.asarray(model.predict(np.zeros((1, model.n_features)))).dtype
    out = pa.schema(([(id, pa.null())] if id is not None else [])
                    + [(name, pa.from_numpy_dtype(dtype)) for name in model.output_names])
    options = dict(id=id, features=feats, nulls=nulls, n_threads=n_threads)

    def scored(batches):
        yield from _models.score_batches(batches, _models.worker_model(token, data), options)
    cols = ([id] if id is not None else []) + [f for f in feats if f != id]
    return df.select(*cols).mapInArrow(scored, _struct(df, id, out))


def recommend(model, customers=None, *, spark=None, customer: str = "customer", n: int = 10,
              exclude_seen: bool = True, items=None, exclude_items=None,
              partitions: int | None = None, n_threads: int = 1):
    """Batch top-``n`` (``model.recommend``) for customers of a Spark DataFrame column
    (``customers``, column ``customer``) or, by default, for every customer of the model;
    ``mapInArrow`` over ``partitions`` partitions of customers with the model broadcast.
    Output: the columns of ``model.recommend`` (customer, rank, item, score), rows unordered."""
    if customers is None:
        from pyspark.sql import SparkSession
        spark = spark or SparkSession.getActiveSession()
        if spark is None:
            raise InputError("no active SparkSession: pass spark=")
        customers = spark.createDataFrame(pa.table({customer: model.customers_.ids()}))
    else:
        _require(customers, [customer])
        spark = customers.sparkSession
    customers = customers.select(customer)
    if partitions is not None:
        customers = customers.repartition(int(partitions))
    token, data = _broadcast(spark, model)
    options = dict(n=n, exclude_seen=exclude_seen, items=items, exclude_items=exclude_items,
                   n_threads=n_threads)

    def top_n(batches):
        yield from _models.recommend_batches(batches, _models.worker_model(token, data),
                                             customer, options)
    return customers.mapInArrow(top_n, _struct(customers, None, _models.recommend_schema(model)))


def clv_summary(df, *, customer: str, time: str, amount: str | None = None, as_of=None,
                freq: str = "D", freq_multiplier: float = 1.0, calibration_end=None,
                buckets: int | None = None):
    """:func:`fastengage.clv.summary` of a Spark DataFrame (same columns and values, rows
    unordered), folded per bucket of customers with the global ``as_of``."""
    _require(df, (customer, time, amount))
    df = df.select(*[c for c in (customer, time, amount) if c is not None])
    as_of_us = _scan(df.select(customer, time), customer, time, as_of, False)[0]
    settings = dict(customer=customer, time=time, amount=amount, freq=freq,
                    freq_multiplier=freq_multiplier, calibration_end=calibration_end)
    schema = _models.summary_schema(pa.null(), settings)
    return _by_customer(df, customer, buckets,
                        lambda t: _models.summary_bucket(t, settings, as_of_us),
                        _struct(df, customer, schema))


def clv_fit(model, summary, *, frequency_col: str = "frequency", recency_col: str = "recency",
            T_col: str = "T", n_threads: int | None = None):
    """Fit a CLV transaction model (``BetaGeo``, ``ParetoNBD``, ...) on the driver from the
    distinct (frequency, recency, T) patterns of a summary DataFrame and their counts, which
    Spark aggregates (they are few). Returns the fitted model."""
    cols = (frequency_col, recency_col, T_col)
    _require(summary, cols)
    patterns = summary.groupBy(*cols).count().toArrow()
    return _models.fit_patterns(model, patterns, cols, n_threads=n_threads)


def clv_predict(model, summary, t: float, *, customer: str | None = None,
                frequency_col: str = "frequency", recency_col: str = "recency", T_col: str = "T",
                n_threads: int = 1):
    """``model.predict`` per summary row (probability alive, expected purchases in ``t``), via
    ``mapInArrow`` with the fitted model broadcast."""
    cols = [c for c in (customer, frequency_col, recency_col, T_col) if c is not None]
    _require(summary, cols)
    token, data = _broadcast(summary.sparkSession, model)
    options = dict(customer=customer, frequency_col=frequency_col, recency_col=recency_col,
                   T_col=T_col, n_threads=n_threads)
    out = pa.schema(([(customer, pa.null())] if customer else [])
                    + [("probability_alive", pa.float64()), ("expected_purchases", pa.float64())])

    def predicted(batches):
        yield from _models.predict_batches(batches, _models.worker_model(token, data), t, options)
    return summary.select(*cols).mapInArrow(predicted, _struct(summary, customer, out))


def _partition() -> int:
    from pyspark import TaskContext
    return TaskContext.get().partitionId()


def decide(df, policy, *, seed: int | None = None, checkpoint: bool = True, n_threads: int = 1,
           **options):
    """``policy.decide`` (:mod:`fastengage.bandits`) of every row of a Spark DataFrame, equal
    to the single-machine call on the same rows in the order they come back (same arms,
    propensities, expected rewards: the result's row ``i`` drew from ``(seed, i)``; with
    ``checkpoint=False``, the order of ``df.toArrow()``). ``options``: ``features``, ``id``,
    ``eligible`` (a column of arm lists), ``expected``, ``propensity_draws``.

    The rows of every partition are counted, then each partition decides with its first
    row's position, so both passes must see the same rows in the same order: Spark does not
    promise that after a shuffle (its reducers take blocks in the order they arrive), so the
    columns read are first checkpointed (``localCheckpoint``); ``checkpoint=False`` skips that
    for a DataFrame that is already cached or read straight from files. The policy is
    broadcast as its safe file. ``expected_reward`` comes back as an array column."""
    options = _decisions.check_options(dict(options, seed=seed, n_threads=n_threads))
    cols = _decisions.columns_read(policy, options)
    _require(df, cols)
    df = df.select(*cols)
    if checkpoint:
        df = df.localCheckpoint(eager=True)
    counts = df.mapInArrow(lambda batches: _decisions.count_rows(batches, _partition()),
                           _struct(df, None, _decisions.COUNT_SCHEMA)).toArrow()
    starts = _decisions.first_rows(counts)
    token, data = _broadcast(df.sparkSession, policy, _decisions.ship)
    schema = _decisions.output_schema(policy, pa.null(), options)
    expected = options.get("expected")
    if expected:  # Spark has no fixed-size lists: plain lists
        schema = schema.set(len(schema) - 1, pa.field("expected_reward", pa.list_(pa.float64())))

    def decided(batches):
        policy_ = _decisions.worker_policy(token, data)
        for batch in _decisions.decide_batches(batches, policy_, starts[_partition()], options):
            if expected:
                rewards = batch.column(batch.num_columns - 1).cast(pa.list_(pa.float64()))
                batch = batch.set_column(batch.num_columns - 1, "expected_reward", rewards)
            yield batch
    return df.mapInArrow(decided, _struct(df, options.get("id"), schema, keep_as="id"))


def monitor_profile(df, columns=None, *, categorical=(), mode: str = "auto",
                    exact_limit: int | None = None, sketch_size: int | None = None,
                    n_threads: int = 1):
    """A drift profile (:class:`fastengage.monitor.Profile`, on the driver) of a Spark
    DataFrame: one profile per partition on the executors, sent back as its safe file and
    merged in partition order; equal to ``Profile.from_data`` of the collected rows (exact
    values and counts, moments to rounding). Arguments as for ``Profile.from_data``."""
    options = dict(mode=mode, exact_limit=exact_limit, sketch_size=sketch_size)
    kinds = _monitoring.kinds_of(df.limit(0).toArrow().schema, columns, categorical, options)
    blobs = df.select(*kinds).mapInArrow(
        lambda batches: _monitoring.partition_profile(batches, kinds, options, _partition(),
                                                      n_threads),
        _struct(df, None, _monitoring.BLOB_SCHEMA)).toArrow()
    return _monitoring.merge_profiles(blobs, kinds, options)
