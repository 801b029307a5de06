"""Connected components of an id graph (identity resolution), by union-find.

Design: called by :func:`fastengage.features.identity.resolve` with the dense codes of both link
columns. Codes come from one id map in first-seen order, so the two ends of a link usually have
nearby codes and the parent array is walked with good locality, which is why a serial union-find
beats building a sparse matrix and searching it (scipy's ``connected_components``). Each root is
the smallest code of its tree (union by smaller code, path halving), so the result does not
depend on the order of the links.
"""
import numpy as np
from numba import njit

from ..common.config import NJIT
from .pairset import EMPTY, insert, pair_key


@njit(**NJIT)
def _find(parent, a):
    while parent[a] != a:
        parent[a] = parent[parent[a]]
        a = parent[a]
    return a


@njit(**NJIT)
def link_counts(left,   # IN  int64[m] codes of the left ids
                right,  # IN  int64[m] codes of the right ids
                n):     # IN  number of distinct ids
    """Links touching each id (a self link counts once), and the number of self links."""
    counts = np.zeros(n, np.int64)
    n_self = 0
    for e in range(left.shape[0]):
        a = left[e]
        b = right[e]
        counts[a] += 1
        if a == b:
            n_self += 1
        else:
            counts[b] += 1
    return counts, n_self


@njit(**NJIT)
def distinct_degrees(left, right, n, capacity):
    """Distinct neighbours of each id (repeated links and self links count once / not at all).
    ``capacity`` comes from :func:`pairset.capacity_for` (the pair set's load <= 7/10)."""
    table = np.full(capacity, EMPTY, dtype=np.int64)
    degree = np.zeros(n, np.int64)
    for e in range(left.shape[0]):
        a = left[e]
        b = right[e]
        if a == b:
            continue
        lo = min(a, b)
        hi = max(a, b)
        if insert(table, pair_key(lo, hi)):
            degree[lo] += 1
            degree[hi] += 1
    return degree


@njit(**NJIT)
def components(left,   # IN  int64[m] codes of the left ids
               right,  # IN  int64[m] codes of the right ids
               keep,   # IN  bool[n] False for ids that are cut (their links are ignored)
               n):     # IN  number of distinct ids
    """Root (smallest code of the component) of every id, and each component's size at its root."""
    parent = np.arange(n, dtype=np.int64)
    for e in range(left.shape[0]):
        a = left[e]
        b = right[e]
        if not keep[a] or not keep[b]:
            continue
        ra = _find(parent, a)
        rb = _find(parent, b)
        if ra < rb:
            parent[rb] = ra
        elif rb < ra:
            parent[ra] = rb
    size = np.zeros(n, np.int64)
    for i in range(n):  # parents have smaller codes: one forward pass flattens every path
        parent[i] = parent[parent[i]]
        size[parent[i]] += 1
    return parent, size


@njit(**NJIT)
def smallest_int_per_root(root, values):
    """For each id, the smallest integer id of its component."""
    n = root.shape[0]
    best = values.copy()
    for i in range(n):
        r = root[i]
        if values[i] < best[r]:
            best[r] = values[i]
    out = np.empty(n, values.dtype)
    for i in range(n):
        out[i] = best[root[i]]
    return out


@njit(**NJIT)
def _less_bytes(data, a0, a1, b0, b1):
    la = a1 - a0
    lb = b1 - b0
    for k in range(min(la, lb)):
        x = data[a0 + k]
        y = data[b0 + k]
        if x != y:
            return x < y
    return la < lb


@njit(**NJIT)
def smallest_string_per_root(root, offsets, data):
    """For each id, the code of the smallest (bytewise) string id of its component."""
    n = root.shape[0]
    best = np.arange(n, dtype=np.int64)
    for i in range(n):
        r = root[i]
        j = best[r]
        if _less_bytes(data, offsets[i], offsets[i + 1], offsets[j], offsets[j + 1]):
            best[r] = i
    out = np.empty(n, np.int64)
    for i in range(n):
        out[i] = best[root[i]]
    return out
