"""The cases ``fastengage bench`` times: fastengage and, when installed, the peer a user would
otherwise pick, on the same generated data, with the answers checked against each other.

A case is ``(name, units, count, ours, peers, check)``: ``count`` is the number of ``units``
(rows, customers, interactions) one call processes, for the throughput column.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .gendata import transactions

__all__ = ["Case", "cases", "BENCH_CAPABILITIES"]

BENCH_CAPABILITIES = ("rfm", "clv", "recommend", "scoring", "bandits", "monitor", "privacy")


@dataclass
class Case:
    name: str
    units: str
    count: int
    ours: Callable[[], Any]
    peers: dict = field(default_factory=dict)  # name -> callable
    check: Callable[[Any, Any, str], None] | None = None
    skipped: dict = field(default_factory=dict)  # peer name -> why


def _have(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _rfm_cases(rows: int) -> list[Case]:
    from .. import rfm

    t = transactions(rows, time_sorted=False)
    ours = lambda: rfm(t, customer="customer", time="time", amount="amount", order="order")  # noqa: E731
    case = Case(f"rfm@{rows} rows", "rows", rows, ours)

    if _have("polars"):
        import polars as pl

        df = pl.from_arrow(t)

        def polars_rfm():
            return df.lazy().group_by("customer").agg(
                pl.col("time").filter(pl.col("amount") >= 0).min().alias("first"),
                pl.col("time").filter(pl.col("amount") >= 0).max().alias("last"),
                pl.col("order").filter(pl.col("amount") >= 0).n_unique().alias("frequency"),
                pl.col("amount").sum().alias("monetary_total"),
            ).filter(pl.col("frequency") > 0).sort("customer").collect()

        case.peers["polars"] = polars_rfm
    else:
        case.skipped["polars"] = "not installed (pip install polars)"

    def check(ours_result, peer_result, peer):
        assert ours_result.num_rows == peer_result.height, f"{peer}: customer counts differ"
        assert np.array_equal(ours_result["frequency"].to_numpy(),
                              peer_result["frequency"].to_numpy()), f"{peer}: frequency differs"
        np.testing.assert_allclose(ours_result["monetary_total"].to_numpy(),
                                   peer_result["monetary_total"].to_numpy(), rtol=1e-9, atol=1e-6)

    case.check = check
    return [case]


def _clv_cases(rows: int) -> list[Case]:
    from .. import clv

    t = transactions(rows)
    t = t.filter(pc.greater(t["amount"], 0))
    s = clv.summary(t, customer="customer", time="time", amount="amount", freq="D")
    x, tx, T = (s[c].to_numpy() for c in ("frequency", "recency", "T"))
    case = Case(f"clv.betageo_fit@{s.num_rows} customers", "customers", s.num_rows,
                lambda: clv.BetaGeo().fit(x, tx, T))
    if _have("lifetimes"):
        def lifetimes_fit():
            from lifetimes import BetaGeoFitter

            return BetaGeoFitter().fit(x, tx, T)

        case.peers["lifetimes"] = lifetimes_fit

        def check(ours_result, peer_result, peer):
            ll_ours = ours_result.log_likelihood_
            ll_peer = -peer_result._negative_log_likelihood_ * len(x)
            assert ll_ours >= ll_peer - 1e-3 * abs(ll_peer), f"{peer}: worse likelihood"

        case.check = check
    else:
        case.skipped["lifetimes"] = "not installed (pip install lifetimes)"
    summary = Case(f"clv.summary@{t.num_rows} rows", "rows", t.num_rows,
                   lambda: clv.summary(t, customer="customer", time="time", amount="amount",
                                       freq="D"))
    return [summary, case]


def _recommend_cases(rows: int) -> list[Case]:
    from ..recommend import ALS, Interactions

    t = transactions(rows)
    inter = Interactions.from_data(t, customer="customer", item="item")
    params = dict(factors=32, regularization=0.05, alpha=2.0, iterations=5)
    nnz = inter.nnz
    fit = Case(f"recommend.als_fit@{nnz} interactions", "interactions", nnz,
               lambda: ALS(seed=0, **params).fit(inter))
    model = ALS(seed=0, **params).fit(inter)
    top = Case(f"recommend.recommend_all_n10@{model.n_customers} customers", "customers",
               model.n_customers, lambda: model.recommend(n=10))
    if _have("implicit"):
        def implicit_fit():
            from threadpoolctl import threadpool_limits
            from implicit.cpu.als import AlternatingLeastSquares

            with threadpool_limits(1, "blas"):
                m = AlternatingLeastSquares(random_state=0, calculate_training_loss=False,
                                            **params)
                m.fit(inter.matrix.astype(np.float32).tocsr(), show_progress=False)
            return m

        fit.peers["implicit"] = implicit_fit
    else:
        fit.skipped["implicit"] = "not installed (pip install implicit)"
    return [fit, top]


def _scoring_cases(rows: int) -> list[Case]:
    from ..datasets import data_path
    from ..scoring import load_model

    names = ["recency_days", "tenure_days", "frequency", "purchase_days", "monetary_total",
             "monetary_mean"]
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.integers(0, 365, rows), rng.integers(0, 365, rows),
                         rng.integers(1, 50, rows), rng.integers(1, 50, rows),
                         rng.gamma(2.0, 300.0, rows), rng.gamma(2.0, 30.0, rows)]).astype(np.float32)
    table = pa.table({n: X[:, j] for j, n in enumerate(names)})
    path = data_path("churn_hgb.onnx")
    model = load_model(path)
    case = Case(f"scoring.trees_onnx@{rows} rows", "rows", rows,
                lambda: model.score(table, features=names))
    if _have("onnxruntime"):
        import onnxruntime as ort

        sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        input_name = sess.get_inputs()[0].name

        def ort_score():
            return sess.run(None, {input_name: np.ascontiguousarray(X)})

        def check(ours_result, peer_result, peer):
            probs = peer_result[1]
            p1 = np.array([p[1] for p in probs]) if isinstance(probs, list) else probs[:, 1]
            np.testing.assert_allclose(ours_result["probability_1"].to_numpy(), p1,
                                       rtol=1e-5, atol=1e-6)

        case.peers["onnxruntime"] = ort_score
        case.check = check
    return [case]


def _linucb_logs(rows: int, d: int = 20, k: int = 10):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(rows, d))
    arms = rng.integers(0, k, rows)
    beta = rng.normal(size=(k, d)) / np.sqrt(d)
    reward = np.einsum("nd,nd->n", X, beta[arms]) + 0.5 * rng.normal(size=rows)
    names = [f"x{j}" for j in range(d)]
    table = pa.table({**{n: X[:, j] for j, n in enumerate(names)}, "arm": arms,
                      "reward": reward})
    return table, X, arms, reward, names, list(range(k))


def _bandits_cases(rows: int) -> list[Case]:
    from ..bandits import LinUCB

    table, X, arms, reward, names, arm_ids = _linucb_logs(rows)
    fit = Case(f"bandits.linucb_fit@{rows} rows", "rows", rows, lambda: LinUCB(
        arm_ids, features=names).update(table, arm="arm", reward="reward"))
    policy = fit.ours()
    decide = Case(f"bandits.linucb_decide@{rows} rows", "decisions", rows,
                  lambda: policy.decide(table, seed=0))
    if not _have("mabwiser"):
        for case in (fit, decide):
            case.skipped["mabwiser"] = "not installed (pip install mabwiser)"
        return [fit, decide]
    from mabwiser.mab import MAB, LearningPolicy

    def mabwiser():
        return MAB(arms=arm_ids, learning_policy=LearningPolicy.LinUCB(alpha=1.0, l2_lambda=1.0))

    def fit_check(ours_result, peer_result, peer):
        for k, arm in enumerate(arm_ids):
            np.testing.assert_allclose(ours_result._snapshot.theta[k],
                                       peer_result._imp.arm_to_model[arm].beta, rtol=1e-7,
                                       atol=1e-9, err_msg=f"{peer}: arm {arm}'s ridge differs")

    def mabwiser_fit():
        model = mabwiser()
        model.fit(arms, reward, X)
        return model

    fit.peers["mabwiser"] = mabwiser_fit
    fit.check = fit_check
    fitted = mabwiser_fit()
    decide.peers["mabwiser"] = lambda: fitted.predict(X)
    decide.check = lambda ours_result, peer_result, peer: np.testing.assert_array_equal(
        ours_result["arm"].to_numpy(), np.asarray(peer_result), err_msg=f"{peer}: arms differ")
    return [fit, decide]


def _monitor_cases(rows: int) -> list[Case]:
    from ..monitor import drift

    rng = np.random.default_rng(0)
    n_cols = 5
    reference = pa.table({f"c{j}": rng.normal(size=rows) for j in range(n_cols)})
    current = pa.table({f"c{j}": rng.normal(0.05 * j, 1.0 + 0.02 * j, rows)
                        for j in range(n_cols)})
    case = Case(f"monitor.drift@{rows} rows x {n_cols} columns", "rows", 2 * rows * n_cols,
                lambda: drift(reference, current))
    if not _have("scipy"):
        case.skipped["scipy"] = "not installed (pip install scipy)"
        return [case]
    from scipy import stats

    def scipy_drift():  # KS and Wasserstein per column, the two that need sorting
        return [(stats.ks_2samp(reference[c].to_numpy(), current[c].to_numpy()).statistic,
                 stats.wasserstein_distance(reference[c].to_numpy(), current[c].to_numpy()))
                for c in reference.column_names]

    def check(ours_result, peer_result, peer):
        ks, wd = (np.array(v) for v in zip(*peer_result))
        np.testing.assert_allclose(ours_result["ks_statistic"].to_numpy(), ks, rtol=1e-9,
                                   err_msg=f"{peer}: KS differs")
        np.testing.assert_allclose(ours_result["wasserstein"].to_numpy(), wd, rtol=1e-9,
                                   err_msg=f"{peer}: Wasserstein differs")

    case.peers["scipy"] = scipy_drift
    case.check = check
    return [case]


def _privacy_cases(rows: int) -> list[Case]:
    import hashlib
    import hmac

    from ..privacy import pseudonymize

    key = bytes(range(32))
    ids = [f"customer-{i:09d}" for i in np.random.default_rng(0).permutation(rows)]
    table = pa.table({"customer": pa.array(ids)})
    case = Case(f"privacy.pseudonymize_hmac@{rows} ids", "ids", rows,
                lambda: pseudonymize(table, ["customer"], key=key))

    def python_hmac():  # what a user writes without a vectorised HMAC
        return [hmac.new(key, i.encode(), hashlib.sha256).hexdigest()[:32] for i in ids]

    def check(ours_result, peer_result, peer):
        assert ours_result["customer"].to_pylist() == peer_result, f"{peer}: tokens differ"

    case.peers["python hmac"] = python_hmac
    case.check = check
    return [case]


_CASES = {"rfm": _rfm_cases, "clv": _clv_cases,
          "recommend": _recommend_cases, "scoring": _scoring_cases, "bandits": _bandits_cases,
          "monitor": _monitor_cases, "privacy": _privacy_cases}


def cases(capability: str, rows: int) -> list[Case]:
    """The bench cases of ``capability`` on ``rows`` generated transactions."""
    return _CASES[capability](rows)
