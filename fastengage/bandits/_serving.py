"""The service paths of a bandit policy: one decision (``decide_one``) or a few rows
(``decide_rows``) from NumPy, through the snapshot's compiled server
(``kernels/bandits/serve_native.pyx``, built once per snapshot).

Design: :class:`Serving` is mixed into ``policies.Policy``; it reads only the policy's current
snapshot (immutable), its KIND / CONTEXTUAL / epsilon and its service random stream, so these
calls never take the policy's lock and are safe from any number of threads.
"""
from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..kernels.bandits import serve_native as _serve
from ..kernels.common.config import (
    BANDIT_BOUND_SLACK,
    BANDIT_ROWWISE_BELOW,
    BANDIT_TS_PROPENSITY_DRAWS,
)

_UINT64 = 2 ** 64


def _seed64(seed) -> np.uint64:
    if seed is None:
        return np.uint64(np.random.SeedSequence().generate_state(1, dtype=np.uint64)[0])
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise InputError(f"seed must be an integer, got {type(seed).__name__}")
    return np.uint64(int(seed) % _UINT64)


def _first_row(first_row) -> int:
    if (isinstance(first_row, (bool, np.bool_)) or not isinstance(first_row, (int, np.integer))
            or not 0 <= first_row < 2 ** 62):
        raise InputError(f"first_row must be a non-negative integer, got {first_row!r}")
    return int(first_row)


class Serving:
    """``decide_one`` / ``decide_rows`` of a policy (see the module docstring)."""

    def decide_one(self, x=None, eligible=None, seed: int | None = None):
        """One decision for a service: ``(arm id, propensity)``; ``(None, nan)`` when no arm is
        eligible. One call of the snapshot's compiled server (immutable), the decision itself
        without the GIL: safe from many threads. At ~1 us a decision of a small model, the
        Python around the call (under the GIL) is as long as the decision, so two threads
        cannot beat one; for throughput from several threads use :meth:`decide_rows` on a
        few rows at a time.
        Without ``seed``, each call takes the next row of a per-policy random stream."""
        snap = self._snapshot
        server = snap.server if snap.server is not None else self._server(snap)
        if seed is None:
            seed_, row = self._service_seed, next(self._service_rows)
        elif type(seed) is int and 0 <= seed < _UINT64:  # what _seed64 returns, without NumPy
            seed_, row = seed, 0
        else:
            seed_, row = _seed64(seed), 0
        arm, p = server.decide(x if self.CONTEXTUAL else None, eligible, seed_, row)
        if arm == _serve.NOT_READY:  # not contiguous float64 / uint8: convert, check, retry
            arm, p = server.decide(self._context(x, snap), self._eligible(eligible, snap),
                                   seed_, row)
        if arm == -2:
            raise InputError("x holds NaN or infinite values")
        return (None, float("nan")) if arm < 0 else (self._arm_list()[arm], p)

    def decide_rows(self, X, eligible=None, seed: int | None = None, first_row: int = 0):
        """Decisions for the rows of a NumPy matrix ``X`` (rows x features; ignored by
        non-contextual policies, give ``np.zeros((m, 0))``), in one call that releases the GIL:
        a service's micro-batch. ``eligible``: an optional (rows, K) boolean mask in
        ``policy.arms`` order. Returns ``(arms, propensities)``: an object array of arm ids
        (``None`` where no arm is eligible) and a float64 array (NaN there).

        Row ``i`` is decided as row ``first_row + i`` of ``decide``'s stream for ``seed``, so
        the same seed gives exactly ``decide``'s arms and propensities. Without ``seed``, each
        call draws from a fresh row block of the policy's service stream."""
        snap = self._snapshot
        server = snap.server if snap.server is not None else self._server(snap)
        K, d = snap.theta.shape
        if not (type(X) is np.ndarray and X.dtype == np.float64 and X.flags.c_contiguous):
            X = np.ascontiguousarray(X, dtype=np.float64)
        if X.ndim != 2 or (X.shape[1] != d and (self.CONTEXTUAL or X.shape[1])):
            raise InputError(f"X must be a (rows, {d}) matrix of features, got {X.shape}")
        if not self.CONTEXTUAL and X.shape[1]:
            X = np.zeros((X.shape[0], 0))
        m = X.shape[0]
        if eligible is not None:
            eligible = np.ascontiguousarray(eligible, dtype=np.uint8)
            if eligible.shape != (m, K) or (eligible > 1).any():
                raise InputError(f"eligible must be a ({m}, {K}) boolean mask")
        if seed is None:  # a fresh block of 2^32 rows of the service stream per call
            seed_, row0 = self._service_seed, (next(self._service_rows) << 32) % 2 ** 62
        elif type(seed) is int and 0 <= seed < _UINT64 and first_row == 0:  # no NumPy
            seed_, row0 = seed, 0
        else:
            seed_, row0 = _seed64(seed), _first_row(first_row)
        codes, props, n_bad = server.decide_rows(X, eligible, seed_, row0)
        if n_bad:
            bad = np.flatnonzero(~np.isfinite(X).all(axis=1))
            if len(bad):
                raise InputError(f"X holds NaN or infinite values (rows {bad[:5].tolist()})")
        return self._arm_views()[1][codes], props  # code -1 indexes the appended None

    def _server(self, snap):
        """Build (once per snapshot; a race builds two equal ones) the compiled server."""
        snap.server = _serve.Server(np.ascontiguousarray(snap.theta),
                                    np.ascontiguousarray(snap.L_inv),
                                    snap.arm_params, snap.everyone, snap.scale, self.KIND,
                                    self._epsilon, BANDIT_TS_PROPENSITY_DRAWS,
                                    BANDIT_BOUND_SLACK, BANDIT_ROWWISE_BELOW)
        return snap.server

    @staticmethod
    def _eligible(eligible, snap):
        if eligible is None:
            return None
        elig = np.ascontiguousarray(eligible, dtype=np.uint8)
        if elig.shape != snap.everyone.shape:
            raise InputError(f"eligible must be a length-{len(snap.everyone)} boolean array")
        return elig

