"""SipHash-2-4 (64- and 128-bit output) of every value of an Arrow binary/string buffer.

SipHash (Aumasson and Bernstein, "SipHash: a fast short-input PRF", INDOCRYPT 2012) is a
pseudorandom function keyed by 128 bits and designed for short inputs: an id of up to 7 bytes
costs 2 + 4 rounds (6 + 4 more for the 128-bit tag), each round 14 additions, rotations and
xors on four 64-bit words. That is why it is the fast keyed function here: ~10x less work per
short id than a BLAKE2b compression, and no table lookups (constant time by construction).

Written here because no library this package can call from a nogil kernel exports it
(OpenSSL has it only behind ``EVP_MAC``, one heap context per id). The code follows the
reference implementation's structure line by line (message words little-endian; the last word
holds the remaining bytes and ``len mod 256`` in its top byte; ``v1 ^= 0xee`` and
``v2 ^= 0xee`` for the 128-bit tag, ``v2 ^= 0xff`` for the 64-bit one; ``v1 ^= 0xdd`` before
the second half), and it is tested against the 64 + 64 published test vectors of the reference
implementation and a plain-Python reference on every length (tests/privacy/test_siphash.py).

The ids are read straight from the Arrow buffers (offsets + bytes: no per-id objects) and
split into fixed blocks hashed in parallel; each id is independent, so the output is the same
for any thread count.
"""
import numpy as np
from numba import njit, prange

from ..common.config import NJIT, PRIVACY_HASH_CHUNKS
from ..common.launch import parallel_kernel
from .words import load_le64, load_tail
from .keyed_hash import HEX_PAIRS, _chunk_bounds

__all__ = ["siphash_buffers"]

# "somepseudorandomlygeneratedbytes" as four little-endian words (the paper's constants)
_C0 = np.uint64(0x736F6D6570736575)
_C1 = np.uint64(0x646F72616E646F6D)
_C2 = np.uint64(0x6C7967656E657261)
_C3 = np.uint64(0x7465646279746573)


@njit(**NJIT, inline="always")
def _rotl(x, b):
    return (x << np.uint64(b)) | (x >> np.uint64(64 - b))


@njit(**NJIT, inline="always")
def _sipround(v0, v1, v2, v3):
    v0 += v1
    v1 = _rotl(v1, 13)
    v1 ^= v0
    v0 = _rotl(v0, 32)
    v2 += v3
    v3 = _rotl(v3, 16)
    v3 ^= v2
    v0 += v3
    v3 = _rotl(v3, 21)
    v3 ^= v0
    v2 += v1
    v1 = _rotl(v1, 17)
    v1 ^= v2
    v2 = _rotl(v2, 32)
    return v0, v1, v2, v3


@njit(**NJIT, inline="always")
def _finalize(v0, v1, v2, v3):
    v0, v1, v2, v3 = _sipround(v0, v1, v2, v3)
    v0, v1, v2, v3 = _sipround(v0, v1, v2, v3)
    v0, v1, v2, v3 = _sipround(v0, v1, v2, v3)
    v0, v1, v2, v3 = _sipround(v0, v1, v2, v3)
    return v0, v1, v2, v3


@njit(**NJIT, inline="always")
def siphash24(data, start, size, k0, k1, wide):
    """SipHash-2-4 of ``data[start:start+size]`` under the key words ``k0``, ``k1`` (the key's
    two halves read little-endian): ``(first, second)`` output words, ``second`` = 0 unless
    ``wide`` (SipHash-2-4-128). The tag's bytes are each word little-endian, first word first."""
    v0 = k0 ^ _C0
    v1 = k1 ^ _C1
    v2 = k0 ^ _C2
    v3 = k1 ^ _C3
    if wide:
        v1 ^= np.uint64(0xEE)
    end = start + size - (size & 7)
    pos = start
    while pos < end:
        m = load_le64(data, pos)
        v3 ^= m
        v0, v1, v2, v3 = _sipround(v0, v1, v2, v3)
        v0, v1, v2, v3 = _sipround(v0, v1, v2, v3)
        v0 ^= m
        pos += 8
    b = (np.uint64(size & 0xFF) << np.uint64(56)) | load_tail(data, end, size & 7)
    v3 ^= b
    v0, v1, v2, v3 = _sipround(v0, v1, v2, v3)
    v0, v1, v2, v3 = _sipround(v0, v1, v2, v3)
    v0 ^= b
    v2 ^= np.uint64(0xEE) if wide else np.uint64(0xFF)
    v0, v1, v2, v3 = _finalize(v0, v1, v2, v3)
    first = v0 ^ v1 ^ v2 ^ v3
    second = np.uint64(0)
    if wide:
        v1 ^= np.uint64(0xDD)
        v0, v1, v2, v3 = _finalize(v0, v1, v2, v3)
        second = v0 ^ v1 ^ v2 ^ v3
    return first, second


@njit(**NJIT, inline="always")
def _write_word(word, hex_out, hex_pairs, out, out_pairs, pos):
    """The 8 bytes of ``word``, little-endian, as raw bytes at ``out[pos:]`` or as 16 lower-case
    hex digits at ``out[2*pos:]`` (``out_pairs``: ``out`` seen as uint16)."""
    for j in range(8):
        b = (word >> np.uint64(8 * j)) & np.uint64(0xFF)
        if hex_out:
            out_pairs[pos + j] = hex_pairs[b]
        else:
            out[pos + j] = b


@parallel_kernel
def siphash_buffers(offsets, data, key_words, length, hex_out, out):
    """SipHash-2-4 of ``data[offsets[i]:offsets[i+1]]`` for every i under the key words
    ``key_words`` (uint64[2]): the 8-byte tag (``length`` = 8) or the 16-byte SipHash-2-4-128
    tag (``length`` = 16), written to ``out[i*w:(i+1)*w]`` as raw bytes (w = length) or
    lower-case hex (w = 2*length)."""
    n = offsets.size - 1
    n_chunks = min(n, PRIVACY_HASH_CHUNKS)
    hex_pairs = HEX_PAIRS
    out_pairs = out[:out.size // 2 * 2].view(np.uint16)
    wide = length == 16
    k0 = key_words[0]
    k1 = key_words[1]
    for chunk in prange(n_chunks):
        lo, hi = _chunk_bounds(n, n_chunks, chunk)
        for i in range(lo, hi):
            start = offsets[i]
            first, second = siphash24(data, start, offsets[i + 1] - start, k0, k1, wide)
            pos = i * length  # in bytes of the tag: characters pairs for hex output
            _write_word(first, hex_out, hex_pairs, out, out_pairs, pos)
            if wide:
                _write_word(second, hex_out, hex_pairs, out, out_pairs, pos + 8)
