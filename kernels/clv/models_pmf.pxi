# P(X(t) = k) of the Pareto/NBD by adaptive Gauss-Legendre quadrature over the lifetime
# (included by kernels/clv/models_native.pyx; the derivation is in kernels/clv/pareto_pmf.py).
# Same operation order as the Numba kernel it replaced, so the probabilities keep their bits.

#: 20-point Gauss-Legendre rule (numpy.polynomial.legendre.leggauss(20)), set by set_pmf_rule
cdef double GL_X[20]
cdef double GL_W[20]
cdef int GL_N = 0
#: relative tolerance and panel budget of the adaptive quadrature
cdef double PMF_RTOL = 1e-14
cdef int64_t PMF_MAX_PANELS = 4096
#: depth of the explicit stack of panels
DEF PMF_STACK = 128


cdef inline double pmf_log_shape(double r, double alpha, double s, double k, double beta,
                                 double tau, double m) noexcept nogil:
    """log of the integrand relative to its value at the mode ``m``, by log1p of differences."""
    cdef double d = tau - m
    cdef double v = -(r + k) * log1p(d / (alpha + m)) - (s + 1.0) * log1p(d / (beta + m))
    if k > 0:
        v += k * log1p(d / m)
    return v


cdef double gl_panel(double r, double alpha, double s, double k, double beta, double m,
                     double a, double b) noexcept nogil:
    """Gauss-Legendre integral of exp(log_shape) over [a, b]."""
    cdef double half = 0.5 * (b - a), mid = 0.5 * (a + b), acc = 0.0
    cdef int j
    for j in range(GL_N):
        acc += GL_W[j] * exp(pmf_log_shape(r, alpha, s, k, beta, mid + half * GL_X[j], m))
    return acc * half


cdef double adaptive_integral(double r, double alpha, double s, double k, double beta, double m,
                              double a, double b) noexcept nogil:
    """Integral over [a, b] of exp(log_shape) by bisection until each panel agrees with the sum
    of its halves to PMF_RTOL of the running total (the half nearest the mode refined first)."""
    if b <= a:
        return 0.0
    cdef double stack_a[PMF_STACK]
    cdef double stack_b[PMF_STACK]
    cdef double stack_v[PMF_STACK]
    cdef double first = gl_panel(r, alpha, s, k, beta, m, a, b)
    cdef double total = 0.0, scale = fabs(first), pa, pb, pv, c, left, right, both
    cdef int top = 1
    cdef int64_t panels = 0
    cdef bint toward_b = m >= b
    stack_a[0] = a
    stack_b[0] = b
    stack_v[0] = first
    while top > 0:
        top -= 1
        pa = stack_a[top]
        pb = stack_b[top]
        pv = stack_v[top]
        c = 0.5 * (pa + pb)
        left = gl_panel(r, alpha, s, k, beta, m, pa, c)
        right = gl_panel(r, alpha, s, k, beta, m, c, pb)
        both = left + right
        scale = pymax(scale, fabs(total + both))
        panels += 1
        if fabs(both - pv) <= PMF_RTOL * scale or top + 2 > PMF_STACK or \
                panels > PMF_MAX_PANELS or pb - pa <= 1e-15 * (fabs(pa) + fabs(pb)):
            total += both
        elif toward_b:
            # push the half nearer the mode last, so it is refined first
            stack_a[top] = pa
            stack_b[top] = c
            stack_v[top] = left
            stack_a[top + 1] = c
            stack_b[top + 1] = pb
            stack_v[top + 1] = right
            top += 2
        else:
            stack_a[top] = c
            stack_b[top] = pb
            stack_v[top] = right
            stack_a[top + 1] = pa
            stack_b[top + 1] = c
            stack_v[top + 1] = left
            top += 2
    return total


cdef double pareto_probability_n(double r, double alpha, double s, double beta, double t,
                                 double k) noexcept nogil:
    """P(X(t) = k) for one (t, k): alive throughout (0, t] plus the integral over the death time
    split at the integrand's mode (pareto_pmf.probability_n_purchases)."""
    if t <= 0.0:
        return 1.0 if k == 0 else 0.0
    cdef double lg = lgamma(r + k) - lgamma(r) - lgamma(k + 1.0)
    cdef double lnb = lg + r * (log(alpha) - log(alpha + t)) + s * (log(beta) - log(beta + t))
    cdef double B, mode, log_peak, died = 0.0, integral
    if k > 0:
        lnb += k * (log(t) - log(alpha + t))
    B = alpha * (k - s - 1.0) - r * beta
    mode = (B + sqrt(B * B + 4.0 * (r + s + 1.0) * k * alpha * beta)) / (2.0 * (r + s + 1.0))
    mode = pymin(pymax(mode, 0.0), t)
    log_peak = log(s) + s * log(beta) + lg + r * log(alpha) \
        - (r + k) * log(alpha + mode) - (s + 1.0) * log(beta + mode)
    if k > 0:
        log_peak += k * log(mode)
    if log_peak + log(t) > -746.0:   # else below the smallest double: the integrand <= peak
        integral = adaptive_integral(r, alpha, s, k, beta, mode, 0.0, mode) + \
            adaptive_integral(r, alpha, s, k, beta, mode, mode, t)
        if integral > 0.0:
            died = exp(log_peak + log(integral))
    return exp(lnb) + died
