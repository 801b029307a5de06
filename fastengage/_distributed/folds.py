"""Per-customer folds over buckets of whole customers, and the report they add up to.

A bucket holds every row of its customers, so ``fastengage.rfm`` / ``fastengage.features.profile``
of the bucket gives exactly the single-machine values of those customers (with the global
``as_of``). Each local call also returns its report (schema metadata ``b"fastengage"``: counts of
rows read, returns, rows after ``as_of``, customers ...); every count is a sum over customers, so
the buckets' reports add up to the report of the whole input (:func:`merge_reports`).

Rows with a null customer id are dropped before the local call (a bucket may hold nothing else,
and the local call refuses such a table); the scan already counted them, so the merged report
takes ``rows_read`` and ``null_customer_rows_dropped`` from the scan.

Engines move a bucket's report back to the driver in the way they allow: Spark as one extra
row per bucket (:func:`with_report_row`: customer null, the report as JSON in :data:`REPORT`),
Dask in the partition's ``attrs``, Ray as a second task return.
"""
from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.compute as pc

REPORT = "__fastengage_report"
KEY = "fastengage"  # the schema metadata key of the local functions' report


def fold_bucket(table: pa.Table, customer: str, fold, schema: pa.Schema):
    """``(values, report)`` of one bucket: ``fold(table)`` on its rows with a customer id, cast
    to ``schema`` without metadata, and its report (None when no row has an id)."""
    ids = table.column(customer)
    if ids.null_count:
        table = table.filter(pc.is_valid(ids))
    if table.num_rows == 0:
        return schema.empty_table(), None
    out = fold(table)
    report = json.loads(out.schema.metadata[KEY.encode()])
    return out.select(schema.names).cast(schema).replace_schema_metadata(None), report


def merge_reports(reports, rows: int, null_rows: int) -> dict:
    """The report of the whole input from its buckets' reports (integer counts added; ``as_of``
    and ``returns`` are the same in every bucket) and the scan's row counts."""
    reports = [r for r in reports if r]
    merged = dict(reports[0])  # the local key order
    for key, value in merged.items():
        if isinstance(value, int) and not isinstance(value, bool):
            merged[key] = sum(int(r[key]) for r in reports)
    merged["rows_read"] = int(rows)
    merged["null_customer_rows_dropped"] = int(null_rows)
    return merged


def with_report_row(values: pa.Table, report) -> pa.Table:
    """``values`` plus a null :data:`REPORT` column, and one row (all values null) carrying
    ``report`` as JSON when there is one."""
    out = values.append_column(REPORT, pa.nulls(values.num_rows, pa.string()))
    if report is None:
        return out
    row = [pa.nulls(1, field.type) for field in values.schema] + [pa.array([json.dumps(report)])]
    return pa.concat_tables([out, pa.Table.from_arrays(row, schema=out.schema)])


def split_report_rows(table: pa.Table):
    """``(values, reports)`` of a table made of :func:`with_report_row` pieces."""
    carried = table.column(REPORT)
    reports = [json.loads(r) for r in carried.filter(pc.is_valid(carried)).to_pylist()]
    values = table.filter(pc.is_null(carried)).drop_columns([REPORT])
    return values, reports


def with_report(table: pa.Table, report: dict) -> pa.Table:
    """``table`` with ``report`` as its schema metadata, as the local functions attach it."""
    return table.replace_schema_metadata({KEY: json.dumps(report)})
