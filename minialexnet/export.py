"""``python -m minialexnet.export CKPT OUT.onnx``: a trained model as an ONNX file.

ONNX is a file format for networks that many runtimes execute (onnxruntime, OpenCV's
dnn module, TensorRT, the browsers' ONNX runtimes, ...), so a model trained here runs
where NumPy and this library are not. The file is written with the ``onnx`` package's
``helper`` and ``numpy_helper`` (never protobuf by hand) and checked with
``onnx.checker`` (full check: shapes inferred) before it is written.

One network from the towers. The paper's two towers on two GPUs [3.2] compute the
same function as one network with grouped convolutions (:mod:`minialexnet.merged`):
:func:`~minialexnet.merged.flat_layers` gives that network as one chain of ordinary
layers, ``conv1`` with both towers' kernels, ``conv2``, ``conv4``, ``conv5`` with
``groups=2``, each tower's LRN as an LRN with ``groups=2``. A model on a GPU or on two
devices is first rebuilt on the CPU from its ``config`` and ``state_dict()``. Each
layer becomes::

    this library                          ONNX (default opset 13)
    Conv2d(groups=g)                      Conv  kernel_shape, strides, pads [p, p, p, p], group g, B
    ReLU / Tanh                           Relu / Tanh
    LRN(n, k, alpha, beta)                LRN   size n, alpha n * alpha, beta, bias k
    LRN(..., groups=g), g > 1             Split (axis 1, g equal parts) -> g LRNs -> Concat (axis 1)
    MaxPool2d(size, stride, ceil_mode)    MaxPool  kernel_shape, strides, ceil_mode
    Flatten                               Flatten axis 1
    Linear (out = x @ w.T + b)            Gemm  transB 1 (B is w as stored, C is b)
    Dropout                               nothing: an inference graph (test-time dropout is the
                                          identity; a "paper"-mode dropout becomes Mul by 1 - p)

LRN's alpha. Here ``b = a / (k + alpha * sum a^2)^beta``, alpha multiplying the plain
sum over the window (the paper's [3.3]); ONNX, like Caffe and PyTorch, divides its
alpha by the window size, so the file holds ``n * alpha``. ONNX's window for an even
size sits one channel later than this library's, so only odd sizes (the paper's 5) are
exported; an even one is refused.

The graph: input ``"images"`` float32 (N, 3, S, S), output ``"logits"`` float32
(N, classes): scores before the softmax (apply a softmax over axis 1 for probabilities).
The input is this library's convention: RGB, raw 0-255 pixels minus the training set's
mean image, i.e. what :func:`minialexnet.data.eval_transform` gives. With
``preprocess=True`` (``--raw-input``) the graph subtracts the centre S x S window of the
mean image itself and takes raw 0-255 RGB pixels (N, 3, S, S). The weights are float32
(a float64 model is cast to float32). The file's metadata_props hold
``minialexnet.config`` (the model's config, JSON), ``minialexnet.classes`` (the class
names, JSON, when known), ``minialexnet.input`` (the input convention in words) and
``minialexnet.image_size`` (the side a photo's shorter side is resized to before the
centre crop, when known: :mod:`minialexnet.convert` restores it).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import __version__
from .backend import to_numpy
from .checkpoint import CheckpointError, write_atomically
from .data import Stats
from .evaluate import load_model
from .layers import LRN, Conv2d, Dropout, Flatten, Linear, MaxPool2d, ReLU, Tanh
from .merged import flat_layers
from .models import model_from_config
from .towers import output_shape

if TYPE_CHECKING:
    import onnx

__all__ = [
    "DEFAULT_OPSET",
    "MIN_OPSET",
    "ExportError",
    "export_onnx",
    "onnx_model",
    "layers_to_onnx",
    "main",
]

DEFAULT_OPSET = 13
"""The default ONNX opset: from 13 on, Split takes its part sizes as an input."""
MIN_OPSET = 10
"""The oldest opset that can hold these networks: MaxPool's ceil_mode came with opset 10."""
INSTALL_HINT = "pip install 'minialexnet[onnx]' (or: pip install onnx)"


class ExportError(ValueError):
    """A model (or an option) that cannot be exported: ``str(err)`` says what and how to fix it."""


def _onnx() -> Any:
    """The ``onnx`` package, or an ImportError saying how to install it."""
    try:
        import onnx
        import onnx.numpy_helper  # noqa: F401 -- a submodule, loaded explicitly
    except ImportError as exc:
        raise ImportError(f"minialexnet.export needs the onnx package: {INSTALL_HINT}") from exc
    return onnx


def _check_opset(opset: Any) -> int:
    onnx = _onnx()
    newest = onnx.defs.onnx_opset_version()
    if isinstance(opset, bool) or not isinstance(opset, (int, np.integer)):
        raise ExportError(f"opset must be an int from {MIN_OPSET} to {newest}, got {opset!r}")
    if not MIN_OPSET <= opset <= newest:
        raise ExportError(
            f"opset {opset} is not supported: choose one from {MIN_OPSET} (MaxPool's ceil_mode "
            f"needs 10) to {newest} (the newest this onnx {onnx.__version__} knows); "
            f"default {DEFAULT_OPSET}"
        )
    return int(opset)


class _Graph:
    """Nodes and float32 initializers of a chain, built one layer at a time.

    ``x`` is the name of the tensor the chain has reached; ``shape`` its shape with a
    batch of 1. Node names are the layers' names (``"conv1"``), a node's output tensor
    is named after the node, its parameters ``"<layer>.w"``, ``"<layer>.b"``.
    """

    def __init__(self, input_name: str, shape: tuple[int, ...], opset: int) -> None:
        self.onnx = _onnx()
        self.opset = opset
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.x = input_name
        self.shape = shape

    def constant(self, name: str, array: np.ndarray, dtype: Any = np.float32) -> str:
        """An initializer ``name`` holding ``array`` as ``dtype``; its name."""
        host = np.ascontiguousarray(to_numpy(array), dtype=dtype)
        if host.dtype.kind == "f" and not np.isfinite(host).all():
            raise ExportError(
                f"{name}: holds NaN or infinite values (a diverged run?); export the weights of "
                "a healthy checkpoint, e.g. the run's best.npz"
            )
        self.initializers.append(self.onnx.numpy_helper.from_array(host, name))
        return name

    def node(self, op: str, name: str, inputs: list[str], **attrs: Any) -> str:
        """Append ``op`` named ``name`` reading ``inputs``; its one output becomes ``x``."""
        self.nodes.append(self.onnx.helper.make_node(op, inputs, [name], name=name, **attrs))
        self.x = name
        return name

    # -- one method per kind of layer ---------------------------------------------------------
    def add(self, name: str, layer: Any) -> None:
        """The ONNX nodes of ``layer`` after the chain so far."""
        out_shape = output_shape(layer, self.shape)
        if isinstance(layer, Conv2d):
            self._conv(name, layer)
        elif isinstance(layer, ReLU):
            self.node("Relu", name, [self.x])
        elif isinstance(layer, Tanh):
            self.node("Tanh", name, [self.x])
        elif isinstance(layer, LRN):
            self._lrn(name, layer)
        elif isinstance(layer, MaxPool2d):
            self._pool(name, layer, out_shape)
        elif isinstance(layer, Flatten):
            self.node("Flatten", name, [self.x], axis=1)
        elif isinstance(layer, Linear):
            self._linear(name, layer)
        elif isinstance(layer, Dropout):
            # inference graph: "inverted" dropout is the identity at test time; "paper"
            # dropout scales by 1 - p instead
            if layer.mode == "paper":
                scale = self.constant(f"{name}.scale", np.array(1.0 - layer.p))
                self.node("Mul", name, [self.x, scale])
        else:
            raise ExportError(
                f"{name}: a {type(layer).__name__} layer has no ONNX export (only Conv2d, ReLU, "
                "Tanh, LRN, MaxPool2d, Flatten, Linear and Dropout have)"
            )
        self.shape = out_shape

    def _conv(self, name: str, layer: Conv2d) -> None:
        (ph, pw), (sh, sw) = layer.pad, layer.stride
        inputs = [self.x, self.constant(f"{name}.w", layer.params["w"])]
        if "b" in layer.params:
            inputs.append(self.constant(f"{name}.b", layer.params["b"]))
        self.node("Conv", name, inputs, kernel_shape=list(layer.kernel_size),
                  strides=[sh, sw], pads=[ph, pw, ph, pw], group=layer.groups)  # fmt: skip

    def _linear(self, name: str, layer: Linear) -> None:
        w = self.constant(f"{name}.w", layer.params["w"])  # (out, in): Gemm's B with transB
        if "b" in layer.params:
            b = self.constant(f"{name}.b", layer.params["b"])
        else:  # Gemm's C is optional only from opset 11 on
            b = self.constant(f"{name}.b", np.zeros(layer.out_features))
        self.node("Gemm", name, [self.x, w, b], transB=1)

    def _pool(self, name: str, layer: MaxPool2d, out_shape: tuple[int, ...]) -> None:
        # ONNX's output size (no padding): floor or ceil of (H - size) / stride, plus 1. Ours
        # drops a last window that would start past the edge (only when stride > size); the
        # runtimes differ there, so such a pooling is refused.
        for axis, (size, stride) in enumerate(zip(layer.size, layer.stride, strict=True)):
            h = self.shape[2 + axis]
            steps = -(-(h - size) // stride) if layer.ceil_mode else (h - size) // stride
            if steps + 1 != out_shape[2 + axis]:
                raise ExportError(
                    f"{name}: ceil-mode pooling of {h} pixels with window {size} and stride "
                    f"{stride} leaves a last window that starts past the edge, which ONNX "
                    "runtimes size differently; use a window at least as large as the stride"
                )
        attrs: dict[str, Any] = {"kernel_shape": list(layer.size), "strides": list(layer.stride)}
        if layer.ceil_mode:
            attrs["ceil_mode"] = 1
        self.node("MaxPool", name, [self.x], **attrs)

    def _lrn(self, name: str, layer: LRN) -> None:
        n = layer.n
        if n % 2 == 0:
            raise ExportError(
                f"{name}: LRN with an even window (n={n}) has no ONNX equivalent: ONNX's window "
                f"is channels c - {(n - 1) // 2} .. c + {n // 2}, this library's c - {n // 2} .. "
                f"c + {(n - 1) // 2} (and onnxruntime refuses an even size); only an odd n (the "
                "paper's 5) can be exported"
            )
        # This library: b = a / (k + alpha * sum a^2)^beta, the PLAIN sum over the window.
        # ONNX (and Caffe): b = a / (bias + alpha / size * sum a^2)^beta, so alpha is n * ours.
        attrs = {"size": n, "alpha": layer.alpha * n, "beta": layer.beta, "bias": layer.k}
        groups = layer.groups
        if groups == 1:
            self.node("LRN", name, [self.x], **attrs)
            return
        channels = self.shape[1]
        if channels % groups:
            raise ExportError(
                f"{name}: LRN with groups={groups} on {channels} channels (not divisible)"
            )
        parts = [f"{name}.in{i}" for i in range(groups)]
        sizes = [channels // groups] * groups
        if self.opset >= 13:  # the part sizes are an input from opset 13 on
            split = self.constant(f"{name}.sizes", np.array(sizes), dtype=np.int64)
            node = self.onnx.helper.make_node(
                "Split", [self.x, split], parts, name=f"{name}.split", axis=1
            )
        else:
            node = self.onnx.helper.make_node(
                "Split", [self.x], parts, name=f"{name}.split", axis=1, split=sizes
            )
        self.nodes.append(node)
        normed = [self.node("LRN", f"{name}.lrn{i}", [p], **attrs) for i, p in enumerate(parts)]
        self.node("Concat", name, normed, axis=1)

    def model(
        self, input_name: str, input_shape: Sequence[Any], output_name: str, doc: str
    ) -> onnx.ModelProto:
        """The ModelProto of the chain: the last tensor renamed ``output_name``, checked."""
        onnx, helper = self.onnx, self.onnx.helper
        if not self.nodes or self.x == input_name:
            self.node("Identity", "output", [self.x])
        self.nodes[-1].output[0] = output_name
        floats = onnx.TensorProto.FLOAT
        graph = helper.make_graph(
            self.nodes,
            "minialexnet",
            [helper.make_tensor_value_info(input_name, floats, list(input_shape))],
            [helper.make_tensor_value_info(output_name, floats, ["N", *self.shape[1:]])],
            initializer=self.initializers,
            doc_string=doc,
        )
        opsets = [helper.make_opsetid("", self.opset)]
        proto = helper.make_model(
            graph, opset_imports=opsets, producer_name="minialexnet", producer_version=__version__
        )
        # the oldest IR version that carries this opset: readable by as many runtimes as can be
        proto.ir_version = helper.find_min_ir_version_for(opsets)
        proto.doc_string = doc
        onnx.checker.check_model(proto, full_check=True)  # also infers every shape (strict)
        return proto


def layers_to_onnx(
    layers: Sequence[tuple[str, Any]],
    input_shape: Sequence[int],
    *,
    opset: int = DEFAULT_OPSET,
    input_name: str = "x",
    output_name: str = "y",
) -> onnx.ModelProto:
    """A chain of layers ``[(name, layer)]`` as a checked ONNX model (not written).

    ``input_shape``: the input's shape without the batch axis, e.g. ``(96, 27, 27)``;
    the batch axis is the symbolic ``"N"``. Float32 in and out. What :func:`onnx_model`
    uses for a whole network; also for a single layer (the tests compare one LRN).
    """
    opset = _check_opset(opset)
    shape = (1, *(int(s) for s in input_shape))
    graph = _Graph(input_name, shape, opset)
    for name, layer in layers:
        graph.add(name, layer)
    return graph.model(input_name, ["N", *shape[1:]], output_name, "a minialexnet layer chain")


def _host_layers(model: Any) -> list[tuple[str, Any]]:
    """``flat_layers`` of ``model``, on the host: rebuilt on the CPU where it is elsewhere."""
    if all(d.name == "cpu" for d in model.devices):
        return flat_layers(model)
    try:
        copy = model_from_config(model.config)
        copy.load_state_dict(model.state_dict())
    except (KeyError, ValueError) as exc:
        raise ExportError(
            f"cannot rebuild the model on the CPU from its config {model.config} ({exc}); "
            "export a model made by minialexnet.models (or its checkpoint)"
        ) from exc
    return flat_layers(copy)


def _input_text(size: int, preprocess: bool, image_size: int | None = None) -> str:
    resize = (
        f"a photo's shorter side resized to {image_size}, then its centre {size}x{size} crop"
        if image_size and image_size != size
        else f"the image resized to {size}x{size}"
    )
    if preprocess:
        return (
            f"images: float32 (N, 3, {size}, {size}), RGB, raw 0-255 pixels ({resize}, "
            "channels first); the graph subtracts the training set's mean image itself"
        )
    return (
        f"images: float32 (N, 3, {size}, {size}), RGB, raw 0-255 pixels ({resize}) minus the "
        f"training set's mean image (its centre {size}x{size} window), channels first: what "
        "minialexnet.data.eval_transform gives; no scaling to 0-1, no per-channel "
        "normalisation"
    )


def onnx_model(
    model: Any,
    *,
    opset: int = DEFAULT_OPSET,
    stats: Stats | None = None,
    preprocess: bool = False,
    classes: Sequence[str] | None = None,
    image_size: int | None = None,
) -> onnx.ModelProto:
    """``model`` (any network of :mod:`minialexnet.models`) as a checked ONNX model, not written.

    See :func:`export_onnx` for the arguments; raises :class:`ExportError` for a model or
    an option that cannot be exported.
    """
    opset = _check_opset(opset)
    size = int(model.input_size)
    arch = model.config.get("arch", "network")
    graph = _Graph("images", (1, 3, size, size), opset)
    if preprocess:
        if stats is None:
            raise ExportError(
                "preprocess=True needs the training set's statistics (stats=...; a checkpoint "
                "holds them, minialexnet.evaluate.load_model returns them)"
            )
        h, w, _ = stats.mean.shape
        if h < size or w < size:
            raise ExportError(
                f"the mean image is {h}x{w}, smaller than the model's {size}x{size} input: "
                "these statistics belong to other data"
            )
        top, left = (h - size) // 2, (w - size) // 2  # eval_transform's centre window
        window = stats.mean[top : top + size, left : left + size].transpose(2, 0, 1)[None]
        mean = graph.constant("mean_image", window)
        graph.node("Sub", "preprocess", ["images", mean])
    for name, layer in _host_layers(model):
        graph.add(name, layer)
    outputs = graph.shape[-1]
    text = _input_text(size, preprocess, image_size)
    doc = (
        f"minialexnet {arch} ({model.num_parameters():,} parameters). Input {text}. Output "
        f"logits: float32 (N, {outputs}), scores before the softmax: there is no softmax in "
        "the graph, apply one over axis 1 for class probabilities."
    )
    proto = graph.model("images", ["N", 3, size, size], "logits", doc)
    props = {"minialexnet.config": json.dumps(model.config, sort_keys=True),
             "minialexnet.input": text}  # fmt: skip
    if image_size:  # predict's resize: convert restores it
        props["minialexnet.image_size"] = str(int(image_size))
    if classes is not None:
        names = list(classes)
        if len(names) != outputs or not all(isinstance(c, str) for c in names):
            raise ExportError(
                f"classes must be {outputs} names (one per output of {arch}), got "
                f"{len(names)}: {names[:4]}{' ...' if len(names) > 4 else ''}"
            )
        props["minialexnet.classes"] = json.dumps(names)
    _onnx().helper.set_model_props(proto, props)
    return proto


def export_onnx(
    model: Any,
    path: str | os.PathLike[str],
    *,
    opset: int = DEFAULT_OPSET,
    stats: Stats | None = None,
    preprocess: bool = False,
    classes: Sequence[str] | None = None,
    image_size: int | None = None,
) -> onnx.ModelProto:
    """Write ``model`` to the ONNX file ``path``, atomically; returns the written ModelProto.

    Args:
        model: any network of :mod:`minialexnet.models` (two towers or one, on any
            devices; float32 or float64, written as float32).
        path: the ``.onnx`` file; written under a temporary name in the same folder, then
            renamed, so an error leaves nothing (and an existing file untouched).
        opset: the ONNX opset, :data:`MIN_OPSET` to the newest the ``onnx`` package knows
            (default :data:`DEFAULT_OPSET`).
        stats: the training set's statistics (needed for ``preprocess``).
        preprocess: subtract the mean image in the graph, so that it takes raw 0-255 RGB
            pixels; by default it takes them minus the mean image (``eval_transform``).
        classes: the class names, stored in the metadata (``"minialexnet.classes"``).
        image_size: the side a photo's shorter side is resized to before the centre crop
            (a checkpoint's ``run.image_size``), stored as ``"minialexnet.image_size"``.

    The graph maps ``"images"`` float32 (N, 3, S, S) to ``"logits"`` float32 (N, classes):
    no softmax. Raises :class:`ExportError` (a ValueError) for what cannot be exported
    (an even LRN window, a bad opset, ...), OSError where ``path`` cannot be written.
    """
    proto = onnx_model(
        model, opset=opset, stats=stats, preprocess=preprocess, classes=classes,
        image_size=image_size,
    )  # fmt: skip
    data = proto.SerializeToString()
    write_atomically(path, lambda f: f.write(data))
    return proto


def main(argv: list[str] | None = None) -> int:
    """``python -m minialexnet.export CHECKPOINT OUT.onnx``: write the ONNX file; 0 on success."""
    parser = argparse.ArgumentParser(
        prog="python -m minialexnet.export", description=__doc__.splitlines()[0]
    )
    parser.add_argument("checkpoint", help="best.npz or checkpoint.npz written by train")
    parser.add_argument("output", help="the ONNX file to write, e.g. alexnet.onnx")
    parser.add_argument(
        "--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset (default {DEFAULT_OPSET})"
    )
    parser.add_argument(
        "--raw-input",
        action="store_true",
        help="subtract the mean image in the graph: it takes raw 0-255 RGB pixels (N, 3, S, S)",
    )
    args = parser.parse_args(argv)

    # bad input (a file that is not a checkpoint, an output that cannot be written, a model
    # ONNX cannot hold) ends with its message and exit status 2; anything else is a bug
    # and keeps its traceback
    if Path(args.output).resolve() == Path(args.checkpoint).resolve():
        return _bad_input(f"{args.output} is the checkpoint itself: give another output path")
    try:
        _onnx()
        model, stats, meta = load_model(args.checkpoint)
    except (ImportError, CheckpointError) as exc:
        return _bad_input(exc)
    classes = meta.get("classes")
    try:
        export_onnx(
            model,
            args.output,
            opset=args.opset,
            stats=stats,
            preprocess=args.raw_input,
            classes=classes if isinstance(classes, list) else None,
            image_size=meta.get("run", {}).get("image_size"),
        )
    except ExportError as exc:
        return _bad_input(f"cannot export {args.checkpoint}: {exc}")
    except OSError as exc:
        return _bad_input(
            f"cannot write {args.output}: {exc.strerror or exc}; give a path in an existing "
            "folder you can write to"
        )
    size = model.input_size
    pixels = "raw 0-255 RGB" if args.raw_input else "RGB minus the mean image"
    print(
        f"wrote {args.output}: ONNX opset {args.opset}, input images float32 (N, 3, {size}, "
        f"{size}) ({pixels}), output logits (N, {model.config['num_classes']}), "
        f"{model.num_parameters():,} parameters"
    )
    return 0


def _bad_input(problem: Exception | str) -> int:
    """Print what was wrong with the command line's input; the exit status 2."""
    print(f"minialexnet.export: {problem}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
