"""Model and state files: a documented, versioned, non-executable bundle format.

A bundle is a ZIP archive holding

* ``meta.json`` — ``{"format": "fastengage", "kind": ..., "version": ..., "meta": {...}}``;
* ``<name>.npy`` — NumPy arrays written with ``allow_pickle=False`` (plain or structured dtypes);
* ``<name>.arrow`` — Arrow IPC files (used for id columns, so string and integer ids keep their
  exact type).

Nothing in a bundle is ever unpickled or evaluated: loading reads JSON, ``.npy`` with
``allow_pickle=False`` and Arrow IPC, so a file from an untrusted place cannot run code.
"""
from __future__ import annotations

import io
import json
import os
import zipfile
from typing import Any, Mapping

import numpy as np
import pyarrow as pa

from ..errors import ModelFormatError

FORMAT = "fastengage"

__all__ = ["save_bundle", "load_bundle", "Bundle"]


class Bundle:
    """What :func:`load_bundle` returns: ``kind``, ``version``, ``meta``, ``arrays``, ``tables``."""

    def __init__(self, kind: str, version: int, meta: dict, arrays: dict, tables: dict):
        self.kind = kind
        self.version = version
        self.meta = meta
        self.arrays = arrays
        self.tables = tables

    def array(self, name: str) -> np.ndarray:
        try:
            return self.arrays[name]
        except KeyError:
            raise ModelFormatError(f"{self.kind} file is missing array {name!r}") from None

    def table(self, name: str) -> pa.Table:
        try:
            return self.tables[name]
        except KeyError:
            raise ModelFormatError(f"{self.kind} file is missing table {name!r}") from None


def save_bundle(path: str | os.PathLike | io.IOBase, kind: str, version: int,
                meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray] | None = None,
                tables: Mapping[str, pa.Table] | None = None) -> None:
    """Write a bundle. ``meta`` must be JSON-serialisable; arrays must not have object dtype."""
    header = {"format": FORMAT, "kind": kind, "version": int(version), "meta": dict(meta)}
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.writestr("meta.json", json.dumps(header, indent=1, sort_keys=True))
        for name, arr in (arrays or {}).items():
            arr = np.asarray(arr)
            if arr.dtype.hasobject:
                raise TypeError(f"array {name!r} has object dtype; it cannot be saved safely")
            buf = io.BytesIO()
            np.save(buf, arr, allow_pickle=False)
            zf.writestr(f"{name}.npy", buf.getvalue())
        for name, table in (tables or {}).items():
            if isinstance(table, (pa.Array, pa.ChunkedArray)):
                table = pa.table({"value": table})
            sink = pa.BufferOutputStream()
            with pa.ipc.new_file(sink, table.schema) as writer:
                writer.write_table(table)
            zf.writestr(f"{name}.arrow", sink.getvalue().to_pybytes())


def load_bundle(path: str | os.PathLike | io.IOBase, kind: str,
                max_version: int) -> Bundle:
    """Read a bundle of ``kind`` written by a version up to ``max_version``.

    Raises
    ------
    ModelFormatError
        If the file is not a fastengage bundle, is of another kind, or is of a newer version.
    """
    try:
        zf = zipfile.ZipFile(path, "r")
    except (zipfile.BadZipFile, OSError) as exc:
        raise ModelFormatError(f"not a fastengage {kind} file: {exc}") from exc
    with zf:
        try:
            header = json.loads(zf.read("meta.json"))
        except (KeyError, ValueError) as exc:
            raise ModelFormatError(f"not a fastengage {kind} file: no valid meta.json") from exc
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise ModelFormatError(f"not a fastengage {kind} file (format={header.get('format')!r})"
                                   if isinstance(header, dict) else f"not a fastengage {kind} file")
        if header.get("kind") != kind:
            raise ModelFormatError(f"file holds a {header.get('kind')!r}, not a {kind!r}")
        version = header.get("version")
        if not isinstance(version, int) or version < 1 or version > max_version:
            raise ModelFormatError(
                f"{kind} file has version {version!r}; this fastengage reads versions 1..{max_version}"
            )
        arrays, tables = {}, {}
        for name in zf.namelist():
            if name.endswith(".npy"):
                try:
                    arrays[name[:-4]] = np.load(io.BytesIO(zf.read(name)), allow_pickle=False)
                except ValueError as exc:
                    raise ModelFormatError(f"{kind} file: array {name!r} is unreadable: {exc}") from exc
            elif name.endswith(".arrow"):
                try:
                    tables[name[:-6]] = pa.ipc.open_file(pa.py_buffer(zf.read(name))).read_all()
                except pa.ArrowInvalid as exc:
                    raise ModelFormatError(f"{kind} file: table {name!r} is unreadable: {exc}") from exc
    return Bundle(kind, version, header.get("meta", {}), arrays, tables)
