"""The instruction-count gate fails on a real slow-down and passes on an unchanged run.

Measures the rfm workload three times in one valgrind session: twice unchanged (the counts
must agree within a small fraction of the tolerance) and once with a 2x slow-down injected (the
measured region runs the workload twice, what ``FASTENGAGE_GATE_SLOWDOWN=rfm:2`` does), which
the gate must report as a regression. Skipped when valgrind is not installed (CI installs it).
"""
import shutil

import pytest

from fastengage.tools import gate

needs_valgrind = pytest.mark.skipif(shutil.which("valgrind") is None,
                                    reason="valgrind not installed (apt-get install -y valgrind)")


@needs_valgrind
def test_gate_catches_a_2x_slowdown_and_not_noise():
    # One Valgrind session (start-up and imports paid once): the workload twice unchanged, then
    # with the slow-down injected the way FASTENGAGE_GATE_SLOWDOWN does (run twice in the
    # measured region).
    cpu = gate.host_cpu()[0]
    first, again, slowed = gate.measure_sequence(["rfm", "rfm", "rfm*2"])
    baseline = {f"gate.rfm@callgrind-{cpu}": {"normalized": first, "ratios": {}}}
    assert abs(again / first - 1) < gate.DEFAULT_TOLERANCE / 5
    assert gate.compare({"rfm": again}, baseline, cpu, gate.DEFAULT_TOLERANCE) == ([], [])
    assert 1.8 < slowed / first < 2.2
    regressions, _ = gate.compare({"rfm": slowed}, baseline, cpu, gate.DEFAULT_TOLERANCE)
    assert len(regressions) == 1 and "gate.rfm" in regressions[0]


def test_slowdown_variable_repeats_the_measured_workload(monkeypatch):
    """FASTENGAGE_GATE_SLOWDOWN=cap:N (what a user injects into `gate check`) runs that
    capability's measured region N times; other capabilities and explicit ``*N`` tokens keep
    their own count. No Valgrind: the workloads and client requests are stand-ins."""
    calls = []
    monkeypatch.setattr(gate, "_workloads", lambda: {
        "rfm": lambda: lambda: calls.append("rfm"), "clv": lambda: lambda: calls.append("clv")})
    monkeypatch.setattr(gate, "_ClientRequests", lambda: (lambda code: None))
    monkeypatch.setenv("FASTENGAGE_GATE_SLOWDOWN", "rfm:3")
    gate._child(["rfm", "clv", "clv*2"])
    # WARM_RUNS unmeasured calls per distinct capability, then 3 (rfm, slowed) + 1 (clv) +
    # 2 (clv*2)
    warm = gate.WARM_RUNS
    assert calls == ["rfm"] * warm + ["clv"] * warm + ["rfm"] * 3 + ["clv"] + ["clv"] * 2


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
