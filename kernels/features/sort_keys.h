/* In-place introsorts of the rfm id kernels (partition_rows.h, number_ids.h, fewids_fold.h):
 * quicksort (median of three), insertion sort for short runs, heapsort past a depth limit, so
 * never quadratic. The comparisons are inlined: libc's qsort calls a function per comparison,
 * ~2x slower on the millions of ids a large rfm() call numbers.
 *
 * Every caller sorts distinct keys, or only reads the keys (not the indexes) of equal ones, so
 * the order of ties (this sort is not stable) never shows in a result.
 */
#ifndef FE_SORT_KEYS_H
#define FE_SORT_KEYS_H

#include <stdint.h>

/* A 128-bit sort key (an id's fe_sort_key) and where it came from. */
typedef struct {
    uint64_t high;
    uint64_t low;
    int64_t index;
} fe_pair;

#define FE_PAIR_LESS(a, b) ((a).high < (b).high || ((a).high == (b).high && (a).low < (b).low))
#define FE_U64_LESS(a, b) ((a) < (b))
#define FE_INSERTION_MAX 16

#define FE_DEFINE_INTROSORT(NAME, T, LESS)                                                   \
    static inline void NAME##_heap(T* v, int64_t n) {                                               \
        for (int64_t start = n / 2 - 1, end = n; end > 1;) {                                  \
            int64_t root;                                                                    \
            if (start >= 0) {                                                                \
                root = start--;                                                              \
            } else {                                                                         \
                T top = v[0]; v[0] = v[--end]; v[end] = top;                                 \
                root = 0;                                                                    \
            }                                                                                \
            for (;;) {                                                                       \
                int64_t child = 2 * root + 1;                                                \
                if (child >= end) break;                                                     \
                if (child + 1 < end && LESS(v[child], v[child + 1])) child++;                \
                if (!LESS(v[root], v[child])) break;                                         \
                T s = v[root]; v[root] = v[child]; v[child] = s;                             \
                root = child;                                                                \
            }                                                                                \
        }                                                                                    \
    }                                                                                        \
    static inline void NAME##_rec(T* v, int64_t n, int depth) {                                      \
        while (n > FE_INSERTION_MAX) {                                                       \
            if (depth-- == 0) { NAME##_heap(v, n); return; }                                 \
            int64_t mid = n / 2;                                                             \
            T s;                                                                             \
            if (LESS(v[mid], v[0])) { s = v[mid]; v[mid] = v[0]; v[0] = s; }                 \
            if (LESS(v[n - 1], v[mid])) { s = v[n - 1]; v[n - 1] = v[mid]; v[mid] = s; }     \
            if (LESS(v[mid], v[0])) { s = v[mid]; v[mid] = v[0]; v[0] = s; }                 \
            T pivot = v[mid];                                                                \
            int64_t i = 0, j = n - 1;                                                        \
            for (;;) {                                                                       \
                while (LESS(v[i], pivot)) i++;                                               \
                while (LESS(pivot, v[j])) j--;                                               \
                if (i >= j) break;                                                           \
                s = v[i]; v[i] = v[j]; v[j] = s;                                             \
                i++; j--;                                                                    \
            }                                                                                \
            /* [0, j] <= pivot <= [j + 1, n): recurse into the smaller side */               \
            if (j + 1 < n - j - 1) { NAME##_rec(v, j + 1, depth); v += j + 1; n -= j + 1; } \
            else { NAME##_rec(v + j + 1, n - j - 1, depth); n = j + 1; }                     \
        }                                                                                    \
        for (int64_t i = 1; i < n; i++) {                                                    \
            T x = v[i];                                                                      \
            int64_t j = i - 1;                                                               \
            while (j >= 0 && LESS(x, v[j])) { v[j + 1] = v[j]; j--; }                        \
            v[j + 1] = x;                                                                    \
        }                                                                                    \
    }                                                                                        \
    static inline void NAME(T* v, int64_t n) {                                                      \
        int depth = 2;                                                                       \
        for (int64_t m = n; m > 1; m >>= 1) depth += 2;                                      \
        NAME##_rec(v, n, depth);                                                             \
    }

FE_DEFINE_INTROSORT(fe_sort_pairs, fe_pair, FE_PAIR_LESS)
FE_DEFINE_INTROSORT(fe_sort_u64, uint64_t, FE_U64_LESS)

#endif
