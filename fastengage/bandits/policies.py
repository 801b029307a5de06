"""Bandit policies: decide over Arrow (batch) or NumPy (one row), learn online, merge, save.

Every policy keeps additive per-arm statistics (count, reward sum, sum of squared rewards, and for
the linear policies the Gram matrix ``G = sum x x^T`` and ``g = sum r x``); hyperparameters and
priors are kept apart, so two policies trained on different rows merge by adding statistics.
After each update the statistics are turned, under a lock, into a read-only *snapshot* of the
per-arm numbers the decision kernel needs (means, ``A^-1``, ``theta``); decisions read one
snapshot reference, so ``decide_one`` never sees a half-applied update.
"""
from __future__ import annotations

import threading

import numpy as np
import pyarrow as pa

from .._io.columns import consented_input
from .._io.sources import open_source
from ..errors import InputError
from ..kernels.bandits import decide as _decide
from ..kernels.bandits import ridge as _ridge
from ..kernels.bandits import serve_native as _serve_native
from ..kernels.common.config import (
    BANDIT_DECIDE_BATCH,
    BANDIT_DECIDE_CHUNK,
    BANDIT_PARALLEL_MIN_ROWS,
    BANDIT_ROWS_PER_TASK,
    BANDIT_TS_PROPENSITY_DRAWS,
)
from ..kernels.common.launch import resolve_threads
from ._columns import (
    arm_array,
    arm_code,
    arm_codes,
    arm_ids,
    check_finite,
    eligible_mask,
    feature_column,
    reward_vector,
)
from ._serving import Serving, _first_row, _seed64
from ._snapshot import _Snapshot
from ._stats import commit_finite, learn_all_or_nothing, overflow_error

__all__ = ["Policy"]  # the concrete policies are in .kinds

def _threads(n_rows: int, n_threads: int | None) -> int | None:
    """One thread for small batches (``BANDIT_PARALLEL_MIN_ROWS``); a bad count is refused."""
    return 1 if resolve_threads(n_threads) and n_rows < BANDIT_PARALLEL_MIN_ROWS else n_threads


class _Columns:
    """A batch's feature columns read in place by the decision kernel, by address (no copy)."""

    __slots__ = ("addresses", "arrays", "n")

    def __init__(self, batch, features):
        self.n = batch.num_rows
        self.arrays = [feature_column(batch, name) for name in features]
        self.addresses = np.array([a.ctypes.data for a in self.arrays], dtype=np.int64)


class _Outputs:
    """The decision outputs of a whole input, filled batch by batch: allocated once when the
    input's row count is known (no concatenation, no second copy of 16 bytes a row), else
    gathered per batch (a stream)."""

    __slots__ = ("K", "want_mean", "whole", "filled", "parts")

    def __init__(self, K: int, want_mean: bool):
        self.K, self.want_mean, self.whole, self.filled, self.parts = K, want_mean, None, 0, []

    def views(self, start: int, n: int, total: int | None):
        if total is not None and self.whole is None and not self.parts:
            self.whole = (np.empty(total, dtype=np.int64), np.empty(total),
                          np.empty((total if self.want_mean else 0, self.K)))
        if self.whole is not None:
            if start != self.filled or start + n > self.whole[0].shape[0]:
                raise InputError("the input yielded more rows than it declared")
            self.filled += n
            arm, prop, mean = self.whole
            return (arm[start:start + n], prop[start:start + n],
                    mean[start:start + n] if self.want_mean else mean)
        part = (np.empty(n, dtype=np.int64), np.empty(n),
                np.empty((n if self.want_mean else 0, self.K)))
        self.parts.append(part)
        return part

    def arrays(self):
        if self.whole is not None:
            if self.filled != self.whole[0].shape[0]:
                raise InputError("the input yielded fewer rows than it declared")
            return self.whole
        if not self.parts:
            return np.zeros(0, np.int64), np.zeros(0), np.zeros((0, self.K))
        return tuple(np.concatenate(column) for column in zip(*self.parts))


class Policy(Serving):
    """Base class. Subclasses set ``KIND`` (kernel scoring rule) and ``CONTEXTUAL`` and turn the
    statistics into a snapshot in ``_derive``."""

    KIND = _decide.GREEDY
    CONTEXTUAL = False
    BINARY_REWARDS = False
    PARAMS: tuple = ()

    def __init__(self, arms, *, features: list[str] | None = None, **params):
        self._arms = arm_array(arms)
        if not len(self._arms):
            raise InputError("arms: give at least one arm")
        self.features = list(features) if features is not None and self.CONTEXTUAL else None
        if self.features is not None and not all(isinstance(f, str) for f in self.features):
            raise InputError("features= must be a list of column names")
        self.params = self._check_params(params)
        self._epsilon = self.params.get("epsilon", 0.0)
        d = len(self.features) if self.features is not None else 0
        K = len(self._arms)
        self._lock = threading.Lock()
        self._counts, self._sums, self._sums2 = np.zeros(K), np.zeros(K), np.zeros(K)
        self._G, self._g = np.zeros((K, d, d)), np.zeros((K, d))
        self._service = _serve_native.ServiceStream(_seed64(None))
        self._refresh()

    # -- hyperparameters ------------------------------------------------------------------
    def _check_params(self, params: dict) -> dict:
        unknown = set(params) - {name for name, _, _ in self.PARAMS}
        if unknown:
            raise InputError(f"{type(self).__name__} has no parameter(s) {sorted(unknown)}")
        out = {}
        for name, default, (lo, hi) in self.PARAMS:
            value = params.get(name, default)
            numeric = isinstance(value, (int, float, np.floating, np.integer))
            if isinstance(value, bool) or not numeric:
                raise InputError(f"{name} must be a number, got {value!r}")
            value = float(value)
            if not (lo <= value <= hi) or not np.isfinite(value):
                raise InputError(f"{name} must lie in [{lo}, {hi}], got {value}")
            out[name] = value
        return out

    # -- arms -----------------------------------------------------------------------------
    @property
    def arms(self) -> pa.Array:
        """The arm ids in code order (positions are what ``eligible`` masks index)."""
        return self._arms

    @property
    def n_features(self) -> int:
        return self._G.shape[1]

    def add_arms(self, arms) -> Policy:
        """Add new arms (with empty statistics) to a running policy; ids already known raise."""
        new = arm_array(arms, role="add_arms")
        with self._lock:
            if len(new) and new.type != self._arms.type:
                raise InputError("add_arms: arm ids must have this policy's type "
                                 f"{self._arms.type}")
            self._arms = arm_array(pa.concat_arrays([self._arms, new]), role="add_arms")
            k, d = len(new), self.n_features
            self._counts = np.concatenate([self._counts, np.zeros(k)])
            self._sums = np.concatenate([self._sums, np.zeros(k)])
            self._sums2 = np.concatenate([self._sums2, np.zeros(k)])
            self._G = np.concatenate([self._G, np.zeros((k, d, d))])
            self._g = np.concatenate([self._g, np.zeros((k, d))])
            self._refresh()
        return self

    # -- statistics -> snapshot -----------------------------------------------------------
    def _refresh(self, arms: np.ndarray | None = None) -> None:
        """Rebuild the snapshot from the statistics (caller holds the lock or owns the object)."""
        K, d = self._G.shape[0], self.n_features
        old = getattr(self, "_snapshot", None)
        if d and arms is not None and old is not None and old.theta.shape[0] == K:
            theta, A_inv, L_inv = old.theta.copy(), old.A_inv.copy(), old.L_inv.copy()
            for a in arms:  # only the arms an update touched
                self._solve(theta, A_inv, L_inv, slice(a, a + 1))
        else:
            theta, A_inv, L_inv = np.zeros((K, d)), np.zeros((K, d, d)), np.zeros((K, d, d))
            if d:
                self._solve(theta, A_inv, L_inv, slice(0, K))
            old = arms = None  # every arm solved again
        self._snapshot = self._with_server(_Snapshot(theta, A_inv, L_inv, *self._derive(),
                                                     previous=old, arms=arms))

    def _solve(self, theta, A_inv, L_inv, rows) -> None:
        bad = _ridge.solve_arms(self._G[rows], self._g[rows], self.params["l2"], theta[rows],
                                A_inv[rows], L_inv[rows])
        if bad >= 0:
            raise InputError(f"the ridge matrix of arm {self._arms[rows.start + bad]} is not "
                             "positive definite (l2 must be > 0)")

    def _derive(self):
        """``(base_mean, base_var, scale, beta_a, beta_b)`` for the kernel (K-vectors)."""
        K = self._counts.shape[0]
        return np.zeros(K), np.zeros(K), 0.0, np.ones(K), np.ones(K)

    def _read(self, data, features, extra):
        features = self._features_for(features)
        source = open_source(data)
        names = source.require({**{f"feature {f!r}": f for f in features}, **extra})
        columns = list(dict.fromkeys(features + list(names.values())))
        return features, source, columns

    def _features_for(self, features) -> list[str]:
        if not self.CONTEXTUAL:
            return []
        if features is None:
            if self.features is None:
                raise InputError(f"{type(self).__name__} needs features=[column names]")
            return self.features
        if isinstance(features, str) or not all(isinstance(f, str) for f in features):
            raise InputError("features= must be a list of column names")
        features = list(features)
        if self.features is None and not self._counts.any() and self.n_features == 0:
            with self._lock:  # first use fixes the feature count
                if self.features is None:
                    self.features = features
                    K, d = len(self._arms), len(features)
                    self._G, self._g = np.zeros((K, d, d)), np.zeros((K, d))
                    self._refresh()
        if len(features) != self.n_features:
            raise InputError(f"this policy was built on {self.n_features} features, "
                             f"got {len(features)}")
        return features

    # -- learning -------------------------------------------------------------------------
    def update(self, data, *, arm: str, reward: str, features: list[str] | None = None,
               customer: str | None = None, time: str | None = None, consent=None,
               n_threads: int | None = None) -> Policy:
        """Learn from logged outcomes: one row per decision with its arm and reward.

        Safe to call from several threads (statistics are added under a lock); decisions
        running meanwhile keep reading the previous snapshot. All or nothing: a bad value in any
        batch of a stream raises with nothing of it learned (a retry counts no row twice).
        ``consent`` (a :class:`fastengage.privacy.ConsentFilter`, with ``customer=`` and
        optionally ``time=``): only rows whose customer had consent (at the row's time, else
        at the rule's ``as_of``) are learned; what was excluded: ``consent.last_report``.
        """
        data = consented_input(data, consent, customer=customer, time=time)
        features, source, columns = self._read(data, features, {"arm": arm, "reward": reward})
        batches = source.batches(columns, validated_by_caller=(arm,))
        learn_all_or_nothing(self, (self._batch_sums(batch, features, arm, reward, n_threads)
                                    for batch in batches if batch.num_rows))
        return self

    def _batch_sums(self, batch, features, arm, reward, n_threads):
        """``_task_sums`` of a batch and the error to raise if adding them overflows."""
        codes = arm_codes(batch.column(arm), self._arms, arm, dtype=np.int32)
        rewards = reward_vector(batch, reward, self.BINARY_REWARDS)
        task_arm, part_G, part_g, part_s = self._task_sums(batch, features, codes, rewards,
                                                           n_threads)
        return task_arm, part_G, part_g, part_s, lambda touched: overflow_error(
            self._arms.take(pa.array(touched)), features, batch, rewards)

    def _task_sums(self, batch, features, codes, rewards, n_threads):
        """Per-task, per-arm sums of the rows of ``batch`` (see ``kernels/bandits/ridge.py``),
        flattened to ``(task_arm, part_G, part_g, part_s)``. The kernel reads the feature
        columns straight from the input by address (the list below keeps them alive); the
        sums' diagonals prove the features finite (a NaN or inf makes one non-finite)."""
        K, d, n = len(self._arms), self.n_features, codes.shape[0]
        columns = [feature_column(batch, name) for name in features]
        addresses = np.array([col.ctypes.data for col in columns], dtype=np.int64)
        T = max(1, -(-n // BANDIT_ROWS_PER_TASK))
        part_G, part_g, part_s = np.zeros((T, K, d, d)), np.zeros((T, K, d)), np.zeros((T, K, 3))
        _ridge.block_sums(addresses, n, codes, rewards, BANDIT_ROWS_PER_TASK, part_G, part_g,
                          part_s, n_threads=_threads(n, n_threads))
        if not np.isfinite(part_G.diagonal(axis1=2, axis2=3)).all():
            check_finite(np.stack(columns), features, by_column=True)  # else overflow: later
        task_arm = np.tile(np.arange(K), T)
        return (task_arm, part_G.reshape(T * K, d, d), part_g.reshape(T * K, d),
                part_s.reshape(T * K, 3))

    def _stats(self) -> tuple:  # in the kernels' argument order
        return self._G, self._g, self._counts, self._sums, self._sums2

    def _add_sums(self, task_arm, part_G, part_g, part_s, error) -> None:
        """Add ``_task_sums``-shaped sums, or nothing and raise ``error(arms)`` on overflow."""
        with self._lock:
            touched = np.unique(task_arm[part_s[:, 0] > 0])  # arms with rows
            if not commit_finite(self._stats(), touched, lambda: _ridge.add_task_sums(
                    task_arm, part_G, part_g, part_s, *self._stats())):
                raise error(touched)
            self._refresh(touched)

    def update_one(self, x, arm, reward: float) -> None:
        """Learn from one outcome (a service's feedback call): ``x`` the context (1-D NumPy,
        ignored by non-contextual policies), ``arm`` the arm id, ``reward`` a number."""
        x = self._context(x)
        if not np.isfinite(x).all():  # checked before the sums: a NaN stays in them for good
            raise InputError("x holds NaN or infinite values")
        code = arm_code(arm, self._arms)
        r = float(reward) if isinstance(reward, (int, float, np.number, np.bool_)) else np.nan
        if not np.isfinite(r) or (self.BINARY_REWARDS and not 0.0 <= r <= 1.0):
            raise InputError(f"reward {reward!r} is not a valid reward for {type(self).__name__}")
        arms = np.array([code])
        with self._lock:
            if not commit_finite(self._stats(), arms,
                                 lambda: _ridge.add_one(x, r, code, *self._stats())):
                raise InputError(f"update_one overflows float64 in the statistics of arm "
                                 f"{arm!r} (|x|^2 or reward^2 beyond 1.8e308); nothing was "
                                 "learned")
            self._refresh(arms)

    def merge(self, other: Policy) -> Policy:
        """Add another policy's statistics to this one (same class, hyperparameters and feature
        count); arms only the other knows are added. Returns ``self``."""
        if type(other) is not type(self) or other.params != self.params:
            raise InputError("merge needs a policy of the same class and hyperparameters")
        if other.n_features != self.n_features:
            raise InputError("merge needs policies built on the same number of features")
        with other._lock:
            o_arms, stats = other._arms, (other._counts.copy(), other._sums.copy(),
                                          other._sums2.copy(), other._G.copy(), other._g.copy())
        import pyarrow.compute as pc

        if o_arms.type != self._arms.type:
            raise InputError("merge needs policies whose arm ids have the same type")
        missing = pc.filter(o_arms, pc.invert(pc.is_in(o_arms, value_set=self._arms)))
        if len(missing):
            self.add_arms(missing)
        with self._lock:
            idx = pc.index_in(o_arms, value_set=self._arms).to_numpy()
            mine = (self._counts, self._sums, self._sums2, self._G, self._g)
            with np.errstate(over="ignore", invalid="ignore"):  # checked by commit_finite
                merged = commit_finite(mine, idx, lambda: [np.add.at(m, idx, t)
                                                           for m, t in zip(mine, stats)])
            if not merged:
                raise InputError("merge overflows float64 in the summed statistics; nothing "
                                 "was merged")
            self._refresh()
        return self

    def forget(self, customers, *, request: str | None = None, logs=None,
               customer: str | None = None, arm: str | None = None, reward: str | None = None,
               features: list[str] | None = None, n_threads: int | None = None):
        """Erase customers (``fastengage.privacy.forget`` protocol) -> ``AuditRecord``.

        A policy never holds customer ids, only per-arm sums over the rows it learned. Pass
        ``logs=`` (with ``customer=``, ``arm=``, ``reward=`` column names) holding their rows to
        subtract their share of the sums: the policy then equals one learned without them.
        Without logs nothing changes and the record says that their share remains.
        """
        from ._forget import forget_policy

        return forget_policy(self, customers, request=request, logs=logs, customer=customer,
                             arm=arm, reward=reward, features=features, n_threads=n_threads)

    # -- decisions ------------------------------------------------------------------------
    def _context(self, x, snap=None) -> np.ndarray:
        d = self.n_features if snap is None else snap.theta.shape[1]
        if not self.CONTEXTUAL:
            return np.zeros(0)
        x = np.ascontiguousarray(x, dtype=np.float64)
        if x.shape != (d,):
            raise InputError(f"x must be a 1-D array of {d} features, got shape {x.shape}")
        return x

    def _run(self, columns, mask, seed, row0, draws, want_mean, want_dist, n_threads,
             features, out=None):
        """Decide the rows of ``columns`` (a :class:`_Columns`: the batch's feature columns,
        read by the kernel in place) whose first row is row ``row0`` of the random streams.
        ``out``: ``(arm, prop, mean)`` views to fill (:class:`_Outputs`), else allocated."""
        snap = self._snapshot
        n, K = columns.n, snap.theta.shape[0]
        if out is not None:
            arm, prop, mean = out
        else:
            arm, prop = np.empty(n, dtype=np.int64), np.empty(n)
            mean = np.empty((n if want_mean else 0, K))
        dist = np.empty((n if want_dist else 0, K))
        bad = np.zeros(-(-n // BANDIT_DECIDE_CHUNK), dtype=np.int64)
        _decide.decide_rows(columns.addresses, n,
                            mask if mask is not None else np.zeros((0, K), np.uint8),
                            snap.theta, snap.L_inv, snap.base_mean, snap.base_var, snap.scale,
                            snap.bounds, snap.beta_a, snap.beta_b, self.KIND,
                            self.params.get("epsilon", 0.0),
                            seed, row0, draws, arm, prop, mean, dist, bad,
                            n_threads=_threads(n, n_threads))
        if bad.any():  # a NaN or inf feature (or only an overflow of finite values)
            check_finite(np.stack(columns.arrays), features, by_column=True)
        return arm, prop, mean, dist

    def _batches(self, data, features, id, eligible, keep=None):
        extra = {"id": id} if id is not None else {}
        if isinstance(eligible, str):
            extra["eligible"] = eligible
        features, source, columns = self._read(data, features, extra)
        total = source.num_rows
        start = 0
        for batch in source.batches(columns, batch_size=BANDIT_DECIDE_BATCH):
            if keep is not None:  # rows without consent: zeros and null lists, never read
                from ._consent import blank_rows

                batch = blank_rows(batch, ~keep[start:start + batch.num_rows], features,
                                   eligible if isinstance(eligible, str) else None)
            mask = eligible_mask(eligible, batch, start, self._arms, total)
            yield start, batch, _Columns(batch, features), mask, features, total
            start += batch.num_rows

    def decide(self, data, *, features: list[str] | None = None, id: str | None = None,
               eligible=None, seed: int | None = None, expected: bool = False,
               propensity_draws: int | None = None, consent=None, first_row: int = 0,
               n_threads: int | None = None) -> pa.Table:
        """Choose an arm for every row.

        Returns a table with ``id`` (when given), ``arm`` (the user's arm id; null when the row
        has no eligible arm), ``propensity`` (probability that this policy picks that arm for
        that row; null with a null arm) and, with ``expected=True``, ``expected_reward`` (one
        value per arm in ``policy.arms`` order; NaN for arms not eligible on the row).

        Row ``i`` draws its randomness from ``(seed, i)``: the same seed gives the same table
        whatever ``n_threads``. Thompson-sampling propensities are Monte Carlo shares over the
        decision's draw plus ``propensity_draws`` (default 100) further draws.

        ``first_row`` (default 0): the position of this table's first row in a larger input, so
        row ``i`` draws from ``(seed, first_row + i)``. Deciding a slice of a table with
        ``first_row=`` its offset gives exactly the rows of the whole table's decisions (what
        the Spark/Dask/Ray adapters use to decide partitions apart); an array ``eligible``
        mask still indexes this table's rows.

        ``consent`` (a :class:`fastengage.privacy.ConsentFilter`, with ``id=`` the customer
        column): rows of customers without consent at the rule's ``as_of`` stay in place with
        the null decision (null arm, propensity and ``expected_reward``); their features and
        eligible lists are not read, and every other row gets the decision it gets without the
        rule. How many rows and customers were excluded, and why: ``consent.last_report``.
        """
        keep = None
        if consent is not None:
            from ._consent import consented_rows

            data, keep = consented_rows(data, consent, id)
        seed = _seed64(seed)
        draws = self._draws(propensity_draws)
        row0 = _first_row(first_row)
        ids, outputs = [], _Outputs(len(self._arms), expected)
        for start, batch, X, mask, names, total in self._batches(data, features, id, eligible,
                                                                 keep):
            self._run(X, mask, seed, row0 + start, draws, expected, False, n_threads, names,
                      out=outputs.views(start, X.n, total))
            if id is not None:
                ids.append(batch.column(id))
        codes, props, means = outputs.arrays()
        if keep is not None:
            codes[~keep] = -1
        null = codes < 0
        out = {}
        if id is not None:
            out["id"] = pa.chunked_array(ids) if ids else pa.array([], pa.int64())
        out["arm"] = arm_ids(codes, self._arms)
        out["propensity"] = pa.array(props, mask=null if null.any() else None)
        if expected:
            K = len(self._arms)
            flat = means.ravel()
            out["expected_reward"] = pa.FixedSizeListArray.from_arrays(
                pa.array(flat), K, mask=None if keep is None else pa.array(~keep))
        return pa.table(out)

    def action_distribution(self, data, *, features: list[str] | None = None, eligible=None,
                            seed: int | None = 0, propensity_draws: int | None = None,
                            first_row: int = 0, n_threads: int | None = None) -> np.ndarray:
        """(rows, K) probability of each arm (``policy.arms`` order) per row, as ``decide``
        would use it: exact for greedy/UCB policies, Monte Carlo shares for Thompson sampling.
        ``first_row`` as in :meth:`decide`."""
        seed, draws = _seed64(seed), self._draws(propensity_draws)
        row0 = _first_row(first_row)
        parts = [self._run(X, mask, seed, row0 + start, draws, False, True, n_threads,
                           names)[3]
                 for start, _, X, mask, names, _ in self._batches(data, features, None,
                                                                  eligible)]
        return np.concatenate(parts) if parts else np.zeros((0, len(self._arms)))

    def _arm_views(self) -> tuple:
        """(arm ids as a list, as an object array with ``None`` appended), cached per arm
        array (``add_arms`` replaces it)."""
        cached = getattr(self, "_arm_views_cache", None)
        if cached is None or cached[0] is not self._arms:
            ids = self._arms.to_pylist()
            cached = (self._arms, (ids, np.array(ids + [None], dtype=object)))
            self._arm_views_cache = cached
        return cached[1]

    def _draws(self, draws) -> int:
        if draws is None:
            return BANDIT_TS_PROPENSITY_DRAWS
        if isinstance(draws, bool) or not isinstance(draws, (int, np.integer)) or draws < 0:
            raise InputError("propensity_draws must be a non-negative integer")
        return int(draws)

    # -- persistence ----------------------------------------------------------------------
    def save(self, path) -> None:
        """Write the policy in fastengage's safe bundle format (no pickle)."""
        from ._persist import save_policy

        save_policy(self, path)

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v:g}" for k, v in self.params.items())
        return (f"{type(self).__name__}({len(self._arms)} arms, {self.n_features} features, "
                f"{int(self._counts.sum())} rows learned, {params})")
