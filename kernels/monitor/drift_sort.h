/* In-place ascending sort of doubles without NaN (introsort: quicksort on a median of three,
 * insertion sort under 24 values, heapsort past 2 log2(n) levels). For the drift kernels'
 * gathered bucket values and splitter samples; equal values are indistinguishable, so any
 * correct sort gives the same array. */
#ifndef FE_DRIFT_SORT_H
#define FE_DRIFT_SORT_H
#include <stdint.h>

static inline void fe_insertion_f64(double *a, int64_t n) {
    for (int64_t i = 1; i < n; i++) {
        const double v = a[i];
        int64_t j = i - 1;
        while (j >= 0 && a[j] > v) {
            a[j + 1] = a[j];
            j--;
        }
        a[j + 1] = v;
    }
}

static void fe_sift_f64(double *a, int64_t root, int64_t n) {
    const double v = a[root];
    int64_t child;
    while ((child = 2 * root + 1) < n) {
        if (child + 1 < n && a[child + 1] > a[child]) child++;
        if (a[child] <= v) break;
        a[root] = a[child];
        root = child;
    }
    a[root] = v;
}

static void fe_heapsort_f64(double *a, int64_t n) {
    for (int64_t i = n / 2 - 1; i >= 0; i--) fe_sift_f64(a, i, n);
    for (int64_t end = n - 1; end > 0; end--) {
        const double t = a[0];
        a[0] = a[end];
        a[end] = t;
        fe_sift_f64(a, 0, end);
    }
}

static void fe_introsort_f64(double *a, int64_t n, int depth) {
    while (n > 24) {
        if (depth-- == 0) {
            fe_heapsort_f64(a, n);
            return;
        }
        /* median of three to a[0], then Hoare partition around it */
        const int64_t mid = n / 2;
        double t;
        if (a[mid] < a[0]) { t = a[mid]; a[mid] = a[0]; a[0] = t; }
        if (a[n - 1] < a[0]) { t = a[n - 1]; a[n - 1] = a[0]; a[0] = t; }
        if (a[n - 1] < a[mid]) { t = a[n - 1]; a[n - 1] = a[mid]; a[mid] = t; }
        const double pivot = a[mid];
        int64_t i = -1, j = n;
        for (;;) {
            do i++; while (a[i] < pivot);
            do j--; while (a[j] > pivot);
            if (i >= j) break;
            t = a[i]; a[i] = a[j]; a[j] = t;
        }
        /* [0, j] <= pivot <= [j + 1, n): recurse on the smaller part, loop on the larger */
        const int64_t left = j + 1;
        if (left < n - left) {
            fe_introsort_f64(a, left, depth);
            a += left;
            n -= left;
        } else {
            fe_introsort_f64(a + left, n - left, depth);
            n = left;
        }
    }
    fe_insertion_f64(a, n);
}

static void fe_sort_f64(double *a, int64_t n) {
    int depth = 0;
    for (int64_t m = n; m > 1; m >>= 1) depth += 2;
    if (n > 1) fe_introsort_f64(a, n, depth);
}

#endif
