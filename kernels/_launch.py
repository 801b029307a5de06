"""Calling Numba parallel kernels safely from many threads.

Numba's ``tbb`` and ``omp`` threading layers accept parallel kernels launched from several
Python threads at once; the ``workqueue`` fallback (used when neither TBB nor GNU OpenMP is
available) aborts the process instead. :func:`run_parallel` serialises launches only when the
layer in use is not thread-safe — which is known only after a first parallel launch, so that
first one is always taken under the lock.
"""
from __future__ import annotations

import threading

import numba

_LOCK = threading.Lock()
_THREADSAFE_LAYERS = ("tbb", "omp")
_layer_is_threadsafe: bool | None = None

__all__ = ["run_parallel"]


def run_parallel(kernel, *args):
    """``kernel(*args)``, serialised across threads when Numba's threading layer requires it."""
    global _layer_is_threadsafe
    if _layer_is_threadsafe:
        return kernel(*args)
    with _LOCK:
        result = kernel(*args)
        try:
            _layer_is_threadsafe = numba.threading_layer() in _THREADSAFE_LAYERS
        except ValueError:  # no parallel region has run yet (e.g. NUMBA_DISABLE_JIT)
            pass
        return result
