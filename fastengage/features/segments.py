"""Named RFM segments: a map from (r_score, f_score, m_score) to a segment name.

The default map is the widely used eleven-segment grid on recency and a combined
frequency-monetary score ``fm = ceil((f_score + m_score) / 2)`` (the mean, rounded half up):

==========================  =========  ==========
segment                     r_score    fm
==========================  =========  ==========
Champions                   5          4-5
Loyal                       3-4        4-5
Potential Loyalists         4-5        2-3
New Customers               5          1
Promising                   4          1
Need Attention              3          3
About To Sleep              3          1-2
Can't Lose Them             1-2        5
At Risk                     1-2        3-4
Hibernating                 1-2        1-2 (except r=1, fm=1)
Lost                        1          1
==========================  =========  ==========

Users can pass their own map to :func:`fastengage.rfm` as a mapping ``{(r, f, m): name}`` that
covers all 125 score combinations, or as a callable ``name = fn(r, f, m)``.
"""
from __future__ import annotations

from typing import Callable, Mapping, Union

import numpy as np

from ..errors import InputError

SegmentMap = Union[Mapping[tuple, str], Callable[[int, int, int], str]]

__all__ = ["default_segment", "DEFAULT_SEGMENTS", "compile_segments", "SegmentMap"]


def default_segment(r: int, f: int, m: int) -> str:
    """The default segment name of one score triple (see the module docstring)."""
    fm = (f + m + 1) // 2
    if r == 5:
        return "Champions" if fm >= 4 else "Potential Loyalists" if fm >= 2 else "New Customers"
    if r == 4:
        return "Loyal" if fm >= 4 else "Potential Loyalists" if fm >= 2 else "Promising"
    if r == 3:
        return "Loyal" if fm >= 4 else "Need Attention" if fm == 3 else "About To Sleep"
    if fm == 5:
        return "Can't Lose Them"
    if fm >= 3:
        return "At Risk"
    return "Lost" if (r == 1 and fm == 1) else "Hibernating"


#: The default map as an explicit dictionary, handy as a starting point for a custom one.
DEFAULT_SEGMENTS = {
    (r, f, m): default_segment(r, f, m)
    for r in range(1, 6) for f in range(1, 6) for m in range(1, 6)
}


def compile_segments(segments: SegmentMap | None) -> tuple[list[str], np.ndarray]:
    """Turn a segment map into (names, int16 table of shape (6, 6, 6)) for the kernel.

    Raises
    ------
    InputError
        If a mapping misses a score combination or a name is not a string.
    """
    if segments is None:
        segments = DEFAULT_SEGMENTS
    names: list[str] = []
    index: dict[str, int] = {}
    table = np.full((6, 6, 6), -1, dtype=np.int16)
    for r in range(1, 6):
        for f in range(1, 6):
            for m in range(1, 6):
                if callable(segments):
                    name = segments(r, f, m)
                else:
                    try:
                        name = segments[(r, f, m)]
                    except KeyError:
                        raise InputError(
                            f"segments map has no entry for (r_score, f_score, m_score) = {(r, f, m)};"
                            " it must cover all 125 combinations of scores 1..5"
                        ) from None
                if not isinstance(name, str):
                    raise InputError(f"segment name for {(r, f, m)} must be a str, got {name!r}")
                if name not in index:
                    index[name] = len(names)
                    names.append(name)
                table[r, f, m] = index[name]
    return names, table
