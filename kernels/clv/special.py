"""Special functions shared by the CLV kernels, written for Numba and for stability in log space.

Everything here is scalar and branch-light so that the pattern kernels can call it per pattern
inside ``prange``. Nothing raises: out-of-domain input gives NaN, which the Python layer checks.
"""
import math

import numpy as np
from numba import njit, prange

from ..common.config import CLV_PARALLEL_MIN_ROWS, CLV_REDUCE_CHUNK, NJIT
from ..common.launch import (bind_template, dual_kernel, kernel_template, resolve_threads,
                            run_threaded)


def dual(size_arg: int):
    """The launch rule's serial-below-a-size variant for the CLV pattern kernels
    (:func:`kernels.common.launch.dual_kernel` with ``CLV_PARALLEL_MIN_ROWS``)."""
    return dual_kernel(size_arg, CLV_PARALLEL_MIN_ROWS)


# -- launching the kernels compiled ahead of time (kernels/clv/native.pyx) ---------------------
def worker_count(n_rows: int, n_threads) -> int:
    """Threads of a native kernel over ``n_rows`` rows: as many as asked (the launch rule's
    default), at most one per chunk of CLV_REDUCE_CHUNK rows."""
    return max(1, min(resolve_threads(n_threads), -(-n_rows // CLV_REDUCE_CHUNK)))


def threaded(size_arg: int):
    """Decorator for a native launch ``fn(*args, workers)`` in which worker ``t`` of ``T`` does
    chunks ``t, t + T, ...`` of CLV_REDUCE_CHUNK rows: the kernel ``k(*args, n_threads=None)``
    runs on one thread below CLV_PARALLEL_MIN_ROWS rows of argument ``size_arg`` (or with
    ``n_threads=1``), on the launch rule's threads above. A chunk is always computed by one
    thread and partial sums are added in chunk order, so the result never depends on the thread
    count. ``k.serial(*args)`` and ``k.parallel(*args, n_threads=None)`` pick one path."""
    def wrap(fn):
        def call(*args, n_threads=None):
            n = args[size_arg].shape[0]
            if n < CLV_PARALLEL_MIN_ROWS or n_threads == 1:
                return fn(*args, 1)
            return fn(*args, worker_count(n, n_threads))
        call.serial = lambda *args: fn(*args, 1)
        call.parallel = lambda *args, n_threads=None: fn(
            *args, worker_count(args[size_arg].shape[0], n_threads))
        # named like the kernel it launches (functools.wraps without importing beyond the
        # kernel layer's allowed modules)
        call.__name__, call.__qualname__, call.__doc__ = fn.__name__, fn.__qualname__, fn.__doc__
        call.__wrapped__ = fn
        return call
    return wrap


def run_workers(work, workers: int) -> None:
    """``work(t, workers)`` for t = 0 .. workers - 1, one thread each (launch.run_threaded)."""
    tickets = list(range(workers))   # list.pop holds the GIL: each thread takes its own t
    run_threaded(lambda: work(tickets.pop(), workers), workers)


def as_float64(a):
    """A C-contiguous float64 view of ``a`` (a copy only when it is not one already)."""
    return np.ascontiguousarray(a, dtype=np.float64)


def predict_rows(kernel, n_rows: int, *args, workers: int):
    """A new float64 vector of ``n_rows`` filled by ``kernel(*args, out, chunk, worker,
    n_workers)`` on ``workers`` threads (chunks of ``CLV_REDUCE_CHUNK`` rows, round robin)."""
    out = np.zeros(n_rows)
    run_workers(lambda k, m: kernel(*args, out, CLV_REDUCE_CHUNK, k, m), workers)
    return out


@kernel_template
def _pattern_loglik(params, *cols):
    # template of ``pattern_loglik``: _prep, _row and _N_TERMS are the model's (bind_template)
    consts, w = _prep(params, cols)   # noqa: F821
    n = cols[0].shape[0]
    terms = np.empty((n, _N_TERMS))   # noqa: F821
    for i in prange(n):
        values = _row(consts, cols, i)   # noqa: F821
        for k in range(_N_TERMS):   # noqa: F821
            terms[i, k] = values[k]
    total, grad = weighted_totals(terms, w)
    return total, grad, terms[:, 0].copy()


def pattern_loglik(prep, row, n_terms: int, model: str):
    """A model's weighted log-likelihood kernel ``loglik_grad(params, *cols)`` -> (sum w ll,
    gradient = sum w d ll / d theta, per-row ll), from its per-row term: the one loop over rows
    every per-pattern likelihood shares (rows in parallel, summed in row order by
    :func:`weighted_totals`, so the result does not depend on the thread count).

    ``prep(params, cols)`` -> (constants, weights) runs once per call (parameter-only special
    functions, the weight column, flags such as MBG's ``modified``); ``row(constants, cols, i)``
    -> a tuple of ``n_terms`` floats (ll_i, d ll_i / d theta_1, ...) for row i.
    """
    return bind_template(_pattern_loglik, f"loglik_grad_{model}",
                         f"Weighted total log-likelihood of {model}, gradient, per-row ll.",
                         1, CLV_PARALLEL_MIN_ROWS,
                         _prep=prep, _row=row, _N_TERMS=int(n_terms))


#: Hard cap on the terms of a hypergeometric series; the transformations below keep the ratio of
#: successive terms below the argument ``z < 1``, so this only bites when ``z`` is within ~1e-5 of 1.
MAX_TERMS = 2_000_000
_TINY = 1e-17


@njit(**NJIT)
def digamma(x):
    """psi(x) for x > 0: upward recurrence to x >= 10, then the asymptotic (Bernoulli) series (error < 1e-13)."""
    if not x > 0.0:
        return np.nan
    result = 0.0
    while x < 10.0:
        result -= 1.0 / x
        x += 1.0
    inv = 1.0 / x
    inv2 = inv * inv
    result += math.log(x) - 0.5 * inv - inv2 * (
        1.0 / 12 - inv2 * (1.0 / 120 - inv2 * (1.0 / 252 - inv2 * (1.0 / 240 - inv2 * (1.0 / 132))))
    )
    return result


@njit(**NJIT)
def trigamma(x):
    """psi'(x) for x > 0: upward recurrence to x >= 10, then the asymptotic series
    1/x + 1/(2x^2) + sum_k B_2k / x^(2k+1) (error < 1e-14 relative)."""
    if not x > 0.0:
        return np.nan
    result = 0.0
    while x < 10.0:
        result += 1.0 / (x * x)
        x += 1.0
    inv = 1.0 / x
    inv2 = inv * inv
    result += inv + 0.5 * inv2 + inv * inv2 * (
        1.0 / 6 - inv2 * (1.0 / 30 - inv2 * (1.0 / 42 - inv2 * (1.0 / 30 - inv2 * (
            5.0 / 66 - inv2 * (691.0 / 2730))))))
    return result


@njit(**NJIT)
def logaddexp(a, b):
    """log(exp(a) + exp(b)) without overflow; -inf + -inf = -inf."""
    if a == -np.inf:
        return b
    if b == -np.inf:
        return a
    if a > b:
        return a + math.log1p(math.exp(b - a))
    return b + math.log1p(math.exp(a - b))


@njit(**NJIT)
def one_minus_pow_over(e, log_q):
    """(1 - q**e) / e for log_q = log(q) <= 0, continuous at e = 0 (where it is -log q)."""
    v = e * log_q
    if abs(e) < 1e-12:
        return -log_q * (1.0 - 0.5 * v)
    return -math.expm1(v) / e


#: The Pareto/NBD kernels run compiled ahead of time (kernels/clv/models_pareto.pxi, issue #11);
#: the Numba series below stay for ``log_hyp2f1_ap1`` and as the tests' independent versions.
#: Term cap of the Pareto/NBD series. Slow convergence happens for z -> 1 with a small exponent
#: gap (beta >> alpha with small r+x, or alpha >> beta with small s: near-exponential lifetimes);
#: past the cap the series reports NaN and the kernel switches to an exp-sinh quadrature.
PARETO_MAX_TERMS = 400


@njit(**NJIT)
def _series_e_c(e, c, z, max_terms):
    """H = sum_n t_n with t_0 = 1, t_n = prod_{k<n} (e+k)/(c+k) z, and the term-wise sums
    H_e = sum t_n sum_{k<n} 1/(e+k), H_c = -sum t_n sum_{k<n} 1/(c+k) (the derivatives in e and
    c), H_n = sum n t_n (z dH/dz) and the largest |t_n|.

    Stops when the tail after a term is at most term * rb / (1 - rb) < 1e-17 H, rb bounding
    every later ratio (once c + n > 0: max((e+n)/(c+n) z, z)). Returns (converged, H, H_e,
    H_c, H_n, biggest); converged is False after ``max_terms`` terms.
    """
    h = 1.0
    h_e = 0.0
    h_c = 0.0
    h_n = 0.0
    term = 1.0
    de = 0.0   # d log(term) / de
    dc = 0.0   # d log(term) / dc
    biggest = 1.0
    n = 0
    while n < max_terms:
        de += 1.0 / (e + n)
        dc -= 1.0 / (c + n)
        term *= (e + n) / (c + n) * z
        n += 1
        h += term
        h_e += term * de
        h_c += term * dc
        h_n += term * n
        biggest = max(biggest, abs(term))
        if c + n > 0.0:
            rb = max((e + n) / (c + n) * z, z)
            if rb < 1.0 and abs(term) * rb < _TINY * (1.0 - rb) * abs(h):
                return True, h, h_e, h_c, h_n, biggest
    return False, h, h_e, h_c, h_n, biggest


@njit(**NJIT)
def series_1_e_f(e, f, z, max_terms=MAX_TERMS):
    """S = sum_n (e)_n / (f)_n z^n with its derivatives dS/de, dS/df, dS/dz, for 0 <= z < 1, f > 0.

    This is 2F1(1, e; f; z). When e < f every term ratio (e+n)/(f+n) z is below z, so the terms
    are bounded by z^n and never overflow; when e >= f the ratio tends to z from above and terms
    are summed in scaled form. Returns (S, S_e, S_f, S_z), NaN when ``max_terms`` do not suffice.
    """
    if z == 0.0:
        return 1.0, 0.0, 0.0, e / f
    ok, s, s_e, s_f, s_n, _ = _series_e_c(e, f, z, max_terms)
    if not ok:
        return np.nan, np.nan, np.nan, np.nan
    return s, s_e, s_f, s_n / z


@njit(**NJIT)
def digamma_any(x):
    """psi(x) for any real x that is not 0, -1, -2, ... (reflection below 0.5)."""
    if x >= 0.5:
        return digamma(x)
    return digamma(1.0 - x) - math.pi / math.tan(math.pi * x)


@njit(**NJIT)
def near_one_constants(e, f):
    """The parts of ``series_1_e_f_near_one`` that do not depend on z: (A, dA/de, dA/df, the
    sign of Gamma(1-g), lgamma(f) + lgamma(1-g) - lgamma(e), psi(1-g), psi(e), psi(f)) with
    g = f - e, A = (f-1)/(g-1). A kernel evaluating S for many z at one (e, f) computes them once."""
    g = f - e
    A = (f - 1.0) / (g - 1.0)
    A_e = (f - 1.0) / ((g - 1.0) * (g - 1.0))
    A_f = 1.0 / (g - 1.0) - A_e
    one_g = 1.0 - g
    sign = 1.0
    if one_g < 0.0:
        # Gamma(x) for x in (-k-1, -k) has the sign (-1)^(k+1)
        if int(math.ceil(-one_g)) % 2 == 1:
            sign = -1.0
    lg_part = math.lgamma(f) + math.lgamma(one_g) - math.lgamma(e)
    return A, A_e, A_f, sign, lg_part, digamma_any(one_g), digamma(e), digamma(f)


@njit(**NJIT)
def series_1_e_f_near_one(e, f, z, k=None):
    """S = 2F1(1, e; f; z) with dS/de, dS/df, dS/dz for z -> 1 (0 < z < 1, f > e > 0), where
    the direct series needs ~ log(eps)/log(z) terms, by the connection to w = 1 - z
    (Abramowitz & Stegun 15.3.6 with a = 1, b = e, c = f, g = f - e):

        S = (f-1)/(g-1) 2F1(1, e; 2-g; w) + Gamma(f) Gamma(1-g) / Gamma(e) w^(g-1) z^(1-f)

    (the second hypergeometric function of 15.3.6 is 2F1(f-1, g; g; w) = z^(1-f)). The remaining
    series has term ratio (e+n)/(2-g+n) w, so it converges in a few terms when w is small.
    The formula is singular at integer g (the two parts' poles cancel): the caller must keep g
    away from integers. Derivatives: term-wise for the series (its lower parameter 2-g moves with
    e and f), digamma for Gamma(f) Gamma(1-g) / Gamma(e).

    ``k``: :func:`near_one_constants` of (e, f), computed here when not given.

    Returns (ok, S, S_e, S_f, S_z); ok is False when the parts cancel by more than 1e-2 of their
    size, the series does not converge, or S <= 0. (For large g the direct series is the better
    tool: it converges fast there, and Gamma(f) Gamma(1-g) / Gamma(e) loses digits.)
    """
    if k is None:
        consts = near_one_constants(e, f)
    else:
        consts = k
    g = f - e
    c = 2.0 - g
    w = 1.0 - z
    # the series H = sum_n t_n, t_n = prod_{k<n} (e+k)/(c+k) w, with its derivatives
    converged, H, H_e, H_c, H_w, biggest = _series_e_c(e, c, w, 10_000)
    if not converged:
        return False, np.nan, np.nan, np.nan, np.nan
    A, A_e, A_f, sign, lg_part, psi_1g, dg_e, dg_f = consts
    # B P = sign * exp(lgamma(f) + lgamma(1-g) - lgamma(e) + (g-1) log w + (1-f) log z)
    lw = math.log(w)
    lz = math.log(z)
    logBP = lg_part + (g - 1.0) * lw + (1.0 - f) * lz
    BP = sign * math.exp(logBP)
    S = A * H + BP
    scale = max(abs(A) * max(biggest, abs(H)), abs(BP))
    if not (S > 0.0) or scale > 1e2 * S or not math.isfinite(S):
        return False, np.nan, np.nan, np.nan, np.nan
    dlogBP_e = psi_1g - dg_e - lw
    dlogBP_f = dg_f - psi_1g + lw - lz
    dlogBP_z = -(g - 1.0) / w + (1.0 - f) / z
    # H depends on e directly and through c = 2 - f + e
    S_e = A_e * H + A * (H_e + H_c) + BP * dlogBP_e
    S_f = A_f * H - A * H_c + BP * dlogBP_f
    S_z = -A * H_w / w + BP * dlogBP_z
    return True, S, S_e, S_f, S_z


@njit(**NJIT)
def log_hyp2f1_ap1(a, b, z):
    """log 2F1(a, b; a + 1; z) for a > 0, b > 0 and any z < 1, without the direct series.

    The direct series sum_n a/(a+n) (b)_n/n! z^n overflows for large a and b and diverges for
    z <= -1. For 0 <= z < 1 the Euler transformation gives (1-z)^(1-b) 2F1(1, a+1-b; a+1; z),
    whose terms are bounded by z^n when b > 0; for z < 0 the Pfaff transformation gives
    (1-z)^(-b) 2F1(1, b; a+1; z/(z-1)), w = z/(z-1) in (0, 1), whose terms are bounded by w^n
    when b < a + 1 (always so in the Pareto/NBD likelihood).
    """
    if z >= 0.0:
        s, _, _, _ = series_1_e_f(a + 1.0 - b, a + 1.0, z)
        if s <= 0.0:
            return np.nan
        return (1.0 - b) * math.log1p(-z) + math.log(s)
    w = z / (z - 1.0)
    s, _, _, _ = series_1_e_f(b, a + 1.0, w)
    if s <= 0.0:
        return np.nan
    return -b * math.log1p(-z) + math.log(s)


@njit(**NJIT)
def bg_tail_series(c_minus_k, a, c, z):
    """G = sum_{n>=1} (c-k)_n (a)_{n-1} / ((c)_n n!) z^n, for 0 <= z < 1.

    Used by the BG/NBD and MBG/NBD conditional expectation after the Euler transformation:
    2F1(k, b'; c; z) (1-z)^k = (1-z)^(a-1) [1 + (a-1) G], which removes the 0/0 at a = 1 and the
    growth of the parameters with the frequency x (c grows with x, so G converges faster).
    """
    if z == 0.0:
        return 0.0
    total = 0.0
    term = (c_minus_k) / c * z      # n = 1: (c-k)_1 (a)_0 / ((c)_1 1!) z
    total = term
    n = 1
    while n < MAX_TERMS:
        term *= (c_minus_k + n) * (a + n - 1.0) / ((c + n) * (n + 1.0)) * z
        n += 1
        total += term
        ratio = abs((c_minus_k + n) * (a + n - 1.0) / ((c + n) * (n + 1.0)) * z)
        rb = max(ratio, z)
        if rb < 1.0 and abs(term) * rb < _TINY * (1.0 - rb) * abs(total):
            break
        if term == 0.0:
            break
    return total


@njit(**NJIT)
def bg_conditional_alive_expectation(k, a, c, z):
    """E[purchases in (T, T+t] | alive at T] for BG/NBD-type models (Fader et al. 2005, eq. 10).

    Equal to c/(a-1) [1 - (1-z)^k 2F1(k, c-a+1; c; z)] with k = r+x, z = t/(alpha+T+t) and
    c = a+b+x-1 (BG/NBD) or a+b+x (MBG/NBD), evaluated as c [h(a-1) - (1-z)^(a-1) G].
    """
    if z <= 0.0:
        return 0.0
    log1mz = math.log1p(-z)
    g = bg_tail_series(c - k, a, c, z)
    return c * (one_minus_pow_over(a - 1.0, log1mz) - math.exp((a - 1.0) * log1mz) * g)


@njit(**NJIT)
def log_nb_tail(r, x, q):
    """log P(N >= x) for N ~ NegBin(r, success prob 1-q) with pmf G(r+j)/(G(r) j!) (1-q)^r q^j.

    Sums the lower part when it is the smaller one (x below the mean) and the upper tail
    otherwise, so that 1 - sum never cancels.
    """
    if x <= 0:
        return 0.0
    if q <= 0.0:
        return -np.inf
    log_q = math.log(q)
    log_1mq = math.log1p(-q)
    mean = r * q / (1.0 - q)
    if x > mean:
        # upper tail: terms decrease geometrically once j > mean
        lt = math.lgamma(r + x) - math.lgamma(r) - math.lgamma(x + 1.0) + r * log_1mq + x * log_q
        total = 1.0
        term = 1.0
        j = x
        while j < x + MAX_TERMS:
            term *= (r + j) / (j + 1.0) * q
            j += 1
            total += term
            if term < _TINY * total:
                break
        return lt + math.log(total)
    # lower part, then 1 - lower
    lower = 0.0
    term = math.exp(r * log_1mq)
    for j in range(x):
        lower += term
        term *= (r + j) / (j + 1.0) * q
    if lower >= 1.0:
        return -np.inf
    return math.log1p(-lower)


@njit(**NJIT)
def weighted_totals(terms, w):
    """Weighted column sums of per-pattern terms: ``terms[i] = (ll_i, d ll_i / d theta_1, ...)``
    gives (sum w ll, gradient = sum w d ll / d theta) — the reduction every pattern kernel's
    log-likelihood ends with."""
    n, k = terms.shape
    sums = np.zeros(k)
    for i in range(n):
        wi = w[i]
        for j in range(k):
            sums[j] += wi * terms[i, j]
    return sums[0], sums[1:].copy()
