"""Keyed hashing of every value of an Arrow binary/string buffer (offsets + bytes): the portable
HMAC-SHA256 path, taken where the SHA-NI kernel (``hmac_native``) cannot run (no SHA extensions
in the CPU or the compiler, another architecture, or ``FASTENGAGE_NO_SHA_NI`` set).

The cryptography is OpenSSL's (libcrypto, located and checked by ``fastengage.privacy``): these
kernels only loop over the ids and call it by address (:mod:`.ccall`), so both cores hash with
the GIL released. Each id is independent, so results are identical for any thread count.

HMAC-SHA256 (RFC 2104) is computed as ``H((K ^ opad) || H((K ^ ipad) || m))``: the two SHA-256
states after absorbing the padded key blocks are prepared once per call, and for each id a copy
of each is finished. That is two compressions per id for ids up to 55 bytes instead of four for
a fresh ``HMAC()`` call.

Ids up to 55 bytes (with ``SHA256_Transform`` available) take the one-block path: the id, the
0x80 byte and the bit length (FIPS 180-4 section 5.1.1 padding) are laid into one 64-byte block
and OpenSSL's ``SHA256_Transform`` compresses it into a copy of the 32-byte chaining value;
the outer hash of the 32-byte inner digest is one such block too. Only the padding is written
here -- the compression is OpenSSL's -- and it skips ``SHA256_Update``/``SHA256_Final``'s
buffering and context wiping per id. Longer ids take ``SHA256_Update``/``SHA256_Final``. Both
paths are checked against Python's ``hmac`` for every length 0..300 and the RFC 4231 vectors.
"""
import numpy as np
from numba import prange

from ..common.config import NJIT, PRIVACY_HASH_CHUNKS
from ..common.launch import parallel_kernel
from .ccall import call1, call2, call3

__all__ = ["hmac_sha256_buffers", "sha256_state"]

_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
#: the two lower-case hex digits of every byte value as one little-endian uint16 (first digit
#: in the low byte): a byte becomes its two characters in one store
HEX_PAIRS = (_HEX[np.arange(256) >> 4].astype(np.uint16)
             | (_HEX[np.arange(256) & 15].astype(np.uint16) << 8))


def _chunk_bounds(n, n_chunks, chunk):
    size = (n + n_chunks - 1) // n_chunks
    lo = chunk * size
    hi = min(n, lo + size)
    return lo, hi


#: Longest id of the one-block path: 64 bytes less the 0x80 byte and the 8-byte bit length.
_ONE_BLOCK_MAX = 55


@parallel_kernel
def hmac_sha256_buffers(offsets, data, inner, outer, update_fn, final_fn, transform_fn, length,
                        hex_out, out):
    """HMAC-SHA256 of ``data[offsets[i]:offsets[i+1]]`` for every i, truncated to ``length``
    bytes, written to ``out[i*w:(i+1)*w]`` as raw bytes (w = length) or lower-case hex
    (w = 2*length).

    ``inner``/``outer``: OpenSSL ``SHA256_CTX`` images after absorbing ``K^ipad``/``K^opad``
    (uint8 arrays of equal size, at least ``sizeof(SHA256_CTX)``; the chaining value ``h`` is
    its first 32 bytes, native-endian words). ``transform_fn``: ``SHA256_Transform`` or 0.
    """
    n = offsets.size - 1
    n_chunks = min(n, PRIVACY_HASH_CHUNKS)
    hex_pairs = HEX_PAIRS
    out_pairs = out[:out.size // 2 * 2].view(np.uint16)
    base = np.uint64(data.ctypes.data)
    for chunk in prange(n_chunks):
        lo, hi = _chunk_bounds(n, n_chunks, chunk)
        ctx = np.empty(inner.size, np.uint8)
        md = np.empty(32, np.uint8)
        block = np.zeros(64, np.uint8)
        ctx_p = np.uint64(ctx.ctypes.data)
        md_p = np.uint64(md.ctypes.data)
        block_p = np.uint64(block.ctypes.data)
        h = ctx[:32].view(np.uint32)
        outer_block = np.zeros(64, np.uint8)  # the outer message is always 32 bytes
        _pad(outer_block, 32)
        outer_p = np.uint64(outer_block.ctypes.data)
        for i in range(lo, hi):
            start = offsets[i]
            size = offsets[i + 1] - start
            if transform_fn != 0 and size <= _ONE_BLOCK_MAX:
                ctx[:32] = inner[:32]
                for j in range(size):
                    block[j] = data[start + j]
                _pad(block, size)
                call2(transform_fn, ctx_p, block_p)
                block[:size + 1] = 0  # back to zeros for the next id
                _big_endian(h, outer_block)
                ctx[:32] = outer[:32]
                call2(transform_fn, ctx_p, outer_p)
                _big_endian(h, md)
            else:
                ctx[:] = inner
                call3(update_fn, ctx_p, base + np.uint64(start), np.uint64(size))
                call2(final_fn, md_p, ctx_p)
                ctx[:] = outer
                call3(update_fn, ctx_p, md_p, np.uint64(32))
                call2(final_fn, md_p, ctx_p)
            _write(md, length, hex_out, hex_pairs, out, out_pairs, i * length)
        ctx[:] = 0  # the copies hold key-derived state
        outer_block[:] = 0


from numba import njit  # noqa: E402  (helpers below are inlined into the kernels)


@njit(**NJIT, inline="always")
def _write(md, length, hex_out, hex_pairs, out, out_pairs, pos):
    """The first ``length`` bytes of ``md`` as raw bytes at ``out[pos:]`` or as lower-case hex
    at ``out[2*pos:]`` (``out_pairs``: ``out`` seen as uint16, see :data:`HEX_PAIRS`)."""
    if hex_out:
        for j in range(length):
            out_pairs[pos + j] = hex_pairs[md[j]]
    else:
        for j in range(length):
            out[pos + j] = md[j]


_chunk_bounds = njit(**NJIT)(_chunk_bounds)


@njit(**NJIT, inline="always")
def _pad(block, size):
    """SHA-256 padding of a ``size``-byte message that follows one 64-byte key block:
    0x80 after the message, zeros (the block holds them), the bit length big-endian."""
    block[size] = 0x80
    bits = (64 + size) * 8
    for j in range(8):
        block[63 - j] = (bits >> (8 * j)) & 0xFF


@njit(**NJIT, inline="always")
def _big_endian(h, out):
    """The 8 chaining words ``h`` as the 32-byte digest (big-endian words) into ``out[:32]``."""
    for j in range(8):
        w = h[j]
        out[4 * j] = (w >> 24) & 0xFF
        out[4 * j + 1] = (w >> 16) & 0xFF
        out[4 * j + 2] = (w >> 8) & 0xFF
        out[4 * j + 3] = w & 0xFF


@njit(**NJIT)
def sha256_state(ctx, init_fn, update_fn, block):
    """``ctx`` := SHA256_Init then SHA256_Update(block): the state after one padded key block."""
    ctx[:] = 0
    p = np.uint64(ctx.ctypes.data)
    call1(init_fn, p)
    call3(update_fn, p, np.uint64(block.ctypes.data), np.uint64(block.size))
