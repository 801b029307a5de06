"""Closed-form test statistics on summary numbers (counts, means, variances), vectorised over
arms/metrics/segments. The readouts call these on the sums of one kernel pass; they can also be
called directly with numbers from elsewhere."""
from __future__ import annotations

import numpy as np
from scipy import optimize, stats

from ..errors import InputError


def _arr(*values):
    return [np.asarray(v, dtype=np.float64) for v in values]


def proportions_ztest(count, nobs):
    """Two-proportion z-test of count[0]/nobs[0] - count[1]/nobs[1] with pooled variance, as
    ``statsmodels.stats.proportion.proportions_ztest``: returns (z, two-sided p)."""
    (c1, c2), (n1, n2) = _arr(*count), _arr(*nobs)
    with np.errstate(invalid="ignore", divide="ignore"):  # an empty arm: NaN, no warning
        p1, p2 = c1 / n1, c2 / n2
        pooled = (c1 + c2) / (n1 + n2)
        z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    return z, 2 * stats.norm.sf(np.abs(z))


def conversion(c_control, n_control, c_treat, n_treat, alpha=0.05):
    """Treatment minus control conversion: ``diff``, Wald interval (unpooled), pooled z-test
    p-value, relative ``lift`` = diff / control rate with a delta-method interval."""
    cc, nc, ct, nt = _arr(c_control, n_control, c_treat, n_treat)
    with np.errstate(invalid="ignore", divide="ignore"):  # an empty arm: NaN, no warning
        pc, pt = cc / nc, ct / nt
        var_c, var_t = pc * (1 - pc) / nc, pt * (1 - pt) / nt
    z, p = proportions_ztest((ct, cc), (nt, nc))
    return _interval(pc, pt, var_c, var_t, p, alpha, stats.norm.ppf(1 - alpha / 2)) | {"z": z}


def welch(mean_c, var_c, n_c, mean_t, var_t, n_t, alpha=0.05):
    """Welch's t-test of treatment minus control from means, variances (ddof=1) and counts;
    ``ci`` uses the t quantile at the Welch-Satterthwaite degrees of freedom (as scipy's
    ``ttest_ind(equal_var=False)`` and gbstats)."""
    mc, vc, nc, mt, vt, nt = _arr(mean_c, var_c, n_c, mean_t, var_t, n_t)
    sc, st = vc / nc, vt / nt
    with np.errstate(invalid="ignore", divide="ignore"):
        df = (sc + st) ** 2 / (sc ** 2 / (nc - 1) + st ** 2 / (nt - 1))
        t = (mt - mc) / np.sqrt(sc + st)
    # both variances zero: df is 0/0, yet any df gives the same p (0 for a difference, NaN for
    # none); scipy's ttest_ind(equal_var=False) takes df = 1 there (its test_ttest_ind_zero_
    # division: zeros vs ones -> t = -inf, p = 0), so a constant metric that moved is significant
    df = np.where(np.isnan(df), 1.0, df)
    p = 2 * stats.t.sf(np.abs(t), df)
    return _interval(mc, mt, sc, st, p, alpha, stats.t.ppf(1 - alpha / 2, df)) | \
        {"t": t, "df": df}


def _interval(mc, mt, sc, st, p, alpha, q):
    """diff, its interval (quantile q), and the relative lift mt/mc - 1 with a delta-method
    interval (normal quantile): var(mt/mc) ~ st/mc^2 + mt^2 sc/mc^4."""
    diff = mt - mc
    se = np.sqrt(sc + st)
    with np.errstate(invalid="ignore", divide="ignore"):
        lift = diff / mc
        lift_se = np.sqrt(st / mc ** 2 + mt ** 2 * sc / mc ** 4)
    z = stats.norm.ppf(1 - alpha / 2)
    return {"control": mc, "treatment": mt, "diff": diff, "se": se, "ci_low": diff - q * se,
            "ci_high": diff + q * se, "p_value": p, "lift": lift, "lift_ci_low": lift - z * lift_se,
            "lift_ci_high": lift + z * lift_se}


def ratio_moments(n, sum_num, sum_den, var_num, var_den, cov):
    """Ratio metric sum(num)/sum(den) per arm and its delta-method variance:
    (var_num - 2 R cov + R^2 var_den) / (n mean_den^2)."""
    n, sn, sd, vn, vd, c = _arr(n, sum_num, sum_den, var_num, var_den, cov)
    ratio = sn / sd
    mean_den = sd / n
    return ratio, (vn - 2 * ratio * c + ratio ** 2 * vd) / (n * mean_den ** 2)


def delta_ratio(ratio_c, var_c, ratio_t, var_t, alpha=0.05):
    """z-test and intervals for treatment minus control of a ratio metric (delta method)."""
    rc, vc, rt, vt = _arr(ratio_c, var_c, ratio_t, var_t)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (rt - rc) / np.sqrt(vc + vt)
    p = 2 * stats.norm.sf(np.abs(z))
    return _interval(rc, rt, vc, vt, p, alpha, stats.norm.ppf(1 - alpha / 2)) | {"z": z}


def cuped_theta(var_x, cov_xy):
    """CUPED coefficient theta = cov(y, x) / var(x) (pooled over arms); 0 when x is constant."""
    vx, c = _arr(var_x, cov_xy)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(vx > 0, c / vx, 0.0)


def srm(counts, expected=None):
    """Sample-ratio-mismatch chi-square test of arm sizes against the expected split (equal by
    default); returns (statistic, p-value), as ``scipy.stats.chisquare``."""
    counts = np.asarray(counts, dtype=np.float64)
    share = np.full(counts.shape, 1 / counts.size) if expected is None else \
        np.asarray(expected, dtype=np.float64) / np.sum(expected)
    exp = share * counts.sum()
    stat = float(np.sum((counts - exp) ** 2 / exp))
    return stat, float(stats.chi2.sf(stat, counts.size - 1))


def adjust_pvalues(p, method: str | None):
    """Multiple-testing correction: None, ``"bonferroni"``, ``"holm"`` or ``"fdr_bh"``
    (Benjamini-Hochberg), as ``statsmodels.stats.multitest.multipletests``. NaN stays NaN."""
    p = np.asarray(p, dtype=np.float64)
    if method is None:
        return p.copy()
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    q = p[ok]
    m = q.size
    if m == 0:
        return out
    order = np.argsort(q, kind="stable")
    if method == "bonferroni":
        adj = np.minimum(q * m, 1.0)
    elif method == "holm":
        s = np.maximum.accumulate((m - np.arange(m)) * q[order])
        adj = np.empty(m)
        adj[order] = np.minimum(s, 1.0)
    elif method == "fdr_bh":
        s = q[order] * m / np.arange(1, m + 1)
        s = np.minimum.accumulate(s[::-1])[::-1]
        adj = np.empty(m)
        adj[order] = np.minimum(s, 1.0)
    else:
        raise InputError(f"correction must be None, 'bonferroni', 'holm' or 'fdr_bh', got {method!r}")
    out[ok] = adj
    return out


def power(effect, sd_control, n_control, *, sd_treatment=None, ratio=1.0, alpha=0.05):
    """Power of the two-sided z-test to detect ``effect`` (difference in means) with
    ``n_control`` users in control and ``ratio * n_control`` in treatment (both tails counted,
    as statsmodels' ``NormalIndPower``)."""
    sd_t = sd_control if sd_treatment is None else sd_treatment
    se = np.sqrt(sd_control ** 2 / n_control + sd_t ** 2 / (ratio * n_control))
    z = stats.norm.ppf(1 - alpha / 2)
    shift = np.abs(effect) / se
    return stats.norm.sf(z - shift) + stats.norm.cdf(-z - shift)


def sample_size(effect, sd_control, *, sd_treatment=None, ratio=1.0, alpha=0.05, power_=0.8):
    """Users needed in control (treatment: ``ratio`` times as many) for the two-sided z-test to
    reach ``power_`` at ``effect``. For a conversion rate p, pass sd = sqrt(p (1 - p)) per arm."""
    if not 0 < power_ < 1 or not 0 < alpha < 1:
        raise InputError("alpha and power_ must lie in (0, 1)")
    if effect == 0:
        raise InputError("effect must be non-zero")
    return optimize.brentq(lambda n: power(effect, sd_control, n, sd_treatment=sd_treatment,
                                           ratio=ratio, alpha=alpha) - power_, 1e-6, 1e15,
                           xtol=1e-10, rtol=1e-14)
