"""The one parser of user-given points in time (``as_of=``, ``cutoff=``, ``calibration_end=``).

Every entry point turns such an argument into int64 microseconds since the epoch, UTC, here and
nowhere else, so that every capability reads the same value the same way:

* ``datetime`` (naive = UTC; aware converted to UTC), ``date`` (midnight UTC), pandas
  ``Timestamp`` (a ``datetime``), ``numpy.datetime64`` of any unit, a pyarrow timestamp/date scalar;
* a string: ISO 8601 (``2011-12-10``, ``2011-12-10T12:00``, ``...+01:00``, ``...Z``) or the
  compact ``YYYYMMDD`` that lifetimes' users pass (``"20150207"`` is 7 Feb 2015; NumPy would read
  it as the year 20,150,207). Any other all-digit string is ambiguous and refused.

Values outside 0001-01-01 .. 9999-12-31 (the range of time columns), NaT and numbers are
refused with an :class:`~fastengage.errors.InputError` naming the argument.
"""
from __future__ import annotations

import datetime as _dt
import re

import numpy as np

from ..errors import InputError
from .sources import TIME_MAX_US, TIME_MIN_US

__all__ = ["parse_time", "iso", "US_PER_UNIT"]

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
#: Microseconds per NumPy/Arrow time unit, as exact fractions (numerator, denominator).
US_PER_UNIT = {"W": (604_800_000_000, 1), "D": (86_400_000_000, 1), "h": (3_600_000_000, 1),
               "m": (60_000_000, 1), "s": (1_000_000, 1), "ms": (1_000, 1), "us": (1, 1),
               "ns": (1, 1_000), "ps": (1, 1_000_000), "fs": (1, 1_000_000_000),
               "as": (1, 1_000_000_000_000)}
_COMPACT_DATE = re.compile(r"^\d{8}$")


def _datetime_us(value: _dt.datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=_dt.timezone.utc)
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _datetime64_us(value: np.datetime64, name: str) -> int:
    if np.isnat(value):
        raise InputError(f"{name} is NaT (not a time)")
    unit, count = np.datetime_data(value.dtype)
    if unit not in US_PER_UNIT or unit in ("Y", "M") or unit == "generic":
        # calendar units have no fixed length: go through the calendar
        return _datetime64_us(value.astype("datetime64[D]"), name)
    num, den = US_PER_UNIT[unit]
    us = int(value.astype(np.int64)) * count * num // den  # Python ints: exact, no wrap-around
    if not TIME_MIN_US <= us <= TIME_MAX_US:
        # the range of every time column (and of Python's datetime, which reports it)
        raise InputError(f"{name}={value!r} is outside the supported range "
                         "0001-01-01 .. 9999-12-31")
    return us


def _string_us(text: str, name: str) -> int:
    s = text.strip()
    if _COMPACT_DATE.match(s):
        try:
            return _datetime_us(_dt.datetime.strptime(s, "%Y%m%d"))
        except ValueError:
            raise InputError(f"{name}={text!r} is not a valid YYYYMMDD date") from None
    if s.isdigit() or (s[:1] in "+-" and s[1:].isdigit()):
        raise InputError(f"{name}={text!r} is ambiguous: write the date as YYYY-MM-DD or YYYYMMDD")
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    try:
        parsed = _dt.datetime.fromisoformat(s)
    except ValueError:
        raise InputError(f"{name}={text!r} is not an ISO 8601 date or datetime "
                         "(e.g. 2011-12-10 or 2011-12-10T12:00:00)") from None
    return _datetime_us(parsed)


def parse_time(value, name: str = "as_of", *, optional: bool = False) -> int | None:
    """``value`` as int64 microseconds UTC (see the module docstring for what is accepted).
    ``None`` is returned as ``None`` when ``optional``, refused otherwise."""
    if value is None:
        if optional:
            return None
        raise InputError(f"{name} must be a date or a timestamp, got None")
    if hasattr(value, "as_py") and not isinstance(value, (str, bytes)):  # pyarrow scalar
        return parse_time(value.as_py(), name, optional=optional)
    if isinstance(value, np.datetime64):
        return _datetime64_us(value, name)
    if isinstance(value, str):
        return _string_us(value, name)
    if isinstance(value, _dt.datetime):
        if getattr(value, "nanosecond", 0):  # pandas Timestamp keeps ns we cannot hold: floor
            pass
        return _datetime_us(value)
    if isinstance(value, _dt.date):
        return (value - _EPOCH.date()).days * 86_400_000_000
    if hasattr(value, "to_datetime64"):  # pandas NaT and other timestamp-likes
        return _datetime64_us(value.to_datetime64(), name)
    raise InputError(f"{name} must be a datetime, date, numpy datetime64 or ISO string, "
                     f"got {type(value).__name__}")


def iso(us: int) -> str:
    """Microseconds UTC as an ISO 8601 string (for reports and messages)."""
    return (_EPOCH + _dt.timedelta(microseconds=int(us))).isoformat()
