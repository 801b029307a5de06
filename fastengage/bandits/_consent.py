"""``consent=`` of the bandit entry points (issue #14): which input rows a consent rule allows.

Decisions keep every input row in place: a row whose customer (the ``id=`` column) has no
consent for the rule's purpose at its ``as_of`` gets the null decision (null arm, propensity and
expected rewards), its feature values are replaced by zeros before anything reads them and its
eligible list is ignored, so nothing decided or returned depends on them. Rows stay aligned with
the input and with an ``eligible`` mask, and every consented row gets exactly the decision it gets
without the rule (row ``i`` draws from ``(seed, i)`` either way). Learning (``update``) instead
drops the rows, as every other entry point that reads events does.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .._io.columns import consented_input
from .._io.sources import open_source
from ..errors import InputError

__all__ = ["blank_rows", "consented_rows"]


def consented_rows(data, consent, id: str | None):
    """``(data, keep)``: the input (read into memory when it is a one-pass stream) and a bool
    array, one entry per input row, True where ``consent`` allows the row. Each row is judged at
    the rule's ``as_of``; the rule's report of what was excluded is ``consent.last_report``."""
    if id is None:
        raise InputError("consent= needs id= (the customer column whose consent is checked)")
    source = open_source(data)
    source.require({"id": id})
    if source.kind in ("reader", "stream"):  # read once: keep the batches for the decisions
        data = pa.Table.from_batches(list(source.batches(source.schema.names)),
                                     schema=source.schema)
        source = open_source(data)
    ids = [batch.column(id) for batch in source.batches([id])]
    n = sum(len(c) for c in ids)
    row = "__fastengage_row" if id != "__fastengage_row" else "__fastengage_row_"
    rows = pa.table({id: pa.chunked_array(ids, source.schema.field(id).type),
                     row: pa.array(np.arange(n, dtype=np.int64))})
    kept = consented_input(rows, consent, customer=id)
    keep = np.zeros(n, dtype=bool)
    keep[kept.column(row).to_numpy()] = True
    return data, keep


def blank_rows(batch: pa.RecordBatch, excluded: np.ndarray, features: list[str],
               eligible: str | None) -> pa.RecordBatch:
    """``batch`` with the ``excluded`` rows' features set to 0 and their eligible list to null,
    so that no value of theirs is converted, checked or used."""
    if not excluded.any():
        return batch
    where = pa.array(excluded)
    for name in features + ([eligible] if eligible is not None else []):
        column = batch.column(name)
        try:
            blank = (pa.scalar(None, column.type) if name == eligible
                     else pa.scalar(0, pa.int8()).cast(column.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            blank = pa.scalar(None, column.type)  # not a number: the type error comes later
        batch = batch.set_column(batch.schema.get_field_index(name), name,
                                 pc.if_else(where, blank, column))
    return batch
