"""Drift profiles (``fastengage.monitor.Profile``) of a distributed data set.

Each partition builds its own profile of the same columns and kinds (decided once on the
driver from the schema: :func:`kinds_of`) and sends it back as the file ``Profile.save``
writes (safe bundle, read by the validating ``Profile.load``); the driver merges them in
partition order. ``Profile.merge`` gives the profile of the union of the rows: exact mode
keeps every value (identical to ``Profile.from_data`` on the collected rows), counts and
categories are exact, moments equal up to floating-point rounding. In exact mode a partition's
file holds its values (8 bytes per value and column); ``mode="sketch"`` bounds it.
"""
from __future__ import annotations

import io

import pyarrow as pa

BLOB_SCHEMA = pa.schema([("partition", pa.int64()), ("profile", pa.binary())])


def kinds_of(schema: pa.Schema, columns, categorical, options: dict) -> dict:
    """The profiled columns and their kinds, as ``Profile.from_data`` decides them."""
    from ..monitor import Profile
    return Profile.from_data(schema.empty_table(), columns, categorical=categorical,
                             **options).kinds


def partition_profile(batches, kinds: dict, options: dict, partition: int = 0,
                      n_threads: int = 1):
    """One record batch: the partition's number and its profile's file (null for a partition
    without rows: it has nothing to merge, so nothing is serialised or shipped for it)."""
    from ..monitor import Profile
    profile, rows = Profile(kinds, **options), 0
    for batch in batches:
        if batch.num_rows:
            profile.update(batch, n_threads=n_threads)
            rows += batch.num_rows
    data = None
    if rows:
        buf = io.BytesIO()
        profile.save(buf)
        data = buf.getvalue()
    yield pa.RecordBatch.from_arrays([pa.array([partition]), pa.array([data], pa.binary())],
                                     schema=BLOB_SCHEMA)


def merge_profiles(blobs: pa.Table, kinds: dict, options: dict):
    """The merged profile of the partitions' files (merged in partition order)."""
    from ..monitor import Profile
    merged = Profile(kinds, **options)
    order = blobs.sort_by("partition")
    for data in order.column("profile").to_pylist():
        if data is not None:
            merged.merge(Profile.load(io.BytesIO(data)))
    return merged
