"""Implicit-feedback ALS (Hu, Koren & Volinsky 2008, "Collaborative filtering for implicit
feedback datasets", ICDM), with the conjugate-gradient solver of Takacs, Pilaszy & Tikk (2011)
and an exact Cholesky solver.

Model (paper eq. 3): minimise over user factors x_u and item factors y_i

    sum_{u,i} c_ui (p_ui - x_u^T y_i)^2 + lambda (sum_u |x_u|^2 + sum_i |y_i|^2),

with p_ui = 1 for every stored interaction and 0 elsewhere. Following the ``implicit`` library
(same hyper-parameters, same model), the confidence of a stored pair is ``c_ui = alpha * r_ui``
(``r_ui`` from the :class:`Interactions` weighting) and 1 for unstored pairs. Each iteration
solves all users with items fixed (eq. 4), then all items with users fixed.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..errors import ConvergenceError, InputError
from ..kernels.recommend import als as rec_als
from ._compat import deprecated_threads
from ._mf import MatrixFactorization

__all__ = ["ALS", "MAX_ALPHA"]

#: Largest confidence scale accepted (constructor and saved files). Confidences are
#: ``alpha * r`` in the factor dtype: a huge finite alpha (say 1e308) overflows them to inf in
#: fold-in and training, and the scores become NaN. Practical values are 1..100 (the paper uses
#: 40); 1e6 keeps ``alpha * r`` finite in float32 for any r below 1e32.
MAX_ALPHA = 1e6


class ALS(MatrixFactorization):
    """Implicit ALS recommender.

    Parameters
    ----------
    factors : int
        Latent dimension f (implicit's default 100).
    regularization : float
        lambda of eq. 3 (implicit's default 0.01; not scaled by counts).
    alpha : float
        Confidence scale: ``c_ui = alpha * r_ui`` (implicit's convention and default 1.0).
    iterations : int
        Full ALS sweeps (users then items).
    solver : {"cg", "cholesky"}
        Conjugate gradient, warm-started from the previous factors (``cg_steps`` steps per
        row; implicit's default solver), or the exact Cholesky solve of eq. 4.
    cg_steps : int
        CG steps per row and half-iteration (implicit uses 3).
    dtype : numpy dtype
        float32 (default, as implicit) or float64 factors.
    seed : int, optional
        Seeds the factor initialisation (uniform in [0, 0.01), users then items, as implicit).
    calculate_loss : bool
        Record the objective after each iteration in ``loss_history_`` (costs one pass).
    use_native : bool
        False runs the pure-NumPy solvers and top-N (slower; for checking).
    n_threads : int, optional
        Threads of the parallel kernels (default ``FASTENGAGE_NUM_THREADS``, else all cores;
        ``num_threads=`` is the deprecated spelling).

    Attributes
    ----------
    user_factors_ : ndarray (n_customers, factors)
    item_factors_ : ndarray (n_items, factors)
    loss_history_ : list of float
    """

    kind = "recommend.als"
    _params = ("factors", "regularization", "alpha", "iterations", "solver", "cg_steps",
               "dtype", "seed", "calculate_loss", "use_native", "n_threads")

    def __init__(self, factors: int = 100, regularization: float = 0.01, alpha: float = 1.0,
                 iterations: int = 15, solver: str = "cg", cg_steps: int = 3,
                 dtype=np.float32, seed: int | None = None, calculate_loss: bool = False,
                 use_native: bool = True, n_threads: int | None = None,
                 num_threads: int | None = None):
        super().__init__(n_threads=deprecated_threads(n_threads, num_threads),
                         use_native=use_native)
        if solver not in ("cg", "cholesky"):
            raise InputError(f'solver must be "cg" or "cholesky", got {solver!r}')
        if int(factors) < 1 or int(iterations) < 0 or int(cg_steps) < 1:
            raise InputError("factors and cg_steps must be >= 1 and iterations >= 0")
        if not regularization >= 0 or not alpha > 0:
            raise InputError("regularization must be >= 0 and alpha > 0")
        if not alpha <= MAX_ALPHA or not np.isfinite(regularization):
            raise InputError(f"alpha must be at most {MAX_ALPHA:g} (got {alpha!r}) and "
                             f"regularization finite (got {regularization!r}): larger values "
                             "overflow the confidences alpha * r")
        self.factors = int(factors)
        self.regularization = float(regularization)
        self.alpha = float(alpha)
        self.iterations = int(iterations)
        self.solver = solver
        self.cg_steps = int(cg_steps)
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise InputError(f"dtype must be float32 or float64, got {self.dtype}")
        self.seed = seed
        self.calculate_loss = calculate_loss
        self.loss_history_: list[float] = []

    # -- kernels: native or NumPy ---------------------------------------------------------------
    def _k(self):
        if self.use_native:
            return rec_als
        from ..kernels.recommend import vectorized as rec_numpy
        return rec_numpy

    def _half(self, indptr, indices, conf, X, Y, solver=None, n_threads=None):
        f = self.factors
        cg = (solver or self.solver) == "cg"
        k = self._k()
        A0 = k.gram(Y) + self.regularization * np.eye(f)
        if cg:
            k.als_cg_half(indptr, indices, conf, X, Y, A0.astype(X.dtype), self.cg_steps,
                          n_threads=n_threads)
        else:
            k.als_cholesky_half(indptr, indices, conf, X, Y, A0, n_threads=n_threads)

    def _confidences(self, indptr, indices, data, n_items):
        """Confidences ``alpha * r`` of the customer rows and the same as item rows (the CSR
        of the transpose, indices sorted)."""
        conf = (self.alpha * data.astype(np.float64)).astype(self.dtype)
        t = sp.csr_matrix((conf, indices, indptr), shape=(indptr.size - 1, n_items)).T.tocsr()
        t.sort_indices()
        item_rows = (np.ascontiguousarray(t.indptr, np.int64),
                     np.ascontiguousarray(t.indices, np.int64),
                     np.ascontiguousarray(t.data, self.dtype))
        return conf, item_rows

    def _fit(self, inter) -> None:
        indptr, indices, data = self.seen_indptr_, self.seen_indices_, self.seen_data_
        n_users, n_items = inter.shape
        conf, (t_indptr, t_indices, t_conf) = self._confidences(indptr, indices, data, n_items)
        rng = np.random.default_rng(self.seed)
        X = rng.random((n_users, self.factors), dtype=self.dtype) * self.dtype.type(0.01)
        Y = rng.random((n_items, self.factors), dtype=self.dtype) * self.dtype.type(0.01)
        self.loss_history_ = []
        # no BLAS call: the Gram matrices are a kernel too (a multi-threaded BLAS on a busy
        # machine cost more than the half-steps), and nothing changes process-wide state
        for _ in range(self.iterations):
            self._half(indptr, indices, conf, X, Y, n_threads=self._fit_threads)
            self._half(t_indptr, t_indices, t_conf, Y, X, n_threads=self._fit_threads)
            if self.calculate_loss:
                self.loss_history_.append(self._loss(indptr, indices, conf, X, Y))
        if not (np.isfinite(X).all() and np.isfinite(Y).all()):
            # a NaN factor scores NaN, and top-n would silently return nothing for it
            # (implicit raises ModelFitError here too)
            raise ConvergenceError(
                f"ALS fit: the factors are not finite (NaN or inf) after {self.iterations} "
                f"iterations: with regularization={self.regularization:g} a half-step is "
                f"singular ({self.factors} factors, {n_users} customers, {n_items} items); "
                "use regularization > 0 or fewer factors")
        self.user_factors_ = X
        self.item_factors_ = Y
        self._finalize()

    def resolve_items(self, user_factors, indptr, indices, data, n_threads=None) -> np.ndarray:
        """The exact item half-step: item factors solving paper eq. 4 (items side, Cholesky)
        for the interactions ``(indptr, indices, data)`` (customer rows, values ``r``) with
        ``user_factors`` fixed. What :meth:`forget` runs on the remaining customers."""
        _, (t_indptr, t_indices, t_conf) = self._confidences(indptr, indices, data,
                                                             self.n_items)
        Y = np.zeros((self.n_items, self.factors), self.dtype)
        self._half(t_indptr, t_indices, t_conf, Y, np.ascontiguousarray(user_factors),
                   solver="cholesky", n_threads=n_threads)
        return Y

    def _forgotten_state(self, keep, seen):
        # exact unlearning of the item side: one exact item half-step on the remaining data
        # with the remaining customers' current factors (see fastengage.recommend._forget)
        users = np.ascontiguousarray(self.user_factors_[keep])
        items = self.resolve_items(users, *seen, n_threads=self.n_threads)
        if not np.isfinite(items).all():
            raise ConvergenceError(
                "forget: the item half-step without these customers has no finite solution "
                "(regularization=0 with too few remaining customers, or confidences that "
                "overflow); the model is unchanged: refit it on the data without them")
        return ({"user_factors_": users, "item_factors_": items}, True,
                "user factors, seen rows and ids removed; item factors re-solved exactly "
                "(one Cholesky item half-step on the remaining interactions with the remaining "
                "user factors fixed). Not a refit from scratch: the remaining user factors are "
                "kept as fitted", {"item_factors": "re-solved"})

    def _loss(self, indptr, indices, conf, X, Y) -> float:
        YtY = self._k().gram(Y)
        return float(self._k().als_loss(indptr, indices, conf, X, Y, YtY, self.regularization,
                                        n_threads=self.n_threads))

    def loss(self) -> float:
        """Objective (eq. 3 with implicit's confidences) of the fitted factors on the training
        data (float, unnormalised sum)."""
        self._check_fitted()
        conf = (self.alpha * self.seen_data_.astype(np.float64)).astype(self.dtype)
        return self._loss(self.seen_indptr_, self.seen_indices_, conf, self.user_factors_,
                          self.item_factors_)

    def _fold_in(self, hist, n_threads=None) -> np.ndarray:
        # Exact solve of eq. 4 for each new history with the item factors fixed (what implicit's
        # recalculate_user does): deterministic and independent of any starting point.
        indptr, indices, values = hist
        conf = (self.alpha * values.astype(np.float64)).astype(self.dtype)
        U = np.zeros((indptr.size - 1, self.factors), self.dtype)
        self._half(indptr, indices, conf, U, self.item_factors_, solver="cholesky",
                   n_threads=n_threads)
        if not np.isfinite(U).all():
            bad = int(np.count_nonzero(~np.isfinite(U).all(axis=1)))
            raise ConvergenceError(
                f"recommend_new: the fold-in of {bad} customer(s) has no finite solution "
                f"(regularization={self.regularization:g} leaves their eq. 4 system singular); "
                "refit with regularization > 0")
        return U
