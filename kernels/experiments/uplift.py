"""Cumulative treated/control counts and outcomes down a ranking, at each distinct score
(the points of the uplift and Qini curves)."""
import numpy as np

from ..common.config import NJIT
from numba import njit


@njit(**NJIT)
def ranking_cumulants(order, score, treated, outcome):
    """Walk rows in ``order`` (descending score); at the last row of each run of equal scores
    emit (rows so far, treated so far, control so far, treated outcome sum, control outcome
    sum). Returns a (k, 5) float64 array."""
    n = order.shape[0]
    out = np.empty((n, 5))
    k = 0
    nt = 0.0
    nc = 0.0
    yt = 0.0
    yc = 0.0
    for i in range(n):
        r = order[i]
        if treated[r]:
            nt += 1.0
            yt += outcome[r]
        else:
            nc += 1.0
            yc += outcome[r]
        if i == n - 1 or score[order[i + 1]] != score[r]:
            out[k, 0] = i + 1.0
            out[k, 1] = nt
            out[k, 2] = nc
            out[k, 3] = yt
            out[k, 4] = yc
            k += 1
    return out[:k]
