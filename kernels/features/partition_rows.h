/* Row partitions of the one-shot rfm() pass, compiled ahead of time (issue #11; called from
 * partition_native.pyx, which documents the layouts):
 *
 *   - by customer code (dense codes: oneshot.partition): fe_code_histogram, fe_code_scatter;
 *   - by id range (sparse integer or short-string ids: hashed.partition): the ids' sort keys
 *     (fe_sort_key), the range splitters from a sample (fe_sample_keys, fe_id_estimate),
 *     fe_key_histogram and fe_key_scatter;
 *   - fe_partition_starts, shared: stable scatter cursors from per-chunk histograms.
 *
 * Every function works on one chunk (or one serial step) of a fixed plan, so the results do
 * not depend on how many threads claim the chunks.
 */
#ifndef FE_PARTITION_ROWS_H
#define FE_PARTITION_ROWS_H

#include <stdint.h>
#include "sort_keys.h"

#define FE_SIGN ((uint64_t)1 << 63)

/* splitmix64 finaliser (pairset.mix64, idmap.pyx's mix64): a bijection of 64-bit words */
static inline uint64_t fe_mix64(uint64_t x) {
    x ^= x >> 30;
    x *= 0xBF58476D1CE4E5B9ULL;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBULL;
    x ^= x >> 31;
    return x;
}

/* (high, low) words of row i whose lexicographic order is the ids' order: an integer (the sign
 * bit flipped when signed), or a packed short string in byte order (its bytes big-endian, zero
 * padded, then its length: a prefix sorts first). */
static inline fe_pair fe_sort_key(const uint64_t* keys0, const uint64_t* keys1, int two_words,
                                  int is_signed, int64_t i) {
    fe_pair key;
    if (two_words) {
        key.high = __builtin_bswap64(keys0[i]);
        key.low = __builtin_bswap64(keys1[i]);
    } else {
        key.high = is_signed ? keys0[i] ^ FE_SIGN : keys0[i];
        key.low = 0;
    }
    key.index = i;
    return key;
}

/* ---- by customer code ------------------------------------------------------------------- */

static inline void fe_code_histogram(const int64_t* codes, int64_t lo, int64_t hi, int64_t shift,
                              int64_t* counts) {
    for (int64_t i = lo; i < hi; i++)
        counts[codes[i] >> shift] += 1;
}

static inline void fe_code_scatter(const int64_t* codes, const int64_t* times, const double* amounts,
                            const int64_t* orders, int has_order, int64_t lo, int64_t hi,
                            int64_t shift, int64_t* cursor, int32_t* out_local,
                            int64_t* out_times, double* out_amounts, int64_t* out_orders) {
    const int64_t mask = ((int64_t)1 << shift) - 1;
    for (int64_t i = lo; i < hi; i++) {
        int64_t c = codes[i];
        int64_t k = cursor[c >> shift]++;
        out_local[k] = (int32_t)(c & mask);
        out_times[k] = times[i];
        out_amounts[k] = amounts[i];
        if (has_order)
            out_orders[k] = orders[i];
    }
}

/* Scatter cursors[n_chunks][n_parts] and part_offsets[n_parts + 1] from hist[n_chunks][n_parts]:
 * partition-major, chunk-minor, so chunk t's rows of a partition follow chunk t-1's (stable). */
static inline void fe_partition_starts(const int64_t* hist, int64_t n_chunks, int64_t n_parts,
                                int64_t* cursors, int64_t* part_offsets) {
    int64_t pos = 0;
    for (int64_t p = 0; p < n_parts; p++) {
        part_offsets[p] = pos;
        for (int64_t t = 0; t < n_chunks; t++) {
            cursors[t * n_parts + p] = pos;
            pos += hist[t * n_parts + p];
        }
    }
    part_offsets[n_parts] = pos;
}

/* ---- by id range ------------------------------------------------------------------------ */

/* The sort keys of m evenly spaced rows (row (j * n) / m), sorted. */
static inline void fe_sample_keys(const uint64_t* keys0, const uint64_t* keys1, int two_words,
                           int is_signed, int64_t n, int64_t m, fe_pair* sample) {
    for (int64_t j = 0; j < m; j++)
        sample[j] = fe_sort_key(keys0, keys1, two_words, is_signed, (j * n) / m);
    fe_sort_pairs(sample, m);
}

/* Distinct ids of all n rows suggested by the sorted sample: the distinct ids d in the sample,
 * those seen once (f1) and twice (f2), Chao's estimate d + f1 (f1 - 1) / (2 (f2 + 1)), capped
 * at the row count. */
static inline double fe_id_estimate(const fe_pair* sample, int64_t m, int64_t n) {
    int64_t distinct = 0, f1 = 0, f2 = 0, j = 0;
    while (j < m) {
        int64_t e = j + 1;
        while (e < m && sample[e].high == sample[j].high && sample[e].low == sample[j].low)
            e++;
        distinct += 1;
        f1 += e - j == 1;
        f2 += e - j == 2;
        j = e;
    }
    double estimate = (double)distinct + (double)(f1 * (f1 - 1)) / (2.0 * (double)(f2 + 1));
    return estimate < (double)n ? estimate : (double)n;
}

/* Number of splitters <= key (equal ids always land in the same partition), by a branch-free
 * descent: there are 2**bits - 1 splitters and bits halving steps. */
static inline int64_t fe_partition_of(const uint64_t* split_high, const uint64_t* split_low,
                                      int64_t n_splitters, uint64_t high, uint64_t low) {
    int64_t pos = 0;
    int64_t step = (n_splitters + 1) >> 1;
    while (step > 0) {
        int64_t k = pos + step - 1;
        int64_t below = (split_high[k] < high) | ((split_high[k] == high) & (split_low[k] <= low));
        pos += step * below;
        step >>= 1;
    }
    return pos;
}

static inline void fe_key_histogram(const uint64_t* keys0, const uint64_t* keys1, int two_words,
                             int is_signed, const uint64_t* split_high, const uint64_t* split_low,
                             int64_t n_splitters, int64_t lo, int64_t hi, int32_t* part,
                             int64_t* counts) {
    for (int64_t i = lo; i < hi; i++) {
        fe_pair key = fe_sort_key(keys0, keys1, two_words, is_signed, i);
        int64_t p = fe_partition_of(split_high, split_low, n_splitters, key.high, key.low);
        part[i] = (int32_t)p;
        counts[p] += 1;
    }
}

static inline void fe_key_scatter(const uint64_t* keys0, const uint64_t* keys1, int two_words,
                           const int32_t* part, const int64_t* times, const double* amounts,
                           const int64_t* orders, int has_order, int64_t lo, int64_t hi,
                           int64_t* cursor, uint64_t* out_keys0, uint64_t* out_keys1,
                           int64_t* out_times, double* out_amounts, int64_t* out_orders) {
    for (int64_t i = lo; i < hi; i++) {
        int64_t k = cursor[part[i]]++;
        out_keys0[k] = keys0[i];
        if (two_words)
            out_keys1[k] = keys1[i];
        out_times[k] = times[i];
        out_amounts[k] = amounts[i];
        if (has_order)
            out_orders[k] = orders[i];
    }
}

#endif
