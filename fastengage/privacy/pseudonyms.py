"""Keyed pseudonymisation of id columns: each id is replaced by a keyed token, HMAC-SHA256 by
default (RFC 2104 over SHA-256, the construction auditors recognise), keyed BLAKE2b, or
SipHash-2-4 (the fast keyed function: a PRF under a 128-bit key derived from ``key``).

What goes into the MAC (the message), per Arrow type:

* ``string``/``large_string``/``string_view``: the UTF-8 bytes as stored (no normalisation);
* ``binary``/``large_binary``/``fixed_size_binary``: the bytes;
* every integer type: the canonical decimal text of the value in ASCII (``-`` for negatives, no
  leading zeros or ``+``): ``12345`` (int8..uint64) and the string ``"12345"`` give the same token,
  so a table that stores ids as text still joins with one that stores them as integers;
* dictionary-encoded columns: the dictionary values (each hashed once), output kept dictionary-
  encoded; nulls stay null.

The token is the first ``length`` bytes of the MAC, as lower-case hex text (``output="hex"``,
2*length characters) or raw bytes (``output="binary"``, ``fixed_size_binary(length)``). For
``blake2b`` the digest size itself is ``length`` (``hashlib.blake2b(m, key=k,
digest_size=length)``, which is not a prefix of the 64-byte digest). For ``siphash-2-4`` the
length is 16 (SipHash-2-4-128, default) or 8 (SipHash-2-4-64), under the 16-byte key
``HMAC-SHA256(key, b"fastengage.privacy.siphash-key/v1")[:16]`` (:func:`siphash_key`): any key
of 16+ bytes works, and the SipHash key shares nothing usable with HMAC tokens of the same key.

HMAC-SHA256 runs on the CPU's SHA extensions where it has them (x86-64 SHA-NI, checked at run
time), else on OpenSSL's SHA-256 (the portable path), else Python's ``hmac``: the same tokens on
every path (:func:`sha_ni_enabled`; ``FASTENGAGE_NO_SHA_NI=1`` forces the portable path).

Collisions: two of n distinct ids share a token with probability about n**2 / 2**(8*length+1):
at n = 1e9 ids, length 8 -> 2.7e-2, 12 -> 6.3e-12, 16 (default) -> 1.5e-21, 32 -> 0.
"""
from __future__ import annotations

import hashlib
import hmac as _hmac
import json
import os
from functools import partial
from typing import Iterator, Sequence

import numba
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .._io.sources import open_source
from ..errors import InputError
from ..kernels.privacy.blake2b import blake2b_buffers, blake2b_key_state
from ..kernels.common.launch import resolve_threads, run_threaded
from ..kernels.privacy import hmac_native
from ..kernels.privacy.keyed_hash import hmac_sha256_buffers, sha256_state
from ..kernels.privacy.siphash import siphash_buffers
from ._libcrypto import libcrypto

__all__ = ["pseudonymize", "key_id", "siphash_key", "sha_ni_enabled", "METADATA_KEY", "METHODS",
           "MIN_KEY_BYTES"]

#: Schema metadata key under which the output describes its tokens (JSON, never the key).
METADATA_KEY = b"fastengage.privacy"
METHODS = ("hmac-sha256", "blake2b", "siphash-2-4")
MIN_KEY_BYTES = 16  # 128 bits
_KEY_ID_LABEL = b"fastengage.privacy.key-id/v1"
_SIPHASH_KEY_LABEL = b"fastengage.privacy.siphash-key/v1"
#: token lengths in bytes each method can give
_LENGTHS = {"hmac-sha256": range(8, 33), "blake2b": range(8, 65), "siphash-2-4": (8, 16)}
_MAX_TOKEN_BYTES = 2**31 - 1
_SHA256_CTX_BYTES = 256  # >= sizeof(SHA256_CTX) (112 in OpenSSL 1.1 and 3.x)


def _check_key(key, method: str) -> bytes:
    # Messages never include the key or any part of it.
    if isinstance(key, str):
        raise InputError("key= must be bytes (e.g. secrets.token_bytes(32)), not str: a "
                         "passphrase is not a key")
    if not isinstance(key, (bytes, bytearray, memoryview)):
        raise InputError(f"key= must be bytes, got {type(key).__name__}")
    key = bytes(key)
    if len(key) < MIN_KEY_BYTES:
        raise InputError(f"key= is {len(key)} bytes; at least {MIN_KEY_BYTES} bytes (128 bits) "
                         "are required")
    if method == "blake2b" and len(key) > 64:
        raise InputError(f"key= is {len(key)} bytes; blake2b takes at most 64")
    return key


def key_id(key: bytes) -> str:
    """A short public identifier of ``key``: HMAC-SHA256(key, fixed label), first 8 bytes, hex.

    Written into the output's metadata so that one can tell which key made a table (tables
    whose key ids differ do not join). It reveals nothing usable about the key.
    """
    key = _check_key(key, "hmac-sha256")
    return _hmac.new(key, _KEY_ID_LABEL, hashlib.sha256).digest()[:8].hex()


def siphash_key(key: bytes) -> bytes:
    """The 16-byte SipHash key ``method="siphash-2-4"`` uses for ``key``:
    ``HMAC-SHA256(key, b"fastengage.privacy.siphash-key/v1")[:16]`` (a PRF of the secret key
    under its own label, so keys of any length 16+ work and the SipHash key is independent of
    the key's HMAC tokens). Secret like the key itself."""
    key = _check_key(key, "siphash-2-4")
    return _hmac.new(key, _SIPHASH_KEY_LABEL, hashlib.sha256).digest()[:16]


def _id_buffers(array: pa.Array, column: str,
                wide: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(offsets, uint8 data) of the message bytes of every value of ``array``: int64 offsets,
    or with ``wide=False`` Arrow's own int32/int64 offsets without a copy."""
    typ = array.type
    if pa.types.is_integer(typ):
        array = pc.cast(array, pa.large_string())
        typ = array.type
    if pa.types.is_string_view(typ) or pa.types.is_binary_view(typ):
        array = array.cast(pa.large_binary())
        typ = array.type
    if pa.types.is_fixed_size_binary(typ):
        width = typ.byte_width
        data_buf = array.buffers()[1]
        data = np.frombuffer(data_buf, np.uint8)[array.offset * width:(array.offset + len(array))
                                                 * width] if data_buf is not None else None
        offsets = np.arange(len(array) + 1, dtype=np.int64) * width
    elif pa.types.is_string(typ) or pa.types.is_binary(typ) or pa.types.is_large_string(typ) \
            or pa.types.is_large_binary(typ):
        large = pa.types.is_large_string(typ) or pa.types.is_large_binary(typ)
        _, offsets_buf, data_buf = array.buffers()
        offsets = np.frombuffer(offsets_buf, np.int64 if large else np.int32)[
            array.offset:array.offset + len(array) + 1]
        if wide:
            offsets = offsets.astype(np.int64, copy=False)
        data = np.frombuffer(data_buf, np.uint8) if data_buf is not None else None
    else:
        raise InputError(f"column {column!r} has type {typ}; pseudonymize takes string, binary "
                         "or integer id columns")
    if data is None or data.size == 0:
        data = np.zeros(1, np.uint8)
    return np.ascontiguousarray(offsets), data


class _Hasher:
    """Key-derived state for one call; wiped by :meth:`close`. Never holds the key itself."""

    def __init__(self, key: bytes, method: str, length: int, hex_out: bool, n_threads):
        self.method, self.length, self.hex_out, self.n_threads = method, length, hex_out, n_threads
        # HMAC-SHA256: the SHA-NI kernel where the CPU has the instructions, else the portable
        # path (OpenSSL through a Numba kernel), else Python's hmac. NUMBA_DISABLE_JIT
        # (coverage runs) cannot call C by address: Python's hmac there, unless SHA-NI.
        self.sha_ni = method == "hmac-sha256" and sha_ni_enabled()
        self.lib = libcrypto() if method == "hmac-sha256" and not self.sha_ni \
            and not numba.config.DISABLE_JIT else None
        self._key = None
        if self.sha_ni:
            block = hashlib.sha256(key).digest() if len(key) > 64 else key
            block = np.frombuffer(block.ljust(64, b"\0"), np.uint8)
            self.inner = np.zeros(8, np.uint32)
            self.outer = np.zeros(8, np.uint32)
            hmac_native.key_state(block ^ np.uint8(0x36), self.inner)
            hmac_native.key_state(block ^ np.uint8(0x5C), self.outer)
        elif method == "blake2b":
            self.state = np.zeros(16, np.uint64)
            blake2b_key_state(np.frombuffer(key, np.uint8), length, self.state)
        elif method == "siphash-2-4":
            # the key's two halves as little-endian words, as the SipHash specification reads them
            self.state = np.frombuffer(siphash_key(key), "<u8").astype(np.uint64)
        elif self.lib is None:
            self._key = key  # Python fallback needs the key itself (held only for this call)
        else:
            block = hashlib.sha256(key).digest() if len(key) > 64 else key
            block = np.frombuffer(block.ljust(64, b"\0"), np.uint8)
            self.inner = np.zeros(_SHA256_CTX_BYTES, np.uint8)
            self.outer = np.zeros(_SHA256_CTX_BYTES, np.uint8)
            init, update = np.uint64(self.lib.sha256_init), np.uint64(self.lib.sha256_update)
            sha256_state(self.inner, init, update, block ^ np.uint8(0x36))
            sha256_state(self.outer, init, update, block ^ np.uint8(0x5C))

    def digest(self, array: pa.Array, column: str) -> pa.Array:
        n = len(array)
        width = self.length * (2 if self.hex_out else 1)
        if n * width > _MAX_TOKEN_BYTES:
            raise InputError(f"column {column!r}: a batch of {n} rows is too large for one "
                             "token array; pass a smaller batch_size= or a Table")
        offsets, data = _id_buffers(array, column, wide=not self.sha_ni)
        out = np.empty(max(n * width, 1), np.uint8)
        if self.sha_ni:
            work = partial(hmac_native.hmac_worker, offsets, data, self.inner, self.outer,
                           self.length, self.hex_out, out, np.zeros(1, np.int64))
            # no more threads than blocks of ids to claim (a short batch runs on the caller's)
            blocks = -(-n // hmac_native.HMAC_BLOCK)
            run_threaded(work, max(1, min(resolve_threads(self.n_threads), blocks)))
            return self._wrap(out, array)
        if self._key is not None:
            _python_digests(offsets, data, self._key, self.method, self.length, self.hex_out, out)
            return self._wrap(out, array)
        # The id blocks are handed to the threads one at a time (dynamic schedule) instead of
        # half each: on a busy machine a preempted thread no longer leaves the other idle
        # (2 threads at load ~13: 233 -> 190 ns CPU, 845 -> 682 ns wall per HMAC). Which
        # thread hashes a block never changes its tokens.
        with numba.parallel_chunksize(1):
            if self.method == "hmac-sha256":
                lib = self.lib
                hmac_sha256_buffers(offsets, data, self.inner, self.outer,
                                    np.uint64(lib.sha256_update), np.uint64(lib.sha256_final),
                                    np.uint64(lib.sha256_transform), self.length, self.hex_out,
                                    out, n_threads=self.n_threads)
            elif self.method == "siphash-2-4":
                siphash_buffers(offsets, data, self.state, self.length, self.hex_out, out,
                                n_threads=self.n_threads)
            else:
                blake2b_buffers(offsets, data, self.state, self.length, self.hex_out, out,
                                n_threads=self.n_threads)
        return self._wrap(out, array)

    def _wrap(self, out: np.ndarray, array: pa.Array) -> pa.Array:
        """The token bytes ``out`` as an Arrow array, null where ``array`` is."""
        n = len(array)
        width = self.length * (2 if self.hex_out else 1)
        buf = pa.py_buffer(out)
        if self.hex_out:
            offs = pa.py_buffer(np.arange(n + 1, dtype=np.int32) * np.int32(width))
            tokens = pa.StringArray.from_buffers(n, offs, buf)
        else:
            tokens = pa.Array.from_buffers(pa.binary(self.length), n, [None, buf])
        if array.null_count:
            tokens = pc.if_else(array.is_valid(), tokens, pa.scalar(None, tokens.type))
        return tokens

    def close(self) -> None:
        for name in ("inner", "outer", "state"):
            state = getattr(self, name, None)
            if state is not None:
                state[:] = 0
        self._key = None


def sha_ni_enabled() -> bool:
    """Whether HMAC-SHA256 runs on the SHA-NI kernel: the extension was built with it, the CPU
    has the instructions, and ``FASTENGAGE_NO_SHA_NI`` is not set (which forces the portable
    path; the tokens are the same)."""
    return not os.environ.get("FASTENGAGE_NO_SHA_NI") and hmac_native.supported()


def _python_digests(offsets, data, key, method, length, hex_out, out) -> None:
    # Fallback when libcrypto cannot be opened: Python's hmac/hashlib, same tokens, ~20x slower.
    raw = data.tobytes()
    width = length * (2 if hex_out else 1)
    for i in range(offsets.size - 1):
        message = raw[offsets[i]:offsets[i + 1]]
        if method == "hmac-sha256":
            mac = _hmac.digest(key, message, "sha256")[:length]
        else:
            mac = hashlib.blake2b(message, key=key, digest_size=length).digest()
        token = mac.hex().encode() if hex_out else mac
        out[i * width:(i + 1) * width] = np.frombuffer(token, np.uint8)


def _pseudonymize_column(hasher: _Hasher, column, name: str):
    if isinstance(column, pa.ChunkedArray):
        # Hex tokens use 32-bit offsets: chunks are cut so that no chunk's text passes 2 GiB.
        step = max(1, _MAX_TOKEN_BYTES // (hasher.length * 2))
        pieces = [c.slice(start, step) for c in column.chunks for start in range(0, len(c), step)]
        return pa.chunked_array([_pseudonymize_column(hasher, c, name) for c in pieces],
                                type=_token_type(column.type, hasher))
    if pa.types.is_dictionary(column.type):
        return pa.DictionaryArray.from_arrays(column.indices,
                                              hasher.digest(column.dictionary, name))
    return hasher.digest(column, name)


def _token_type(typ: pa.DataType, hasher: _Hasher) -> pa.DataType:
    value = pa.string() if hasher.hex_out else pa.binary(hasher.length)
    return pa.dictionary(typ.index_type, value) if pa.types.is_dictionary(typ) else value


def _output_schema(schema: pa.Schema, columns, hasher: _Hasher, kid: str) -> pa.Schema:
    fields = [schema.field(i).with_type(_token_type(schema.field(i).type, hasher))
              if schema.names[i] in columns else schema.field(i) for i in range(len(schema))]
    meta = dict(schema.metadata or {})
    previous = json.loads(meta.get(METADATA_KEY, b"{}") or b"{}")
    tokens = previous.get("pseudonymized", {})
    for name in columns:
        tokens[name] = {"method": hasher.method, "length_bytes": hasher.length,
                        "output": "hex" if hasher.hex_out else "binary", "key_id": kid,
                        "integers": "decimal-ascii", "version": 1}
    meta[METADATA_KEY] = json.dumps({**previous, "pseudonymized": tokens}).encode()
    return pa.schema(fields, metadata=meta)


def pseudonymize(data, columns: Sequence[str], *, key: bytes, method: str = "hmac-sha256",
                 length: int = 16, output: str = "hex", n_threads: int | None = None,
                 batch_size: int | None = None):
    """Replace id columns by keyed tokens; every other column passes through unchanged.

    Parameters
    ----------
    data : any input :func:`fastengage._io.sources.open_source` takes (Table, RecordBatch,
        RecordBatchReader, Dataset, Parquet path, ``__arrow_c_stream__`` object).
    columns : list of str
        Id columns to replace (string, binary or integer; see the module docstring for the bytes
        each value is hashed as).
    key : bytes
        Secret key, at least 16 bytes (``secrets.token_bytes(32)``); 64 bytes at most for
        ``blake2b``. It is never logged, stored, or kept after the call (a streamed output keeps
        key-derived state until it is consumed).
    method : ``"hmac-sha256"`` (default), ``"blake2b"`` (keyed BLAKE2b, digest size = length)
        or ``"siphash-2-4"`` (SipHash-2-4-128, or -64 at length 8, under :func:`siphash_key`;
        the fastest: a PRF for short ids, not a password hash).
    length : int
        Token length in bytes, 8..32 for HMAC-SHA256, 8..64 for BLAKE2b, 8 or 16 for SipHash.
        Default 16 (128 bits; collision probability ~1.5e-21 among 1e9 distinct ids).
    output : ``"hex"`` (string tokens, 2*length characters) or ``"binary"``.
    n_threads : int, optional
        Threads (default: all); the tokens do not depend on it.
    batch_size : int, optional
        Rows per streamed batch when reading files or datasets.

    Returns
    -------
    Same kind as given for a ``pyarrow.Table`` or ``RecordBatch``; a ``pyarrow.RecordBatchReader``
    (lazy, batch by batch) for everything else. The output schema's metadata
    ``b"fastengage.privacy"`` records, per column, the method, length, output and the key id
    (:func:`key_id`), never the key.
    """
    if method not in METHODS:
        raise InputError(f"method={method!r}; choose one of {', '.join(METHODS)}")
    key = _check_key(key, method)
    lengths = _LENGTHS[method]
    if isinstance(length, bool) or not isinstance(length, (int, np.integer)) \
            or length not in lengths:
        allowed = " or ".join(map(str, lengths)) if isinstance(lengths, tuple) \
            else f"{lengths[0]}..{lengths[-1]}"
        raise InputError(f"length={length!r}; {method} tokens are {allowed} bytes")
    if output not in ("hex", "binary"):
        raise InputError(f"output={output!r}; choose 'hex' or 'binary'")
    if isinstance(columns, str):
        columns = [columns]
    columns = list(dict.fromkeys(columns))
    if not columns:
        raise InputError("columns= names no column to pseudonymize")
    source = open_source(data)
    source.require({f"columns[{i}]": name for i, name in enumerate(columns)})
    kid = key_id(key)
    hasher = _Hasher(key, method, int(length), output == "hex", n_threads)
    del key
    schema = _output_schema(source.schema, columns, hasher, kid)

    if source.kind in ("table", "batch"):
        table = source._data
        try:
            for name in columns:
                index = table.schema.get_field_index(name)
                table = table.set_column(index, schema.field(index),
                                         _pseudonymize_column(hasher, table.column(index), name))
        finally:
            hasher.close()
        return table.replace_schema_metadata(schema.metadata)

    def stream() -> Iterator[pa.RecordBatch]:
        try:
            for batch in source.batches(source.schema.names, batch_size=batch_size):
                arrays = [_pseudonymize_column(hasher, batch.column(i), name)
                          if name in columns else batch.column(i)
                          for i, name in enumerate(batch.schema.names)]
                yield pa.RecordBatch.from_arrays(arrays, schema=schema)
        finally:
            hasher.close()

    return pa.RecordBatchReader.from_batches(schema, stream())
