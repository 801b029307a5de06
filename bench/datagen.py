"""Deterministic synthetic transaction logs for the benchmarks.

``transactions(n_rows, n_customers, variant)`` draws customers with Zipf-like activity (weight of
the k-th customer ~ 1 / (k + 10)^0.9), times uniformly over two years, log-normal amounts with
3% returns (negated), and lays them out as the variant says:

* ``"a"``: dense int64 ids 0..n_customers-1, rows sorted by time;
* ``"b"``: sparse random int64 ids (spread over the whole int64 range), rows unsorted;
* ``"c"``: string ids (``"C-" + 12 hex digits``), rows unsorted.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

START_US = 1_577_836_800_000_000  # 2020-01-01T00:00:00Z
SPAN_US = 730 * 86_400_000_000


def transactions(n_rows: int, n_customers: int, variant: str, seed: int = 42) -> pa.Table:
    rng = np.random.default_rng(seed)
    weights = 1.0 / (np.arange(n_customers) + 10.0) ** 0.9
    cdf = np.cumsum(weights)
    cdf /= cdf[-1]
    customer = np.searchsorted(cdf, rng.random(n_rows)).astype(np.int64)
    # permute who is heavy so activity is not correlated with the id order
    customer = rng.permutation(n_customers)[customer]
    times = START_US + rng.integers(0, SPAN_US, n_rows)
    amounts = np.round(rng.lognormal(3.0, 1.0, n_rows), 2)
    amounts[rng.random(n_rows) < 0.03] *= -1.0
    if variant == "a":
        order = np.argsort(times, kind="stable")
        customer, times, amounts = customer[order], times[order], amounts[order]
        ids = pa.array(customer)
    elif variant == "b":
        sparse = rng.choice(np.iinfo(np.int64).max, size=n_customers, replace=False)
        ids = pa.array(sparse[customer])
    elif variant == "c":
        names = pa.array([f"C-{x:012x}" for x in rng.choice(16 ** 12, n_customers, replace=False)])
        ids = names.take(pa.array(customer))
    else:
        raise ValueError(f"unknown variant {variant!r}")
    return pa.table({
        "customer": ids,
        "ts": pa.array(times, pa.timestamp("us", tz="UTC")),
        "amount": pa.array(amounts),
    })
