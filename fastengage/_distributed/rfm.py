"""RFM across partitions, exactly equal to :func:`fastengage.rfm` on the collected data.

Three steps, whatever the engine:

1. :func:`scan` per partition (rows, null ids, latest time), merged on the driver by
   :func:`combine_scans`: the default ``as_of`` is the latest time of the whole input, and a
   null customer id is refused before any bucket runs (as ``rfm`` would).
2. The engine routes every row of a customer to one bucket (a stable hash of the id modulo the
   bucket count, or a shuffle on the customer column); :func:`rfm_bucket` runs ``fastengage.rfm``
   on the bucket's rows with the global ``as_of``. A customer's values depend only on its own
   rows and ``as_of``, so they equal the single-machine values, bit for bit.
3. Scores need the global distribution. ``r/f/m_score = min(5, 1 + floor(5 w / n))`` (w =
   customers strictly worse) is decided by four order statistics per metric (see
   ``kernels.features.rfm.quintile_scores``): :func:`score_cuts` takes them exactly from the
   three metric columns of all customers collected on the driver (24 bytes per customer), and
   :func:`add_scores` applies them per partition.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .._io.sources import time_to_us
from ..errors import InputError
from ..features import RFM_COLUMNS, rfm as local_rfm
from ..features.segments import compile_segments
from .folds import fold_bucket

SCORE_COLUMNS = ("r_score", "f_score", "m_score", "segment")
VALUE_COLUMNS = tuple(c for c in RFM_COLUMNS if c not in SCORE_COLUMNS)
METRICS = ("recency_days", "frequency", "monetary_total")
_TS = pa.timestamp("us", tz="UTC")
SCAN_SCHEMA = pa.schema([("rows", pa.int64()), ("null_customers", pa.int64()),
                         ("timed_rows", pa.int64()), ("max_time_us", pa.int64())])


SAMPLE_SCAN_SCHEMA = SCAN_SCHEMA.append(pa.field("sample", pa.binary())).append(
    pa.field("channels", pa.binary()))


def scan(batches, customer: str, time: str, sample=None, channel: str | None = None):
    """Partial state of one partition: one record batch (rows, null ids, rows and latest time
    among rows with an id). ``batches``: an iterable of record batches or tables. With
    ``sample`` (column names), also one row of those columns with a customer id and the
    distinct values of ``channel`` on rows with an id, as Arrow IPC bytes
    (:data:`SAMPLE_SCAN_SCHEMA`; read by :func:`combine_samples`)."""
    rows = nulls = timed = 0
    latest = np.iinfo(np.int64).min
    first, channels = None, []
    for batch in batches:
        if batch.num_rows == 0:
            continue
        ids = batch.column(customer)
        rows += batch.num_rows
        nulls += ids.null_count
        valid = pc.is_valid(ids) if ids.null_count else None
        times = batch.column(time) if valid is None else batch.column(time).filter(valid)
        if len(times):
            us = time_to_us(times, time)
            timed += len(us)
            latest = max(latest, int(us.max()))
        if sample is not None and len(times):
            kept = batch.select(list(sample))
            kept = kept if valid is None else kept.filter(valid)
            first = pa.table(kept.slice(0, 1)) if first is None else first
            if channel is not None:
                channels.append(pc.unique(kept.column(channel)))
    counts = [pa.array([v], pa.int64()) for v in (rows, nulls, timed, latest)]
    if sample is None:
        yield pa.RecordBatch.from_arrays(counts, schema=SCAN_SCHEMA)
        return
    found = [_ipc(pa.table({"channel": pa.chunked_array(channels)})) if channels else None]
    yield pa.RecordBatch.from_arrays(
        counts + [pa.array([None if first is None else _ipc(first)], pa.binary()),
                  pa.array(found, pa.binary())], schema=SAMPLE_SCAN_SCHEMA)


def _ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def combine_samples(scans: pa.Table):
    """``(a row with a customer id, distinct channel values or None)`` of sampling scans."""
    def read(data):
        return pa.ipc.open_stream(data).read_all()
    samples = [s for s in scans.column("sample").to_pylist() if s is not None]
    found = [read(c).column(0) for c in scans.column("channels").to_pylist() if c is not None]
    channels = pc.unique(pa.chunked_array(found).combine_chunks()) if found else None
    return read(samples[0]), channels


def combine_scans(scans: pa.Table, customer: str, drop_null_customers: bool):
    """Merge the partitions' scans: ``(latest time in microseconds UTC, rows, null-id rows)``;
    raises the errors ``rfm`` raises for an empty input or null ids."""
    rows = int(pc.sum(scans.column("rows")).as_py() or 0)
    nulls = int(pc.sum(scans.column("null_customers")).as_py() or 0)
    timed = int(pc.sum(scans.column("timed_rows")).as_py() or 0)
    if rows == 0:
        raise InputError("the input is empty: no rows to compute features from")
    if nulls and not drop_null_customers:
        raise InputError(f"customer column {customer!r} has {nulls} null value(s); pass "
                         "drop_null_customers=True to drop those rows")
    if timed == 0:
        raise InputError(f"customer column {customer!r} is null in every row")
    return int(pc.max(scans.column("max_time_us")).as_py()), rows, nulls


def value_schema(customer: str, customer_type: pa.DataType) -> pa.Schema:
    """Schema of :func:`rfm_bucket`'s output."""
    types = {"first_purchase": _TS, "last_purchase": _TS, "monetary_total": pa.float64(),
             "monetary_mean": pa.float64()}
    return pa.schema([(customer, customer_type)]
                     + [(c, types.get(c, pa.int64())) for c in VALUE_COLUMNS])


def output_schema(customer: str, customer_type: pa.DataType) -> pa.Schema:
    """Schema of the final table (that of ``fastengage.rfm``)."""
    fields = list(value_schema(customer, customer_type))
    fields += [pa.field(c, pa.int8()) for c in SCORE_COLUMNS[:3]] + [pa.field("segment", pa.string())]
    return pa.schema(fields)


def rfm_bucket(table: pa.Table, settings: dict, as_of_us: int, n_threads: int = 1):
    """``(values, report)``: per-customer RFM values (no scores) of a table holding ALL rows of
    its customers, and ``rfm``'s report of them (see :mod:`.folds`)."""
    customer = settings["customer"]
    schema = value_schema(customer, table.schema.field(customer).type)
    as_of = np.datetime64(as_of_us, "us")
    return fold_bucket(table, customer,
                       lambda t: local_rfm(t, **settings, as_of=as_of, n_threads=n_threads), schema)


def score_cuts(values: pa.Table) -> dict:
    """The four exact order statistics per metric that decide every score (``values``: the
    :data:`METRICS` columns of every customer)."""
    n = values.num_rows
    k = np.arange(1, 5)
    c = (k * n + 4) // 5  # w >= c_k  <=>  floor(5 w / n) >= k
    cuts = {}
    for name, higher_is_better in zip(METRICS, (False, True, True)):
        v = values.column(name).to_numpy()
        if n == 0:
            cuts[name] = np.zeros(4, v.dtype)
            continue
        positions = c - 1 if higher_is_better else n - c
        cuts[name] = np.partition(v, positions)[positions]
    return cuts


def score_plan(values: pa.Table, segments=None) -> dict:
    """Everything :func:`add_scores` needs, small and picklable (shipped to every worker)."""
    names, table = compile_segments(segments)
    return {"cuts": score_cuts(values), "segment_names": np.array(names, dtype=object),
            "segment_table": table}


def _scores(v: np.ndarray, cuts: np.ndarray, higher_is_better: bool) -> np.ndarray:
    # score = 1 + number of cuts the value is strictly beyond (cuts ascend for "higher is
    # better", descend otherwise)
    if higher_is_better:
        beyond = np.searchsorted(cuts, v, side="left")
    else:
        beyond = 4 - np.searchsorted(cuts[::-1], v, side="right")
    return (1 + beyond).astype(np.int8)


def add_scores(table: pa.Table, plan: dict) -> pa.Table:
    """Append r/f/m scores and the segment to a table of per-customer values."""
    cuts = plan["cuts"]
    r = _scores(table.column("recency_days").to_numpy(), cuts["recency_days"], False)
    f = _scores(table.column("frequency").to_numpy(), cuts["frequency"], True)
    m = _scores(table.column("monetary_total").to_numpy(), cuts["monetary_total"], True)
    seg = plan["segment_names"][plan["segment_table"][r, f, m]]
    for name, col in zip(SCORE_COLUMNS, (r, f, m)):
        table = table.append_column(name, pa.array(col, pa.int8()))
    return table.append_column("segment", pa.array(seg, pa.string()))
