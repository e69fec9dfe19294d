"""Model parallelism as the paper did it: two towers, one per GPU [3.2].

AlexNet did not fit on one 3 GB GTX 580, so the paper put half of the kernels
of every layer on each of two GPUs. Most layers see only the maps of their
own GPU; at three places (into conv3, fc6 and fc7) every neuron sees the
outputs of BOTH GPUs. Here a network is a chain of stages, and between the
cross-GPU points an activation is a *list*, one array per tower, each on its
tower's device::

    x (host) --Broadcast--> [xa, xb]                    the whole image to each tower
             --Towers-----> [conv1..pool2 (a), (b)]     each tower on its own device
             --Exchange---> [cat(a, b) on A, cat(a, b) on B]
             --Towers-----> [conv3..pool5 (a), (b)] ... --Gather--> one array on device 0
             --OnDevice---> fc8 -> logits

The only arrays that cross devices are the ones ``Broadcast``, ``Exchange`` and
``Gather`` move, explicitly, with ``Device.asarray``. Each stage has
``forward(x, train)``, ``backward(dout)``, ``parameters()``, ``zero_grad()``,
``named_layers()`` and ``describe(label, shapes)`` (rows for a summary table);
:class:`TwoTowerNet` chains them.

Two towers on ONE device compute exactly the function of a single network in
which conv2, conv4 and conv5 are grouped convolutions (``groups=2``), LRN runs
within each half of the channels, and conv3, fc6, fc7 are dense: the tests
build both and compare them.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from typing import Any

import numpy as np

from .backend import Device, to_numpy
from .concurrency import run_per_device
from .functional.pool import pooled_size
from .layers import LRN, Conv2d, Dropout, Flatten, Linear, MaxPool2d, Sequential

__all__ = [
    "TOWER_NAMES",
    "Broadcast",
    "Towers",
    "Exchange",
    "Gather",
    "JoinedLRN",
    "OnDevice",
    "TwoTowerNet",
    "output_shape",
]

TOWER_NAMES = ("a", "b")
"""Tower ``a`` lives on ``devices[0]``, tower ``b`` on ``devices[-1]`` (the paper's GPU 1 and 2)."""

Shape = tuple[int, ...]
Row = tuple[str, Shape, int, str]  # (layer name, output shape, parameter count, device name)


# -- the two moves: concatenate along axis 1 onto one device, and the adjoint --------------------


def _concat_on(device: Device, parts: Sequence[Any]) -> Any:
    """``concatenate(parts, axis=1)`` on ``device``, every part moved there first."""
    with device:
        return device.xp.concatenate([device.asarray(p) for p in parts], axis=1)


def _split(x: Any, sizes: Sequence[int]) -> list[Any]:
    """The pieces (views) of ``x`` along axis 1 with the given sizes: undoes concatenation.

    The views are strided; ``Device.asarray`` makes each contiguous on ``x``'s device
    before it moves to another (CuPy copies only contiguous arrays between GPUs).
    """
    bounds = np.cumsum([0, *sizes])
    if bounds[-1] != x.shape[1]:
        raise ValueError(
            f"split: axis 1 has {x.shape[1]} entries, the pieces add up to {bounds[-1]}"
        )
    return [x[:, lo:hi] for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]


def _sum_on(device: Device, parts: Sequence[Any]) -> Any:
    """``sum(parts)`` on ``device``, every part moved there first."""
    with device:
        total = device.asarray(parts[0]).copy()
        for p in parts[1:]:
            total += device.asarray(p)
        return total


def _check_list(what: str, xs: Any, n: int) -> None:
    if not isinstance(xs, (list, tuple)) or len(xs) != n:
        got = f"a list of {len(xs)}" if isinstance(xs, (list, tuple)) else type(xs).__name__
        raise ValueError(f"{what}: expected a list of {n} arrays, one per tower, got {got}")


# -- shapes, for summaries ----------------------------------------------------------------------


def output_shape(layer: Any, shape: Shape) -> Shape:
    """The output shape of ``layer`` for an input of ``shape`` (no computation).

    Conv2d: ``(H + 2 pad - K) // stride + 1``; MaxPool2d: ``(H - size) // stride + 1``
    (rounded up in ceil mode, :func:`~minialexnet.functional.pool.pooled_size`);
    Flatten: ``(N, C*H*W)``; Linear: ``(..., out_features)``; a Sequential: its layers
    in turn; everything else (ReLU, LRN, Dropout, ...) keeps the shape.
    """
    if isinstance(layer, Sequential):
        for sub in layer:
            shape = output_shape(sub, shape)
        return shape
    if isinstance(layer, Conv2d):
        kernel, pad = layer.kernel_size, layer.pad
        hw = [(shape[2 + i] + 2 * pad[i] - kernel[i]) // layer.stride[i] + 1 for i in (0, 1)]
        return (shape[0], layer.out_channels, *hw)
    if isinstance(layer, MaxPool2d):
        hw = [
            pooled_size(shape[2 + i], layer.size[i], layer.stride[i], layer.ceil_mode)
            for i in (0, 1)
        ]
        return (shape[0], shape[1], *hw)
    if isinstance(layer, Flatten):
        return (shape[0], math.prod(shape[1:]))
    if isinstance(layer, Linear):
        return (*shape[:-1], layer.out_features)
    return shape


def _count(layer: Any) -> int:
    return sum(int(p.size) for _, p, _ in layer.parameters())


# -- the stages ---------------------------------------------------------------------------------


class _Move:
    """What the moving stages (Broadcast, Exchange, Gather) share: no parameters of their own."""

    def parameters(self) -> Iterator[tuple[str, Any, Any]]:
        """None: moving data has no parameters."""
        return iter(())

    def zero_grad(self) -> None:
        """Nothing to clear."""
        pass

    def named_layers(self) -> Iterator[tuple[str, Any, Device]]:
        """None: a move is not a layer."""
        return iter(())


class Broadcast(_Move):
    """The input to every tower: ``[x on devices[0], x on devices[1]]`` (cast to ``dtype``).

    The paper's conv1 on each GPU sees the whole image [3.2]. ``x`` may be a host
    array. Backward: each tower's input gradient is moved to ``devices[0]`` and
    summed there (the input feeds both towers, so its gradient is the sum).
    """

    def __init__(self, devices: Sequence[Device], dtype: Any = None) -> None:
        self.devices = [Device(d) for d in devices]
        self.dtype = dtype

    def forward(self, x: Any, train: bool = True) -> list[Any]:
        """``[x on devices[0], x on devices[1]]``, cast to ``dtype``."""
        outs = []
        for dev in self.devices:
            with dev:
                outs.append(dev.asarray(x, dtype=self.dtype))
        return outs

    def backward(self, douts: list[Any]) -> Any:
        """dL/dx on ``devices[0]``: the towers' input gradients, moved there and summed
        (None when the towers computed none: ``TwoTowerNet.input_grad`` False)."""
        _check_list("Broadcast.backward", douts, len(self.devices))
        if any(d is None for d in douts):
            return None
        return _sum_on(self.devices[0], douts)

    def describe(self, label: str, shape: Any) -> tuple[list[Row], list[Shape]]:
        """Summary rows (one per tower) and the shapes after this stage."""
        rows = [
            (f"{t}.{label}", shape, 0, d.name)
            for t, d in zip(TOWER_NAMES, self.devices, strict=False)
        ]
        return rows, [shape] * len(self.devices)


class Towers:
    """One sub-network per tower, each applied to its own input on its own device.

    ``forward([xa, xb]) = [tower_a(xa), tower_b(xb)]``, tower ``t`` run inside
    ``with devices[t]:`` (its layers' parameters live there); on the CPU the two
    towers run at the same time, one per core (:mod:`minialexnet.concurrency`).
    Nothing crosses devices here. Parameters are named ``"<tower>.<layer>.<param>"``
    (``"a.conv1.w"``, ``"b.fc6.b"``).
    """

    def __init__(
        self,
        towers: Sequence[Sequential],
        devices: Sequence[Device],
        names: Sequence[str] = TOWER_NAMES,
    ) -> None:
        if not len(towers) == len(devices) <= len(names):
            raise ValueError(
                f"Towers: need one device per tower (at most {len(names)} towers), got "
                f"{len(towers)} towers and {len(devices)} devices"
            )
        self.towers = list(towers)
        self.devices = [Device(d) for d in devices]
        self.names = list(names[: len(towers)])

    def forward(self, xs: list[Any], train: bool = True) -> list[Any]:
        """``[tower_t(x_t) for each tower t]``, each inside ``with devices[t]:``."""
        _check_list("Towers.forward", xs, len(self.towers))
        jobs = [partial(t.forward, x, train=train) for t, x in zip(self.towers, xs, strict=True)]
        return run_per_device(self.devices, jobs)

    def backward(self, douts: list[Any]) -> list[Any]:
        """``[tower_t.backward(dout_t)]``: each tower's input gradient, on its own device."""
        _check_list("Towers.backward", douts, len(self.towers))
        jobs = [partial(t.backward, d) for t, d in zip(self.towers, douts, strict=True)]
        return run_per_device(self.devices, jobs)

    def parameters(self) -> Iterator[tuple[str, Any, Any]]:
        """``(name, param, grad)`` of every tower, named ``"<tower>.<layer>.<param>"``."""
        for name, tower in zip(self.names, self.towers, strict=True):
            for pname, param, grad in tower.parameters():
                yield f"{name}.{pname}", param, grad

    def zero_grad(self) -> None:
        """Set every tower's gradients to zero, on its own device."""
        for tower, dev in zip(self.towers, self.devices, strict=True):
            with dev:
                tower.zero_grad()

    def first_layers(self) -> list[Any]:
        """The first layer of each tower: the layers that see this stage's input."""
        return [tower.layers[0] for tower in self.towers]

    def named_layers(self) -> Iterator[tuple[str, Any, Device]]:
        """``("<tower>.<layer>", layer, device)`` for every layer of every tower."""
        for name, tower, dev in zip(self.names, self.towers, self.devices, strict=True):
            for lname, layer in tower.named_layers():
                yield f"{name}.{lname}", layer, dev

    def describe(self, label: str, shapes: list[Shape]) -> tuple[list[Row], list[Shape]]:
        """Summary rows (every layer of every tower) and each tower's output shape."""
        rows, outs = [], []
        for name, tower, dev, shape in zip(
            self.names, self.towers, self.devices, shapes, strict=True
        ):
            for lname, layer in tower.named_layers():
                shape = output_shape(layer, shape)
                rows.append((f"{name}.{lname}", shape, _count(layer), dev.name))
            outs.append(shape)
        return rows, outs


class Exchange(_Move):
    """The paper's cross-GPU connection: every tower receives ALL towers' outputs [3.2].

    Forward: tower ``t`` gets ``concatenate([x_a, x_b], axis=1)`` (channels or
    features, always in tower order a, b), every piece moved to ``devices[t]``.
    Backward: tower ``t``'s gradient ``g_t`` is split back into the pieces that
    came from each source tower ``s``; each piece goes home to ``devices[s]`` and
    the pieces are summed there: ``dx_s = sum_t g_t[:, piece s]`` (``x_s`` was
    used by every tower). With one device the moves do nothing and this is
    plain concatenation: the layer after it is dense over both towers.
    """

    def __init__(self, devices: Sequence[Device]) -> None:
        self.devices = [Device(d) for d in devices]
        self.sizes: list[int] | None = None

    def forward(self, xs: list[Any], train: bool = True) -> list[Any]:
        """Every tower gets all towers' outputs, concatenated in tower order, on its device."""
        _check_list("Exchange.forward", xs, len(self.devices))
        ### BEGIN SOLUTION
        self.sizes = [x.shape[1] for x in xs]
        return [_concat_on(dev, xs) for dev in self.devices]
        ### END SOLUTION

    def backward(self, douts: list[Any]) -> list[Any]:
        """``dx_s = sum_t g_t[:, piece s]``, summed on tower ``s``'s device."""
        _check_list("Exchange.backward", douts, len(self.devices))
        if self.sizes is None:
            raise RuntimeError("Exchange.backward called before forward")
        ### BEGIN SOLUTION
        pieces = [_split(g, self.sizes) for g in douts]  # pieces[t][s]: from tower s, seen by t
        return [
            _sum_on(dev, [pieces_t[s] for pieces_t in pieces]) for s, dev in enumerate(self.devices)
        ]
        ### END SOLUTION

    def describe(self, label: str, shapes: list[Shape]) -> tuple[list[Row], list[Shape]]:
        """Summary rows (one per tower) and the joined shape each tower gets."""
        joined = (shapes[0][0], sum(s[1] for s in shapes), *shapes[0][2:])
        rows = [
            (f"{t}.{label}", joined, 0, d.name)
            for t, d in zip(TOWER_NAMES, self.devices, strict=False)
        ]
        return rows, [joined] * len(self.devices)


class Gather(_Move):
    """All towers onto one device: ``concatenate([x_a, x_b], axis=1)`` on ``device``.

    Before fc8, which lives on ``devices[0]``. Backward splits the gradient into
    the towers' pieces and moves each back to its tower's device.
    """

    def __init__(self, devices: Sequence[Device], device: Device | None = None) -> None:
        self.devices = [Device(d) for d in devices]
        self.device = self.devices[0] if device is None else Device(device)
        self.sizes: list[int] | None = None

    def forward(self, xs: list[Any], train: bool = True) -> Any:
        """All towers' outputs concatenated in tower order on ``device``."""
        _check_list("Gather.forward", xs, len(self.devices))
        self.sizes = [x.shape[1] for x in xs]
        return _concat_on(self.device, xs)

    def backward(self, dout: Any) -> list[Any]:
        """The gradient split into the towers' pieces, each moved to its tower's device."""
        if self.sizes is None:
            raise RuntimeError("Gather.backward called before forward")
        pieces = _split(dout, self.sizes)
        # a sum of one piece: the piece, moved home (a copy, so it is contiguous)
        return [_sum_on(dev, [piece]) for dev, piece in zip(self.devices, pieces, strict=True)]

    def describe(self, label: str, shapes: list[Shape]) -> tuple[list[Row], Shape]:
        """One summary row and the joined shape."""
        joined = (shapes[0][0], sum(s[1] for s in shapes), *shapes[0][2:])
        return [(label, joined, 0, self.device.name)], joined


class JoinedLRN:
    """Response normalisation whose windows run across BOTH towers' maps (Caffe's AlexNet).

    The paper normalises each GPU's maps on their own [3.3]; Caffe's ``bvlc_alexnet``
    (and the ONNX model zoo's copy of it) has no groups in its norm layers, so a window
    at tower a's last maps also sums tower b's first ones. To run those weights exactly,
    tower ``t`` gets the joined maps ``j = cat(x_a, x_b)`` (as :class:`Exchange` moves
    them), normalises all of them and keeps its own: ``y_t = LRN(j)[:, piece t]``.
    Backward: ``dj_t = LRN'(j)^T [0 .. dy_t .. 0]`` on tower ``t``'s device, and
    :class:`Exchange`'s adjoint sends each piece home and sums it there. Two towers on
    one device compute the LRN once. In a merged network (:mod:`minialexnet.merged`)
    this is a plain ``LRN`` over all channels.
    """

    def __init__(self, devices: Sequence[Device], norm: LRN, name: str = "norm") -> None:
        if norm.groups != 1:
            raise ValueError(f"JoinedLRN: the LRN must have groups=1, got {norm!r}")
        self.devices = [Device(d) for d in devices]
        self.shared = len({d.name for d in self.devices}) == 1
        self.norms = [norm] + [copy.copy(norm) for _ in self.devices[1:]]
        self.name = name
        self.exchange = Exchange(self.devices)
        self.bounds: list[int] | None = None

    def _pieces(self, x: Any, device: Device) -> list[Any]:
        """``x``'s tower pieces along axis 1, each a contiguous copy on ``device``."""
        assert self.bounds is not None
        with device:
            return [
                device.xp.ascontiguousarray(x[:, lo:hi])
                for lo, hi in zip(self.bounds[:-1], self.bounds[1:], strict=True)
            ]

    def forward(self, xs: list[Any], train: bool = True) -> list[Any]:
        """``[LRN(cat(x_a, x_b))[:, piece t] on devices[t]]``."""
        _check_list("JoinedLRN.forward", xs, len(self.devices))
        self.bounds = [int(b) for b in np.cumsum([0, *(x.shape[1] for x in xs)])]
        if self.shared:
            dev = self.devices[0]
            with dev:
                return self._pieces(self.norms[0].forward(_concat_on(dev, xs)), dev)
        joined = self.exchange.forward(xs)
        outs = []
        for t, (dev, norm, j) in enumerate(zip(self.devices, self.norms, joined, strict=True)):
            with dev:
                outs.append(self._pieces(norm.forward(j, train=train), dev)[t])
        return outs

    def backward(self, douts: list[Any]) -> list[Any]:
        """Each tower's input gradient, on its own device (see the class docstring)."""
        _check_list("JoinedLRN.backward", douts, len(self.devices))
        if self.bounds is None:
            raise RuntimeError("JoinedLRN.backward called before forward")
        if self.shared:
            dev = self.devices[0]
            with dev:
                return self._pieces(self.norms[0].backward(_concat_on(dev, douts)), dev)
        djs = []
        for t, (dev, norm, g) in enumerate(zip(self.devices, self.norms, douts, strict=True)):
            with dev:
                full = dev.xp.zeros((g.shape[0], self.bounds[-1], *g.shape[2:]), dtype=g.dtype)
                full[:, self.bounds[t] : self.bounds[t + 1]] = g
                djs.append(norm.backward(full))
        return self.exchange.backward(djs)

    def parameters(self) -> Iterator[tuple[str, Any, Any]]:
        """None: LRN has no parameters."""
        return iter(())

    def zero_grad(self) -> None:
        """Nothing to clear."""
        pass

    def named_layers(self) -> Iterator[tuple[str, Any, Device]]:
        """``("<tower>.<name>", lrn, device)`` per tower (one LRN when the towers share a
        device)."""
        for t, norm, dev in zip(TOWER_NAMES, self.norms, self.devices, strict=False):
            yield f"{t}.{self.name}", norm, dev
            if self.shared:
                return

    def describe(self, label: str, shapes: list[Shape]) -> tuple[list[Row], list[Shape]]:
        """Summary rows (one per tower); the shapes do not change."""
        rows = [
            (f"{t}.{self.name}", shape, 0, d.name)
            for t, d, shape in zip(TOWER_NAMES, self.devices, shapes, strict=False)
        ]
        return rows, list(shapes)


class OnDevice:
    """A Sequential on one device (the paper's fc8 after the towers are gathered).

    Runs it inside ``with device:``; its parameters keep their own names (``"fc8.w"``).
    """

    def __init__(self, layers: Sequential, device: Device) -> None:
        self.layers = layers
        self.device = Device(device)

    def forward(self, x: Any, train: bool = True) -> Any:
        """The layers' output for ``x``, computed inside ``with device:``."""
        with self.device:
            return self.layers.forward(x, train=train)

    def backward(self, dout: Any) -> Any:
        """dL/dx of the layers, computed inside ``with device:``."""
        with self.device:
            return self.layers.backward(dout)

    def parameters(self) -> Iterator[tuple[str, Any, Any]]:
        """``(name, param, grad)`` of the layers, under their own names (``"fc8.w"``)."""
        return self.layers.parameters()

    def zero_grad(self) -> None:
        """Set the layers' gradients to zero."""
        with self.device:
            self.layers.zero_grad()

    def named_layers(self) -> Iterator[tuple[str, Any, Device]]:
        """``(name, layer, device)`` for every layer."""
        for name, layer in self.layers.named_layers():
            yield name, layer, self.device

    def describe(self, label: str, shape: Shape) -> tuple[list[Row], Shape]:
        """Summary rows (one per layer) and the output shape."""
        rows = []
        for name, layer in self.layers.named_layers():
            shape = output_shape(layer, shape)
            rows.append((name, shape, _count(layer), self.device.name))
        return rows, shape


# -- the network --------------------------------------------------------------------------------


class TwoTowerNet:
    """A chain of stages (Broadcast, Towers, Exchange, Gather, OnDevice) on one or two devices.

    ``forward(x)`` runs the stages in order, ``backward(dlogits)`` in reverse (the
    chain rule; each stage's backward is the adjoint of its forward). Built by
    :func:`minialexnet.models.alexnet` and :func:`minialexnet.models.alexnet_cifar`.

    Attributes: ``stages`` (list of (name, stage)), ``devices`` (the 1 or 2 devices
    given), ``input_size``, ``config`` (JSON-able dict describing how to rebuild it),
    ``dtype``.
    """

    def __init__(
        self,
        stages: Sequence[tuple[str, Any]],
        *,
        devices: Sequence[Device],
        input_size: int,
        dtype: Any,
        config: dict[str, Any],
        notes: Sequence[str] = (),
    ) -> None:
        self.stages = list(stages)
        self.devices = [Device(d) for d in devices]
        self.input_size = int(input_size)
        self.dtype = np.dtype(dtype)
        self.config = dict(config)
        self.notes = list(notes)
        names = [name for name, _, _ in self.parameters()]
        if len(set(names)) != len(names):
            raise ValueError(f"TwoTowerNet: parameter names must be unique, got {names}")

    # -- computation ------------------------------------------------------------------------
    def _check_images(self, x: Any, method: str) -> None:
        """Refuse anything but a batch of images (N, 3, S, S) at this model's input size."""
        s = self.input_size
        if getattr(x, "ndim", None) != 4 or tuple(x.shape[1:]) != (3, s, s):
            got = tuple(x.shape) if hasattr(x, "shape") else type(x).__name__
            raise ValueError(
                f"TwoTowerNet.{method}: x must be images of shape (N, 3, {s}, {s}), got {got}"
            )

    def forward(self, x: Any, train: bool = True) -> Any:
        """Logits ``(N, num_classes)`` on ``devices[0]`` for images ``x`` (N, 3, S, S).

        ``x`` may be a host (NumPy) array; it is cast to the model's dtype and moved
        to each tower's device. ``train`` switches dropout on (True) or off.
        """
        self._check_images(x, "forward")
        for _, stage in self.stages:
            x = stage.forward(x, train=train)
        return x

    def features(self, x: Any, stage: str = "fc7") -> Any:
        """The activations after stage ``stage``, in test mode (no dropout), for images ``x``.

        Per-tower outputs are joined along the channel axis on ``devices[0]``: for
        ``"fc7"`` that is the paper's 4096-dimensional feature vector of ``alexnet``
        (2 x 2048; 2 x 512 for ``alexnet_cifar``) whose Euclidean neighbours [6.1,
        Figure 4 right] are images the network finds alike. Stage names are those of
        ``stages`` (``"conv1-2"``, ``"conv3-5"``, ``"fc6"``, ``"fc7"``, ``"fc8"``); the
        result is (N, C, H, W) for conv stages and (N, D) for fc stages.
        """
        names = [name for name, _ in self.stages]
        if stage not in names or stage == "input" or stage.startswith("to_"):
            layers = [n for n in names if n != "input" and not n.startswith("to_")]
            raise ValueError(f"TwoTowerNet.features: stage must be one of {layers}, got {stage!r}")
        self._check_images(x, "features")
        for name, stage_fn in self.stages:
            x = stage_fn.forward(x, train=False)
            if name == stage:
                break
        return _concat_on(self.devices[0], x) if isinstance(x, list) else x

    def backward(self, dlogits: Any, after_stage: Callable[[str], None] | None = None) -> Any:
        """Fill every parameter's gradient from ``dlogits`` = dL/dlogits (N, num_classes).

        Returns dL/dx, the gradient for the input images, on ``devices[0]``; None when
        :attr:`input_grad` is False. ``after_stage(name)``, when given, is called as each
        stage's backward ends (its parameters' gradients are then final): data-parallel
        training starts sending the fc layers' gradients there while the convolutions'
        backward still runs (:mod:`minialexnet.distributed.data_parallel`).
        """
        dout = self.devices[0].asarray(dlogits)
        for name, stage in reversed(self.stages):
            dout = stage.backward(dout)
            if after_stage is not None:
                after_stage(name)
        return dout

    def _input_layers(self) -> list[Any]:
        """The layers that see the images: the first layer of each tower of the first stage
        with layers (a :class:`Towers`, or a ``MergedTowers`` of :mod:`minialexnet.merged`)."""
        first = next(stage for _, stage in self.stages if hasattr(stage, "first_layers"))
        return first.first_layers()

    @property
    def input_grad(self) -> bool:
        """Whether :meth:`backward` computes dL/dx for the images (default True).

        Training needs only the parameters' gradients: ``model.input_grad = False``
        lets the first convolution skip its input gradient (a matrix product and a
        col2im over the 227x227 images, about 5% of a step's arithmetic), as
        frameworks do for inputs that need no gradient. The parameters' gradients
        are the same either way.
        """
        return all(getattr(layer, "input_grad", True) for layer in self._input_layers())

    @input_grad.setter
    def input_grad(self, value: bool) -> None:
        layers = self._input_layers()
        if not value and not all(hasattr(layer, "input_grad") for layer in layers):
            kinds = sorted({type(layer).__name__ for layer in layers})
            raise ValueError(
                f"TwoTowerNet.input_grad: the first layers ({', '.join(kinds)}) always "
                "compute their input gradient; only Conv2d and Linear can skip it"
            )
        for layer in layers:
            if hasattr(layer, "input_grad"):
                layer.input_grad = bool(value)

    # -- parameters -------------------------------------------------------------------------
    def parameters(self) -> Iterator[tuple[str, Any, Any]]:
        """``(name, param, grad)`` for every parameter, in a fixed order (``"a.conv1.w"``, ...)."""
        for _, stage in self.stages:
            yield from stage.parameters()

    def named_layers(self) -> Iterator[tuple[str, Any, Device]]:
        """``(name, layer, device)`` for every layer (``"a.conv1"``, ``"b.drop7"``, ``"fc8"``)."""
        for _, stage in self.stages:
            yield from stage.named_layers()

    def num_parameters(self) -> int:
        """How many numbers the parameters hold, all towers and devices together."""
        return sum(int(p.size) for _, p, _ in self.parameters())

    def zero_grad(self) -> None:
        """Set every parameter's gradient to zero (each on its own device)."""
        for _, stage in self.stages:
            stage.zero_grad()

    def _device_of(self, x: Any) -> Device:
        for dev in self.devices:
            if dev.holds(x):
                return dev
        raise RuntimeError("TwoTowerNet: a parameter is on none of the model's devices")

    def state_dict(self) -> dict[str, np.ndarray]:
        """Host (NumPy) copies of every parameter, by name."""
        return {name: np.array(to_numpy(p), copy=True) for name, p, _ in self.parameters()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Copy ``state`` into the parameters in place (each onto its own device).

        Raises ValueError naming the first missing name, unexpected name or shape
        mismatch, before anything is changed.
        """
        params = {name: p for name, p, _ in self.parameters()}
        for name, p in params.items():
            if name not in state:
                raise ValueError(f"load_state_dict: missing parameter {name!r} in the state dict")
            if tuple(state[name].shape) != tuple(p.shape):
                raise ValueError(
                    f"load_state_dict: parameter {name!r} has shape {tuple(p.shape)} in the model "
                    f"but {tuple(state[name].shape)} in the state dict"
                )
        for name in state:
            if name not in params:
                raise ValueError(
                    f"load_state_dict: unexpected parameter {name!r} in the state dict (the "
                    f"model has {len(params)} parameters, e.g. {next(iter(params))!r})"
                )
        for name, p in params.items():
            dev = self._device_of(p)
            with dev:
                p[...] = dev.asarray(state[name], dtype=p.dtype)

    def reseed(self, seed: int) -> None:
        """Reset every dropout layer's generator from ``seed``.

        Layer ``i`` (in ``named_layers`` order: a.drop6, b.drop6, a.drop7, b.drop7)
        gets the ``i``-th child of ``np.random.SeedSequence(seed)``, as a generator
        made on its own device (``Device.rng``). So a training run's masks are a pure
        function of the seed.
        """
        dropouts = [
            (layer, dev) for _, layer, dev in self.named_layers() if isinstance(layer, Dropout)
        ]
        children = np.random.SeedSequence(seed).spawn(len(dropouts))
        for (layer, dev), child in zip(dropouts, children, strict=True):
            layer.rng = dev.rng(int(child.generate_state(1)[0]))

    # -- description ------------------------------------------------------------------------
    def layer_rows(self) -> list[Row]:
        """One row per layer: (name, output shape for a batch of 1, parameters, device name)."""
        rows: list[Row] = []
        shape: Any = (1, 3, self.input_size, self.input_size)
        for label, stage in self.stages:
            new_rows, shape = stage.describe(label, shape)
            rows += new_rows
        return rows

    def forward_flops(self, batch: int = 1) -> int:
        """Floating-point operations of one forward pass of ``batch`` images, in the
        convolutions and linear layers (the elementwise layers add about 1%).

        A layer with weights ``w`` (C_out, ...) and output ``out`` does ``out.size *
        (w.size / C_out)`` multiply-adds, 2 operations each. A training step is about
        3 times this (forward, the weights' gradient, the inputs' gradient). The
        paper's model: 1.45 GFLOP per 227x227 image (0.73 G multiply-adds).
        """
        shapes = {name: out for name, out, _, _ in self.layer_rows()}
        total = 0
        for name, layer, _ in self.named_layers():
            if isinstance(layer, (Conv2d, Linear)):
                w = layer.params["w"]
                total += 2 * math.prod(shapes[name]) * (w.size // w.shape[0])
        return total * int(batch)

    def summary(self) -> str:
        """A table: every layer's output shape for a batch of 1, its parameters and device."""
        rows = self.layer_rows()
        header = ("layer", "output (batch 1)", "params", "device")
        table = [(n, " x ".join(map(str, s)), f"{c:,}", d) for n, s, c, d in rows]
        widths = [max(len(r[i]) for r in [header, *table]) for i in range(4)]

        def line(r: Sequence[str]) -> str:
            return f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:>{widths[2]}}  {r[3]}".rstrip()

        per_device: dict[str, int] = {}
        for _, _, count, dev in rows:
            per_device[dev] = per_device.get(dev, 0) + count
        rule = "-" * len(line(header))
        out = [
            f"{self.config.get('arch', 'network')}: {self.config}",
            line(header),
            rule,
            *(line(r) for r in table),
            rule,
            f"total parameters: {self.num_parameters():,}",
            "per device: " + ", ".join(f"{d} {c:,}" for d, c in per_device.items()),
            *self.notes,
        ]
        return "\n".join(out)

    def __repr__(self) -> str:
        devices = ", ".join(d.name for d in self.devices)
        return (
            f"TwoTowerNet({self.config.get('arch')}, {self.num_parameters():,} parameters, "
            f"devices [{devices}])"
        )
