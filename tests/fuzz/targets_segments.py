"""Fuzz target of clustering segments: a saved :class:`fastengage.segments.Segments` file,
loaded and then used every way a fitted segmentation is (predict, profile, save again).
See harness.py."""
from __future__ import annotations

import io

import numpy as np
import pyarrow as pa

from harness import Target

COLUMNS = ["recency_days", "frequency", "monetary_total"]


def _features(seed: int = 0, n: int = 60) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table({"customer": np.arange(n), "recency_days": rng.integers(0, 400, n),
                     "frequency": rng.integers(1, 30, n),
                     "monetary_total": rng.exponential(200.0, n)})


def run_segments(data: bytes) -> None:
    from fastengage.segments import Segments

    segments = Segments.load(io.BytesIO(data))
    table = _features(1)
    if set(segments.columns) <= set(table.column_names):
        segments.predict(table, id="customer")
        segments.profile(table, revenue="monetary_total")
    buf = io.BytesIO()
    segments.save(buf)
    Segments.load(io.BytesIO(buf.getvalue()))


def seeds_segments() -> list:
    pytest_sklearn = __import__("importlib").util.find_spec("sklearn")
    if pytest_sklearn is None:
        return []
    from fastengage.segments import cluster

    out = []
    for k in (2, None):
        model = cluster(_features(0), columns=COLUMNS, k=k, k_range=(2, 3), sample_size=60,
                        order_by="monetary_total")
        buf = io.BytesIO()
        model.save(buf)
        out.append(buf.getvalue())
    return out


TARGETS = [Target("segments", run_segments, seeds_segments, kind="zip")]
