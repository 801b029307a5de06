"""Plain-Python references for fastengage.profile and fastengage.training_set (issue #15).

Written from the documented definitions, one customer at a time, with Python sets and lists:
no sorting tricks, no shared code with the kernels.
"""
from __future__ import annotations

import math
from fractions import Fraction

DAY = 86_400_000_000


def naive_profile(customers, times, amounts, *, orders=None, items=None, categories=None,
                  channels=None, as_of=None, windows=(30, 90, 365), returns="net"):
    """{customer: {column: value}} for rows given as Python lists (times in microseconds UTC,
    customers without None: drop those first). Null outputs are None."""
    if as_of is None:
        as_of = max(times)
    rows = {}
    for i, c in enumerate(customers):
        if times[i] <= as_of:
            rows.setdefault(c, []).append(i)
    channel_values = sorted(set(channels)) if channels is not None else []
    w0 = min(windows)
    out = {}
    for c, idx in rows.items():
        buy = [i for i in idx if amounts[i] >= 0]
        back = [i for i in idx if amounts[i] < 0]
        if not buy:
            continue
        r = {}

        def n_orders(sel):
            return len({orders[i] for i in sel}) if orders is not None else len(sel)

        def total(sel):  # every sum of amounts is the exact sum, correctly rounded
            return float(sum(Fraction(amounts[i]) for i in sel))

        first = min(times[i] for i in buy)
        last = max(times[i] for i in buy)
        days = sorted({times[i] // DAY for i in buy})
        freq = n_orders(buy)
        # rfm()'s money is the exact sum, correctly rounded
        money = float(sum(Fraction(amounts[i]) for i in buy + (back if returns == "net" else [])))
        r.update(first_purchase=first, last_purchase=last, recency_days=(as_of - last) // DAY,
                 tenure_days=(as_of - first) // DAY, frequency=freq, purchase_days=len(days),
                 monetary_total=money, monetary_mean=money / freq)
        for w in windows:
            inside = [i for i in buy if times[i] > as_of - w * DAY]
            gone = [i for i in back if times[i] > as_of - w * DAY]
            r[f"orders_{w}d"] = n_orders(inside)
            r[f"purchase_days_{w}d"] = len({times[i] // DAY for i in inside})
            r[f"spend_{w}d"] = total(inside)
            if returns != "exclude":
                r[f"returns_{w}d"] = len(gone)
                r[f"return_amount_{w}d"] = -total(gone)
        prev = [i for i in buy if as_of - 2 * w0 * DAY < times[i] <= as_of - w0 * DAY]
        r[f"orders_prev_{w0}d"] = n_orders(prev)
        r[f"spend_prev_{w0}d"] = total(prev)
        now_orders, now_spend = r[f"orders_{w0}d"], r[f"spend_{w0}d"]
        r["orders_trend"] = now_orders / r[f"orders_prev_{w0}d"] if r[f"orders_prev_{w0}d"] else None
        r["spend_trend"] = now_spend / r[f"spend_prev_{w0}d"] if r[f"spend_prev_{w0}d"] > 0 else None
        gaps = [b - a for a, b in zip(days, days[1:])]
        if gaps:
            mean = sum(gaps) / len(gaps)
            r["gap_mean_days"] = mean
            r["gap_std_days"] = math.sqrt(sum((g - mean) ** 2 for g in gaps) / len(gaps))
            r["last_gap_days"] = gaps[-1]
            r["overdue_ratio"] = r["recency_days"] / mean
        else:
            r.update(gap_mean_days=None, gap_std_days=None, last_gap_days=None, overdue_ratio=None)
        if items is not None:
            r["items_per_order"] = len(buy) / freq
            r["distinct_items"] = len({items[i] for i in buy})
        if categories is not None:
            counts = {}
            for i in buy:
                counts[categories[i]] = counts.get(categories[i], 0) + 1
            r["distinct_categories"] = len(counts)
            r["top_category_share"] = max(counts.values()) / len(buy)
            r["category_entropy"] = -sum(k / len(buy) * math.log(k / len(buy)) for k in counts.values())
        if channels is not None:
            latest = max(times[i] for i in buy)
            used = {channels[i] for i in buy}
            r["n_channels"] = len(used)
            r["last_channel"] = max(channels[i] for i in buy if times[i] == latest)
            spend = total(buy)
            for v in channel_values:
                r[f"channel_{v}_order_share"] = n_orders([i for i in buy if channels[i] == v]) / freq
            for v in channel_values:
                mine = [i for i in buy if channels[i] == v]
                r[f"channel_{v}_spend_share"] = total(mine) / spend if spend > 0 else None
        out[c] = r
    return out


def naive_labels(customers, times, amounts, *, cutoff, horizon_days, orders=None):
    """{customer: (churned, spend, purchases)} over (cutoff, cutoff + horizon]: a purchase is a
    row with amount > 0 (as churn_dataset), purchases count distinct orders (rows without
    orders), spend sums every amount of the window (returns included)."""
    end = cutoff + horizon_days * DAY
    out = {}
    for i, c in enumerate(customers):
        if c is None or not cutoff < times[i] <= end:
            continue
        spend, bought = out.get(c, (0.0, set()))
        spend += amounts[i]
        if amounts[i] > 0:
            bought = bought | {orders[i] if orders is not None else ("row", i)}
        out[c] = (spend, bought)
    return {c: (len(b) == 0, s, len(b)) for c, (s, b) in out.items()}
