"""Plain NumPy/scipy references for the experiment readouts: per-user computations that the
readout gets from one pass of sums."""
import numpy as np
from scipy import stats


def welch_users(y_c, y_t, alpha=0.05):
    res = stats.ttest_ind(y_t, y_c, equal_var=False)
    ci = res.confidence_interval(1 - alpha)
    return {"diff": y_t.mean() - y_c.mean(), "p_value": res.pvalue, "ci_low": ci.low,
            "ci_high": ci.high}


def cuped_users(y_c, x_c, y_t, x_t):
    """Adjusted values y - theta (x - mean x), theta = cov(y, x) / var(x) over both arms."""
    y = np.concatenate([y_c, y_t])
    x = np.concatenate([x_c, x_t])
    theta = np.cov(y, x)[0, 1] / np.var(x, ddof=1)
    return y_c - theta * (x_c - x.mean()), y_t - theta * (x_t - x.mean())


def ratio_delta(num, den):
    """Delta-method variance of sum(num)/sum(den) from per-user values."""
    n = len(num)
    r = num.sum() / den.sum()
    c = np.cov(num, den)
    return r, (c[0, 0] - 2 * r * c[0, 1] + r * r * c[1, 1]) / (n * den.mean() ** 2)
