"""Fuzz targets of the monitor capability: a saved drift profile (exact and sketched numeric
columns, string and integer categories), loaded and then used every way drift uses it. The
experiments capability loads no files (its objects wrap the user's own estimators), so it has
no target here. See harness.py."""
from __future__ import annotations

import io

import numpy as np
import pyarrow as pa

from harness import Target


def _table(seed: int = 0, n: int = 40) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table({"x": rng.normal(size=n), "k": rng.integers(0, 4, n),
                     "s": pa.array(rng.choice(["a", "b", "c"], n))})


def run_profile(data: bytes) -> None:
    """Load, then summarise, compare against itself and fresh data, merge, forget, save."""
    from fastengage.monitor import Profile, drift

    profile = Profile.load(io.BytesIO(data))
    profile.summary()
    again = Profile.load(io.BytesIO(data))
    drift(profile, again)
    fresh = {c: k for c, k in profile.kinds.items() if c in ("x", "k", "s")}
    if fresh:
        table = _table(1).select(list(fresh))
        drift(profile, table, columns=list(fresh))
    again.merge(profile)
    profile.forget(["a"])
    buf = io.BytesIO()
    profile.save(buf)
    Profile.load(io.BytesIO(buf.getvalue())).summary()


def seeds_profile() -> list:
    from fastengage.monitor import Profile

    out = []
    for mode, size in (("exact", None), ("sketch", 8)):
        buf = io.BytesIO()
        profile = Profile.from_data(_table(0), ["x", "k", "s"], categorical=["k"], mode=mode,
                                    sketch_size=size)
        profile.save(buf)
        out.append(buf.getvalue())
    return out


TARGETS = [Target("monitor_profile", run_profile, seeds_profile, kind="zip")]
