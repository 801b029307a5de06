"""Plain NumPy/scipy references for the monitor kernels (drift and model quality)."""
import numpy as np
from scipy import stats
from scipy.spatial.distance import jensenshannon

EPS = 1e-4


def quantile_bins(ref, cur, n_bins):
    """Bin proportions on the reference's inverted-CDF quantile edges, bins (e[b-1], e[b]].

    The edge k / n_bins is the sorted reference's value of rank ceil(k n / n_bins), taken in
    integers: ``np.quantile(..., method="inverted_cdf")`` forms k / n_bins in floating point and
    picks the next rank when k n / n_bins is a whole number it rounds up (n = 19151, k = 9 of 11)."""
    ref = np.sort(np.asarray(ref, dtype=float))
    n = ref.size
    ranks = [(k * n + n_bins - 1) // n_bins - 1 for k in range(1, n_bins)]
    edges = np.unique(ref[ranks])
    def props(x):
        below = np.searchsorted(np.sort(x), edges, side="right")
        counts = np.diff(np.concatenate([[0], below, [len(x)]]))
        return counts / len(x)
    return props(ref), props(np.asarray(cur, dtype=float))


def psi(p, q, eps=EPS):
    p = np.where(p > 0, p, eps)
    q = np.where(q > 0, q, eps)
    return float(np.sum((q - p) * np.log(q / p)))


def numeric_drift(ref, cur, n_bins=10):
    ref = np.asarray(ref, dtype=float)
    cur = np.asarray(cur, dtype=float)
    p, q = quantile_bins(ref, cur, n_bins)
    ks = stats.ks_2samp(ref, cur)  # method "auto": exact up to 10,000 values per side
    w = stats.wasserstein_distance(ref, cur)
    return {"psi": psi(p, q), "js_distance": float(jensenshannon(p, q)),
            "ks_statistic": float(ks.statistic), "ks_pvalue": float(ks.pvalue),
            "wasserstein": float(w), "wasserstein_norm": float(w / np.std(ref))}


def categorical_drift(ref, cur):
    """Chi-square of current counts vs reference proportions over the union of categories."""
    keys = sorted(set(ref) | set(cur))
    rc = np.array([np.sum(np.asarray(ref) == k) for k in keys], dtype=float)
    cc = np.array([np.sum(np.asarray(cur) == k) for k in keys], dtype=float)
    p, q = rc / rc.sum(), cc / cc.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        chi = stats.chisquare(cc, rc * cc.sum() / rc.sum()) if np.all(rc > 0) else None
    return {"psi": psi(p, q), "js_distance": float(jensenshannon(p, q)),
            "chi2_statistic": float(chi.statistic) if chi is not None else np.inf,
            "chi2_pvalue": float(chi.pvalue) if chi is not None else 0.0,
            "new": [k for k, r, c in zip(keys, rc, cc) if r == 0],
            "missing": [k for k, r, c in zip(keys, rc, cc) if c == 0]}


def weighted_rank(values, weights, x):
    """Weight of the points <= x (for checking sketches)."""
    return float(np.sum(weights[values <= x]))


def quality(p, y, k=0.1, n_bins=10):
    """ECE on uniform bins and precision/recall at the top k (descending score; ties broken by
    reversed input order, as the kernel documents)."""
    p = np.asarray(p, dtype=float)
    y = np.asarray(y, dtype=float)
    n = len(p)
    bins = np.searchsorted(np.linspace(0, 1, n_bins + 1)[1:-1], p)
    ece = sum(abs(p[bins == b].sum() - y[bins == b].sum()) for b in range(n_bins)) / n
    kk = int(np.ceil(k * n - 1e-9)) if k <= 1 else min(int(k), n)
    order = np.argsort(p, kind="stable")[::-1]
    hits = y[order[:kk]].sum()
    return {"ece": ece, "precision_at_k": hits / kk if kk else np.nan,
            "recall_at_k": hits / y.sum() if y.sum() else np.nan}


def lift(p, y, n_dec=10):
    p = np.asarray(p, dtype=float)
    y = np.asarray(y, dtype=float)
    order = np.argsort(p, kind="stable")[::-1]
    n = len(p)
    dec = np.arange(n) * n_dec // n
    count = np.bincount(dec, minlength=n_dec).astype(float)
    pos = np.bincount(dec, weights=y[order], minlength=n_dec)
    rate = pos / count
    overall = y.mean()
    return {"count": count, "positives": pos, "rate": rate, "lift": rate / overall,
            "cumulative_gain": np.cumsum(pos) / y.sum(),
            "cumulative_lift": np.cumsum(pos) / np.cumsum(count) / overall}
