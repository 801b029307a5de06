"""Drift statistics of numeric columns in one merged walk over two sorted samples per column.

Each column is a sorted float64 run inside a flat array (``start``/``length``), with either unit
weights (exact samples: ``wstart[j] < 0``) or per-value weights (sketch points), given as the
run's cumulative weights (``length + 1`` values from 0, at ``wstart``). The walk over the
union of both runs yields the Kolmogorov-Smirnov statistic (largest ECDF gap), the Wasserstein-1
distance (integral of the ECDF gap) and, on the reference's quantile bins, the PSI and
Jensen-Shannon distance. Columns run in parallel; each column's sums are taken in value order.
"""
import math

import numpy as np
from numba import prange

from ..common.config import NJIT
from ..common.launch import parallel_kernel
from numba import njit


@njit(**NJIT)
def _weight_upto(cum_w, wstart, i):
    """Weight of the first ``i`` values of a run: ``i`` for unit weights (``wstart < 0``), else
    the run's cumulative weights ``cum_w[wstart:]`` (which start with 0) at ``i``."""
    return float(i) if wstart < 0 else cum_w[wstart + i]


@njit(**NJIT)
def _weight_le(vals, cum_w, start, n, wstart, x):
    """Weight of the values <= x in the sorted run."""
    return _weight_upto(cum_w, wstart, np.searchsorted(vals[start:start + n], x, side="right"))


@njit(**NJIT)
def _ecdf_gaps(a, sa, na, wa, ta, cum_a, b, sb, nb, wb, tb, cum_b):
    """(largest gap, integral of the gap) between the ECDFs of two sorted runs, in one merged
    walk. One value is taken per step without data-dependent branches (the merge order of two
    random samples defeats branch prediction); within a run of equal values the gap counts for
    the maximum only after the last of them, and adds nothing to the integral (zero width).
    The gap is carried as ``|Wa tb - Wb ta|`` (Wa, Wb: weights taken so far), exact in
    floating point for unit weights below 2**53, and divided by ``ta tb`` once at the end."""
    i = 0
    k = 0
    take_a = a[sa] <= b[sb]
    v = a[sa] if take_a else b[sb]
    d_max = 0.0
    area = 0.0
    for _ in range(na + nb - 1):
        i += 1 if take_a else 0
        k += 0 if take_a else 1
        x = a[sa + min(i, na - 1)]
        y = b[sb + min(k, nb - 1)]
        take_a = i < na and (k >= nb or x <= y)
        nxt = x if take_a else y
        gap = abs(_weight_upto(cum_a, wa, i) * tb - _weight_upto(cum_b, wb, k) * ta)
        area += gap * (nxt - v)  # the gap held on [v, nxt)
        if nxt > v and gap > d_max:
            d_max = gap
        v = nxt
    scale = ta * tb
    return d_max / scale, area / scale


@njit(**NJIT)
def js_distance(p, q):
    """Jensen-Shannon distance (natural log) of two proportion vectors, as scipy computes it."""
    sp = 0.0
    sq = 0.0
    for i in range(p.shape[0]):
        sp += p[i]
        sq += q[i]
    left = 0.0
    right = 0.0
    for i in range(p.shape[0]):
        pi = p[i] / sp
        qi = q[i] / sq
        m = (pi + qi) / 2.0
        if pi > 0.0:
            left += pi * math.log(pi / m)
        if qi > 0.0:
            right += qi * math.log(qi / m)
    return math.sqrt((left + right) / 2.0)


@njit(**NJIT)
def psi(p, q, eps):
    """Population stability index sum((q - p) * ln(q / p)), zero proportions replaced by eps."""
    total = 0.0
    for i in range(p.shape[0]):
        a = p[i] if p[i] > 0.0 else eps
        b = q[i] if q[i] > 0.0 else eps
        total += (b - a) * math.log(b / a)
    return total


@parallel_kernel
def numeric_drift(ref_vals, ref_w, ref_start, ref_len, ref_wstart, ref_total,
                  cur_vals, cur_w, cur_start, cur_len, cur_wstart, cur_total,
                  n_bins, eps, ks_out, wass_out, psi_out, js_out, bins_out, ref_p, cur_p):
    """Fill the per-column outputs; ``ref_p``/``cur_p`` get the bin proportions (n_cols x n_bins,
    only the first ``bins_out[j]`` used) of the reference's quantile bins."""
    for j in prange(ref_start.shape[0]):
        na = ref_len[j]
        nb = cur_len[j]
        ta = ref_total[j]
        tb = cur_total[j]
        sa = ref_start[j]
        sb = cur_start[j]
        if na == 0 or nb == 0:
            ks_out[j] = np.nan
            wass_out[j] = np.nan
            psi_out[j] = np.nan
            js_out[j] = np.nan
            bins_out[j] = 0
            continue
        ks_out[j], wass_out[j] = _ecdf_gaps(ref_vals, sa, na, ref_wstart[j], ta, ref_w,
                                            cur_vals, sb, nb, cur_wstart[j], tb, cur_w)
        # --- reference quantile edges (inverted CDF), deduplicated ---------------------------
        edges = np.empty(n_bins - 1, dtype=np.float64)
        n_edges = 0
        if ref_wstart[j] < 0:
            for b in range(1, n_bins):
                idx = (b * na + n_bins - 1) // n_bins - 1
                e = ref_vals[sa + idx]
                if n_edges == 0 or e > edges[n_edges - 1]:
                    edges[n_edges] = e
                    n_edges += 1
        else:
            b = 1
            for t in range(na):
                cum = ref_w[ref_wstart[j] + t + 1]
                while b < n_bins and cum * n_bins >= b * ta:
                    e = ref_vals[sa + t]
                    if n_edges == 0 or e > edges[n_edges - 1]:
                        edges[n_edges] = e
                        n_edges += 1
                    b += 1
        # --- bin proportions: bin b holds edges[b-1] < x <= edges[b] ---------------------------
        prev_a = 0.0
        prev_b = 0.0
        for b in range(n_edges + 1):
            if b < n_edges:
                wa = _weight_le(ref_vals, ref_w, sa, na, ref_wstart[j], edges[b])
                wb = _weight_le(cur_vals, cur_w, sb, nb, cur_wstart[j], edges[b])
            else:
                wa = ta
                wb = tb
            ref_p[j, b] = (wa - prev_a) / ta
            cur_p[j, b] = (wb - prev_b) / tb
            prev_a = wa
            prev_b = wb
        bins_out[j] = n_edges + 1
        psi_out[j] = psi(ref_p[j, :n_edges + 1], cur_p[j, :n_edges + 1], eps)
        js_out[j] = js_distance(ref_p[j, :n_edges + 1], cur_p[j, :n_edges + 1])


@njit(**NJIT)
def categorical_drift(ref_counts, cur_counts, eps):
    """Chi-square statistic of current counts against the reference's proportions (expected =
    reference count * n_current / n_reference; a category absent from the reference gives inf),
    PSI and Jensen-Shannon distance of the two proportion vectors. Counts are aligned on the union
    of categories."""
    n_ref = 0.0
    n_cur = 0.0
    for i in range(ref_counts.shape[0]):
        n_ref += ref_counts[i]
        n_cur += cur_counts[i]
    p = ref_counts / n_ref
    q = cur_counts / n_cur
    scale = n_cur / n_ref
    chi2 = 0.0
    for i in range(ref_counts.shape[0]):
        expected = ref_counts[i] * scale
        diff = cur_counts[i] - expected
        if expected == 0.0:
            chi2 = np.inf if diff != 0.0 else chi2
        else:
            chi2 += diff * diff / expected
    return chi2, psi(p, q, eps), js_distance(p, q)
