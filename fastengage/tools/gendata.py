"""Deterministic generated transaction logs for warm-up, ``fastengage bench`` and the CI gate.

The generator is plain NumPy + pyarrow (no repository checkout needed) and covers the column
types real inputs have, because Numba compiles one specialisation per argument type set:
integer or string customer/item ids, time-sorted or shuffled rows, float64 or float32 amounts.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

__all__ = ["transactions", "SIZES"]

#: Rows of the generated log per ``--size`` (customers = rows // 20, items = rows // 50).
SIZES = {"tiny": 2_000, "small": 100_000, "medium": 1_000_000, "large": 10_000_000}

_START_US = 1_293_840_000_000_000  # 2011-01-01 UTC
_YEAR_US = 365 * 86_400 * 1_000_000


def transactions(rows: int, *, string_ids: bool | str = False, time_sorted: bool = True,
                 amount_dtype: str = "float64", seed: int = 0) -> pa.Table:
    """A transaction log of ``rows`` rows.

    Columns: ``customer`` (int64, or strings like ``"C0000042"``, or with ``string_ids="long"``
    26-byte strings), ``item`` (int64 or strings
    like ``"SKU00017"``), ``time`` (timestamp[us, UTC] over one year), ``amount`` (``amount_dtype``,
    about 3% negative = returns), ``order`` (int64 invoice number). Customer and item activity
    are Zipf-like (a few heavy customers and popular items, a long tail), as in retail logs.
    """
    rng = np.random.default_rng(seed)
    n_customers = max(rows // 20, 10)
    n_items = max(rows // 50, 10)
    customer = _zipf_codes(rng, rows, n_customers, 0.9)
    item = _zipf_codes(rng, rows, n_items, 1.1)
    time = _START_US + np.sort(rng.integers(0, _YEAR_US, rows))
    if not time_sorted:
        perm = rng.permutation(rows)
        customer, item, time = customer[perm], item[perm], time[perm]
    amount = np.round(rng.gamma(2.0, 15.0, rows), 2)
    amount[rng.random(rows) < 0.03] *= -1.0
    order = (np.arange(rows) // 3).astype(np.int64)
    if string_ids == "long":  # longer than 15 bytes: rfm's hash-map path (e.g. UUID-like ids)
        cust_col = pa.array(np.char.add("customer-account-", np.char.zfill(customer.astype(str), 9)))
        item_col = pa.array(np.char.add("SKU", np.char.zfill(item.astype(str), 5)))
    elif string_ids:
        cust_col = pa.array(np.char.add("C", np.char.zfill(customer.astype(str), 7)))
        item_col = pa.array(np.char.add("SKU", np.char.zfill(item.astype(str), 5)))
    else:
        cust_col, item_col = pa.array(customer), pa.array(item)
    return pa.table({
        "customer": cust_col,
        "item": item_col,
        "time": pa.array(time, pa.timestamp("us", tz="UTC")),
        "amount": pa.array(amount.astype(amount_dtype)),
        "order": pa.array(order),
    })


def _zipf_codes(rng, rows: int, n: int, exponent: float) -> np.ndarray:
    weights = 1.0 / np.arange(10, n + 10, dtype=np.float64) ** exponent
    cdf = np.cumsum(weights)
    codes = np.searchsorted(cdf, rng.random(rows) * cdf[-1], side="right")
    # Spread the codes so that the ids are not a dense 0..n-1 range (sparse ids are the common
    # case; dense ids take a different, cheaper path in rfm).
    return (np.minimum(codes, n - 1).astype(np.int64) * 7919 + 100_003)
