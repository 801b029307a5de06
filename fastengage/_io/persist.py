"""Model and state files: a documented, versioned, non-executable bundle format.

A bundle is a ZIP archive holding

* ``meta.json`` — ``{"format": "fastengage", "kind": ..., "version": ..., "meta": {...}}``;
* ``<name>.npy`` — NumPy arrays written with ``allow_pickle=False`` (plain or structured dtypes);
* ``<name>.arrow`` — Arrow IPC files (used for id columns, so string and integer ids keep their
  exact type).

Nothing in a bundle is ever unpickled or evaluated: loading reads JSON, ``.npy`` with
``allow_pickle=False`` and Arrow IPC, so a file from an untrusted place cannot run code.

Bounded loading (issue #10)
---------------------------
A file from an untrusted place must not cost more than the model it claims to hold:

* ``meta.json`` larger than :data:`~fastengage.kernels.common.config.BUNDLE_META_MAX_BYTES` is
  refused before it is read;
* members are read lazily, only when a loader asks for them (an extra 1 GiB member costs nothing);
* before a ``.npy`` member is decompressed, its header (dtype, shape) is read alone and checked
  against what the loader expects (``dtype=``, ``shape=``, ``max_bytes=``, derived from the
  metadata) and against the member's declared size; the data is then decompressed straight into
  an array of exactly that size (one copy, never ``bytes`` then ``np.load``);
* an ``.arrow`` member's declared size is checked against the loader's ``max_bytes`` first.

Every problem raises :class:`~fastengage.errors.ModelFormatError` naming the member.
"""
from __future__ import annotations

import ast
import io
import json
import math
import os
import zipfile
import zlib
from typing import Any, Iterator, Mapping

import numpy as np
import pyarrow as pa

from ..errors import ModelFormatError
from ..kernels.common.config import BUNDLE_META_MAX_BYTES, BUNDLE_NPY_HEADER_MAX_BYTES

FORMAT = "fastengage"

__all__ = ["save_bundle", "load_bundle", "Bundle"]

_NPY_MAGIC = b"\x93NUMPY"


class _LazyMembers(Mapping):
    """``name -> value`` of one kind of member, read on first access (and then kept)."""

    def __init__(self, names: list, read):
        self._names = names
        self._read = read
        self._cache: dict = {}

    def __getitem__(self, name):
        if name not in self._names:
            raise KeyError(name)
        if name not in self._cache:
            self._cache[name] = self._read(name)
        return self._cache[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, name) -> bool:
        return name in self._names


class Bundle:
    """What :func:`load_bundle` returns: ``kind``, ``version``, ``meta``, ``arrays``, ``tables``.

    ``arrays`` and ``tables`` are read-on-access mappings; :meth:`array` and :meth:`table` read
    one member with the loader's expectations checked *before* anything is decompressed. The
    archive stays open until :meth:`close` (or the end of a ``with`` block, or garbage collection).
    """

    def __init__(self, kind: str, version: int, meta: dict, zf: zipfile.ZipFile | None = None):
        self.kind = kind
        self.version = version
        self.meta = meta
        self._zf = zf
        infos = {} if zf is None else {i.filename: i for i in zf.infolist()}
        self._infos = infos
        self.arrays = _LazyMembers([n[:-4] for n in infos if n.endswith(".npy")],
                                   lambda name: self._read_array(name))
        self.tables = _LazyMembers([n[:-6] for n in infos if n.endswith(".arrow")],
                                   lambda name: self._read_table(name))

    # -- context / lifetime --------------------------------------------------------------------
    def close(self) -> None:
        if self._zf is not None:
            self._zf.close()

    def __enter__(self) -> "Bundle":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _fail(self, member: str, problem: str):
        raise ModelFormatError(f"{self.kind} file: {member}: {problem}")

    # -- arrays --------------------------------------------------------------------------------
    def array(self, name: str, *, dtype=None, shape: tuple | None = None,
              max_bytes: int | None = None) -> np.ndarray:
        """Read array ``name``, checking its header against the expectations first.

        Parameters
        ----------
        dtype : numpy dtype, optional
            Required dtype (exact, structured layouts included).
        shape : tuple, optional
            Required shape; an entry of None accepts any length on that axis.
        max_bytes : int, optional
            Largest data size accepted (for shapes the metadata only bounds).
        """
        if name not in self.arrays:
            raise ModelFormatError(f"{self.kind} file is missing array {name!r}")
        if dtype is None and shape is None and max_bytes is None:
            return self.arrays[name]
        return self._read_array(name, dtype, shape, max_bytes)

    def _read_array(self, name: str, dtype=None, shape=None, max_bytes=None) -> np.ndarray:
        member = f"{name}.npy"
        info = self._infos[member]
        try:
            with self._zf.open(info) as stream:
                dt, fortran, got_shape, header_len = self._npy_header(stream, member)
                if dtype is not None and dt != np.dtype(dtype):
                    self._fail(member, f"dtype {dt} where {np.dtype(dtype)} was expected")
                if shape is not None:
                    if len(got_shape) != len(shape) or any(
                            want is not None and want != got for want, got in zip(shape, got_shape)):
                        want = tuple("any" if w is None else w for w in shape)
                        self._fail(member, f"shape {got_shape} where {want} was expected")
                n_bytes = math.prod(got_shape) * dt.itemsize
                if max_bytes is not None and n_bytes > max_bytes:
                    self._fail(member, f"{n_bytes:,} bytes of data where at most {max_bytes:,} "
                                       "are possible for this file's metadata")
                if info.file_size != header_len + n_bytes:
                    self._fail(member, f"declared size {info.file_size:,} bytes does not match its "
                                       f"header ({header_len + n_bytes:,} bytes)")
                out = np.empty(got_shape[::-1] if fortran else got_shape, dt)
                view = memoryview(out.reshape(-1).view(np.uint8)) if n_bytes else None
                done = 0
                while done < n_bytes:
                    k = stream.readinto(view[done:])
                    if not k:
                        self._fail(member, "truncated data")
                    done += k
                if stream.read(1):
                    self._fail(member, "data past its declared size")
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as exc:
            self._fail(member, f"unreadable ({exc})")
        return out.T if fortran else out

    def _npy_header(self, stream, member: str):
        """(dtype, fortran_order, shape, header length) of a .npy stream, reading only its header."""
        lead = stream.read(10)
        if len(lead) < 10 or not lead.startswith(_NPY_MAGIC):
            self._fail(member, "not a .npy array")
        major = lead[6]
        if major == 1:
            length, start = int.from_bytes(lead[8:10], "little"), 10
        elif major in (2, 3):
            more = stream.read(2)
            if len(more) < 2:
                self._fail(member, "truncated header")
            length, start = int.from_bytes(lead[8:10] + more, "little"), 12
        else:
            self._fail(member, f"unknown .npy format version {major}")
        if length > BUNDLE_NPY_HEADER_MAX_BYTES:
            self._fail(member, f"header of {length:,} bytes")
        raw = stream.read(length)
        if len(raw) < length:
            self._fail(member, "truncated header")
        try:
            header = ast.literal_eval(raw.decode("latin1" if major < 3 else "utf8"))
            descr, fortran, shape = header["descr"], header["fortran_order"], header["shape"]
            dt = np.lib.format.descr_to_dtype(descr)
        except Exception as exc:  # literal_eval/descr parsing raise many kinds
            self._fail(member, f"malformed header ({type(exc).__name__})")
        if not isinstance(fortran, bool) or not isinstance(shape, tuple) or not all(
                isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
            self._fail(member, f"malformed header (shape {shape!r})")
        if dt.hasobject:
            self._fail(member, "object arrays are never loaded (they would need pickle)")
        return dt, fortran, shape, start + length

    # -- tables ------------------------------------------------------------------------------
    def table(self, name: str, *, max_bytes: int | None = None) -> pa.Table:
        """Read table ``name``; refuse it before reading when it declares more than ``max_bytes``."""
        if name not in self.tables:
            raise ModelFormatError(f"{self.kind} file is missing table {name!r}")
        if max_bytes is None:
            return self.tables[name]
        return self._read_table(name, max_bytes)

    def _read_table(self, name: str, max_bytes: int | None = None) -> pa.Table:
        member = f"{name}.arrow"
        info = self._infos[member]
        if max_bytes is not None and info.file_size > max_bytes:
            self._fail(member, f"declared size {info.file_size:,} bytes; at most {max_bytes:,} are "
                               "possible for this file's metadata")
        try:
            raw = self._zf.read(info)
            table = pa.ipc.open_file(pa.py_buffer(raw)).read_all()
            # IPC reading trusts the buffers' offsets; a full validation checks every offset and
            # length (and UTF-8) so that no kernel reads outside them.
            table.validate(full=True)
            table.schema.names  # field names must be UTF-8 (decoding them here, not in a caller)
            return table
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError, pa.ArrowException,
                UnicodeDecodeError) as exc:
            self._fail(member, f"unreadable ({exc})")


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
    """Open a bundle of ``kind`` written by a version up to ``max_version``.

    Only ``meta.json`` is read here (at most ``BUNDLE_META_MAX_BYTES``); arrays and tables are
    read when the loader asks for them (see :class:`Bundle`).

    Raises
    ------
    ModelFormatError
        If the file is not a fastengage bundle, is of another kind, or is of a newer version.
    """
    try:
        zf = zipfile.ZipFile(path, "r")
    # NotImplementedError: a central directory entry needing a newer zip version ("zip file
    # version 10.1"), raised while the directory is read (found by the rfm_state fuzz target)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as exc:
        raise ModelFormatError(f"not a fastengage {kind} file: {exc}") from exc
    try:
        _check_members(zf, kind)
        header = _read_header(zf, kind)
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise ModelFormatError(f"not a fastengage {kind} file (format={header.get('format')!r})"
                                   if isinstance(header, dict) else f"not a fastengage {kind} file")
        if header.get("kind") != kind:
            raise ModelFormatError(f"file holds a {header.get('kind')!r}, not a {kind!r}")
        version = header.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1 \
                or version > max_version:
            raise ModelFormatError(
                f"{kind} file has version {version!r}; this fastengage reads versions 1..{max_version}"
            )
        meta = header.get("meta", {})
        if not isinstance(meta, dict):
            raise ModelFormatError(f"{kind} file: meta.json: 'meta' is a "
                                   f"{type(meta).__name__}, not an object")
    except BaseException:
        zf.close()
        raise
    return Bundle(kind, version, meta, zf)


def _check_members(zf: zipfile.ZipFile, kind: str) -> None:
    """Every member is stored or deflated (what :func:`save_bundle` writes) and not encrypted;
    zipfile would otherwise raise NotImplementedError or RuntimeError on opening it."""
    for info in zf.infolist():
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise ModelFormatError(f"{kind} file: member {info.filename!r} uses compression "
                                   f"method {info.compress_type}; only stored or deflated "
                                   "members are read")
        if info.flag_bits & 0x1:
            raise ModelFormatError(f"{kind} file: member {info.filename!r} is encrypted")


def _read_header(zf: zipfile.ZipFile, kind: str):
    try:
        info = zf.getinfo("meta.json")
    except KeyError:
        raise ModelFormatError(f"not a fastengage {kind} file: no meta.json") from None
    if info.file_size > BUNDLE_META_MAX_BYTES:
        raise ModelFormatError(f"{kind} file: meta.json declares {info.file_size:,} bytes; at most "
                               f"{BUNDLE_META_MAX_BYTES:,} are accepted")
    try:
        with zf.open(info) as stream:
            raw = stream.read(BUNDLE_META_MAX_BYTES + 1)
        if len(raw) > BUNDLE_META_MAX_BYTES:
            raise ModelFormatError(f"{kind} file: meta.json is larger than declared")
        return json.loads(raw)
    except (ValueError, RecursionError, zipfile.BadZipFile, zlib.error, OSError, EOFError) as exc:
        raise ModelFormatError(f"not a fastengage {kind} file: no valid meta.json ({exc})") from exc
