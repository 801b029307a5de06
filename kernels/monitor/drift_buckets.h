/* Drift statistics of two raw (unsorted) numeric columns without sorting them, in C
 * (included by drift_native.pyx; the method is described in kernels/monitor/buckets.py).
 *
 * Why C: compiled at build time, a cold drift() compiles nothing (issue #11: the Numba kernels
 * this replaces cost ~24 s of JIT compilation on a first call), and the per-value loops are
 * plain C loops, the hottest with an AVX2 twin chosen at run time (__builtin_cpu_supports) that
 * does the same operations on the same lanes (no fast-math, no FMA): the same bits either way.
 *
 * Per column, four passes over the values:
 *  1. count, min, max and sum of each side (the bucket map needs the range);
 *  2. per block of tally_block values: bucket ids (a branch-free, vectorised loop into
 *     ``ids``), then that block's counts and offset sums while its values are still in L1
 *     cache (the reference side also sums its squared deviations from the mean; the current
 *     side's were never used and are not computed);
 *  3. the flagged buckets' values gathered (positions listed branch-free per block) and sorted;
 *  4. an ordered walk over the flagged buckets only.
 * Nothing here allocates but fe_drift_work_alloc / fe_grow_run; a column's result depends on
 * its own values only, so not on which thread computed it.
 */
#ifndef FE_DRIFT_BUCKETS_H
#define FE_DRIFT_BUCKETS_H
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "drift_sort.h"


/* ``stats`` slots (kernels/monitor/buckets.py names them) */
enum { FE_KS, FE_WASS, FE_PSI, FE_JS, FE_N_REF, FE_N_CUR, FE_MEAN_REF, FE_M2_REF, FE_STATUS,
       FE_BINS, FE_N_STATS };

typedef struct {
    int64_t n_bins, bucket_rows, max_buckets, sample, n_entries, cells, cells_per_bucket,
        gather_block, tally_block;
    double eps, gather_limit, cell_fill;
} fe_drift_params;

/* one bucket's tally: the sum of its values' offsets from the map's low end and its count,
 * side by side (a value touches one 16-byte slot, not two arrays) */
typedef struct {
    double offset;
    int64_t count;
} fe_tally_slot;

typedef struct {
    fe_tally_slot *tally;
    double *q, *picks, *lower, *upper, *origin, *off_a, *off_b, *left_edge, *rate, *edges,
        *below_a, *below_b, *run;
    int64_t *cnt_a, *cnt_b, *cum_a, *start_a, *start_b, *fill, *edge_bucket, *base, *picked,
        run_cap;
    int32_t *packed;
    uint16_t *grid, *ids_a, *ids_b;
    uint8_t *shared, *flag;
} fe_drift_work;

static void fe_drift_work_free(fe_drift_work *w) {
    free(w->tally); free(w->q); free(w->picks); free(w->lower); free(w->upper); free(w->origin);
    free(w->off_a); free(w->off_b); free(w->left_edge); free(w->rate); free(w->edges);
    free(w->below_a); free(w->below_b); free(w->run); free(w->cnt_a); free(w->cnt_b);
    free(w->cum_a); free(w->start_a); free(w->start_b); free(w->fill); free(w->edge_bucket);
    free(w->base);
    free(w->picked); free(w->packed); free(w->grid); free(w->ids_a); free(w->ids_b);
    free(w->shared); free(w->flag);
    memset(w, 0, sizeof(*w));
}

/* 0 on success; on failure everything is freed */
static int fe_drift_work_alloc(fe_drift_work *w, const fe_drift_params *p, int64_t rows_a,
                               int64_t rows_b) {
    const int64_t nb = p->max_buckets + 1, ne = p->n_entries + 1;
    memset(w, 0, sizeof(*w));
    w->tally = malloc(nb * sizeof(fe_tally_slot));
    w->q = malloc((p->cells + 1) * sizeof(double));
    w->picks = malloc((2 * p->sample + 1) * sizeof(double));
    w->lower = malloc(nb * sizeof(double));
    w->upper = malloc(nb * sizeof(double));
    w->origin = malloc(nb * sizeof(double));
    w->off_a = malloc(nb * sizeof(double));
    w->off_b = malloc(nb * sizeof(double));
    w->left_edge = malloc(ne * sizeof(double));
    w->rate = malloc(ne * sizeof(double));
    w->edges = malloc(p->n_bins * sizeof(double));
    w->below_a = malloc(p->n_bins * sizeof(double));
    w->below_b = malloc(p->n_bins * sizeof(double));
    w->cnt_a = malloc(nb * sizeof(int64_t));
    w->cnt_b = malloc(nb * sizeof(int64_t));
    w->cum_a = malloc(nb * sizeof(int64_t));
    w->start_a = malloc(nb * sizeof(int64_t));
    w->start_b = malloc(nb * sizeof(int64_t));
    w->fill = malloc(nb * sizeof(int64_t));
    w->edge_bucket = malloc(p->n_bins * sizeof(int64_t));
    w->base = malloc(ne * sizeof(int64_t));
    w->picked = malloc(p->gather_block * sizeof(int64_t));
    w->packed = malloc(ne * sizeof(int32_t));
    w->grid = malloc((p->cells_per_bucket * p->max_buckets + 1) * sizeof(uint16_t));
    w->ids_a = malloc((rows_a + 1) * sizeof(uint16_t));
    w->ids_b = malloc((rows_b + 1) * sizeof(uint16_t));
    w->shared = malloc(nb);
    w->flag = malloc(nb);
    w->run = NULL;
    w->run_cap = 0;
    if (!w->tally || !w->q || !w->picks || !w->lower || !w->upper || !w->origin || !w->off_a
        || !w->off_b
        || !w->left_edge || !w->rate || !w->edges || !w->below_a || !w->below_b || !w->cnt_a
        || !w->cnt_b || !w->cum_a || !w->start_a || !w->start_b || !w->fill || !w->edge_bucket
        || !w->base
        || !w->picked || !w->packed || !w->grid || !w->ids_a || !w->ids_b || !w->shared
        || !w->flag) {
        fe_drift_work_free(w);
        return -1;
    }
    return 0;
}

/* room for n gathered values in w->run; 0 on success */
static int fe_grow_run(fe_drift_work *w, int64_t n) {
    if (n <= w->run_cap) return 0;
    double *r = realloc(w->run, (n + n / 4 + 1) * sizeof(double));
    if (!r) return -1;
    w->run = r;
    w->run_cap = n + n / 4 + 1;
    return 0;
}

static inline int64_t fe_min_i64(int64_t a, int64_t b) { return a < b ? a : b; }
static inline int64_t fe_max_i64(int64_t a, int64_t b) { return a > b ? a : b; }
static inline int64_t fe_abs_i64(int64_t a) { return a < 0 ? -a : a; }

/* count of the values <= x in the sorted run */
static inline int64_t fe_count_le(const double *s, int64_t n, double x) {
    int64_t lo = 0, hi = n;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (s[mid] <= x) lo = mid + 1; else hi = mid;
    }
    return lo;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define FE_HAVE_AVX2_PATH 1
#endif

/* tests turn the AVX2 twins off to check that the plain loops give the same bits */
static int fe_drift_plain_only = 0;

static inline int fe_cpu_avx2(void) {
#ifdef FE_HAVE_AVX2_PATH
    return !fe_drift_plain_only && __builtin_cpu_supports("avx2");
#else
    return 0;
#endif
}

/* Valid count, min, max and sum of x (NaN is missing). Four lanes (lane t takes values
 * t, t + 4, ...; sums added as (l0 + l1) + (l2 + l3)); the AVX2 path does the same operations
 * on the same lanes (min/max as v < m ? v : m, which minpd/maxpd are), so the same bits */
static void fe_moments_lanes(const double *x, int64_t n, int64_t from, double *cnt, double *total,
                             double *mn, double *mx) {
    const int64_t n4 = n - n % 4;
    for (int64_t i = from; i < n4; i += 4) {
        for (int t = 0; t < 4; t++) {
            const double v = x[i + t];
            const int valid = v == v;
            cnt[t] += valid ? 1.0 : 0.0;
            total[t] += valid ? v : 0.0;
            mn[t] = v < mn[t] ? v : mn[t];  /* a NaN compares false: kept out */
            mx[t] = v > mx[t] ? v : mx[t];
        }
    }
    for (int64_t i = n4 > from ? n4 : from; i < n; i++) {
        const double v = x[i];
        const int valid = v == v;
        cnt[0] += valid ? 1.0 : 0.0;
        total[0] += valid ? v : 0.0;
        mn[0] = v < mn[0] ? v : mn[0];
        mx[0] = v > mx[0] ? v : mx[0];
    }
}

#ifdef FE_HAVE_AVX2_PATH
__attribute__((target("avx2")))
static int64_t fe_moments_avx2(const double *x, int64_t n, double *cnt, double *total, double *mn,
                               double *mx) {
    __m256d c = _mm256_loadu_pd(cnt), s = _mm256_loadu_pd(total);
    __m256d lo = _mm256_loadu_pd(mn), hi = _mm256_loadu_pd(mx);
    const __m256d one = _mm256_set1_pd(1.0), zero = _mm256_setzero_pd();
    const int64_t n4 = n - n % 4;
    for (int64_t i = 0; i < n4; i += 4) {
        const __m256d v = _mm256_loadu_pd(x + i);
        const __m256d valid = _mm256_cmp_pd(v, v, _CMP_ORD_Q);
        c = _mm256_add_pd(c, _mm256_and_pd(valid, one));
        s = _mm256_add_pd(s, _mm256_blendv_pd(zero, v, valid));
        lo = _mm256_min_pd(v, lo);  /* v < lo ? v : lo */
        hi = _mm256_max_pd(v, hi);
    }
    _mm256_storeu_pd(cnt, c);
    _mm256_storeu_pd(total, s);
    _mm256_storeu_pd(mn, lo);
    _mm256_storeu_pd(mx, hi);
    return n4;
}

/* four lanes of sum over valid v of (v - mean)^2 (no FMA: the same bits as the plain loop) */
__attribute__((target("avx2")))
static int64_t fe_dev_avx2(const double *x, int64_t n, double mean, double *dev4) {
    __m256d acc = _mm256_loadu_pd(dev4);
    const __m256d vm = _mm256_set1_pd(mean), zero = _mm256_setzero_pd();
    const int64_t n4 = n - n % 4;
    for (int64_t i = 0; i < n4; i += 4) {
        const __m256d v = _mm256_loadu_pd(x + i);
        const __m256d d = _mm256_sub_pd(v, vm);
        acc = _mm256_add_pd(acc, _mm256_blendv_pd(zero, _mm256_mul_pd(d, d),
                                                  _mm256_cmp_pd(v, v, _CMP_ORD_Q)));
    }
    _mm256_storeu_pd(dev4, acc);
    return n4;
}
#endif

static void fe_moments(const double *x, int64_t n, double *out) {
    double cnt[4] = {0, 0, 0, 0}, total[4] = {0, 0, 0, 0};
    double mn[4] = {INFINITY, INFINITY, INFINITY, INFINITY};
    double mx[4] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY};
    int64_t from = 0;
#ifdef FE_HAVE_AVX2_PATH
    if (fe_cpu_avx2()) from = fe_moments_avx2(x, n, cnt, total, mn, mx);
#endif
    fe_moments_lanes(x, n, from, cnt, total, mn, mx);
    out[0] = (cnt[0] + cnt[1]) + (cnt[2] + cnt[3]);
    out[1] = fmin(fmin(mn[0], mn[1]), fmin(mn[2], mn[3]));
    out[2] = fmax(fmax(mx[0], mx[1]), fmax(mx[2], mx[3]));
    out[3] = (total[0] + total[1]) + (total[2] + total[3]);
}

/* the squared deviations of one block into four lanes, as fe_moments */
static inline void fe_dev_block(const double *xb, int64_t m, double mean, int avx2,
                                double *dev4) {
    int64_t i = 0;
#ifdef FE_HAVE_AVX2_PATH
    if (avx2) i = fe_dev_avx2(xb, m, mean, dev4);
#endif
    (void)avx2;
    const int64_t m4 = m - m % 4;
    for (; i < m4; i += 4)
        for (int t = 0; t < 4; t++) {
            const double v = xb[i + t], d = v - mean;
            dev4[t] += v == v ? d * d : 0.0;
        }
    for (; i < m; i++) {
        const double v = xb[i], d = v - mean;
        dev4[0] += v == v ? d * d : 0.0;
    }
}

/* (cell, CDF at x) of the sample, piecewise linear through the quantiles q; *c: the cell of an
 * earlier, smaller x (the walk only moves up) */
static inline double fe_sample_cdf(const double *q, int64_t cells, int64_t *c, double x) {
    while (*c < cells - 1 && q[*c + 1] <= x) (*c)++;
    const double w = q[*c + 1] - q[*c];
    const double frac = w > 0.0 ? fmin((x - q[*c]) / w, 1.0) : 1.0;
    return ((double)*c + frac) / (double)cells;
}

/* CELLS + 1 non-decreasing cell bounds: lo, quantiles of a strided sample of both sides, hi */
static void fe_splitters(const double *a, int64_t na, const double *b, int64_t nb, double lo,
                         double hi, int64_t sample, int64_t cells, double *picks, double *q) {
    int64_t m = 0;
    for (int side = 0; side < 2; side++) {
        const double *x = side == 0 ? a : b;
        const int64_t n = side == 0 ? na : nb;
        const int64_t step = fe_max_i64(1, n / sample);
        int64_t taken = 0;
        for (int64_t i = 0; i < n && taken < sample; i += step) {
            const double v = x[i];
            if (v == v) {
                picks[m++] = v;
                taken++;
            }
        }
    }
    fe_sort_f64(picks, m);
    q[0] = lo;
    q[cells] = hi;
    for (int64_t c = 1; c < cells; c++) {
        const double v = m > 0 ? picks[(c * m) / cells] : hi;
        q[c] = fmax(fmin(fmax(v, lo), hi), q[c - 1]);
    }
}

/* Whether n_cells equal cells over [q[0], q[cells]] put at most `most` of n values into any
 * cell, as the sample's densest quantile cell estimates it */
static int fe_grid_fits(const double *q, int64_t cells, int64_t n_cells, int64_t n, double most) {
    const double width = (q[cells] - q[0]) / (double)n_cells;
    for (int64_t c = 0; c < cells; c++)
        if ((q[c + 1] - q[c]) * most * (double)cells < width * (double)n) return 0;
    return width > 0.0;
}

/* The equal-cell map (buckets.py _grid_plan): grid[g] = bucket of cell g; per bucket
 * [lower, upper) and origin (= lower); no bucket shared */
static void fe_grid_plan(const double *q, int64_t cells, int64_t n_buckets, int64_t n_cells,
                         fe_drift_work *w) {
    const double lo = q[0];
    const double width = (q[cells] - lo) / (double)n_cells;
    int64_t c = 0, done = 0;
    for (int64_t g = 0; g < n_cells; g++) {
        const double x = lo + (double)g * width;
        const double cdf = fe_sample_cdf(q, cells, &c, x);
        const int64_t k = fe_max_i64(fe_min_i64((int64_t)(cdf * (double)n_buckets), n_buckets - 1),
                                     done - 1);
        while (done <= k) w->lower[done++] = x;
        w->grid[g] = (uint16_t)k;
    }
    for (int64_t k = done; k <= n_buckets; k++) w->lower[k] = q[cells];
    for (int64_t k = 0; k < n_buckets; k++) w->upper[k] = w->lower[k + 1];
    w->upper[n_buckets] = q[cells];
    memcpy(w->origin, w->lower, (n_buckets + 1) * sizeof(double));
    memset(w->shared, 0, n_buckets + 1);
}

/* The equal-step map (buckets.py _plan) */
static void fe_step_plan(const double *q, int64_t cells, int64_t n_buckets, int64_t n_entries,
                         fe_drift_work *w) {
    const double lo = q[0];
    const double step = (q[cells] - lo) / (double)n_entries;
    int64_t *base = w->base;
    memset(w->rate, 0, n_entries * sizeof(double));
    memset(w->origin, 0, (n_buckets + 1) * sizeof(double));
    memset(w->shared, 0, n_buckets + 1);
    int64_t c = 0;
    for (int64_t e = 0; e <= n_entries; e++) {
        const double x = e < n_entries ? lo + (double)e * step : q[cells];
        const double cdf = fe_sample_cdf(q, cells, &c, x);
        base[e] = e < n_entries
            ? fe_min_i64((int64_t)(cdf * (double)n_buckets + 0.5), n_buckets - 1) : n_buckets;
    }
    int64_t run_start = -1;  /* first step of the current run of steps owning no bucket */
    for (int64_t e = 0; e < n_entries; e++) {
        const double left = lo + (double)e * step;
        const double right = e < n_entries - 1 ? lo + (double)(e + 1) * step : q[cells];
        const int64_t own = base[e + 1] - base[e];
        w->left_edge[e] = left;
        w->packed[e] = (int32_t)(base[e] << 16);
        if (own <= 0) {
            if (run_start < 0) run_start = e;
            w->shared[base[e]] = 1;
            continue;
        }
        w->rate[e] = right > left ? (double)own / (right - left) : 0.0;
        w->packed[e] |= (int32_t)(own - 1);
        for (int64_t j = 0; j < own; j++) {
            const int64_t k = base[e] + j;
            w->lower[k] = j > 0 ? left + (double)j * (right - left) / (double)own : left;
            w->upper[k] = j < own - 1 ? left + (double)(j + 1) * (right - left) / (double)own
                                      : right;
            w->origin[k] = left;
        }
        if (run_start >= 0) {
            w->lower[base[e]] = lo + (double)run_start * step;
            run_start = -1;
        }
    }
    w->lower[n_buckets] = w->upper[n_buckets] = q[cells];
}

/* ids of one block on the equal-cell map (NaN: nan_id; a NaN takes lo's path: no float to
 * int conversion of a NaN). Branch-free: vectorised in the AVX2 clone */
static inline void fe_grid_ids(const double *x, int64_t n, double lo, double scale,
                               const uint16_t *grid, int64_t last, uint16_t *ids,
                               uint16_t nan_id) {
    for (int64_t i = 0; i < n; i++) {
        const double v = x[i];
        const int valid = v == v;
        int64_t cell = (int64_t)(((valid ? v : lo) - lo) * scale);
        cell = cell < last ? cell : last;
        const uint16_t k = grid[cell];
        ids[i] = valid ? k : nan_id;
    }
}

#ifdef FE_HAVE_AVX2_PATH
/* fe_grid_ids with AVX2 gathers (GCC does not vectorise a uint16 table lookup): the same
 * truncation of the same double product, so the same ids. Reads grid[cell + 1] too (a 32-bit
 * gather at uint16 offsets): the table has one slot more than cells. */
__attribute__((target("avx2")))
static void fe_grid_ids_avx2(const double *x, int64_t n, double lo, double scale,
                             const uint16_t *grid, int64_t last, uint16_t *ids, uint16_t nan_id) {
    const __m256d vlo = _mm256_set1_pd(lo), vscale = _mm256_set1_pd(scale);
    const __m128i vlast = _mm_set1_epi32((int)last), vnan = _mm_set1_epi32(nan_id);
    const __m128i low16 = _mm_set1_epi32(0xFFFF);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i k2[2];
        for (int h = 0; h < 2; h++) {
            const __m256d v = _mm256_loadu_pd(x + i + 4 * h);
            const __m256d valid = _mm256_cmp_pd(v, v, _CMP_ORD_Q);
            const __m256d u = _mm256_blendv_pd(vlo, v, valid);
            __m128i cell = _mm256_cvttpd_epi32(_mm256_mul_pd(_mm256_sub_pd(u, vlo), vscale));
            cell = _mm_min_epi32(cell, vlast);
            const __m128i k = _mm_and_si128(_mm_i32gather_epi32((const int *)grid, cell, 2), low16);
            const __m256i vm = _mm256_castpd_si256(valid);
            const __m128i m32 = _mm_castps_si128(_mm_shuffle_ps(
                _mm_castsi128_ps(_mm256_castsi256_si128(vm)),
                _mm_castsi128_ps(_mm256_extracti128_si256(vm, 1)), _MM_SHUFFLE(2, 0, 2, 0)));
            k2[h] = _mm_blendv_epi8(vnan, k, m32);
        }
        _mm_storeu_si128((__m128i *)(ids + i), _mm_packus_epi32(k2[0], k2[1]));
    }
    fe_grid_ids(x + i, n - i, lo, scale, grid, last, ids + i, nan_id);
}
#endif

/* ids of one block on the equal-step map */
static inline void fe_step_ids(const double *x, int64_t n, double lo, double scale,
                               const double *left_edge, const double *rate,
                               const int32_t *packed, int64_t last, uint16_t *ids,
                               uint16_t nan_id) {
    for (int64_t i = 0; i < n; i++) {
        const double v = x[i];
        const int valid = v == v;
        const double u = valid ? v : lo;
        int64_t e = (int64_t)((u - lo) * scale);
        e = e < last ? e : last;
        const int32_t p = packed[e];
        int64_t inside = (int64_t)((u - left_edge[e]) * rate[e]);
        const int64_t top = p & 0xFFFF;
        inside = inside < top ? inside : top;
        inside = inside > 0 ? inside : 0;
        const int64_t k = (p >> 16) + inside;
        ids[i] = valid ? (uint16_t)k : nan_id;
    }
}

/* Bucket ids of x into ids, per bucket its count and the sum of its values' offsets from
 * w->origin (into counts / offsets, n_buckets + 1 slots); returns the sum of squared deviations
 * of the valid values from mean when want_dev (four lanes, as fe_moments), else 0. Per block:
 * ids first (vectorised), then the tally reads the block's values and ids from L1 cache. The
 * tally sums offsets from lo (no origin to read per value) and moves them to the bucket's
 * origin at the end: S - c (origin - lo) loses about log2(range / bucket width) bits of the
 * offset sum, ~1e-12 relative, far below what the statistics need. The NaN id's slot takes
 * NaN's, never read. */
static double fe_ids_and_tally(const double *x, int64_t n, int on_grid, double lo, double scale,
                               fe_drift_work *w, int64_t n_buckets, int64_t last, uint16_t *ids,
                               int64_t *counts, double *offsets, int want_dev, double mean,
                               int64_t block) {
    const uint16_t nan_id = (uint16_t)n_buckets;
    const int cpu_avx2 = fe_cpu_avx2(), avx2 = on_grid && cpu_avx2;
    fe_tally_slot *tally = w->tally;
    memset(tally, 0, (n_buckets + 1) * sizeof(fe_tally_slot));
    double dev4[4] = {0, 0, 0, 0};
    for (int64_t begin = 0; begin < n; begin += block) {
        const int64_t m = n - begin < block ? n - begin : block;
        const double *xb = x + begin;
        uint16_t *ib = ids + begin;
#ifdef FE_HAVE_AVX2_PATH
        if (avx2)
            fe_grid_ids_avx2(xb, m, lo, scale, w->grid, last, ib, nan_id);
        else
#endif
        if (on_grid)
            fe_grid_ids(xb, m, lo, scale, w->grid, last, ib, nan_id);
        else
            fe_step_ids(xb, m, lo, scale, w->left_edge, w->rate, w->packed, last, ib, nan_id);
        for (int64_t i = 0; i < m; i++) {
            fe_tally_slot *t = tally + ib[i];
            t->count += 1;
            t->offset += xb[i] - lo;
        }
        if (want_dev) fe_dev_block(xb, m, mean, cpu_avx2, dev4);
    }
    for (int64_t k = 0; k <= n_buckets; k++) {
        counts[k] = tally[k].count;
        offsets[k] = tally[k].offset - (double)tally[k].count * (w->origin[k] - lo);
    }
    return (dev4[0] + dev4[1]) + (dev4[2] + dev4[3]);
}

/* Sort the c values of one bucket, all in about [lo, hi): distributed first into c equal
 * slots of the range by a counting sort (a bucket's values are spread fairly evenly over it),
 * then an insertion sort finishes the nearly sorted run (and puts right any value the map's
 * rounding left a hair outside); over FE_DIST_MAX values, or a zero range, the introsort */
#define FE_DIST_MAX 512
static void fe_sort_bucket(double *a, int64_t c, double lo, double hi) {
    if (c > FE_DIST_MAX || !(hi > lo)) {
        fe_sort_f64(a, c);
        return;
    }
    double tmp[FE_DIST_MAX];
    int32_t slot_of[FE_DIST_MAX], start[FE_DIST_MAX + 1];
    const double per = (double)c / (hi - lo);
    memset(start, 0, (c + 1) * sizeof(int32_t));
    for (int64_t i = 0; i < c; i++) {
        int64_t s = (int64_t)((a[i] - lo) * per);
        s = s < 0 ? 0 : (s > c - 1 ? c - 1 : s);
        slot_of[i] = (int32_t)s;
        start[s + 1]++;
        tmp[i] = a[i];
    }
    for (int64_t s = 0; s < c; s++) start[s + 1] += start[s];
    for (int64_t i = 0; i < c; i++) a[start[slot_of[i]]++] = tmp[i];
    fe_insertion_f64(a, c);
}

static void fe_gather(const double *x, int64_t n, const uint16_t *ids, const uint8_t *flag,
                      const int64_t *start, int64_t n_buckets, const double *lower,
                      const double *upper, int64_t *fill, int64_t *picked, int64_t block,
                      double *run) {
    memcpy(fill, start, n_buckets * sizeof(int64_t));
    for (int64_t begin = 0; begin < n; begin += block) {
        const int64_t end = n < begin + block ? n : begin + block;
        int64_t m = 0;
        for (int64_t i = begin; i < end; i++) {
            picked[m] = i;
            m += flag[ids[i]];
        }
        for (int64_t t = 0; t < m; t++) {
            const int64_t i = picked[t];
            const uint16_t k = ids[i];
            run[fill[k]++] = x[i];
        }
    }
    for (int64_t k = 0; k < n_buckets; k++)
        if (flag[k] && fill[k] - start[k] > 1)
            fe_sort_bucket(run + start[k], fill[k] - start[k], lower[k], upper[k]);
}

/* integral of |G| over [lo, hi) and the largest |G| after a run of equal values, in a bucket
 * whose sorted values are sa (reference) and sb (current), G starting at g0. One value a step,
 * chosen without a data-dependent branch (the merge order of two random samples defeats branch
 * prediction); an equal value adds a zero-width piece to the integral, and |G| counts for the
 * maximum only once the next value differs: the same sums as walking runs of equal values. */
static void fe_exact_bucket(const double *sa, int64_t na, const double *sb, int64_t nb,
                            int64_t g0, int64_t ta, int64_t tb, double lo, double hi,
                            double *area_out, int64_t *top_out) {
    static const double none = INFINITY;  /* past a side's end: larger than every value */
    const double *ea = na ? sa : &none, *eb = nb ? sb : &none;
    int64_t i = 0, k = 0, g = g0, top = 0;
    double pos = lo, area = 0.0;
    double xa = na ? sa[0] : INFINITY, xb = nb ? sb[0] : INFINITY;
    for (int64_t step = 0; step < na + nb; step++) {
        const int take_a = xa <= xb;
        const double x = take_a ? xa : xb;
        const double at = fmin(fmax(x, pos), hi);  /* the map's rounding may put x a hair out */
        area += fabs((double)g) * (at - pos);
        pos = at;
        g += take_a ? tb : -ta;
        i += take_a;
        k += 1 - take_a;
        xa = i < na ? ea[i < na ? i : 0] : INFINITY;
        xb = k < nb ? eb[k < nb ? k : 0] : INFINITY;
        const int64_t mag = fe_abs_i64(g);
        top = (fmin(xa, xb) != x && mag > top) ? mag : top;
    }
    area += fabs((double)g) * (hi - pos);
    *area_out = area;
    *top_out = top;
}

/* Jensen-Shannon distance (natural log) of two proportion vectors, as scipy computes it */
static double fe_js_distance(const double *p, const double *q, int64_t n) {
    double sp = 0.0, sq = 0.0, left = 0.0, right = 0.0;
    for (int64_t i = 0; i < n; i++) { sp += p[i]; sq += q[i]; }
    for (int64_t i = 0; i < n; i++) {
        const double pi = p[i] / sp, qi = q[i] / sq, m = (pi + qi) / 2.0;
        if (pi > 0.0) left += pi * log(pi / m);
        if (qi > 0.0) right += qi * log(qi / m);
    }
    return sqrt((left + right) / 2.0);
}

/* Population stability index sum((q - p) ln(q / p)), zero proportions replaced by eps */
static double fe_psi(const double *p, const double *q, int64_t n, double eps) {
    double total = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const double a = p[i] > 0.0 ? p[i] : eps, b = q[i] > 0.0 ? q[i] : eps;
        total += (b - a) * log(b / a);
    }
    return total;
}

#include "drift_column.h"

#endif
