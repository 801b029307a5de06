"""Plain Python/NumPy references for the scoring kernels (slow, obviously correct)."""
import math

import numpy as np


def tree_leaf(tree, x):
    """Leaf index a row ``x`` reaches in a canonical ``Tree`` (see fastengage.scoring.trees)."""
    if tree.n_internal == 0:
        return 0
    node = 0
    while node >= 0:
        v = float(x[tree.feature[node]])
        kind = tree.kind[node]
        if kind == 3:  # categorical bitset
            go = False
            if not math.isnan(v) and v >= 0:
                iv = int(v)
                words = tree.cat_bits[node]
                go = iv // 32 < len(words) and bool((int(words[iv // 32]) >> (iv % 32)) & 1)
        elif math.isnan(v):
            go = bool(tree.nan_left[node])
        elif kind == 0:
            go = v <= tree.threshold[node]
        elif kind == 1:
            go = v == tree.threshold[node]
        else:
            go = bool(tree.nan_left[node]) if abs(v) <= 1e-35 else v <= tree.threshold[node]
        node = tree.left[node] if go else tree.right[node]
    return ~node


def tree_raw(trees, X, n_raw, dtype=np.float64):
    """Sum of leaf values per output, tree after tree, in ``dtype``."""
    out = np.zeros((X.shape[0], n_raw), dtype)
    for i in range(X.shape[0]):
        for t in trees:
            out[i, t.target] += dtype(t.leaf_value[tree_leaf(t, X[i])])
    return out


def linear(cols, coef, intercept):
    """``(n, K)``: intercept + sum_j coef[k, j] * cols[j]."""
    X = np.column_stack(cols)
    return X @ np.asarray(coef).T + intercept


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)
