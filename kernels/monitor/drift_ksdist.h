/* The Smirnov tail probability P(D+_n >= d), for the Kolmogorov-Smirnov p-value of large
 * samples (included by drift_native.pyx; the method is described in kernels/monitor/ksdist.py:
 * each term a binomial probability in Loader's saddle-point form, summed by a coarse trapezoid
 * rule where the terms are smooth, else term by term from the largest outwards). */
#ifndef FE_DRIFT_KSDIST_H
#define FE_DRIFT_KSDIST_H
#include <math.h>

#define FE_LN_2PI 1.8378770664093453
#define FE_HALF_LN_2PI 0.9189385332046727

/* log(n!) - log(sqrt(2 pi n) (n/e)^n) */
static double fe_stirlerr(double n) {
    if (n <= 15.0) {
        int sign;  /* lgamma_r: lgamma writes the global signgam (threads race on it) */
        return lgamma_r(n + 1.0, &sign) - (n + 0.5) * log(n) + n - FE_HALF_LN_2PI;
    }
    const double nn = n * n;
    const double s0 = 1.0 / 12, s1 = 1.0 / 360, s2 = 1.0 / 1260, s3 = 1.0 / 1680, s4 = 1.0 / 1188;
    if (n > 500.0) return (s0 - s1 / nn) / n;
    if (n > 80.0) return (s0 - (s1 - s2 / nn) / nn) / n;
    if (n > 35.0) return (s0 - (s1 - (s2 - s3 / nn) / nn) / nn) / n;
    return (s0 - (s1 - (s2 - (s3 - s4 / nn) / nn) / nn) / nn) / n;
}

/* x log(x / np) + np - x, without cancellation */
static double fe_bd0(double x, double np_) {
    if (fabs(x - np_) < 0.1 * (x + np_)) {
        double v = (x - np_) / (x + np_);
        double s = (x - np_) * v;
        double ej = 2.0 * x * v;
        v = v * v;
        for (int j = 1; j < 1000; j++) {
            ej *= v;
            const double s1 = s + ej / (2 * j + 1);
            if (s1 == s) return s1;
            s = s1;
        }
    }
    return x * log(x / np_) + np_ - x;
}

/* log of the j-th Smirnov term (requires 0 < j < n and 0 < p_j < 1) */
static double fe_log_term(double n, double d, double j) {
    const double p = d + j / n;
    const double q = 1.0 - d - j / n;
    const double lc = fe_stirlerr(n) - fe_stirlerr(j) - fe_stirlerr(n - j) - fe_bd0(j, n * p)
        - fe_bd0(n - j, n * q);
    const double lf = FE_LN_2PI + log(j) + log1p(-j / n);
    return lc - 0.5 * lf + log(d / p);
}

/* the real j between peak and end where the log term falls to cut (bisection; the terms are
 * unimodal), or end itself when the term there is still above cut */
static double fe_edge(double n, double d, double peak, double end, double cut) {
    if (fe_log_term(n, d, end) >= cut) return end;
    double inside = peak, outside = end;
    while (fabs(outside - inside) > 0.5) {
        const double mid = 0.5 * (inside + outside);
        if (fe_log_term(n, d, mid) >= cut) inside = mid; else outside = mid;
    }
    return outside;
}

/* integral of exp(log term - best) over [a, b] by the trapezoid rule, halving the step until
 * two successive values agree to 1e-12; -1 when the step would fall below 4 */
static double fe_trapezoid(double n, double d, double a, double b, double best) {
    long m = 64;
    double h = (b - a) / (double)m;
    double inner = 0.0;
    for (long t = 1; t < m; t++) inner += exp(fe_log_term(n, d, a + (double)t * h) - best);
    const double ends = 0.5 * (exp(fe_log_term(n, d, a) - best) + exp(fe_log_term(n, d, b) - best));
    double value = h * (ends + inner);
    while (h >= 8.0) {
        for (long t = 0; t < m; t++)
            inner += exp(fe_log_term(n, d, a + ((double)t + 0.5) * h) - best);
        m *= 2;
        h *= 0.5;
        const double refined = h * (ends + inner);
        if (fabs(refined - value) <= 1e-12 * refined && m >= 256) return refined;
        value = refined;
    }
    return -1.0;
}

/* P(D+_n >= d) for the one-sided Smirnov statistic (n >= 2, 0 < d < 1) */
static double fe_smirnov(double n, double d) {
    const long jmax = (long)floor(n * (1.0 - d));
    double total = exp(n * log1p(-d));  /* j = 0: (1 - d)^n */
    const long lo = 1;
    long hi = jmax;
    if (1.0 - d - (double)hi / n <= 0.0) hi -= 1;  /* that term is 0 (d > 0, n - j > 0) */
    if (hi < lo) return total;
    /* golden-section search for the largest term on [lo, hi] */
    double a = (double)lo, b = (double)hi;
    const double gr = 0.6180339887498949;
    while (b - a > 3.0) {
        const double c = b - gr * (b - a), e = a + gr * (b - a);
        if (fe_log_term(n, d, floor(c)) < fe_log_term(n, d, floor(e))) a = c; else b = e;
    }
    long peak = (long)a;
    double best = fe_log_term(n, d, (double)peak);
    const long last = (long)b + 1 < hi ? (long)b + 1 : hi;
    for (long j = (long)a; j <= last; j++) {
        const double v = fe_log_term(n, d, (double)j);
        if (v > best) { best = v; peak = j; }
    }
    const double cut = best - 46.0;  /* terms below 1e-20 of the largest change nothing */
    const double left = fe_edge(n, d, (double)peak, (double)lo, cut);
    const double right = fe_edge(n, d, (double)peak, (double)hi, cut);
    if (left > lo && right < hi && right - left > 2048.0) {
        const double area = fe_trapezoid(n, d, left, right, best);
        if (area > 0.0) return total + area * exp(best);
    }
    double acc = 0.0;
    for (long j = peak; j <= hi; j++) {
        const double v = fe_log_term(n, d, (double)j);
        if (v < cut) break;
        acc += exp(v - best);
    }
    for (long j = peak - 1; j >= lo; j--) {
        const double v = fe_log_term(n, d, (double)j);
        if (v < cut) break;
        acc += exp(v - best);
    }
    return total + acc * exp(best);
}

#endif
