"""An ONNX graph read as a chain of layer descriptions (the first half of the converter).

:func:`read_chain` walks an AlexNet-family graph from its input to its output with the
``onnx`` package and turns each node (or group of nodes) into an :class:`Op`: what
kind of layer it is, its hyperparameters, its weights and the shape it gives. Nothing
here knows this library's models; :mod:`minialexnet.convert` matches the chain with
them, fills the weights and writes the checkpoint. Shapes are tracked per image, (C, H,
W) or (D,), so that a Reshape or an end padding can be checked where it is read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .functional.pool import pooled_size

__all__ = ["Chain", "ConvertError", "Op", "read_chain"]


class ConvertError(ValueError):
    """An ONNX file this converter cannot turn into a minialexnet model; says why."""


@dataclass
class Op:
    """One layer read from the graph: ``kind`` and what it needs; ``node`` names its node."""

    kind: str  # conv relu tanh lrn pool flatten fc
    node: str
    attrs: dict[str, Any] = field(default_factory=dict)
    weights: tuple[np.ndarray, ...] = ()
    out_shape: tuple[int, ...] = ()  # per image: (C, H, W) or (D,)


def _onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise ConvertError(
            "reading ONNX needs the onnx package: pip install 'minialexnet[onnx]' (or: pip "
            "install onnx)"
        ) from None
    return onnx


def _attrs(node: Any) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _where(node: Any) -> str:
    return f"node {node.name or '(unnamed)'!r} ({node.op_type})"


class _Graph:
    """The graph's tensors and who uses them, for walking the chain."""

    def __init__(self, model: Any) -> None:
        from onnx import numpy_helper

        graph = model.graph
        self.consts: dict[str, np.ndarray] = {
            t.name: numpy_helper.to_array(t) for t in graph.initializer
        }
        self.nodes = list(graph.node)
        for node in self.nodes:
            if node.op_type == "Constant":
                value = _attrs(node).get("value")
                if value is None:
                    raise ConvertError(f"{_where(node)}: only tensor constants are understood")
                self.consts[node.output[0]] = numpy_helper.to_array(value)
        self.users: dict[str, list[Any]] = {}
        for node in self.nodes:
            for name in node.input:
                if name and name not in self.consts:
                    self.users.setdefault(name, []).append(node)
        inputs = [i for i in graph.input if i.name not in self.consts]
        if len(inputs) != 1:
            raise ConvertError(
                f"the graph has {len(inputs)} inputs besides its weights "
                f"({[i.name for i in inputs]}); an AlexNet has one, the images"
            )
        self.input = inputs[0]
        self.outputs = [o.name for o in graph.output]

    def const(self, node: Any, index: int, what: str) -> np.ndarray:
        if len(node.input) <= index or node.input[index] not in self.consts:
            raise ConvertError(f"{_where(node)}: its {what} must be a stored weight (initializer)")
        return self.consts[node.input[index]]

    def next_node(self, value: str) -> Any | None:
        users = self.users.get(value, [])
        if len(users) > 1:
            kinds = ", ".join(_where(u) for u in users)
            raise ConvertError(
                f"tensor {value!r} feeds {len(users)} nodes ({kinds}): an AlexNet is one chain"
            )
        return users[0] if users else None


def _input_shape(graph: _Graph) -> tuple[int, int, int]:
    dims = graph.input.type.tensor_type.shape.dim
    shape = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    if len(shape) != 4 or shape[1] != 3 or shape[2] is None or shape[2] != shape[3]:
        raise ConvertError(
            f"the input {graph.input.name!r} has shape {shape}: an AlexNet takes square RGB "
            "images (N, 3, S, S) with S given"
        )
    return 3, shape[2], shape[3]


def _check_only(node: Any, attrs: dict[str, Any], allowed: dict[str, Any]) -> None:
    """Refuse attributes this converter does not model (dilations, auto_pad SAME, ...)."""
    for name, value in attrs.items():
        if name in allowed and allowed[name] is not None and value not in allowed[name]:
            raise ConvertError(f"{_where(node)}: {name}={value!r} is not supported")


def _pairs(node: Any, attrs: dict[str, Any], name: str, default: int) -> tuple[int, int]:
    value = list(attrs.get(name, [default, default]))
    if len(value) != 2:
        raise ConvertError(f"{_where(node)}: {name}={value} is not 2-D")
    return int(value[0]), int(value[1])


def _pads(node: Any, attrs: dict[str, Any]) -> tuple[tuple[int, int], tuple[int, int]]:
    """((top, left), (bottom, right)) from ONNX's [top, left, bottom, right]."""
    if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET", b"VALID", "VALID"):
        raise ConvertError(f"{_where(node)}: auto_pad={attrs['auto_pad']!r} is not supported")
    pads = list(attrs.get("pads", [0, 0, 0, 0]))
    if len(pads) != 4:
        raise ConvertError(f"{_where(node)}: pads={pads} is not 2-D")
    return (pads[0], pads[1]), (pads[2], pads[3])


def _conv(graph: _Graph, node: Any, shape: tuple[int, ...]) -> Op:
    attrs = _attrs(node)
    _check_only(node, attrs, {"dilations": ([1, 1],)})
    w = graph.const(node, 1, "weight W")
    b = graph.const(node, 2, "bias B") if len(node.input) > 2 else np.zeros(w.shape[0], w.dtype)
    groups = int(attrs.get("group", 1))
    begin, end = _pads(node, attrs)
    if begin != end or begin[0] != begin[1]:
        raise ConvertError(f"{_where(node)}: padding {begin + end} is not the same on every side")
    stride = _pairs(node, attrs, "strides", 1)
    if w.ndim != 4 or w.shape[2] != w.shape[3] or stride[0] != stride[1]:
        raise ConvertError(f"{_where(node)}: only square kernels and strides, got W {w.shape}")
    if len(shape) != 3 or w.shape[1] * groups != shape[0]:
        raise ConvertError(
            f"{_where(node)}: W {w.shape} with group={groups} does not fit its input {shape}"
        )
    k, s, p = w.shape[2], stride[0], begin[0]
    side = (shape[1] + 2 * p - k) // s + 1
    return Op(
        "conv", node.name, {"kernel": k, "stride": s, "pad": p, "groups": groups}, (w, b),
        (w.shape[0], side, side),
    )  # fmt: skip


def _pool(node: Any, shape: tuple[int, ...]) -> Op:
    attrs = _attrs(node)
    _check_only(node, attrs, {"dilations": ([1, 1],), "storage_order": (0,)})
    k, s = _pairs(node, attrs, "kernel_shape", 0), _pairs(node, attrs, "strides", 1)
    begin, end = _pads(node, attrs)
    if k[0] != k[1] or s[0] != s[1] or begin != (0, 0) or end[0] != end[1] or len(shape) != 3:
        raise ConvertError(
            f"{_where(node)}: only square windows, no padding at the start, got kernel {k}, "
            f"strides {s}, pads {begin + end}"
        )
    h, k, s, extra = shape[1], k[0], s[0], end[0]
    if int(attrs.get("ceil_mode", 0)):
        if extra:
            raise ConvertError(f"{_where(node)}: ceil_mode with padding is not supported")
        side = pooled_size(h, k, s, True)
    else:
        side = (h + extra - k) // s + 1
    floor_side, ceil_side = pooled_size(h, k, s, False), pooled_size(h, k, s, True)
    if side not in (floor_side, ceil_side):
        raise ConvertError(
            f"{_where(node)}: end padding {extra} gives {side}x{side} maps from {h}x{h}; "
            f"pooling here gives {floor_side} (floor) or {ceil_side} (ceil)"
        )
    # ceil: None when both roundings give the same size (either will do)
    ceil = None if floor_side == ceil_side else side == ceil_side
    return Op("pool", node.name, {"size": k, "stride": s, "ceil": ceil}, (), (shape[0], side, side))


def _f32(value: Any) -> float:
    """An ONNX float attribute (stored as float32) as the decimal it was written as: 1e-4,
    not 9.99999974738e-05."""
    return float(str(np.float32(value)))


def _lrn(node: Any, shape: tuple[int, ...], groups: int = 1) -> Op:
    attrs = _attrs(node)
    n = int(attrs["size"])
    if n % 2 == 0:
        raise ConvertError(
            f"{_where(node)}: LRN size {n} is even; ONNX's window (c - {(n - 1) // 2} .. "
            f"c + {n // 2}) is not this library's (c - {n // 2} .. c + {(n - 1) // 2})"
        )
    # ONNX: b = a / (bias + alpha / n * sum a^2)^beta; here alpha multiplies the plain sum
    alpha = _f32(attrs.get("alpha", 1e-4)) / n
    constants = (n, _f32(attrs.get("bias", 1.0)), alpha, _f32(attrs.get("beta", 0.75)))
    return Op("lrn", node.name, {"constants": constants, "groups": groups}, (), shape)


def _grouped_lrn(graph: _Graph, split: Any, shape: tuple[int, ...]) -> tuple[Op, list[Any]]:
    """Split(axis 1, equal) -> one LRN per part -> Concat(axis 1): LRN(groups=parts)."""
    attrs = _attrs(split)
    parts = list(split.output)
    sizes = attrs.get("split")
    if sizes is None and len(split.input) > 1 and split.input[1]:
        sizes = graph.const(split, 1, "split sizes").tolist()
    if attrs.get("axis", 0) != 1 or len(shape) != 3 or shape[0] % len(parts):
        raise ConvertError(f"{_where(split)}: only a split of the channels into equal parts")
    if sizes is not None and len(set(sizes)) != 1:
        raise ConvertError(f"{_where(split)}: unequal parts {sizes}")
    lrns = [graph.next_node(p) for p in parts]
    if any(n is None or n.op_type != "LRN" for n in lrns):
        raise ConvertError(f"{_where(split)}: each part must go to an LRN (grouped LRN)")
    ops = [_lrn(n, shape, len(parts)) for n in lrns]
    if len({op.attrs["constants"] for op in ops}) != 1:
        raise ConvertError(f"{_where(split)}: the parts' LRNs differ")
    concat = graph.next_node(lrns[0].output[0])
    if (
        concat is None
        or concat.op_type != "Concat"
        or _attrs(concat).get("axis") != 1
        or list(concat.input) != [n.output[0] for n in lrns]
    ):
        raise ConvertError(f"{_where(split)}: the parts' LRNs must be joined by one Concat(axis=1)")
    return Op("lrn", split.name, ops[0].attrs, (), shape), [*lrns, concat]


def _fc(graph: _Graph, node: Any, shape: tuple[int, ...]) -> tuple[Op, list[Any]]:
    """Gemm, or MatMul followed by Add: ``x @ W (+ b)``; and the nodes it took."""
    if len(shape) != 1:
        raise ConvertError(f"{_where(node)}: a fully connected layer needs flat input, got {shape}")
    last = node
    if node.op_type == "Gemm":
        attrs = _attrs(node)
        _check_only(node, attrs, {"alpha": (1.0,), "beta": (1.0,), "transA": (0,)})
        w = graph.const(node, 1, "weight B")
        w = w if attrs.get("transB", 0) else w.T
        b = graph.const(node, 2, "bias C") if len(node.input) > 2 else np.zeros(w.shape[0])
    else:  # MatMul (+ Add)
        w = graph.const(node, 1, "weight").T
        b = np.zeros(w.shape[0], w.dtype)
        add = graph.next_node(node.output[0])
        if add is not None and add.op_type == "Add":
            b, last = graph.const(add, 1, "bias"), add
    b = np.broadcast_to(np.asarray(b).reshape(-1), (w.shape[0],))
    if w.ndim != 2 or w.shape[1] != shape[0]:
        raise ConvertError(f"{_where(node)}: weight {w.shape} does not fit its {shape[0]} inputs")
    taken = [node] if last is node else [node, last]
    return Op("fc", node.name, {}, (np.ascontiguousarray(w), b.copy()), (w.shape[0],)), taken


def _flatten(graph: _Graph, node: Any, shape: tuple[int, ...]) -> Op:
    size = math.prod(shape)
    if node.op_type == "Flatten":
        if _attrs(node).get("axis", 1) != 1:
            raise ConvertError(f"{_where(node)}: only Flatten(axis=1)")
    else:  # Reshape: a shape attribute (opset < 5) or a constant input
        attrs = _attrs(node)
        target = attrs.get("shape")
        target = list(target) if target is not None else graph.const(node, 1, "shape").tolist()
        if len(target) != 2 or target[1] not in (-1, size) or target[0] not in (-1, 0, 1):
            raise ConvertError(f"{_where(node)}: reshape to {target}: only to (N, {size})")
    return Op("flatten", node.name, {}, (), (size,))


_PASS = {"Dropout", "Identity"}


@dataclass
class Chain:
    """What :func:`read_chain` found: the layers, the input size, whether a Softmax ended
    the graph, and the mean image (S, S, 3) a leading ``Sub`` took from the images."""

    ops: list[Op]
    size: int
    softmax: bool
    mean: np.ndarray | None


def read_chain(model: Any) -> Chain:
    """The layers on the graph's path from its input to its output. Raises
    :class:`ConvertError` naming the node it cannot read."""
    graph = _Graph(model)
    shape: tuple[int, ...] = _input_shape(graph)
    size = shape[1]
    ops: list[Op] = []
    softmax = False
    mean = None
    value = graph.input.name
    seen: set[int] = set()
    first = graph.next_node(value)
    if first is not None and first.op_type == "Sub" and first.input[0] == value:
        # `python -m minialexnet.export --raw-input`: the mean image, subtracted in the graph
        const = graph.const(first, 1, "mean")
        if const.shape != (1, 3, size, size):
            raise ConvertError(f"{_where(first)}: only a mean image of shape (1, 3, S, S)")
        mean = const[0].transpose(1, 2, 0)
        seen.add(id(first))
        value = first.output[0]
    while (node := graph.next_node(value)) is not None:
        if softmax:
            raise ConvertError(f"{_where(node)} after the Softmax: the Softmax must come last")
        seen.add(id(node))
        kind = node.op_type
        taken = [node]
        if kind == "Conv":
            op = _conv(graph, node, shape)
        elif kind in ("Relu", "Tanh"):
            op = Op(kind.lower(), node.name, {}, (), shape)
        elif kind == "LRN":
            op = _lrn(node, shape)
        elif kind == "Split":
            op, taken = _grouped_lrn(graph, node, shape)
        elif kind == "MaxPool":
            op = _pool(node, shape)
        elif kind in ("Flatten", "Reshape"):
            op = _flatten(graph, node, shape)
        elif kind in ("Gemm", "MatMul"):
            op, taken = _fc(graph, node, shape)
        elif kind in ("AveragePool", "GlobalAveragePool"):
            attrs = _attrs(node)
            same = kind == "GlobalAveragePool" and shape[1:] == (1, 1)
            same |= (
                list(attrs.get("kernel_shape", [])) == [1, 1]
                and not any(attrs.get("pads", [0]))
                and list(attrs.get("strides", [1, 1])) == [1, 1]
            )
            if not same:  # torchvision's adaptive pooling to 6x6, met at 6x6: nothing to do
                raise ConvertError(f"{_where(node)}: only an average pooling that keeps the maps")
            value = node.output[0]
            continue
        elif kind == "Softmax":
            softmax = True
            value = node.output[0]
            continue
        elif kind in _PASS:
            value = node.output[0]
            continue
        elif "Quantize" in kind or kind.startswith("QLinear") or kind == "ConvInteger":
            raise ConvertError(
                f"{_where(node)}: a quantised (int8) model; convert the float32 file instead"
            )
        else:
            raise ConvertError(
                f"{_where(node)}: {kind} is not part of an AlexNet; this converter reads Conv, "
                "Relu, Tanh, LRN, MaxPool, Flatten/Reshape, Gemm/MatMul+Add, Dropout, Softmax"
            )
        ops.append(op)
        shape = op.out_shape
        seen.update(id(n) for n in taken)
        value = taken[-1].output[0]
    if value not in graph.outputs:
        raise ConvertError(f"the chain ends at {value!r}, which is not an output of the graph")
    extra = [n for n in graph.nodes if n.op_type != "Constant" and id(n) not in seen]
    if extra:
        raise ConvertError(f"{_where(extra[0])} is not on the path from the input to the output")
    if not ops or ops[-1].kind != "fc":
        raise ConvertError("the graph does not end in a fully connected layer (the classifier)")
    return Chain(ops, size, softmax, mean)
