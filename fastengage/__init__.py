"""fastengage: customer-engagement analytics over Apache Arrow with native kernels."""
from .errors import ColumnNotFoundError, ConvergenceError, FastEngageError, InputError, ModelFormatError

__version__ = "0.1.0"
