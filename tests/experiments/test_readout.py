"""readout()/sequential() from Arrow columns equal per-user scipy/statsmodels computations."""
import numpy as np
import pyarrow as pa
import pytest
from scipy import stats

import naive_experiments
from fastengage.errors import InputError
from fastengage.experiments import msprt, readout, sequential


def _users(seed=0, n=6000, lift=0.1, share=0.5):
    rng = np.random.default_rng(seed)
    arm = np.where(rng.random(n) < share, "treat", "ctrl")
    t = arm == "treat"
    pre = rng.gamma(2.0, 10.0, n)
    revenue = 0.8 * pre + rng.gamma(2.0, 5.0, n) * (1 + lift * t)
    orders = rng.poisson(2.0, n) + 1
    converted = rng.random(n) < 0.1 + 0.02 * t
    seg = rng.choice(["de", "fr", "uk"], n)
    return pa.table({"arm": arm, "revenue": revenue, "pre": pre, "orders": orders,
                     "converted": converted, "country": seg})


def test_every_method_equals_the_per_user_reference():
    table = _users()
    out = readout(table, variant="arm", control="ctrl", metrics=["revenue", "converted"],
                  covariates={"revenue": "pre"}, ratios={"revenue_per_order": ("revenue", "orders")},
                  segment="country")
    d = table.to_pydict()
    arm, seg = np.array(d["arm"]), np.array(d["country"])
    y, x = np.array(d["revenue"]), np.array(d["pre"])
    conv, orders = np.array(d["converted"], dtype=float), np.array(d["orders"], dtype=float)
    from statsmodels.stats.proportion import proportions_ztest

    for row in out.to_pylist():
        m = np.ones(len(arm), bool) if row["segment"] == "all" else seg == row["segment"]
        c, t = m & (arm == "ctrl"), m & (arm == "treat")
        assert (row["n_control"], row["n_treatment"]) == (c.sum(), t.sum())
        if row["metric"] == "revenue":
            assert row["method"] == "cuped_welch"
            yc, yt = naive_experiments.cuped_users(y[c], x[c], y[t], x[t])
            want = naive_experiments.welch_users(yc, yt)
        elif row["metric"] == "converted":
            assert row["method"] == "z_proportions"
            z, p = proportions_ztest([conv[t].sum(), conv[c].sum()], [t.sum(), c.sum()])
            want = {"diff": conv[t].mean() - conv[c].mean(), "p_value": p}
            se = np.sqrt(conv[t].mean() * (1 - conv[t].mean()) / t.sum()
                         + conv[c].mean() * (1 - conv[c].mean()) / c.sum())
            want |= {"ci_low": want["diff"] - 1.959963984540054 * se,
                     "ci_high": want["diff"] + 1.959963984540054 * se}
        else:
            rc, vc = naive_experiments.ratio_delta(y[c], orders[c])
            rt, vt = naive_experiments.ratio_delta(y[t], orders[t])
            zz = (rt - rc) / np.sqrt(vc + vt)
            want = {"diff": rt - rc, "p_value": 2 * stats.norm.sf(abs(zz))}
        for k, v in want.items():
            assert row[k] == pytest.approx(v, rel=1e-9, abs=1e-12), (row["segment"], row["metric"], k)
    # CUPED shrinks the interval against plain Welch on the same data
    plain = readout(table, variant="arm", control="ctrl", metrics=["revenue"]).to_pylist()[0]
    cuped = out.to_pylist()[0]
    assert cuped["ci_high"] - cuped["ci_low"] < 0.8 * (plain["ci_high"] - plain["ci_low"])


def test_srm_failure_blocks_a_winner_and_threads_agree():
    table = _users(1, n=20_000, lift=0.5, share=0.56)  # 56/44 split against the expected 50/50
    out = readout(table, variant="arm", control="ctrl", metrics=["revenue"], n_threads=1)
    row = out.to_pylist()[0]
    assert row["p_value"] < 1e-6 and row["srm_pvalue"] < 1e-3
    assert not row["srm_ok"] and row["decision"] == "srm_failed"
    ok = readout(table, variant="arm", control="ctrl", metrics=["revenue"],
                 srm_expected={"ctrl": 0.44, "treat": 0.56}).to_pylist()[0]
    assert ok["srm_ok"] and ok["decision"] == "treatment"
    assert readout(table, variant="arm", control="ctrl", metrics=["revenue"], n_threads=2).equals(out)


def test_correction_and_errors():
    table = _users(2)
    raw = readout(table, variant="arm", control="ctrl", metrics=["revenue", "converted", "orders"],
                  segment="country")
    holm = readout(table, variant="arm", control="ctrl", metrics=["revenue", "converted", "orders"],
                   segment="country", correction="holm")
    from statsmodels.stats.multitest import multipletests

    assert np.allclose(holm["p_adjusted"].to_numpy(),
                       multipletests(raw["p_value"].to_numpy(), method="holm")[1])
    with pytest.raises(InputError, match="control"):
        readout(table, variant="arm", control="nope", metrics=["revenue"])
    with pytest.raises(InputError, match="covariates"):
        readout(table, variant="arm", control="ctrl", metrics=["revenue"], covariates={"x": "pre"})
    bad = table.set_column(1, "revenue", pa.array([np.nan] + [1.0] * (table.num_rows - 1)))
    with pytest.raises(InputError, match="NaN"):
        readout(bad, variant="arm", control="ctrl", metrics=["revenue"])
    with pytest.raises(InputError, match="correction"):
        readout(table, variant="arm", control="ctrl", metrics=["revenue"], correction="magic")


def test_sequential_equals_cumulative_msprt():
    rng = np.random.default_rng(3)
    n = 8000
    day = rng.integers(0, 10, n)
    arm = rng.choice(["A", "B"], n)
    y = rng.normal(1.0 + 0.15 * (arm == "B"), 1.0)
    t = pa.table({"arm": arm, "y": y,
                  "t": pa.array((day * 86_400 + 3600) * 1_000_000, pa.timestamp("us"))})
    out = sequential(t, variant="arm", control="A", metric="y", time="t", tau=0.1)
    p_run = 1.0
    for d, row in enumerate(out.to_pylist()):
        a, b = y[(day <= d) & (arm == "A")], y[(day <= d) & (arm == "B")]
        _, p, _ = msprt(b.mean() - a.mean(), a.var(ddof=1) / a.size + b.var(ddof=1) / b.size, 0.1)
        p_run = min(p_run, float(p))
        assert row["p_value"] == pytest.approx(p_run, rel=1e-9)
        assert row["n_control"] == a.size
    assert out["decision"].to_pylist()[-1] == "reject"
    assert np.all(np.diff(out["ci_high"].to_numpy() - out["ci_low"].to_numpy()) <= 0)


def test_dictionary_keys_with_unused_and_repeated_entries_read_as_plain_strings():
    # Dictionary columns are coded from their indices; an entry no row uses must not become an
    # empty segment, and a repeated entry must not split a segment.
    table = _users(seed=3, n=3000)
    arm_plain, seg_plain = table.column("arm").combine_chunks(), table.column("country")
    seg_plain = seg_plain.combine_chunks()
    entries = pa.array(["uk", "es", "de", "fr", "de"])
    lookup = {"uk": 0, "de": 4, "fr": 3}
    seg_dict = pa.DictionaryArray.from_arrays(
        pa.array([lookup[s] for s in seg_plain.to_pylist()], pa.int8()), entries)
    arm_dict = arm_plain.dictionary_encode()
    plain = readout(table, variant="arm", control="ctrl", metrics=["revenue", "converted"],
                    segment="country")
    coded = readout(table.set_column(0, "arm", arm_dict)
                    .set_column(table.schema.get_field_index("country"), "country", seg_dict),
                    variant="arm", control="ctrl", metrics=["revenue", "converted"],
                    segment="country")
    assert coded.equals(plain)
    assert sorted(set(coded["segment"].to_pylist())) == ["all", "de", "fr", "uk"]
