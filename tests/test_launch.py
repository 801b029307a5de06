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

from fastengage.kernels.common.launch import (dual_kernel, parallel_kernel, resolve_threads,
                                              run_threaded)


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
    for bad in (0, -3):  # refused, not read as one thread (tests/test_n_threads_argument.py)
        with pytest.raises(ValueError, match="n_threads"):
            resolve_threads(bad)


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


def test_run_threaded_runs_the_worker_on_n_threads_and_reraises():
    """The launch of compiled-ahead (Cython) kernels: ``n_threads`` concurrent calls of the
    worker (1 means the caller's thread only), every error re-raised in the caller."""
    names = []

    def worker():
        names.append(threading.current_thread().name)

    run_threaded(worker, n_threads=1)
    assert names == [threading.current_thread().name]
    names.clear()
    run_threaded(worker, n_threads=2)
    assert len(names) == resolve_threads(2) and len(set(names)) == len(names)

    def failing():
        if threading.current_thread() is not threading.main_thread():
            raise ValueError("worker failed")

    if resolve_threads(2) > 1:
        with pytest.raises(ValueError, match="worker failed"):
            run_threaded(failing, n_threads=2)


@pytest.mark.parametrize("rows", [3, 5000])
def test_compiled_cg_half_step_is_bit_identical_for_any_thread_count(rows):
    """The Cython ALS half-step (workers claiming cost-balanced chunks through an atomic
    counter): 1, 2 and 3 threads give the same bits, and it moves X towards the exact solve."""
    from fastengage.kernels.recommend import als

    rng = np.random.default_rng(1)
    lengths = rng.integers(0, 40, rows)
    indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    n_items, f = 300, 12
    indices = np.concatenate([np.sort(rng.choice(n_items, k, replace=False)) for k in lengths]
                             ).astype(np.int64)
    conf = (1 + 10 * rng.random(indices.size)).astype(np.float32)
    Y = rng.random((n_items, f), dtype=np.float32)
    A0 = (Y.T.astype(np.float64) @ Y + 0.1 * np.eye(f)).astype(np.float32)
    X0 = rng.random((rows, f), dtype=np.float32) * np.float32(0.01)
    results = []
    for n in (1, 2, 3):
        X = X0.copy()
        als.als_cg_half(indptr, indices, conf, X, Y, A0, 3, n_threads=n)
        results.append(X.tobytes())
    assert results[0] == results[1] == results[2]
    assert results[0] != X0.tobytes()
