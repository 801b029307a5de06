"""ONNX models: native kernels when the graph allows it, ONNX Runtime otherwise.

:func:`load_onnx` reads the graph with the ``onnx`` package (protobuf only, nothing executed) and
looks for a graph the native kernels reproduce:

* one ``TreeEnsembleClassifier``/``TreeEnsembleRegressor`` on the model input (plus the
  ``Cast``/``ZipMap`` converters add) -> :class:`~fastengage.scoring.trees.TreeModel`,
  identical to ONNX Runtime;
* ``LinearClassifier``/``LinearRegressor`` (optionally followed by ``Normalizer(L1)``), or
  ``MatMul``/``Gemm`` + ``Add`` (+ ``Sigmoid``/``Softmax``) with constant weights ->
  :class:`~fastengage.scoring.linear.LinearModel` (float64; agrees with ONNX Runtime to float32
  precision).

Anything else runs through :class:`OnnxModel` (ONNX Runtime), and ``model.note`` says in one
line why the native path was not taken. ``ZipMap`` outputs (lists of dicts) are removed from
the graph so ONNX Runtime returns the probability tensor directly; its class labels name the
output columns.

Feature names come from the model's ``metadata_props["feature_names"]`` (a JSON list or
comma-separated), from the input names when the model takes one input per column, or from
``features=``.
"""
from __future__ import annotations

import json
import os
import threading

import numpy as np
import onnx
import pyarrow as pa
from onnx import helper, numpy_helper

from ..errors import InputError, ModelFormatError
from ..kernels.common.launch import resolve_threads
from ._columns import feature_column, feature_matrix
from .linear import LinearModel
from .model import Model
from .onnx_trees import NotNative, _attrs, check_tree_ensemble, tree_ensemble_from_onnx
from .trees import TreeModel

__all__ = ["load_onnx", "OnnxModel"]

_PASS = ("Cast", "ZipMap", "Identity")
_CLASSIFIER_OPS = ("TreeEnsembleClassifier", "LinearClassifier", "SVMClassifier")


def _parse(data: bytes) -> onnx.ModelProto:
    proto = onnx.ModelProto()
    try:
        proto.ParseFromString(data)
    except Exception as exc:  # protobuf raises DecodeError and friends
        raise ModelFormatError(f"not a valid ONNX model: {exc}") from None
    if not proto.graph.node or not proto.graph.output:
        raise ModelFormatError("not a valid ONNX model: the graph has no nodes or no outputs")
    return proto


def _np_dtype(value_info):
    elem = value_info.type.tensor_type.elem_type
    if not value_info.type.HasField("tensor_type") or elem == 0:
        raise ModelFormatError(f"ONNX input {value_info.name!r} is not a tensor")
    try:
        return np.dtype(helper.tensor_dtype_to_np_dtype(elem))
    except (KeyError, TypeError, ValueError):
        raise ModelFormatError(f"ONNX input {value_info.name!r} has unknown element type {elem}") from None


def _dims(value_info):
    return [d.dim_value if d.HasField("dim_value") else None
            for d in value_info.type.tensor_type.shape.dim]


def _meta_features(proto):
    for prop in proto.metadata_props:
        if prop.key == "feature_names":
            text = prop.value
            if isinstance(text, bytes):  # protobuf hands back invalid UTF-8 as bytes
                raise ModelFormatError("ONNX metadata 'feature_names' is not UTF-8 text")
            text = text.strip()
            try:
                names = json.loads(text)
            except ValueError:
                names = [n.strip() for n in text.split(",") if n.strip()]
            if isinstance(names, list) and all(isinstance(n, str) for n in names):
                return names
            raise ModelFormatError("ONNX metadata 'feature_names' must be a JSON list of strings")
    return None


def _class_labels(graph):
    # ZipMap names the final classes; otherwise the last classifier operator does (a one-vs-rest
    # graph holds one two-class classifier per class before them).
    nodes = [n for n in graph.node if n.op_type == "ZipMap"]
    nodes += [n for n in reversed(graph.node) if n.op_type in _CLASSIFIER_OPS]
    for node in nodes:
        a = _attrs(node)
        for key in ("classlabels_int64s", "classlabels_ints", "classlabels_strings"):
            labels = a.get(key)
            if labels is not None and len(labels):
                return [x.decode() if isinstance(x, bytes) else int(x) for x in labels]
    return None


def _score_output(graph) -> str | None:
    """Name of the tensor holding the scores: ZipMap's input, else the classifier's probability
    output (its last float output), else the first float output."""
    for node in graph.node:
        if node.op_type == "ZipMap":
            return node.input[0]
    floats = [o.name for o in graph.output
              if o.type.tensor_type.elem_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE)]
    if not floats:
        return None
    classifier = any(n.op_type in _CLASSIFIER_OPS for n in graph.node)
    return floats[-1] if classifier else floats[0]


def _score_path(graph):
    """The nodes the score output depends on, in graph order (a label-only branch, such as the
    Cast/Mul onnxmltools adds to the label, does not stop the native path)."""
    target = _score_output(graph)
    producer = {o: n for n in graph.node for o in n.output}
    needed, stack = set(), [target]
    while stack:
        node = producer.get(stack.pop())
        if node is None or id(node) in needed:
            continue
        needed.add(id(node))
        stack.extend(node.input)
    return [n for n in graph.node if id(n) in needed]


def _core(graph, inits):
    """Nodes on the score path that change values: drops Cast/Identity/ZipMap and the
    multiplication by a constant 1 that onnxmltools appends to LightGBM classifiers."""
    out = []
    for n in _score_path(graph):
        if n.op_type in _PASS:
            continue
        if n.op_type in ("Mul", "Div") and len(n.input) == 2 and n.input[1] in inits \
                and np.all(inits[n.input[1]] == 1):
            continue
        out.append(n)
    return out


def _linear_from_graph(graph, inits, input_name, n_features, features):
    """LinearClassifier/LinearRegressor or MatMul+Add(+Sigmoid/Softmax) -> LinearModel."""
    core = _core(graph, inits)
    ops = [n.op_type for n in core]
    if ops and ops[0] in ("LinearClassifier", "LinearRegressor") and set(ops[1:]) <= {"Normalizer"}:
        node = core[0]
        a = _attrs(node)
        post = a.get("post_transform", b"NONE")
        post = post.decode() if isinstance(post, bytes) else str(post)
        coef = np.asarray(a["coefficients"], np.float64)
        icpt = np.asarray(a.get("intercepts", []), np.float64)
        if node.op_type == "LinearRegressor":
            k = int(a.get("targets", 1))
            classes = None
        else:
            classes = _class_labels(graph)
            k = icpt.size
        l1 = False
        if len(core) == 2:
            norm = _attrs(core[1]).get("norm", b"MAX")
            if (norm.decode() if isinstance(norm, bytes) else norm) != "L1":
                raise NotNative("Normalizer other than L1")
            l1 = True
        links = {"NONE": "identity", "LOGISTIC": "logistic", "SOFTMAX": "softmax"}
        if post not in links or coef.size != k * n_features:
            raise NotNative(f"linear {post} model that the native kernel does not reproduce")
        if icpt.size == 0:
            icpt = np.zeros(k)
        return LinearModel(coef.reshape(k, n_features), icpt, features=features, link=links[post],
                           classes=classes, l1_normalize=l1)
    if ops and ops[0] in ("MatMul", "Gemm"):
        first = core[0]
        if first.input[0] != input_name or first.input[1] not in inits:
            raise NotNative("MatMul not applied to the model input and a constant")
        w = inits[first.input[1]].astype(np.float64)
        b = np.zeros(w.shape[1] if first.op_type == "MatMul" else w.shape[0])
        if first.op_type == "Gemm":
            a = _attrs(first)
            if a.get("transA", 0):
                raise NotNative("Gemm with transA")
            w = w * float(a.get("alpha", 1.0))
            if not a.get("transB", 0):
                w = w.T
            if len(first.input) > 2:
                b = np.broadcast_to(inits[first.input[2]].astype(np.float64) * float(a.get("beta", 1.0)),
                                    (w.shape[0],)).copy()
            coef = w
        else:
            coef = w.T
        rest = core[1:]
        prev = first.output[0]
        if rest and rest[0].op_type == "Add":
            other = [i for i in rest[0].input if i != prev]
            if rest[0].input[0] != prev and rest[0].input[1] != prev or len(other) != 1 \
                    or other[0] not in inits:
                raise NotNative("Add of something other than a constant bias")
            b = b + np.broadcast_to(inits[other[0]].astype(np.float64).ravel(), (coef.shape[0],))
            prev = rest[0].output[0]
            rest = rest[1:]
        link = "identity"
        if rest and rest[0].op_type in ("Sigmoid", "Softmax") and rest[0].input[0] == prev:
            link = "logistic" if rest[0].op_type == "Sigmoid" else "softmax"
            rest = rest[1:]
        if rest:
            raise NotNative("operators after the linear part: " + ", ".join(n.op_type for n in rest))
        return LinearModel(coef, b, features=features, link=link)
    raise NotNative("graph operators " + ", ".join(dict.fromkeys(ops))
                    + " (native: one TreeEnsemble*, Linear*, or MatMul+Add[+Sigmoid/Softmax])")


def _native(proto, input_info, n_features, features):
    graph = proto.graph
    if len(input_info) != 1:
        raise NotNative("the model takes one input per column")
    name = input_info[0].name
    in_dtype = _np_dtype(input_info[0])
    if in_dtype not in (np.float32, np.float64):
        raise NotNative(f"input dtype {in_dtype}")
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    core = _core(graph, inits)
    if len(core) == 1 and core[0].op_type in ("TreeEnsembleClassifier", "TreeEnsembleRegressor"):
        if core[0].input[0] != name:
            raise NotNative("the tree ensemble does not read the model input directly")
        ens, classes, kind = tree_ensemble_from_onnx(core[0], in_dtype, n_features)
        # ONNX Runtime's default intra-op thread count is the number of physical cores; its
        # float32 sums depend on it, so reproduce that order by default (see match_onnxruntime).
        return TreeModel(ens, features=features, kind=kind, classes=classes).match_onnxruntime(
            _physical_cores())
    return _linear_from_graph(graph, inits, name, n_features, features)


def _physical_cores() -> int:
    try:
        import psutil

        return psutil.cpu_count(logical=False) or os.cpu_count() or 1
    except ImportError:
        return os.cpu_count() or 1


def load_onnx(data: bytes, *, backend: str = "auto", features=None) -> Model:
    """Load an ONNX model (bytes). See the module docstring for how the backend is chosen."""
    proto = _parse(data)
    graph = proto.graph
    inits = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in inits]
    if not inputs:
        raise ModelFormatError("ONNX model has no inputs")
    names = list(features) if features is not None else _meta_features(proto)
    if len(inputs) == 1:
        dims = _dims(inputs[0])
        n_features = dims[1] if len(dims) == 2 and dims[1] else (len(names) if names else None)
        if n_features is None:
            raise ModelFormatError("ONNX input has no fixed feature dimension; pass features=[...]")
    else:
        for i in inputs:
            dims = _dims(i)
            if len(dims) > 2 or (len(dims) == 2 and dims[1] not in (1, None)):
                raise ModelFormatError(f"ONNX input {i.name!r} has shape {dims}; multi-input "
                                       "models must take one column per input")
        n_features = len(inputs)
        names = names or [i.name for i in inputs]
    if names is not None and len(names) != n_features:
        raise ModelFormatError(f"{len(names)} feature names for a model with {n_features} inputs")
    for node in graph.node:  # bounds that hold whichever backend scores the model
        if node.op_type in ("TreeEnsembleClassifier", "TreeEnsembleRegressor"):
            check_tree_ensemble(node)
    note = ""
    if backend not in ("auto", "native", "onnxruntime"):
        raise ValueError(f"backend must be 'auto', 'native' or 'onnxruntime', got {backend!r}")
    if backend != "onnxruntime":
        try:
            return _native(proto, inputs, n_features, names)
        except NotNative as exc:
            note = f"ONNX Runtime used: {exc}"
        except (KeyError, ValueError, IndexError, TypeError) as exc:
            note = f"ONNX Runtime used: graph not understood natively ({type(exc).__name__}: {exc})"
        if backend == "native":
            raise ModelFormatError(note.replace("ONNX Runtime used", "cannot score natively"))
    try:
        return OnnxModel(proto, inputs, n_features, names, note=note)
    except UnicodeError:  # protobuf keeps a string field with invalid UTF-8 as bytes
        raise ModelFormatError("ONNX model: a name or label is not UTF-8 text") from None


class OnnxModel(Model):
    """A model scored by ONNX Runtime (CPU); one session per thread count, shared by threads.

    ``n_threads`` sets ONNX Runtime's intra-op threads. For tree ensembles ONNX Runtime's float32
    sums depend on that count (it splits the trees over its threads), so results can differ in
    the last bit between thread counts -- never between calls with the same count.
    """

    def __init__(self, proto, inputs, n_features, features, note=""):
        classes = _class_labels(proto.graph)
        self._proto, score_name = self._strip_zipmap(proto, classes)
        kind = "classifier" if classes is not None else "regressor"
        super().__init__(features=features, n_features=n_features, kind=kind, classes=classes,
                         backend="onnxruntime", note=note)
        self._inputs = [(i.name, _np_dtype(i), len(_dims(i))) for i in inputs]
        self._bytes = self._proto.SerializeToString()
        self._sessions = {}
        sess = self._session(None)
        outs = sess.get_outputs()
        if score_name is None:
            floats = [o for o in outs if o.type in ("tensor(float)", "tensor(double)")]
            if not floats:
                raise ModelFormatError("ONNX model has no float tensor output to use as scores")
            score_name = floats[-1].name if kind == "classifier" else floats[0].name
        self._score_name = score_name
        out = next(o for o in outs if o.name == score_name)
        shape = out.shape
        self._n_out = shape[1] if len(shape) == 2 and isinstance(shape[1], int) else None
        if self._n_out is None:
            self._n_out = self._run(np.zeros((1, n_features)), None).shape[1] \
                if len(self._inputs) == 1 else 1
        if kind == "classifier" and self._n_out != len(classes):
            raise ModelFormatError(f"ONNX classifier outputs {self._n_out} scores for "
                                   f"{len(classes)} classes")

    @staticmethod
    def _strip_zipmap(proto, classes):
        zipmaps = [n for n in proto.graph.node if n.op_type == "ZipMap"]
        if not zipmaps:
            return proto, None
        if classes is None:  # a ZipMap maps class labels: one without a classifier is malformed
            raise ModelFormatError("ONNX model has a ZipMap node but no classifier that names "
                                   "its class labels")
        proto = onnx.ModelProto.FromString(proto.SerializeToString())
        graph = proto.graph
        zm = next(n for n in graph.node if n.op_type == "ZipMap")
        src = zm.input[0]
        dst = zm.output[0]
        graph.node.remove(zm)
        keep = [o for o in graph.output if o.name != dst]
        del graph.output[:]
        graph.output.extend(keep)
        graph.output.append(helper.make_tensor_value_info(src, onnx.TensorProto.FLOAT,
                                                          [None, len(classes)]))
        return proto, src

    def _session(self, n_threads):
        import onnxruntime as ort

        resolve_threads(n_threads)  # refuses 0, negatives, bools (ONNX Runtime read 0 as "all")
        key = int(n_threads or 0)
        with self._lock:
            sess = self._sessions.get(key)
            if sess is None:
                opts = ort.SessionOptions()
                opts.intra_op_num_threads = key
                opts.inter_op_num_threads = 1
                opts.log_severity_level = 3
                try:
                    sess = ort.InferenceSession(self._bytes, opts, providers=["CPUExecutionProvider"])
                except Exception as exc:
                    # ORT's messages carry a C++ signature of several kB: keep the reason.
                    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
                    reason = reason.rsplit("] ", 1)[-1][:300]
                    raise ModelFormatError(f"ONNX Runtime cannot load this model: {reason}") from None
                self._sessions[key] = sess
        return sess

    def _n_outputs(self) -> int:
        return self._n_out

    def _run(self, feeds_or_X, n_threads):
        sess = self._session(n_threads)
        if isinstance(feeds_or_X, np.ndarray):
            name, dtype, _ = self._inputs[0]
            feeds_or_X = {name: feeds_or_X.astype(dtype, copy=False)}
        try:
            out = sess.run([self._score_name], feeds_or_X)[0]
        except Exception as exc:  # onnxruntime's Fail/InvalidArgument/RuntimeException
            reason = str(exc).strip().splitlines()[0][-300:] if str(exc).strip() else repr(exc)
            raise ModelFormatError(f"ONNX Runtime failed to score with this model: {reason}") from None
        out = np.asarray(out)
        return out.reshape(out.shape[0], -1) if out.ndim != 2 else out

    def _predict_matrix(self, X, parallel, n_threads):
        if len(self._inputs) == 1:
            return self._run(X, n_threads)
        return super()._predict_matrix(X, parallel, n_threads)

    def _check_integer_inputs(self, batch, features):
        # A float column fed to an integer model input would be truncated without a word.
        for i, col in enumerate(features):
            dtype = self._inputs[0][1] if len(self._inputs) == 1 else self._inputs[i][1]
            typ = batch.schema.field(col).type
            if np.issubdtype(dtype, np.integer) and not (pa.types.is_integer(typ)
                                                         or pa.types.is_boolean(typ)):
                raise InputError(f"feature column {col!r} has type {typ}; the model input "
                                 f"expects integers ({dtype})")

    def _predict(self, batch, features, nulls, parallel, n_threads):
        if any(np.issubdtype(d, np.integer) for _, d, _ in self._inputs):
            self._check_integer_inputs(batch, features)
        if len(self._inputs) == 1:
            name, dtype, _ = self._inputs[0]
            feeds = {name: feature_matrix(batch, features, dtype, nulls)}
        else:
            feeds = {}
            for (name, dtype, ndim), col in zip(self._inputs, features):
                arr = feature_column(batch.column(col), col, dtype, nulls)
                feeds[name] = arr.reshape(-1, 1) if ndim == 2 else arr
        out = self._run(feeds, n_threads)
        if out.shape[0] != batch.num_rows:
            raise ModelFormatError(f"the ONNX model returned {out.shape[0]} rows of scores for "
                                   f"{batch.num_rows} input rows; it must score row by row")
        return out
