"""Bandit decisions across partitions, equal to ``policy.decide`` on the collected rows.

``decide`` draws the randomness of row ``i`` from the counter stream ``(seed, i)``, ``i`` the
row's position in the whole input. An engine therefore first counts the rows of every
partition (:func:`count_rows`; the partitions must come out the same way twice: any
deterministic DataFrame, or a cached one), and each partition then decides with its first
row's global position (:func:`decide_batches`), so every row gets the decision, propensity and
expected rewards that the single-machine call gives it.

The policy travels as the file ``policy.save`` writes (the safe bundle format: JSON and
``.npy`` arrays, never pickle) and is read once per worker process by ``load_policy``.
"""
from __future__ import annotations

import io

import numpy as np
import pyarrow as pa

from . import models

COUNT_SCHEMA = pa.schema([("partition", pa.int64()), ("rows", pa.int64())])


def ship(policy) -> tuple[str, bytes]:
    """``(token, bytes)``: the policy's safe file, to send to workers."""
    return models.ship_saved(policy)


def worker_policy(token: str, data):
    """The shipped policy in this worker process (loaded and validated on first use)."""
    from ..bandits import load_policy
    return models.worker_model(token, data, lambda raw: load_policy(io.BytesIO(raw)))


def check_options(options: dict) -> dict:
    """``decide``'s keywords an engine can pass on: ``eligible`` only as a column name (a
    mask or callable of the driver cannot follow the rows to the workers); without ``seed``,
    one drawn here for every partition (``decide`` would draw one per call)."""
    from ..errors import InputError
    eligible = options.get("eligible")
    if eligible is not None and not isinstance(eligible, str):
        raise InputError("eligible= must name a column of arm lists on an engine (a mask or a "
                         "function of the driver's rows cannot travel with the partitions)")
    options = dict(options)
    if options.get("seed") is None:
        options["seed"] = int(np.random.SeedSequence().generate_state(1, np.uint64)[0])
    return options


def columns_read(policy, options: dict) -> list:
    """The input columns ``decide`` reads (features, ``id``, ``eligible``)."""
    features = options.get("features") or policy.features or []
    extra = [options.get("id"), options.get("eligible")]
    return list(dict.fromkeys([*features, *[c for c in extra if isinstance(c, str)]]))


def output_schema(policy, id_type: pa.DataType | None, options: dict) -> pa.Schema:
    """Schema of ``decide``'s table: ``id`` (with ``id=``), ``arm``, ``propensity`` and, with
    ``expected=True``, ``expected_reward`` (one value per arm)."""
    fields = [("id", id_type)] if options.get("id") is not None else []
    fields += [("arm", policy.arms.type), ("propensity", pa.float64())]
    if options.get("expected"):
        fields.append(("expected_reward", pa.list_(pa.float64(), len(policy.arms))))
    return pa.schema(fields)


def count_rows(batches, partition: int):
    """One record batch: this partition's number and row count."""
    rows = sum(batch.num_rows for batch in batches)
    yield pa.RecordBatch.from_arrays([pa.array([partition]), pa.array([rows])],
                                     schema=COUNT_SCHEMA)


def first_rows(counts: pa.Table) -> dict:
    """Global position of every partition's first row (partitions in their order)."""
    order = sorted(zip(counts.column("partition").to_pylist(), counts.column("rows").to_pylist()))
    starts, total = {}, 0
    for partition, rows in order:
        starts[partition] = total
        total += rows
    return starts


def decide_table(policy, table, first_row: int, options: dict) -> pa.Table:
    """``policy.decide(table, **options)`` as rows ``first_row, first_row + 1, ...`` of the
    whole input (``decide``'s ``first_row=``; a ``first_row`` the user gave the engine's
    ``decide`` is the position of the whole input's first row and adds to it)."""
    options = dict(options)
    first_row += options.pop("first_row", 0)
    return policy.decide(table, first_row=first_row, **options)


def decide_batches(batches, policy, first_row: int, options: dict):
    """Decisions for the rows of one partition whose first row is ``first_row`` overall."""
    for batch in batches:
        if batch.num_rows:
            table = pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch
            yield from decide_table(policy, table, first_row, options).to_batches()
            first_row += batch.num_rows
