"""Keeping a policy's additive statistics finite.

Inputs are checked finite before they are summed, but finite features or rewards whose squares
or sums pass 1.8e308 would still leave infinities in the statistics (NaN after a ridge solve):
no later update removes them, and no saved file may hold them. Every addition to the statistics
(batch update, ``update_one``, ``merge``) therefore goes through :func:`commit_finite`, which
keeps the arms' previous statistics and puts them back when the sum is not finite, so a failed
update leaves the policy as it was.
"""
from __future__ import annotations

import itertools
import math

import numpy as np
import pyarrow as pa

from ..errors import InputError
from ..kernels.bandits import ridge as _ridge
from ._columns import feature_column

__all__ = ["commit_finite", "learn_all_or_nothing", "overflow_error"]


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


def learn_all_or_nothing(policy, parts) -> None:
    """Add the per-batch sums ``parts`` (an iterator of ``Policy._batch_sums`` tuples, computed
    lazily: a bad batch raises when it is reached) to ``policy``. One batch (every in-memory
    table) is added as it is; the batches of a stream are first summed apart, in batch order,
    and added once at the end: a bad value in any batch leaves nothing of the input learned
    (a retry after fixing it cannot count the earlier batches twice)."""
    first = next(parts, None)
    second = next(parts, None) if first is not None else None
    if second is None:
        if first is not None:
            policy._add_sums(*first)
        return
    d = first[1].shape[1]
    total = [np.zeros((0, d, d)), np.zeros((0, d)), np.zeros(0), np.zeros(0), np.zeros(0)]
    for task_arm, part_G, part_g, part_s, _ in itertools.chain((first, second), parts):
        grow = int(task_arm.max()) + 1 - total[2].shape[0]  # arms added meanwhile (or first)
        if grow > 0:
            total = [np.concatenate([t, np.zeros((grow,) + t.shape[1:])]) for t in total]
        _ridge.add_task_sums(task_arm, part_G, part_g, part_s, *total)
    K = total[2].shape[0]

    def error(touched):
        return InputError(f"the update overflows float64 in the statistics of arm(s) "
                          f"{policy.arms.take(pa.array(touched)).to_pylist()[:5]}: sums of "
                          "squares of the features or rewards exceed 1.8e308; nothing of this "
                          "input was learned (rescale the column)")

    policy._add_sums(np.arange(K), total[0], total[1], np.stack(total[2:], axis=1), error)
