/* Per-task, per-arm sums of the bandit fit (kernels/bandits/ridge.py, fit_native.pyx), in C.
 *
 * What one task computes: over its rows (consecutive input rows), for every arm a, the sums
 * G_a = sum x x^T, g_a = sum r x and (count, sum r, sum r^2). Each row is extended to
 * w = [x, r, 1, 0...] (padded to a multiple of 8 doubles), so that all of them are entries of
 * one Gram matrix W_a = sum w w^T: g_a[p] = W_a[p][d], count = W_a[d+1][d+1],
 * sum r = W_a[d][d+1], sum r^2 = W_a[d][d]. Multiplying by 1.0 is exact and a product does not
 * depend on the order of its factors, so every entry is bit for bit the row-by-row sum.
 *
 * How: rows are taken BLOCK at a time. Their extended rows are gathered from the input columns
 * into a row-major buffer in input order (register transposes of 8 x 8 values), a stable
 * counting sort lists each arm's rows, and each arm's rows are added to its W_a tile by tile: a
 * tile of 4 rows p of W_a times up to 3 SIMD vectors of columns q is held in registers while the
 * arm's rows stream past, so the sums are loaded and stored once per block instead of once per
 * row (the rank-1 update G += x x^T that it replaces did one load and one store of G per
 * multiply-add, ~60% of the old fit). Only the upper block triangle is computed; the lower
 * triangle is mirrored when the task's sums are written. Between tiles, the next block's input
 * is prefetched a few cache lines at a time, so reading it from memory (the floor of this
 * kernel: 8 bytes per value, read once) overlaps the arithmetic.
 *
 * Every entry still adds its rows in input order, one product at a time, whatever the tile, the
 * vector width, the block size or the thread count: no sum is reassociated, and products are
 * never fused into an FMA (fp-contract off below; a fused a*b+c rounds once and would differ
 * from the reference in the last bit). So all code paths below give the same bits.
 *
 * Targets: the body (fit_gram_body.h) is compiled three times, for AVX-512 (8-lane vectors,
 * Zen 4 and recent Intel), AVX2 (Zen 3, CI hosts) and baseline x86-64 (SSE2), and the first call
 * picks one from the CPU (__builtin_cpu_supports; under Valgrind, which reports no AVX-512, the
 * AVX2 body runs).
 */
#ifndef FE_FIT_GRAM_H
#define FE_FIT_GRAM_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__clang__)
#  pragma clang fp contract(off)
#elif defined(__GNUC__)
#  pragma GCC push_options
#  pragma GCC optimize("fp-contract=off")
#endif

/* One fit: the task layout and where its inputs and outputs are (C-contiguous float64 arrays
 * part_G[T][K][d][d], part_g[T][K][d], part_s[T][K][3], every entry written by its task). */
typedef struct {
    const double *const *cols; /* d feature columns of n values each */
    const int64_t *codes;      /* arm of each row, 0 <= code < K (validated by the caller), */
    const int32_t *codes32;    /* as int64 or as int32 (Arrow's index_in): one is NULL */
    const double *rewards;
    int64_t n, d, K, rows_per_task, block;
    double *part_G, *part_g, *part_s;
} fe_fit_problem;

/* Doubles per extended row w = [x, r, 1, 0...]: a multiple of 8, the widest vector. */
static inline int64_t fe_fit_width(int64_t d) { return (d + 2 + 7) / 8 * 8; }

/* Rows p of W computed: rows 0..d+1 (features, reward, one), rounded up to the tile height. */
static inline int64_t fe_fit_rows(int64_t d) { return (d + 2 + 3) / 4 * 4; }

/* Scratch of one worker (see fe_fit_task): doubles, and int64-sized slots. */
static inline int64_t fe_fit_scratch_doubles(int64_t d, int64_t K, int64_t block) {
    const int64_t w = fe_fit_width(d);
    return block * w + K * w * w + 2 * block;
}

static inline int64_t fe_fit_scratch_slots(int64_t d, int64_t K, int64_t block) {
    return 2 * K + 1 + block + fe_fit_width(d);
}

/* The constant columns of the extended rows: `block` ones, then `block` zeros. */
static inline void fe_fit_scratch_init(double *scratch, int64_t d, int64_t K, int64_t block) {
    const int64_t w = fe_fit_width(d);
    double *ones = scratch + block * w + K * w * w;
    for (int64_t i = 0; i < block; i++) {
        ones[i] = 1.0;
        ones[block + i] = 0.0;
    }
}

/* Stable counting sort of rows lo .. lo+m-1 by arm: idx[starts[a] .. starts[a+1]-1] are the
 * offsets (from lo) of arm a's rows, in input order. fill: K scratch int64s. */
#define FE_FIT_SORT(T, SUF)                                                                     \
static inline void fe_fit_sort_##SUF(const T *codes, int64_t lo, int64_t m, int64_t K,           \
                                     int64_t *starts, int64_t *fill, int32_t *idx) {            \
    for (int64_t a = 0; a <= K; a++) starts[a] = 0;                                             \
    for (int64_t i = 0; i < m; i++) starts[codes[lo + i] + 1]++;                                \
    for (int64_t a = 0; a < K; a++) starts[a + 1] += starts[a];                                 \
    for (int64_t a = 0; a < K; a++) fill[a] = starts[a];                                        \
    for (int64_t i = 0; i < m; i++) idx[fill[codes[lo + i]]++] = (int32_t)i;                    \
}
FE_FIT_SORT(int64_t, i64)
FE_FIT_SORT(int32_t, i32)

static inline void fe_fit_sort(const fe_fit_problem *pb, int64_t lo, int64_t m, int64_t *starts,
                               int64_t *fill, int32_t *idx) {
    if (pb->codes32) fe_fit_sort_i32(pb->codes32, lo, m, pb->K, starts, fill, idx);
    else fe_fit_sort_i64(pb->codes, lo, m, pb->K, starts, fill, idx);
}

/* Prefetching the next block while the current one is summed: the block's cache lines
 * (columns 0 .. d-1, then rewards, then codes) requested a few at a time between tiles, so
 * that reading the input from memory overlaps the arithmetic (all at once, the requests would
 * overflow the core's miss buffers and be dropped or stall it). */
typedef struct {
    const fe_fit_problem *pb;
    int64_t lo, stop;  /* the rows to fetch */
    int64_t column;    /* 0 .. d-1 features, d rewards, d+1 codes, d+2 done */
    int64_t row;       /* next row of that column, lo .. stop-1, one cache line apart */
    int64_t per_step;  /* lines per step */
} fe_fit_prefetcher;

static inline void fe_fit_prefetch_plan(fe_fit_prefetcher *pf, const fe_fit_problem *pb,
                                        int64_t lo, int64_t m, int64_t steps) {
    const int64_t lines = (pb->d + 2) * ((m + 7) / 8);
    pf->pb = pb;
    pf->lo = lo;
    pf->stop = lo + m;
    pf->column = m > 0 ? 0 : pb->d + 2;
    pf->row = lo;
    pf->per_step = steps > 0 ? (lines + steps - 1) / steps : lines;
}

static inline void fe_fit_prefetch_step(fe_fit_prefetcher *pf) {
    const int64_t d = pf->pb->d;
    for (int64_t u = 0; u < pf->per_step && pf->column < d + 2; u++) {
        const int64_t j = pf->column, row = pf->row;
        if (j < d) __builtin_prefetch(pf->pb->cols[j] + row, 0, 3);
        else if (j == d) __builtin_prefetch(pf->pb->rewards + row, 0, 3);
        else if (pf->pb->codes32) __builtin_prefetch(pf->pb->codes32 + row, 0, 3);
        else __builtin_prefetch(pf->pb->codes + row, 0, 3);
        pf->row += 8;
        if (pf->row >= pf->stop) {
            pf->row = pf->lo;
            pf->column++;
        }
    }
}

/* Task t's sums from the arms' W tiles: the upper triangle of G mirrored, g, (count, sum r,
 * sum r^2). */
static inline void fe_fit_write(const fe_fit_problem *pb, int64_t t, const double *W) {
    const int64_t d = pb->d, K = pb->K, w = fe_fit_width(d);
    for (int64_t a = 0; a < K; a++) {
        const double *Wa = W + a * w * w;
        const int64_t slot = t * K + a;
        double *G = pb->part_G + slot * d * d, *g = pb->part_g + slot * d;
        double *s = pb->part_s + slot * 3;
        for (int64_t p = 0; p < d; p++) {
            for (int64_t q = p; q < d; q++) {
                const double v = Wa[p * w + q];
                G[p * d + q] = v;
                G[q * d + p] = v;
            }
            g[p] = Wa[p * w + d];
        }
        s[0] = Wa[(d + 1) * w + d + 1];
        s[1] = Wa[d * w + d + 1];
        s[2] = Wa[d * w + d];
    }
}

#define FE_INLINE static inline __attribute__((always_inline))

/* Two-source shuffle of vectors of type VT with constant indices (0 .. n-1 from a, n .. 2n-1
 * from b): GCC's __builtin_shuffle takes a mask vector, Clang's __builtin_shufflevector a list. */
#if defined(__clang__)
#  define FE_SHUF(VT, a, b, ...) __builtin_shufflevector(a, b, __VA_ARGS__)
#else
#  define FE_SHUF(VT, a, b, ...)                                                                \
    __builtin_shuffle(a, b, (int64_t __attribute__((vector_size(sizeof(VT))))){__VA_ARGS__})
#endif

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#  define FE_FIT_X86 1
#endif

/* AVX-512: 8 lanes, tiles of 4 rows x 3 vectors (12 accumulators of 32 registers) */
#ifdef FE_FIT_X86
#  define FE_SUF avx512
#  define FE_TARGET __attribute__((target("avx512f")))
#  define FE_W 8
#  define FE_QG 3
#  include "fit_gram_body.h"
/* AVX2: 4 lanes, 4 rows x 2 vectors (8 accumulators of 16 registers) */
#  define FE_SUF avx2
#  define FE_TARGET __attribute__((target("avx2")))
#  define FE_W 4
#  define FE_QG 2
#  include "fit_gram_body.h"
#endif
/* baseline: 2 lanes (SSE2 on x86-64), 4 rows x 2 vectors */
#define FE_SUF base
#define FE_TARGET
#define FE_W 2
#define FE_QG 2
#include "fit_gram_body.h"

typedef void (*fe_fit_task_fn)(const fe_fit_problem *, int64_t, double *, int64_t *);

/* The body for this CPU (resolved once; a race only stores the same pointer twice). */
static fe_fit_task_fn fe_fit_task_impl(void) {
    static fe_fit_task_fn chosen = 0;
    fe_fit_task_fn f = __atomic_load_n(&chosen, __ATOMIC_RELAXED);
    if (f) return f;
    f = fe_fit_task_base;
#ifdef FE_FIT_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) f = fe_fit_task_avx512;
    else if (__builtin_cpu_supports("avx2")) f = fe_fit_task_avx2;
#endif
    __atomic_store_n(&chosen, f, __ATOMIC_RELAXED);
    return f;
}

/* Which body runs here: 512, 256 or 128 (vector bits), for tests and reports. */
static int fe_fit_vector_bits(void) {
    fe_fit_task_fn f = fe_fit_task_impl();
#ifdef FE_FIT_X86
    if (f == fe_fit_task_avx512) return 512;
    if (f == fe_fit_task_avx2) return 256;
#endif
    return 128;
}

/* Task t of the fit. scratch: fe_fit_scratch_doubles(d, K, block) doubles set up by
 * fe_fit_scratch_init; iscratch: fe_fit_scratch_slots(d, K, block) int64s. */
static void fe_fit_task(const fe_fit_problem *pb, int64_t t, double *scratch, int64_t *iscratch) {
    fe_fit_task_impl()(pb, t, scratch, iscratch);
}

/* The same task through a chosen body (bits 512 / 256 / 128), for the tests that compare them;
 * returns 0 if this CPU cannot run it. */
static int fe_fit_task_with(int bits, const fe_fit_problem *pb, int64_t t, double *scratch,
                            int64_t *iscratch) {
#ifdef FE_FIT_X86
    __builtin_cpu_init();
    if (bits == 512) {
        if (!__builtin_cpu_supports("avx512f")) return 0;
        fe_fit_task_avx512(pb, t, scratch, iscratch);
        return 1;
    }
    if (bits == 256) {
        if (!__builtin_cpu_supports("avx2")) return 0;
        fe_fit_task_avx2(pb, t, scratch, iscratch);
        return 1;
    }
#endif
    if (bits == 128) {
        fe_fit_task_base(pb, t, scratch, iscratch);
        return 1;
    }
    return 0;
}

#if defined(__GNUC__) && !defined(__clang__)
#  pragma GCC pop_options
#endif
#endif
