"""The shape shared by the continuous-time transaction models (BG/NBD, MBG/NBD, Pareto/NBD):
``fit`` on (frequency, recency, T), per-customer predictions on unique patterns, Arrow output.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from ..errors import InputError
from ..kernels.common.config import CLV_PREDICT_COMPRESS_ABOVE
from ._base import BaseModel
from ._inputs import as_float_array, check_rft, compress, compress_rft, is_table_like, read_columns
from ._spec import TransactionKernels


def _deprecated(old: str, new: str):
    import warnings
    warnings.warn(f"{old} is deprecated; use {new}", DeprecationWarning, stacklevel=3)


class TransactionModel(BaseModel):
    """Base class of the (frequency, recency, T) models; see the subclasses for the equations.

    A concrete model sets ``spec`` (:class:`~._spec.ModelSpec`) and ``kernels``
    (:class:`~._spec.TransactionKernels`). Every method that runs kernels takes ``n_threads=``
    (default: ``FASTENGAGE_NUM_THREADS``, else all cores); results do not depend on it.
    """

    kernels: TransactionKernels | None = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        kernels = cls.__dict__.get("kernels")
        if kernels is not None and not isinstance(kernels, TransactionKernels):
            raise TypeError(f"{cls.__name__}.kernels must be a TransactionKernels")

    # -- input ------------------------------------------------------------------------------
    @staticmethod
    def _rft(frequency, recency, T, *, frequency_col="frequency", recency_col="recency",
             T_col="T", weights=None, weights_col=None):
        w = None
        if is_table_like(frequency) and recency is None and T is None:
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
            recency_col="recency", T_col="T", weights_col=None, initial_params=None,
            n_threads: int | None = None):
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
        n_threads : int, optional
            Threads of the likelihood kernels (the fit is bit-identical for any value).

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
        self._check_histories(px, ptx, pw, counted=w is None)
        return self._fit_payload(self.kernels.payload(px, ptx, pT, pw), initial_params, n_threads)

    @staticmethod
    def _check_histories(px, ptx, pw, counted):
        """What lifetimes' _check_inputs also refuses, on the distinct patterns (cheap): a
        fractional frequency or a recency without a repeat purchase means a wrong column or a
        broken summary, not a customer history. ``pw`` counts customers when ``counted``."""
        for bad, what in ((px != np.floor(px), "frequency is not a whole number for {}; it counts "
                           "repeat purchases (periods with a purchase after the first)"),
                          ((px == 0) & (ptx != 0), "recency is non-zero for {} with frequency 0; "
                           "recency is the time from the first to the last purchase, 0 without a "
                           "repeat purchase")):
            if bad.any():
                n = f"{int(pw[bad].sum())} customer(s)" if counted else \
                    f"{int(np.count_nonzero(bad))} distinct pattern(s)"
                raise InputError(what.format(n))

    # -- predictions --------------------------------------------------------------------------
    def _pattern_eval(self, kernel, n_threads, *cols):
        """``kernel(theta, *cols)`` once per distinct row of the (broadcast) columns."""
        theta = self._theta()
        arrs = np.broadcast_arrays(*[np.asarray(c, dtype=np.float64) for c in cols])
        shape = arrs[0].shape
        flat = [np.ascontiguousarray(a.reshape(-1)) for a in arrs]
        if flat[0].size > CLV_PREDICT_COMPRESS_ABOVE:
            pats, _, inverse = compress(*flat)
            return kernel(theta, *pats, n_threads=n_threads)[inverse].reshape(shape)
        return kernel(theta, *flat, n_threads=n_threads).reshape(shape)

    def _prep_rft(self, frequency, recency, T):
        x = np.asarray(frequency, dtype=np.float64)
        tx = np.asarray(recency, dtype=np.float64)
        TT = np.asarray(T, dtype=np.float64)
        x, tx, TT = np.broadcast_arrays(x, tx, TT)
        # NaN/inf refused, not predicted: the kernels' x == 0 / t_x < T branches turned a NaN
        # history into P(alive) = 1 (lifetimes returns NaN; tests/clv/test_lifetimes_suite.py)
        check_rft(x.reshape(-1), tx.reshape(-1), TT.reshape(-1), check_finite=True)
        return x, tx, TT

    def probability_alive(self, frequency, recency, T, future_t=0.0, *,
                          n_threads: int | None = None) -> np.ndarray:
        """P(customer alive at T + future_t | frequency, recency, T), float64, broadcast shape."""
        x, tx, TT = self._prep_rft(frequency, recency, T)
        return self._pattern_eval(self.kernels.alive, n_threads, x, tx, TT, future_t)

    def expected_purchases(self, t, frequency, recency, T, *,
                           n_threads: int | None = None) -> np.ndarray:
        """E[number of purchases in (T, T+t] | frequency, recency, T], float64, broadcast shape."""
        x, tx, TT = self._prep_rft(frequency, recency, T)
        return self._pattern_eval(self.kernels.expected, n_threads, t, x, tx, TT)

    def conditional_expected_number_of_purchases_up_to_time(self, t, frequency, recency, T):
        """Deprecated alias (lifetimes' name) of :meth:`expected_purchases`."""
        _deprecated("conditional_expected_number_of_purchases_up_to_time", "expected_purchases")
        return self.expected_purchases(t, frequency, recency, T)

    def conditional_probability_alive(self, frequency, recency, T):
        """Deprecated alias (lifetimes' name) of :meth:`probability_alive`."""
        _deprecated("conditional_probability_alive", "probability_alive")
        return self.probability_alive(frequency, recency, T)

    def individual_log_likelihood(self, frequency, recency, T, *,
                                  n_threads: int | None = None) -> np.ndarray:
        """Per-customer log-likelihood at ``params_`` (float64, broadcast shape)."""
        x, tx, TT = self._prep_rft(frequency, recency, T)
        theta = self._theta()
        flat = [np.ascontiguousarray(a.reshape(-1)) for a in (x, tx, TT)]
        return self.kernels.individual_ll(theta, *flat, n_threads=n_threads).reshape(x.shape)

    def population_expected_purchases(self, t, *, n_threads: int | None = None) -> np.ndarray:
        """E[X(t)]: expected purchases in (0, t] of a customer who made a first purchase at 0."""
        tt = np.ascontiguousarray(np.asarray(t, dtype=np.float64).reshape(-1))
        return self.kernels.population(self._theta(), tt,
                                       n_threads=n_threads).reshape(np.shape(t))

    def probability_of_n_purchases(self, t, n, *, n_threads: int | None = None) -> np.ndarray:
        """P(X(t) = n): n purchases in (0, t] for a customer who made the first purchase at 0
        (BG/NBD: FHL 2005 eq. 8; Pareto/NBD: FHL 2005 note eq. 19).

        ``t`` and ``n`` broadcast; returns float64 of the broadcast shape. Computed once per
        distinct (t, n) pair.
        """
        tt, nn = np.broadcast_arrays(np.asarray(t, dtype=np.float64), np.asarray(n, dtype=np.float64))
        if np.any(nn < 0) or np.any(nn != np.floor(nn)):
            raise InputError("n must hold non-negative integers")
        return self._pattern_eval(self.kernels.pmf, n_threads, tt, nn)

    def predict(self, data, t: float, *, customer: str | None = None, frequency_col="frequency",
                recency_col="recency", T_col="T", n_threads: int | None = None) -> pa.Table:
        """Per-customer predictions as an Arrow table.

        Returns columns [customer,] ``probability_alive``, ``expected_purchases`` (next ``t``),
        in the input's row order.
        """
        from .._io.sources import amount_to_float64, open_source
        src = open_source(data)
        roles = src.require({"customer": customer, "frequency": frequency_col,
                             "recency": recency_col, "T": T_col})
        names = list(roles.values())
        batches = list(src.batches(names))
        # a source of no batches (a reader or dataset with nothing in it) is a 0-row table
        table = (pa.Table.from_batches(batches) if batches else
                 pa.schema([src.schema.field(n) for n in names]).empty_table())
        x, tx, TT = (amount_to_float64(table.column(roles[r]), roles[r], r)
                     for r in ("frequency", "recency", "T"))
        out = {}
        if customer is not None:
            out[customer] = table.column(customer)
        out["probability_alive"] = self.probability_alive(x, tx, TT, n_threads=n_threads)
        out["expected_purchases"] = self.expected_purchases(t, x, tx, TT, n_threads=n_threads)
        return pa.table(out)
