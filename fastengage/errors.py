"""Exceptions raised by fastengage. Every user-facing error names the column and the problem."""


class FastEngageError(Exception):
    """Base class of every error fastengage raises on purpose."""


class InputError(FastEngageError, ValueError):
    """The input data cannot be used as given (missing column, wrong type, nulls, empty, ...)."""


class ColumnNotFoundError(InputError):
    """A column named by the user is not in the input."""


class ModelFormatError(FastEngageError, ValueError):
    """A saved model file is malformed, of an unknown version, or of another model type."""


class ConvergenceError(FastEngageError, RuntimeError):
    """An optimiser did not converge; the message says what was tried."""
