"""Batch model scoring over Arrow data (``fastengage.scoring``).

>>> model = load_model("churn.onnx")                 # ONNX, LightGBM text, or fastengage JSON
>>> scores = model.score(table, id="customer")      # any Arrow input, streamed in batches
>>> scores.column_names                             # ['customer', 'probability_0', 'probability_1']

Native kernels (tree ensembles, linear/logistic models) are chosen automatically when they
reproduce the model; otherwise ONNX Runtime scores it and ``model.note`` says why. No format
read here can execute code: ONNX is protobuf, LightGBM models are text, fastengage linear models
are JSON; pickle is refused.
"""
from __future__ import annotations

import os

from ..errors import ModelFormatError
from .churn import churn_dataset
from .linear import LinearModel
from .model import Model
from .trees import TreeModel

__all__ = ["load_model", "Model", "LinearModel", "TreeModel", "OnnxModel", "churn_dataset"]


def _read(path_or_bytes) -> tuple[bytes, str]:
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        return bytes(path_or_bytes), "<bytes>"
    if isinstance(path_or_bytes, (str, os.PathLike)):
        path = os.fspath(path_or_bytes)
        try:
            with open(path, "rb") as fh:
                return fh.read(), path
        except OSError as exc:
            raise ModelFormatError(f"cannot read model file {path!r}: {exc}") from exc
    raise TypeError(f"load_model takes a path or bytes, got {type(path_or_bytes).__name__}")


def load_model(path_or_bytes, *, backend: str = "auto", features=None) -> Model:
    """Load a model file for scoring.

    Parameters
    ----------
    path_or_bytes : str, os.PathLike or bytes
        An ONNX model, a LightGBM text model (``Booster.save_model``), or a fastengage linear
        model (JSON, see :mod:`fastengage.scoring.linear`). The format is detected from content.
    backend : {"auto", "native", "onnxruntime"}
        ``"auto"`` uses a native kernel when it reproduces the model, ONNX Runtime otherwise;
        ``"native"`` raises if that is impossible; ``"onnxruntime"`` forces ONNX Runtime (ONNX
        files only).
    features : list of str, optional
        Input column names in the model's feature order, overriding those stored in the file.

    Raises
    ------
    ModelFormatError
        Malformed, unsupported or executable (pickle) files.
    """
    data, where = _read(path_or_bytes)
    model = _parse(data, where, backend, features)
    # kept for pickling (Model.__reduce__): a model travels as the file it was read from
    model._file = (data, backend, None if features is None else list(features))
    return model


def model_from_file(data: bytes, backend: str, features):
    """Unpickle a scoring model: ``data`` is its model file, re-read by :func:`load_model`."""
    return load_model(data, backend=backend, features=features)


def _parse(data: bytes, where: str, backend: str, features) -> Model:
    from .lightgbm_text import looks_like_lightgbm, parse_lightgbm
    head = data[:64].lstrip()
    if not data:
        raise ModelFormatError(f"model file {where} is empty")
    if data[:1] == b"\x80" or data[:2] in (b"(d", b"(l", b"}q", b"]q"):
        raise ModelFormatError(f"{where} looks like a pickle; pickled models are refused because "
                               "loading them can execute code (export to ONNX instead)")
    if looks_like_lightgbm(head):
        if backend == "onnxruntime":
            raise ModelFormatError("LightGBM text models are scored natively only")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ModelFormatError(f"{where}: LightGBM model is not UTF-8 text") from exc
        ens, info = parse_lightgbm(text)
        names = list(features) if features is not None else info["feature_names"]
        if len(names) != ens.n_features:
            raise ModelFormatError(f"{len(names)} feature names for {ens.n_features} features")
        classes = None
        if info["kind"] == "classifier":
            classes = list(range(max(2, info["num_class"])))
        model = TreeModel(ens, features=names, kind=info["kind"], classes=classes)
        model.categories = info["pandas_categorical"]
        return model
    if head.startswith(b"{"):
        if backend == "onnxruntime":
            raise ModelFormatError("fastengage linear models are scored natively only")
        model = LinearModel.from_json(data.decode("utf-8", errors="replace"))
        if features is not None:
            if len(features) != model.n_features:
                raise ModelFormatError(f"{len(features)} feature names for {model.n_features} features")
            model.features = list(features)
        return model
    try:
        from .onnx_model import load_onnx
    except ImportError as exc:  # the onnx package reads the graph; onnxruntime alone cannot
        raise ModelFormatError(f"reading ONNX models needs the 'onnx' package ({exc}); "
                               "pip install onnx") from exc
    return load_onnx(data, backend=backend, features=features)


def __getattr__(name):
    if name == "OnnxModel":  # imported on demand: it needs the optional onnx package
        from .onnx_model import OnnxModel

        return OnnxModel
    raise AttributeError(name)
