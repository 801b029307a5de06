"""Argument checks of :func:`fastengage.privacy.dp_report` (kept apart so dp.py stays small):
every bad argument is an :class:`InputError` before any data is read or budget spent."""
from __future__ import annotations

import math

import numpy as np

from ..errors import InputError

METRICS = ("count", "sum", "mean")
_MAX_UNITS = 2 ** 52  # largest |bound| in units of resolution (exact in float64 and in rint)


def check_args(metrics, amount, bounds, customer, max_rows, epsilon, resolution, alpha):
    if isinstance(metrics, str):
        metrics = [metrics]
    metrics = list(dict.fromkeys(metrics))
    bad = [m for m in metrics if m not in METRICS]
    if bad or not metrics:
        raise InputError(f"metrics={metrics!r}; choose from {', '.join(METRICS)}")
    needs_amount = any(m in ("sum", "mean") for m in metrics)
    if needs_amount:
        if amount is None:
            raise InputError("metrics sum/mean need amount= (the column to sum)")
        if bounds is None or len(bounds) != 2:
            raise InputError("metrics sum/mean need bounds=(lower, upper): amounts are clamped "
                             "to them, which is what bounds each customer's influence")
        try:
            lower, upper = float(bounds[0]), float(bounds[1])
        except (TypeError, ValueError):
            raise InputError(f"bounds={bounds!r} must be two numbers (lower, upper)") from None
        if not (math.isfinite(lower) and math.isfinite(upper) and lower < upper):
            raise InputError(f"bounds={bounds!r} must be finite with lower < upper")
        if isinstance(resolution, bool) or not (isinstance(resolution, (int, float))
                                                and math.isfinite(resolution) and resolution > 0):
            raise InputError(f"resolution={resolution!r} must be positive")
        if max(abs(lower), abs(upper)) / resolution > _MAX_UNITS:
            # sums are int64 multiples of resolution; a bound of 2**52+ units would also lose
            # the exactness of rint(amount / resolution)
            raise InputError(f"bounds={bounds!r} at resolution={resolution!r} are more than "
                             f"2**52 units from 0; use a coarser resolution or tighter bounds")
        if round(lower / resolution) >= round(upper / resolution):
            raise InputError(f"bounds={bounds!r} collapse to one value at resolution="
                             f"{resolution!r}")
        bounds = (lower, upper)
    if customer is not None:
        if isinstance(max_rows, bool) or not isinstance(max_rows, (int, np.integer)) \
                or max_rows < 1:
            raise InputError("customer= is the privacy unit: max_rows_per_customer= (a positive "
                             "int) must bound how many rows each customer contributes")
    elif max_rows is not None:
        raise InputError("max_rows_per_customer= needs customer= (whose rows to cap)")
    if isinstance(epsilon, bool) or not (isinstance(epsilon, (int, float))
                                         and math.isfinite(epsilon) and epsilon > 0):
        raise InputError(f"epsilon={epsilon!r} must be a positive finite number")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < 1:
        raise InputError(f"alpha={alpha!r} must be in (0, 1)")
    return metrics, needs_amount, bounds


def check_int64_sums(counts, unit_rows: int, max_units: int) -> None:
    """Each segment's sum (at most count x max_units units) and the sum's sensitivity must fit
    int64 with room for the noise (2**62): the kernel's integer sums would otherwise wrap."""
    largest = int(counts.max()) if counts.size else 0
    if max(largest, unit_rows) * max_units >= 2 ** 62:
        raise InputError(f"sums could overflow: {max(largest, unit_rows):,} rows x "
                         f"{max_units:,} units (bounds / resolution) pass 2**62; use a coarser "
                         "resolution or tighter bounds")
