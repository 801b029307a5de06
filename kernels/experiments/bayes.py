"""Beta-Binomial comparison of two conversion rates in closed form (Evan Miller's sum).

P(B > A) for A ~ Beta(a1, b1), B ~ Beta(a2, b2) with integer a2 is
sum_{i<a2} exp(lbeta(a1+i, b1+b2) - log(b2+i) - lbeta(1+i, b2) - lbeta(a1, b1)).
"""
import math

from ..common.config import NJIT
from numba import njit


@njit(**NJIT)
def _lbeta(a, b):
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


@njit(**NJIT)
def prob_b_beats_a(a1, b1, a2, b2):
    """P(B > A); a2 must be a positive integer (1 + conversions under a Beta(1, 1) prior)."""
    total = 0.0
    base = _lbeta(a1, b1)
    for i in range(int(a2)):
        total += math.exp(_lbeta(a1 + i, b1 + b2) - math.log(b2 + i) - _lbeta(1.0 + i, b2) - base)
    return min(max(total, 0.0), 1.0)


@njit(**NJIT)
def expected_loss(a1, b1, a2, b2):
    """E[max(A - B, 0)]: what choosing B costs, per user, if A is in fact better."""
    win_a_plus = 1.0 - prob_b_beats_a(a1 + 1.0, b1, a2, b2)   # P(A' > B), A' ~ Beta(a1+1, b1)
    win_a = 1.0 - prob_b_beats_a(a1, b1, a2 + 1.0, b2)        # P(A > B'), B' ~ Beta(a2+1, b2)
    return max(a1 / (a1 + b1) * win_a_plus - a2 / (a2 + b2) * win_a, 0.0)
