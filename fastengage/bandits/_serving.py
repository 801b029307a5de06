"""The service paths of a bandit policy: one decision (``decide_one``) or a few rows
(``decide_rows``) from NumPy, through the snapshot's compiled server
(``kernels/bandits/serve_native.pyx``, built with each snapshot, before it is published).

Design: :class:`Serving` is the base of ``policies.Policy``; it reads only the policy's current
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
    BANDIT_SERVE_NOGIL_ROWS_WORK,
    BANDIT_SERVE_NOGIL_WORK,
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


class Serving(_serve.ServingBase):
    """``decide_one`` / ``decide_rows`` of a policy (see the module docstring). ``decide_one``
    and the published ``_snapshot`` come from the compiled base class
    (kernels/bandits/serve_native.pyx: no Python frame around the decision)."""

    def _decide_one_checked(self, x, eligible, seed):
        """decide_one for what the compiled path does not take as it is: converts ``x`` and
        ``eligible`` and the seed (checked), decides through the same server, and raises the
        clear error for non-finite ``x``."""
        snap = self._snapshot
        x, eligible = self._context(x, snap), self._eligible(eligible, snap)
        out = snap.server.decide_one(x, eligible, None if seed is None else int(_seed64(seed)))
        if out is _serve.UNREADY:
            raise InputError("x holds NaN or infinite values")
        return out

    def decide_rows(self, X, eligible=None, seed: int | None = None, first_row: int = 0):
        """Decisions for the rows of a NumPy matrix ``X`` (rows x features; ignored by
        non-contextual policies, give ``np.zeros((m, 0))``), in one compiled call (a service's
        micro-batch) that releases the GIL from ``BANDIT_SERVE_NOGIL_ROWS_WORK`` multiply-adds
        on (~128 rows of 10 arms x 20 features): two threads then decide up to ~1.7x as fast.
        ``eligible``: an optional (rows, K) boolean mask in ``policy.arms`` order. Returns ``(arms, propensities)``: an object array of arm ids
        (``None`` where no arm is eligible) and a float64 array (NaN there).

        Row ``i`` is decided as row ``first_row + i`` of ``decide``'s stream for ``seed``, so
        the same seed gives exactly ``decide``'s arms and propensities. Without ``seed``, each
        call draws from a fresh row block of the policy's service stream."""
        snap = self._snapshot
        server = snap.server
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
            seed_, row0 = self._service.seed, (self._service.take() << 32) % 2 ** 62
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

    def _with_server(self, snap):
        """Give a new snapshot its compiled server (before the policy publishes it)."""
        snap.server = _serve.Server(np.ascontiguousarray(snap.theta),
                                    np.ascontiguousarray(snap.L_inv),
                                    snap.arm_params, snap.everyone, snap.scale, self.KIND,
                                    self._epsilon, BANDIT_TS_PROPENSITY_DRAWS,
                                    BANDIT_BOUND_SLACK, BANDIT_ROWWISE_BELOW,
                                    self._arm_views()[0], self._service, self.CONTEXTUAL,
                                    BANDIT_SERVE_NOGIL_WORK, BANDIT_SERVE_NOGIL_ROWS_WORK)
        return snap

    @staticmethod
    def _eligible(eligible, snap):
        if eligible is None:
            return None
        elig = np.ascontiguousarray(eligible, dtype=np.uint8)
        if elig.shape != snap.everyone.shape:
            raise InputError(f"eligible must be a length-{len(snap.everyone)} boolean array")
        return elig

