"""The one rule for creating and launching parallel Numba kernels.

Design: a kernel module decorates its ``prange`` function with :func:`parallel_kernel` instead
of ``numba.njit(parallel=True)``. The API layer calls the returned :class:`ParallelKernel` like a
function, optionally with ``n_threads=``. Every launch therefore

* uses ``n_threads`` threads (default ``FASTENGAGE_NUM_THREADS``, else all of Numba's), set
  thread-locally (Numba's thread count is per calling thread) and restored afterwards, so one
  service thread never changes another's setting;
* is serialised across Python threads when Numba's threading layer is not thread-safe: the
  ``tbb`` and ``omp`` layers accept concurrent launches, the ``workqueue`` fallback aborts the
  process instead. Which layer runs is known only after a first parallel launch, so that first
  launch is always taken under the lock.

Results must not depend on the thread count: a kernel built here never reduces floats across
threads in thread order (tests run each kernel at 1 and 2 threads and compare bits).

Kernels compiled ahead of time (Cython, issue #11: no JIT compilation on a cold start) are
parallelised by :func:`run_threaded` instead: the same ``n_threads`` rule, the work being a
GIL-free worker function that claims chunks of a fixed plan from a shared atomic counter.
"""
from __future__ import annotations

import threading
import types

import numba
from numba import njit

from .config import DEFAULT_THREADS, NJIT_PARALLEL

__all__ = ["ParallelKernel", "parallel_kernel", "dual_kernel", "resolve_threads", "run_parallel",
           "run_threaded"]

_LOCK = threading.Lock()
_THREADSAFE_LAYERS = ("tbb", "omp")
_layer_is_threadsafe: bool | None = None


def resolve_threads(n_threads: int | None) -> int:
    """The thread count a launch uses: ``n_threads``, else the configured default, clipped to
    ``1..NUMBA_NUM_THREADS`` (Numba cannot start more threads than it was initialised with).

    Every API's ``n_threads`` passes here, so this is where 0, a negative count, a bool or a
    non-integer is refused (a ValueError naming the argument; it used to run one thread)."""
    if n_threads is not None and (isinstance(n_threads, bool) or not hasattr(n_threads, "__index__")
                                  or n_threads < 1):
        raise ValueError(f"n_threads must be None or a positive integer, got {n_threads!r}")
    limit = numba.config.NUMBA_NUM_THREADS
    n = n_threads if n_threads is not None else (DEFAULT_THREADS or limit)
    return max(1, min(int(n), limit))


def run_parallel(kernel, *args, n_threads: int | None = None):
    """``kernel(*args)`` on ``n_threads`` threads, serialised across Python threads when Numba's
    threading layer requires it."""
    global _layer_is_threadsafe
    n = resolve_threads(n_threads)
    previous = numba.get_num_threads()
    if _layer_is_threadsafe:
        numba.set_num_threads(n)
        try:
            return kernel(*args)
        finally:
            numba.set_num_threads(previous)
    with _LOCK:
        numba.set_num_threads(n)
        try:
            result = kernel(*args)
        finally:
            numba.set_num_threads(previous)
        try:
            _layer_is_threadsafe = numba.threading_layer() in _THREADSAFE_LAYERS
        except ValueError:  # no parallel region has run yet (e.g. NUMBA_DISABLE_JIT)
            pass
        return result


def run_threaded(worker, n_threads: int | None = None) -> None:
    """Call ``worker()`` on ``n_threads`` threads at once (the caller's and ``n - 1`` new ones)
    and wait for all of them; the first exception raised by any of them is re-raised.

    ``worker`` must release the GIL for its loop (a Cython ``nogil`` kernel) and take its work
    from a shared plan (chunks claimed through an atomic counter), so each item is done exactly
    once by one thread, whatever the thread count: results never depend on it. Starting a
    thread costs ~0.1 ms, nothing beside a launch worth parallelising.
    """
    n = resolve_threads(n_threads)
    if n == 1:
        worker()
        return
    errors = []

    def guarded():
        try:
            worker()
        except BaseException as exc:  # re-raised in the caller below
            errors.append(exc)

    helpers = [threading.Thread(target=guarded, name="fastengage-worker", daemon=True)
               for _ in range(n - 1)]
    for t in helpers:
        t.start()
    guarded()
    for t in helpers:
        t.join()
    if errors:
        raise errors[0]


class ParallelKernel:
    """A ``prange`` kernel compiled with ``NJIT_PARALLEL`` whose every call goes through
    :func:`run_parallel`. ``dispatcher`` is the Numba dispatcher (for tests and ``py_func``)."""

    def __init__(self, py_func, **overrides):
        self.dispatcher = njit(**dict(NJIT_PARALLEL, **overrides))(py_func)
        self.__name__ = py_func.__name__
        self.__qualname__ = py_func.__qualname__
        self.__doc__ = py_func.__doc__
        self.__module__ = py_func.__module__
        self.__wrapped__ = py_func

    def __call__(self, *args, n_threads: int | None = None):
        return run_parallel(self.dispatcher, *args, n_threads=n_threads)

    @property
    def py_func(self):
        return self.__wrapped__

    def __repr__(self) -> str:
        return f"<parallel kernel {self.__module__}.{self.__qualname__}>"


def parallel_kernel(py_func=None, **overrides):
    """Decorator: ``@parallel_kernel`` or ``@parallel_kernel(fastmath=True)``."""
    if py_func is None:
        return lambda f: ParallelKernel(f, **overrides)
    return ParallelKernel(py_func, **overrides)


def _clone(fn, suffix):
    g = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__ + suffix, fn.__defaults__,
                           fn.__closure__)
    g.__qualname__ = fn.__qualname__ + suffix  # distinct on-disk cache entries per variant
    g.__doc__ = fn.__doc__
    return g


def dual_kernel(size_arg: int, min_rows: int):
    """Decorator: compile a ``prange`` kernel twice, serial (``NJIT``) and parallel (a
    :class:`ParallelKernel`). Below ``min_rows`` rows of argument ``size_arg``, or with
    ``n_threads=1``, the serial one runs, otherwise the parallel one. The choice depends only on
    the input size, never on timing; the kernel must give bit-identical results either way (no
    float reduction across ``prange`` iterations), which tests check. ``.serial`` and
    ``.parallel`` call one variant directly."""
    from .config import NJIT

    def wrap(fn):
        serial = njit(**NJIT)(_clone(fn, "_serial"))
        parallel = ParallelKernel(_clone(fn, "_parallel"))

        def call(*args, n_threads=None):
            if args[size_arg].shape[0] < min_rows or n_threads == 1:
                return serial(*args)
            return parallel(*args, n_threads=n_threads)
        call.__name__ = fn.__name__
        call.__qualname__ = fn.__qualname__
        call.__doc__ = fn.__doc__
        call.__wrapped__ = fn
        call.serial = serial
        call.parallel = parallel
        return call
    return wrap


def kernel_template(fn):
    """Marks a ``prange`` function that is never compiled as it stands: only copies of it made by
    :func:`bind_template` are, each through :func:`dual_kernel` (so the launch rule holds)."""
    fn.__kernel_template__ = True
    return fn


def bind_template(template, name: str, doc: str, size_arg: int, min_rows: int, **bound):
    """A :func:`dual_kernel` compiled from a copy of ``template`` (a :func:`kernel_template`)
    whose globals also hold ``bound`` (njit functions and constants, frozen at compile time).

    This is how one loop serves several models: passing functions as first-class arguments
    would make the kernel uncacheable (Numba does not cache functions taking functions; cold
    start), while each copy is cached under its own ``name``. Like any Numba cache, editing a
    bound function in another file needs that cache cleared.
    """
    if not getattr(template, "__kernel_template__", False):
        raise TypeError(f"{template.__name__} is not marked with @kernel_template")
    glob = dict(template.__globals__, **bound)
    fn = types.FunctionType(template.__code__, glob, name)
    fn.__qualname__ = name
    fn.__doc__ = doc
    return dual_kernel(size_arg, min_rows)(fn)
