"""Bayesian Personalised Ranking (Rendle, Freudenthaler, Gantner & Schmidt-Thieme 2009, UAI),
matrix-factorisation flavour, trained by SGD on sampled (customer, seen item, unseen item)
triples; hyper-parameters as in ``implicit.bpr.BayesianPersonalizedRanking``."""
from __future__ import annotations

import numpy as np

from ..errors import ConvergenceError, InputError
from ..kernels.common.launch import resolve_threads
from ..kernels.recommend import bpr as rec_bpr
from ..kernels.recommend import csr as rec_csr
from ._compat import deprecated_threads
from ._mf import MatrixFactorization

__all__ = ["BPR"]


class BPR(MatrixFactorization):
    """BPR-MF recommender (scores ``x_u^T y_i + b_i``).

    Parameters
    ----------
    factors : int
        Latent dimension; one more column holds the item bias b_i (user side fixed at 1).
    learning_rate, regularization : float
        SGD step and L2 penalty (implicit's defaults 0.01, 0.01).
    iterations : int
        Epochs; each draws as many samples as there are stored pairs.
    verify_negative_samples : bool
        Skip a sampled negative the customer has actually seen.
    dtype : float32 or float64
    seed : int, optional
        Initialisation and sampling seed. With ``n_threads=1`` a fit is exactly
        reproducible; with more threads updates race lock-free (Hogwild), as in implicit.
    n_threads : int, optional
        Threads of the parallel kernels (default ``FASTENGAGE_NUM_THREADS``, else all cores;
        ``num_threads=`` is the deprecated spelling).

    Attributes
    ----------
    user_factors_ : (n_customers, factors + 1), last column 1
    item_factors_ : (n_items, factors + 1), last column the bias
    train_accuracy_ : float
        Share of last-epoch samples already ranked correctly before their update.
    """

    kind = "recommend.bpr"
    _extra_columns = 1  # the item bias (user side fixed at 1)
    _params = ("factors", "learning_rate", "regularization", "iterations",
               "verify_negative_samples", "dtype", "seed", "n_threads")

    def __init__(self, factors: int = 100, learning_rate: float = 0.01,
                 regularization: float = 0.01, iterations: int = 100,
                 verify_negative_samples: bool = True, dtype=np.float32,
                 seed: int | None = None, n_threads: int | None = None,
                 num_threads: int | None = None):
        super().__init__(n_threads=deprecated_threads(n_threads, num_threads), use_native=True)
        if int(factors) < 1 or int(iterations) < 0:
            raise InputError("factors must be >= 1 and iterations >= 0")
        if not learning_rate > 0 or not regularization >= 0:
            raise InputError("learning_rate must be > 0 and regularization >= 0")
        self.factors = int(factors)
        self.learning_rate = float(learning_rate)
        self.regularization = float(regularization)
        self.iterations = int(iterations)
        self.verify_negative_samples = bool(verify_negative_samples)
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise InputError(f"dtype must be float32 or float64, got {self.dtype}")
        self.seed = seed

    def _fit(self, inter) -> None:
        n_users, n_items = inter.shape
        f = self.factors
        rng = np.random.default_rng(self.seed)
        X = ((rng.random((n_users, f + 1)) - 0.5) / f).astype(self.dtype)
        Y = ((rng.random((n_items, f + 1)) - 0.5) / f).astype(self.dtype)
        X[:, f] = 1.0
        Y[:, f] = 0.0
        nnz_rows = rec_csr.row_of_nnz(self.seen_indptr_)
        n_chunks = resolve_threads(self._fit_threads)
        correct = skipped = 0
        for _ in range(self.iterations):
            epoch_seed = np.uint64(rng.integers(1, 2**63 - 1))
            correct, skipped = rec_bpr.bpr_epoch(
                self.seen_indptr_, self.seen_indices_, nnz_rows, X, Y, self.learning_rate,
                self.regularization, self.verify_negative_samples, epoch_seed, n_chunks,
                n_threads=self._fit_threads)
        if not (np.isfinite(X).all() and np.isfinite(Y).all()):
            raise ConvergenceError(
                f"BPR fit: the factors are not finite (NaN or inf) after {self.iterations} "
                f"epochs; the SGD diverged (learning_rate={self.learning_rate:g}): use a "
                "smaller learning_rate")
        used = max(1, inter.nnz - int(skipped))
        self.train_accuracy_ = float(correct) / used
        self.user_factors_ = X
        self.item_factors_ = Y
        self._finalize()

    def _fold_in(self, hist, n_threads=None):
        raise InputError("BPR cannot fold in new histories without refitting; use ALS or "
                         "ItemKNN for recommend_new()")
