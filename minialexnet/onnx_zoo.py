"""Stand-ins for the published AlexNet ONNX files, with random weights, built offline.

Nothing here downloads anything: tests, CI and the chapters' fast mode need a file
in the *exact node structure* of the ones people use, and build it with
``onnx.helper``:

* :func:`bvlc_alexnet` -- the ONNX model zoo's ``bvlcalexnet`` (Caffe's
  ``bvlc_alexnet`` through Caffe2): input ``data_0`` (N, 3, 224, 224) in BGR 0-255
  minus the mean, Conv/Relu/LRN/MaxPool with explicit end padding ``[0, 0, 1, 1]``
  (Caffe's pooling rounds up), conv2/4/5 with ``group=2``, a Reshape to (N, 9216),
  Gemm/Relu/Dropout, and a Softmax ``prob_1``; ``ceil=True`` writes ``ceil_mode=1``
  instead of the padding, as newer converters do.
* :func:`torchvision_alexnet` -- what ``torch.onnx.export`` writes for torchvision's
  ``alexnet()`` in eval mode: no LRN, no groups, an AveragePool of 1x1 for its
  adaptive pooling at 6x6, Flatten and three Gemm (dropout removed).

The weights are random (He's scale, so activations neither vanish nor blow up); the
real files hold trained ones (docs/onnx.md says where to get them).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["bvlc_alexnet", "torchvision_alexnet"]


def _he(rng: np.random.Generator, shape: tuple[int, ...], gain: float = 1.0) -> np.ndarray:
    fan_in = int(np.prod(shape[1:]))
    return (rng.normal(0, gain * np.sqrt(2.0 / fan_in), shape)).astype(np.float32)


class _Builder:
    def __init__(self, seed: int) -> None:
        import onnx  # noqa: F401 -- a clear ImportError early

        self.rng = np.random.default_rng(seed)
        self.nodes: list[Any] = []
        self.inits: list[Any] = []

    def weight(self, name: str, array: np.ndarray, dtype: Any = np.float32) -> str:
        from onnx import numpy_helper

        self.inits.append(numpy_helper.from_array(np.asarray(array, dtype), name))
        return name

    def node(self, op: str, inputs: list[str], output: str, name: str = "", **attrs: Any) -> str:
        from onnx import helper

        self.nodes.append(helper.make_node(op, inputs, [output], name=name or output, **attrs))
        return output

    def model(self, name: str, x: str, size: int, out: str, classes: int, opset: int) -> Any:
        from onnx import TensorProto, helper

        graph = helper.make_graph(
            self.nodes,
            name,
            [helper.make_tensor_value_info(x, TensorProto.FLOAT, ["N", 3, size, size])],
            [helper.make_tensor_value_info(out, TensorProto.FLOAT, ["N", classes])],
            self.inits,
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
        model.producer_name = "minialexnet.onnx_zoo (random weights)"
        return model


def bvlc_alexnet(
    seed: int = 0, *, num_classes: int = 1000, ceil: bool = False, opset: int = 12
) -> Any:
    """A random-weight ``onnx.ModelProto`` laid out as the model zoo's bvlcalexnet
    (60,965,224 parameters for 1000 classes). ``ceil``: ``ceil_mode=1`` on the poolings
    instead of end padding (opset >= 10)."""
    b = _Builder(seed)
    r = b.rng
    c, fc = [96, 256, 384, 384, 256], 4096
    pool: dict[str, Any] = {"kernel_shape": [3, 3], "strides": [2, 2]}
    pool.update({"ceil_mode": 1} if ceil else {"pads": [0, 0, 1, 1]})
    lrn = {"size": 5, "alpha": 1e-4, "beta": 0.75, "bias": 1.0}
    x = "data_0"
    gain = 1 / 64  # BGR minus the mean: pixels of about +-64

    def conv(i: int, x: str, c_in: int, c_out: int, k: int, pad: int, group: int, **kw: Any) -> str:
        w = b.weight(f"conv{i}_w_0", _he(r, (c_out, c_in // group, k, k), kw.pop("gain", 1.0)))
        bias = b.weight(f"conv{i}_b_0", r.normal(0, 0.01, c_out))
        y = b.node("Conv", [x, w, bias], f"conv{i}_1", kernel_shape=[k, k], pads=[pad] * 4,
                   strides=[kw.get("stride", 1)] * 2, group=group)  # fmt: skip
        return b.node("Relu", [y], f"conv{i}_2")

    x = conv(1, x, 3, c[0], 11, 0, 1, stride=4, gain=gain)
    x = b.node("MaxPool", [b.node("LRN", [x], "norm1_1", **lrn)], "pool1_1", **pool)
    x = conv(2, x, c[0], c[1], 5, 2, 2)
    x = b.node("MaxPool", [b.node("LRN", [x], "norm2_1", **lrn)], "pool2_1", **pool)
    x = conv(3, x, c[1], c[2], 3, 1, 1)
    x = conv(4, x, c[2], c[3], 3, 1, 2)
    x = conv(5, x, c[3], c[4], 3, 1, 2)
    x = b.node("MaxPool", [x], "pool5_1", **pool)
    shape = b.weight("OC2_DUMMY_1", np.array([0, -1]), np.int64)
    x = b.node("Reshape", [x, shape], "OC2_DUMMY_0")
    n_in = c[4] * 36
    for i, n_out in ((6, fc), (7, fc), (8, num_classes)):
        w = b.weight(f"fc{i}_w_0", _he(r, (n_out, n_in), 1.0 if i < 8 else 0.5))
        bias = b.weight(f"fc{i}_b_0", r.normal(0, 0.01, n_out))
        x = b.node("Gemm", [x, w, bias], f"fc{i}_1", transB=1)
        if i < 8:
            x = b.node("Relu", [x], f"fc{i}_2")
            x = b.node("Dropout", [x], f"fc{i}_3")
        n_in = n_out
    out = b.node("Softmax", [x], "prob_1", axis=1)
    return b.model("bvlc_alexnet", "data_0", 224, out, num_classes, opset)


def torchvision_alexnet(seed: int = 0, *, num_classes: int = 1000, opset: int = 17) -> Any:
    """A random-weight ``onnx.ModelProto`` laid out as ``torch.onnx.export`` writes
    torchvision's ``alexnet()`` (eval mode): 61,100,840 parameters for 1000 classes."""
    b = _Builder(seed)
    r = b.rng
    c, fc = [64, 192, 384, 256, 256], 4096
    x = "input"
    specs = [(3, c[0], 11, 4, 2), (c[0], c[1], 5, 1, 2), (c[1], c[2], 3, 1, 1),
             (c[2], c[3], 3, 1, 1), (c[3], c[4], 3, 1, 1)]  # fmt: skip
    index = 0
    for i, (c_in, c_out, k, s, p) in enumerate(specs):
        gain = 1 / 2 if i == 0 else 1.0  # input normalised: about +-2
        w = b.weight(f"features.{index}.weight", _he(r, (c_out, c_in, k, k), gain))
        bias = b.weight(f"features.{index}.bias", r.normal(0, 0.01, c_out))
        x = b.node("Conv", [x, w, bias], f"/features/features.{index}/Conv_output_0",
                   kernel_shape=[k, k], pads=[p] * 4, strides=[s, s], dilations=[1, 1],
                   group=1)  # fmt: skip
        x = b.node("Relu", [x], f"/features/features.{index + 1}/Relu_output_0")
        index += 2
        if i in (0, 1, 4):
            x = b.node("MaxPool", [x], f"/features/features.{index}/MaxPool_output_0",
                       kernel_shape=[3, 3], strides=[2, 2], pads=[0, 0, 0, 0], ceil_mode=0,
                       dilations=[1, 1])  # fmt: skip
            index += 1
    x = b.node("AveragePool", [x], "/avgpool/AveragePool_output_0", kernel_shape=[1, 1],
               strides=[1, 1], pads=[0, 0, 0, 0], ceil_mode=0)  # fmt: skip
    x = b.node("Flatten", [x], "/Flatten_output_0", axis=1)
    n_in = c[4] * 36
    for j, n_out in ((1, fc), (4, fc), (6, num_classes)):
        w = b.weight(f"classifier.{j}.weight", _he(r, (n_out, n_in), 1.0 if j < 6 else 0.5))
        bias = b.weight(f"classifier.{j}.bias", r.normal(0, 0.01, n_out))
        name = "output" if j == 6 else f"/classifier/classifier.{j}/Gemm_output_0"
        x = b.node("Gemm", [x, w, bias], name, alpha=1.0, beta=1.0, transB=1)
        if j < 6:
            x = b.node("Relu", [x], f"/classifier/classifier.{j + 1}/Relu_output_0")
        n_in = n_out
    return b.model("main_graph", "input", 224, "output", num_classes, opset)
