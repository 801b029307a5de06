"""examples/next_best_action.py runs end to end and its off-policy readout is sane."""
import os
import re
import subprocess
import sys

import pytest

EXAMPLE = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, "examples",
                       "next_best_action.py")


@pytest.mark.slow
def test_next_best_action_example_runs():
    out = subprocess.run([sys.executable, EXAMPLE], capture_output=True, text=True, timeout=600,
                         check=True).stdout
    true_value = float(re.search(r"true value of the candidate \(simulator\): ([0-9.]+)", out)[1])
    dr = re.search(r"^\s*dr\s+([0-9.]+)\s+([0-9.]+)\s+([0-9.]+)", out, re.MULTILINE)
    assert float(dr[2]) < true_value < float(dr[3])  # the DR interval covers the true value
    assert "week 4" in out
