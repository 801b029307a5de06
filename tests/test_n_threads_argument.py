"""n_threads is None or a positive integer everywhere: 0, a negative count, a bool or a float is
refused with an error naming the argument (kernels/common/launch.resolve_threads, which every
API's count passes through; these used to run one thread silently)."""
import numpy as np
import pyarrow as pa
import pytest

import fastengage as fe
from fastengage import clv
from fastengage.bandits import LinUCB
from fastengage.kernels.common.launch import resolve_threads
from fastengage.monitor import drift

BAD = [0, -1, -8, True, 2.0, "2"]


@pytest.fixture(scope="module")
def tx():
    rng = np.random.default_rng(0)
    n = 400
    return pa.table({"customer": rng.integers(0, 40, n),
                     "ts": pa.array(rng.integers(0, 300, n) * 86_400_000_000, pa.timestamp("us")),
                     "amount": rng.uniform(1, 50, n), "x": rng.normal(size=n)})


def _onnx_model():
    """A one-feature linear ONNX graph (Y = 2 x), scored by ONNX Runtime."""
    from onnx import TensorProto, helper

    from fastengage.scoring import load_model

    graph = helper.make_graph(
        [helper.make_node("Mul", ["X", "two"], ["Y"])], "double",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 1])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, 1])],
        [helper.make_tensor("two", TensorProto.FLOAT, [1], [2.0])])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return load_model(proto.SerializeToString(), backend="onnxruntime", features=["x"])


@pytest.mark.parametrize("bad", BAD)
def test_resolve_threads_refuses(bad):
    with pytest.raises(ValueError, match="n_threads must be None or a positive integer"):
        resolve_threads(bad)


@pytest.mark.parametrize("good, want", [(None, None), (1, 1), (np.int64(2), 2), (10_000, None)])
def test_resolve_threads_takes_counts(good, want):
    n = resolve_threads(good)
    assert n >= 1 and (want is None or n == min(want, n))


@pytest.mark.parametrize("bad", [0, -1])
@pytest.mark.parametrize("call", [
    lambda t, n: fe.rfm(t, customer="customer", time="ts", amount="amount", n_threads=n),
    lambda t, n: clv.summary(t, customer="customer", time="ts", amount="amount", n_threads=n),
    lambda t, n: drift(t, t, columns=["x"], n_threads=n),
    lambda t, n: LinUCB(["a", "b"], features=["x"]).decide(t, id="customer", n_threads=n),
    lambda t, n: _onnx_model().score(t, features=["x"], n_threads=n),
], ids=["rfm", "clv.summary", "drift", "bandits.decide", "onnx score"])
def test_apis_refuse_a_count_below_one(tx, call, bad):
    with pytest.raises(ValueError, match="n_threads"):
        call(tx, bad)
