# BG/BB (Fader, Hardie & Shang 2010, eq. 5) per-pattern likelihood and its gradient, included by
# kernels/clv/models_native.pyx. Same operation order as the Numba kernel it replaced
# (kernels/clv/bgbb.py of session 7), so fits and predictions keep their bits.


cdef inline double lbeta(double a, double b) noexcept nogil:
    return lgamma(a) + lgamma(b) - lgamma(a + b)


cdef void bgbb_pattern(double al, double be, double ga, double de, double x, double tx, double n,
                       bint want_grad, double* out) noexcept nogil:
    """(ll, d ll/d alpha, d/d beta, d/d gamma, d/d delta) of one pattern into out[0..4]
    (gradient zero unless ``want_grad``): the n - t_x + 1 terms of eq. (5) summed after scaling
    by their largest."""
    cdef double lbab = lbeta(al, be), lbgd = lbeta(ga, de)
    cdef double dab = digamma(al + be), dgd = digamma(ga + de)
    # alive through all n opportunities
    cdef double t0 = lbeta(al + x, be + n - x) - lbab + lbeta(ga, de + n) - lbgd
    cdef double mx = t0, ti, acc, e0, ei, s_ab, s_gd, inv
    cdef double g_al = 0.0, g_be = 0.0, g_ga = 0.0, g_de = 0.0
    cdef int64_t k = <int64_t>(n - tx), i
    for i in range(k):
        ti = lbeta(al + x, be + tx - x + i) - lbab + lbeta(ga + 1.0, de + tx + i) - lbgd
        if ti > mx:
            mx = ti
    acc = exp(t0 - mx)
    if want_grad:
        e0 = acc
        s_ab = digamma(al + be + n)
        g_al = e0 * (digamma(al + x) - s_ab)
        g_be = e0 * (digamma(be + n - x) - s_ab)
        s_gd = digamma(ga + de + n)
        g_ga = e0 * (digamma(ga) - s_gd)
        g_de = e0 * (digamma(de + n) - s_gd)
    for i in range(k):
        ti = lbeta(al + x, be + tx - x + i) - lbab + lbeta(ga + 1.0, de + tx + i) - lbgd
        ei = exp(ti - mx)
        acc += ei
        if want_grad:
            s_ab = digamma(al + be + tx + i)
            g_al += ei * (digamma(al + x) - s_ab)
            g_be += ei * (digamma(be + tx - x + i) - s_ab)
            s_gd = digamma(ga + de + tx + i + 1.0)
            g_ga += ei * (digamma(ga + 1.0) - s_gd)
            g_de += ei * (digamma(de + tx + i) - s_gd)
    out[0] = mx + log(acc)
    if want_grad:
        inv = 1.0 / acc
        # minus the derivative of the normalising log-beta functions
        g_al = g_al * inv - (digamma(al) - dab)
        g_be = g_be * inv - (digamma(be) - dab)
        g_ga = g_ga * inv - (digamma(ga) - dgd)
        g_de = g_de * inv - (digamma(de) - dgd)
    out[1] = g_al
    out[2] = g_be
    out[3] = g_ga
    out[4] = g_de


def bgbb_rows(const double[::1] params, const double[::1] x, const double[::1] tx,
              const double[::1] n, double[:, ::1] terms, int64_t chunk, int64_t worker,
              int64_t n_workers):
    """terms[i] = (ll_i, d ll_i / d(alpha, beta, gamma, delta)) for the rows of chunks worker,
    worker + n_workers, ... of ``chunk`` rows."""
    cdef double al = params[0], be = params[1], ga = params[2], de = params[3]
    cdef Py_ssize_t m = x.shape[0], i, lo, hi
    cdef double v[5]
    with nogil:
        lo = worker * chunk
        while lo < m:
            hi = lo + chunk if lo + chunk < m else m
            for i in range(lo, hi):
                bgbb_pattern(al, be, ga, de, x[i], tx[i], n[i], True, v)
                terms[i, 0] = v[0]
                terms[i, 1] = v[1]
                terms[i, 2] = v[2]
                terms[i, 3] = v[3]
                terms[i, 4] = v[4]
            lo += n_workers * chunk


def bgbb_predict(bint expected, const double[::1] params, const double[::1] fut,
                 const double[::1] x, const double[::1] tx, const double[::1] n,
                 double[::1] out, int64_t chunk, int64_t worker, int64_t n_workers):
    """Per row of chunks worker, worker + n_workers, ... (``out`` starts zeroed):

    * ``expected`` False: P(alive at opportunity n + 1 + fut | x, t_x, n) (FHS 2010 eq. 11;
      surviving ``fut`` more opportunities replaces B(gamma, delta+n+1) by
      B(gamma, delta+n+1+fut));
    * ``expected`` True: E[X(n, n+fut) | x, t_x, n] (eq. 13), continuous at gamma = 1.
    """
    cdef double al = params[0], be = params[1], ga = params[2], de = params[3]
    cdef Py_ssize_t m = x.shape[0], i, lo, hi
    cdef double v[5]
    cdef double ll, lt, ns, ni, lead, u, w, g1, diff
    with nogil:
        lo = worker * chunk
        while lo < m:
            hi = lo + chunk if lo + chunk < m else m
            for i in range(lo, hi):
                if not expected:
                    bgbb_pattern(al, be, ga, de, x[i], tx[i], n[i], False, v)
                    ll = v[0]
                    lt = (lbeta(al + x[i], be + n[i] - x[i]) - lbeta(al, be)
                          + lbeta(ga, de + n[i] + 1.0 + fut[i]) - lbeta(ga, de))
                    out[i] = exp(lt - ll)
                    continue
                ns = fut[i]
                if ns <= 0:
                    continue
                bgbb_pattern(al, be, ga, de, x[i], tx[i], n[i], False, v)
                ll = v[0]
                ni = n[i]
                lead = (lbeta(al + x[i] + 1.0, be + ni - x[i]) - lbeta(al, be) + log(de)
                        + lgamma(ga + de) - lgamma(1.0 + de))
                u = lgamma(1.0 + de + ni) - lgamma(ga + de + ni)
                w = lgamma(1.0 + de + ni + ns) - lgamma(ga + de + ni + ns)
                g1 = ga - 1.0
                if fabs(g1) < 1e-7:
                    # limit gamma -> 1 of (e^u - e^w)/(gamma-1): derivative in gamma at 1
                    diff = exp(u) * (digamma(1.0 + de + ni + ns) - digamma(1.0 + de + ni))
                else:
                    diff = exp(u) * (-expm1(w - u)) / g1
                out[i] = exp(lead - ll) * diff
            lo += n_workers * chunk


# -- shifted-beta-geometric (Fader & Hardie 2007) -----------------------------------------------
def sbg_rows(const double[::1] params, const double[::1] t, const unsigned char[::1] censored,
             double[:, ::1] terms, int64_t chunk, int64_t worker, int64_t n_workers):
    """terms[i] = (ll_i, d ll_i / d alpha, d ll_i / d beta): log S(t) (eq. 6) for a customer
    still active after period t (``censored``), else log P(T = t) (eq. 5)."""
    cdef double al = params[0], be = params[1]
    cdef Py_ssize_t m = t.shape[0], i, lo, hi
    cdef double lb, d_ab, d_a, d_b, ti, s
    with nogil:
        lb = lbeta(al, be)
        d_ab = digamma(al + be)
        d_a = digamma(al)
        d_b = digamma(be)
        lo = worker * chunk
        while lo < m:
            hi = lo + chunk if lo + chunk < m else m
            for i in range(lo, hi):
                ti = t[i]
                s = digamma(al + be + ti)
                if censored[i]:
                    terms[i, 0] = lbeta(al, be + ti) - lb
                    terms[i, 1] = d_a - s - (d_a - d_ab)
                    terms[i, 2] = digamma(be + ti) - s - (d_b - d_ab)
                else:
                    terms[i, 0] = lbeta(al + 1.0, be + ti - 1.0) - lb
                    terms[i, 1] = digamma(al + 1.0) - s - (d_a - d_ab)
                    terms[i, 2] = digamma(be + ti - 1.0) - s - (d_b - d_ab)
            lo += n_workers * chunk


def sbg_survival(const double[::1] params, const double[::1] t, double[::1] out, int64_t chunk,
                 int64_t worker, int64_t n_workers):
    """out[i] = S(t_i) = B(alpha, beta+t_i)/B(alpha, beta) for the rows of chunks worker, ..."""
    cdef double al = params[0], be = params[1], lb
    cdef Py_ssize_t m = t.shape[0], i, lo, hi
    with nogil:
        lb = lbeta(al, be)
        lo = worker * chunk
        while lo < m:
            hi = lo + chunk if lo + chunk < m else m
            for i in range(lo, hi):
                out[i] = exp(lbeta(al, be + t[i]) - lb)
            lo += n_workers * chunk


def sbg_derl(const double[::1] params, const double[::1] d, const double[::1] n,
             double[::1] out, int64_t chunk, int64_t worker, int64_t n_workers):
    """DERL = (beta+n)/(alpha+beta+n) 2F1(1, beta+n+1; alpha+beta+n+1; 1/(1+d)) (Fader & Hardie
    2010 eq. 6) for the rows of chunks worker, ...; term ratio < 1/(1+d)."""
    cdef double al = params[0], be = params[1], z, b, c, total, term
    cdef Py_ssize_t m = n.shape[0], i, lo, hi
    cdef int64_t k
    with nogil:
        lo = worker * chunk
        while lo < m:
            hi = lo + chunk if lo + chunk < m else m
            for i in range(lo, hi):
                z = 1.0 / (1.0 + d[i])
                b = be + n[i] + 1.0
                c = al + be + n[i] + 1.0
                total = 1.0
                term = 1.0
                k = 0
                while k < 10000000:
                    term *= (b + k) / (c + k) * z
                    k += 1
                    total += term
                    if term * z < 1e-17 * (1.0 - z) * total:
                        break
                out[i] = (be + n[i]) / (al + be + n[i]) * total
            lo += n_workers * chunk
