/* Bandit decisions in C, compiled at build time (included by decide_native.pyx and
 * serve_native.pyx; see kernels/bandits/decide.py for the policy model and the guarantees).
 *
 * Why C: the Numba kernels of the same code cost ~40 s of CPU of JIT compilation on a cold
 * first call (issue #11); compiled ahead of time they cost nothing. The arithmetic is exactly
 * that of the Numba kernels they replace (session 8), operation by operation:
 *  - every sum adds its terms in index order (means: base_mean + theta_0 x_0 + theta_1 x_1 ...;
 *    widths: base_var + z_0^2 + z_1^2 ..., z_i = L_i0 x_0 + L_i1 x_1 ...), whether a row is
 *    decided in a block (rows innermost, SIMD across rows) or alone (decide_one);
 *  - no a * b + c is fused (fp-contract off below; the AVX2 clone has no FMA anyway);
 *  - the random streams (decide_rng.h) are the counter-based splitmix64 streams of the former
 *    rng.py in uint64, and the normal/gamma/beta samplers call the same libm log/cos/pow, so
 *    draws are bit-identical.
 * So decisions and propensities equal the former kernels' bit for bit (checked on many seeds
 * before those were removed) and do not depend on the thread count or on the block a row is in.
 * One deliberate change: a NaN score (inf - inf when finite features overflow the means) now
 * counts as -inf, and such rows compute every width; before, an all-eligible UCB row could
 * get another arm from decide_one than from decide with an eligibility mask.
 */
#ifndef FE_DECIDE_CORE_H
#define FE_DECIDE_CORE_H
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/atomic.h"
#include <stdlib.h>
#include <string.h>

#pragma GCC optimize("fp-contract=off")

#if defined(__x86_64__) && defined(__has_attribute)
#  if __has_attribute(target_clones)
#    define FE_BD_CLONES __attribute__((target_clones("avx2", "default")))
#  endif
#endif
#ifndef FE_BD_CLONES
#  define FE_BD_CLONES
#endif
#define FE_BD_INLINE static inline __attribute__((always_inline))

enum { FE_GREEDY = 0, FE_UCB = 1, FE_GAUSS_TS = 2, FE_BETA_TS = 3 };

#include "decide_rng.h"

/* -- what a decision reads ---------------------------------------------------------------- */
typedef struct {
    const double *theta;      /* K x d */
    const double *L_inv;      /* K x d x d: inverse Cholesky factors */
    const double *base_mean;  /* K */
    const double *base_var;   /* K */
    const double *bounds;     /* 4 x K: ub0, ub1, lb0, lb1 (rows K apart) */
    const double *beta_a;     /* K */
    const double *beta_b;     /* K */
    double scale, epsilon, slack;
    int64_t K, d, kind, draws, rowwise_below;
    uint64_t seed;
} fe_policy;

/* Outputs of a batch, indexed by the batch's row; mean/dist NULL when not wanted. */
typedef struct {
    int64_t *arm;
    double *prop;
    double *mean;  /* n x K */
    double *dist;  /* n x K */
} fe_outputs;

/* Scratch for a block of B rows (one allocation; see fe_scratch_doubles/ints). */
typedef struct {
    double *M, *W, *XG;                                 /* K x B, K x B, d x B */
    double *z, *norm, *best, *wg, *thr, *cnt;           /* B each */
    double *score, *dist, *mrow, *wrow;                 /* K each */
    int64_t *rows, *top, *opened;                       /* B each */
    int64_t B;
} fe_scratch;

static inline size_t fe_scratch_doubles(int64_t d, int64_t K, int64_t B) {
    return (size_t)(2 * K * B + d * B + 6 * B + 4 * K);
}

static inline void fe_scratch_bind(fe_scratch *s, double *buf, int64_t *ints, int64_t d,
                                   int64_t K, int64_t B) {
    s->B = B;
    s->M = buf; buf += K * B;
    s->W = buf; buf += K * B;
    s->XG = buf; buf += d * B;
    s->z = buf; buf += B;
    s->norm = buf; buf += B;
    s->best = buf; buf += B;
    s->wg = buf; buf += B;
    s->thr = buf; buf += B;
    s->cnt = buf; buf += B;
    s->score = buf; buf += K;
    s->dist = buf; buf += K;
    s->mrow = buf; buf += K;
    s->wrow = buf;
    s->rows = ints;
    s->top = ints + B;
    s->opened = ints + 2 * B;
}

/* -- per-arm numbers of a block of rows (x_r = XC[j * ld + r]) ------------------------------ */

/* dst[r] += coef[j] * X[j * ld + r] for j < count, in the order of j, four columns a pass
 * (the same rounding as one column a pass, a quarter of the loads and stores of dst). */
FE_BD_INLINE void fe_accumulate(double *restrict dst, const double *restrict coef,
                                int64_t count, const double *restrict X, ptrdiff_t ld,
                                int64_t m) {
    int64_t j = 0;
    for (; j + 4 <= count; j += 4) {
        const double t0 = coef[j], t1 = coef[j + 1], t2 = coef[j + 2], t3 = coef[j + 3];
        const double *s0 = X + j * ld, *s1 = s0 + ld, *s2 = s1 + ld, *s3 = s2 + ld;
        for (int64_t r = 0; r < m; r++)
            dst[r] = (((dst[r] + t0 * s0[r]) + t1 * s1[r]) + t2 * s2[r]) + t3 * s3[r];
    }
    for (; j < count; j++) {
        const double t = coef[j];
        const double *s = X + j * ld;
        for (int64_t r = 0; r < m; r++) dst[r] += t * s[r];
    }
}

/* M[a * ldM + r] = base_mean[a] + theta[a] . x_r */
FE_BD_INLINE void fe_arm_means(const double *XC, ptrdiff_t ld, int64_t m, const fe_policy *p,
                               double *M, ptrdiff_t ldM) {
    const int64_t K = p->K, d = p->d;
    if (m < p->rowwise_below) {
        for (int64_t r = 0; r < m; r++)
            for (int64_t a = 0; a < K; a++) {
                double s = p->base_mean[a];
                const double *th = p->theta + a * d;
                for (int64_t j = 0; j < d; j++) s += th[j] * XC[j * ld + r];
                M[a * ldM + r] = s;
            }
        return;
    }
    for (int64_t a = 0; a < K; a++) {
        double *Ma = M + a * ldM;
        for (int64_t r = 0; r < m; r++) Ma[r] = p->base_mean[a];
        fe_accumulate(Ma, p->theta + a * d, d, XC, ld, m);
    }
}

/* W[r] = scale * sqrt(base_var + |L x_r|^2) (L = one arm's L_inv, d x d lower triangular). */
FE_BD_INLINE void fe_arm_widths(const double *XC, ptrdiff_t ld, int64_t m, int64_t d,
                                const double *L, double base_var, double scale, double *z,
                                double *W, int64_t rowwise_below) {
    for (int64_t r = 0; r < m; r++) W[r] = base_var;
    if (m < rowwise_below) {
        for (int64_t r = 0; r < m; r++)
            for (int64_t i = 0; i < d; i++) {
                double zr = 0.0;
                for (int64_t j = 0; j <= i; j++) zr += L[i * d + j] * XC[j * ld + r];
                W[r] += zr * zr;
            }
    } else {
        for (int64_t i = 0; i < d; i++) {
            for (int64_t r = 0; r < m; r++) z[r] = 0.0;
            fe_accumulate(z, L + i * d, i + 1, XC, ld, m);
            for (int64_t r = 0; r < m; r++) W[r] += z[r] * z[r];
        }
    }
    for (int64_t r = 0; r < m; r++) {
        const double q = W[r];
        if (q != INFINITY) W[r] = q > 0.0 ? scale * sqrt(q) : 0.0;
    }
}

/* -- one row's choice --------------------------------------------------------------------- */
/* A NaN score (inf - inf after an overflow of finite features) can never be the best arm. */
FE_BD_INLINE double fe_not_nan(double s) {
    return s == s ? s : -INFINITY;
}


/* One Thompson draw of every eligible arm's score; returns the argmax (first of equals). */
FE_BD_INLINE int64_t fe_sample_scores(uint64_t *state, const uint8_t *elig, const fe_policy *p,
                                      const double *mean, const double *width, double *score) {
    double best = -INFINITY;
    int64_t arm = -1;
    for (int64_t a = 0; a < p->K; a++) {
        if (!elig[a]) continue;
        double s;
        if (p->kind == FE_BETA_TS) {
            s = fe_next_beta(state, p->beta_a[a], p->beta_b[a]);
        } else {
            double z = fe_next_normal(state);
            s = mean[a] + width[a] * z;
        }
        score[a] = s;
        if (arm < 0 || s > best) {
            best = s;
            arm = a;
        }
    }
    return arm;
}

/* Decide one row from its arms' mean and width (mean is overwritten by the Beta means for
 * BETA_TS); dist receives every arm's probability. Returns the arm (-1: none eligible). */
__attribute__((unused))
static int64_t fe_choose(const uint8_t *elig, double *mean, const double *width,
                         const fe_policy *p, int64_t row, double *score, double *dist,
                         double *prop) {
    const int64_t K = p->K, kind = p->kind;
    int64_t n_elig = 0;
    for (int64_t a = 0; a < K; a++) {
        dist[a] = 0.0;
        if (elig[a]) n_elig++;
    }
    if (n_elig == 0) {
        *prop = NAN;
        return -1;
    }
    if (kind == FE_BETA_TS)
        for (int64_t a = 0; a < K; a++)
            if (elig[a]) mean[a] = p->beta_a[a] / (p->beta_a[a] + p->beta_b[a]);
    if (kind == FE_GREEDY || kind == FE_UCB) {
        double best = -INFINITY;
        int64_t n_best = 0;
        for (int64_t a = 0; a < K; a++) {
            if (!elig[a]) continue;
            const double s = fe_not_nan(kind == FE_UCB ? mean[a] + width[a] : mean[a]);
            score[a] = s;
            if (n_best == 0 || s > best) {
                best = s;
                n_best = 1;
            } else if (s == best) {
                n_best++;
            }
        }
        const double eps = kind == FE_GREEDY ? p->epsilon : 0.0;
        int explore = 0;
        int64_t k = 0;
        if (eps > 0.0 || n_best > 1) {  /* else the draw could only say 0: skip the stream */
            uint64_t state = fe_stream_base(p->seed, (uint64_t)row);
            if (eps > 0.0) explore = fe_next_uniform(&state) < eps;
            k = fe_next_index(&state, explore ? n_elig : n_best);
        }
        int64_t chosen = -1;
        for (int64_t a = 0; a < K; a++) {
            if (!elig[a]) continue;
            const int is_best = score[a] == best;
            dist[a] = eps / (double)n_elig + (is_best ? (1.0 - eps) / (double)n_best : 0.0);
            if (explore || is_best) {
                if (k == 0 && chosen < 0) chosen = a;
                k--;
            }
        }
        *prop = dist[chosen];
        return chosen;
    }
    uint64_t state = fe_stream_base(p->seed, (uint64_t)row);
    const int64_t chosen = fe_sample_scores(&state, elig, p, mean, width, score);
    dist[chosen] += 1.0;
    for (int64_t t = 0; t < p->draws; t++) {
        const int64_t other = fe_sample_scores(&state, elig, p, mean, width, score);
        dist[other] += 1.0;
    }
    const double total = (double)p->draws + 1.0;
    for (int64_t a = 0; a < K; a++) dist[a] /= total;
    *prop = dist[chosen];
    return chosen;
}

/* -- pruning of UCB widths (decide.py: ucb_contenders, open_widths) ------------------------ */

/* Whether an arm with this mean and width bound ub could reach the row's threshold thr (the
 * least score the row's top-mean arm can have, minus slack). Written as "not below" so that a
 * NaN (infinite means after an overflow) counts as a possible winner: such rows then compute
 * every width, as the full computation does. */
FE_BD_INLINE int fe_may_win(double mean, double ub, double thr, double slack) {
    return !((mean + ub) + slack * (fabs(mean) + ub) < thr);
}


FE_BD_INLINE void fe_ucb_contenders(const double *XC, ptrdiff_t ld, int64_t m,
                                    const fe_policy *p, fe_scratch *s) {
    const int64_t K = p->K, d = p->d;
    const ptrdiff_t B = s->B;
    double *norm = s->norm, *best = s->best, *thr = s->thr, *cnt = s->cnt;
    int64_t *top = s->top;
    const double *bounds = p->bounds;
    for (int64_t k = 0; k < m; k++) norm[k] = 0.0;
    for (int64_t j = 0; j < d; j++) {
        const double *x = XC + j * ld;
        for (int64_t k = 0; k < m; k++) norm[k] += x[k] * x[k];
    }
    for (int64_t k = 0; k < m; k++) {
        norm[k] = sqrt(norm[k]);
        best[k] = s->M[k];
        top[k] = 0;
    }
    for (int64_t a = 1; a < K; a++) {
        const double *Ma = s->M + a * B;
        for (int64_t k = 0; k < m; k++) {
            const int higher = Ma[k] > best[k];
            top[k] = higher ? a : top[k];
            best[k] = higher ? Ma[k] : best[k];
        }
    }
    for (int64_t k = 0; k < m; k++) {
        const int64_t t = top[k];
        const double l0 = bounds[2 * K + t], l1 = bounds[3 * K + t] * norm[k];
        /* Numba's max(a, b): b when b > a, else a */
        const double lb = l1 > l0 ? l1 : l0;
        thr[k] = (best[k] + lb) - p->slack * (fabs(best[k]) + lb);
        cnt[k] = 0.0;
    }
    for (int64_t a = 0; a < K; a++) {
        const double u0 = bounds[a], u1 = bounds[K + a];
        const double *Ma = s->M + a * B;
        for (int64_t k = 0; k < m; k++) {
            const int rival = (top[k] != a) & fe_may_win(Ma[k], u0 + u1 * norm[k], thr[k],
                                                         p->slack);
            cnt[k] += rival ? 1.0 : 0.0;
        }
    }
}

FE_BD_INLINE void fe_open_widths(const double *XC, ptrdiff_t ld, int64_t n_open,
                                 const fe_policy *p, fe_scratch *s) {
    const int64_t K = p->K, d = p->d;
    const ptrdiff_t B = s->B;
    const double *bounds = p->bounds;
    for (int64_t a = 0; a < K; a++) {
        const double u0 = bounds[a], u1 = bounds[K + a];
        double *Wa = s->W + a * B;
        const double *Ma = s->M + a * B;
        int64_t count = 0;
        for (int64_t c = 0; c < n_open; c++) {
            const int64_t k = s->opened[c];
            Wa[k] = -INFINITY;
            if (s->top[k] == a || fe_may_win(Ma[k], u0 + u1 * s->norm[k], s->thr[k], p->slack))
                s->rows[count++] = k;
        }
        if (count == 0) continue;
        for (int64_t j = 0; j < d; j++) {
            const double *src = XC + j * ld;
            double *dst = s->XG + j * B;
            for (int64_t c = 0; c < count; c++) dst[c] = src[s->rows[c]];
        }
        fe_arm_widths(s->XG, B, count, d, p->L_inv + a * d * d, p->base_var[a], p->scale, s->z,
                      s->wg, p->rowwise_below);
        for (int64_t c = 0; c < count; c++) Wa[s->rows[c]] = s->wg[c];
    }
}

/* -- a block of rows ---------------------------------------------------------------------- */

/* Row i of the outputs (column k of the block) through fe_choose. */
FE_BD_INLINE void fe_decide_row(int64_t i, int64_t k, const uint8_t *elig, const fe_policy *p,
                                fe_scratch *s, int64_t row, const fe_outputs *out) {
    const int64_t K = p->K;
    const ptrdiff_t B = s->B;
    for (int64_t a = 0; a < K; a++) {
        s->mrow[a] = s->M[a * B + k];
        s->wrow[a] = s->W[a * B + k];
    }
    double prop;
    out->arm[i] = fe_choose(elig, s->mrow, s->wrow, p, row, s->score, s->dist, &prop);
    out->prop[i] = prop;
    if (out->mean)
        for (int64_t a = 0; a < K; a++) out->mean[i * K + a] = elig[a] ? s->mrow[a] : NAN;
    if (out->dist)
        for (int64_t a = 0; a < K; a++) out->dist[i * K + a] = s->dist[a];
}

/* Row i goes to its unique best arm a with probability 1 (every arm eligible). */
FE_BD_INLINE void fe_decided(int64_t i, int64_t k, int64_t a, const fe_policy *p,
                             const fe_scratch *s, const fe_outputs *out) {
    const int64_t K = p->K;
    out->arm[i] = a;
    out->prop[i] = 1.0;
    if (out->mean)
        for (int64_t b = 0; b < K; b++) out->mean[i * K + b] = s->M[b * s->B + k];
    if (out->dist) {
        for (int64_t b = 0; b < K; b++) out->dist[i * K + b] = 0.0;
        out->dist[i * K + a] = 1.0;
    }
}

/* Decide rows 0..m-1 of the block XC (x_r = XC[j * ld + r]); they are rows i0.. of the outputs
 * and rows row0.. of the random streams; mask NULL (every arm eligible) or m x K. prune: UCB
 * with every arm eligible (see decide.py). Returns how many rows have a non-finite first mean.
 * The structure (and so every decision) is that of decide.py's decide_block. */
FE_BD_CLONES
static int64_t fe_decide_block(const double *XC, ptrdiff_t ld, int64_t m, const uint8_t *mask,
                               const fe_policy *p, int prune, const uint8_t *everyone,
                               fe_scratch *s, int64_t i0, int64_t row0, const fe_outputs *out) {
    const int64_t K = p->K, d = p->d;
    const ptrdiff_t B = s->B;
    fe_arm_means(XC, ld, m, p, s->M, B);
    int64_t n_bad = 0;
    if (d > 0)
        for (int64_t k = 0; k < m; k++) n_bad += (s->M[k] - s->M[k] == 0.0) ? 0 : 1;
    if (prune && d > 0 && p->scale > 0.0) {
        fe_ucb_contenders(XC, ld, m, p, s);
        int64_t n_open = 0;
        for (int64_t k = 0; k < m; k++) {
            if (s->cnt[k] > 0.0)
                s->opened[n_open++] = k;
            else
                fe_decided(i0 + k, k, s->top[k], p, s, out);
        }
        fe_open_widths(XC, ld, n_open, p, s);
        for (int64_t c = 0; c < n_open; c++) {
            const int64_t k = s->opened[c];
            fe_decide_row(i0 + k, k, everyone, p, s, row0 + k, out);
        }
        return n_bad;
    }
    for (int64_t a = 0; a < K; a++) {
        double *Wa = s->W + a * B;
        if (d == 0 || p->scale == 0.0) {
            const double v = p->base_var[a];
            const double w = v == INFINITY ? INFINITY : (v > 0.0 ? p->scale * sqrt(v) : 0.0);
            for (int64_t k = 0; k < m; k++) Wa[k] = w;
        } else {
            fe_arm_widths(XC, ld, m, d, p->L_inv + a * d * d, p->base_var[a], p->scale, s->z,
                          Wa, p->rowwise_below);
        }
    }
    const int direct = (p->kind == FE_UCB || (p->kind == FE_GREEDY && p->epsilon == 0.0))
                       && mask == NULL;
    double *best = s->best, *ties = s->norm;
    int64_t *arg = s->rows;
    if (direct) {
        const int ucb = p->kind == FE_UCB;
        for (int64_t k = 0; k < m; k++) {
            best[k] = fe_not_nan(ucb ? s->M[k] + s->W[k] : s->M[k]);
            arg[k] = 0;
            ties[k] = 1.0;  /* the number of arms tied at the best */
        }
        for (int64_t a = 1; a < K; a++) {
            const double *Ma = s->M + a * B, *Wa = s->W + a * B;
            for (int64_t k = 0; k < m; k++) {
                const double sc = fe_not_nan(ucb ? Ma[k] + Wa[k] : Ma[k]);
                const int higher = sc > best[k];
                ties[k] = higher ? 1.0 : (sc == best[k] ? ties[k] + 1.0 : ties[k]);
                arg[k] = higher ? a : arg[k];
                best[k] = higher ? sc : best[k];
            }
        }
    }
    for (int64_t k = 0; k < m; k++) {
        if (direct && ties[k] == 1.0)
            fe_decided(i0 + k, k, arg[k], p, s, out);
        else
            fe_decide_row(i0 + k, k, mask ? mask + k * K : everyone, p, s, row0 + k, out);
    }
    return n_bad;
}

/* -- one decision (decide_one) ------------------------------------------------------------ */

/* The policy of a server: arm_params (8 x K) stacks base_mean, base_var, the four width
 * bounds, beta_a, beta_b (serve_native.pyx binds it once per snapshot). */
static inline fe_policy fe_policy_of_params(const double *theta, const double *L_inv,
                                            const double *arm_params, int64_t K, int64_t d,
                                            double scale, int64_t kind, double epsilon,
                                            double slack, int64_t draws, int64_t rowwise_below,
                                            uint64_t seed) {
    fe_policy p = {theta, L_inv, arm_params, arm_params + K, arm_params + 2 * K,
                   arm_params + 6 * K, arm_params + 7 * K, scale, epsilon, slack,
                   K, d, kind, draws, rowwise_below, seed};
    return p;
}

/* The decision of one row x (d values) with eligibility elig (K values) as row `row` of the
 * stream of `seed`: exactly row `row` of a batch. arm_params (8 x K) stacks base_mean,
 * base_var, the four width bounds, beta_a, beta_b. Returns the arm, -1 when none is eligible,
 * -2 when x holds NaN or infinity, -4 when scratch memory cannot be allocated; *prop receives
 * the propensity. Needs no GIL and keeps no state: safe from any number of threads. */
__attribute__((unused))
static int64_t fe_decide_single(const double *x, const uint8_t *elig, const double *theta,
                                const double *L_inv, const double *arm_params, int64_t K,
                                int64_t d, double scale, int64_t kind, double epsilon,
                                uint64_t seed, int64_t row, int64_t draws, double slack,
                                int64_t rowwise_below, double *prop) {
    for (int64_t j = 0; j < d; j++)
        if (!isfinite(x[j])) {
            *prop = NAN;
            return -2;
        }
    int prune = kind == FE_UCB;
    for (int64_t a = 0; a < K; a++) prune = prune && elig[a] != 0;
    const fe_policy p = fe_policy_of_params(theta, L_inv, arm_params, K, d, scale, kind,
                                            epsilon, slack, draws, rowwise_below, seed);
    /* small models: scratch on the stack (no allocator call in a ~1 us decision) */
    double local[512];
    int64_t ints[3];
    const size_t need = fe_scratch_doubles(d, K, 1);
    double *buf = need <= 512 ? local : (double *)malloc(need * sizeof(double));
    if (buf == NULL) {
        *prop = NAN;
        return -4;
    }
    fe_scratch s;
    fe_scratch_bind(&s, buf, ints, d, K, 1);
    int64_t arm;
    fe_outputs out = {&arm, prop, NULL, NULL};
    fe_decide_block(x, 1, 1, elig, &p, prune, elig, &s, 0, row, &out);
    if (buf != local) free(buf);
    return arm;
}


/* -- a few rows from a service (decide_rows) ---------------------------------------------- */

/* Rows 0..m-1 of the row-major m x d matrix X, decided as rows row0.. of the stream of `seed`
 * (exactly decide's rows: the same blocks of the same code, transposed FE_SERVE_BLOCK rows at a
 * time); mask NULL (every arm eligible) or m x K; arm_params and the rest as fe_decide_single.
 * Returns how many rows have a non-finite first mean (the caller then checks X), or -4 when
 * scratch memory cannot be allocated. No GIL, no state. */
#define FE_SERVE_BLOCK 256
__attribute__((unused))
static int64_t fe_decide_matrix(const double *X, int64_t m, const uint8_t *mask,
                                const double *theta, const double *L_inv,
                                const double *arm_params, const uint8_t *everyone, int64_t K,
                                int64_t d, double scale, int64_t kind, double epsilon,
                                uint64_t seed, int64_t row0, int64_t draws, double slack,
                                int64_t rowwise_below, int64_t *arms, double *props) {
    if (m <= 0) return 0;
    const int64_t B = m < FE_SERVE_BLOCK ? m : FE_SERVE_BLOCK;
    double *buf = (double *)malloc((fe_scratch_doubles(d, K, B) + (size_t)(d * B))
                                   * sizeof(double));
    int64_t *ints = (int64_t *)malloc((size_t)(3 * B) * sizeof(int64_t));
    if (buf == NULL || ints == NULL) {
        free(buf);
        free(ints);
        return -4;
    }
    const fe_policy p = fe_policy_of_params(theta, L_inv, arm_params, K, d, scale, kind,
                                            epsilon, slack, draws, rowwise_below, seed);
    fe_scratch s;
    fe_scratch_bind(&s, buf, ints, d, K, B);
    double *XC = buf + fe_scratch_doubles(d, K, B);
    fe_outputs out = {arms, props, NULL, NULL};
    const int prune = kind == FE_UCB && mask == NULL;
    int64_t n_bad = 0;
    for (int64_t lo = 0; lo < m; lo += B) {
        const int64_t rows = m - lo < B ? m - lo : B;
        for (int64_t r = 0; r < rows; r++)
            for (int64_t j = 0; j < d; j++) XC[j * B + r] = X[(lo + r) * d + j];
        n_bad += fe_decide_block(XC, B, rows, mask ? mask + lo * K : NULL, &p, prune, everyone,
                                 &s, lo, row0 + lo, &out);
    }
    free(buf);
    free(ints);
    return n_bad;
}


#endif
