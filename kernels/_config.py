"""Numba compilation flags shared by every kernel (one place, as in stumpy's config module).

``NUMBA_DISABLE_JIT=1`` in the environment turns every kernel into plain Python, which is how
coverage of kernel code is measured.
"""
import os

#: Keyword arguments for serial kernels: compiled ahead of the first row loop, GIL released,
#: machine code cached next to the module so a new process does not recompile.
NJIT = dict(nogil=True, cache=True, fastmath=False, error_model="numpy")

#: Keyword arguments for kernels whose outer loop is a ``prange``.
NJIT_PARALLEL = dict(NJIT, parallel=True)

#: Default number of worker threads for parallel kernels (numba's own default: all cores).
DEFAULT_THREADS = int(os.environ.get("FASTENGAGE_NUM_THREADS", "0")) or None
