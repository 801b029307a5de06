"""The one read loop: pick columns by role, convert each batch once, concatenate.

Design: an entry point says *what* each role's column becomes (dense id codes through an
:class:`~fastengage._io.ids.IdEncoder`, microseconds since the epoch, float64 values) and
:func:`read_columns` owns *how*: streaming the batches of any input, skipping empty ones,
converting every column at the Arrow boundary with the error messages of
:mod:`fastengage._io.sources`, and joining the pieces without a copy when there is only one.
A consent rule (``consent=`` of every entry point that reads events) is applied here too, by
:func:`consented_input`, before any column is read.
"""
from __future__ import annotations

from typing import Callable, Mapping, NamedTuple

import numpy as np
import pyarrow as pa

from ..errors import InputError
from .ids import IdEncoder
from .sources import Source, amount_to_float64, open_source, time_to_us

__all__ = ["Convert", "codes", "lookup_codes", "microseconds", "float64", "positive_float64",
           "read_columns", "consented_input"]


class Convert(NamedTuple):
    """How one role's column becomes a NumPy array: ``apply(array, column, role)`` and the dtype
    of the result (for an input without rows)."""

    apply: Callable[[pa.Array, str, str], np.ndarray]
    dtype: type


def codes(encoder: IdEncoder) -> Convert:
    """Dense int64 codes, adding ids the encoder has not seen."""
    return Convert(lambda array, column, role: encoder.encode(array), np.int64)


def lookup_codes(encoder: IdEncoder) -> Convert:
    """Codes of ids the encoder already holds; -1 marks an unknown id."""
    return Convert(lambda array, column, role: encoder.lookup(array), np.int64)


microseconds = Convert(lambda array, column, role: time_to_us(array, column), np.int64)
float64 = Convert(amount_to_float64, np.float64)


def _positive(array: pa.Array, column: str, role: str) -> np.ndarray:
    values = amount_to_float64(array, column, role)
    bad = int(np.count_nonzero(~(values > 0)))
    if bad:
        raise InputError(
            f"{role} column {column!r} has {bad} value(s) that are zero or negative; "
            f"{role}s must be > 0 (filter returns and free items first)")
    return values


positive_float64 = Convert(_positive, np.float64)


def read_columns(source: Source, roles: Mapping[str, str], convert: Mapping[str, Convert], *,
                 batch_size: int | None = None) -> dict[str, np.ndarray]:
    """Read the columns of ``roles`` (``{role: column}``, as :meth:`Source.require` returns it)
    that ``convert`` names, one converted array per role over all rows in input order.

    Roles missing from ``roles`` (optional columns the user did not give) are left out of the
    result. Batches without rows are skipped; an input without rows gives empty arrays.
    """
    wanted = {role: conv for role, conv in convert.items() if roles.get(role) is not None}
    parts: dict[str, list] = {role: [] for role in wanted}
    columns = list(dict.fromkeys(roles[role] for role in wanted))
    for batch in source.batches(columns, batch_size=batch_size):
        if batch.num_rows == 0:
            continue
        for role, conv in wanted.items():
            parts[role].append(conv.apply(batch.column(roles[role]), roles[role], role))
    out = {}
    for role, pieces in parts.items():
        if not pieces:
            out[role] = np.zeros(0, wanted[role].dtype)
        elif len(pieces) == 1:
            out[role] = pieces[0]
        else:
            out[role] = np.concatenate(pieces)
    return out


def consented_input(data, consent, *, customer: str, time: str | None = None,
                    batch_size: int | None = None):
    """``data`` restricted to the rows ``consent`` allows (the input itself when ``consent`` is
    None).

    ``consent`` is a :class:`fastengage.privacy.ConsentFilter`; its report of what was excluded
    is then at ``consent.last_report`` (per thread). Without a ``time`` column each row is
    judged at the filter's ``as_of`` (which must then be given).
    """
    if consent is None:
        return data
    apply = getattr(consent, "apply", None)
    if apply is None:
        raise InputError("consent= must be a fastengage.privacy.ConsentFilter, got "
                         f"{type(consent).__name__}")
    if customer is None:
        raise InputError("consent= needs the customer= column to know whose rows these are")
    return apply(open_source(data), customer=customer, time=time, batch_size=batch_size).data
