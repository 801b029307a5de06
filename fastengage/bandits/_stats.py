"""Keeping a policy's additive statistics finite.

Inputs are checked finite before they are summed, but finite features or rewards whose squares
or sums pass 1.8e308 would still leave infinities in the statistics (NaN after a ridge solve):
no later update removes them, and no saved file may hold them. Every addition to the statistics
(batch update, ``update_one``, ``merge``) therefore goes through :func:`commit_finite`, which
keeps the arms' previous statistics and puts them back when the sum is not finite, so a failed
update leaves the policy as it was.
"""
from __future__ import annotations

import math

import numpy as np
import pyarrow as pa

from ..errors import InputError
from ._columns import feature_column

__all__ = ["commit_finite", "overflow_error"]


def commit_finite(stats: tuple, arms: np.ndarray, add) -> bool:
    """Run ``add`` (which adds to rows ``arms`` of the arrays ``stats``; the caller holds the
    policy's lock) and keep its result only if those rows stay finite. Returns False after
    restoring them. (No ``np.errstate`` here: it costs more than the rest on ``update_one``'s
    path; the compiled adds do not warn, ``merge`` silences its own.)"""
    rows = int(arms[0]) if arms.shape[0] == 1 else arms  # one arm (update_one): views
    saved = [s[rows].copy() for s in stats]
    add()
    if all(math.isfinite(s[rows]) if isinstance(rows, int) and s.ndim == 1
           else np.isfinite(s[rows]).all() for s in stats):
        return True
    for s, old in zip(stats, saved):
        s[rows] = old
    return False


def overflow_error(arm_ids: pa.Array, features, batch, rewards: np.ndarray) -> InputError:
    """The error for a batch whose sums overflow: the arms, and the columns whose sums of
    squares are not finite."""
    with np.errstate(over="ignore", invalid="ignore"):
        columns = {name: feature_column(batch, name) for name in features or ()}
        big = [repr(name) for name, col in columns.items() if not np.isfinite(np.dot(col, col))]
        if not np.isfinite(np.dot(rewards, rewards)):
            big.append("the reward")
    return InputError(f"the update overflows float64 in the statistics of arm(s) "
                      f"{arm_ids.to_pylist()[:5]}: sums of squares of "
                      f"{', '.join(big) or 'the values'} exceed 1.8e308; nothing of this batch "
                      "was learned (rescale the column)")
