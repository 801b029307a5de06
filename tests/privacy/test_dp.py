"""dp_report: bounded aggregates against the reference, OpenDP's privacy maps exactly, the noise
statistically (OpenDP has no seeded RNG), budgets, keys and argument checks."""
import math

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import naive_privacy
from fastengage.errors import InputError
from fastengage.privacy import Budget, dp_report
from fastengage.privacy import dp as dp_module
from fastengage.privacy.dp import _bounded_aggregates

dp = pytest.importorskip("opendp.prelude")
dp.enable_features("contrib")


def test_opendp_accuracy_maps_match_published_values():
    # the number quoted in OpenDP's documentation and issue #14
    assert dp.laplacian_scale_to_accuracy(1.0, 0.05) == pytest.approx(2.995732, abs=1e-6)
    # discrete Laplace, P(X = k) = (1 - q) / (1 + q) q^|k|, q = e^{-1/s}: OpenDP defines the
    # accuracy a by P(|X| >= a) = 2 q^a / (1 + q) = alpha
    s, a = 20.0, dp.discrete_laplacian_scale_to_accuracy(20.0, 0.05)
    assert 2 * math.exp(-a / s) / (1 + math.exp(-1 / s)) == pytest.approx(0.05, rel=1e-9)


def _aggregates(table, **kw):
    segments, counts, sums, rows, dropped = _bounded_aggregates(table, **kw)
    keys = segments.key_columns()[kw["by"][0]].to_pylist()
    return {k: (int(c), int(s)) for k, c, s in zip(keys, counts, sums)}, dropped


@settings(max_examples=80, deadline=None)
@given(rows=st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(0, 6),
                               st.floats(-50, 300, allow_nan=False)), max_size=80),
       max_rows=st.one_of(st.none(), st.integers(1, 4)),
       resolution=st.sampled_from([0.01, 0.5, 1.0]), one_pass=st.booleans())
def test_bounded_aggregates_match_reference(rows, max_rows, resolution, one_pass):
    """Both paths: rows coded then aggregated, and (``one_pass``: the size threshold lowered
    to 0) the one-pass small-dictionary kernel (counts without per-row codes)."""
    segs, custs, amounts = (list(x) for x in zip(*rows)) if rows else ([], [], [])
    table = pa.table({"seg": pa.array(segs, pa.string()), "cust": pa.array(custs, pa.int64()),
                      "amount": pa.array(amounts, pa.float64())})
    with pytest.MonkeyPatch.context() as patch:
        if one_pass:
            patch.setattr(dp_module, "PRIVACY_SMALL_DICTIONARY_MIN_ROWS", 0)
        got, dropped = _aggregates(table, by=["seg"],
                                   customer=None if max_rows is None else "cust",
                                   amount="amount", bounds=(0.0, 100.0), max_rows=max_rows,
                                   keys=None, resolution=resolution, batch_size=None)
    want = naive_privacy.bounded_aggregates(segs, custs, amounts, max_rows, 0.0, 100.0,
                                            resolution)
    assert got == want
    assert dropped == len(rows) - sum(c for c, _ in want.values())


def test_streamed_string_customers_and_two_segment_columns(tmp_path):
    rng = np.random.default_rng(1)
    n = 30_000
    table = pa.table({"country": rng.choice(["de", "fr", "it"], n),
                      "channel": rng.integers(0, 3, n),
                      "cust": [f"c{v}" for v in rng.integers(0, 2000, n)],
                      "amount": rng.gamma(2.0, 30.0, n)})
    path = tmp_path / "t.parquet"
    pq.write_table(table, path, row_group_size=4000)
    kw = dict(by=["country", "channel"], customer="cust", amount="amount", bounds=(0, 100),
              max_rows=5, keys=None, resolution=0.01)
    segments, counts, sums, _, _ = _bounded_aggregates(str(path), batch_size=3000, **kw)
    keys = segments.key_columns()
    got = {(a, b): (c, s) for a, b, c, s in zip(keys["country"].to_pylist(),
                                                keys["channel"].to_pylist(), counts, sums)}
    want = naive_privacy.bounded_aggregates(
        list(zip(table["country"].to_pylist(), table["channel"].to_pylist())),
        table["cust"].to_pylist(), table["amount"].to_pylist(), 5, 0, 100, 0.01)
    assert got == want


def _small_table(n=6000, seed=0, n_segments=4):
    rng = np.random.default_rng(seed)
    names = ["x", "y", "z", "w"] if n_segments == 4 else [f"s{i:02d}" for i in range(n_segments)]
    return pa.table({"seg": rng.choice(names, n), "cust": rng.integers(0, 1500, n),
                     "amount": rng.uniform(0, 120, n)})


def test_accounting_uses_opendp_maps_and_splits_epsilon():
    report = dp_report(_small_table(), by=["seg"], customer="cust", amount="amount",
                       epsilon=0.8, bounds=(0, 100), max_rows_per_customer=3)
    parts = report.budget["parts"]
    assert report.budget["epsilon"] == pytest.approx(0.8, rel=1e-12)
    assert parts["count"]["epsilon"] <= 0.4 and parts["count"]["epsilon"] == pytest.approx(0.4)
    assert parts["count"]["l1_sensitivity"] == 3 and parts["sum"]["l1_sensitivity"] == 300
    # the measurement built with the reported scale has exactly the reported privacy map
    meas = dp.m.make_laplace(dp.vector_domain(dp.atom_domain(T="i64"), size=4),
                             dp.l1_distance(T="i64"), scale=parts["count"]["scale"])
    assert meas.map(3) == parts["count"]["epsilon"]
    assert parts["count"]["accuracy"] == dp.discrete_laplacian_scale_to_accuracy(
        parts["count"]["scale"], 0.05)
    assert report.table.column_names == ["seg", "count", "count_accuracy", "sum",
                                         "sum_accuracy", "mean", "mean_low", "mean_high"]
    assert report.table["seg"].to_pylist() == ["w", "x", "y", "z"]
    only_count = dp_report(_small_table(), by=["seg"], epsilon=0.5, metrics=["count"])
    assert only_count.budget["parts"]["count"]["epsilon"] == pytest.approx(0.5)
    assert only_count.budget["parts"]["count"]["l1_sensitivity"] == 1
    assert only_count.table.column_names == ["seg", "count", "count_accuracy"]


def test_noise_is_unbiased_with_the_stated_scale_and_coverage():
    table = _small_table(4000, seed=2, n_segments=20)
    exact_segments, counts, sums, _, _ = _bounded_aggregates(
        table, by=["seg"], customer="cust", amount="amount", bounds=(0, 100), max_rows=2,
        keys=None, resolution=1.0, batch_size=None)
    order = np.argsort(exact_segments.key_columns()["seg"].to_numpy(zero_copy_only=False))
    counts, sums = counts[order], sums[order]
    count_err, sum_err, mean_cover = [], [], []
    draws = 300
    for _ in range(draws):
        report = dp_report(table, by=["seg"], customer="cust", amount="amount", epsilon=1.0,
                           bounds=(0, 100), max_rows_per_customer=2, resolution=1.0)
        t = report.table
        count_err.append(t["count"].to_numpy() - counts)
        sum_err.append(t["sum"].to_numpy() - sums)
        true_mean = sums / counts
        mean_cover.append((t["mean_low"].to_numpy() <= true_mean)
                          & (true_mean <= t["mean_high"].to_numpy()))
    parts = report.budget["parts"]
    for err, part in ((np.ravel(count_err), parts["count"]), (np.ravel(sum_err), parts["sum"])):
        scale = part["scale"]
        # discrete Laplace variance 2 e^{-1/s} / (1 - e^{-1/s})^2 (~2 s^2)
        q = math.exp(-1 / scale)
        sd = math.sqrt(2 * q) / (1 - q)
        assert abs(err.mean()) < 5 * sd / math.sqrt(err.size)
        # 5 standard errors everywhere (a false alarm ~1e-6 per check); the relative standard
        # error of a sample sd is ~ sqrt((kurtosis - 1) / n) / 2, kurtosis 6 for Laplace
        assert err.std() == pytest.approx(sd, rel=5 * 0.5 * math.sqrt(5 / err.size))
        coverage = np.mean(np.abs(err) <= part["accuracy"])
        assert abs(coverage - 0.95) < 5 * math.sqrt(0.95 * 0.05 / err.size)
    assert np.mean(mean_cover) >= 0.95


def test_budget_is_spent_and_refused():
    budget = Budget(epsilon=1.0)
    table = _small_table(500)
    dp_report(table, by=["seg"], epsilon=0.6, metrics=["count"], budget=budget)
    assert budget.spent == pytest.approx(0.6)
    with pytest.raises(InputError, match="budget exceeded"):
        dp_report(table, by=["seg"], epsilon=0.6, metrics=["count"], budget=budget)
    with pytest.raises(InputError):  # a failing report spends nothing
        dp_report(table, by=["nope"], epsilon=0.1, metrics=["count"], budget=budget)
    assert budget.spent == pytest.approx(0.6) and len(budget.log) == 1


def test_public_keys_report_absent_segments_and_drop_others():
    table = pa.table({"seg": ["a", "a", "b", "zzz"], "cust": [1, 1, 2, 1],
                      "amount": [10.0, 20.0, 30.0, 40.0]})
    keys = {"seg": ["b", "a", "never"]}
    segments, counts, sums, _, dropped = _bounded_aggregates(
        table, by=["seg"], customer="cust", amount="amount", bounds=(0, 100), max_rows=2,
        keys=keys, resolution=1.0, batch_size=None)
    assert segments.key_columns()["seg"].to_pylist() == ["b", "a", "never"]
    assert counts.tolist() == [1, 2, 0] and sums.tolist() == [30, 30, 0]
    assert dropped == 1  # customer 1's third row (segment zzz) is over the cap
    report = dp_report(table, by=["seg"], customer="cust", amount="amount", epsilon=1.0,
                       bounds=(0, 100), max_rows_per_customer=2, keys=keys)
    assert report.table["seg"].to_pylist() == ["b", "a", "never"]
    assert report.budget["keys_protected"] is True


def test_bad_arguments():
    table = _small_table(100)
    with pytest.raises(InputError, match="max_rows_per_customer"):
        dp_report(table, by=["seg"], customer="cust", epsilon=1, metrics=["count"])
    with pytest.raises(InputError, match="bounds"):
        dp_report(table, by=["seg"], amount="amount", epsilon=1)
    with pytest.raises(InputError, match="amount="):
        dp_report(table, by=["seg"], epsilon=1, metrics=["sum"], bounds=(0, 1))
    with pytest.raises(InputError, match="epsilon"):
        dp_report(table, by=["seg"], epsilon=0, metrics=["count"])
    with pytest.raises(InputError, match="metrics"):
        dp_report(table, by=["seg"], epsilon=1, metrics=["median"])
    with pytest.raises(InputError, match="collapse"):
        dp_report(table, by=["seg"], amount="amount", epsilon=1, bounds=(0, 0.001))
    with pytest.raises(InputError, match="null"):
        dp_report(pa.table({"seg": ["a", None]}), by=["seg"], epsilon=1, metrics=["count"])


@pytest.mark.parametrize("n_distinct", [25, 5000])  # small-dictionary kernel / Arrow fallback
def test_large_string_segment_columns_match_reference(n_distinct):
    rng = np.random.default_rng(n_distinct)
    names = np.array(["", "é-ß"] + [f"seg-{i}" for i in range(n_distinct - 2)])
    n = 120_000
    segs = names[rng.integers(0, n_distinct, n)].tolist()
    custs = rng.integers(0, 9000, n).tolist()
    amounts = rng.uniform(-10, 150, n).tolist()
    table = pa.table({"seg": segs, "cust": custs, "amount": amounts})
    got, _ = _aggregates(table, by=["seg"], customer="cust", amount="amount", bounds=(0, 100),
                         max_rows=3, keys=None, resolution=0.01, batch_size=None)
    assert got == naive_privacy.bounded_aggregates(segs, custs, amounts, 3, 0, 100, 0.01)
    keys = {"seg": names[:7].tolist()[::-1]}
    segments, counts, _, _, _ = _bounded_aggregates(
        table.set_column(0, "seg", table["seg"].cast(pa.large_string())), by=["seg"],
        customer=None, amount=None, bounds=None, max_rows=None, keys=keys, resolution=0.01,
        batch_size=None)
    assert counts.tolist() == [segs.count(k) for k in keys["seg"]]


def test_table_in_batches_gives_the_same_aggregates():
    table = _small_table(5000, seed=9)
    kw = dict(by=["seg"], customer="cust", amount="amount", bounds=(0, 100), max_rows=2,
              keys={"seg": ["x", "y", "z", "w"]}, resolution=0.01)
    _, counts, sums, _, _ = _bounded_aggregates(table, batch_size=None, **kw)
    _, counts2, sums2, _, _ = _bounded_aggregates(table, batch_size=700, **kw)
    assert counts.tolist() == counts2.tolist() and sums.tolist() == sums2.tolist()


def test_one_and_two_threads_give_identical_aggregates():
    rng = np.random.default_rng(21)
    n = 150_000
    table = pa.table({"seg": rng.choice([f"s{i}" for i in range(30)], n),
                      "cust": rng.integers(0, 20_000, n) * 7, "amount": rng.uniform(-5, 90, n)})
    results = []
    for threads in (1, 2):
        for customer, cap in (("cust", 3), (None, None)):
            segments, counts, sums, _, dropped = _bounded_aggregates(
                table, ["seg"], customer, "amount", (0, 80), cap, None, 0.01, None,
                n_threads=threads)
            results.append((segments.key_columns()["seg"].to_pylist(), counts.tolist(),
                            sums.tolist(), dropped))
    assert results[0] == results[2] and results[1] == results[3]
    keys, counts, sums, dropped = results[0]
    want = naive_privacy.bounded_aggregates(table["seg"].to_pylist(), table["cust"].to_pylist(),
                                            table["amount"].to_pylist(), 3, 0, 80, 0.01)
    assert {k: (c, s) for k, c, s in zip(keys, counts, sums)} == want


def test_small_dictionary_tells_apart_long_names_with_equal_ends():
    """Names longer than 16 bytes with the same length, first 8 and last 8 bytes (the kernel's
    hash and quick comparison) are still told apart byte by byte."""
    rng = np.random.default_rng(3)
    names = np.array([f"segment-{m}-segment" for m in ("aaaa", "aaab", "baaa", "zzzz")]
                     + ["short", "segment-aaaa-segmenx"])
    n = 120_000
    segs = names[rng.integers(0, len(names), n)].tolist()
    table = pa.table({"seg": segs})
    segments, counts, _, _, _ = _bounded_aggregates(
        table, by=["seg"], customer=None, amount=None, bounds=None, max_rows=None, keys=None,
        resolution=0.01, batch_size=None)
    found = dict(zip(segments.key_columns()["seg"].to_pylist(), counts.tolist()))
    assert found == {name: segs.count(name) for name in names.tolist()}


def test_two_segment_columns_of_many_rows_match_reference():
    """Several by columns take the small-dictionary codes + remap path (the one-pass kernel
    covers one column): each column coded, the pairs packed, then aggregated."""
    rng = np.random.default_rng(4)
    n = 80_000
    country = rng.choice(["de", "fr", "it", "a-much-longer-country-name"], n).tolist()
    channel = rng.choice(["web", "app", ""], n).tolist()
    custs = rng.integers(0, 5000, n).tolist()
    amounts = rng.uniform(-10, 150, n).tolist()
    table = pa.table({"country": country, "channel": channel, "cust": custs, "amount": amounts})
    segments, counts, sums, _, _ = _bounded_aggregates(
        table, by=["country", "channel"], customer="cust", amount="amount", bounds=(0, 100),
        max_rows=4, keys=None, resolution=0.01, batch_size=None)
    keys = segments.key_columns()
    got = {(a, b): (int(c), int(t)) for a, b, c, t in
           zip(keys["country"].to_pylist(), keys["channel"].to_pylist(), counts, sums)}
    assert got == naive_privacy.bounded_aggregates(list(zip(country, channel)), custs, amounts,
                                                   4, 0, 100, 0.01)
