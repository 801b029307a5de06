"""``Policy.forget``: erasing customers from a bandit policy (the protocol of
:mod:`fastengage.privacy.forget`).

A policy holds no customer ids and no rows, only per-arm sums over every row it learned from
(counts, reward sums, ``sum x x^T``, ``sum r x``). Nothing in it, or in its saved file, names a
customer. Their rows' *contribution* to the sums stays, though, until it is taken out, and that
needs the rows: with ``logs=`` (rows holding at least every row of these customers that the
policy learned from, with the customer, arm, reward and feature columns used to learn) their
sums are computed by the same kernels as an update and subtracted, so the policy equals one
learned without them (counts exactly; sums to floating-point rounding; an arm left with no
rows is reset to exact zeros). Without logs the call changes nothing and its audit record says
so (``exact=False`` once the policy has learned anything).
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import InputError
from ..kernels.bandits import ridge as _ridge
from ..privacy.forget import as_id_array, audit
from ._columns import arm_codes, reward_vector

_NO_LOGS = ("the policy holds no customer ids, only per-arm sums over every row it learned; "
            "their rows' share of those sums stays until forget() is given logs= with their "
            "rows")


def forget_policy(policy, customers, *, request, logs, customer, arm, reward, features,
                  n_threads):
    name = type(policy).__name__
    if logs is None:
        if customer is not None or arm is not None or reward is not None:
            raise InputError("forget: customer=, arm= and reward= name columns of logs=")
        wanted = as_id_array(customers)
        learned = bool(policy._counts.any())
        return audit(name, requested=len(wanted), found=0, rows_removed=0, exact=not learned,
                     notes=_NO_LOGS if learned else "the policy has learned no rows",
                     request=request)
    if customer is None or arm is None or reward is None:
        raise InputError("forget with logs= needs customer=, arm= and reward= column names")
    features, source, columns = policy._read(logs, features, {"customer": customer, "arm": arm,
                                                              "reward": reward})
    K, d = len(policy._arms), policy.n_features
    removed = [np.zeros(K), np.zeros(K), np.zeros(K), np.zeros((K, d, d)), np.zeros((K, d))]
    counts, sums, sums2, G, g = removed
    wanted, found, rows = None, [], 0
    for batch in source.batches(columns):
        ids = batch.column(customer)
        if wanted is None:
            wanted = as_id_array(customers, ids.type)
        hit = pc.is_in(ids, value_set=wanted)
        mine = batch.filter(pc.fill_null(hit, False))
        if mine.num_rows == 0:
            continue
        rows += mine.num_rows
        found.append(pc.unique(mine.column(customer)))
        codes = arm_codes(mine.column(arm), policy._arms, arm)
        r = reward_vector(mine, reward, policy.BINARY_REWARDS)
        parts = policy._task_sums(mine, features, codes, r, n_threads)
        _ridge.add_task_sums(*parts, G, g, counts, sums, sums2)
    if wanted is None:
        wanted = as_id_array(customers)
    n_found = len(pc.unique(pa.chunked_array(found))) if found else 0
    with policy._lock:
        if (counts > policy._counts).any():
            bad = policy._arms[int(np.argmax(counts > policy._counts))]
            raise InputError(f"forget: logs= hold more rows of arm {bad} for these customers "
                             "than the policy learned in all; nothing was changed")
        if rows:
            stats = (policy._counts, policy._sums, policy._sums2, policy._G, policy._g)
            new = [held - gone for held, gone in zip(stats, removed)]
            empty = new[0] == 0
            for arr in new[1:]:
                arr[empty] = 0.0
            (policy._counts, policy._sums, policy._sums2, policy._G, policy._g) = new
            policy._refresh()
    return audit(name, requested=len(wanted), found=n_found, rows_removed=rows, exact=True,
                 notes="their rows' sums were subtracted (counts exact, sums to rounding); "
                       "the policy never held their ids",
                 request=request, arms_touched=int((counts > 0).sum()))
