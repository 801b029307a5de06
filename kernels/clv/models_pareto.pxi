# Pareto/NBD scalar kernels of kernels/clv/models_native.pyx (included there): the hypergeometric
# term F(y) of Fader & Hardie's eq. (22) by the Euler-transformed series S = 2F1(1, e; f; z), its
# connection to 1 - z, or an exp-sinh quadrature, and one pattern's log-likelihood. Every
# expression keeps the operation order of the Numba kernels it replaced (kernels/clv/pareto.py and
# special.py of session 7) with the same libm functions, so the values keep their bits.

#: the tunables of kernels/common/config.py, set once by ``set_pareto_config`` at import
cdef double PARETO_NEAR_ONE_Z = 0.5
cdef double PARETO_INTEGER_GAP = 0.02
cdef int64_t PARETO_DIRECT_TERMS = 64
#: log of the direct series' relative stopping tolerance (1e-17) plus a margin of e^2
cdef double LOG_DIRECT_TOL = log(1e-17) + 2.0
#: term cap of the series before the quadrature takes over (special.PARETO_MAX_TERMS)
cdef int64_t PARETO_MAX_TERMS = 400
#: exp-sinh quadrature: step and half-width in t (tau - y = L exp(pi/2 sinh t))
cdef double QH = 1.0 / 32.0
cdef double QT = 5.5
cdef double PI = 3.141592653589793


cdef inline double pymax(double a, double b) noexcept nogil:
    """Python's max(a, b) (a unless b is larger)."""
    return b if b > a else a


cdef inline double pymin(double a, double b) noexcept nogil:
    """Python's min(a, b) (a unless b is smaller)."""
    return b if b < a else a


cdef inline double logaddexp(double a, double b) noexcept nogil:
    """log(exp(a) + exp(b)) without overflow; -inf + -inf = -inf."""
    if a == -INFINITY:
        return b
    if b == -INFINITY:
        return a
    if a > b:
        return a + log1p(exp(b - a))
    return b + log1p(exp(a - b))


cdef inline double digamma_any(double x) noexcept nogil:
    """psi(x) for any real x that is not 0, -1, -2, ... (reflection below 0.5)."""
    if x >= 0.5:
        return digamma(x)
    return digamma(1.0 - x) - PI / tan(PI * x)


cdef bint series_e_c(double e, double c, double z, int64_t max_terms, double* out) noexcept nogil:
    """H = sum_n t_n, t_0 = 1, t_n = prod_{k<n} (e+k)/(c+k) z, with H_e, H_c (derivatives in e
    and c), H_n = sum n t_n and the largest |t_n| into out[0..4]; False after ``max_terms``
    terms without meeting the 1e-17 tail bound (special._series_e_c)."""
    cdef double h = 1.0, h_e = 0.0, h_c = 0.0, h_n = 0.0, term = 1.0, de = 0.0, dc = 0.0
    cdef double biggest = 1.0, rb
    # (e+n)/(c+n): the stopping test's ratio is the next term's, computed once (same value)
    cdef double ratio = e / c
    cdef int64_t n = 0
    cdef bint ok = False
    while n < max_terms:
        de += 1.0 / (e + n)
        dc -= 1.0 / (c + n)
        term *= ratio * z
        n += 1
        h += term
        h_e += term * de
        h_c += term * dc
        h_n += term * n
        biggest = pymax(biggest, fabs(term))
        ratio = (e + n) / (c + n)
        if c + n > 0.0:
            rb = pymax(ratio * z, z)
            if rb < 1.0 and fabs(term) * rb < TINY * (1.0 - rb) * fabs(h):
                ok = True
                break
    out[0] = h
    out[1] = h_e
    out[2] = h_c
    out[3] = h_n
    out[4] = biggest
    return ok


cdef void series_1_e_f(double e, double f, double z, int64_t max_terms, double* out) noexcept nogil:
    """S = 2F1(1, e; f; z) and dS/de, dS/df, dS/dz into out[0..3]; NaN when ``max_terms`` do
    not suffice (special.series_1_e_f)."""
    cdef double h[5]
    if z == 0.0:
        out[0] = 1.0
        out[1] = 0.0
        out[2] = 0.0
        out[3] = e / f
        return
    if not series_e_c(e, f, z, max_terms, h):
        out[0] = NAN
        out[1] = NAN
        out[2] = NAN
        out[3] = NAN
        return
    out[0] = h[0]
    out[1] = h[1]
    out[2] = h[2]
    out[3] = h[3] / z


cdef void near_one_constants(double e, double f, double* k) noexcept nogil:
    """The z-free parts of ``series_1_e_f_near_one`` into k[0..7]: A, dA/de, dA/df, the sign of
    Gamma(1-g), lgamma(f) + lgamma(1-g) - lgamma(e), psi(1-g), psi(e), psi(f) (g = f - e)."""
    cdef double g = f - e
    cdef double A = (f - 1.0) / (g - 1.0)
    cdef double A_e = (f - 1.0) / ((g - 1.0) * (g - 1.0))
    cdef double one_g = 1.0 - g, sign = 1.0
    if one_g < 0.0:
        # Gamma(x) for x in (-k-1, -k) has the sign (-1)^(k+1)
        if (<int64_t>ceil(-one_g)) % 2 == 1:
            sign = -1.0
    k[0] = A
    k[1] = A_e
    k[2] = 1.0 / (g - 1.0) - A_e
    k[3] = sign
    k[4] = lgamma(f) + lgamma(one_g) - lgamma(e)
    k[5] = digamma_any(one_g)
    k[6] = digamma(e)
    k[7] = digamma(f)


cdef bint series_1_e_f_near_one(double e, double f, double z, const double* k,
                                double* out) noexcept nogil:
    """S = 2F1(1, e; f; z) with its derivatives for z -> 1 by the connection to w = 1 - z
    (Abramowitz & Stegun 15.3.6; see special.series_1_e_f_near_one), from the
    ``near_one_constants`` k of (e, f). False (out NaN) when the parts cancel by more than 1e-2
    of their size, the series does not converge, or S <= 0."""
    cdef double g = f - e, c = 2.0 - g, w = 1.0 - z
    cdef double h[5]
    cdef double H, H_e, H_c, H_w, biggest, A, A_e, A_f, sign, lg_part, psi_1g, dg_e, dg_f
    cdef double lw, lz, logBP, BP, S, scale
    out[0] = NAN
    out[1] = NAN
    out[2] = NAN
    out[3] = NAN
    if not series_e_c(e, c, w, 10000, h):
        return False
    H = h[0]
    H_e = h[1]
    H_c = h[2]
    H_w = h[3]
    biggest = h[4]
    A = k[0]
    A_e = k[1]
    A_f = k[2]
    sign = k[3]
    lg_part = k[4]
    psi_1g = k[5]
    dg_e = k[6]
    dg_f = k[7]
    lw = log(w)
    lz = log(z)
    logBP = lg_part + (g - 1.0) * lw + (1.0 - f) * lz
    BP = sign * exp(logBP)
    S = A * H + BP
    scale = pymax(fabs(A) * pymax(biggest, fabs(H)), fabs(BP))
    if not (S > 0.0) or scale > 1e2 * S or not isfinite(S):
        return False
    # H depends on e directly and through c = 2 - f + e
    out[0] = S
    out[1] = A_e * H + A * (H_e + H_c) + BP * (psi_1g - dg_e - lw)
    out[2] = A_f * H - A * H_c + BP * (dg_f - psi_1g + lw - lz)
    out[3] = -A * H_w / w + BP * (-(g - 1.0) / w + (1.0 - f) / z)
    return True


cdef void series_constants(double e, double f, double* k) noexcept nogil:
    """k[0] = log (e)_N / (f)_N, N = PARETO_DIRECT_TERMS; k[1..8] = near_one_constants(e, f)."""
    cdef int64_t n = PARETO_DIRECT_TERMS
    k[0] = lgamma(e + n) - lgamma(e) + lgamma(f) - lgamma(f + n)
    near_one_constants(e, f, k + 1)


cdef inline bint direct_can_stop(double lpoch, double e, double f, double z) noexcept nogil:
    """Whether the direct series' stopping rule can hold by term PARETO_DIRECT_TERMS (see
    kernels/clv/pareto.py of session 7: a wrong answer costs time, never accuracy)."""
    cdef int64_t n = PARETO_DIRECT_TERMS
    cdef double rb = pymax((e + n) / (f + n) * z, z)
    return lpoch + n * log(z) + log(rb) - log1p(-rb) < LOG_DIRECT_TOL


cdef void pareto_series(double e, double f, double z, const double* k, double* out) noexcept nogil:
    """S = 2F1(1, e; f; z) and derivatives: directly for small z; near 1 directly if that stops
    within PARETO_DIRECT_TERMS terms, else by the connection to 1 - z (f - e away from
    integers); else directly with the term cap (NaN beyond: quadrature). ``k``: the
    ``series_constants`` of (e, f), or NULL to compute them when needed."""
    cdef double own[9]
    cdef double g
    if z > PARETO_NEAR_ONE_Z:
        if k == NULL:
            series_constants(e, f, own)
            k = own
        g = f - e
        if g >= 2.0 and direct_can_stop(k[0], e, f, z):
            series_1_e_f(e, f, z, PARETO_DIRECT_TERMS, out)
            if out[0] == out[0]:
                return
        if fabs(g - round(g)) > PARETO_INTEGER_GAP:
            if series_1_e_f_near_one(e, f, z, k + 1, out):
                return
    series_1_e_f(e, f, z, PARETO_MAX_TERMS, out)


cdef inline void series_parameters(double r, double alpha, double s, double beta, double x,
                                   double* e, double* f) noexcept nogil:
    """(e, f) of S in F(y): they depend on x, not on y."""
    if alpha >= beta:
        e[0] = r + x
    else:
        e[0] = s + 1.0
    f[0] = r + s + x + 1.0


cdef void log_F_series(double r, double alpha, double s, double beta, double x, double y,
                       const double* k, double* out) noexcept nogil:
    """log F(y) and its gradient (d/dr, d/dalpha, d/ds, d/dbeta) into out[0..4] from the
    Euler-transformed series (NaN if it is too slow)."""
    cdef double e, f, z, S, S_e, S_f, S_z
    cdef double sv[4]
    series_parameters(r, alpha, s, beta, x, &e, &f)
    if alpha >= beta:
        z = (alpha - beta) / (alpha + y)
        pareto_series(e, f, z, k, sv)
        S = sv[0]
        S_e = sv[1]
        S_f = sv[2]
        S_z = sv[3]
        out[0] = -s * log(beta + y) - (r + x) * log(alpha + y) + log(S)
        out[1] = -log(alpha + y) + (S_e + S_f) / S
        out[3] = -log(beta + y) + S_f / S
        out[2] = -(r + x) / (alpha + y) + S_z / S * (beta + y) / ((alpha + y) * (alpha + y))
        out[4] = -s / (beta + y) - S_z / S / (alpha + y)
    else:
        z = (beta - alpha) / (beta + y)
        pareto_series(e, f, z, k, sv)
        S = sv[0]
        S_e = sv[1]
        S_f = sv[2]
        S_z = sv[3]
        out[0] = (1.0 - r - x) * log(alpha + y) - (s + 1.0) * log(beta + y) + log(S)
        out[1] = -log(alpha + y) + S_f / S
        out[3] = -log(beta + y) + (S_e + S_f) / S
        out[2] = (1.0 - r - x) / (alpha + y) - S_z / S / (beta + y)
        out[4] = -(s + 1.0) / (beta + y) + S_z / S * (alpha + y) / ((beta + y) * (beta + y))


#: exp-sinh nodes (independent of the parameters, so tabulated once at import): for node i at
#: t = -QT + i QH, e = exp(pi/2 sinh t), log e and log(pi/2 cosh t) (the Jacobian's log)
DEF QUAD_NODES = 353   # int(2 QT / QH) + 1
cdef double QUAD_E[QUAD_NODES]
cdef double QUAD_LOG_E[QUAD_NODES]
cdef double QUAD_LOG_JAC[QUAD_NODES]


cdef void _init_quad_nodes() noexcept nogil:
    cdef int64_t i
    cdef double t, e
    for i in range(QUAD_NODES):
        t = -QT + i * QH
        e = exp(0.5 * PI * sinh(t))
        QUAD_E[i] = e
        QUAD_LOG_E[i] = log(e)
        QUAD_LOG_JAC[i] = log(0.5 * PI * cosh(t))


_init_quad_nodes()


cdef void log_F_quad(double r, double alpha, double s, double beta, double x, double y,
                     double* out) noexcept nogil:
    """log F(y) and gradient from F(y) = (r+s+x) int_y^inf (alpha+tau)^-(r+x) (beta+tau)^-(s+1)
    dtau by exp-sinh quadrature (where the series converges slowly; see the module docstring of
    kernels/clv/pareto.py). The parameter-free parts of the nodes come from the tables above and
    the logs of the first pass are kept for the second: the same values, a sixth of the libm
    calls of the Numba version."""
    cdef double k1 = r + x, k2 = s + 1.0
    cdef double L = 1.0 / (k1 / (alpha + y) + k2 / (beta + y))
    cdef double logL = log(L)
    cdef int64_t i
    cdef double mx = -INFINITY, u, phi, la, lb, lj, wv
    cdef double i0 = 0.0, ir = 0.0, ia = 0.0, is_ = 0.0, ib = 0.0
    cdef double k, U, lU, tail, A
    cdef double la_[QUAD_NODES]
    cdef double lb_[QUAD_NODES]
    cdef double lj_[QUAD_NODES]
    # first pass: the maximum of the log integrand (with the Jacobian) for scaling
    for i in range(QUAD_NODES):
        u = L * QUAD_E[i]
        la = log(alpha + y + u)
        lb = log(beta + y + u)
        lj = logL + QUAD_LOG_E[i] + QUAD_LOG_JAC[i]
        la_[i] = la
        lb_[i] = lb
        lj_[i] = lj
        phi = -k1 * la - k2 * lb + lj
        if phi > mx:
            mx = phi
    for i in range(QUAD_NODES):
        u = L * QUAD_E[i]
        la = la_[i]
        lb = lb_[i]
        wv = exp(-k1 * la - k2 * lb + lj_[i] - mx)
        i0 += wv
        ir += wv * la
        ia += wv / (alpha + y + u)
        is_ += wv * lb
        ib += wv / (beta + y + u)
    # the power-law tail beyond the last node (matters only when r+x+s is close to 0)
    k = k1 + k2
    U = y + L * exp(0.5 * PI * sinh(QT))
    lU = log(U)
    tail = exp((1.0 - k) * lU - log(k - 1.0) - mx) / QH
    i0 += tail
    ir += tail * lU
    ia += tail / U
    is_ += tail * lU
    ib += tail / U
    A = r + s + x
    out[0] = log(A) + mx + log(i0 * QH)
    out[1] = 1.0 / A - ir / i0
    out[2] = -k1 * ia / i0
    out[3] = 1.0 / A - is_ / i0
    out[4] = -k2 * ib / i0


cdef void log_F(double r, double alpha, double s, double beta, double x, double y,
                const double* k, double* out) noexcept nogil:
    """log F(y) and its gradient: the series when it converges within PARETO_MAX_TERMS terms,
    the exp-sinh integral otherwise. ``k``: the series_constants of this x, or NULL."""
    log_F_series(r, alpha, s, beta, x, y, k, out)
    if out[0] == out[0]:
        return
    log_F_quad(r, alpha, s, beta, x, y, out)


cdef void pareto_pattern(double r, double alpha, double s, double beta, double x, double tx,
                         double T, bint want_grad, double* out) noexcept nogil:
    """(ll, d_r, d_alpha, d_s, d_beta, log P(alive at T)) of one pattern into out[0..5]
    (gradient zero unless ``want_grad``)."""
    cdef double head = lgamma(r + x) - lgamma(r) + r * log(alpha) + s * log(beta)
    cdef double l1 = -(r + x) * log(alpha + T) - s * log(beta + T)
    cdef double rsx = r + s + x, l2 = -INFINITY, rho = 1.0, lse, w1, w2, inv
    cdef double a[5]
    cdef double b[5]
    cdef double d_r, d_al, d_s, d_be
    if tx < T:
        log_F(r, alpha, s, beta, x, tx, NULL, a)
        log_F(r, alpha, s, beta, x, T, NULL, b)
        rho = exp(b[0] - a[0])
        if rho < 1.0:
            l2 = log(s) - log(rsx) + a[0] + log1p(-rho)
    lse = logaddexp(l1, l2)
    out[0] = head + lse
    out[5] = l1 - lse
    if not want_grad:
        out[1] = 0.0
        out[2] = 0.0
        out[3] = 0.0
        out[4] = 0.0
        return
    w1 = exp(l1 - lse)
    w2 = 1.0 - w1 if l2 > -INFINITY else 0.0
    d_r = digamma(r + x) - digamma(r) + log(alpha) - w1 * log(alpha + T)
    d_al = r / alpha - w1 * (r + x) / (alpha + T)
    d_s = log(beta) - w1 * log(beta + T)
    d_be = s / beta - w1 * s / (beta + T)
    if w2 > 0.0:
        inv = 1.0 / (1.0 - rho)
        # d log A0 = (dlF1 - rho dlF2) / (1 - rho)
        d_r += w2 * (-1.0 / rsx + (a[1] - rho * b[1]) * inv)
        d_al += w2 * (a[2] - rho * b[2]) * inv
        d_s += w2 * (1.0 / s - 1.0 / rsx + (a[3] - rho * b[3]) * inv)
        d_be += w2 * (a[4] - rho * b[4]) * inv
    out[1] = d_r
    out[2] = d_al
    out[3] = d_s
    out[4] = d_be
