"""examples/privacy_pipeline.py runs end to end on the bundled data."""
import os
import runpy

EXAMPLE = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, "examples",
                       "privacy_pipeline.py")


def test_privacy_pipeline_example_runs(capsys):
    runpy.run_path(EXAMPLE, run_name="__main__")
    out = capsys.readouterr().out
    for step in ("1. pseudonymised 406,829 rows", "2. consent filter", "3. RFM state of",
                 "4. forgot 1 customer, 3 audit records", "5. DP report, epsilon spent 1.000"):
        assert step in out
    assert "United Kingdom" in out
    # the customer is gone everywhere: no trace in the saved state or model, state == rebuild
    assert out.count("traces of the token in the file: 0") == 2
    assert "equals one built without the customer: True" in out
    assert "RFMState  rows removed" in out and "ALS       rows removed" in out
