"""Deterministic synthetic transaction logs for the benchmarks.

``transactions(n_rows, n_customers, variant)`` draws customers with Zipf-like activity (weight of
the k-th customer ~ 1 / (k + 10)^0.9), times uniformly over two years, log-normal amounts with
3% returns (negated), and lays them out as the variant says:

* ``"a"``: dense int64 ids 0..n_customers-1, rows sorted by time;
* ``"b"``: sparse random int64 ids (spread over the whole int64 range), rows unsorted;
* ``"c"``: string ids (``"C-" + 12 hex digits``), rows unsorted.

``shaped_transactions(n_rows, rows_per_customer, ids)`` is the customer-base shape of issue #15.5:
``n_rows / rows_per_customer`` customers, every one with at least one row (at 1 row per customer
each has exactly one), the rows left over drawn with the same Zipf-like activity, rows in random
order; ``ids`` is ``"dense"`` (int64 0..n-1), ``"sparse"`` (random int64 over the whole range) or
``"string"`` (``"C-" + 12 hex digits``).
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
    return _table(ids, times, amounts)


#: Id kinds of :func:`shaped_transactions`.
ID_KINDS = ("dense", "sparse", "string")


def shaped_transactions(n_rows: int, rows_per_customer: float, ids: str, seed: int = 42) -> pa.Table:
    """``n_rows`` rows over ``round(n_rows / rows_per_customer)`` customers (all of them buying)."""
    rng = np.random.default_rng(seed)
    n_customers = max(1, min(n_rows, int(round(n_rows / rows_per_customer))))
    weights = 1.0 / (np.arange(n_customers) + 10.0) ** 0.9
    cdf = np.cumsum(weights)
    cdf /= cdf[-1]
    extra = np.searchsorted(cdf, rng.random(n_rows - n_customers)).astype(np.int64)
    customer = rng.permutation(np.concatenate([np.arange(n_customers, dtype=np.int64), extra]))
    customer = rng.permutation(n_customers)[customer]  # who is heavy is not the id order
    times = START_US + rng.integers(0, SPAN_US, n_rows)
    amounts = np.round(rng.lognormal(3.0, 1.0, n_rows), 2)
    amounts[rng.random(n_rows) < 0.03] *= -1.0
    if ids == "dense":
        id_array = pa.array(customer)
    elif ids == "sparse":
        id_array = pa.array(rng.choice(np.iinfo(np.int64).max, n_customers, replace=False)[customer])
    elif ids == "string":
        id_array = _hex_names(rng.choice(16 ** 12, n_customers, replace=False)).take(pa.array(customer))
    else:
        raise ValueError(f"unknown id kind {ids!r}; expected one of {ID_KINDS}")
    return _table(id_array, times, amounts)


def _hex_names(values: np.ndarray) -> pa.Array:
    """``"C-" + 12 lower-case hex digits`` of each value, built as Arrow buffers (no Python loop)."""
    chars = np.empty((len(values), 14), np.uint8)
    chars[:, 0], chars[:, 1] = ord("C"), ord("-")
    shifts = np.arange(44, -1, -4, dtype=np.int64)
    chars[:, 2:] = np.frombuffer(b"0123456789abcdef", np.uint8)[(values[:, None] >> shifts) & 15]
    offsets = np.arange(0, 14 * len(values) + 1, 14, dtype=np.int32)
    return pa.Array.from_buffers(pa.string(), len(values),
                                 [None, pa.py_buffer(offsets), pa.py_buffer(chars.ravel())])


def _table(ids: pa.Array, times: np.ndarray, amounts: np.ndarray) -> pa.Table:
    return pa.table({
        "customer": ids,
        "ts": pa.array(times, pa.timestamp("us", tz="UTC")),
        "amount": pa.array(amounts),
    })
