"""Native kernels of fastengage: every loop over rows lives here.

Numba kernels are plain ``.py`` modules (compiled on first call, cached on disk); Cython kernels
are ``.pyx`` modules compiled by ``setup.py``. Kernels take contiguous NumPy arrays and scalars,
fill or return NumPy arrays, never import pyarrow, never validate user input and release the GIL.
"""
