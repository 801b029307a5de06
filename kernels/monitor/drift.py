"""Drift statistics of numeric columns in one merged walk over two sorted samples per column.

Each column is a sorted float64 run inside a flat array (``start``/``length``), with either unit
weights (exact samples: ``wstart[j] < 0``) or per-value weights (sketch points). The walk over the
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
def _weight(w, wstart, i):
    return 1.0 if wstart < 0 else w[wstart + i]


@njit(**NJIT)
def _weight_le(vals, w, start, n, wstart, x):
    """Weight of the values <= x in the sorted run."""
    if wstart < 0:
        return float(np.searchsorted(vals[start:start + n], x, side="right"))
    total = 0.0
    for i in range(n):
        if vals[start + i] > x:
            break
        total += w[wstart + i]
    return total


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
        # --- merged ECDF walk: KS and Wasserstein -------------------------------------------
        i = 0
        k = 0
        ca = 0.0
        cb = 0.0
        d_max = 0.0
        area = 0.0
        gap = 0.0
        prev = 0.0
        unit_a = ref_wstart[j] < 0
        unit_b = cur_wstart[j] < 0
        while i < na or k < nb:
            if k >= nb or (i < na and ref_vals[sa + i] <= cur_vals[sb + k]):
                v = ref_vals[sa + i]
            else:
                v = cur_vals[sb + k]
            if i + k > 0:
                area += gap * (v - prev)  # the gap held on [prev, v)
            if unit_a:
                while i < na and ref_vals[sa + i] == v:
                    i += 1
                ca = float(i)
            else:
                while i < na and ref_vals[sa + i] == v:
                    ca += ref_w[ref_wstart[j] + i]
                    i += 1
            if unit_b:
                while k < nb and cur_vals[sb + k] == v:
                    k += 1
                cb = float(k)
            else:
                while k < nb and cur_vals[sb + k] == v:
                    cb += cur_w[cur_wstart[j] + k]
                    k += 1
            gap = abs(ca / ta - cb / tb)
            if gap > d_max:
                d_max = gap
            prev = v
        ks_out[j] = d_max
        wass_out[j] = area
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
            cum = 0.0
            b = 1
            for t in range(na):
                cum += ref_w[ref_wstart[j] + t]
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
