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
