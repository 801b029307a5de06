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


def siphash(key: bytes, message: bytes, out_bytes: int = 8, c_rounds: int = 2,
            d_rounds: int = 4) -> bytes:
    """SipHash-c-d (default 2-4) of ``message`` under the 16-byte ``key``, 8- or 16-byte tag,
    written from the paper (Aumasson, Bernstein, INDOCRYPT 2012, section 2) and the reference
    implementation's 128-bit variant, in plain Python integers."""
    mask = 2**64 - 1

    def rotl(x, b):
        return ((x << b) | (x >> (64 - b))) & mask

    def rounds(v, count):
        v0, v1, v2, v3 = v
        for _ in range(count):
            v0 = (v0 + v1) & mask
            v1 = rotl(v1, 13) ^ v0
            v0 = rotl(v0, 32)
            v2 = (v2 + v3) & mask
            v3 = rotl(v3, 16) ^ v2
            v0 = (v0 + v3) & mask
            v3 = rotl(v3, 21) ^ v0
            v2 = (v2 + v1) & mask
            v1 = rotl(v1, 17) ^ v2
            v2 = rotl(v2, 32)
        return [v0, v1, v2, v3]

    assert len(key) == 16 and out_bytes in (8, 16)
    k0, k1 = int.from_bytes(key[:8], "little"), int.from_bytes(key[8:], "little")
    v = [k0 ^ 0x736F6D6570736575, k1 ^ 0x646F72616E646F6D, k0 ^ 0x6C7967656E657261,
         k1 ^ 0x7465646279746573]
    if out_bytes == 16:
        v[1] ^= 0xEE
    # message words: 8-byte little-endian blocks, the last one padded with zeros and the
    # length mod 256 in its top byte
    padded = message + bytes(7 - len(message) % 8) + bytes([len(message) % 256])
    for i in range(0, len(padded), 8):
        m = int.from_bytes(padded[i:i + 8], "little")
        v[3] ^= m
        v = rounds(v, c_rounds)
        v[0] ^= m
    v[2] ^= 0xEE if out_bytes == 16 else 0xFF
    v = rounds(v, d_rounds)
    tag = (v[0] ^ v[1] ^ v[2] ^ v[3]).to_bytes(8, "little")
    if out_bytes == 16:
        v[1] ^= 0xDD
        v = rounds(v, d_rounds)
        tag += (v[0] ^ v[1] ^ v[2] ^ v[3]).to_bytes(8, "little")
    return tag
