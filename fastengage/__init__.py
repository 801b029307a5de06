"""fastengage: customer-engagement analytics over Apache Arrow with native kernels.

``rfm``/``RFMState`` are imported eagerly; the heavier capabilities (``clv``, ``recommend``,
``scoring``, ``bandits``, ``monitor``, ``experiments``, ``privacy``, ``identity``,
``churn_dataset``) load on first use, so that a service that only needs features
does not pay for SciPy, ONNX Runtime or pandas at start-up.
"""
import importlib

from .errors import ColumnNotFoundError, ConvergenceError, FastEngageError, InputError, ModelFormatError
from .features import RFMState, rfm
from .features.segments import DEFAULT_SEGMENTS

__version__ = "0.1.0"

_LAZY_MODULES = ("clv", "recommend", "scoring", "datasets", "segments", "bandits", "monitor",
                 "experiments", "privacy", "identity", "features")
_LAZY_ATTRIBUTES = {"churn_dataset": ("scoring.churn", "churn_dataset"),
                    "profile": ("features.profile", "profile"),
                    "training_set": ("features.training", "training_set")}

__all__ = ["rfm", "RFMState", "DEFAULT_SEGMENTS", "churn_dataset", "profile", "training_set",
           "clv", "recommend", "scoring", "bandits", "monitor", "experiments", "privacy", "identity",
           "FastEngageError", "InputError", "ColumnNotFoundError", "ModelFormatError",
           "ConvergenceError"]


def __getattr__(name):
    if name in _LAZY_MODULES:
        return importlib.import_module(f".{name}", __name__)
    if name in _LAZY_ATTRIBUTES:
        module, attribute = _LAZY_ATTRIBUTES[name]
        return getattr(importlib.import_module(f".{module}", __name__), attribute)
    raise AttributeError(f"module 'fastengage' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY_MODULES) | set(_LAZY_ATTRIBUTES))
