/* One column's drift statistics from bucket counts (included by drift_buckets.h; the method:
 * kernels/monitor/buckets.py). Same steps as the Numba kernel it replaces, one function. */
#ifndef FE_DRIFT_COLUMN_H
#define FE_DRIFT_COLUMN_H

/* Every statistic of column a (reference, na_rows values) vs b (current) into stats
 * (FE_N_STATS slots) and the PSI bin proportions into ref_p / cur_p (n_bins each).
 * FE_STATUS 1: not computed (too many values would have to be sorted, or an infinite value;
 * the caller sorts the column instead). Returns 0, or -1 when memory ran out. */
static int fe_column_drift(const double *a, int64_t na_rows, const double *b, int64_t nb_rows,
                           const fe_drift_params *p, fe_drift_work *w, double *stats,
                           double *ref_p, double *cur_p) {
    const int64_t cells = p->cells, n_bins = p->n_bins;
    double mom_a[4], mom_b[4];
    fe_moments(a, na_rows, mom_a);
    fe_moments(b, nb_rows, mom_b);
    const int64_t na = (int64_t)mom_a[0], nb = (int64_t)mom_b[0];
    const double lo_v = fmin(mom_a[1], mom_b[1]), hi_v = fmax(mom_a[2], mom_b[2]);
    stats[FE_N_REF] = (double)na;
    stats[FE_N_CUR] = (double)nb;
    stats[FE_STATUS] = 0;
    stats[FE_BINS] = 0;
    if (na == 0 || nb == 0) {
        stats[FE_KS] = stats[FE_WASS] = stats[FE_PSI] = stats[FE_JS] = NAN;
        stats[FE_MEAN_REF] = stats[FE_M2_REF] = NAN;
        return 0;
    }
    if (!(isfinite(lo_v) && isfinite(hi_v))) {
        /* an infinite value: the map has no finite range (the sorted walk answers as scipy) */
        stats[FE_STATUS] = 1;
        return 0;
    }
    const double span = hi_v - lo_v;
    if (!(span * (double)na * (double)nb < 0x1p1000) || (span > 0.0 && span < 0x1p-900)) {
        /* a range near the double limits: the map's scale (cells / span) overflowed for a
         * subnormal span, and an int64 cast of inf or NaN indexed the map out of bounds (a
         * crash); the offset sums and G (hi - lo), up to na nb span, overflowed past ~1e300.
         * The sorted walk takes these columns. */
        stats[FE_STATUS] = 1;
        return 0;
    }
    const double mean_a = mom_a[3] / (double)na;
    /* --- the bucket map: r ~ sqrt(n) / 16 values per side and bucket (buckets.py) --------- */
    const int64_t n_max = na > nb ? na : nb;
    const int64_t rows = fe_max_i64(4, fe_min_i64(p->bucket_rows,
                                                  (int64_t)(sqrt((double)n_max) / 16.0)));
    int64_t n_buckets = cells;
    while (2 * n_buckets <= p->max_buckets && n_buckets * rows < n_max) n_buckets *= 2;
    double *q = w->q;
    fe_splitters(a, na_rows, b, nb_rows, lo_v, hi_v, p->sample, cells, w->picks, q);
    const int64_t n_cells = p->cells_per_bucket * n_buckets;
    const int on_grid = fe_grid_fits(q, cells, n_cells, n_max, p->cell_fill * (double)rows);
    double scale;
    int64_t last;
    if (on_grid) {
        fe_grid_plan(q, cells, n_buckets, n_cells, w);
        scale = (double)n_cells / (q[cells] - q[0]);
        last = n_cells - 1;
    } else {
        /* more steps than buckets would leave steps owning none */
        const int64_t n_entries = fe_min_i64(p->n_entries, n_buckets);
        fe_step_plan(q, cells, n_buckets, n_entries, w);
        scale = q[cells] > q[0] ? (double)n_entries / (q[cells] - q[0]) : 0.0;
        last = n_entries - 1;
    }
    /* --- counts and offset sums per bucket (slot n_buckets: the NaN sentinel) ------------- */
    int64_t *cnt_a = w->cnt_a, *cnt_b = w->cnt_b;
    double *off_a = w->off_a, *off_b = w->off_b;
    const size_t nbk = (size_t)(n_buckets + 1);
    stats[FE_MEAN_REF] = mean_a;
    stats[FE_M2_REF] = fe_ids_and_tally(a, na_rows, on_grid, q[0], scale, w, n_buckets, last,
                                        w->ids_a, cnt_a, off_a, 1, mean_a, p->tally_block);
    fe_ids_and_tally(b, nb_rows, on_grid, q[0], scale, w, n_buckets, last, w->ids_b, cnt_b,
                     off_b, 0, 0.0, p->tally_block);
    /* --- which buckets need their values in order ------------------------------------------ */
    const int64_t ta = na, tb = nb;
    int64_t g = 0, bound = 0;  /* the largest |G| at a bucket boundary: KS is at least this */
    for (int64_t k = 0; k < n_buckets; k++) {
        g += cnt_a[k] * tb - cnt_b[k] * ta;
        bound = fe_max_i64(bound, fe_abs_i64(g));
    }
    uint8_t *flag = w->flag;
    int64_t *cum_a = w->cum_a;  /* values of a in the buckets before k */
    memset(flag, 0, nbk);
    cum_a[0] = 0;
    for (int64_t k = 0; k < n_buckets; k++) cum_a[k + 1] = cum_a[k] + cnt_a[k];
    for (int64_t e = 1; e < n_bins; e++) {
        const int64_t rank = (e * na + n_bins - 1) / n_bins - 1;  /* inverted-CDF quantile */
        /* the last k with cum_a[k] <= rank */
        int64_t lo = 0, hi = n_buckets + 1;
        while (lo < hi) {
            const int64_t mid = lo + (hi - lo) / 2;
            if (cum_a[mid] <= rank) lo = mid + 1; else hi = mid;
        }
        w->edge_bucket[e - 1] = lo - 1;
        flag[lo - 1] = 1;
    }
    double closed = 0.0;  /* the integral of |G| over the buckets where it keeps one sign */
    g = 0;
    for (int64_t k = 0; k < n_buckets; k++) {
        const int64_t low = g - cnt_b[k] * ta, high = g + cnt_a[k] * tb;
        if ((low < 0 && high > 0)
            || (cnt_a[k] > 0 && cnt_b[k] > 0
                && fe_max_i64(fe_abs_i64(low), fe_abs_i64(high)) > bound)
            || (w->shared[k] && cnt_a[k] + cnt_b[k] > 0))
            flag[k] = 1;
        if (!flag[k] && (high > 0 || low < 0)) {
            /* G0 (hi - lo) + tb sum_a (hi - a) - ta sum_b (hi - b), the value sums as offsets
             * from the step's left edge (no cancellation there) */
            const double top_off = w->upper[k] - w->origin[k];
            const double area = (double)g * (w->upper[k] - w->lower[k])
                + (double)tb * ((double)cnt_a[k] * top_off - off_a[k])
                - (double)ta * ((double)cnt_b[k] * top_off - off_b[k]);
            closed += high > 0 ? area : -area;
        }
        g += cnt_a[k] * tb - cnt_b[k] * ta;
    }
    int64_t *start_a = w->start_a, *start_b = w->start_b, gathered_a = 0, gathered_b = 0;
    for (int64_t k = 0; k < n_buckets; k++) {
        start_a[k] = gathered_a;
        start_b[k] = gathered_b;
        if (flag[k]) {
            gathered_a += cnt_a[k];
            gathered_b += cnt_b[k];
        }
    }
    if ((double)(gathered_a + gathered_b) > p->gather_limit * (double)(na + nb)) {
        stats[FE_STATUS] = 1;
        return 0;
    }
    /* --- the values of the flagged buckets, in order ---------------------------------------- */
    if (fe_grow_run(w, gathered_a + gathered_b)) return -1;
    double *run_a = w->run, *run_b = w->run + gathered_a;
    fe_gather(a, na_rows, w->ids_a, flag, start_a, n_buckets, w->lower, w->upper, w->fill,
              w->picked, p->gather_block, run_a);
    fe_gather(b, nb_rows, w->ids_b, flag, start_b, n_buckets, w->lower, w->upper, w->fill,
              w->picked, p->gather_block, run_b);
    /* --- the flagged buckets in order -------------------------------------------------------- */
    g = 0;
    int64_t top = bound;
    double exact = 0.0;
    for (int64_t k = 0; k < n_buckets; k++) {
        if (flag[k]) {
            double area;
            int64_t peak;
            fe_exact_bucket(run_a + start_a[k], cnt_a[k], run_b + start_b[k], cnt_b[k], g, ta,
                            tb, w->lower[k], w->upper[k], &area, &peak);
            exact += area;
            top = fe_max_i64(top, peak);
        }
        g += cnt_a[k] * tb - cnt_b[k] * ta;
    }
    const double scale_ab = (double)ta * (double)tb;
    stats[FE_KS] = (double)top / scale_ab;
    stats[FE_WASS] = (closed + exact) / scale_ab;
    /* --- PSI and Jensen-Shannon on the reference's quantile bins ----------------------------- */
    double *edges = w->edges, *below_a = w->below_a, *below_b = w->below_b;
    int64_t n_edges = 0, cum_b = 0, kb = 0;
    for (int64_t e = 1; e < n_bins; e++) {
        const int64_t k = w->edge_bucket[e - 1];
        const int64_t rank = (e * na + n_bins - 1) / n_bins - 1;
        const double x = run_a[start_a[k] + rank - cum_a[k]];
        while (kb < k) cum_b += cnt_b[kb++];
        if (n_edges == 0 || x > edges[n_edges - 1]) {
            edges[n_edges] = x;
            below_a[n_edges] = (double)(cum_a[k] + fe_count_le(run_a + start_a[k], cnt_a[k], x));
            below_b[n_edges] = (double)(cum_b + fe_count_le(run_b + start_b[k], cnt_b[k], x));
            n_edges++;
        }
    }
    double prev_a = 0.0, prev_b = 0.0;
    for (int64_t e = 0; e <= n_edges; e++) {
        const double wa = e < n_edges ? below_a[e] : (double)na;
        const double wb = e < n_edges ? below_b[e] : (double)nb;
        ref_p[e] = (wa - prev_a) / (double)na;
        cur_p[e] = (wb - prev_b) / (double)nb;
        prev_a = wa;
        prev_b = wb;
    }
    stats[FE_BINS] = (double)(n_edges + 1);
    stats[FE_PSI] = fe_psi(ref_p, cur_p, n_edges + 1, p->eps);
    stats[FE_JS] = fe_js_distance(ref_p, cur_p, n_edges + 1);
    return 0;
}

#endif
