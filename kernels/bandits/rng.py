"""Counter-based random numbers for the bandit kernels.

Every random draw of a decision is a pure function of ``(seed, row, k)``: the ``k``-th draw of
row ``row`` is ``splitmix64(base(seed, row) + (k + 1) * GOLDEN)``. Nothing depends on which
thread handles a row or on the order rows are visited, so a batch decided on 1 or 8 threads gives
the same bits, and a test can recompute any draw in plain NumPy (tests/naive_bandits.py).
"""
import math

import numpy as np
from numba import njit

from ..common.config import NJIT

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_STREAM = np.uint64(0xD1B54A32D192ED03)  # separates the row stream from the seed bits
_TWO53_INV = 1.0 / 9007199254740992.0


@njit(**NJIT)
def mix64(z):
    """The splitmix64 finaliser: a bijection of uint64 with full avalanche."""
    z = np.uint64(z)
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


@njit(**NJIT)
def stream_base(seed, row):
    """Start of the stream of ``row`` under ``seed`` (both uint64-convertible)."""
    return mix64(np.uint64(seed) ^ mix64(np.uint64(row) * _STREAM + GOLDEN))


@njit(**NJIT)
def next_uniform(state):
    """Advance ``state`` (uint64) by one draw; return ``(state, u)`` with ``u`` in [0, 1)."""
    state = state + GOLDEN
    return state, np.float64(mix64(state) >> np.uint64(11)) * _TWO53_INV


@njit(**NJIT)
def next_normal(state):
    """One standard normal by Box-Muller (the cosine branch; the sine is not kept so that each
    normal costs exactly two draws, which keeps streams easy to reproduce)."""
    state, u1 = next_uniform(state)
    state, u2 = next_uniform(state)
    return state, math.sqrt(-2.0 * math.log(1.0 - u1)) * math.cos(2.0 * math.pi * u2)


@njit(**NJIT)
def next_gamma(state, shape):
    """Gamma(shape, 1) by Marsaglia & Tsang (2000); shapes below 1 by the ``U**(1/shape)`` boost."""
    boost = 1.0
    if shape < 1.0:
        state, u = next_uniform(state)
        boost = (1.0 - u) ** (1.0 / shape)
        shape += 1.0
    d = shape - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    while True:
        state, z = next_normal(state)
        v = 1.0 + c * z
        if v <= 0.0:
            continue
        v = v * v * v
        state, u = next_uniform(state)
        if math.log(1.0 - u) < 0.5 * z * z + d - d * v + d * math.log(v):
            return state, d * v * boost


@njit(**NJIT)
def next_beta(state, a, b):
    """Beta(a, b) as X / (X + Y) with X ~ Gamma(a), Y ~ Gamma(b)."""
    state, x = next_gamma(state, a)
    state, y = next_gamma(state, b)
    return state, x / (x + y)


@njit(**NJIT)
def next_index(state, n):
    """A uniform integer in ``0..n-1``."""
    state, u = next_uniform(state)
    k = np.int64(u * n)
    return state, (k if k < n else n - 1)
