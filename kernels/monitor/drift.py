"""Drift statistics of numeric columns in one merged walk over two sorted samples per column.

Each column is a sorted float64 run inside a flat array (``start``/``length``), with either unit
weights (exact samples: ``wstart[j] < 0``) or per-value weights (sketch points), given as the
run's cumulative weights (``length + 1`` values from 0, at ``wstart``). The walk over the
union of both runs yields the Kolmogorov-Smirnov statistic (largest ECDF gap), the Wasserstein-1
distance (integral of the ECDF gap) and, on the reference's quantile bins, the PSI and
Jensen-Shannon distance. Columns run in parallel (:func:`~kernels.common.launch.run_threaded`,
workers claiming whole columns from an atomic counter); each column's sums are taken in value
order, so results do not depend on the thread count. The loops are C compiled at build time
(``drift_sorted.h`` through ``drift_native.pyx``): nothing here is compiled on a first call.
"""
import numpy as np

from ..common.launch import resolve_threads, run_threaded
from .drift_native import categorical_drift, js_distance, psi, sorted_worker

__all__ = ["numeric_drift", "categorical_drift", "js_distance", "psi"]

# categorical_drift(ref_counts, cur_counts, eps) -> (chi2, psi, js): chi-square statistic of
# current counts against the reference's proportions (expected = reference count * n_current /
# n_reference; a category absent from the reference gives inf), PSI and Jensen-Shannon distance
# of the two proportion vectors, counts (float64) aligned on the union of categories.


def numeric_drift(ref_vals, ref_w, ref_start, ref_len, ref_wstart, ref_total,
                  cur_vals, cur_w, cur_start, cur_len, cur_wstart, cur_total,
                  n_bins, eps, ks_out, wass_out, psi_out, js_out, bins_out, ref_p, cur_p, *,
                  n_threads=None):
    """Fill the per-column outputs; ``ref_p``/``cur_p`` get the bin proportions (n_cols x n_bins,
    only the first ``bins_out[j]`` used) of the reference's quantile bins."""
    m = len(ref_start)
    if m == 0:
        return
    counter = np.zeros(1, dtype=np.int64)
    flat = [np.ascontiguousarray(a, dtype=np.float64) for a in (ref_vals, ref_w, cur_vals, cur_w)]
    ints = [np.ascontiguousarray(a, dtype=np.int64)
            for a in (ref_start, ref_len, ref_wstart, cur_start, cur_len, cur_wstart)]
    totals = [np.ascontiguousarray(a, dtype=np.float64) for a in (ref_total, cur_total)]

    def worker():
        sorted_worker(flat[0], flat[1], ints[0], ints[1], ints[2], totals[0],
                      flat[2], flat[3], ints[3], ints[4], ints[5], totals[1], int(n_bins),
                      float(eps), ks_out, wass_out, psi_out, js_out, bins_out, ref_p, cur_p,
                      counter)

    run_threaded(worker, n_threads=min(m, resolve_threads(n_threads)))
