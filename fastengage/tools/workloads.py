"""One workload per capability, shared by ``fastengage warmup``, ``fastengage bench``,
``bench/cold_start.py`` and the instruction-count gate.

Each capability has

* ``first_call(table)``: what a user's first call of that capability does (the figure the
  cold-start goal is about);
* ``variants()``: the type variants real inputs hit (int/string ids, sorted/unsorted rows,
  float32/float64 amounts, one-shot / streamed / incremental paths, serving calls). Running all
  of them once compiles every kernel specialisation the capability uses into the Numba cache;
  that is what ``fastengage warmup`` does.

Only public APIs of the capabilities are called here.
"""
from __future__ import annotations

import os
import tempfile
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .gendata import transactions

__all__ = ["CAPABILITIES", "DEFAULT_CAPABILITIES", "variants", "first_call", "retail_sample",
           "parse_capabilities"]

#: Every capability that has a workload, in warm-up order.
CAPABILITIES = ("rfm", "profile", "clv", "recommend", "scoring", "bandits", "monitor", "privacy",
                "experiments")
#: The ones ``fastengage warmup`` runs when no ``--capability`` is given: all of them.
DEFAULT_CAPABILITIES = CAPABILITIES

_TINY = 2_000
_CHURN_FEATURES = ["recency_days", "tenure_days", "frequency", "purchase_days",
                   "monetary_total", "monetary_mean"]


def parse_capabilities(text: str, known) -> list[str] | None:
    """The comma-separated ``--capability`` list of a command, or None after printing the
    one-line error of an unknown name (the command then exits with status 2)."""
    from .._io.output import say

    caps = [c.strip() for c in text.split(",") if c.strip()]
    unknown = [c for c in caps if c not in known]
    if unknown:
        say(f"fastengage: error: unknown capability {', '.join(unknown)}; "
            f"choose from {','.join(known)}")
        return None
    return caps


def retail_sample(rows: int = 50_000) -> pa.Table:
    """The first ``rows`` rows of the bundled Online Retail with a known customer, and
    ``amount`` (the data of the cold-start measurement)."""
    from ..datasets import load_online_retail

    t = load_online_retail()
    t = t.filter(pc.is_valid(t["CustomerID"]))
    return t.slice(0, rows)


# -- rfm ---------------------------------------------------------------------------------------
def _rfm_first(t: pa.Table) -> None:
    from .. import rfm

    rfm(t, customer="CustomerID", time="InvoiceDate", amount="amount", order="InvoiceNo")


def _rfm_variants() -> list[tuple[str, Callable[[], object]]]:
    from .. import RFMState, rfm

    cols = dict(customer="customer", time="time", amount="amount")

    def table(ids, sorted_, dtype="float64"):
        return transactions(_TINY, string_ids=ids, time_sorted=sorted_, amount_dtype=dtype)

    def streamed(sorted_):
        import pyarrow.parquet as pq

        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "t.parquet")
            pq.write_table(table(False, sorted_), path, row_group_size=500)
            rfm(path, order="order", batch_size=500, **cols)

    def state(ids):
        t = table(ids, False)
        s = RFMState(order="order", **cols).update(t.slice(0, 1000)).update(t.slice(1000))
        s.merge(RFMState(order="order", **cols).update(t.slice(0, 10)))
        s.to_table()
        with tempfile.TemporaryDirectory() as d:
            s.save(os.path.join(d, "s.fe"))
            RFMState.load(os.path.join(d, "s.fe")).to_table()

    return [
        ("int ids, sorted, float64, order", lambda: rfm(table(False, True), order="order", **cols)),
        ("int ids, unsorted, float32", lambda: rfm(table(False, False, "float32"), **cols)),
        ("string ids, unsorted", lambda: rfm(table(True, False), order="order", **cols)),
        ("long string ids", lambda: rfm(table("long", False), **cols)),
        ("dense int ids (0..n)", lambda: rfm(_dense_ids(table(False, True)), **cols)),
        ("streamed Parquet, sorted", lambda: streamed(True)),
        ("streamed Parquet, unsorted", lambda: streamed(False)),
        ("RFMState int ids", lambda: state(False)),
        ("RFMState string ids", lambda: state(True)),
    ]


def _dense_ids(t: pa.Table) -> pa.Table:
    codes = pc.index_in(t["customer"], pc.unique(t["customer"]))
    return t.set_column(0, "customer", pc.cast(codes, pa.int64()))


# -- clv ---------------------------------------------------------------------------------------
def _clv_first(t: pa.Table) -> None:
    from .. import clv

    s = clv.summary(t, customer="CustomerID", time="InvoiceDate", amount="amount", freq="D")
    clv.BetaGeo().fit(s)


def _clv_variants() -> list[tuple[str, Callable[[], object]]]:
    from .. import clv

    def summaries():
        out = []
        for ids, sorted_ in ((False, True), (True, False)):
            t = transactions(_TINY, string_ids=ids, time_sorted=sorted_)
            t = t.filter(pc.greater(t["amount"], 0))
            out.append(clv.summary(t, customer="customer", time="time", amount="amount",
                                   freq="D", freq_multiplier=7))
        clv.summary(t, customer="customer", time="time", amount="amount",
                    calibration_end="2011-10-01")
        return out[0]

    def models():
        s = summaries()
        x, tx, T, m = (s[c].to_numpy() for c in ("frequency", "recency", "T", "monetary_value"))
        out = []
        for model in (clv.BetaGeo(), clv.ModifiedBetaGeo(), clv.ParetoNBD()):
            model.fit(x, tx, T)
            model.probability_alive(x, tx, T)
            model.expected_purchases(10.0, x, tx, T)
            out.append(model)
        gg = clv.GammaGamma().fit(x, m)
        gg.customer_lifetime_value(out[0], x, tx, T, m, time=12, discount_rate=0.01, freq="W")
        return out

    def discrete():
        rng = np.random.default_rng(0)
        n = 200
        T = np.full(n, 6.0)
        x = rng.integers(0, 7, n).astype(np.float64)
        tx = np.where(x > 0, np.minimum(6, x + rng.integers(0, 2, n)), 0).astype(np.float64)
        clv.BetaGeoBetaBinom().fit(x, tx, T)
        clv.ShiftedBetaGeo().fit(np.array([1000, 869, 743, 653, 593, 551, 517, 491]))

    return [("summary (int sorted / string unsorted / holdout)", summaries),
            ("BG/NBD, MBG/NBD, Pareto/NBD, Gamma-Gamma", models),
            ("BG/BB, shifted-beta-geometric", discrete)]


# -- recommend ---------------------------------------------------------------------------------
def _recommend_first(t: pa.Table) -> None:
    from ..recommend import ALS

    t = t.filter(pc.greater(t["Quantity"], 0))
    model = ALS(factors=16, iterations=3, seed=0).fit(t, customer="CustomerID", item="StockCode")
    model.recommend(n=10)
    model.recommend_one(t["CustomerID"][0].as_py(), n=10)


def _recommend_variants() -> list[tuple[str, Callable[[], object]]]:
    from ..recommend import ALS, BPR, ItemKNN

    def run(cls, ids, **params):
        t = transactions(_TINY, string_ids=ids)
        model = cls(**params).fit(t, customer="customer", item="item")
        model.recommend(n=5)
        first = t["customer"][0].as_py()
        model.recommend([first], n=5, exclude_items=t["item"].slice(0, 3))
        model.recommend_one(first, n=5)
        model.recommend_new(t.slice(0, 20), customer="customer", item="item", n=5)
        model.similar_items(t["item"].slice(0, 2), n=5)
        with tempfile.TemporaryDirectory() as d:
            model.save(os.path.join(d, "m.fe"))
            type(model).load(os.path.join(d, "m.fe")).recommend_one(first, n=5)

    return [
        ("ALS int ids", lambda: run(ALS, False, factors=8, iterations=2, seed=0)),
        ("ALS string ids", lambda: run(ALS, True, factors=8, iterations=2, seed=0)),
        ("BPR", lambda: run(BPR, False, factors=8, iterations=2, seed=0)),
        ("ItemKNN cosine", lambda: run(ItemKNN, True)),
    ]


# -- scoring -----------------------------------------------------------------------------------
def _scoring_first(t: pa.Table) -> None:
    from .. import rfm
    from ..datasets import data_path
    from ..scoring import load_model

    features = rfm(t, customer="CustomerID", time="InvoiceDate", amount="amount",
                   order="InvoiceNo")
    model = load_model(data_path("churn_hgb.onnx"))
    model.score(features, id="CustomerID", features=_CHURN_FEATURES)


def _score_first(t: pa.Table) -> None:
    """Scoring alone: the churn model on a feature table of the sample's customers (features
    generated, so that no other capability's kernels run: the figure is scoring's own)."""
    from ..datasets import data_path
    from ..scoring import load_model

    ids = pc.unique(t["CustomerID"])
    X = np.random.default_rng(0).gamma(2.0, 30.0, (len(ids), len(_CHURN_FEATURES)))
    features = pa.table({"CustomerID": ids} | {c: X[:, j] for j, c in enumerate(_CHURN_FEATURES)})
    model = load_model(data_path("churn_hgb.onnx"))
    model.score(features, id="CustomerID")
    model.predict(X[:1])


def _scoring_variants() -> list[tuple[str, Callable[[], object]]]:
    from ..datasets import data_path
    from ..scoring import load_model
    from ..scoring.linear import LinearModel

    rng = np.random.default_rng(0)
    X = rng.random((500, len(_CHURN_FEATURES)))
    table = pa.table({name: X[:, j] for j, name in enumerate(_CHURN_FEATURES)}
                     | {"id": np.arange(500)})
    table32 = pa.table({name: X[:, j].astype(np.float32) for j, name in enumerate(_CHURN_FEATURES)})

    def trees():
        model = load_model(data_path("churn_hgb.onnx"))
        model.score(table, id="id")
        model.score(table32)
        model.predict(X[:1])  # the serving path: one row
        model.predict(X[:50])

    def linear():
        model = LinearModel(rng.random((1, 6)), 0.1, features=_CHURN_FEATURES, link="logistic",
                            classes=[0, 1])
        model.score(table, id="id")
        model.score(table32)
        model.predict(X[:1])

    return [("ONNX trees (churn_hgb.onnx)", trees), ("linear/logistic", linear)]


# -- profile -----------------------------------------------------------------------------------
def _profile_first(t: pa.Table) -> None:
    from .. import profile

    profile(t, customer="CustomerID", time="InvoiceDate", amount="amount", order="InvoiceNo",
            item="StockCode")


def _profile_variants() -> list[tuple[str, Callable[[], object]]]:
    from .. import profile

    cols = dict(customer="customer", time="time", amount="amount")

    def table(ids, sorted_):
        return transactions(_TINY, string_ids=ids, time_sorted=sorted_)

    channel = pa.array(np.array(["web", "store", "app"])[np.arange(_TINY) % 3])
    return [
        ("int ids, sorted, order, item", lambda: profile(table(False, True), order="order",
                                                         item="item", **cols)),
        ("string ids, unsorted", lambda: profile(table(True, False), **cols)),
        ("dense int ids, channel", lambda: profile(
            _dense_ids(table(False, True)).append_column("channel", channel), channel="channel",
            **cols)),
    ]


# -- the capabilities owned by other modules: small, best-effort ---------------------------------
def _bandits_variants():
    from ..bandits import BetaTS, LinUCB

    rng = np.random.default_rng(0)
    logs = pa.table({"x0": rng.random(300), "x1": rng.random(300),
                     "arm": rng.integers(0, 3, 300), "reward": rng.integers(0, 2, 300)})

    def linucb():
        p = LinUCB([0, 1, 2], features=["x0", "x1"]).update(logs, arm="arm", reward="reward")
        p.decide(logs, seed=1)
        p.decide_one(np.array([0.5, 0.5]))

    def beta():
        p = BetaTS([0, 1, 2]).update(logs, arm="arm", reward="reward")
        p.decide(logs, seed=1)

    return [("LinUCB", linucb), ("Beta TS", beta),
            ("off-policy evaluation", lambda: _ope_first(None))]


def _bandits_first(t: pa.Table) -> None:
    for _, fn in _bandits_variants()[:1]:
        fn()


def _ope_logs(n: int = 2_000):
    rng = np.random.default_rng(0)
    logs = pa.table({"action": rng.integers(0, 3, n), "reward": rng.integers(0, 2, n),
                     "propensity": np.full(n, 1 / 3), "x0": rng.random(n)})
    return logs, rng.dirichlet(np.ones(3), n)


def _ope_first(t: pa.Table) -> None:
    """Off-policy evaluation of a target policy's action probabilities on logged rounds."""
    from ..bandits import evaluate

    logs, target = _ope_logs()
    evaluate(logs, action="action", reward="reward", propensity="propensity", target=target,
             estimators=["ipw", "snipw", "dr"], n_bootstrap=100, seed=0)


def _monitor_variants():
    from ..monitor import Profile, drift, quality

    rng = np.random.default_rng(0)
    ref = pa.table({"a": rng.normal(size=2000), "c": pa.array(rng.integers(0, 5, 2000).astype(str))})
    cur = pa.table({"a": rng.normal(0.1, size=2000), "c": pa.array(rng.integers(0, 5, 2000).astype(str))})
    scored = pa.table({"score": rng.random(2000), "label": rng.integers(0, 2, 2000)})
    return [("drift", lambda: drift(ref, cur, categorical=["c"])),
            ("profile sketch", lambda: Profile.from_data(ref, mode="sketch")),
            ("quality", lambda: quality(scored, score="score", label="label"))]


def _monitor_first(t: pa.Table) -> None:
    _monitor_variants()[0][1]()


def _privacy_variants():
    from ..privacy import pseudonymize

    t = transactions(_TINY, string_ids=True)
    return [("pseudonymize string ids", lambda: pseudonymize(t, ["customer"], key=b"k" * 32)),
            ("pseudonymize int ids", lambda: pseudonymize(transactions(_TINY), ["customer"],
                                                          key=b"k" * 32))]


def _privacy_first(t: pa.Table) -> None:
    from ..privacy import pseudonymize

    pseudonymize(t, ["CustomerID"], key=b"k" * 32)


def _experiments_variants():
    from ..experiments import readout

    rng = np.random.default_rng(0)
    t = pa.table({"variant": pa.array(np.where(rng.random(2000) < 0.5, "A", "B")),
                  "converted": rng.integers(0, 2, 2000).astype(np.float64),
                  "revenue": rng.gamma(2.0, 10.0, 2000)})
    return [("readout", lambda: readout(t, variant="variant", control="A",
                                        metrics=["converted", "revenue"]))]


def _experiments_first(t: pa.Table) -> None:
    _experiments_variants()[0][1]()


_FIRST = {"rfm": _rfm_first, "profile": _profile_first, "clv": _clv_first,
          "recommend": _recommend_first, "scoring": _scoring_first, "score": _score_first,
          "bandits": _bandits_first, "ope": _ope_first, "monitor": _monitor_first,
          "privacy": _privacy_first, "experiments": _experiments_first}
_VARIANTS = {"rfm": _rfm_variants, "profile": _profile_variants, "clv": _clv_variants,
             "recommend": _recommend_variants, "scoring": _scoring_variants,
             "bandits": _bandits_variants,
             "monitor": _monitor_variants, "privacy": _privacy_variants,
             "experiments": _experiments_variants}


def first_call(capability: str, table: pa.Table | None = None) -> None:
    """Run a user's first call of ``capability`` on ``table`` (default: 50k Online Retail rows).
    Besides the capabilities, ``"score"`` is scoring alone (``"scoring"`` scores rfm features,
    so its first call includes rfm's) and ``"ope"`` is the bandits' off-policy evaluation."""
    _FIRST[capability](retail_sample() if table is None else table)


def variants(capability: str) -> list[tuple[str, Callable[[], object]]]:
    """``(label, callable)`` for every type variant of ``capability`` (see module docstring)."""
    if capability not in _VARIANTS:
        raise ValueError(f"unknown capability {capability!r}; choose from {', '.join(CAPABILITIES)}")
    return _VARIANTS[capability]()
