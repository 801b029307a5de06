"""Post-transforms of raw model scores (logistic, softmax, ...), row by row, in the scores' dtype.

Arithmetic stays in the dtype of ``raw`` (float32 for ONNX float models, float64 for LightGBM),
with the same formulas as the runtimes they must agree with: ONNX Runtime's stable logistic
``v = 1/(1+exp(-|s|)); s < 0 ? 1-v : v`` and max-shifted softmax; LightGBM's
``1/(1+exp(-sigmoid*s))``. Scalars are passed in already typed (``one``, ``scale``) so that Numba
does not promote float32 arithmetic to float64.
"""
import numpy as np
from numba import njit, prange

from ..common.config import NJIT
from ..common.launch import parallel_kernel

NONE = 0
LOGISTIC = 1          # ONNX Runtime logistic, column by column
SOFTMAX = 2           # max-shifted softmax over the row
SOFTMAX_ZERO = 3      # ONNX SOFTMAX_ZERO: exact zeros stay zero
SIGMOID = 4           # LightGBM: 1 / (1 + exp(-scale * s)), column by column
EXP = 5               # LightGBM poisson/gamma/tweedie
PAIR_LOGISTIC = 10    # one score s -> [logistic(-s), logistic(s)]  (ONNX binary, mixed weights)
PAIR_NEG = 11         # s -> [-s, s]
PAIR_ONE_MINUS = 12   # s -> [1 - s, s]  (ONNX binary, all weights positive)
PAIR_SIGMOID = 13     # p = 1/(1+exp(-scale s)) -> [1 - p, p]  (LightGBM binary)


@njit(**NJIT)
def _logistic(s, one):
    v = one / (one + np.exp(-abs(s)))
    return one - v if s < 0 else v


@njit(**NJIT)
def _row(raw, out, i, mode, one, scale):
    k = raw.shape[1]
    if mode == NONE:
        for j in range(k):
            out[i, j] = raw[i, j]
    elif mode == LOGISTIC:
        for j in range(k):
            out[i, j] = _logistic(raw[i, j], one)
    elif mode == SOFTMAX or mode == SOFTMAX_ZERO:
        m = raw[i, 0]
        for j in range(1, k):
            if raw[i, j] > m:
                m = raw[i, j]
        total = one - one
        for j in range(k):
            s = raw[i, j]
            if mode == SOFTMAX_ZERO and s == 0:
                e = s * np.exp(-m)
                out[i, j] = e
            else:
                e = np.exp(s - m)
                out[i, j] = e
                total += e
        for j in range(k):
            out[i, j] = out[i, j] / total
    elif mode == SIGMOID:
        for j in range(k):
            out[i, j] = one / (one + np.exp(-scale * raw[i, j]))
    elif mode == EXP:
        for j in range(k):
            out[i, j] = np.exp(raw[i, j])
    else:
        s = raw[i, 0]
        if mode == PAIR_LOGISTIC:
            out[i, 0] = _logistic(-s, one)
            out[i, 1] = _logistic(s, one)
        elif mode == PAIR_NEG:
            out[i, 0] = -s
            out[i, 1] = s
        elif mode == PAIR_ONE_MINUS:
            out[i, 0] = one - s
            out[i, 1] = s
        else:
            p = one / (one + np.exp(-scale * s))
            out[i, 0] = one - p
            out[i, 1] = p


@parallel_kernel
def post_parallel(raw, out, mode, one, scale):
    """Apply transform ``mode`` to each row of ``raw`` (n, K) into ``out`` (n, K or 2)."""
    for i in prange(raw.shape[0]):
        _row(raw, out, i, mode, one, scale)


@njit(**NJIT)
def post_serial(raw, out, mode, one, scale):
    """Serial :func:`post_parallel`."""
    for i in range(raw.shape[0]):
        _row(raw, out, i, mode, one, scale)
