"""Plain, obviously-correct references for the RFM kernels (slow on purpose: clarity first).

Everything here works on Python objects and dicts so that it shares no code path with the
kernels it checks.
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

US_PER_DAY = 86_400_000_000


def time_us(value) -> int:
    """Microseconds since the epoch of a numpy datetime64 / int (already µs)."""
    if isinstance(value, np.datetime64):
        return int(value.astype("datetime64[us]").astype(np.int64))
    return int(value)


def exact_total(amounts) -> float:
    """The exact sum of ``amounts`` (each rounded half-even to a multiple of 2**-64, as the
    kernels take them), correctly rounded to float64 by ``Fraction.__float__``."""
    total = Fraction(0)
    for a in amounts:
        units = round(Fraction(abs(a)) * 2 ** 64)  # round() of a Fraction is half to even
        total += units if a >= 0 else -units
    return float(total / 2 ** 64)


def rfm_reference(customers, times_us, amounts, orders=None, as_of_us=None, returns="net"):
    """RFM per customer as a dict ``{customer: {feature: value}}`` (scores and segments excluded).

    Parameters mirror :func:`fastengage.rfm` on plain Python sequences; ``times_us`` are ints.
    """
    if as_of_us is None:
        as_of_us = max(times_us)
    acc: dict = {}
    for i, (c, t, a) in enumerate(zip(customers, times_us, amounts)):
        if t > as_of_us:
            continue
        if a < 0 and returns == "exclude":
            continue
        rec = acc.setdefault(c, {"times": [], "purchase": [], "returns": [], "orders": set(),
                                 "rows": 0, "days": set()})
        if a < 0:
            rec["returns"].append(a)
            continue
        rec["times"].append(t)
        rec["purchase"].append(a)
        rec["rows"] += 1
        rec["days"].add(t // US_PER_DAY)
        if orders is not None:
            rec["orders"].add(orders[i])
    out = {}
    for c, rec in acc.items():
        if not rec["times"]:
            continue  # returns only: left out
        freq = len(rec["orders"]) if orders is not None else rec["rows"]
        total = exact_total(rec["purchase"] + (rec["returns"] if returns == "net" else []))
        out[c] = {
            "first_purchase": min(rec["times"]),
            "last_purchase": max(rec["times"]),
            "recency_days": (as_of_us - max(rec["times"])) // US_PER_DAY,
            "tenure_days": (as_of_us - min(rec["times"])) // US_PER_DAY,
            "frequency": freq,
            "purchase_days": len(rec["days"]),
            "monetary_total": total,
            "monetary_mean": total / freq,
        }
    return out


def scores_reference(values, higher_is_better: bool):
    """``min(5, 1 + floor(5 * w / n))`` with w = number of strictly worse values."""
    n = len(values)
    out = []
    for v in values:
        if higher_is_better:
            w = sum(1 for u in values if u < v)
        else:
            w = sum(1 for u in values if u > v)
        out.append(min(5, 1 + math.floor(5 * w / n)))
    return out
