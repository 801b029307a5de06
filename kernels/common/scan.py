"""Sortedness scans shared by the capabilities (a time-sorted log takes cheaper paths)."""
from numba import njit

from .config import NJIT


@njit(**NJIT)
def is_sorted(values):
    """True when ``values`` is non-decreasing (stops at the first descent)."""
    for i in range(1, values.shape[0]):
        if values[i] < values[i - 1]:
            return False
    return True
