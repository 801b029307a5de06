"""The read-only per-arm numbers one decision reads (built from a policy's statistics)."""
from __future__ import annotations

import numpy as np


class _Snapshot:
    """The arrays one decision reads; never modified after it is built."""

    __slots__ = ("A_inv", "L_inv", "arm_params", "base_mean", "base_var", "beta_a", "beta_b",
                 "bounds", "everyone", "scale", "server", "singular", "theta")

    def __init__(self, theta, A_inv, L_inv, base_mean, base_var, scale, beta_a, beta_b,
                 previous=None, arms=None):
        """``previous`` and ``arms``: the snapshot this one replaces and the arms whose
        ``L_inv`` changed since (the others' are equal), so only their SVDs are recomputed (an
        SVD of every arm was 60% of an ``update_one`` at 10 arms x 20 features)."""
        self.theta, self.A_inv, self.L_inv = theta, A_inv, L_inv
        self.base_mean, self.base_var, self.scale = base_mean, base_var, float(scale)
        self.beta_a, self.beta_b = beta_a, beta_b
        self.singular = _extreme_singular_values(L_inv, previous, arms)
        self.bounds = self._width_bounds(self.singular, base_var, self.scale)
        # What decide_one passes, prepared once: per-arm numbers stacked (fewer kernel
        # arguments), the all-eligible mask, the arm ids as Python objects.
        self.arm_params = np.ascontiguousarray(np.concatenate(
            [np.stack([base_mean, base_var]), self.bounds, np.stack([beta_a, beta_b])]),
            dtype=np.float64)
        self.everyone = np.ones(theta.shape[0], np.uint8)
        self.server = None  # the compiled decide_one / decide_rows path (Serving._with_server)

    @staticmethod
    def _width_bounds(singular, base_var, scale):
        """(4, K) ``ub0, ub1, lb0, lb1``: every arm's UCB width ``scale * sqrt(v + |L_inv x|^2)``
        lies in ``[max(lb0, lb1 |x|), ub0 + ub1 |x|]`` (``sqrt(v + q) <= sqrt(v) + sqrt(q)``;
        ``|L_inv x|`` between the extreme singular values of ``L_inv`` times ``|x|``). The
        relative margin 1e-9 and the absolute 1e-12 * sigma_max of the smallest singular value
        (the error of an SVD is relative to the largest) dwarf rounding, so decisions that skip
        widths by these bounds are exactly those of the full computation."""
        K = base_var.shape[0]
        with np.errstate(invalid="ignore"):  # 0 * inf (UCB1, alpha 0, an unplayed arm)
            ub0 = np.nan_to_num(scale * np.sqrt(base_var) * (1.0 + 1e-9), nan=np.inf)
            lb0 = np.where(np.isfinite(base_var),
                           scale * np.sqrt(np.where(np.isfinite(base_var), base_var, 0.0)), 0.0)
        lb0 = lb0 * (1.0 - 1e-9)
        if singular.shape[1]:
            smax, smin = singular[:, 0], singular[:, 1]
            ub1 = scale * smax * (1.0 + 1e-9)
            lb1 = scale * np.maximum(smin * (1.0 - 1e-9) - 1e-12 * smax, 0.0)
        else:
            ub1, lb1 = np.zeros(K), np.zeros(K)
        return np.ascontiguousarray(np.stack([ub0, ub1, lb0, lb1]), dtype=np.float64)


def _extreme_singular_values(L_inv, previous, arms) -> np.ndarray:
    """(K, 2) largest and smallest singular value of each arm's ``L_inv`` ((K, 0) without
    features): taken from ``previous`` for arms not in ``arms``, computed for the others (one
    batched SVD, which computes each matrix alone: the same bits as an SVD of all arms)."""
    K, d = L_inv.shape[0], L_inv.shape[1]
    if not d:
        return np.zeros((K, 0))
    if previous is None or arms is None or previous.singular.shape != (K, 2):
        sv = np.linalg.svd(L_inv, compute_uv=False)
        return np.ascontiguousarray(sv[:, [0, -1]])
    out = previous.singular.copy()
    arms = np.asarray(arms, dtype=np.int64)
    if arms.size:
        sv = np.linalg.svd(L_inv[arms], compute_uv=False)
        out[arms] = sv[:, [0, -1]]
    return out
