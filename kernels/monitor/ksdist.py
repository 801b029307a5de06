"""The Smirnov tail probability, for the Kolmogorov-Smirnov p-value of large samples.

scipy computes the two-sided KS survival function at ``n * d**2 >= 2.2`` (the region where
drift shows) as ``2 * scipy.special.smirnov(n, d)``, a sum over ``j = 0..floor(n (1 - d))`` of
``C(n, j) d (d + j/n)**(j-1) (1 - d - j/n)**(n-j)``, which it evaluates term by term: about 1.3 s
for n = 500,000.
Written as ``d / p_j * binom_pmf(j; n, p_j)`` with ``p_j = d + j/n``, each term is a binomial
probability, evaluated to full precision with Loader's saddle-point form (as in R's ``dbinom``).
In that region the terms are not a narrow peak: every term sits ``n d`` below its binomial's
mean, so they change only through ``p_j (1 - p_j)`` and the sum spans most of ``0..n``. As a
function of real j they are smooth on a scale of thousands, so the sum over integers equals
their integral (Poisson summation) and a coarse trapezoid rule gets it in a few hundred
evaluations: about 0.04 ms per p-value at any n, equal to scipy's to about 1e-12 relative. Small
or irregular cases (a range under 2,048 terms, terms not negligible at an end) sum the terms
from the largest outwards, as before.

The code is C compiled at build time (``drift_ksdist.h`` through ``drift_native.pyx``): a cold
``drift()`` compiles nothing; p-values are spread over threads by
:func:`~kernels.common.launch.run_threaded` (each p-value computed by one thread).
"""
import numpy as np

from ..common.launch import resolve_threads, run_threaded
from .drift_native import smirnov, smirnov_worker

__all__ = ["smirnov", "smirnov_many"]


def smirnov_many(n, d, out, *, n_threads=None):
    """``out[i] = smirnov(n[i], d[i])`` for every i (float64 arrays), in parallel."""
    n = np.ascontiguousarray(n, dtype=np.float64)
    d = np.ascontiguousarray(d, dtype=np.float64)
    if n.shape[0] == 0:
        return
    counter = np.zeros(1, dtype=np.int64)
    run_threaded(lambda: smirnov_worker(n, d, out, counter),
                 n_threads=min(n.shape[0], resolve_threads(n_threads)))
