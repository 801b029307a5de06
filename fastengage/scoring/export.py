"""Export scikit-learn models to ONNX for fastengage (needs the optional ``skl2onnx`` package).

:func:`sklearn_to_onnx` wraps ``skl2onnx.to_onnx`` with two things a fastengage user wants:

* the feature (column) names are stored in the model's ``metadata_props["feature_names"]`` so
  that ``load_model(...).score(table)`` maps Arrow columns by name without ``features=``;
* a workaround for skl2onnx 1.20 under protobuf >= 5/7: converting a
  ``HistGradientBoosting*`` model fails with "Field onnx.AttributeProto.ints: Expected an int,
  got a boolean" because ``nodes_missing_value_tracks_true`` receives Python/NumPy bools. While
  converting, skl2onnx's ``add_node`` is wrapped so that the value is passed as an ``int``
  (the ONNX attribute is an INTS list of 0/1, so the model is unchanged). The wrapper is
  removed again afterwards.
"""
from __future__ import annotations

import json
from contextlib import contextmanager

import numpy as np

__all__ = ["sklearn_to_onnx"]


@contextmanager
def _bool_tracks_as_int():
    try:
        import skl2onnx.common.tree_ensemble as te
    except ImportError:  # pragma: no cover - layout of other skl2onnx versions
        yield
        return
    original = te.add_node

    def add_node(*args, **kwargs):
        if "nodes_missing_value_tracks_true" in kwargs:
            kwargs["nodes_missing_value_tracks_true"] = int(kwargs["nodes_missing_value_tracks_true"])
        return original(*args, **kwargs)

    te.add_node = add_node
    try:
        yield
    finally:
        te.add_node = original


def sklearn_to_onnx(model, feature_names, *, zipmap: bool = True, dtype=np.float32,
                    target_opset: int | None = None) -> bytes:
    """Convert a fitted scikit-learn model to ONNX bytes with named features.

    Parameters
    ----------
    model : fitted scikit-learn estimator or pipeline
    feature_names : list of str
        The Arrow column names, in the order of the model's training matrix.
    zipmap : bool
        Keep skl2onnx's ZipMap probability output (fastengage handles both).
    dtype : numpy dtype of the ONNX input (float32 is what skl2onnx converters expect).
    """
    from skl2onnx import to_onnx

    sample = np.zeros((1, len(feature_names)), dtype=dtype)
    options = None
    if not zipmap and hasattr(model, "predict_proba"):
        options = {id(model): {"zipmap": False}}
    with _bool_tracks_as_int():
        proto = to_onnx(model, sample, options=options, target_opset=target_opset)
    prop = proto.metadata_props.add()
    prop.key = "feature_names"
    prop.value = json.dumps(list(feature_names))
    return proto.SerializeToString()
