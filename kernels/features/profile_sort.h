/* Small sorts of one customer's values on per-worker scratch (kernels/features/profile_native.pyx):
 * insertion-sorted runs, then merges; no allocation, stable. */
#ifndef FE_PROFILE_SORT_H
#define FE_PROFILE_SORT_H

#include <stdint.h>

#define FE_SORT_RUN 24

/* Stable ascending sort of keys[:n], carrying vals[:n] when vals is not NULL (tmp_k, and tmp_v
 * with vals, hold n values). */
static void fe_sort_pairs(int64_t *keys, int64_t *vals, int64_t n, int64_t *tmp_k,
                          int64_t *tmp_v) {
    int64_t *src_k = keys, *src_v = vals, *dst_k = tmp_k, *dst_v = tmp_v, *swap;
    int64_t s, e, i, j, k, v = 0, width, lo, mid, hi, o;
    for (s = 0; s < n; s = e) {
        e = s + FE_SORT_RUN < n ? s + FE_SORT_RUN : n;
        for (i = s + 1; i < e; i++) {
            k = keys[i];
            if (vals) v = vals[i];
            for (j = i - 1; j >= s && keys[j] > k; j--) {
                keys[j + 1] = keys[j];
                if (vals) vals[j + 1] = vals[j];
            }
            keys[j + 1] = k;
            if (vals) vals[j + 1] = v;
        }
    }
    for (width = FE_SORT_RUN; width < n; width *= 2) {
        for (lo = 0; lo < n; lo += 2 * width) {
            mid = lo + width < n ? lo + width : n;
            hi = lo + 2 * width < n ? lo + 2 * width : n;
            i = lo; j = mid; o = lo;
            while (i < mid && j < hi) {
                if (src_k[j] < src_k[i]) {
                    dst_k[o] = src_k[j];
                    if (vals) dst_v[o] = src_v[j];
                    j++;
                } else {
                    dst_k[o] = src_k[i];
                    if (vals) dst_v[o] = src_v[i];
                    i++;
                }
                o++;
            }
            for (; i < mid; i++, o++) {
                dst_k[o] = src_k[i];
                if (vals) dst_v[o] = src_v[i];
            }
            for (; j < hi; j++, o++) {
                dst_k[o] = src_k[j];
                if (vals) dst_v[o] = src_v[j];
            }
        }
        swap = src_k; src_k = dst_k; dst_k = swap;
        swap = src_v; src_v = dst_v; dst_v = swap;
    }
    if (src_k != keys) {
        for (i = 0; i < n; i++) {
            keys[i] = src_k[i];
            if (vals) vals[i] = src_v[i];
        }
    }
}

static inline int fe_is_sorted(const int64_t *values, int64_t n) {
    int64_t i;
    for (i = 1; i < n; i++)
        if (values[i] < values[i - 1]) return 0;
    return 1;
}

/* distinct values of a sorted values[:n] */
static inline int64_t fe_distinct_sorted(const int64_t *values, int64_t n) {
    int64_t i, runs = n > 0;
    for (i = 1; i < n; i++) runs += values[i] != values[i - 1];
    return runs;
}

#endif
