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


# -- references of the kernels compiled ahead of time in kernels/clv/models_native.pyx ---------
def pareto_ll_mp(params, x, tx, T, dps=30):
    """Pareto/NBD log-likelihood (note eq. 22) with mpmath's hyp2f1 at ``dps`` digits: exact
    where ``pareto_ll_quad`` loses digits (a likelihood in the subnormal range of doubles).
    Returns (ll, log of the alive-at-T term)."""
    import mpmath as mp
    with mp.workdps(dps):
        r, alpha, s, beta, x, tx, T = (mp.mpf(float(v)) for v in (*params, x, tx, T))
        A = r + s + x
        if alpha >= beta:
            b2, m, dz = s + 1, alpha, alpha - beta
        else:
            b2, m, dz = r + x, beta, beta - alpha

        def F(y):
            return mp.hyp2f1(A, b2, A + 1, dz / (m + y), maxterms=10**7) / (m + y) ** A
        head = mp.loggamma(r + x) - mp.loggamma(r) + r * mp.log(alpha) + s * mp.log(beta)
        l1 = -(r + x) * mp.log(alpha + T) - s * mp.log(beta + T)
        total = mp.exp(l1) + (s / A * (F(tx) - F(T)) if tx < T else 0)
        return float(head + mp.log(total)), float(head + l1)


def pareto_alive_ref(params, x, tx, T, t=0.0):
    """P(alive at T + t | x, t_x, T) of the Pareto/NBD (Fader & Hardie 2005 note, eq. 18): the
    alive-at-T term of the likelihood over the whole likelihood (mpmath), times the posterior
    survival ((beta+T)/(beta+T+t))^s."""
    r, alpha, s, beta = params
    ll, alive_term = pareto_ll_mp(params, x, tx, T)
    return float(np.exp(alive_term - ll + s * (np.log(beta + T) - np.log(beta + T + t))))


def pareto_expected_ref(params, t, x, tx, T):
    """E[Y(t) | x, t_x, T] (note eq. 26): P(alive at T) (r+x)(beta+T)/((alpha+T)(s-1))
    [1 - ((beta+T)/(beta+T+t))^(s-1)], by the lifetime integral when s = 1 is near."""
    r, alpha, s, beta = params
    if t <= 0:
        return 0.0
    bt = beta + T
    # in mpmath: in floats, 1 - q^(s-1) cancels when s is near 1 or t is small (hypothesis
    # found a 1e-8 relative error at s = 0.99999, t = 0.002)
    import mpmath as mp

    with mp.workdps(40):
        e, q = mp.mpf(s) - 1, mp.mpf(bt) / (mp.mpf(bt) + mp.mpf(t))
        h = float(mp.log(1 / q) if e == 0 else (1 - q ** e) / e)
    return pareto_alive_ref(params, x, tx, T) * (r + x) / (alpha + T) * bt * h


def bgbb_alive_ref(params, x, tx, n, future=0.0):
    """P(alive at opportunity n + 1 + future | x, t_x, n) of the BG/BB (FHS 2010 eq. 11)."""
    a, b, g, d = params
    return float(np.exp(betaln(a + x, b + n - x) - betaln(a, b) + betaln(g, d + n + 1 + future)
                        - betaln(g, d) - bgbb_ll(params, x, tx, n)))


def bgbb_expected_ref(params, ns, x, tx, n):
    """E[X(n, n+n*) | x, t_x, n] of the BG/BB (FHS 2010 eq. 13), as the sum over the next n*
    opportunities of P(alive at n+i and a transaction there):
    sum_i B(a+x+1, b+n-x)/B(a, b) B(g, d+n+i)/B(g, d) / L."""
    a, b, g, d = params
    if ns <= 0:
        return 0.0
    i = np.arange(1, int(ns) + 1)
    terms = (betaln(a + x + 1, b + n - x) - betaln(a, b) + betaln(g, d + n + i) - betaln(g, d)
             - bgbb_ll(params, x, tx, n))
    return float(np.exp(terms).sum())


def sbg_row_ll(params, t, censored):
    """log S(t) (censored) or log P(T = t) of the sBG (Fader & Hardie 2007, eqs. 5-6)."""
    a, b = params
    if censored:
        return betaln(a, b + t) - betaln(a, b)
    return betaln(a + 1, b + t - 1) - betaln(a, b)


def sbg_derl_ref(params, d, n):
    """DERL of the sBG (Fader & Hardie 2010 eq. 6): sum_{k>=0} S(n+1+k)/S(n) / (1+d)^k, the
    survival ratios summed directly (terms below 1e-18 of the sum dropped)."""
    a, b = params
    k = np.arange(0, 200_000)
    ls = betaln(a, b + n + 1 + k) - betaln(a, b + n) - k * np.log1p(d)
    return float(np.exp(ls).sum())


# -- session 11: BG/BB P(X(n) = k) and the cumulative-transactions tracking ---------------------

def bgbb_pmf_mp(params, n, k, dps=50):
    """P(X(n) = k) of the BG/BB for a new customer (Fader, Hardie & Shang 2010 eq. 7), each
    beta function in mpmath at ``dps`` digits, summed in that precision:
    C(n,k) B(a+k, b+n-k)/B(a,b) B(g, d+n)/B(g,d)
    + sum_{i=k}^{n-1} C(i,k) B(a+k, b+i-k)/B(a,b) B(g+1, d+i)/B(g,d); 0 for k > n."""
    import mpmath as mp
    n, k = int(n), int(k)
    if k > n:
        return 0.0
    with mp.workdps(dps):
        a, b, g, d = (mp.mpf(float(p)) for p in params)
        bab, bgd = mp.beta(a, b), mp.beta(g, d)
        total = mp.binomial(n, k) * mp.beta(a + k, b + n - k) / bab * mp.beta(g, d + n) / bgd
        for i in range(k, n):
            total += mp.binomial(i, k) * mp.beta(a + k, b + i - k) / bab \
                * mp.beta(g + 1, d + i) / bgd
        return float(total)


def bgnbd_population_expected(params, t):
    """E[X(t)] of the BG/NBD for a new customer (Fader, Hardie & Lee 2005 eq. 7):
    (a+b-1)/(a-1) [1 - (alpha/(alpha+t))^r 2F1(r, b; a+b-1; t/(alpha+t))], mpmath."""
    import mpmath as mp
    r, alpha, a, b = (mp.mpf(float(p)) for p in params)
    t = mp.mpf(float(t))
    return float((a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r
                                         * mp.hyp2f1(r, b, a + b - 1, t / (alpha + t))))


def cumulative_transactions_ref(customers, periods_of, horizon, step, expected):
    """lifetimes' ``expected_cumulative_transactions`` by plain loops. ``periods_of``: each
    transaction's period index counted from the earliest transaction's period (0-based);
    transactions after period ``horizon`` left out; one purchase per (customer, period); a
    customer's first period is their birth. For i = k * step (k = 1 .. horizon // step):
    actual_i = repeat transactions in periods 0 .. i - 1,
    predicted_i = sum over customers born in period b < i of expected((i - b) / step).
    Returns (actual list, predicted list)."""
    seen = {}
    for c, p in zip(customers, periods_of):
        if p <= horizon:
            seen.setdefault(c, set()).add(int(p))
    births, repeats = [], []
    for c, ps in seen.items():
        ordered = sorted(ps)
        births.append(ordered[0])
        repeats.extend(ordered[1:])
    actual, predicted = [], []
    for kk in range(1, horizon // step + 1):
        i = kk * step
        actual.append(sum(1 for p in repeats if p < i))
        predicted.append(sum(expected((i - b) / step) for b in births if b < i))
    return actual, predicted
