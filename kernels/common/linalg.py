"""Small dense linear algebra shared by the kernels (solves of f x f normal equations per row)."""
from numba import njit

from .config import NJIT


@njit(**NJIT)
def solve_factored(L, b, x):
    """Solve ``L L^T x = b`` into ``x`` from the lower-triangular Cholesky factor ``L`` (only its
    lower triangle is read): forward substitution, then back substitution. ``x`` may be ``b``."""
    f = b.size
    for i in range(f):
        s = b[i]
        for k in range(i):
            s -= L[i, k] * x[k]
        x[i] = s / L[i, i]
    for i in range(f - 1, -1, -1):
        s = x[i]
        for k in range(i + 1, f):
            s -= L[k, i] * x[k]
        x[i] = s / L[i, i]
