"""Plain NumPy references for the bandit kernels.

* Open Bandit Pipeline 0.5.7's estimators (``obp/ope/estimators.py``), transcribed line by line
  (obp itself cannot be installed here: it pins torch 1.12, scikit-learn 1.1.3, scipy 1.9.3),
  and its ``RegressionModel.fit_predict`` ("normal" fitting, per-position models, KFold
  cross-fitting) and ``estimate_confidence_interval_by_bootstrap`` given resample indices.
* The counter-based random streams of ``kernels/bandits/decide_rng.h``, vectorised in NumPy
  uint64.
* Ridge statistics and LinUCB/epsilon-greedy decisions with their exact propensities.
"""
from __future__ import annotations

import math

import numpy as np

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
M1 = np.uint64(0xBF58476D1CE4E5B9)
M2 = np.uint64(0x94D049BB133111EB)
STREAM = np.uint64(0xD1B54A32D192ED03)


# -- random streams -------------------------------------------------------------------------
def mix64(z):
    z = np.asarray(z, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * M1
        z = (z ^ (z >> np.uint64(27))) * M2
    return z ^ (z >> np.uint64(31))


def stream_base(seed, row):
    with np.errstate(over="ignore"):
        return mix64(np.uint64(seed) ^ mix64(np.asarray(row, np.uint64) * STREAM + GOLDEN))


def uniforms(seed, row, count):
    """The first ``count`` uniforms of stream ``(seed, row)``."""
    k = np.arange(1, count + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        states = stream_base(seed, row) + k * GOLDEN
    return (mix64(states) >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)


def bootstrap_indices(seed, replicate, n):
    return np.minimum((uniforms(seed, replicate, n) * n).astype(np.int64), n - 1)


# -- obp estimators -------------------------------------------------------------------------
def obp_round_rewards(name, reward, action, pscore, action_dist, q_hat=None, position=None,
                      lambda_=np.inf):
    """obp's ``_estimate_round_rewards`` of estimator ``name`` (obp's ``lambda_`` semantics)."""
    n = action.shape[0]
    if position is None:
        position = np.zeros(n, dtype=int)
    idx = np.arange(n)
    iw = action_dist[idx, action, position] / pscore
    if name == "ipw":
        return reward * np.minimum(iw, lambda_)
    if name == "snipw":
        return reward * iw / iw.mean()
    q_at_pos = q_hat[idx, :, position]
    q_factual = q_hat[idx, action, position]
    pi_at_pos = action_dist[idx, :, position]
    dm = np.average(q_at_pos, weights=pi_at_pos, axis=1)
    if name == "dm":
        return dm
    if name == "dr":
        return dm + np.minimum(iw, lambda_) * (reward - q_factual)
    if name == "sndr":
        return dm + iw * (reward - q_factual) / iw.mean()
    if name == "switch-dr":
        return dm + np.array(iw <= lambda_, dtype=int) * iw * (reward - q_factual)
    if name == "dr-os":
        iw_hat = (lambda_ * iw) / (iw ** 2 + lambda_) if lambda_ < np.inf else iw
        return dm + iw_hat * (reward - q_factual)
    raise ValueError(name)


def obp_interval(samples, indices, alpha=0.05):
    """obp's bootstrap interval with given resample indices (B, n) instead of its RandomState."""
    boot = [np.mean(samples[ix]) for ix in indices]
    return (np.mean(boot), np.percentile(boot, 100 * (alpha / 2)),
            np.percentile(boot, 100 * (1.0 - alpha / 2)))


def obp_regression_fit_predict(base_model, context, action, reward, position, n_actions,
                               len_list, action_context=None, n_folds=1, random_state=None):
    """obp's ``RegressionModel(fitting_method="normal").fit_predict``."""
    from sklearn.base import clone, is_classifier
    from sklearn.model_selection import KFold

    if action_context is None:
        action_context = np.eye(n_actions, dtype=int)
    models = [clone(base_model) for _ in range(len_list)]

    def fit(c, a, r, p):
        for pos_ in range(len_list):
            idx = p == pos_
            models[pos_].fit(np.c_[c[idx], action_context[a[idx]]], r[idx])

    def predict(c):
        n = c.shape[0]
        q = np.zeros((n, n_actions, len_list))
        for a in range(n_actions):
            for pos_ in range(len_list):
                X = np.c_[c, action_context[a * np.ones(n, int)]]
                m = models[pos_]
                q[np.arange(n), a, pos_] = (m.predict_proba(X)[:, 1] if is_classifier(m)
                                            else m.predict(X))
        return q

    if n_folds == 1:
        fit(context, action, reward, position)
        return predict(context)
    q_hat = np.zeros((context.shape[0], n_actions, len_list))
    for tr, te in KFold(n_splits=n_folds, shuffle=True, random_state=random_state).split(context):
        fit(context[tr], action[tr], reward[tr], position[tr])
        q_hat[te] = predict(context[te])
    return q_hat


# -- policies -------------------------------------------------------------------------------
def ridge_stats(X, arms, rewards, n_arms, lam):
    """Per arm: A = X^T X + lam I, b = X^T r, theta = A^-1 b, A^-1."""
    d = X.shape[1]
    A = np.stack([lam * np.eye(d) + X[arms == a].T @ X[arms == a] for a in range(n_arms)])
    b = np.stack([X[arms == a].T @ rewards[arms == a] for a in range(n_arms)])
    A_inv = np.linalg.inv(A)
    theta = np.einsum("kij,kj->ki", A_inv, b)
    return A, b, theta, A_inv


def linucb_scores(X, theta, A_inv, alpha):
    mean = X @ theta.T
    width = np.sqrt(np.einsum("ni,kij,nj->nk", X, A_inv, X))
    return mean, mean + alpha * width


def greedy_propensities(scores, mask, epsilon):
    """Exact probability of every arm under epsilon-greedy with random tie-breaking."""
    scores = np.where(mask, scores, -np.inf)
    best = scores == scores.max(axis=1, keepdims=True)
    best &= mask
    n_elig = mask.sum(axis=1, keepdims=True)
    n_best = best.sum(axis=1, keepdims=True)
    return np.where(mask, epsilon / n_elig + (1 - epsilon) * best / n_best, 0.0)


def gaussian_argmax_probabilities(mean, sd, grid=20001):
    """P(arm a has the largest of independent N(mean_a, sd_a^2) draws), by quadrature."""
    from scipy.stats import norm

    lo = (mean - 8 * sd).min()
    hi = (mean + 8 * sd).max()
    t = np.linspace(lo, hi, grid)
    pdf = norm.pdf((t[None] - mean[:, None]) / sd[:, None]) / sd[:, None]
    cdf = norm.cdf((t[None] - mean[:, None]) / sd[:, None])
    out = []
    for a in range(mean.shape[0]):
        others = np.prod(np.delete(cdf, a, axis=0), axis=0)
        out.append(np.trapezoid(pdf[a] * others, t))
    return np.array(out)


class HybridLinUCBAlgorithm2:
    """Hybrid LinUCB exactly as Li et al. (2010), Algorithm 2, written out: ``A0``/``b0`` and the
    per-arm ``A_a``/``B_a``/``b_a`` updated row by row with the paper's add/subtract steps,
    explicit inverses (``lam`` replaces the paper's identity priors)."""

    def __init__(self, n_arms, k, d, alpha, lam=1.0):
        self.alpha = alpha
        self.A0, self.b0 = lam * np.eye(k), np.zeros(k)
        self.A = [lam * np.eye(d) for _ in range(n_arms)]
        self.B = [np.zeros((d, k)) for _ in range(n_arms)]
        self.b = [np.zeros(d) for _ in range(n_arms)]

    def scores(self, z, x):
        """(mean, s, p) per arm for one row: the paper's lines 5-12."""
        A0i = np.linalg.inv(self.A0)
        beta = A0i @ self.b0
        mean, s, p = [], [], []
        for A, B, b in zip(self.A, self.B, self.b):
            Ai = np.linalg.inv(A)
            theta = Ai @ (b - B @ beta)
            var = (z @ A0i @ z - 2 * z @ A0i @ B.T @ Ai @ x + x @ Ai @ x
                   + x @ Ai @ B @ A0i @ B.T @ Ai @ x)
            mean.append(z @ beta + x @ theta)
            s.append(var)
            p.append(mean[-1] + self.alpha * np.sqrt(var))
        return np.array(mean), np.array(s), np.array(p)

    def update(self, a, z, x, r):
        """The paper's lines 17-23."""
        Ai = np.linalg.inv(self.A[a])
        self.A0 += self.B[a].T @ Ai @ self.B[a]
        self.b0 += self.B[a].T @ Ai @ self.b[a]
        self.A[a] += np.outer(x, x)
        self.B[a] += np.outer(x, z)
        self.b[a] += r * x
        Ai = np.linalg.inv(self.A[a])
        self.A0 += np.outer(z, z) - self.B[a].T @ Ai @ self.B[a]
        self.b0 += r * z - self.B[a].T @ Ai @ self.b[a]


def task_arm_sums(X, arms, r, K, rows_per_task):
    """Per task (``rows_per_task`` consecutive rows) and arm: ``sum x x^T``, ``sum r x`` and
    ``(count, sum r, sum r^2)``, every entry summed row by row in input order (what
    ``kernels/bandits/ridge.block_sums`` promises, so the comparison is bit for bit)."""
    n, d = X.shape
    T = max(1, -(-n // rows_per_task))
    G, g, s = np.zeros((T, K, d, d)), np.zeros((T, K, d)), np.zeros((T, K, 3))
    for i in range(n):
        t, a = i // rows_per_task, arms[i]
        G[t, a] += np.outer(X[i], X[i])
        g[t, a] += r[i] * X[i]
        s[t, a] += (1.0, r[i], r[i] * r[i])
    return G, g, s


# -- decisions of every policy kind, row by row in plain Python floats ------------------------
# The kernels (kernels/bandits/decide_core.h) promise every sum in index order and no fused
# multiply-add, and their random draws are the streams above through libm's log/cos/pow, which
# Python's math module and ``**`` call too: so this reference gives the same bits.
GREEDY, UCB, GAUSS_TS, BETA_TS = 0, 1, 2, 3
_MASK64 = (1 << 64) - 1
_G, _M1, _M2, _S = int(GOLDEN), int(M1), int(M2), int(STREAM)


def _mix64_int(z):
    z = ((z ^ (z >> 30)) * _M1) & _MASK64
    z = ((z ^ (z >> 27)) * _M2) & _MASK64
    return z ^ (z >> 31)


class Stream:
    """The counter stream ``(seed, row)`` of ``kernels/bandits/decide_rng.h``, one draw at a
    time."""

    def __init__(self, seed, row):
        self.state = _mix64_int(int(seed) ^ _mix64_int((int(row) * _S + _G) & _MASK64))

    def uniform(self):
        self.state = (self.state + _G) & _MASK64
        return float(_mix64_int(self.state) >> 11) * (1.0 / 9007199254740992.0)

    def normal(self):
        u1, u2 = self.uniform(), self.uniform()
        return math.sqrt(-2.0 * math.log(1.0 - u1)) * math.cos(2.0 * math.pi * u2)

    def gamma(self, shape):
        boost = 1.0
        if shape < 1.0:
            boost = (1.0 - self.uniform()) ** (1.0 / shape)
            shape += 1.0
        d = shape - 1.0 / 3.0
        c = 1.0 / math.sqrt(9.0 * d)
        while True:
            z = self.normal()
            v = 1.0 + c * z
            if v <= 0.0:
                continue
            v = v * v * v
            u = self.uniform()
            if math.log(1.0 - u) < 0.5 * z * z + d - d * v + d * math.log(v):
                return d * v * boost

    def beta(self, a, b):
        x = self.gamma(a)
        y = self.gamma(b)
        return x / (x + y)

    def index(self, n):
        k = int(self.uniform() * n)
        return k if k < n else n - 1


def arm_mean_width(x, theta, L_inv, base_mean, base_var, scale):
    """Per arm: ``base_mean + theta . x`` and ``scale * sqrt(base_var + |L_inv x|^2)``, every
    sum in index order (what the kernels compute, bit for bit)."""
    K, d = theta.shape
    mean, width = np.empty(K), np.empty(K)
    for a in range(K):
        s = float(base_mean[a])
        for j in range(d):
            s += float(theta[a, j]) * float(x[j])
        mean[a] = s
        q = float(base_var[a])
        for i in range(d):
            z = 0.0
            for j in range(i + 1):
                z += float(L_inv[a, i, j]) * float(x[j])
            q += z * z
        width[a] = q if q == math.inf else (scale * math.sqrt(q) if q > 0.0 else 0.0)
    return mean, width


def decide_row(x, elig, theta, L_inv, base_mean, base_var, scale, beta_a, beta_b, kind,
               epsilon, seed, row, draws):
    """One row's ``(arm, propensity, expected reward per arm, probability per arm)`` as
    ``kernels/bandits/decide.py`` documents it: greedy/UCB with uniform tie-breaking and exact
    propensities from the row's stream (drawn only when needed: an epsilon or a tie), Thompson
    sampling as the decision's draw plus ``draws`` further draws (their shares)."""
    K = theta.shape[0]
    mean, width = arm_mean_width(x, theta, L_inv, base_mean, base_var, scale)
    elig = np.asarray(elig, bool)
    dist = np.zeros(K)
    if not elig.any():
        return -1, math.nan, np.full(K, np.nan), dist
    if kind == BETA_TS:
        mean = np.where(elig, beta_a / (beta_a + beta_b), mean)
    expected = np.where(elig, mean, np.nan)
    arms = np.flatnonzero(elig)
    if kind in (GREEDY, UCB):
        score = {a: mean[a] + width[a] if kind == UCB else mean[a] for a in arms}
        score = {a: -math.inf if math.isnan(s) else s for a, s in score.items()}  # overflow
        best = max(score.values())
        top = [a for a in arms if score[a] == best]
        eps = epsilon if kind == GREEDY else 0.0
        explore, k = False, 0
        if eps > 0.0 or len(top) > 1:
            stream = Stream(seed, row)
            if eps > 0.0:
                explore = stream.uniform() < eps
            k = stream.index(len(arms) if explore else len(top))
        for a in arms:
            dist[a] = eps / len(arms) + ((1.0 - eps) / len(top) if a in top else 0.0)
        chosen = (arms if explore else top)[k]
        return int(chosen), dist[chosen], expected, dist
    stream = Stream(seed, row)

    def draw():
        best, arm = -math.inf, -1
        for a in arms:
            s = (stream.beta(beta_a[a], beta_b[a]) if kind == BETA_TS
                 else mean[a] + width[a] * stream.normal())
            if arm < 0 or s > best:
                best, arm = s, a
        return arm

    chosen = draw()
    dist[chosen] += 1.0
    for _ in range(draws):
        dist[draw()] += 1.0
    dist /= draws + 1.0
    return int(chosen), dist[chosen], expected, dist


def arm_codes(values, arms):
    """Position of each id of ``values`` in ``arms`` (a Python dict), -1 for an unknown id."""
    position = {a: i for i, a in enumerate(arms)}
    return [position.get(v, -1) for v in values]
