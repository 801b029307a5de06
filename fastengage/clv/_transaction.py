"""The shape shared by the continuous-time transaction models (BG/NBD, MBG/NBD, Pareto/NBD):
``fit`` on (frequency, recency, T), per-customer predictions on unique patterns, Arrow output.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from ..errors import InputError
from ._base import (BaseModel, _is_table_like, as_float_array, check_rft, compress, compress_rft,
                    read_columns)

#: Above this many customers, predictions are computed once per distinct pattern and scattered.
_COMPRESS_ABOVE = 4096


class TransactionModel(BaseModel):
    """Base class of the (frequency, recency, T) models; see the subclasses for the equations."""

    # -- input ------------------------------------------------------------------------------
    @staticmethod
    def _rft(frequency, recency, T, *, frequency_col="frequency", recency_col="recency",
             T_col="T", weights=None, weights_col=None):
        w = None
        if _is_table_like(frequency) and recency is None and T is None:
            cols = read_columns(frequency, {"frequency": frequency_col, "recency": recency_col,
                                            "T": T_col, "weights": weights_col})
            x, tx, TT = cols["frequency"], cols["recency"], cols["T"]
            w = cols.get("weights")
        else:
            if recency is None or T is None:
                raise InputError("pass either a table with frequency/recency/T columns or the "
                                 "three arrays fit(frequency, recency, T)")
            # NaN/inf are counted by check_rft's one-pass kernel
            x = as_float_array(frequency, "frequency", check_finite=False)
            tx = as_float_array(recency, "recency", check_finite=False)
            TT = as_float_array(T, "T", check_finite=False)
        if weights is not None:
            w = as_float_array(weights, "weights")
        check_rft(x, tx, TT, check_finite=True)
        if w is not None:
            if w.shape != x.shape:
                raise InputError("weights must have one value per customer")
            if w.size and w.min() < 0:
                raise InputError("weights has negative values")
        if x.size == 0:
            raise InputError("no customers to fit: the input is empty")
        return x, tx, TT, w

    def fit(self, frequency, recency=None, T=None, *, weights=None, frequency_col="frequency",
            recency_col="recency", T_col="T", weights_col=None, initial_params=None):
        """Fit by maximum likelihood over the distinct (frequency, recency, T) patterns.

        Parameters
        ----------
        frequency : array-like of float (n,) or an Arrow table / any Arrow input
            Repeat purchases x per customer; or a table holding the three columns (names given
            by ``frequency_col``, ``recency_col``, ``T_col``), e.g. the output of
            :func:`fastengage.clv.summary`.
        recency, T : array-like of float (n,), optional
            t_x and T in the same time unit (required when ``frequency`` is an array).
        weights : array-like (n,), optional
            Customers represented by each row (default 1), e.g. when passing patterns.
        initial_params : dict or sequence, optional
            Starting point (papers' names); the default is model specific.

        Returns
        -------
        self

        Raises
        ------
        InputError on bad input, ConvergenceError when no optimiser run converges.
        """
        x, tx, TT, w = self._rft(frequency, recency, T, frequency_col=frequency_col,
                                 recency_col=recency_col, T_col=T_col, weights=weights,
                                 weights_col=weights_col)
        (px, ptx, pT), pw = compress_rft(x, tx, TT, weights=w)
        return self._fit_data(self._payload(px, ptx, pT, pw), float(pw.sum()), initial_params)

    def _payload(self, x, tx, T, w):
        """What ``_loglik_grad`` receives; subclasses may add precomputed indices."""
        return (x, tx, T, w)

    # -- predictions --------------------------------------------------------------------------
    def _pattern_eval(self, fn, *cols):
        """Evaluate fn(*cols) once per distinct row of the (broadcast) columns."""
        arrs = np.broadcast_arrays(*[np.asarray(c, dtype=np.float64) for c in cols])
        shape = arrs[0].shape
        flat = [np.ascontiguousarray(a.reshape(-1)) for a in arrs]
        if flat[0].size > _COMPRESS_ABOVE:
            pats, _, inverse = compress(*flat)
            return fn(*pats)[inverse].reshape(shape)
        return fn(*flat).reshape(shape)

    def _prep_rft(self, frequency, recency, T):
        x = np.asarray(frequency, dtype=np.float64)
        tx = np.asarray(recency, dtype=np.float64)
        TT = np.asarray(T, dtype=np.float64)
        x, tx, TT = np.broadcast_arrays(x, tx, TT)
        check_rft(x.reshape(-1), tx.reshape(-1), TT.reshape(-1))
        return x, tx, TT

    def probability_alive(self, frequency, recency, T, future_t=0.0) -> np.ndarray:
        """P(customer alive at T + future_t | frequency, recency, T), float64, broadcast shape."""
        x, tx, TT = self._prep_rft(frequency, recency, T)
        theta = self._theta()
        return self._pattern_eval(lambda a, b, c, d: self._k_alive(theta, a, b, c, d),
                                  x, tx, TT, future_t)

    def expected_purchases(self, t, frequency, recency, T) -> np.ndarray:
        """E[number of purchases in (T, T+t] | frequency, recency, T], float64, broadcast shape."""
        x, tx, TT = self._prep_rft(frequency, recency, T)
        theta = self._theta()
        return self._pattern_eval(lambda tt, a, b, c: self._k_expected(theta, tt, a, b, c),
                                  t, x, tx, TT)

    # lifetimes' name, for users porting code
    def conditional_expected_number_of_purchases_up_to_time(self, t, frequency, recency, T):
        return self.expected_purchases(t, frequency, recency, T)

    def population_expected_purchases(self, t) -> np.ndarray:
        """E[X(t)]: expected purchases in (0, t] of a customer who made a first purchase at 0."""
        tt = np.ascontiguousarray(np.asarray(t, dtype=np.float64).reshape(-1))
        return self._k_population(self._theta(), tt).reshape(np.shape(t))

    def probability_of_n_purchases(self, t, n) -> np.ndarray:
        """P(X(t) = n): n purchases in (0, t] for a customer who made the first purchase at 0
        (BG/NBD: FHL 2005 eq. 8; Pareto/NBD: FHL 2005 note eq. 19).

        ``t`` and ``n`` broadcast; returns float64 of the broadcast shape. Computed once per
        distinct (t, n) pair.
        """
        tt, nn = np.broadcast_arrays(np.asarray(t, dtype=np.float64), np.asarray(n, dtype=np.float64))
        if np.any(nn < 0) or np.any(nn != np.floor(nn)):
            raise InputError("n must hold non-negative integers")
        theta = self._theta()
        return self._pattern_eval(lambda a, b: self._k_pmf(theta, a, b), tt, nn)

    def predict(self, data, t: float, *, customer: str | None = None, frequency_col="frequency",
                recency_col="recency", T_col="T") -> pa.Table:
        """Per-customer predictions as an Arrow table.

        Returns columns [customer,] ``probability_alive``, ``expected_purchases`` (next ``t``),
        in the input's row order.
        """
        from .._io.sources import amount_to_float64, open_source
        src = open_source(data)
        roles = src.require({"customer": customer, "frequency": frequency_col,
                             "recency": recency_col, "T": T_col})
        table = pa.Table.from_batches(list(src.batches(list(roles.values()))))
        x, tx, TT = (amount_to_float64(table.column(roles[r]), roles[r], r)
                     for r in ("frequency", "recency", "T"))
        out = {}
        if customer is not None:
            out[customer] = table.column(customer)
        out["probability_alive"] = self.probability_alive(x, tx, TT)
        out["expected_purchases"] = self.expected_purchases(t, x, tx, TT)
        return pa.table(out)
