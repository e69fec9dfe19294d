"""Two towers on ONE device, run as one network: the same function, half the launches.

The paper split every layer across two GPUs [3.2]. On one GPU there is nothing to
split: the two towers' layers can sit side by side in one array per layer, and the
network becomes a single chain of ordinary layers::

    tower model (towers.py), both towers on gpu:0        merged (this module), gpu:0

    x --Broadcast--> [x, x]                               x --Input--> x
      --Towers-----> [conv1 48 (a), conv1 48 (b)]           --conv1 96 (one im2col, one product)
                     [ReLU, LRN, pool, conv2 128 own]        --ReLU, LRN groups=2, pool
                                                             --conv2 256, groups=2
      --Exchange---> [cat(a, b), cat(a, b)]                  (nothing: the maps are already
      --Towers-----> [conv3 192 (a), conv3 192 (b)]            [a | b] along the channels)
                                                             --conv3 384 (dense)
      ...  fc6, fc7 likewise  ...  --Gather--> fc8           ...  fc6 4096, fc7 4096  --> fc8

Why it is the same function: a tower's layer that sees BOTH towers (conv1 sees the
whole image; conv3, fc6 and fc7 come after an Exchange) is the tower's half of the
output channels of one dense layer; a layer that sees only its OWN tower (conv2,
conv4, conv5) is one group of a grouped convolution (``groups=2``); LRN within each
tower is LRN with ``groups=2``; ReLU, pooling and dropout act on each channel alone;
and flattening ``[a | b]`` gives ``cat(flatten(a), flatten(b))``, the order the
Exchange before fc6 makes. So each merged weight is ``concatenate([w_a, w_b])``
along its first axis (output channels or features), and the tower parameters
``"a.conv1.w"`` and ``"b.conv1.w"`` are the two halves of it: views, not copies.
The optimizer, checkpoints and ``state_dict`` see exactly the names, shapes and
order of the tower model; only dropout's random masks are drawn differently (one
draw for both towers' units).

What it saves on a GPU (the paper model at batch 128): one im2col of the images
instead of two, conv3/fc6/fc7 as one product each, no copies between the stages,
and half as many kernel launches. ``alexnet(devices=["gpu:0"])`` builds this; two
devices (``--gpus 0,1``, or ``--gpus 0,0`` for the two-device code on one GPU) keep
the towers, and so does the CPU, where the two towers run at once on two cores
(:mod:`minialexnet.concurrency`).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

from .backend import Device
from .layers import LRN, NO_CACHE, Conv2d, Linear, Sequential
from .towers import (
    TOWER_NAMES,
    Broadcast,
    Exchange,
    JoinedLRN,
    OnDevice,
    Row,
    Shape,
    Towers,
    TwoTowerNet,
    output_shape,
)

__all__ = ["Input", "MergedTowers", "merge_towers", "flat_layers"]


class Input:
    """The images onto the network's device, cast to its dtype (a merged network's first stage).

    Backward passes the images' gradient through (None when the first layer computed
    none: ``TwoTowerNet.input_grad`` False).
    """

    def __init__(self, device: Device, dtype: Any = None) -> None:
        self.device = Device(device)
        self.dtype = dtype

    def forward(self, x: Any, train: bool = True) -> Any:
        """``x`` on the device, in the network's dtype (no copy when it already is)."""
        with self.device:
            return self.device.asarray(x, dtype=self.dtype)

    def backward(self, dout: Any) -> Any:
        """dL/dx: the gradient the first layer computed, unchanged."""
        return dout

    def parameters(self) -> Iterator[tuple[str, Any, Any]]:
        """None: the input has no parameters."""
        return iter(())

    def zero_grad(self) -> None:
        """Nothing to clear."""

    def named_layers(self) -> Iterator[tuple[str, Any, Device]]:
        """None: the input is not a layer."""
        return iter(())

    def describe(self, label: str, shape: Shape) -> tuple[list[Row], Shape]:
        """One summary row and the unchanged shape."""
        return [(label, shape, 0, self.device.name)], shape


def _merge_layer(a: Any, b: Any, sees_both: bool, xp: Any) -> Any:
    """One layer doing the work of tower a's layer ``a`` and tower b's ``b`` side by side.

    ``sees_both``: the towers' layers see the same input (all channels), so the merged
    layer is dense over it; else each sees its own half, and a convolution gets twice
    the groups. Weights and biases are concatenated along axis 0 (outputs).
    """
    if type(a) is not type(b):
        raise ValueError(f"merge_towers: the towers differ here ({a!r} and {b!r})")
    merged = copy.copy(a)  # the hyperparameters (kernel, stride, p, ...); new arrays below
    merged.cache = NO_CACHE
    if isinstance(a, Conv2d):
        merged.out_channels = 2 * a.out_channels
        if not sees_both:
            merged.in_channels, merged.groups = 2 * a.in_channels, 2 * a.groups
    elif isinstance(a, Linear):
        if not sees_both:
            raise ValueError(
                "merge_towers: a Linear layer that sees only its own tower has no merged form"
            )
        merged.out_features = 2 * a.out_features
    elif isinstance(a, LRN):
        merged.groups = 2 * a.groups  # each tower normalises its own maps
    elif a.params:
        raise ValueError(f"merge_towers: cannot merge a {type(a).__name__} with parameters")
    if a.params:
        with a.device:
            merged.params = {k: xp.concatenate([a.params[k], b.params[k]]) for k in a.params}
            merged.grads = {k: xp.zeros_like(v) for k, v in merged.params.items()}
    return merged


class MergedTowers:
    """A :class:`~minialexnet.towers.Towers` stage whose two towers share one device, as one
    Sequential of merged layers (see the module docstring).

    ``forward(x)`` and ``backward(dout)`` take and give one array with both towers'
    channels, ``[a | b]``. ``parameters()`` gives the towers' parameters under the
    towers' names (``"a.conv1.w"``: the first half of the merged conv1's weights, a
    view), in the order :class:`Towers` gives them; ``named_layers()`` the merged
    layers (``"conv1"``).
    """

    def __init__(self, towers: Towers, sees_both: bool = True) -> None:
        """``sees_both``: the stage's input went to both towers (after a Broadcast or an
        Exchange); False when each tower's input is its own maps."""
        if len(towers.towers) != 2 or towers.devices[0] != towers.devices[1]:
            raise ValueError("MergedTowers: needs two towers on one device")
        self.device = towers.devices[0]
        self.names = list(towers.names)
        tower_a, tower_b = towers.towers
        layers = []
        for (name, a), (_, b) in zip(tower_a.named_layers(), tower_b.named_layers(), strict=True):
            layers.append((name, _merge_layer(a, b, sees_both, self.device.xp)))
            if a.params:
                sees_both = False  # after a layer with weights, each tower sees its own maps
        self.net = Sequential(layers)

    def forward(self, x: Any, train: bool = True) -> Any:
        """Both towers' outputs for ``x``, side by side along axis 1, inside ``with device:``."""
        with self.device:
            return self.net.forward(x, train=train)

    def backward(self, dout: Any) -> Any:
        """dL/dx for the stage's input, inside ``with device:``."""
        with self.device:
            return self.net.backward(dout)

    def parameters(self) -> Iterator[tuple[str, Any, Any]]:
        """``("<tower>.<layer>.<param>", half, grad half)``: views of the merged arrays."""
        for t, tower in enumerate(self.names):
            for name, param, grad in self.net.parameters():
                half = param.shape[0] // 2
                rows = slice(t * half, (t + 1) * half)
                yield f"{tower}.{name}", param[rows], grad[rows]

    def zero_grad(self) -> None:
        """Set every gradient to zero, on the device."""
        with self.device:
            self.net.zero_grad()

    def named_layers(self) -> Iterator[tuple[str, Any, Device]]:
        """``(name, layer, device)`` for every merged layer (``"conv1"``, ``"drop6"``)."""
        for name, layer in self.net.named_layers():
            yield name, layer, self.device

    def first_layers(self) -> list[Any]:
        """The layer that sees this stage's input (for ``TwoTowerNet.input_grad``)."""
        return [self.net.layers[0]]

    def describe(self, label: str, shape: Shape) -> tuple[list[Row], Shape]:
        """Summary rows (every merged layer) and the output shape."""
        rows = []
        for name, layer in self.net.named_layers():
            shape = output_shape(layer, shape)
            count = sum(int(p.size) for _, p, _ in layer.parameters())
            rows.append((name, shape, count, self.device.name))
        return rows, shape


def merge_towers(model: TwoTowerNet) -> TwoTowerNet:
    """The same network, its two towers on one device run as one (see the module docstring).

    ``model`` must have its two towers on one device (``devices`` of length 1). The
    result has the same parameter names, shapes and values (copied into the merged
    arrays), config and input size; its dropout generators are reseeded from
    ``model.config``'s seed by the caller (:func:`minialexnet.models.alexnet` does).
    """
    if len(model.devices) != 1:
        raise ValueError(
            f"merge_towers: the towers must share one device, got {[d.name for d in model.devices]}"
        )
    device = model.devices[0]
    stages: list[tuple[str, Any]] = []
    previous: Any = None
    for name, stage in model.stages:
        if isinstance(stage, Broadcast):
            stages.append((name, Input(device, stage.dtype)))
        elif isinstance(stage, Towers):
            if len(stage.towers) != 2:
                raise ValueError("merge_towers: the model has one tower; nothing to merge")
            sees_both = isinstance(previous, (Broadcast, Exchange))
            stages.append((name, MergedTowers(stage, sees_both)))
        elif isinstance(stage, JoinedLRN):  # a window across both towers: LRN over all maps
            norm = copy.copy(stage.norms[0])
            norm.cache = NO_CACHE
            stages.append((name, OnDevice(Sequential([(stage.name, norm)]), device)))
        elif isinstance(stage, OnDevice):
            stages.append((name, stage))
        # Exchange and Gather: nothing to do, the maps are already side by side
        previous = stage
    notes = [
        *model.notes,
        f"towers {' and '.join(TOWER_NAMES)} run as one network on {device.name} "
        "(grouped convolutions; the same function, see minialexnet.merged)",
    ]
    return TwoTowerNet(
        stages,
        devices=[device],
        input_size=model.input_size,
        dtype=model.dtype,
        config=model.config,
        notes=notes,
    )


def flat_layers(model: TwoTowerNet) -> list[tuple[str, Any]]:
    """The network as one chain of ordinary layers: ``[("conv1", Conv2d), ("relu1", ...)]``.

    Two towers are merged first (:func:`merge_towers`; the model must be on one
    device), so ``conv1`` has both towers' kernels and ``conv2`` has ``groups=2``; a
    one-tower network is its tower's layers and its head. What the ONNX exporter writes
    and the converter fills (:mod:`minialexnet.export`, :mod:`minialexnet.convert`). The
    layers' parameters are the merged arrays: copies of the towers' when ``model`` had two
    unmerged towers.
    """
    towers = [s for _, s in model.stages if isinstance(s, Towers)]
    if towers and len(towers[0].towers) == 2:
        model = merge_towers(model)
    layers: list[tuple[str, Any]] = []
    for _, stage in model.stages:
        if isinstance(stage, MergedTowers):
            layers += list(stage.net.named_layers())
        elif isinstance(stage, Towers):
            layers += list(stage.towers[0].named_layers())
        elif isinstance(stage, OnDevice):
            layers += list(stage.layers.named_layers())
    return layers
