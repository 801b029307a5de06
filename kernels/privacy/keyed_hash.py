"""Keyed hashing of every value of an Arrow binary/string buffer (offsets + bytes).

The cryptography is OpenSSL's (libcrypto, located and checked by ``fastengage.privacy``): these
kernels only loop over the ids and call it by address (:mod:`.ccall`), so both cores hash with
the GIL released. Each id is independent, so results are identical for any thread count.

HMAC-SHA256 (RFC 2104) is computed as ``H((K ^ opad) || H((K ^ ipad) || m))``: the two SHA-256
states after absorbing the padded key blocks are prepared once per call, and for each id a copy
of each is finished with OpenSSL's ``SHA256_Update``/``SHA256_Final``. That is two compressions
per id for ids up to 55 bytes instead of four for a fresh ``HMAC()`` call.
"""
import numpy as np
from numba import prange

from ..common.config import NJIT, PRIVACY_HASH_CHUNKS
from ..common.launch import parallel_kernel
from .ccall import call1, call2, call3

__all__ = ["hmac_sha256_buffers", "sha256_state"]

_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def _chunk_bounds(n, n_chunks, chunk):
    size = (n + n_chunks - 1) // n_chunks
    lo = chunk * size
    hi = min(n, lo + size)
    return lo, hi


@parallel_kernel
def hmac_sha256_buffers(offsets, data, inner, outer, update_fn, final_fn, length, hex_out, out):
    """HMAC-SHA256 of ``data[offsets[i]:offsets[i+1]]`` for every i, truncated to ``length``
    bytes, written to ``out[i*w:(i+1)*w]`` as raw bytes (w = length) or lower-case hex
    (w = 2*length).

    ``inner``/``outer``: OpenSSL ``SHA256_CTX`` images after absorbing ``K^ipad``/``K^opad``
    (uint8 arrays of equal size, at least ``sizeof(SHA256_CTX)``).
    """
    n = offsets.size - 1
    n_chunks = min(n, PRIVACY_HASH_CHUNKS)
    hexdigits = _HEX
    width = 2 * length if hex_out else length
    base = np.uint64(data.ctypes.data)
    for chunk in prange(n_chunks):
        lo, hi = _chunk_bounds(n, n_chunks, chunk)
        ctx = np.empty(inner.size, np.uint8)
        md = np.empty(32, np.uint8)
        ctx_p = np.uint64(ctx.ctypes.data)
        md_p = np.uint64(md.ctypes.data)
        for i in range(lo, hi):
            start = offsets[i]
            ctx[:] = inner
            call3(update_fn, ctx_p, base + np.uint64(start), np.uint64(offsets[i + 1] - start))
            call2(final_fn, md_p, ctx_p)
            ctx[:] = outer
            call3(update_fn, ctx_p, md_p, np.uint64(32))
            call2(final_fn, md_p, ctx_p)
            _write(md, length, hex_out, hexdigits, out, i * width)
        ctx[:] = 0  # the copies hold key-derived state


from numba import njit  # noqa: E402  (helpers below are inlined into the kernels)


@njit(**NJIT, inline="always")
def _write(md, length, hex_out, hexdigits, out, pos):
    if hex_out:
        for j in range(length):
            b = md[j]
            out[pos + 2 * j] = hexdigits[b >> 4]
            out[pos + 2 * j + 1] = hexdigits[b & 15]
    else:
        for j in range(length):
            out[pos + j] = md[j]


_chunk_bounds = njit(**NJIT)(_chunk_bounds)


@njit(**NJIT)
def sha256_state(ctx, init_fn, update_fn, block):
    """``ctx`` := SHA256_Init then SHA256_Update(block): the state after one padded key block."""
    ctx[:] = 0
    p = np.uint64(ctx.ctypes.data)
    call1(init_fn, p)
    call3(update_fn, p, np.uint64(block.ctypes.data), np.uint64(block.size))
