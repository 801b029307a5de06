/* Drift statistics of a numeric column from two sorted runs (profiles), in one merged walk
 * (included by drift_native.pyx; the layout is described in kernels/monitor/drift.py). Needs
 * fe_psi / fe_js_distance / fe_count_le from drift_buckets.h. */
#ifndef FE_DRIFT_SORTED_H
#define FE_DRIFT_SORTED_H
#include <math.h>
#include <stdint.h>

/* weight of the first i values of a run: i for unit weights (wstart < 0), else the run's
 * cumulative weights cum_w[wstart:] (which start with 0) at i */
static inline double fe_weight_upto(const double *cum_w, int64_t wstart, int64_t i) {
    return wstart < 0 ? (double)i : cum_w[wstart + i];
}

/* (largest gap, integral of the gap) between the ECDFs of two sorted runs: one value taken per
 * step without data-dependent branches; within a run of equal values the gap counts for the
 * maximum only after the last of them. The gap is |Wa tb - Wb ta|, divided by ta tb at the end */
static void fe_ecdf_gaps(const double *a, int64_t na, int64_t wa, double ta, const double *cum_a,
                         const double *b, int64_t nb, int64_t wb, double tb, const double *cum_b,
                         double *ks, double *wass) {
    int64_t i = 0, k = 0;
    int take_a = a[0] <= b[0];
    double v = take_a ? a[0] : b[0];
    double d_max = 0.0, area = 0.0;
    for (int64_t step = 0; step < na + nb - 1; step++) {
        i += take_a ? 1 : 0;
        k += take_a ? 0 : 1;
        const double x = a[i < na - 1 ? i : na - 1];
        const double y = b[k < nb - 1 ? k : nb - 1];
        take_a = i < na && (k >= nb || x <= y);
        const double nxt = take_a ? x : y;
        const double gap = fabs(fe_weight_upto(cum_a, wa, i) * tb
                                - fe_weight_upto(cum_b, wb, k) * ta);
        area += gap * (nxt - v);  /* the gap held on [v, nxt) */
        if (nxt > v && gap > d_max) d_max = gap;
        v = nxt;
    }
    *ks = d_max / (ta * tb);
    *wass = area / (ta * tb);
    if (!isfinite(area) && isfinite(a[0]) && isfinite(a[na - 1]) && isfinite(b[0])
        && isfinite(b[nb - 1])) {
        /* finite values whose range is near the double limit (|x| ~ 1e300): the gap in counts
         * (up to ta tb) times a width overflowed. Walk again with the gap as a share, as scipy
         * sums |u_cdf - v_cdf| x deltas: inf only where scipy's sum is inf too. A rare path,
         * so the common one keeps its bits. */
        i = 0;
        k = 0;
        take_a = a[0] <= b[0];
        v = take_a ? a[0] : b[0];
        area = 0.0;
        for (int64_t step = 0; step < na + nb - 1; step++) {
            i += take_a ? 1 : 0;
            k += take_a ? 0 : 1;
            const double x = a[i < na - 1 ? i : na - 1];
            const double y = b[k < nb - 1 ? k : nb - 1];
            take_a = i < na && (k >= nb || x <= y);
            const double nxt = take_a ? x : y;
            area += fabs(fe_weight_upto(cum_a, wa, i) / ta - fe_weight_upto(cum_b, wb, k) / tb)
                * (nxt - v);
            v = nxt;
        }
        *wass = area;
    }
}

/* weight of the values <= x in the sorted run */
static inline double fe_weight_le(const double *vals, const double *cum_w, int64_t n,
                                  int64_t wstart, double x) {
    return fe_weight_upto(cum_w, wstart, fe_count_le(vals, n, x));
}

/* One column of kernels/monitor/drift.py numeric_drift: out = (ks, wass, psi, js), bins;
 * ref_p / cur_p the bin proportions (n_bins slots); edges: scratch of n_bins doubles */
static void fe_sorted_column(const double *ref_vals, const double *ref_w, int64_t sa, int64_t na,
                             int64_t wsa, double ta, const double *cur_vals, const double *cur_w,
                             int64_t sb, int64_t nb, int64_t wsb, double tb, int64_t n_bins,
                             double eps, double *out, int64_t *bins, double *ref_p, double *cur_p,
                             double *edges) {
    if (na == 0 || nb == 0) {
        out[0] = out[1] = out[2] = out[3] = NAN;
        *bins = 0;
        return;
    }
    const double *a = ref_vals + sa, *b = cur_vals + sb;
    fe_ecdf_gaps(a, na, wsa, ta, ref_w, b, nb, wsb, tb, cur_w, &out[0], &out[1]);
    /* reference quantile edges (inverted CDF), deduplicated */
    int64_t n_edges = 0;
    if (wsa < 0) {
        for (int64_t e = 1; e < n_bins; e++) {
            const double x = a[(e * na + n_bins - 1) / n_bins - 1];
            if (n_edges == 0 || x > edges[n_edges - 1]) edges[n_edges++] = x;
        }
    } else {
        int64_t e = 1;
        for (int64_t t = 0; t < na; t++) {
            const double cum = ref_w[wsa + t + 1];
            while (e < n_bins && cum * (double)n_bins >= (double)e * ta) {
                const double x = a[t];
                if (n_edges == 0 || x > edges[n_edges - 1]) edges[n_edges++] = x;
                e++;
            }
        }
    }
    /* bin proportions: bin e holds edges[e-1] < x <= edges[e] */
    double prev_a = 0.0, prev_b = 0.0;
    for (int64_t e = 0; e <= n_edges; e++) {
        double wa, wb;
        if (e < n_edges) {
            wa = fe_weight_le(a, ref_w, na, wsa, edges[e]);
            wb = fe_weight_le(b, cur_w, nb, wsb, edges[e]);
        } else {
            wa = ta;
            wb = tb;
        }
        ref_p[e] = (wa - prev_a) / ta;
        cur_p[e] = (wb - prev_b) / tb;
        prev_a = wa;
        prev_b = wb;
    }
    *bins = n_edges + 1;
    out[2] = fe_psi(ref_p, cur_p, n_edges + 1, eps);
    out[3] = fe_js_distance(ref_p, cur_p, n_edges + 1);
}

/* chi-square of current counts against the reference's proportions (a category absent from
 * the reference gives inf), PSI and Jensen-Shannon distance; p, q: scratch of n doubles */
static void fe_categorical_drift(const double *ref_counts, const double *cur_counts, int64_t n,
                                 double eps, double *p, double *q, double *out) {
    double n_ref = 0.0, n_cur = 0.0, chi2 = 0.0;
    for (int64_t i = 0; i < n; i++) { n_ref += ref_counts[i]; n_cur += cur_counts[i]; }
    for (int64_t i = 0; i < n; i++) { p[i] = ref_counts[i] / n_ref; q[i] = cur_counts[i] / n_cur; }
    const double scale = n_cur / n_ref;
    for (int64_t i = 0; i < n; i++) {
        const double expected = ref_counts[i] * scale, diff = cur_counts[i] - expected;
        if (expected == 0.0) {
            if (diff != 0.0) chi2 = INFINITY;
        } else {
            chi2 += diff * diff / expected;
        }
    }
    out[0] = chi2;
    out[1] = fe_psi(p, q, n, eps);
    out[2] = fe_js_distance(p, q, n);
}

#endif
