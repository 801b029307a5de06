"""fastengage.tools: compile profiler, warmup and bench commands, baseline comparisons."""
from __future__ import annotations

import copy
import json

import numba
import numpy as np
import pytest

from fastengage import cli
from fastengage.tools import benchrun, gate, warmup
from fastengage.tools.coldstart import CompileProfiler, summarize
from fastengage.tools.gendata import transactions


def test_compile_profiler_counts_nested_compiles_once():
    @numba.njit
    def inner(x):
        return x * 2

    @numba.njit
    def outer(x):
        return inner(x) + 1

    with CompileProfiler() as prof:
        outer(1)
        outer(1.5)
        outer(2)  # same specialisation: no compile
    kernels = summarize(prof.records)
    by_name = {k["kernel"].rsplit(".", 1)[-1]: k for k in kernels}
    assert by_name["outer"]["specialisations"] == 2 and by_name["inner"]["specialisations"] == 2
    assert by_name["outer"]["signatures"] == ["int64", "float64"]
    for r in prof.records:  # exclusive <= inclusive; nested time is not counted twice
        assert 0 <= r["exclusive_s"] <= r["inclusive_s"]
    outer_rec = [r for r in prof.records if r["kernel"].endswith("outer")]
    inner_rec = [r for r in prof.records if r["kernel"].endswith("inner")]
    assert sum(r["inclusive_s"] for r in outer_rec) >= sum(r["exclusive_s"] for r in
                                                             outer_rec + inner_rec) - 1e-9


def test_generated_data_variants():
    a = transactions(500, string_ids=True, time_sorted=False, amount_dtype="float32")
    assert str(a.schema.field("customer").type) == "string"
    assert str(a.schema.field("amount").type) == "float"
    assert max(len(s) for s in a["customer"].to_pylist()) <= 15
    long_ids = transactions(500, string_ids="long")
    assert min(len(s) for s in long_ids["customer"].to_pylist()) > 15
    sorted_t = transactions(500)["time"].to_numpy()
    assert np.all(np.diff(sorted_t.astype(np.int64)) >= 0)
    assert transactions(500, seed=3).equals(transactions(500, seed=3))


def test_warmup_reports_failing_variants(monkeypatch, capsys):
    def fake_variants(cap):
        def boom():
            raise ValueError("broken kernel")
        return [("fine", lambda: None), ("broken", boom)]

    monkeypatch.setattr(warmup, "variants", fake_variants)
    results = warmup.warmup(["rfm"])
    assert [r["error"] for r in results] == [None, "ValueError: broken kernel"]
    assert cli.main(["warmup", "--capability", "rfm", "-q"]) == 1
    assert "FAILED: ValueError: broken kernel" in capsys.readouterr().err
    monkeypatch.setattr(warmup, "variants", lambda cap: [("fine", lambda: None)])
    assert cli.main(["warmup", "--capability", "rfm,clv"]) == 0
    assert cli.main(["warmup", "--capability", "rfm,nope"]) == 2


def _doc(median, ref=0.1, ratio=3.0, name="rfm@100 rows"):
    return {"benchmarks": [{"name": name, "stats": {"median": median},
                            "extra_info": {"reference_s": ref, "normalized": median / ref,
                                           "ratios": {"polars": ratio}}}]}


def test_bench_compare_logic():
    base = _doc(1.0)
    assert benchrun.compare_results(_doc(1.2), base, 0.3) == ([], [])
    assert benchrun.compare_results(_doc(2.0, ref=0.2, ratio=2.5), base, 0.3) == ([], [])
    regressions, _ = benchrun.compare_results(_doc(1.5), base, 0.3)
    assert len(regressions) == 1 and "normalized time" in regressions[0]
    regressions, _ = benchrun.compare_results(_doc(1.0, ratio=1.5), base, 0.3)
    assert len(regressions) == 1 and "speed-up vs polars" in regressions[0]
    assert benchrun.compare_results(_doc(1.0, name="other"), base, 0.3) == ([], ["rfm@100 rows"])


def test_bench_command_end_to_end(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert cli.main(["bench", "--capability", "scoring", "--size", "tiny", "--rounds", "2",
                     "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    (b,) = doc["benchmarks"]
    assert b["stats"]["rounds"] == 2 and len(b["stats"]["data"]) == 2
    assert b["extra_info"]["throughput"] > 0 and "onnxruntime" in b["extra_info"]["ratios"]
    assert {"machine_info", "commit_info", "datetime", "version"} <= set(doc)
    table = capsys.readouterr().out
    assert "scoring.trees_onnx@2000 rows" in table and "rows/s" in table
    # the same run as baseline passes; a baseline 100x faster than now fails with exit status 1
    # (3x was too little: a tiny first run, caches cold, was measured 2.5x slower than the next)
    fast = copy.deepcopy(doc)
    fast["benchmarks"][0]["extra_info"]["normalized"] /= 100
    (tmp_path / "fast.json").write_text(json.dumps(fast))
    assert cli.main(["bench", "--capability", "scoring", "--size", "tiny", "--rounds", "2",
                     "--compare", str(tmp_path / "fast.json")]) == 1
    assert "REGRESSION scoring.trees_onnx@2000 rows: normalized time" in capsys.readouterr().out
    assert cli.main(["bench", "--capability", "nope"]) == 2


@pytest.mark.parametrize("capability", ["bandits", "monitor", "privacy"])
def test_bench_cases_agree_with_their_peers(capability):
    """Each case's check asserts that ours and the installed peer give the same answer; a
    peer that is not installed is listed as skipped, never silently dropped."""
    from fastengage.tools.benchcases import cases

    for case in cases(capability, 2_000):
        assert case.peers or case.skipped, case.name
        ours = case.ours()
        for name, peer in case.peers.items():
            case.check(ours, peer(), name)


def test_gate_client_requests_are_noops_outside_valgrind():
    request = gate._ClientRequests()
    for code in (gate.START_INSTRUMENTATION, gate.ZERO_STATS, gate.DUMP_STATS,
                 gate.STOP_INSTRUMENTATION):
        assert request(code) == 0


def test_gate_compare_logic():
    base = {"gate.rfm@callgrind-cpu": {"normalized": 1_000_000, "ratios": {}}}
    assert gate.compare({"rfm": 1_040_000}, base, "cpu", 0.05) == ([], [])
    regressions, _ = gate.compare({"rfm": 1_060_000}, base, "cpu", 0.05)
    assert len(regressions) == 1 and "+6.0%" in regressions[0]
    assert gate.compare({"rfm": 1}, base, "other-cpu", 0.05) == ([], ["gate.rfm@callgrind-other-cpu"])
