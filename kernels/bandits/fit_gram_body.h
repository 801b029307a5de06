/* One target's body of the bandit fit task; included by fit_gram.h once per target with
 * FE_SUF (name suffix), FE_TARGET (function attribute), FE_W (doubles per vector) and FE_QG
 * (vectors per tile row) defined. No include guard: that is the point. See fit_gram.h. */
#define FE_CAT2(a, b) a##_##b
#define FE_CAT(a, b) FE_CAT2(a, b)
#define FE_FN(name) FE_CAT(name, FE_SUF)
#define FE_V FE_FN(fe_fit_vec)

typedef double FE_V __attribute__((vector_size(FE_W * sizeof(double)), aligned(sizeof(double))));

/* Rows p0 .. p0+3, columns q0 .. q0 + nq * FE_W of W (row stride ld) += x[p] x[q] summed over
 * the m rows x = xb + idx[k] * ld, k = 0 .. m-1, in that order. nq is a constant at every call
 * (fully unrolled: the 4 x nq accumulators stay in registers for the whole run of rows). */
FE_TARGET FE_INLINE void FE_FN(fe_fit_tile)(double *W, int64_t ld, const double *xb,
                                            const int32_t *idx, int64_t m, int64_t p0,
                                            int64_t q0, const int nq) {
    FE_V acc[4][FE_QG];
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < nq; c++)
            acc[r][c] = *(const FE_V *)(W + (p0 + r) * ld + q0 + c * FE_W);
    for (int64_t k = 0; k < m; k++) {
        const double *x = xb + (int64_t)idx[k] * ld;
        FE_V xq[FE_QG];
        for (int c = 0; c < nq; c++) xq[c] = *(const FE_V *)(x + q0 + c * FE_W);
        for (int r = 0; r < 4; r++) {
            const double xp = x[p0 + r];
            for (int c = 0; c < nq; c++) acc[r][c] += xp * xq[c];
        }
    }
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < nq; c++)
            *(FE_V *)(W + (p0 + r) * ld + q0 + c * FE_W) = acc[r][c];
}

/* FE_W rows i .. i+FE_W-1 of FE_W sources (src[c][i + k] is row k's value of column c) into
 * FE_W consecutive row-major rows at out (stride ld): a transposition in registers by
 * two-source shuffles (butterfly stages), in place of FE_W^2 scalar loads and stores. Only data
 * moves: the values are the same bits. */
FE_TARGET FE_INLINE void FE_FN(fe_fit_transpose)(const double *const *src, int64_t i,
                                                 double *out, int64_t ld) {
#define FE_LOAD(c) (*(const FE_V *)(src[c] + i))
#define FE_STORE(k, v) (*(FE_V *)(out + (k) * ld) = (v))
#if FE_W == 8
    const FE_V r0 = FE_LOAD(0), r1 = FE_LOAD(1), r2 = FE_LOAD(2), r3 = FE_LOAD(3);
    const FE_V r4 = FE_LOAD(4), r5 = FE_LOAD(5), r6 = FE_LOAD(6), r7 = FE_LOAD(7);
    /* t(2a+e): columns 2a, 2a+1 of rows e, e+2, e+4, e+6 */
#  define FE_EVEN(a, b) FE_SHUF(FE_V, a, b, 0, 8, 2, 10, 4, 12, 6, 14)
#  define FE_ODD(a, b) FE_SHUF(FE_V, a, b, 1, 9, 3, 11, 5, 13, 7, 15)
    const FE_V t0 = FE_EVEN(r0, r1), t1 = FE_ODD(r0, r1);
    const FE_V t2 = FE_EVEN(r2, r3), t3 = FE_ODD(r2, r3);
    const FE_V t4 = FE_EVEN(r4, r5), t5 = FE_ODD(r4, r5);
    const FE_V t6 = FE_EVEN(r6, r7), t7 = FE_ODD(r6, r7);
    /* u(b): four columns of rows b and b+4 */
#  define FE_LO2(a, b) FE_SHUF(FE_V, a, b, 0, 1, 8, 9, 4, 5, 12, 13)
#  define FE_HI2(a, b) FE_SHUF(FE_V, a, b, 2, 3, 10, 11, 6, 7, 14, 15)
    const FE_V u0 = FE_LO2(t0, t2), u2 = FE_HI2(t0, t2);
    const FE_V u1 = FE_LO2(t1, t3), u3 = FE_HI2(t1, t3);
    const FE_V u4 = FE_LO2(t4, t6), u6 = FE_HI2(t4, t6);
    const FE_V u5 = FE_LO2(t5, t7), u7 = FE_HI2(t5, t7);
    /* row k: the low halves (rows 0-3) or high halves (rows 4-7) of u(k mod 4), u(k mod 4 + 4) */
#  define FE_LO4(a, b) FE_SHUF(FE_V, a, b, 0, 1, 2, 3, 8, 9, 10, 11)
#  define FE_HI4(a, b) FE_SHUF(FE_V, a, b, 4, 5, 6, 7, 12, 13, 14, 15)
    FE_STORE(0, FE_LO4(u0, u4));
    FE_STORE(4, FE_HI4(u0, u4));
    FE_STORE(1, FE_LO4(u1, u5));
    FE_STORE(5, FE_HI4(u1, u5));
    FE_STORE(2, FE_LO4(u2, u6));
    FE_STORE(6, FE_HI4(u2, u6));
    FE_STORE(3, FE_LO4(u3, u7));
    FE_STORE(7, FE_HI4(u3, u7));
#  undef FE_EVEN
#  undef FE_ODD
#  undef FE_LO2
#  undef FE_HI2
#  undef FE_LO4
#  undef FE_HI4
#elif FE_W == 4
    const FE_V r0 = FE_LOAD(0), r1 = FE_LOAD(1), r2 = FE_LOAD(2), r3 = FE_LOAD(3);
    const FE_V t0 = FE_SHUF(FE_V, r0, r1, 0, 4, 2, 6), t1 = FE_SHUF(FE_V, r0, r1, 1, 5, 3, 7);
    const FE_V t2 = FE_SHUF(FE_V, r2, r3, 0, 4, 2, 6), t3 = FE_SHUF(FE_V, r2, r3, 1, 5, 3, 7);
    FE_STORE(0, FE_SHUF(FE_V, t0, t2, 0, 1, 4, 5));
    FE_STORE(2, FE_SHUF(FE_V, t0, t2, 2, 3, 6, 7));
    FE_STORE(1, FE_SHUF(FE_V, t1, t3, 0, 1, 4, 5));
    FE_STORE(3, FE_SHUF(FE_V, t1, t3, 2, 3, 6, 7));
#elif FE_W == 2
    const FE_V r0 = FE_LOAD(0), r1 = FE_LOAD(1);
    FE_STORE(0, FE_SHUF(FE_V, r0, r1, 0, 2));
    FE_STORE(1, FE_SHUF(FE_V, r0, r1, 1, 3));
#else
#  error "FE_W must be 2, 4 or 8"
#endif
#undef FE_LOAD
#undef FE_STORE
}

/* One arm's m rows (xb + idx[k] * w) into its W (w x w): the upper block triangle of rows
 * 0 .. prow-1, tile by tile (a prefetch step before each row of tiles). */
FE_TARGET FE_INLINE void FE_FN(fe_fit_arm)(double *W, int64_t w, int64_t prow, const double *xb,
                                           const int32_t *idx, int64_t m,
                                           fe_fit_prefetcher *pf) {
    for (int64_t p0 = 0; p0 < prow; p0 += 4) {
        fe_fit_prefetch_step(pf);
        int64_t q0 = p0 / FE_W * FE_W; /* the vector holding the diagonal entry of row p0 */
        while (q0 < w) {
            const int64_t left = (w - q0) / FE_W;
            if (left >= FE_QG) {
                FE_FN(fe_fit_tile)(W, w, xb, idx, m, p0, q0, FE_QG);
                q0 += FE_QG * FE_W;
            } else if (FE_QG > 2 && left == 2) {
                FE_FN(fe_fit_tile)(W, w, xb, idx, m, p0, q0, 2);
                q0 += 2 * FE_W;
            } else {
                FE_FN(fe_fit_tile)(W, w, xb, idx, m, p0, q0, 1);
                q0 += FE_W;
            }
        }
    }
}

/* Task t: its rows block by block (extended rows gathered in input order, their order by arm
 * found by a stable counting sort, then each arm's rows added tile by tile), then its sums
 * written out (fe_fit_write). The next block's columns are prefetched while a block is
 * summed, so reading the input from memory overlaps the arithmetic. scratch / iscratch: see
 * fe_fit_task in fit_gram.h. */
FE_TARGET static void FE_FN(fe_fit_task)(const fe_fit_problem *pb, int64_t t, double *scratch,
                                         int64_t *iscratch) {
    const int64_t d = pb->d, K = pb->K, block = pb->block;
    const int64_t w = fe_fit_width(d), prow = fe_fit_rows(d);
    double *xb = scratch, *W = scratch + block * w;
    const double *ones = W + K * w * w, *zeros = ones + block;
    int64_t *starts = iscratch, *fill = iscratch + K + 1;
    int32_t *idx = (int32_t *)(iscratch + 2 * K + 1);
    const double **src = (const double **)(iscratch + 2 * K + 1 + block);
    const int64_t first = t * pb->rows_per_task;
    const int64_t stop = pb->n - first < pb->rows_per_task ? pb->n : first + pb->rows_per_task;
    memset(W, 0, (size_t)(K * w * w) * sizeof(double));
    fe_fit_prefetcher pf;
    for (int64_t lo = first; lo < stop; lo += block) {
        const int64_t m = stop - lo < block ? stop - lo : block;
        fe_fit_sort(pb, lo, m, starts, fill, idx);
        /* the block's extended rows [x, r, 1, 0...] in input order */
        for (int64_t j = 0; j < d; j++) src[j] = pb->cols[j] + lo;
        src[d] = pb->rewards + lo;
        src[d + 1] = ones;
        for (int64_t j = d + 2; j < w; j++) src[j] = zeros;
        int64_t i = 0;
        for (; i + FE_W <= m; i += FE_W)
            for (int64_t c0 = 0; c0 < w; c0 += FE_W)
                FE_FN(fe_fit_transpose)(src + c0, i, xb + i * w + c0, w);
        for (; i < m; i++)
            for (int64_t j = 0; j < w; j++) xb[i * w + j] = src[j][i];
        int64_t arms = 0; /* with rows in this block: the prefetch steps to come */
        for (int64_t a = 0; a < K; a++) arms += starts[a + 1] > starts[a];
        const int64_t next_m = stop - lo - m < block ? stop - lo - m : block;
        fe_fit_prefetch_plan(&pf, pb, lo + m, next_m, arms * (prow / 4));
        for (int64_t a = 0; a < K; a++)
            if (starts[a + 1] > starts[a])
                FE_FN(fe_fit_arm)(W + a * w * w, w, prow, xb, idx + starts[a],
                                  starts[a + 1] - starts[a], &pf);
    }
    fe_fit_write(pb, t, W);
}

#undef FE_V
#undef FE_FN
#undef FE_CAT
#undef FE_CAT2
#undef FE_SUF
#undef FE_TARGET
#undef FE_W
#undef FE_QG
