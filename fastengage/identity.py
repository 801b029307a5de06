"""Identity resolution across channels: :func:`resolve` ids linked by pairs into one customer key
(see :mod:`fastengage.features.identity`)."""
from .features.identity import apply_identity, resolve  # noqa: F401

__all__ = ["resolve", "apply_identity"]
