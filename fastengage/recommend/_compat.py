"""Old spellings that keep working for one release, with a DeprecationWarning (issue #9's one
vocabulary: keyword-only ``customer=``, ``item=``, ``time=``; ``n_threads=``)."""
from __future__ import annotations

import warnings

from ..errors import InputError

__all__ = ["positional", "deprecated_threads"]


def positional(where: str, args: tuple, names: tuple, given: dict) -> dict:
    """Map the positional ``args`` of an old call of ``where`` onto ``names`` (warning once per
    call), refusing a name given both ways. Returns ``given`` updated."""
    if not args:
        return given
    if len(args) > len(names):
        raise TypeError(f"{where}() takes at most {len(names)} arguments after the data "
                        f"({len(args)} given)")
    used = names[:len(args)]
    warnings.warn(f"passing {', '.join(used)} to {where}() by position is deprecated; write "
                  + ", ".join(f"{n}=" for n in used), DeprecationWarning, stacklevel=3)
    out = dict(given)
    for name, value in zip(used, args):
        if out.get(name) is not None:
            raise TypeError(f"{where}() got {name} both by position and as {name}=")
        out[name] = value
    return out


def deprecated_threads(n_threads, num_threads, where: str = "recommenders"):
    """``n_threads``, or the deprecated ``num_threads`` (implicit's spelling) with a warning."""
    if num_threads is None:
        return n_threads
    warnings.warn(f"num_threads= is deprecated in {where}; use n_threads=", DeprecationWarning,
                  stacklevel=3)
    if n_threads is not None and n_threads != num_threads:
        raise InputError("pass n_threads= only (num_threads= is its deprecated spelling)")
    return num_threads
