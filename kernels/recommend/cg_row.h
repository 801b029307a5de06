/* One row of an ALS conjugate-gradient half-step, in C with GCC/Clang vector extensions
 * (included by fit_native.pyx; see kernels/recommend/als.py for the equations).
 *
 * Why C and not the Cython loops it replaces: the length-f loops must run on full-width SIMD
 * without reassociating any sum (same bits on every machine and thread count). Written with
 * vector types, every sum is lane by lane in a fixed order; `FE_CLONES` then compiles the row
 * for AVX2 and for baseline x86-64 and picks one at load time (the AVX2 build is 2x faster on
 * this kernel and no less exact: both do the same operations; neither target has FMA, so no
 * a * b + c is contracted).
 *
 * Summation order, shared by every path: a dot product of length f sums eight lanes
 * (lane t takes elements t, t+8, ...), then ((l0+l1)+(l2+l3))+((l4+l5)+(l6+l7)), then the
 * f % 8 tail in order. Additions into an output vector keep entry order.
 */
#ifndef FE_CG_ROW_H
#define FE_CG_ROW_H
#include <stddef.h>
#include <stdint.h>

#if defined(__x86_64__) && defined(__has_attribute)
#  if __has_attribute(target_clones)
#    define FE_CLONES __attribute__((target_clones("avx2", "default")))
#  endif
#endif
#ifndef FE_CLONES
#  define FE_CLONES
#endif
/* helpers are forced inline, so that each clone of the row solver compiles them for its target */
#define FE_INLINE static inline __attribute__((always_inline))

#define FE_CG_ROW(T, SUF)                                                                       \
typedef T fe_v8_##SUF __attribute__((vector_size(8 * sizeof(T)), aligned(sizeof(T))));        \
                                                                                                \
FE_INLINE T fe_hsum_##SUF(fe_v8_##SUF a) {                                                  \
    return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));                   \
}                                                                                               \
                                                                                                \
FE_INLINE T fe_dot_##SUF(const T *a, const T *b, ptrdiff_t f) {                             \
    const ptrdiff_t f8 = f - f % 8;                                                             \
    fe_v8_##SUF acc = {0};                                                                      \
    for (ptrdiff_t j = 0; j < f8; j += 8)                                                       \
        acc += *(const fe_v8_##SUF *)(a + j) * *(const fe_v8_##SUF *)(b + j);                   \
    T s = fe_hsum_##SUF(acc);                                                                   \
    for (ptrdiff_t j = f8; j < f; j++) s += a[j] * b[j];                                        \
    return s;                                                                                   \
}                                                                                               \
                                                                                                \
/* out = A v for symmetric A, column by column: out[a] sums v[b] A[b, a] in b order */          \
FE_INLINE void fe_symv_##SUF(const T *A, const T *v, T *out, ptrdiff_t f) {                 \
    const ptrdiff_t f8 = f - f % 8;                                                             \
    for (ptrdiff_t a = 0; a < f; a++) out[a] = 0;                                               \
    for (ptrdiff_t b = 0; b < f; b++) {                                                         \
        const T vb = v[b];                                                                      \
        const T *col = A + b * f;                                                               \
        ptrdiff_t a = 0;                                                                        \
        for (; a < f8; a += 8)                                                                  \
            *(fe_v8_##SUF *)(out + a) += vb * *(const fe_v8_##SUF *)(col + a);                  \
        for (; a < f; a++) out[a] += vb * col[a];                                               \
    }                                                                                           \
}                                                                                               \
                                                                                                \
FE_INLINE T fe_weight_##SUF(T c, T d, int residual) {                                       \
    return residual ? c - (c - 1) * d : (c - 1) * d;                                            \
}                                                                                               \
                                                                                                \
/* out[j] += w0 r0[j], then w1 r1[j], w2 r2[j], w3 r3[j]: four rows added in order, one load   \
 * and one store of `out` per eight lanes */                                                    \
FE_INLINE void fe_axpy4_##SUF(T *out, const T *r0, const T *r1, const T *r2, const T *r3,       \
                              T w0, T w1, T w2, T w3, ptrdiff_t f) {                            \
    const ptrdiff_t f8 = f - f % 8;                                                             \
    ptrdiff_t j = 0;                                                                            \
    for (; j < f8; j += 8) {                                                                    \
        fe_v8_##SUF o = *(fe_v8_##SUF *)(out + j);                                              \
        o += w0 * *(const fe_v8_##SUF *)(r0 + j);                                               \
        o += w1 * *(const fe_v8_##SUF *)(r1 + j);                                               \
        o += w2 * *(const fe_v8_##SUF *)(r2 + j);                                               \
        o += w3 * *(const fe_v8_##SUF *)(r3 + j);                                               \
        *(fe_v8_##SUF *)(out + j) = o;                                                          \
    }                                                                                           \
    for (; j < f; j++) {                                                                        \
        T o = out[j];                                                                           \
        o += w0 * r0[j];                                                                        \
        o += w1 * r1[j];                                                                        \
        o += w2 * r2[j];                                                                        \
        o += w3 * r3[j];                                                                        \
        out[j] = o;                                                                             \
    }                                                                                           \
}                                                                                               \
                                                                                                \
/* out += sum_k w_k y_k over the row's entries, w_k = (c_k - 1)(y_k . v), or with `residual`   \
 * w_k = c_k - (c_k - 1)(y_k . v). Four entries at a time, so that four dot products' chains   \
 * overlap; each is still summed as fe_dot sums it and `out` takes them in entry order. */      \
FE_INLINE void fe_sparse_apply_##SUF(const T *Y, const int64_t *idx, const T *conf,         \
                                         int64_t start, int64_t end, const T *v, T *out,        \
                                         ptrdiff_t f, int residual) {                           \
    const ptrdiff_t f8 = f - f % 8;                                                             \
    int64_t k = start;                                                                          \
    for (; k + 4 <= end; k += 4) {                                                              \
        const T *r0 = Y + idx[k] * f, *r1 = Y + idx[k + 1] * f;                                 \
        const T *r2 = Y + idx[k + 2] * f, *r3 = Y + idx[k + 3] * f;                             \
        fe_v8_##SUF a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};                                    \
        for (ptrdiff_t j = 0; j < f8; j += 8) {                                                 \
            const fe_v8_##SUF vv = *(const fe_v8_##SUF *)(v + j);                               \
            a0 += *(const fe_v8_##SUF *)(r0 + j) * vv;                                          \
            a1 += *(const fe_v8_##SUF *)(r1 + j) * vv;                                          \
            a2 += *(const fe_v8_##SUF *)(r2 + j) * vv;                                          \
            a3 += *(const fe_v8_##SUF *)(r3 + j) * vv;                                          \
        }                                                                                       \
        T d0 = fe_hsum_##SUF(a0), d1 = fe_hsum_##SUF(a1);                                      \
        T d2 = fe_hsum_##SUF(a2), d3 = fe_hsum_##SUF(a3);                                      \
        for (ptrdiff_t j = f8; j < f; j++) {                                                    \
            d0 += r0[j] * v[j];                                                                 \
            d1 += r1[j] * v[j];                                                                 \
            d2 += r2[j] * v[j];                                                                 \
            d3 += r3[j] * v[j];                                                                 \
        }                                                                                       \
        const T w0 = fe_weight_##SUF(conf[k], d0, residual);                                    \
        const T w1 = fe_weight_##SUF(conf[k + 1], d1, residual);                                \
        const T w2 = fe_weight_##SUF(conf[k + 2], d2, residual);                                \
        const T w3 = fe_weight_##SUF(conf[k + 3], d3, residual);                                \
        fe_axpy4_##SUF(out, r0, r1, r2, r3, w0, w1, w2, w3, f);                                 \
    }                                                                                           \
    for (; k < end; k++) {                                                                      \
        const T *r0 = Y + idx[k] * f;                                                           \
        const T w0 = fe_weight_##SUF(conf[k], fe_dot_##SUF(r0, v, f), residual);                \
        for (ptrdiff_t j = 0; j < f; j++) out[j] += w0 * r0[j];                                 \
    }                                                                                           \
}                                                                                               \
                                                                                                \
/* cg_steps conjugate-gradient steps on one row's normal equations, warm-started from Xu;     \
 * scratch holds 4 f values. */                                                                 \
FE_CLONES static void fe_cg_row_##SUF(T *Xu, const T *Y, const T *A0, const int64_t *idx,       \
                                      const T *conf, int64_t start, int64_t end, int cg_steps,  \
                                      T *scratch, ptrdiff_t f) {                                \
    T *x = scratch, *r = scratch + f, *p = scratch + 2 * f, *ap = scratch + 3 * f;              \
    if (start == end) { /* no interactions: the exact solution is 0 (b = 0), as implicit */     \
        for (ptrdiff_t a = 0; a < f; a++) Xu[a] = 0;                                            \
        return;                                                                                 \
    }                                                                                           \
    for (ptrdiff_t a = 0; a < f; a++) x[a] = Xu[a];                                             \
    fe_symv_##SUF(A0, x, r, f); /* r = b - A x, A = A0 + sum (c-1) y y^T, b = sum c y */        \
    for (ptrdiff_t a = 0; a < f; a++) r[a] = -r[a];                                             \
    fe_sparse_apply_##SUF(Y, idx, conf, start, end, x, r, f, 1);                                \
    for (ptrdiff_t a = 0; a < f; a++) p[a] = r[a];                                              \
    T rsold = fe_dot_##SUF(r, r, f);                                                            \
    if ((double)rsold >= 1e-20) {                                                                  \
        for (int step = 0; step < cg_steps; step++) {                                           \
            fe_symv_##SUF(A0, p, ap, f);                                                        \
            fe_sparse_apply_##SUF(Y, idx, conf, start, end, p, ap, f, 0);                       \
            const T alpha = rsold / fe_dot_##SUF(p, ap, f);                                     \
            for (ptrdiff_t a = 0; a < f; a++) {                                                 \
                x[a] += alpha * p[a];                                                           \
                r[a] -= alpha * ap[a];                                                          \
            }                                                                                   \
            const T rsnew = fe_dot_##SUF(r, r, f);                                              \
            if ((double)rsnew < 1e-20) break;                                                      \
            const T beta = rsnew / rsold;                                                       \
            for (ptrdiff_t a = 0; a < f; a++) p[a] = r[a] + beta * p[a];                        \
            rsold = rsnew;                                                                      \
        }                                                                                       \
    }                                                                                           \
    for (ptrdiff_t a = 0; a < f; a++) Xu[a] = x[a];                                             \
}

FE_CG_ROW(float, f32)
FE_CG_ROW(double, f64)

/* G += Y^T Y over rows [start, end) of Y (n x f, row-major), in double: each product of two
 * stored values is exact in double and G[a][b] adds them in row order, four rows per pass over G
 * (fewer loads and stores of G; the order of the additions is unchanged). G is f x f. */

#define FE_GRAM(T, SUF)                                                                         \
FE_CLONES static void fe_gram_##SUF(const T *Y, int64_t start, int64_t end, ptrdiff_t f,        \
                                    double *G, double *rows) {                                  \
    /* rows: scratch of 4 f doubles (four rows converted to double) */                         \
    int64_t i = start;                                                                          \
    for (; i + 4 <= end; i += 4) {                                                              \
        for (ptrdiff_t t = 0; t < 4; t++)                                                       \
            for (ptrdiff_t a = 0; a < f; a++) rows[t * f + a] = (double)Y[(i + t) * f + a];     \
        const double *y0 = rows, *y1 = rows + f, *y2 = rows + 2 * f, *y3 = rows + 3 * f;        \
        for (ptrdiff_t b = 0; b < f; b++)                                                       \
            fe_axpy4_f64(G + b * f, y0, y1, y2, y3, y0[b], y1[b], y2[b], y3[b], f);             \
    }                                                                                           \
    for (; i < end; i++) {                                                                      \
        for (ptrdiff_t a = 0; a < f; a++) rows[a] = (double)Y[i * f + a];                       \
        for (ptrdiff_t b = 0; b < f; b++)                                                       \
            for (ptrdiff_t a = 0; a < f; a++) G[b * f + a] += rows[b] * rows[a];                \
    }                                                                                           \
}

FE_GRAM(float, f32)
FE_GRAM(double, f64)

#endif
