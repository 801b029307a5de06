"""BG/BB (Fader, Hardie & Shang 2010): discrete-time, non-contractual repeat transactions.

At each of n opportunities an alive customer transacts with probability p ~ Beta(alpha, beta)
and then may die with probability theta ~ Beta(gamma, delta). Data are (frequency x, recency
t_x, periods n) patterns, usually with weights (customers per pattern). Likelihood: eq. (5);
P(alive): eq. (11); expected transactions in the next n* opportunities: eq. (13).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ..errors import InputError
from ..kernels.clv import bgbb as _k
from ._base import BaseModel
from ._inputs import as_float_array, check_rft, compress, is_table_like, read_columns
from ._spec import ModelSpec, Payload

__all__ = ["BetaGeoBetaBinom"]


@dataclasses.dataclass(frozen=True)
class BGBBPayload(Payload):
    """Distinct (x, t_x, n) patterns with their weights."""

    x: np.ndarray
    tx: np.ndarray
    n: np.ndarray
    w: np.ndarray


def _loglik(theta, p: BGBBPayload, n_threads):
    ll, grad, _ = _k.loglik_grad(theta, p.x, p.tx, p.n, p.w, n_threads=n_threads)
    return ll, grad


class BetaGeoBetaBinom(BaseModel):
    """BG/BB: ``params_`` = {alpha, beta, gamma, delta}.

    ``fit(frequency, recency, periods, weights=None)``, or a table with those columns
    (``weights_col`` names the weight column, e.g. ``"weights"`` for donations.csv).
    """

    # quasi-Newton: the discrete likelihood's Hessian has no cheap closed form and the data
    # are a few hundred patterns
    spec = ModelSpec(kind="clv.bgbb", param_names=("alpha", "beta", "gamma", "delta"),
                     loglik=_loglik, start=lambda p: np.ones(4))

    @staticmethod
    def _prep(frequency, recency, periods, weights=None, frequency_col="frequency",
              recency_col="recency", periods_col="periods", weights_col=None):
        w = None
        if is_table_like(frequency) and recency is None:
            cols = read_columns(frequency, {"frequency": frequency_col, "recency": recency_col,
                                            "periods": periods_col, "weights": weights_col})
            x, tx, n = cols["frequency"], cols["recency"], cols["periods"]
            w = cols.get("weights")
        else:
            x = as_float_array(frequency, "frequency")
            tx = as_float_array(recency, "recency")
            n = as_float_array(periods, "periods")
        if weights is not None:
            w = as_float_array(weights, "weights")
        if w is not None:
            if w.shape != x.shape:
                raise InputError("weights must have one value per row")
            if w.size and w.min() < 0:
                raise InputError(f"weights has {int(np.count_nonzero(w < 0))} negative value(s)")
        check_rft(x, tx, n, ("frequency", "recency", "periods"))
        for name, a in (("frequency", x), ("recency", tx), ("periods", n)):
            if np.any(a != np.floor(a)):
                raise InputError(f"{name} must hold whole numbers of opportunities (BG/BB is discrete)")
        if np.any(x > tx):
            raise InputError("frequency exceeds recency: the last transaction opportunity t_x "
                             "cannot be before the x-th transaction")
        return x, tx, n, w

    def fit(self, frequency, recency=None, periods=None, *, weights=None,
            frequency_col="frequency", recency_col="recency", periods_col="periods",
            weights_col=None, initial_params=None, n_threads: int | None = None):
        """Fit by maximum likelihood over the distinct (x, t_x, n) patterns with their weights."""
        x, tx, n, w = self._prep(frequency, recency, periods, weights, frequency_col,
                                 recency_col, periods_col, weights_col)
        (px, ptx, pn), pw, _ = compress(x, tx, n, weights=w)
        payload = BGBBPayload(total_weight=float(pw.sum()), n_patterns=int(pw.shape[0]),
                              time_scale=1.0, x=px, tx=ptx, n=pn, w=pw)
        return self._fit_payload(payload, initial_params, n_threads)

    def _arrays(self, *cols, history=slice(0, 3)):
        """Broadcast float64 columns; the (frequency, recency, periods) among them (``history``)
        are checked like fit's: finite, non-negative, recency <= periods (a NaN history would
        otherwise come out as a probability)."""
        arrs = np.broadcast_arrays(*[np.asarray(c, dtype=np.float64) for c in cols])
        flat = [np.ascontiguousarray(a.reshape(-1)) for a in arrs]
        check_rft(*flat[history], ("frequency", "recency", "periods"), check_finite=True)
        return arrs[0].shape, flat

    def probability_alive(self, frequency, recency, periods, future=0, *,
                          n_threads: int | None = None) -> np.ndarray:
        """P(alive at opportunity n + 1 + future | x, t_x, n) (eq. 11 at future = 0)."""
        shape, (x, tx, n, f) = self._arrays(frequency, recency, periods, future)
        return _k.probability_alive(self._theta(), x, tx, n, f,
                                    n_threads=n_threads).reshape(shape)

    def expected_purchases(self, n_future, frequency, recency, periods, *,
                           n_threads: int | None = None) -> np.ndarray:
        """Expected transactions in the next ``n_future`` opportunities (eq. 13)."""
        shape, (t, x, tx, n) = self._arrays(n_future, frequency, recency, periods,
                                            history=slice(1, 4))
        return _k.expected_purchases(self._theta(), t, x, tx, n,
                                     n_threads=n_threads).reshape(shape)

    def probability_of_n_purchases(self, periods, n, *,
                                   n_threads: int | None = None) -> np.ndarray:
        """P(X(periods) = n): n transactions in the first ``periods`` opportunities of a new
        customer (FHS 2010 eq. 7). Broadcasts; float64. Times the number of customers observed
        for ``periods`` opportunities, ``n = 0..periods`` is lifetimes'
        ``expected_number_of_transactions_in_first_n_periods`` (Hardie's in-sample fit).
        ``n_threads`` is accepted like every CLV entry point's; the kernel is serial (a table of
        a few (periods, n) pairs, O(periods) each)."""
        nn, kk = np.broadcast_arrays(np.asarray(periods, dtype=np.float64),
                                     np.asarray(n, dtype=np.float64))
        for name, a in (("periods", nn), ("n", kk)):
            if not np.all(np.isfinite(a)) or np.any(a < 0) or np.any(a != np.floor(a)):
                raise InputError(f"{name} must hold non-negative whole numbers")
        # owned copies: a broadcast view would give Numba a read-only array (a second
        # specialisation, and its FutureWarning)
        flat = [np.array(a.reshape(-1), dtype=np.float64) for a in (nn, kk)]
        return _k.probability_n_purchases(self._theta(), *flat).reshape(nn.shape)

    def individual_log_likelihood(self, frequency, recency, periods, *,
                                  n_threads: int | None = None) -> np.ndarray:
        shape, (x, tx, n) = self._arrays(frequency, recency, periods)
        return _k.loglik_grad(self._theta(), x, tx, n, np.ones_like(x),
                              n_threads=n_threads)[2].reshape(shape)
