"""Plain Python/NumPy references of the recommend kernels: slow, obvious, loop by loop."""
import math

import numpy as np


def group_pairs(rows, cols, weights):
    """{(row, col): (sum of weights, count)}."""
    out = {}
    for r, c, w in zip(rows, cols, weights):
        s, n = out.get((int(r), int(c)), (0.0, 0))
        out[(int(r), int(c))] = (s + float(w), n + 1)
    return out


def topn(scores, n, seen=(), allowed=None, tiebreak=None):
    """Best n (item, score) by score desc then tiebreak[item] asc (default: item code);
    skips seen, disallowed and NaN."""
    seen = set(int(s) for s in seen)
    tb = list(range(len(scores))) if tiebreak is None else list(tiebreak)
    cand = [(float(s), j) for j, s in enumerate(scores)
            if j not in seen and (allowed is None or allowed[j]) and not math.isnan(s)]
    cand.sort(key=lambda t: (-t[0], tb[t[1]]))
    return [j for _, j in cand[:n]], [s for s, _ in cand[:n]]


def normal_equations(Y, reg, items, conf):
    """A and b of paper eq. 4 for one user (implicit's confidence convention)."""
    Y = Y.astype(np.float64)
    f = Y.shape[1]
    A = Y.T @ Y + reg * np.eye(f)
    b = np.zeros(f)
    for i, c in zip(items, conf):
        A += (c - 1.0) * np.outer(Y[i], Y[i])
        b += c * Y[i]
    return A, b


def cg_user(x0, Y, reg, items, conf, steps):
    """Textbook conjugate gradient on the normal equations, from x0 (a row without items is
    set to its exact solution 0, as implicit does)."""
    if len(items) == 0:
        return np.zeros_like(x0, dtype=np.float64)
    A, b = normal_equations(Y, reg, items, conf)
    x = x0.astype(np.float64).copy()
    r = b - A @ x
    p = r.copy()
    rs = r @ r
    if rs < 1e-20:
        return x
    for _ in range(steps):
        ap = A @ p
        alpha = rs / (p @ ap)
        x += alpha * p
        r -= alpha * ap
        rs_new = r @ r
        if rs_new < 1e-20:
            break
        p = r + rs_new / rs * p
        rs = rs_new
    return x


def als_objective(C_dense, X, Y, reg):
    """Eq. 3 over the full matrix: stored entries (C > 0) have p = 1 and confidence C."""
    X = X.astype(np.float64)
    Y = Y.astype(np.float64)
    S = X @ Y.T
    P = (C_dense > 0).astype(float)
    Cf = np.where(C_dense > 0, C_dense, 1.0)
    return float(np.sum(Cf * (P - S) ** 2) + reg * (np.sum(X * X) + np.sum(Y * Y)))


def ranking_metrics(recs, test_sets, n_items, K):
    """implicit.evaluation.ranking_metrics_at_k, written out; a ``-1`` ends a short list (padding
    is not a miss)."""
    relevant = pr_div = total = 0.0
    mean_ap = ndcg = mean_auc = 0.0
    recalls = []
    cg = [1.0 / math.log2(i + 2) for i in range(K)]
    for row, likes in zip(recs, test_sets):
        likes = set(likes)
        if not likes:
            continue
        pr_div += min(K, len(likes))
        ap = hit = miss = auc = 0.0
        idcg = sum(cg[:min(K, len(likes))])
        n_pos = len(likes)
        n_neg = n_items - n_pos
        for i in range(K):
            if row[i] < 0:
                break
            if row[i] in likes:
                relevant += 1
                hit += 1
                ap += hit / (i + 1)
                ndcg += cg[i] / idcg
            else:
                miss += 1
                auc += hit
        auc += ((hit + n_pos) / 2.0) * (n_neg - miss)
        mean_ap += ap / min(K, len(likes))
        mean_auc += auc / (n_pos * n_neg)
        recalls.append(hit / n_pos)
        total += 1
    return {"precision": relevant / pr_div, "map": mean_ap / total, "ndcg": ndcg / total,
            "auc": mean_auc / total, "recall": float(np.mean(recalls))}


def item_knn(W, K):
    """Dense W (customers x items): top-K columns of W^T W per row (score desc, item asc),
    only entries with a common customer."""
    W = np.asarray(W, dtype=np.float64)
    S = W.T @ W
    co = (W != 0).astype(int)
    common = co.T @ co
    out = []
    for i in range(S.shape[0]):
        cand = [(S[i, j], j) for j in range(S.shape[1]) if common[i, j] > 0]
        cand.sort(key=lambda t: (-t[0], t[1]))
        out.append(cand[:K])
    return out


# -- session 11: similar customers / items with candidate and exclusion lists -----------------

def cosine_similar(F, row, n, allowed=None):
    """implicit's similar_users / similar_items on factors ``F``: cosine of row ``row`` with
    every row (itself included; a zero row has norm 1), best ``n`` by score desc then row
    asc, only ``allowed`` rows when given. Returns (rows, scores) as lists."""
    F = np.asarray(F, dtype=np.float64)
    norms = [math.sqrt(sum(v * v for v in F[j])) or 1.0 for j in range(F.shape[0])]
    scores = [float(F[row] @ F[j]) / (norms[row] * norms[j]) for j in range(F.shape[0])]
    return topn(scores, n, allowed=allowed)


def leave_k_out_expectation(pairs_per_customer, k):
    """implicit's leave_k_out_split contract per customer (train_only_size 0): a customer with
    more than k + 1 distinct pairs has exactly k of them in test, the others none."""
    return {c: (k if m > k + 1 else 0) for c, m in pairs_per_customer.items()}
