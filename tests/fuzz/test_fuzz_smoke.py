"""The bounded fuzz smoke run of every loader, model parser and input path (see harness.py)."""
import os
import re
import pathlib
import subprocess
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent
pytest.importorskip("atheris")
sys.path.insert(0, str(HERE))
import harness  # noqa: E402

SMOKE_SECONDS = int(os.environ.get("FASTENGAGE_FUZZ_SECONDS", "60"))
SMOKE_RUNS = int(os.environ.get("FASTENGAGE_FUZZ_RUNS", "12000"))


def test_every_seed_passes_its_target():
    """The corpus is valid: each seed file loads and runs without any error."""
    for target in harness.discover():
        for seed in target.seeds():
            target.run(seed)


def test_hostile_json_and_npy_mutations_stay_well_formed_zips():
    import io
    import random
    import zipfile

    import numpy as np

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("meta.json", '{"version": 1, "n": 3}')
        npy = io.BytesIO()
        np.save(npy, np.arange(4, dtype=np.int64))
        zf.writestr("a.npy", npy.getvalue())
    rnd = random.Random(0)
    for _ in range(50):
        out = harness.mutate_zip(buf.getvalue(), rnd, lambda b: b[::-1])
        with zipfile.ZipFile(io.BytesIO(out)) as zf:
            zf.testzip()


def test_fuzz_smoke_run_finds_nothing(tmp_path):
    if not harness.discover():
        pytest.skip("no fuzz targets yet")
    env = dict(os.environ, NUMBA_BOUNDSCHECK="1")
    # A fixed seed and a fixed number of inputs: the smoke run replays the same mutations on
    # every machine (a CI failure means a change broke something, not a lucky draw); the
    # exploratory, randomly seeded runs are the release command in harness.py's docstring.
    proc = subprocess.run([sys.executable, str(HERE / "harness.py"), "--seconds", str(SMOKE_SECONDS),
                           "--runs", str(SMOKE_RUNS), "-seed=1",
                           "--corpus", str(tmp_path / "corpus")],
                          capture_output=True, text=True, env=env, timeout=SMOKE_SECONDS + 600)
    tail = (proc.stdout + proc.stderr)[-4000:]
    assert proc.returncode == 0, f"the fuzzer found a failure:\n{tail}"
    assert "Done" in tail or "stat::number_of_executed_units" in tail, tail
    # coverage-guided: the API layer is instrumented and libFuzzer keeps inputs that reach new
    # branches (without feedback no unit is ever added beyond the seeds)
    instrumented = re.search(r"coverage feedback from (\d+) Python functions", proc.stdout)
    assert instrumented and int(instrumented.group(1)) > 500, proc.stdout[-2000:]
    added = re.search(r"stat::new_units_added:\s+(\d+)", tail)
    assert added and int(added.group(1)) > 0, tail
