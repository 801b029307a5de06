"""Saving and loading fitted CLV models through the safe bundle format, validating every field.

A CLV model file is a bundle (``fastengage._io.persist``) of kind ``"clv.<model>"``, version 1,
holding exactly two members:

* ``meta.json``: ``meta`` = {``params``: {name: value > 0}, ``param_names``: [...],
  ``log_likelihood``: number or null, ``standard_errors``: {name: number >= 0 or null},
  ``penalizer``: number >= 0, ``n``: number >= 0 or null};
* ``covariance.npy``: float64 (k, k), finite or NaN (NaN when the Hessian was singular).

Before anything is decompressed, the ZIP directory is checked: only these members, each of a
declared size the model can need (meta.json <= 64 KiB, the covariance <= its k x k size plus a
header), and the covariance's ``.npy`` header (dtype, shape) is read and checked before NumPy
allocates for it. Every field is then checked for type, finiteness and range. Any failure is a
:class:`~fastengage.errors.ModelFormatError` naming the member and the problem, so a hostile
file costs at most ~64 KiB of reading and never reaches a kernel with a bad value.
"""
from __future__ import annotations

import io
import json
import math
import numbers
import zipfile
import zlib

import numpy as np

from .._io.persist import load_bundle, save_bundle
from ..errors import ModelFormatError

__all__ = ["save_model", "load_model_fields", "VERSION"]

VERSION = 1
MAX_META_BYTES = 64 * 1024
_NPY_HEADER_BYTES = 1024
_MEMBERS = ("meta.json", "covariance.npy")
#: What a corrupt member can raise while being decompressed or parsed.
_READ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, RuntimeError,
                NotImplementedError, RecursionError, UnicodeDecodeError, KeyError)


def save_model(path, kind: str, param_names, params: dict, log_likelihood, standard_errors,
               penalizer: float, n, covariance) -> None:
    meta = {"params": {k: float(params[k]) for k in param_names},
            "param_names": list(param_names),
            "log_likelihood": None if log_likelihood is None else float(log_likelihood),
            "standard_errors": {k: (None if not np.isfinite(standard_errors[k])
                                    else float(standard_errors[k])) for k in param_names},
            "penalizer": float(penalizer), "n": None if n is None else float(n)}
    save_bundle(path, kind, VERSION, meta,
                arrays={"covariance": np.asarray(covariance, dtype=np.float64)})


def _bad(kind, what, problem):
    return ModelFormatError(f"{kind} file: {what} {problem}")


def _number(kind, what, value, *, minimum=None, strict=False, allow_none=False):
    """``value`` as a finite float (>= / > ``minimum``), else ModelFormatError naming it."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise _bad(kind, what, f"must be a number, got {type(value).__name__}")
    try:
        v = float(value)
    except (OverflowError, ValueError):
        raise _bad(kind, what, "is out of the range of a float64") from None
    if not math.isfinite(v):
        raise _bad(kind, what, f"must be finite, got {v}")
    if minimum is not None and (v <= minimum if strict else v < minimum):
        raise _bad(kind, what, f"must be {'>' if strict else '>='} {minimum}, got {v}")
    return v


def _check_directory(source, kind: str, k: int) -> None:
    """Members and their declared sizes, and the covariance's .npy header, before any read of
    the whole file (bounded: at most MAX_META_BYTES + the covariance are decompressed)."""
    try:
        with zipfile.ZipFile(source, "r") as zf:
            infos = {}
            for info in zf.infolist():
                if info.filename not in _MEMBERS:
                    raise _bad(kind, f"member {info.filename!r}", "is not part of a CLV model file")
                if info.filename in infos:
                    raise _bad(kind, f"member {info.filename!r}", "appears twice")
                infos[info.filename] = info
            for name in _MEMBERS:
                if name not in infos:
                    raise _bad(kind, f"member {name!r}", "is missing")
            limits = {"meta.json": MAX_META_BYTES, "covariance.npy": _NPY_HEADER_BYTES + 8 * k * k}
            for name, limit in limits.items():
                if infos[name].file_size > limit:
                    raise _bad(kind, f"member {name!r}", f"declares {infos[name].file_size} bytes; "
                               f"a {kind} model needs at most {limit}")
            raw = zf.read(infos["covariance.npy"])
            meta_raw = zf.read(infos["meta.json"])
    except ModelFormatError:
        raise
    except _READ_ERRORS as exc:
        raise ModelFormatError(f"not a readable {kind} file: {exc}") from exc
    buf = io.BytesIO(raw)
    try:
        version = np.lib.format.read_magic(buf)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(buf)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(buf)
        else:
            raise ValueError(f"unsupported .npy version {version}")
    except _READ_ERRORS + (SyntaxError, TypeError) as exc:
        raise _bad(kind, "member 'covariance.npy'", f"has no valid .npy header: {exc}") from exc
    if dtype != np.dtype("<f8") or tuple(shape) != (k, k):
        raise _bad(kind, "member 'covariance.npy'",
                   f"must be float64 of shape ({k}, {k}), got {dtype} {tuple(shape)}")
    try:
        header = json.loads(meta_raw)
    except _READ_ERRORS as exc:
        raise _bad(kind, "member 'meta.json'", f"is not valid JSON: {exc}") from exc
    version = header.get("version") if isinstance(header, dict) else None
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= VERSION:
        raise _bad(kind, "member 'meta.json'",
                   f"has version {version!r}; this fastengage reads versions 1..{VERSION}")


def load_model_fields(source, kind: str, param_names: tuple) -> dict:
    """Validated fields of a saved model: params, log_likelihood, standard_errors, penalizer,
    n, covariance. Raises ModelFormatError for any malformed member or field."""
    k = len(param_names)
    start = source.tell() if hasattr(source, "seek") else None
    _check_directory(source, kind, k)
    if start is not None:
        source.seek(start)
    try:
        bundle = load_bundle(source, kind, VERSION)
    except ModelFormatError:
        raise
    except _READ_ERRORS as exc:
        raise ModelFormatError(f"not a readable {kind} file: {exc}") from exc
    meta = bundle.meta
    if not isinstance(meta, dict):
        raise _bad(kind, "meta", f"must be an object, got {type(meta).__name__}")
    for key in ("params", "param_names", "standard_errors"):
        if key not in meta:
            raise _bad(kind, f"meta field {key!r}", "is missing")
    if meta["param_names"] != list(param_names):
        raise _bad(kind, "param_names", f"must be {list(param_names)}, got {meta['param_names']!r}")
    params, ses = meta["params"], meta["standard_errors"]
    for key, value in (("params", params), ("standard_errors", ses)):
        if not isinstance(value, dict):
            raise _bad(kind, key, f"must be an object, got {type(value).__name__}")
        if set(value) != set(param_names):
            raise _bad(kind, key, f"must have exactly the keys {list(param_names)}, "
                       f"got {sorted(map(str, value))}")
    fields = {
        "params": {p: _number(kind, f"params[{p!r}]", params[p], minimum=0.0, strict=True)
                   for p in param_names},
        "standard_errors": {p: _number(kind, f"standard_errors[{p!r}]", ses[p], minimum=0.0,
                                       allow_none=True) for p in param_names},
        "log_likelihood": _number(kind, "log_likelihood", meta.get("log_likelihood"),
                                  allow_none=True),
        "penalizer": _number(kind, "penalizer", meta.get("penalizer", 0.0), minimum=0.0),
        "n": _number(kind, "n", meta.get("n"), minimum=0.0, allow_none=True),
    }
    fields["standard_errors"] = {p: (np.nan if v is None else v)
                                 for p, v in fields["standard_errors"].items()}
    cov = bundle.array("covariance")
    if cov.dtype != np.float64 or cov.shape != (k, k):
        raise _bad(kind, "covariance", f"must be float64 ({k}, {k}), got {cov.dtype} {cov.shape}")
    if np.isinf(cov).any():
        raise _bad(kind, "covariance", "has infinite values")
    fields["covariance"] = np.ascontiguousarray(cov)
    return fields
