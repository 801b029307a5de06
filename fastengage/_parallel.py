"""Re-export of :func:`fastengage.kernels._launch.run_parallel` for the API layer."""
from .kernels._launch import run_parallel

__all__ = ["run_parallel"]
