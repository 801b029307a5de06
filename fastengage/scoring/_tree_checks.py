"""Structure checks shared by the tree-model readers (ONNX, LightGBM) and :class:`Tree`."""
from __future__ import annotations

import numpy as np

__all__ = ["structure_problem"]


def structure_problem(left: np.ndarray, right: np.ndarray, n_leaves: int) -> str | None:
    """Why children arrays do not form one binary tree rooted at internal node 0, or None.

    A tree of ``m`` internal nodes has ``m + 1`` leaves; its ``2m`` child slots name every
    internal node but the root exactly once and every leaf (``~l``) exactly once. Then every
    node but the root has one parent, so the only way left to fail is a cycle that the root does
    not reach: pointer doubling on the parent array (``log2 m`` vectorised steps) finds it.
    Traversals of a tree that passes never loop and never index outside its arrays.
    """
    m = int(left.shape[0])
    if right.shape[0] != m:
        return f"{m} left children but {right.shape[0]} right children"
    if n_leaves != m + 1:
        return f"{n_leaves} leaves for {m} splits (a binary tree has {m + 1})"
    if m == 0:
        return None
    children = np.concatenate([left, right]).astype(np.int64)
    if children.min() < -n_leaves or children.max() >= m:
        return "a child index is out of range"
    inner = children[children >= 0]
    if np.any(inner == 0):
        return "the root is a child of another node (cycle)"
    if np.any(np.bincount(inner, minlength=m)[1:] != 1):
        return "an internal node is the child of no node or of several (not a tree)"
    if np.any(np.bincount(~children[children < 0], minlength=n_leaves) != 1):
        return "a leaf is referenced by no node or by several (not a tree)"
    parent = np.zeros(m, np.int64)
    slots = np.concatenate([np.arange(m), np.arange(m)])
    parent[inner] = slots[children >= 0]
    for _ in range(m.bit_length() + 1):
        parent = parent[parent]
    if np.any(parent != 0):
        return "internal nodes form a cycle unreachable from the root"
    return None
