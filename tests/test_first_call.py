"""First-call latency is measured (bench/first_call.py); here only that the measurement runs
and that importing fastengage does not pull in the heavy optional stacks."""
import subprocess
import sys


def test_import_is_lean():
    # (SciPy is not listed: numba itself imports it when it is installed.)
    code = ("import sys, fastengage; heavy = [m for m in ('onnxruntime', 'onnx', 'sklearn', "
            "'lightgbm', 'matplotlib', 'scipy.optimize', 'scipy.sparse') if m in sys.modules]; "
            "print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_first_call_script_runs():
    sys.path.insert(0, ".")
    from bench.first_call import main

    result = main(repeats=1)
    assert result["total_s"] > 0 and result["numba_floor_s"] > 0
