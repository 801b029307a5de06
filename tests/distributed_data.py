"""Data and comparisons shared by the Spark/Dask/Ray adapter tests (tests/distributed) and
bench/bench_distributed.py."""
import json
import os

import numpy as np
import pyarrow as pa
import pyarrow.compute  # noqa: F401  (pa.compute)

CHURN_MODEL = os.path.join(os.path.dirname(__file__), os.pardir, "fastengage", "data",
                           "churn_hgb.onnx")

DAY_US = 86_400_000_000


def transactions(n: int = 20_000, customers: int = 400, heavy_rows: int = 3_000, seed: int = 0,
                 string_ids: bool = False) -> pa.Table:
    """A log with returns, repeated orders, one heavy customer (``heavy_rows`` rows, so it
    spans many Arrow batches) and ties in every metric."""
    rng = np.random.default_rng(seed)
    cust = np.concatenate([rng.integers(1, customers, n), np.zeros(heavy_rows, np.int64)])
    rng.shuffle(cust)
    rows = len(cust)
    ts = (rng.integers(0, 500, rows) * DAY_US + rng.integers(0, DAY_US, rows)).astype("datetime64[us]")
    amount = np.round(rng.gamma(2.0, 15.0, rows), 2)
    amount[rng.random(rows) < 0.05] *= -1  # returns
    order = rng.integers(0, rows // 3, rows)
    ids = pa.array([f"c{c:05d}" for c in cust]) if string_ids else pa.array(cust)
    return pa.table({"customer": ids, "ts": pa.array(ts).cast(pa.timestamp("us", tz="UTC")),
                     "amount": amount, "invoice": order})


def with_profile_columns(tab: pa.Table, seed: int = 0) -> pa.Table:
    """``tab`` plus ``item`` (int), ``category`` and ``channel`` (strings) for profile(); the
    channel "kiosk" is used by one customer only, so most buckets never see it."""
    rng = np.random.default_rng(seed)
    n = tab.num_rows
    item = rng.integers(0, 40, n)
    channel = np.array(["web", "app", "store"], dtype=object)[rng.integers(0, 3, n)]
    ids = tab.column("customer")
    channel[np.flatnonzero(pa.compute.equal(ids, ids[n // 2]).to_numpy(zero_copy_only=False))[:3]] = "kiosk"
    return (tab.append_column("item", pa.array(item))
            .append_column("category", pa.array([f"cat{i % 7}" for i in item]))
            .append_column("channel", pa.array(channel.tolist(), pa.string())))


ARMS = ["email", "push", "sms", "none"]


def bandit_rows(n: int = 3_000, seed: int = 0) -> pa.Table:
    """Logged decisions for the bandit adapters: customer, features x0..x2, the arm played, its
    reward, and ``allowed`` (each row's eligible arms; some rows none)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    arm = rng.integers(0, len(ARMS), n)
    reward = (X @ np.array([0.6, -0.3, 0.2]) * (arm + 1) + rng.normal(size=n) > 0).astype(float)
    allowed = [[a for a in ARMS if rng.random() < 0.7] for _ in range(n)]
    return pa.table({"customer": np.arange(n), "x0": X[:, 0], "x1": X[:, 1], "x2": X[:, 2],
                     "arm": pa.array(np.asarray(ARMS)[arm]), "reward": reward,
                     "allowed": pa.array(allowed, pa.list_(pa.string()))})


def check_decide_and_monitor_equal_local(engine, data, collected, to_arrow) -> None:
    """An engine's ``decide`` (a Thompson-sampling and an epsilon-greedy policy, random per
    row) and ``monitor_profile`` of ``data`` (bandit_rows(3_000, seed=2) in the engine) equal
    the local calls on ``collected`` (the same rows in the engine's order)."""
    from fastengage.bandits import EpsilonGreedy, LinTS
    from fastengage.monitor import Profile

    logs = bandit_rows(2_000, seed=1)
    for policy in (LinTS(ARMS, features=["x0", "x1", "x2"]), EpsilonGreedy(ARMS)):
        policy.update(logs, arm="arm", reward="reward")
        kw = dict(id="customer", eligible="allowed", seed=5, expected=True)
        got = to_arrow(engine.decide(data, policy, **kw))
        assert_same_decisions(got, policy.decide(collected, **kw))
    got = engine.monitor_profile(data, categorical=["customer"], mode="exact")
    assert_same_profile(got, Profile.from_data(collected, categorical=["customer"],
                                               mode="exact"))


def assert_same_decisions(got: pa.Table, want: pa.Table) -> None:
    """Decision tables equal bit for bit (``expected_reward`` is NaN for arms not eligible)."""
    assert got.column_names == want.column_names and got.num_rows == want.num_rows
    for name in want.column_names:
        a, b = got.column(name).combine_chunks(), want.column(name).combine_chunks()
        if name == "expected_reward":  # fixed-size lists: equal types and flattened values
            assert a.type == b.type
            assert np.array_equal(a.flatten().to_numpy(), b.flatten().to_numpy(), equal_nan=True)
        else:
            assert a.cast(b.type).equals(b), name


def assert_same_profile(got, want) -> None:
    """Two drift profiles (fastengage.monitor.Profile) of the same rows: same columns, kinds,
    counts, extremes, categories and (exact mode) values; moments to 1e-12 relative."""
    assert got.kinds == want.kinds
    a, b = got.summary(), want.summary()
    for name in b.column_names:
        if name in ("mean", "std"):
            np.testing.assert_allclose(a.column(name).to_numpy(zero_copy_only=False),
                                       b.column(name).to_numpy(zero_copy_only=False),
                                       rtol=1e-12, err_msg=name)
        else:
            assert a.column(name).equals(b.column(name)), name
    for column in want.columns:
        mine, theirs = got.state(column), want.state(column)
        for attr in ("values", "counts"):
            if getattr(theirs, attr, None) is not None:
                assert np.array_equal(np.asarray(getattr(mine, attr)),
                                      np.asarray(getattr(theirs, attr))), (column, attr)


def assert_same_rows(got: pa.Table, want: pa.Table, keys, rounding=(), report=None) -> None:
    """Equal as sets of rows (engines return rows unordered): same columns, values and bits;
    columns in ``rounding`` are float sums in row order, which a shuffle changes: equal to
    1e-12 relative. When ``want`` carries a fastengage report (schema metadata), ``got`` must
    carry the same one, as its metadata or as ``report`` (the engine's ``report(result)``)."""
    expected = (want.schema.metadata or {}).get(b"fastengage")
    if expected is not None:
        carried = report if report is not None else (got.schema.metadata or {}).get(b"fastengage")
        assert carried is not None, "the fastengage report is missing"
        if isinstance(carried, bytes):
            carried = json.loads(carried)
        assert json.dumps(carried) == expected.decode()  # same counts, same key order
        got, want = got.replace_schema_metadata(None), want.replace_schema_metadata(None)
    assert got.column_names == want.column_names
    assert got.num_rows == want.num_rows
    got = got.sort_by([(k, "ascending") for k in keys])
    want = want.sort_by([(k, "ascending") for k in keys])
    for name in want.column_names:
        a, b = got.column(name).combine_chunks(), want.column(name).combine_chunks()
        if pa.types.is_dictionary(b.type):
            b = b.dictionary_decode()
        assert a.type == b.type or a.type in (pa.large_string(), pa.string()), (name, a.type, b.type)
        if name in rounding:
            np.testing.assert_allclose(a.to_numpy(), b.to_numpy(), rtol=1e-12, err_msg=name)
        else:
            assert a.cast(b.type).equals(b), name


def check_clv_equals_local(engine, summ, tab, kw, to_arrow) -> None:
    """An engine's ``clv_summary`` (``summ``, already computed from ``tab`` with ``kw``), then
    ``clv_fit`` and ``clv_predict``, equal the single-machine summary, BG/NBD fit and
    predictions (fit to 1e-9 relative: the engine aggregates the same pattern counts)."""
    import pytest

    import fastengage as fe
    from fastengage.clv import BetaGeo

    want = fe.clv.summary(tab, **kw).replace_schema_metadata(None)
    assert_same_rows(to_arrow(summ), want, [kw["customer"]], rounding=["monetary_value"])
    local = BetaGeo().fit(want)
    dist = engine.clv_fit(BetaGeo(), summ)
    for k, v in local.params_.items():
        assert dist.params_[k] == pytest.approx(v, rel=1e-9, abs=0), k
    got = engine.clv_predict(local, summ, 30.0, customer=kw["customer"])
    assert_same_rows(to_arrow(got), local.predict(want, 30.0, customer=kw["customer"]),
                     [kw["customer"]])


def with_null_ids(tab: pa.Table, every: int = 50) -> pa.Table:
    """``tab`` (string customer ids in column 0) with every ``every``-th customer id null."""
    ids = tab.column("customer").to_pylist()
    ids[::every] = [None] * len(ids[::every])
    return tab.set_column(0, "customer", pa.array(ids, pa.string()))
