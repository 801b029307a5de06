"""Drift statistics of two raw (unsorted) numeric columns without sorting them.

Every statistic of a numeric column is a function of the gap between the two ECDFs,
``G(x) = Wa(x) tb - Wb(x) ta`` (Wa, Wb: counts of values <= x; ta, tb: totals; integers, exact):
KS = max |G| / (ta tb) over the points after the last of equal values, Wasserstein-1 = integral
of |G| dx / (ta tb), and the PSI bins need a few reference order statistics. Sorting both sides
gets all of that, but the two sorts and the merged walk were most of the time.

Here each value goes instead into one of ``B`` buckets of a monotone map (``_plan``): equal
steps over [min, max], each owning buckets in proportion to its share of a sample's CDF, equal
widths inside a step: a value's bucket is one lookup and one multiply. Per bucket only the count
and the sum of the values' offsets from their step's left edge are kept. G at every bucket
boundary is then exact (prefix counts), and inside a bucket holding ``ca`` reference and ``cb``
current values G stays within ``[G0 - cb ta, G0 + ca tb]``. Where that range does not contain
0, |G| has one sign ``s`` throughout and its integral over the bucket ``[lo, hi)`` needs no
order: ``s (G0 (hi - lo) + tb sum_a (hi - a) - ta sum_b (hi - b))``, the sums from the offset
sums. The KS maximum is at least the largest |G| at a boundary, and only a bucket holding both
sides whose range reaches beyond it can exceed it. The buckets that may change sign or exceed
it (and those holding a PSI quantile of the reference) are the only ones whose values are
gathered and sorted: a few percent of the values. Results equal the sorted walk's up to
floating-point rounding (KS exactly; Wasserstein to ~1e-13 relative).

A column whose gathered share would pass ``gather_limit`` (ties: few distinct values) is not
computed here (``STATUS`` 1): the caller sorts it instead.

The loops are C compiled at build time (``drift_native.pyx`` and its ``drift_*.h``; a cold
``drift()`` compiles no Numba kernel, issue #11). Columns run in parallel through
:func:`~kernels.common.launch.run_threaded`: each worker claims whole columns from an atomic
counter and reuses its scratch (bucket ids, the map) for every column it takes; a column's
result depends on its own values only, never on the thread count. They arrive as the
addresses of their buffers: the columns of an Arrow table are separate buffers, and gathering
them into one matrix cost a copy of every value (and its page faults) before any work.
"""
import numpy as np

from ..common.config import MONITOR_BUCKET_CELLS as CELLS
from ..common.config import MONITOR_GATHER_BLOCK as GATHER_BLOCK
from ..common.config import MONITOR_GRID_CELL_FILL as GRID_CELL_FILL
from ..common.config import MONITOR_GRID_CELLS_PER_BUCKET as GRID_CELLS_PER_BUCKET
from ..common.config import MONITOR_TALLY_BLOCK as TALLY_BLOCK
from ..common.launch import resolve_threads, run_threaded
from .drift_native import (BINS, JS, KS, M2_REF, MEAN_REF, N_CUR, N_REF, N_STATS, PSI,
                           STATUS, WASS, bucket_worker)

__all__ = ["drift_columns", "KS", "WASS", "PSI", "JS", "N_REF", "N_CUR", "MEAN_REF", "M2_REF",
           "STATUS", "BINS", "N_STATS"]


def drift_columns(ref_at, cur_at, rows_a, rows_b, n_bins, eps, bucket_rows, max_buckets,
                  sample, n_entries, gather_limit, stats, ref_p, cur_p, slots=None, *,
                  n_threads=None):
    """Every drift statistic of each reference column vs the current one (float64, NaN
    missing) into ``stats[j]`` (slots KS, WASS, PSI, JS, N_REF, N_CUR, MEAN_REF, M2_REF,
    STATUS, BINS) and the PSI bin proportions into ``ref_p[j]`` / ``cur_p[j]``. Column j's
    values are the ``rows_a`` float64 at address ``ref_at[j]`` and the ``rows_b`` at
    ``cur_at[j]`` (C-contiguous buffers the caller keeps alive; only read).
    ``STATUS`` 1: not computed (too many values would have to be sorted, or an infinite value;
    the caller sorts the column instead). ``n_threads`` workers (at most one per column) claim
    columns from a shared counter; ``slots`` is accepted for the former signature and unused.
    ``max_buckets`` is at most 32768 (ids are uint16, one more id marks NaN)."""
    del slots
    ref_at = np.ascontiguousarray(ref_at, dtype=np.int64)
    cur_at = np.ascontiguousarray(cur_at, dtype=np.int64)
    m = ref_at.shape[0]
    if m == 0:
        return
    if not 2 <= n_bins or max_buckets > 32768 or stats.shape[0] < m:
        raise ValueError("drift_columns: n_bins >= 2, max_buckets <= 32768, a stats row a column")
    counter = np.zeros(1, dtype=np.int64)

    def worker():
        bucket_worker(ref_at, cur_at, int(rows_a), int(rows_b), int(n_bins), float(eps),
                      int(bucket_rows), int(max_buckets), int(sample), int(n_entries),
                      float(gather_limit), CELLS, GRID_CELLS_PER_BUCKET, float(GRID_CELL_FILL),
                      GATHER_BLOCK, TALLY_BLOCK, stats, ref_p, cur_p, counter)

    run_threaded(worker, n_threads=min(m, resolve_threads(n_threads)))
