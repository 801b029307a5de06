/* Counter-based random numbers of the bandit kernels (included by decide_core.h; the OPE
 * bootstrap of ope_native.pyx uses them too).
 *
 * Every draw is a pure function of (seed, row, k): the k-th draw of row `row` is
 * splitmix64(base(seed, row) + (k + 1) * GOLDEN) in wrapping uint64 arithmetic. Nothing depends
 * on which thread handles a row or on the order rows are visited, so a batch decided on 1 or 8
 * threads gives the same bits, and a test can recompute any draw in plain Python/NumPy
 * (tests/naive_bandits.py). These are the streams of the former Numba module rng.py (removed
 * in session 8), bit for bit: the samplers call the same libm log/cos/pow in the same
 * expression order. Normals: Box-Muller's cosine branch only (two uniforms each, easy to
 * reproduce); gammas: Marsaglia & Tsang (2000), shapes below 1 by the U^(1/shape) boost;
 * Beta(a, b) = X / (X + Y) with X ~ Gamma(a), Y ~ Gamma(b).
 */
#ifndef FE_DECIDE_RNG_H
#define FE_DECIDE_RNG_H
#include <math.h>
#include <stdint.h>

#pragma GCC optimize("fp-contract=off")  /* no fused multiply-add: fixed bits */

#define FE_GOLDEN 0x9E3779B97F4A7C15ULL
#define FE_M1 0xBF58476D1CE4E5B9ULL
#define FE_M2 0x94D049BB133111EBULL
#define FE_STREAM 0xD1B54A32D192ED03ULL

static inline uint64_t fe_mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * FE_M1;
    z = (z ^ (z >> 27)) * FE_M2;
    return z ^ (z >> 31);
}

static inline uint64_t fe_stream_base(uint64_t seed, uint64_t row) {
    return fe_mix64(seed ^ fe_mix64(row * FE_STREAM + FE_GOLDEN));
}

static inline double fe_next_uniform(uint64_t *state) {
    *state += FE_GOLDEN;
    return (double)(fe_mix64(*state) >> 11) * (1.0 / 9007199254740992.0);
}

static inline double fe_next_normal(uint64_t *state) {
    double u1 = fe_next_uniform(state);
    double u2 = fe_next_uniform(state);
    return sqrt(-2.0 * log(1.0 - u1)) * cos(2.0 * 3.141592653589793 * u2);
}

static inline double fe_next_gamma(uint64_t *state, double shape) {
    double boost = 1.0;
    if (shape < 1.0) {
        double u = fe_next_uniform(state);
        boost = pow(1.0 - u, 1.0 / shape);
        shape += 1.0;
    }
    const double d = shape - 1.0 / 3.0;
    const double c = 1.0 / sqrt(9.0 * d);
    for (;;) {
        double z = fe_next_normal(state);
        double v = 1.0 + c * z;
        if (v <= 0.0) continue;
        v = v * v * v;
        double u = fe_next_uniform(state);
        if (log(1.0 - u) < 0.5 * z * z + d - d * v + d * log(v)) return d * v * boost;
    }
}

static inline double fe_next_beta(uint64_t *state, double a, double b) {
    double x = fe_next_gamma(state, a);
    double y = fe_next_gamma(state, b);
    return x / (x + y);
}

static inline int64_t fe_next_index(uint64_t *state, int64_t n) {
    double u = fe_next_uniform(state);
    int64_t k = (int64_t)(u * (double)n);
    return k < n ? k : n - 1;
}

#endif
