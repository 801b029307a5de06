"""Plain-Python references for the privacy kernels (slow, obvious, independent of them)."""
import numpy as np

REASONS = ("kept", "no_consent", "withdrawn", "not_consented_as_of")


def consent_state(records, customer, purpose, t, as_of=None):
    """'granted', 'withdrawn' or None: the state of ``customer``'s consent for ``purpose`` at
    ``t`` from ``records`` = [(customer, purpose, granted, from or None, to or None)]."""
    covering = []
    for c, p, granted, start, end in records:
        if c != customer or p != purpose:
            continue
        if as_of is not None and start is not None and start > as_of:
            continue  # not yet known at as_of
        if (start is None or start <= t) and (end is None or t < end):
            covering.append((float("-inf") if start is None else start, 0 if granted else 1))
    if not covering:
        return None
    # the latest start decides; at equal starts a withdrawal (1) wins
    start, withdrawn = max(covering)
    return "withdrawn" if withdrawn else "granted"


def consent_reasons(events, records, purpose, as_of=None):
    """Reason of every event [(customer, t)] (one of REASONS)."""
    out = []
    for customer, t in events:
        state = consent_state(records, customer, purpose, t, as_of)
        if state == "granted":
            if as_of is not None and consent_state(records, customer, purpose, as_of,
                                                   as_of) != "granted":
                out.append("not_consented_as_of")
            else:
                out.append("kept")
        elif state == "withdrawn":
            out.append("withdrawn")
        else:
            out.append("no_consent")
    return out


def bounded_aggregates(segments, customers, amounts, max_rows, lower, upper, resolution):
    """{segment: (count, sum in units of resolution)} for every segment seen, keeping each
    customer's first ``max_rows`` rows in input order (per customer, across all segments;
    None: no cap); amounts rounded to units then clamped to the rounded bounds."""
    lo, hi = round(lower / resolution), round(upper / resolution)
    seen, out = {}, {}
    for s, c, a in zip(segments, customers, amounts):
        k = seen.get(c, 0)
        seen[c] = k + 1
        count, total = out.setdefault(s, (0, 0))  # every segment seen is reported
        if max_rows is not None and k >= max_rows:
            continue
        out[s] = (count + 1, total + min(max(int(np.rint(a / resolution)), lo), hi))
    return out
