"""The one launch rule (kernels/common/launch.py): thread count per call, FASTENGAGE_NUM_THREADS,
no process-wide state left behind, and serial/parallel variants that agree bit for bit."""
import os
import subprocess
import sys
import threading

import numba
import numpy as np
import pytest
from numba import prange

from fastengage.kernels.common.launch import dual_kernel, parallel_kernel, resolve_threads


@parallel_kernel
def _threads_seen(out):
    for i in prange(out.shape[0]):
        out[i] = numba.get_num_threads()


@dual_kernel(0, 1000)
def _square(x):
    out = np.empty_like(x)
    for i in prange(x.shape[0]):
        out[i] = x[i] * x[i] + 0.1
    return out


def _seen(n_threads=None):
    out = np.zeros(64, np.int64)
    _threads_seen(out, n_threads=n_threads)
    return set(out.tolist())


def test_n_threads_is_used_and_clipped():
    limit = numba.config.NUMBA_NUM_THREADS
    assert _seen(1) == {1}
    assert _seen(limit) == {limit}
    assert _seen(10 * limit) == {limit}  # cannot start more threads than Numba has
    assert resolve_threads(0) == 1 and resolve_threads(-3) == 1


def test_a_call_leaves_the_callers_thread_count_alone():
    before = numba.get_num_threads()
    _seen(1)
    assert numba.get_num_threads() == before


def test_concurrent_callers_each_get_their_own_thread_count():
    limit = numba.config.NUMBA_NUM_THREADS
    results, errors = {}, []

    def worker(n):
        try:
            results[n] = [_seen(n) for _ in range(50)]
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in sorted({1, limit})]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for n, seen in results.items():
        assert all(s == {n} for s in seen)


def test_environment_variable_sets_the_default(tmp_path):
    probe = (
        "import numba, numpy as np\n"
        "from numba import prange\n"
        "from fastengage.kernels.common.launch import parallel_kernel\n"
        "@parallel_kernel\n"
        "def k(out):\n"
        "    for i in prange(out.shape[0]):\n"
        "        out[i] = numba.get_num_threads()\n"
        "out = np.zeros(8, np.int64); k(out); print(sorted(set(out.tolist())))\n")
    script = tmp_path / "probe.py"  # a file, so that the kernel can be cached
    script.write_text(probe)
    env = dict(os.environ, FASTENGAGE_NUM_THREADS="1")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[1]"
    env["FASTENGAGE_NUM_THREADS"] = "not a number"  # ignored, never breaks import
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"[{numba.config.NUMBA_NUM_THREADS}]"


@pytest.mark.parametrize("n", [10, 5000])
def test_dual_kernel_variants_agree_bit_for_bit(n):
    x = np.random.default_rng(0).normal(size=n)
    a = _square(x, n_threads=1)
    b = _square(x, n_threads=2)
    c = _square.serial(x)
    d = _square.parallel(x)
    for other in (b, c, d):
        assert a.tobytes() == other.tobytes()
