/* Exact sums of amounts for the profile fold (kernels/features/profile_native.pyx).
 *
 * An amount is taken on the 2**-64 grid as three 64-bit words (fraction, low and high integer
 * word, two's complement), the same words as kernels/features/rfm.py's fixed_words and
 * fold_native.pyx's _fixed_words (a test checks the bits against rfm.fixed_words); sums of such
 * words are exact and commute, so no output depends on the order of the rows. The read-out is
 * rfm.money_value's: the 192-bit total correctly rounded to the nearest double, ties to even.
 */
#ifndef FE_PROFILE_MONEY_H
#define FE_PROFILE_MONEY_H

#include <math.h>
#include <stdint.h>

#include "../common/atomic.h"

typedef struct { uint64_t w[3]; } fe_money;


/* a hint to load the cache line of p (rows of the customers folded next) */
static inline void fe_prefetch(const void *p) { __builtin_prefetch(p, 0, 3); }

/* index of the lowest set bit of a non-zero mask (channels an order has lines in) */
static inline int fe_lowest_bit(uint64_t mask) { return __builtin_ctzll(mask); }

static inline void fe_money_negate(uint64_t *w) {
    w[0] = ~w[0] + 1;
    w[1] = ~w[1];
    w[2] = ~w[2];
    if (w[0] == 0) {
        w[1] += 1;
        if (w[1] == 0) w[2] += 1;
    }
}

/* Words of a finite |a| < 2**63. No libm rounding call: the integer part is the truncation of
 * m >= 0, and adding and subtracting 2**52 rounds f < 2**52 half to even, as rint does; every
 * step is exact. */
static inline fe_money fe_money_of(double a) {
    const double two_64 = 18446744073709551616.0, two_52 = 4503599627370496.0;
    fe_money out;
    int neg = a < 0.0;
    double m = neg ? -a : a;
    uint64_t ip = (uint64_t) m;
    double f = (m - (double) ip) * two_64;
    if (f < two_52) f = (f + two_52) - two_52;
    out.w[0] = (uint64_t) f;
    out.w[1] = ip;
    out.w[2] = 0;
    if (neg) fe_money_negate(out.w);
    return out;
}

static inline void fe_money_add(fe_money *acc, const fe_money *x) {
    uint64_t s0 = acc->w[0] + x->w[0];
    uint64_t c0 = s0 < x->w[0];
    uint64_t s1 = acc->w[1] + x->w[1];
    uint64_t c1 = s1 < x->w[1];
    s1 += c0;
    if (c0 && s1 == 0) c1 = 1;
    acc->w[0] = s0;
    acc->w[1] = s1;
    acc->w[2] = acc->w[2] + x->w[2] + c1;
}

static inline void fe_money_zero(fe_money *acc) {
    acc->w[0] = 0;
    acc->w[1] = 0;
    acc->w[2] = 0;
}

/* The total correctly rounded to float64 (round half to even), as rfm.money_value. */
static inline double fe_money_value(const fe_money *acc) {
    uint64_t w[3] = {acc->w[0], acc->w[1], acc->w[2]};
    uint64_t top, nxt, rest, window, mant, low;
    int base, lz, sticky, neg = (int64_t) w[2] < 0;
    double value;
    union { uint64_t bits; double value; } scale;
    if (neg) fe_money_negate(w);
    if (w[2] != 0) {
        top = w[2]; nxt = w[1]; rest = w[0]; base = 128;
    } else if (w[1] != 0) {
        top = w[1]; nxt = w[0]; rest = 0; base = 64;
    } else if (w[0] != 0) {
        top = w[0]; nxt = 0; rest = 0; base = 0;
    } else {
        return 0.0;
    }
    lz = __builtin_clzll(top);
    if (lz == 0) {
        window = top;
        sticky = nxt != 0 || rest != 0;
    } else {
        window = (top << lz) | (nxt >> (64 - lz));
        sticky = (nxt << lz) != 0 || rest != 0;
    }
    mant = window >> 11;
    low = window & 0x7FF;
    if (low > 0x400 || (low == 0x400 && (sticky || (mant & 1)))) mant += 1;
    /* mant * 2**(base + 11 - lz - 64): the exponent is in -116..75, so the power of two is a
     * normal double built from its bits (libm's ldexp cost more than the rest of a read-out) and
     * the product is exact */
    scale.bits = (uint64_t) (1023 + base + 11 - lz - 64) << 52;
    value = (double) mant * scale.value;
    return neg ? -value : value;
}

#endif
