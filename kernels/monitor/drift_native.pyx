# cython: language_level=3
"""The drift path compiled at build time: the bucket kernel of raw columns, the sorted walk of
profiles, the Smirnov tail probability and the categorical statistics.

Why compiled ahead of time (issue #11): the Numba kernels these replace cost ~24 s of CPU of
JIT compilation on a cold ``drift()`` (114 specialisations) for code that then ran in
milliseconds on small data. The loops are C (``drift_buckets.h``, ``drift_column.h``,
``drift_sorted.h``, ``drift_ksdist.h``, ``drift_sort.h``); this module only hands them buffers.
Every worker releases the GIL and claims columns (or p-values) from a shared atomic counter
(:func:`kernels.common.launch.run_threaded`); each column is computed by one thread from its
own values only, so results do not depend on the thread count.
"""
from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t

import numpy as np

cdef extern from "../common/atomic.h" nogil:
    long long fe_fetch_add(long long* p, long long v)


cdef extern from "drift_buckets.h" nogil:
    enum:
        FE_KS, FE_WASS, FE_PSI, FE_JS, FE_N_REF, FE_N_CUR, FE_MEAN_REF, FE_M2_REF, FE_STATUS,
        FE_BINS, FE_N_STATS
    ctypedef struct fe_drift_params:
        int64_t n_bins, bucket_rows, max_buckets, sample, n_entries, cells, cells_per_bucket
        int64_t gather_block, tally_block
        double eps, gather_limit, cell_fill
    ctypedef struct fe_drift_work:
        pass
    int fe_drift_work_alloc(fe_drift_work *w, const fe_drift_params *p, int64_t rows_a,
                            int64_t rows_b)
    void fe_drift_work_free(fe_drift_work *w)
    int fe_column_drift(const double *a, int64_t na_rows, const double *b, int64_t nb_rows,
                        const fe_drift_params *p, fe_drift_work *w, double *stats,
                        double *ref_p, double *cur_p)
    int fe_drift_plain_only
    double fe_psi(const double *p, const double *q, int64_t n, double eps)
    double fe_js_distance(const double *p, const double *q, int64_t n)


cdef extern from "drift_sorted.h" nogil:
    void fe_sorted_column(const double *ref_vals, const double *ref_w, int64_t sa, int64_t na,
                          int64_t wsa, double ta, const double *cur_vals, const double *cur_w,
                          int64_t sb, int64_t nb, int64_t wsb, double tb, int64_t n_bins,
                          double eps, double *out, int64_t *bins, double *ref_p, double *cur_p,
                          double *edges)
    void fe_categorical_drift(const double *ref_counts, const double *cur_counts, int64_t n,
                              double eps, double *p, double *q, double *out)


cdef extern from "drift_ksdist.h" nogil:
    double fe_smirnov(double n, double d)


#: ``stats`` slots of :func:`bucket_worker` (kernels/monitor/buckets.py re-exports them)
KS, WASS, PSI, JS, N_REF, N_CUR, MEAN_REF, M2_REF, STATUS, BINS = range(10)
N_STATS = FE_N_STATS
assert (KS, WASS, PSI, JS, N_REF, N_CUR, MEAN_REF, M2_REF, STATUS, BINS) == (
    FE_KS, FE_WASS, FE_PSI, FE_JS, FE_N_REF, FE_N_CUR, FE_MEAN_REF, FE_M2_REF, FE_STATUS,
    FE_BINS)


def bucket_worker(const int64_t[::1] ref_at, const int64_t[::1] cur_at, int64_t rows_a,
                  int64_t rows_b, int64_t n_bins, double eps, int64_t bucket_rows,
                  int64_t max_buckets, int64_t sample, int64_t n_entries, double gather_limit,
                  int64_t cells, int64_t cells_per_bucket, double cell_fill,
                  int64_t gather_block, int64_t tally_block, double[:, ::1] stats,
                  double[:, ::1] ref_p, double[:, ::1] cur_p, int64_t[::1] next_column):
    """One worker of :func:`kernels.monitor.buckets.drift_columns`: claims columns through the
    shared counter ``next_column[0]`` until none are left; column j's values are the
    ``rows_a`` float64 at address ``ref_at[j]`` and the ``rows_b`` at ``cur_at[j]`` (buffers
    the caller keeps alive; only read). Its scratch (bucket ids of ``rows_a + rows_b`` values,
    the map) is allocated once and reused by every column it takes."""
    cdef fe_drift_params p
    p.n_bins = n_bins
    p.bucket_rows = bucket_rows
    p.max_buckets = max_buckets
    p.sample = sample
    p.n_entries = n_entries
    p.cells = cells
    p.cells_per_bucket = cells_per_bucket
    p.gather_block = gather_block
    # a multiple of 4: the squared deviations' four lanes then take the same values whatever it is
    p.tally_block = max(4, (tally_block + 3) // 4 * 4)
    p.eps = eps
    p.gather_limit = gather_limit
    p.cell_fill = cell_fill
    cdef Py_ssize_t m = ref_at.shape[0]
    if m == 0:
        return
    cdef fe_drift_work w
    cdef long long* counter = <long long*> &next_column[0]
    cdef long long j
    cdef int failed = 0
    with nogil:
        if fe_drift_work_alloc(&w, &p, rows_a, rows_b) != 0:
            failed = 1
        else:
            j = fe_fetch_add(counter, 1)
            while j < m and not failed:
                failed = fe_column_drift(<const double*> ref_at[j], rows_a,
                                         <const double*> cur_at[j], rows_b, &p, &w,
                                         &stats[j, 0], &ref_p[j, 0], &cur_p[j, 0]) != 0
                if not failed:
                    j = fe_fetch_add(counter, 1)
            fe_drift_work_free(&w)
    if failed:
        raise MemoryError("drift: out of memory for the bucket kernel's scratch")


def _plain_loops_only(bint plain):
    """Tests only (not thread-safe): ``True`` makes the bucket kernel skip its AVX2 twins and
    run the plain C loops, which must give the same bits."""
    global fe_drift_plain_only
    fe_drift_plain_only = plain


def sorted_worker(const double[::1] ref_vals, const double[::1] ref_w,
                  const int64_t[::1] ref_start, const int64_t[::1] ref_len,
                  const int64_t[::1] ref_wstart, const double[::1] ref_total,
                  const double[::1] cur_vals, const double[::1] cur_w,
                  const int64_t[::1] cur_start, const int64_t[::1] cur_len,
                  const int64_t[::1] cur_wstart, const double[::1] cur_total, int64_t n_bins,
                  double eps, double[::1] ks_out, double[::1] wass_out, double[::1] psi_out,
                  double[::1] js_out, int64_t[::1] bins_out, double[:, ::1] ref_p,
                  double[:, ::1] cur_p, int64_t[::1] next_column):
    """One worker of :func:`kernels.monitor.drift.numeric_drift` (same arguments), claiming
    columns through ``next_column[0]``."""
    cdef Py_ssize_t m = ref_start.shape[0]
    if m == 0:
        return
    edges_arr = np.empty(max(n_bins, 1))
    cdef double[::1] edges = edges_arr
    cdef double out[4]
    cdef long long* counter = <long long*> &next_column[0]
    cdef long long j
    # an empty flat array has no first element to point at; no column reads it then
    cdef const double* rv = &ref_vals[0] if ref_vals.shape[0] else NULL
    cdef const double* cv = &cur_vals[0] if cur_vals.shape[0] else NULL
    cdef const double* rw = &ref_w[0] if ref_w.shape[0] else NULL
    cdef const double* cw = &cur_w[0] if cur_w.shape[0] else NULL
    with nogil:
        j = fe_fetch_add(counter, 1)
        while j < m:
            fe_sorted_column(rv, rw, ref_start[j], ref_len[j], ref_wstart[j], ref_total[j],
                             cv, cw, cur_start[j], cur_len[j], cur_wstart[j], cur_total[j],
                             n_bins, eps, out, &bins_out[j], &ref_p[j, 0], &cur_p[j, 0],
                             &edges[0])
            ks_out[j] = out[0]
            wass_out[j] = out[1]
            psi_out[j] = out[2]
            js_out[j] = out[3]
            j = fe_fetch_add(counter, 1)


def smirnov_worker(const double[::1] n, const double[::1] d, double[::1] out,
                   int64_t[::1] next_item):
    """``out[i] = smirnov(n[i], d[i])`` for the items claimed through ``next_item[0]``."""
    cdef Py_ssize_t m = n.shape[0]
    cdef long long* counter = <long long*> &next_item[0]
    cdef long long i
    if m == 0:
        return
    with nogil:
        i = fe_fetch_add(counter, 1)
        while i < m:
            out[i] = fe_smirnov(n[i], d[i])
            i = fe_fetch_add(counter, 1)


def smirnov(double n, double d):
    """P(D+_n >= d) for the one-sided Smirnov statistic (n >= 2, 0 < d < 1)."""
    return fe_smirnov(n, d)


def categorical_drift(const double[::1] ref_counts, const double[::1] cur_counts, double eps):
    """(chi-square, PSI, Jensen-Shannon distance) of counts aligned on the union of categories
    (see kernels/monitor/drift.py)."""
    cdef Py_ssize_t n = ref_counts.shape[0]
    if cur_counts.shape[0] != n:
        raise ValueError("categorical_drift: counts of unequal length")
    scratch_arr = np.empty(2 * n + 1)
    cdef double[::1] scratch = scratch_arr
    cdef double out[3]
    with nogil:
        fe_categorical_drift(&ref_counts[0] if n else NULL, &cur_counts[0] if n else NULL, n,
                             eps, &scratch[0], &scratch[n], out)
    return out[0], out[1], out[2]


def psi(const double[::1] p, const double[::1] q, double eps):
    """Population stability index sum((q - p) ln(q / p)), zero proportions replaced by eps."""
    if q.shape[0] != p.shape[0]:
        raise ValueError("psi: proportions of unequal length")
    return fe_psi(&p[0] if p.shape[0] else NULL, &q[0] if q.shape[0] else NULL, p.shape[0], eps)


def js_distance(const double[::1] p, const double[::1] q):
    """Jensen-Shannon distance (natural log) of two proportion vectors, as scipy computes it."""
    if q.shape[0] != p.shape[0]:
        raise ValueError("js_distance: proportions of unequal length")
    return fe_js_distance(&p[0] if p.shape[0] else NULL, &q[0] if q.shape[0] else NULL,
                          p.shape[0])
