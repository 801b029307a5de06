"""Plain NumPy/SciPy references of the CLV kernels (direct transcriptions of the papers)."""
import numpy as np
from scipy import integrate
from scipy.special import betaln, gammaln, hyp2f1, logsumexp


def bgnbd_ll(params, x, tx, T, modified=False):
    r, alpha, a, b = params
    x, tx, T = (np.asarray(v, float) for v in (x, tx, T))
    A1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    if modified:
        t1 = betaln(a, b + x + 1) - betaln(a, b) - (r + x) * np.log(alpha + T)
        t2 = betaln(a + 1, b + x) - betaln(a, b) - (r + x) * np.log(alpha + tx)
        return A1 + np.logaddexp(t1, t2)
    t1 = betaln(a, b + x) - betaln(a, b) - (r + x) * np.log(alpha + T)
    with np.errstate(invalid="ignore", divide="ignore"):
        t2 = np.where(x > 0, betaln(a + 1, np.maximum(b + x - 1, 1e-300)) - betaln(a, b)
                      - (r + x) * np.log(alpha + tx), -np.inf)
    return A1 + np.logaddexp(t1, t2)


def bgnbd_expected(params, t, x, tx, T, modified=False):
    r, alpha, a, b = params
    m = 1 if modified else 0
    hyp = hyp2f1(r + x, b + x + m, a + b + x + m - 1, t / (alpha + T + t))
    num = (a + b + x + m - 1) / (a - 1) * (1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp)
    if modified:
        den = 1 + a / (b + x) * ((alpha + T) / (alpha + tx)) ** (r + x)
    else:
        den = 1 + (x > 0) * a / np.maximum(b + x - 1, 1e-300) * ((alpha + T) / (alpha + tx)) ** (r + x)
    return num / den


def bgnbd_alive(params, x, tx, T, modified=False):
    r, alpha, a, b = params
    if modified:
        return 1 / (1 + a / (b + x) * ((alpha + T) / (alpha + tx)) ** (r + x))
    return 1 / (1 + (x > 0) * a / np.maximum(b + x - 1, 1e-300) * ((alpha + T) / (alpha + tx)) ** (r + x))


def bgnbd_alive_future_mc(params, x, tx, T, t, n=400_000, seed=0):
    """Monte Carlo of P(alive at T+t) for one BG/NBD customer (posterior simulation)."""
    r, alpha, a, b = params
    rng = np.random.default_rng(seed)
    lam = rng.gamma(r + x, 1 / (alpha + T), n)
    p = rng.beta(a, b + x, n)
    return bgnbd_alive(params, x, tx, T) * np.mean(np.exp(-lam * p * t))


def pareto_ll_quad(params, x, tx, T):
    """Pareto/NBD log-likelihood with the A0 term as a numerical integral over the death time."""
    r, alpha, s, beta = params
    head = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
    l1 = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
    if tx >= T:
        return head + l1
    val, _ = integrate.quad(lambda u: s * (alpha + u) ** (-(r + x)) * (beta + u) ** (-(s + 1)),
                            tx, T, epsabs=0, epsrel=1e-13, limit=200)
    return head + np.logaddexp(l1, np.log(val))


def pareto_ll_hyp(params, x, tx, T):
    """Pareto/NBD log-likelihood with scipy's hyp2f1 (Fader & Hardie 2005 note, eq. 22)."""
    r, alpha, s, beta = params
    maxab = max(alpha, beta)
    absab = abs(alpha - beta)
    param2 = s + 1 if alpha >= beta else r + x
    rsx = r + s + x
    f1 = hyp2f1(rsx, param2, rsx + 1, absab / (maxab + tx))
    f2 = hyp2f1(rsx, param2, rsx + 1, absab / (maxab + T))
    A0 = f1 / (maxab + tx) ** rsx - f2 / (maxab + T) ** rsx
    head = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
    return head + np.log((alpha + T) ** (-(r + x)) * (beta + T) ** (-s) + s / rsx * A0)


def gg_ll(params, x, m):
    p, q, v = params
    return (gammaln(p * x + q) - gammaln(p * x) - gammaln(q) + q * np.log(v) + (p * x - 1) * np.log(m)
            + p * x * np.log(x) - (p * x + q) * np.log(x * m + v))


def bgbb_ll(params, x, tx, n):
    alpha, beta, gamma, delta = params
    terms = [betaln(alpha + x, beta + n - x) - betaln(alpha, beta) + betaln(gamma, delta + n)
             - betaln(gamma, delta)]
    for i in range(int(n - tx)):
        terms.append(betaln(alpha + x, beta + tx - x + i) - betaln(alpha, beta)
                     + betaln(gamma + 1, delta + tx + i) - betaln(gamma, delta))
    return logsumexp(terms)


def sbg_ll(params, survivors):
    alpha, beta = params
    surv = np.asarray(survivors, float)
    k = len(surv) - 1
    t = np.arange(1, k + 1)
    lp = betaln(alpha + 1, beta + t - 1) - betaln(alpha, beta)
    ls = betaln(alpha, beta + k) - betaln(alpha, beta)
    return float(np.sum((surv[:-1] - surv[1:]) * lp) + surv[-1] * ls)


def fd_grad(f, theta, h=1e-6):
    theta = np.asarray(theta, float)
    g = np.zeros_like(theta)
    for j in range(theta.size):
        e = np.zeros_like(theta)
        e[j] = h * max(1.0, abs(theta[j]))
        g[j] = (f(theta + e) - f(theta - e)) / (2 * e[j])
    return g


def pareto_pmf_mp(params, t, x, dps=60):
    """P(X(t)=x) of the Pareto/NBD from the closed form of Fader, Hardie & Lee (2005, note eq. 19),
    in mpmath at ``dps`` digits (its difference B1 - sum_i ... cancels in double precision)."""
    import mpmath as mp
    with mp.workdps(dps):
        r, alpha, s, beta = (mp.mpf(float(v)) for v in params)
        t = mp.mpf(float(t))
        x = int(x)
        nb = (mp.gamma(r + x) / (mp.gamma(r) * mp.factorial(x)) * (alpha / (alpha + t)) ** r
              * (t / (alpha + t)) ** x)
        first = nb * (beta / (beta + t)) ** s
        if alpha >= beta:
            b, M, d = s + 1, alpha, alpha - beta
        else:
            b, M, d = r + x, beta, beta - alpha
        c = r + s + x + 1
        B1 = mp.hyp2f1(r + s, b, c, d / M) / M ** (r + s)
        tot = mp.mpf(0)
        for i in range(x + 1):
            B2 = mp.hyp2f1(r + s + i, b, c, d / (M + t)) / (M + t) ** (r + s + i)
            tot += mp.gamma(r + s + i) / (mp.gamma(r + s) * mp.factorial(i)) * t ** i * B2
        second = alpha ** r * beta ** s * mp.beta(r + x, s + 1) / mp.beta(r, s) * (B1 - tot)
        return float(first + second)


def hyp2f1_1ef_mp(e, f, z, dps=40):
    """2F1(1, e; f; z) and its derivatives in e, f, z by mpmath (numerical differentiation at
    ``dps`` digits)."""
    import mpmath as mp
    with mp.workdps(dps):
        e, f, z = mp.mpf(float(e)), mp.mpf(float(f)), mp.mpf(float(z))
        S = mp.hyp2f1(1, e, f, z)
        return [float(S), float(mp.diff(lambda t: mp.hyp2f1(1, t, f, z), e)),
                float(mp.diff(lambda t: mp.hyp2f1(1, e, t, z), f)),
                float(mp.diff(lambda t: mp.hyp2f1(1, e, f, t), z))]


def pareto_log_F_mp(r, alpha, s, beta, x, y, dps=40):
    """log F(y) of the Pareto/NBD likelihood (Fader & Hardie 2005 note, eq. 22) by mpmath:
    log 2F1(r+s+x, b'; r+s+x+1; z_y) - (r+s+x) log(max(alpha, beta) + y)."""
    import mpmath as mp
    A = r + s + x
    if alpha >= beta:
        b2, m, z = s + 1, alpha, (alpha - beta) / (alpha + y)
    else:
        b2, m, z = r + x, beta, (beta - alpha) / (beta + y)
    with mp.workdps(dps):
        return float(mp.log(mp.hyp2f1(A, b2, A + 1, z, maxterms=10**7)) - A * mp.log(m + y))


def check_against_lifetimes(ours, ref, x, tx, T, t, horizons, rtol, pop_rtol):
    """A fitted transaction model's conditional and population expectations against the same
    model of lifetimes (``ref``, with the same parameters or fitted on the same data)."""
    np.testing.assert_allclose(
        ours.expected_purchases(t, x, tx, T),
        ref.conditional_expected_number_of_purchases_up_to_time(t, x, tx, T), rtol=rtol)
    np.testing.assert_allclose(ours.population_expected_purchases(horizons),
                               ref.expected_number_of_purchases_up_to_time(horizons),
                               rtol=pop_rtol)


def check_pareto_loglik(loglik_grad, theta, x, tx, T, every):
    """A Pareto/NBD ``loglik_grad(theta, x, tx, T, w)`` kernel at unit weights: every
    ``every``-th per-row log-likelihood equals the quadrature reference (1e-10) and the gradient
    the finite differences of the total. Returns (ll, grad)."""
    w = np.ones_like(x)
    ll, grad, lls = loglik_grad(theta, x, tx, T, w)
    idx = np.arange(0, x.size, every)
    ref = np.array([pareto_ll_quad(theta, x[i], tx[i], T[i]) for i in idx])
    np.testing.assert_allclose(lls[idx], ref, rtol=1e-10)
    fd = fd_grad(lambda th: loglik_grad(th, x, tx, T, w)[0], theta, 1e-6)
    np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-4)
    return ll, grad


def summary_stats(codes, us, length, offset, end_period, amounts, n_customers):
    """Per-customer (first, last, distinct periods, repeat-period mean amount, rows after the
    cut) from transactions in any order: periods floored like pandas' to_period, rows after
    ``end_period`` dropped; the repeat mean sums amounts per period, first period excluded."""
    periods = np.floor_divide(np.asarray(us, np.int64) - offset, length)
    keep = periods <= end_period
    first = np.full(n_customers, np.iinfo(np.int64).max)
    last = np.full(n_customers, np.iinfo(np.int64).min)
    n_per = np.zeros(n_customers, np.int64)
    monetary = np.zeros(n_customers)
    for c in range(n_customers):
        sel = keep & (codes == c)
        if not sel.any():
            continue
        per = np.unique(periods[sel])
        first[c], last[c], n_per[c] = per[0], per[-1], per.size
        if per.size > 1:
            monetary[c] = amounts[sel & (periods != per[0])].sum() / (per.size - 1)
    return first, last, n_per, monetary, int(np.count_nonzero(~keep))


def rft_patterns(x, tx, T, w=None):
    """Distinct (x, t_x, T) rows sorted by x, then first appearance, with their total weight."""
    rows = np.stack([x, tx, T], 1)
    uniq, first, inverse = np.unique(rows, axis=0, return_index=True, return_inverse=True)
    weights = np.bincount(inverse.reshape(-1), weights=None if w is None else w,
                          minlength=uniq.shape[0])
    order = np.lexsort((first, uniq[:, 0]))
    return uniq[order, 0], uniq[order, 1], uniq[order, 2], weights[order]
