"""Saving and loading recommenders (and :class:`Interactions`) through the safe bundle format,
with every member checked before any kernel sees it.

A file is a bundle (:mod:`fastengage._io.persist`: a ZIP of ``meta.json``, ``.npy`` arrays and
Arrow IPC id tables; never pickle). Loading is bounded and validating:

1. the ZIP directory: exactly the members the model needs, none twice, ``meta.json`` at most
   ``MAX_META_BYTES``;
2. ``meta.json``: format, kind, version, parameters (the model's own constructor checks their
   ranges), weighting, column names;
3. every ``.npy`` header (dtype, shape) is read and checked against the layout the parameters
   imply (factor width, neighbour count) and against the other members (one number of
   customers, items and stored pairs for the whole file), and each member's declared size must
   be exactly what that header needs — all before any array data is decompressed;
4. the id tables: declared size as recorded at save time (or a bound for older files), one
   column ``id`` of integers or strings, no nulls, unique, as many as the arrays say; full Arrow
   validation;
5. contents: index pointers start at 0, never decrease and end at the number of pairs; item
   codes in ``0..n_items-1`` and strictly increasing within a row; neighbour ids in range with
   ``-1`` only as padding; factors, values and similarities finite.

Any failure raises :class:`~fastengage.errors.ModelFormatError` naming the member and the
problem. A hostile file therefore costs at most reading what its (consistent) header declares.
"""
from __future__ import annotations

import io
import json
import math
import numbers
import zipfile
import zlib

import numpy as np
import pyarrow as pa

from .._io.ids import IdEncoder, id_kind
from .._io.persist import FORMAT, save_bundle
from ..errors import InputError, ModelFormatError

__all__ = ["save_model", "load_model", "read_checked", "check_csr", "ipc_size",
           "CSR_LAYOUT", "MAX_META_BYTES"]

MAX_META_BYTES = 64 * 1024
#: An id table of a file that does not record its size may take this much plus
#: ``_ID_BYTES_PER_ROW`` per id (older files only; newer ones record the exact size).
_ID_TABLE_BASE = 1 << 20
_ID_BYTES_PER_ROW = 512
#: What a corrupt member can raise while it is decompressed or parsed.
_READ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, RuntimeError,
                NotImplementedError, RecursionError, UnicodeDecodeError, KeyError, SyntaxError,
                TypeError, OverflowError, MemoryError, pa.ArrowException)
_INT64, _FLOAT32 = np.dtype(np.int64), np.dtype(np.float32)

#: The seen-items CSR every recommender holds: (dtype, shape in symbols). ``C`` customers,
#: ``I`` items, ``Z`` stored pairs.
CSR_LAYOUT = {"seen_indptr": (_INT64, ("C+1",)), "seen_indices": (_INT64, ("Z",)),
              "seen_data": (_FLOAT32, ("Z",))}
_TABLE_DIMS = {"customers": "C", "items": "I"}
_WEIGHTINGS = ("count", "sum", "binary", "log", "given")


def _bad(kind: str, member: str, problem: str) -> ModelFormatError:
    return ModelFormatError(f"{kind} file: {member} {problem}")


def _check_interaction_fields(kind: str, meta: dict) -> None:
    """The fields every recommender and Interactions file carries about its events."""
    for key in ("customer_column", "item_column"):
        if not isinstance(meta.get(key), str):
            raise _bad(kind, f"meta field {key!r}", "must be a string")
    if meta.get("weighting") not in _WEIGHTINGS:
        raise _bad(kind, "meta field 'weighting'", f"must be one of {_WEIGHTINGS}")
    eps = meta.get("log_epsilon")
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real) or \
            not (math.isfinite(eps) and eps > 0):
        raise _bad(kind, "meta field 'log_epsilon'", f"must be a finite number > 0, got {eps!r}")


def ipc_size(table: pa.Table) -> int:
    """Bytes of ``table`` as the Arrow IPC file :func:`save_bundle` writes."""
    sink = pa.MockOutputStream()
    with pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.size()


# -- saving ----------------------------------------------------------------------------------
def save_model(target, kind: str, version: int, meta: dict, arrays: dict, tables: dict) -> None:
    """Write a bundle whose meta records the id tables' exact sizes (for bounded loading)."""
    meta = dict(meta, member_bytes={f"{name}.arrow": ipc_size(t) for name, t in tables.items()})
    save_bundle(target, kind, version, meta, arrays=arrays, tables=tables)


# -- loading ---------------------------------------------------------------------------------
def _npy_header(zf, info, kind):
    """(dtype, shape, fortran, header bytes) of a ``.npy`` member, reading only its header."""
    try:
        with zf.open(info) as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            elif version in ((2, 0), (3, 0)):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                raise ValueError(f"unsupported .npy version {version}")
            return dtype, tuple(shape), fortran, f.tell()
    except _READ_ERRORS as exc:
        raise _bad(kind, f"member {info.filename!r}", f"has no valid .npy header: {exc}") from exc


def _bind(dims: dict, symbol: str, value: int, kind: str, member: str) -> None:
    name, plus = (symbol[:-2], 1) if symbol.endswith("+1") else (symbol, 0)
    value -= plus
    if value < 0:
        raise _bad(kind, f"member {member!r}", f"has a dimension that is too small for {symbol}")
    if name in dims and dims[name] != value:
        raise _bad(kind, f"member {member!r}",
                   f"disagrees with the rest of the file: {name} = {value}, elsewhere {dims[name]}")
    dims[name] = value


def read_checked(source, kind: str, max_version: int, layout_of) -> tuple:
    """Read a bundle of ``kind`` with the checks of steps 1-4 of the module docstring.

    ``layout_of(meta)`` returns ``(layout, dims)``: ``{array name: (dtype, shape symbols)}``
    and the dimensions the metadata already fixes (e.g. ``{"W": factors}``); it raises
    ModelFormatError for malformed metadata. Returns ``(meta, arrays, id tables, dims)``.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        source = io.BytesIO(bytes(source))
    try:
        zf = zipfile.ZipFile(source, "r")
    except _READ_ERRORS as exc:
        raise ModelFormatError(f"not a fastengage {kind} file: {exc}") from exc
    with zf:
        infos = {}
        for info in zf.infolist():
            if info.filename in infos:
                raise _bad(kind, f"member {info.filename!r}", "appears twice")
            infos[info.filename] = info
        if "meta.json" not in infos:
            raise ModelFormatError(f"not a fastengage {kind} file: no meta.json")
        meta = _read_meta(zf, infos["meta.json"], kind, max_version)
        layout, dims = layout_of(meta)
        dims = {**_sizes_meta(meta, kind), **dims}
        expected = {"meta.json"} | {f"{n}.npy" for n in layout} | {f"{n}.arrow" for n in _TABLE_DIMS}
        for name in infos:
            if name not in expected:
                raise _bad(kind, f"member {name!r}", "is not part of this model's file")
        for name in sorted(expected - set(infos)):
            raise _bad(kind, f"member {name!r}", "is missing")
        # every .npy header first: dims, then exact declared sizes, before any data is read
        headers = {}
        for name, (dtype, symbols) in layout.items():
            member = f"{name}.npy"
            got, shape, fortran, header_bytes = _npy_header(zf, infos[member], kind)
            if got != dtype or len(shape) != len(symbols):
                raise _bad(kind, f"member {member!r}",
                           f"must be {dtype} with {len(symbols)} dimension(s), got {got} {shape}")
            for symbol, value in zip(symbols, shape):
                _bind(dims, symbol, int(value), kind, member)
            size = header_bytes + math.prod(shape) * got.itemsize
            if infos[member].file_size != size:
                raise _bad(kind, f"member {member!r}", f"declares {infos[member].file_size} "
                           f"bytes; its header {shape} needs exactly {size}")
            headers[name] = shape
        tables = {name: _read_ids(zf, infos[f"{name}.arrow"], meta, dims, symbol, kind)
                  for name, symbol in _TABLE_DIMS.items()}
        arrays = {}
        for name, (dtype, _) in layout.items():
            try:
                with zf.open(infos[f"{name}.npy"]) as f:
                    arr = np.load(f, allow_pickle=False)
            except _READ_ERRORS as exc:
                raise _bad(kind, f"member '{name}.npy'", f"is unreadable: {exc}") from exc
            if arr.dtype != dtype or arr.shape != headers[name]:  # pragma: no cover - defensive
                raise _bad(kind, f"member '{name}.npy'", "changed while being read")
            arrays[name] = np.ascontiguousarray(arr)
    return meta, arrays, tables, dims


def _read_meta(zf, info, kind, max_version) -> dict:
    if info.file_size > MAX_META_BYTES:
        raise _bad(kind, "member 'meta.json'",
                   f"declares {info.file_size} bytes; at most {MAX_META_BYTES} are read")
    try:
        header = json.loads(zf.read(info))
    except _READ_ERRORS as exc:
        raise _bad(kind, "member 'meta.json'", f"is not valid JSON: {exc}") from exc
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ModelFormatError(f"not a fastengage {kind} file")
    if header.get("kind") != kind:
        raise ModelFormatError(f"file holds a {header.get('kind')!r}, not a {kind!r}")
    version = header.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= max_version:
        raise ModelFormatError(f"{kind} file has version {version!r}; this fastengage reads "
                               f"versions 1..{max_version}")
    meta = header.get("meta")
    if not isinstance(meta, dict):
        raise _bad(kind, "member 'meta.json'", "has no 'meta' object")
    return meta


def _sizes_meta(meta, kind) -> dict:
    """The numbers of customers, items and pairs the metadata records (files since the
    validating loader), so the member that disagrees with them is the one named."""
    sizes = meta.get("sizes", {})
    if not isinstance(sizes, dict):
        raise _bad(kind, "meta field 'sizes'", "must be an object")
    out = {}
    for key in ("C", "I", "Z"):
        if key in sizes:
            value = sizes[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise _bad(kind, f"meta field 'sizes'[{key!r}]",
                           f"must be an integer >= 0, got {value!r}")
            out[key] = value
    return out


def _read_ids(zf, info, meta, dims, symbol, kind) -> pa.Array:
    member = info.filename
    recorded = meta.get("member_bytes", {})
    recorded = recorded.get(member) if isinstance(recorded, dict) else None
    n = dims.get(symbol)
    if recorded is not None:
        if info.file_size != recorded:
            raise _bad(kind, f"member {member!r}",
                       f"declares {info.file_size} bytes; the metadata recorded {recorded!r}")
    else:
        limit = _ID_TABLE_BASE + _ID_BYTES_PER_ROW * (n if n is not None else 0)
        if info.file_size > limit:
            raise _bad(kind, f"member {member!r}", f"declares {info.file_size} bytes; at most "
                       f"{limit} are read for {n} ids")
    try:
        table = pa.ipc.open_file(pa.py_buffer(zf.read(info))).read_all()
        table.validate(full=True)
    except _READ_ERRORS as exc:
        raise _bad(kind, f"member {member!r}", f"is unreadable: {exc}") from exc
    if table.column_names != ["id"]:
        raise _bad(kind, f"member {member!r}", f"must hold one column 'id', got {table.column_names}")
    ids = table.column("id").combine_chunks()
    try:
        id_kind(ids.type, "id", member)
    except InputError as exc:
        raise _bad(kind, f"member {member!r}", str(exc)) from None
    if ids.null_count:
        raise _bad(kind, f"member {member!r}", f"has {ids.null_count} null id(s)")
    if n is None:
        dims[symbol] = len(ids)
    elif len(ids) != n:
        raise _bad(kind, f"member {member!r}", f"holds {len(ids)} ids; the arrays need {n}")
    return ids


def check_csr(kind, indptr, indices, data, n_cols, names=("seen_indptr", "seen_indices",
                                                           "seen_data")) -> None:
    """A CSR whose rows every kernel may walk: index pointers from 0, non-decreasing, ending at
    nnz; column codes in ``0..n_cols-1`` and strictly increasing within each row; finite data."""
    p, i, d = (f"member '{n}.npy'" for n in names)
    nnz = indices.size
    if indptr[0] != 0 or indptr[-1] != nnz:
        raise _bad(kind, p, f"must start at 0 and end at {nnz}, got {indptr[0]} .. {indptr[-1]}")
    # compared, not differenced: np.diff of hostile int64 pointers wraps around (a file with
    # pointers near 2**63 once passed as non-decreasing and then indexed out of bounds)
    down = indptr[1:] < indptr[:-1]
    if down.any():
        raise _bad(kind, p, f"decreases at row {int(np.argmax(down))}")
    steps = indptr[1:] - indptr[:-1]  # now in 0..nnz: cannot overflow
    if nnz:
        lo, hi = int(indices.min()), int(indices.max())
        if lo < 0 or hi >= n_cols:
            raise _bad(kind, i, f"has codes outside 0..{n_cols - 1} (range {lo}..{hi})")
        row_start = np.zeros(nnz, bool)
        row_start[indptr[:-1][steps > 0]] = True
        bad = (np.diff(indices) <= 0) & ~row_start[1:]
        if bad.any():
            raise _bad(kind, i, f"is not strictly increasing within a row (position "
                       f"{int(np.argmax(bad)) + 1})")
    if not np.isfinite(data).all():
        raise _bad(kind, d, "has values that are not finite")


def _encoder(kind, ids, column, role) -> IdEncoder:
    try:
        return IdEncoder.from_arrow(ids, column, role)
    except InputError as exc:
        raise _bad(kind, f"member '{role}s.arrow'", str(exc)) from None


# -- recommenders ----------------------------------------------------------------------------
def _scalar_params(kind, meta) -> dict:
    params = meta.get("params")
    if not isinstance(params, dict):
        raise _bad(kind, "meta field 'params'", "must be an object")
    for key, value in params.items():
        if value is not None and not isinstance(value, (bool, numbers.Real, str)):
            raise _bad(kind, f"parameter {key!r}", f"must be a number, string or null, got "
                       f"{type(value).__name__}")
        if isinstance(value, float) and not math.isfinite(value):
            raise _bad(kind, f"parameter {key!r}", f"must be finite, got {value}")
    return dict(params)


def load_model(cls, source):
    """A fitted ``cls`` from a file written by :meth:`Recommender.save` (any path, file object
    or bytes); raises ModelFormatError for any malformed member."""
    kind = cls.kind
    holder = {}

    def layout_of(meta):
        params = _scalar_params(kind, meta)
        if "num_threads" in params:  # files written before the n_threads spelling
            params.setdefault("n_threads", params.pop("num_threads"))
        try:
            model = cls(**params)
        except (InputError, TypeError, ValueError, OverflowError) as exc:
            raise _bad(kind, "meta field 'params'", f"is not valid for {cls.__name__}: {exc}") \
                from None
        n_threads = getattr(model, "n_threads", None)
        if n_threads is not None and (isinstance(n_threads, bool) or
                                      not isinstance(n_threads, int) or n_threads < 1):
            raise _bad(kind, "parameter 'n_threads'", f"must be null or >= 1, got {n_threads!r}")
        _check_interaction_fields(kind, meta)
        holder["model"] = model
        layout, dims = model._file_layout()
        return {**CSR_LAYOUT, **layout}, dims

    meta, arrays, tables, dims = read_checked(source, kind, cls.version, layout_of)
    model = holder["model"]
    check_csr(kind, arrays["seen_indptr"], arrays["seen_indices"], arrays["seen_data"], dims["I"])
    model._check_file_arrays(arrays, dims)
    model.customers_ = _encoder(kind, tables["customers"], meta["customer_column"], "customer")
    model.items_ = _encoder(kind, tables["items"], meta["item_column"], "item")
    model.weighting_ = meta["weighting"]
    model.log_epsilon_ = float(meta["log_epsilon"])
    model.seen_indptr_ = arrays["seen_indptr"]
    model.seen_indices_ = arrays["seen_indices"]
    model.seen_data_ = arrays["seen_data"]
    model._cache_ids()
    model._restore_arrays(arrays)
    return model


def model_file_parts(model) -> tuple[dict, dict, dict]:
    """(meta, arrays, tables) that :func:`load_model` reads back."""
    params = {k: getattr(model, k) for k in model._params}
    if "dtype" in params:
        params["dtype"] = np.dtype(params["dtype"]).name
    # numpy scalars (e.g. a seed drawn with numpy) are stored as plain JSON numbers
    params = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in params.items()}
    meta = {
        "params": params,
        "weighting": model.weighting_,
        "log_epsilon": model.log_epsilon_,
        "customer_column": model.customers_.column,
        "item_column": model.items_.column,
        "sizes": {"C": int(model.n_customers), "I": int(model.n_items),
                  "Z": int(model.seen_indices_.size)},
    }
    arrays = {"seen_indptr": model.seen_indptr_, "seen_indices": model.seen_indices_,
              "seen_data": model.seen_data_, **model._arrays()}
    tables = {"customers": pa.table({"id": model._customer_ids}),
              "items": pa.table({"id": model._item_ids})}
    return meta, arrays, tables


# -- pickling in process (joblib, multiprocessing, Spark broadcast) ---------------------------
def to_bytes(save) -> bytes:
    buf = io.BytesIO()
    save(buf)
    return buf.getvalue()


def recommender_from_bytes(cls, data: bytes):
    """Unpickle a fitted recommender: the bytes are a model file, read by the validating
    loader (see ``Recommender.__reduce__``)."""
    from ._base import Recommender

    if not (isinstance(cls, type) and issubclass(cls, Recommender)):
        raise ModelFormatError(f"{cls!r} is not a recommender class")
    return load_model(cls, data)


INTERACTIONS_KIND = "recommend.interactions"
_INTERACTIONS_LAYOUT = {"indptr": (_INT64, ("C+1",)), "indices": (_INT64, ("Z",)),
                        "data": (_FLOAT32, ("Z",))}


def save_interactions(inter, target) -> None:
    indptr, indices, data = inter.csr_arrays()
    meta = {"weighting": inter.weighting, "log_epsilon": float(inter.log_epsilon),
            "customer_column": inter.customers.column, "item_column": inter.items.column,
            "sizes": {"C": int(inter.n_customers), "I": int(inter.n_items), "Z": int(inter.nnz)}}
    tables = {"customers": pa.table({"id": _ids(inter.customers)}),
              "items": pa.table({"id": _ids(inter.items)})}
    save_model(target, INTERACTIONS_KIND, 1, meta,
               {"indptr": indptr, "indices": indices, "data": data}, tables)


def _ids(encoder) -> pa.Array:
    ids = encoder.ids()
    return ids.cast(pa.large_string()) if pa.types.is_string_view(ids.type) else ids


def interactions_from_bytes(data: bytes):
    """Unpickle an :class:`Interactions` (validated like a model file)."""
    import scipy.sparse as sp

    from .interactions import Interactions

    kind = INTERACTIONS_KIND

    def layout_of(meta):
        _check_interaction_fields(kind, meta)
        return _INTERACTIONS_LAYOUT, {}

    meta, arrays, tables, dims = read_checked(data, kind, 1, layout_of)
    check_csr(kind, arrays["indptr"], arrays["indices"], arrays["data"], dims["I"],
              names=("indptr", "indices", "data"))
    matrix = sp.csr_matrix((arrays["data"], arrays["indices"], arrays["indptr"]),
                           shape=(dims["C"], dims["I"]))
    matrix.has_sorted_indices = True
    return Interactions(matrix, _encoder(kind, tables["customers"], meta["customer_column"],
                                         "customer"),
                        _encoder(kind, tables["items"], meta["item_column"], "item"),
                        meta["weighting"], float(meta["log_epsilon"]))
