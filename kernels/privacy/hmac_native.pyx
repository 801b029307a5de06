# cython: language_level=3
"""HMAC-SHA256 of every value of an Arrow binary/string buffer with the CPU's SHA extensions,
compiled at build time (the C in ``sha256_ni.h`` says why it is written here and how it is
checked).

``hmac_worker`` releases the GIL and claims blocks of ids through the shared counter
``next_block[0]``; the launch rule (:func:`kernels.common.launch.run_threaded`) runs it on
``n_threads`` threads. Each id is hashed on its own (a pair of short ids shares one interleaved
pass, which computes each exactly as alone), so the tokens are identical for any thread count
and equal to the portable path's.

``supported()`` is false where the module was built without the SHA-NI code (not x86-64, or a
compiler without the ``sha`` target) or the CPU lacks the instructions; the caller then takes
the portable path (OpenSSL's libcrypto through ``keyed_hash.hmac_sha256_buffers``).
"""
from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t

import numpy as np

cdef extern from "sha256_ni.h":
    int FE_HAVE_SHA_NI
    int fe_sha_ni_supported() nogil
    void fe_hmac_range32(const int32_t *offsets, const uint8_t *data, int64_t first,
                         int64_t last, const uint32_t *inner, const uint32_t *outer, int length,
                         int hex_out, uint8_t *out) nogil
    void fe_hmac_range64(const int64_t *offsets, const uint8_t *data, int64_t first,
                         int64_t last, const uint32_t *inner, const uint32_t *outer, int length,
                         int hex_out, uint8_t *out) nogil
    void fe_sha256_key_state(const uint8_t *block, uint32_t *out) nogil

cdef extern from "../common/atomic.h" nogil:
    long long fe_fetch_add(long long* p, long long v)

ctypedef fused offset_t:
    int32_t
    int64_t

cdef enum:
    # Ids per claimed block: large enough that claiming costs nothing (~0.1 ms of hashing),
    # small enough that a descheduled thread's last block leaves the other core idle briefly.
    _HMAC_BLOCK = 1024

#: Ids per block claimed by a worker.
HMAC_BLOCK = _HMAC_BLOCK


def supported():
    """True when the SHA-NI code was compiled in and this CPU has the instructions."""
    return FE_HAVE_SHA_NI != 0 and fe_sha_ni_supported() != 0


def key_state(const uint8_t[::1] block, uint32_t[::1] out):
    """``out[:8]`` := the SHA-256 chaining value (words a..h) after the one 64-byte ``block``
    (``K ^ ipad`` or ``K ^ opad``). Only when :func:`supported`."""
    fe_sha256_key_state(&block[0], &out[0])


def hmac_worker(const offset_t[::1] offsets, const uint8_t[::1] data,
                const uint32_t[::1] inner, const uint32_t[::1] outer, int length, bint hex_out,
                uint8_t[::1] out, long long[::1] next_block):
    """HMAC-SHA256 of ``data[offsets[i]:offsets[i+1]]`` (offsets relative to ``data``) for
    every i, the first ``length`` bytes written to ``out[i*w:(i+1)*w]`` raw (w = length) or as
    lower-case hex (w = 2*length). ``inner``/``outer``: the key states of :func:`key_state`.
    Claims blocks of :data:`HMAC_BLOCK` ids from ``next_block[0]`` (start it at 0) until none
    is left. Only when :func:`supported`."""
    cdef int64_t n = offsets.shape[0] - 1
    cdef int64_t n_blocks = (n + _HMAC_BLOCK - 1) // _HMAC_BLOCK
    cdef int64_t block, first, last
    cdef long long *counter = &next_block[0]
    with nogil:
        while True:
            block = fe_fetch_add(counter, 1)
            if block >= n_blocks:
                break
            first = block * _HMAC_BLOCK
            last = min(n, first + _HMAC_BLOCK)
            if offset_t is int32_t:
                fe_hmac_range32(&offsets[0], &data[0], first, last, &inner[0], &outer[0],
                                length, hex_out, &out[0])
            else:
                fe_hmac_range64(&offsets[0], &data[0], first, last, &inner[0], &outer[0],
                                length, hex_out, &out[0])
