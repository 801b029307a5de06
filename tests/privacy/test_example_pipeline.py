"""examples/privacy_pipeline.py runs end to end on the bundled data."""
import os
import runpy

EXAMPLE = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, "examples",
                       "privacy_pipeline.py")


def test_privacy_pipeline_example_runs(capsys):
    runpy.run_path(EXAMPLE, run_name="__main__")
    out = capsys.readouterr().out
    for step in ("1. pseudonymised 406,829 rows", "2. consent filter", "3. RFM features",
                 "4. forgot 1 customer", "5. DP report, epsilon spent 1.000"):
        assert step in out
    assert "United Kingdom" in out
