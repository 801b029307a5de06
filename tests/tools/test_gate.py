"""The instruction-count gate fails on a real slow-down and passes on an unchanged run.

Runs the rfm workload under valgrind three times: twice unchanged (the counts must agree
within a small fraction of the tolerance) and once with a 2x slow-down injected
(``FASTENGAGE_GATE_SLOWDOWN=rfm:2``: the measured region runs the workload twice), which the
gate must report as a regression. Skipped when valgrind is not installed (CI installs it).
"""
import shutil

import pytest

from fastengage.tools import gate

pytestmark = pytest.mark.skipif(shutil.which("valgrind") is None,
                                reason="valgrind not installed (apt-get install -y valgrind)")


def test_gate_catches_a_2x_slowdown_and_not_noise():
    cpu = gate.host_cpu()[0]
    first = gate.measure(["rfm"])
    baseline = {f"gate.rfm@callgrind-{cpu}": {"normalized": first["rfm"], "ratios": {}}}
    again = gate.measure(["rfm"])
    assert abs(again["rfm"] / first["rfm"] - 1) < gate.DEFAULT_TOLERANCE / 5
    assert gate.compare(again, baseline, cpu, gate.DEFAULT_TOLERANCE) == ([], [])
    slowed = gate.measure(["rfm"], env={"FASTENGAGE_GATE_SLOWDOWN": "rfm:2"})
    assert 1.8 < slowed["rfm"] / first["rfm"] < 2.2
    regressions, _ = gate.compare(slowed, baseline, cpu, gate.DEFAULT_TOLERANCE)
    assert len(regressions) == 1 and "gate.rfm" in regressions[0]


def test_repeat_runs_the_check_n_times_and_fails_if_any_run_fails(monkeypatch, capsys):
    """``gate check --repeat N`` (the ten-run record): N checks, one line each, saying whether
    the counts equal the first run's; exit 1 as soon as one of them failed. No valgrind needed:
    the single check is replaced by a stand-in."""
    import json

    from fastengage.tools import gate

    calls = []

    def one_check(argv):
        calls.append(argv)
        with open(argv[argv.index("--json") + 1], "w") as fh:
            json.dump({"instructions": {"rfm": 100 if len(calls) < 3 else 101}}, fh)
        return 0 if len(calls) < 3 else 1

    monkeypatch.setattr(gate, "main", one_check)
    assert gate._repeat(["check", "--repeat", "2", "--baseline", "b.json"], 2) == 0
    assert all("--repeat" not in c and "2" not in c for c in calls)
    assert gate._repeat(["check", "--baseline", "b.json"], 1) == 1
    out = capsys.readouterr().out.splitlines()
    assert [line.split(":")[1].split()[0] for line in out] == ["pass", "pass", "FAIL"]
    assert "identical to run 1" in out[1] and "differ" not in out[1]
