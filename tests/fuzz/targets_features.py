"""Fuzz targets of the RFM capability: the RFMState file, and the Arrow input layer (IPC stream
bytes and Parquet bytes into :func:`fastengage.rfm`). See harness.py."""
from __future__ import annotations

import io
import os
import tempfile

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from harness import Target

COLUMNS = dict(customer="cust", time="ts", amount="amt", order="ord")


def _table(seed: int = 0, n: int = 30) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table({
        "cust": rng.integers(0, 6, n),
        "ord": pa.array([f"o{k}" for k in rng.integers(0, 12, n)]),
        "ts": pa.array(rng.integers(1_600_000_000, 1_600_000_000 + 30 * 86_400, n), pa.timestamp("s")),
        "amt": rng.integers(-2, 40, n) / 4,
    })


def _valid_state(like):
    """A valid state with the settings of ``like`` (the merge partner of a loaded state)."""
    import fastengage as fe

    return fe.RFMState(**like.columns, returns=like.returns).update(_table(1))


def run_state(data: bytes) -> None:
    """Load, then use the state every way a kernel can: to_table, merge both ways, update."""
    import fastengage as fe

    state = fe.RFMState.load(io.BytesIO(data))
    if state.report["rows_read"]:
        state.to_table()
    state.merge(_valid_state(state)).to_table()
    other = fe.RFMState.load(io.BytesIO(data))
    _valid_state(other).merge(other).to_table()
    other.update(_table(2)).to_table()


def seeds_state() -> list:
    import fastengage as fe

    out = []
    for order in ("ord", None):
        buf = io.BytesIO()
        fe.RFMState(**dict(COLUMNS, order=order)).update(_table(0)).save(buf)
        out.append(buf.getvalue())
    return out


def _rfm(data) -> None:
    import fastengage as fe

    fe.rfm(data, **COLUMNS, drop_null_customers=True)


def run_ipc_stream(data: bytes) -> None:
    try:
        reader = pa.ipc.open_stream(pa.py_buffer(data))
    except (pa.ArrowException, OSError):
        return  # not a stream at all: pyarrow's own parser refused it before fastengage
    _rfm(reader)


def seeds_ipc_stream() -> list:
    out = []
    for table in (_table(0), _table(2).cast(pa.schema([
            ("cust", pa.string()), ("ord", pa.dictionary(pa.int32(), pa.string())),
            ("ts", pa.timestamp("ms", tz="UTC")), ("amt", pa.float32())]), safe=False)):
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            for batch in table.to_batches(max_chunksize=10):
                writer.write_batch(batch)
        out.append(sink.getvalue().to_pybytes())
    return out


def run_parquet(data: bytes) -> None:
    fd, path = tempfile.mkstemp(suffix=".parquet")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        _rfm(path)
    finally:
        os.unlink(path)


def seeds_parquet() -> list:
    out = []
    for kwargs in ({}, {"compression": "none", "row_group_size": 10}):
        buf = io.BytesIO()
        pq.write_table(_table(3), buf, **kwargs)
        out.append(buf.getvalue())
    return out


TARGETS = [
    Target("rfm_state", run_state, seeds_state, kind="zip"),
    Target("rfm_ipc_stream", run_ipc_stream, seeds_ipc_stream),
    Target("rfm_parquet", run_parquet, seeds_parquet),
]
