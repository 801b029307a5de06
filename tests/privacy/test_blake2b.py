"""The BLAKE2b kernel (the one primitive written here, see its module docstring) against
Python's hashlib.blake2b, exhaustively over message lengths around every block boundary."""
import hashlib

import numpy as np
import pyarrow as pa
import pytest

from fastengage.privacy.pseudonyms import _Hasher


@pytest.mark.parametrize("key_size", [16, 33, 64])
@pytest.mark.parametrize("digest_size", [8, 16, 31, 32, 64])
def test_every_length_up_to_three_blocks(key_size, digest_size):
    rng = np.random.default_rng(key_size * 100 + digest_size)
    key = rng.bytes(key_size)
    messages = [rng.bytes(n) for n in range(0, 400)]
    hasher = _Hasher(key, "blake2b", digest_size, False, None)
    try:
        got = hasher.digest(pa.array(messages, pa.binary()), "id").to_pylist()
    finally:
        hasher.close()
    assert got == [hashlib.blake2b(m, key=key, digest_size=digest_size).digest()
                   for m in messages]


def test_one_and_two_threads_identical():
    rng = np.random.default_rng(5)
    messages = pa.array([rng.bytes(int(n)) for n in rng.integers(0, 300, 5000)], pa.binary())
    outs = []
    for threads in (1, 2):
        hasher = _Hasher(b"k" * 32, "blake2b", 16, True, threads)
        outs.append(hasher.digest(messages, "id"))
        hasher.close()
    assert outs[0].equals(outs[1])
