"""AlexNet [3.5, Figure 2], two towers as on the paper's two GPUs [3.2], and a 32x32 variant.

The whole network is :func:`_alexnet` below, one line per layer, read against
the paper's table (``paper.md``). Per tower ("a" on ``devices[0]``, "b" on
``devices[-1]``):

    layer  maps/tower  kernel     stride/pad  input                        after it
    conv1  48          11x11x3    4 / 0       the whole image              ReLU, LRN, pool 3/2
    conv2  128         5x5x48     1 / 2       own tower                    ReLU, LRN, pool 3/2
    conv3  192         3x3x256    1 / 1       BOTH towers (Exchange)       ReLU
    conv4  192         3x3x192    1 / 1       own tower                    ReLU
    conv5  128         3x3x192    1 / 1       own tower                    ReLU, pool 3/2
    fc6    2048        9216 in    -           BOTH towers (Exchange)       ReLU, dropout 0.5
    fc7    2048        4096 in    -           BOTH towers (Exchange)       ReLU, dropout 0.5
    fc8    1000 (one)  4096 in    -           both towers (Gather), on devices[0]

Spatial sizes 227 -> 55 -> 27 -> 27 -> 13 -> 13 -> 6; 60,965,224 parameters.
The paper's text says 224x224 input, but conv1 (11x11, stride 4, no padding)
gives 55x55 only from 227: (227 - 11) / 4 + 1 = 55.

``alexnet_cifar`` keeps the topology for 32x32 images with fewer maps (32, 64,
96, 96, 64 per tower, fc 512 per tower) and a 5x5 stride-1 conv1:
32 -> 32 -> 15 -> 15 -> 7 -> 7 -> 3; 2,846,090 parameters.

Input scale: raw 0-255 pixels minus the mean image, as the paper (LRN's k=2,
alpha=1e-4 were chosen for activations on that scale).

Initialisation [5]:
    "paper":  w ~ N(0, 0.01^2); b = 1 in conv2, conv4, conv5, fc6, fc7 (so the ReLUs
              start positive), b = 0 in conv1, conv3, fc8.
    "scaled": PyTorch's default for Conv2d and Linear, w and b ~ U(-1/sqrt(fan_in),
              1/sqrt(fan_in)), fan_in = inputs of one neuron of that tower's layer
              (C_in * KH * KW, or in_features). The paper's init leaves the 32x32 net
              at chance on CIFAR-10 for epochs (paper.md, "Learning"); this one learns.
    "balanced": the default on the built-in shapes (docs/training.md, "Why the default
              run learns"). He's N(0, 2/fan_in) for ReLU layers (fc8: N(0, 0.01^2)),
              every weight layer then multiplied by q = 64^(-1/depth) (depth 8; 0.595):
              the raw pixels' scale (standard deviation ~64) is spread evenly over the
              layers instead of landing on one of them, so one learning rate suits every
              layer. conv1's kernels are zero-mean in each input channel (blind, at the
              start, to an image's mean colour, ~80% of the shapes' pixel variance) and
              start at CONV1_GAIN (1/4) of that scale; b = 0. With lr 0.0035 and
              batches of 64 it leaves chance on shapes in the first epoch, where
              "scaled" sits at chance or learns and falls back to it.

Variants, for the paper's ablations (``python -m minialexnet.experiments``), each
a keyword of :func:`alexnet` / :func:`alexnet_cifar` recorded in ``config`` when not
the default: ``activation="tanh"`` (ReLU everywhere otherwise [3.1]),
``lrn=False`` (no response normalization [3.3]), ``pool=(2, 2)`` (non-overlapping
pooling; the paper's is (3, 2) [3.4]), ``towers=1`` (one tower with half the
kernels in conv1-conv4 and the full conv5/fc6/fc7, the paper's one-GPU net [3.2]).
:func:`cnn4` is the "four-layer CNN" of the paper's CIFAR-10 remarks [3.1, 3.3].

Weights are drawn on the host from ``np.random.default_rng(seed)`` in the order
of ``model.parameters()`` (w then b of a.conv1, a.conv2, b.conv1, b.conv2, a.conv3,
...) and then moved to their device, so a seed gives the same network on any devices.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .backend import Device
from .functional.pool import pooled_size
from .layers import LRN, Conv2d, Dropout, Flatten, Linear, MaxPool2d, ReLU, Sequential, Tanh
from .merged import merge_towers
from .towers import Broadcast, Exchange, Gather, JoinedLRN, OnDevice, Towers, TwoTowerNet

__all__ = [
    "alexnet",
    "alexnet_cifar",
    "alexnet_owt",
    "cnn4",
    "model_from_config",
    "Spec",
    "Variant",
    "ALEXNET",
    "ALEXNET_CIFAR",
]

INITS = ("paper", "scaled", "balanced")
RAW_PIXEL_STD = 64.0
CONV1_GAIN = 0.25
"""init "balanced": conv1's kernels start at this share of the balanced scale. Like the
paper's N(0, 0.01^2) (1/7 of He's for its conv1), a small start lets what conv1 learns
outweigh where it started: on shapes its kernels moved 78% of their start, not 22%, and turned
into oriented stripes and colour edges (docs/training.md, "Why the default run learns")."""
"""init "balanced": the standard deviation of the inputs it expects, raw 0-255 pixels minus the
mean image (CIFAR-10: 64; the built-in shapes: 73)."""
ACTIVATIONS = {"relu": ReLU, "tanh": Tanh}


PAPER_LRN = (5, 2.0, 1e-4, 0.75)
"""The paper's response normalization [3.3]: (n, k, alpha, beta); alpha multiplies the plain
sum of squares (Caffe's and ONNX's alpha is n times larger: they divide by n)."""
_VARIANT_FIELDS = (
    "activation",
    "lrn",
    "pool",
    "towers",
    "lrn_constants",
    "lrn_across",
    "pool_ceil",
)


@dataclass(frozen=True)
class Variant:
    """What the paper's ablations (and other people's AlexNets) change; the defaults are the
    paper's network.

    activation: "relu" [3.1] or "tanh"; lrn: response normalization after conv1/conv2
    [3.3]; pool: (window, stride) of every max pooling, (3, 2) overlapping [3.4] or
    (2, 2); towers: 2 [3.2], or 1 (one tower, half the kernels in conv1-conv4).

    For trained weights from elsewhere (:mod:`minialexnet.convert`): lrn_constants, the
    LRN's (n, k, alpha, beta) in this library's convention (Caffe's bvlc_alexnet: (5, 1,
    2e-5, 0.75)); lrn_across: the LRN windows span both towers' maps (Caffe's norm
    layers have no groups; the paper normalises within each tower); pool_ceil: pooling
    rounds its output size up (Caffe's), which keeps pool5 at 6x6 from 224x224 images.
    """

    activation: str = "relu"
    lrn: bool = True
    pool: tuple[int, int] = (3, 2)
    towers: int = 2
    lrn_constants: tuple[int, float, float, float] = PAPER_LRN
    lrn_across: bool = False
    pool_ceil: bool = False

    def __post_init__(self) -> None:
        if self.activation not in ACTIVATIONS:
            raise ValueError(
                f"activation must be one of {sorted(ACTIVATIONS)}, got {self.activation!r}"
            )
        for name in ("lrn", "lrn_across", "pool_ceil"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")
        pool = tuple(self.pool)
        if len(pool) != 2 or not all(isinstance(v, int) and v >= 1 for v in pool):
            raise ValueError(f"pool must be (window, stride) of positive ints, got {self.pool!r}")
        object.__setattr__(self, "pool", pool)
        if self.towers not in (1, 2):
            raise ValueError(f"towers must be 1 or 2, got {self.towers!r}")
        constants = tuple(self.lrn_constants)
        try:
            n, k, alpha, beta = constants
            LRN(int(n), float(k), float(alpha), float(beta))
            if int(n) != n:
                raise ValueError(f"n must be an int, got {n!r}")
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"lrn_constants must be (n, k, alpha, beta), e.g. {PAPER_LRN}; got "
                f"{self.lrn_constants!r} ({exc})"
            ) from None
        object.__setattr__(self, "lrn_constants", (int(n), float(k), float(alpha), float(beta)))
        if self.lrn_across and self.towers != 2:
            raise ValueError("lrn_across: LRN windows across towers need two towers (towers=2)")

    def changes(self) -> dict[str, Any]:
        """The fields that differ from the paper's network, JSON-able (for ``config``)."""
        default = Variant()
        out: dict[str, Any] = {}
        for name in _VARIANT_FIELDS:
            value = getattr(self, name)
            if value != getattr(default, name):
                out[name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Variant:
        """The variant a model's ``config`` records (defaults for absent keys)."""
        return cls(**{k: config[k] for k in _VARIANT_FIELDS if k in config})

    def make_lrn(self) -> LRN:
        """A response normalization layer with this variant's constants."""
        n, k, alpha, beta = self.lrn_constants
        return LRN(n=n, k=k, alpha=alpha, beta=beta)

    def make_pool(self) -> MaxPool2d:
        """A max pooling layer of this variant's window, stride and rounding."""
        return MaxPool2d(*self.pool, ceil_mode=self.pool_ceil)


@dataclass(frozen=True)
class Spec:
    """The numbers that differ between the ImageNet network and the 32x32 one (per tower)."""

    arch: str
    input_size: int
    conv1: tuple[int, int, int, int]  # (maps per tower, kernel, stride, pad)
    maps: tuple[int, int, int, int]  # maps per tower of conv2, conv3, conv4, conv5
    pool5: int  # spatial size after pool5
    fc: int  # neurons per tower of fc6 and fc7


#                    arch             input  conv1 (maps, k, s, p)  conv2..conv5 maps     pool5  fc
ALEXNET = Spec("alexnet", 227, (48, 11, 4, 0), (128, 192, 192, 128), 6, 2048)
ALEXNET_CIFAR = Spec("alexnet-cifar", 32, (32, 5, 1, 2), (64, 96, 96, 64), 3, 512)
# torchvision's one-tower AlexNet ("one weird trick", Krizhevsky 2014): 64-192-384-256-256
# maps, fc 4096. Built with towers=1, which doubles conv5 and fc (the paper's one-GPU rule).
ALEXNET_OWT = Spec("alexnet-owt", 224, (64, 11, 4, 2), (192, 384, 256, 128), 6, 2048)


class _LayerMaker:
    """Makes Conv2d/Linear layers on one device, weights drawn from the shared host ``rng``."""

    def __init__(
        self, rng: np.random.Generator, init: str, dtype: Any, device: Device, depth: int = 8
    ) -> None:
        self.rng, self.init, self.dtype, self.device = rng, init, dtype, device
        self.depth = depth  # weight layers from the image to the logits (init "balanced")

    def conv(
        self, c_in: int, c_out: int, k: int, stride: int = 1, pad: int = 0, *, bias: float,
        image: bool = False,
    ) -> Conv2d:  # fmt: skip
        """``image``: the layer sees the image (conv1)."""
        layer = Conv2d(c_in, c_out, k, stride, pad, **self._weights(bias))
        return self._scale(layer, fan_in=c_in * k * k, image=image)

    def fc(self, n_in: int, n_out: int, *, bias: float, last: bool = False) -> Linear:
        """``last``: the layer gives the logits (fc8)."""
        return self._scale(Linear(n_in, n_out, **self._weights(bias)), fan_in=n_in, last=last)

    def _weights(self, bias: float) -> dict[str, Any]:
        # The paper's init [5], drawn by the layer itself: w ~ N(0, 0.01^2), b = bias.
        return dict(weight_std=0.01, bias_value=bias, rng=self.rng, dtype=self.dtype,
                    device=self.device)  # fmt: skip

    def _scale(self, layer: Any, fan_in: int, image: bool = False, last: bool = False) -> Any:
        """init "scaled": overwrite w, then b, with U(-1/sqrt(fan_in), 1/sqrt(fan_in)) draws;
        "balanced": w with N(0, (q * std)^2) draws, std sqrt(2 / fan_in) (0.01 for the
        logits), q = RAW_PIXEL_STD ** (-1 / depth), centred per input channel where the
        layer sees the image; b = 0."""
        if self.init == "balanced":
            q = RAW_PIXEL_STD ** (-1.0 / self.depth)
            std = q * (0.01 if last else np.sqrt(2.0 / fan_in))
            w = self.rng.normal(0.0, std, layer.params["w"].shape)
            if image:  # zero-mean kernels: no response to a uniform colour
                w -= w.mean(axis=(2, 3), keepdims=True)
                w *= CONV1_GAIN  # a small start: what conv1 learns outweighs it
            with self.device:
                layer.params["w"][...] = self.device.asarray(w.astype(layer.dtype))
                layer.params["b"][...] = 0
        if self.init == "scaled":
            bound = 1.0 / np.sqrt(fan_in)
            for name in ("w", "b"):
                p = layer.params[name]
                draw = self.rng.uniform(-bound, bound, p.shape).astype(layer.dtype)
                with self.device:
                    p[...] = self.device.asarray(draw)
        return layer


def _pooled(size: int, variant: Variant) -> int:
    """Spatial size after one of the variant's max poolings (no padding)."""
    window, stride = variant.pool
    return pooled_size(size, window, stride, variant.pool_ceil)


def _check_num_classes(arch: str, num_classes: Any) -> None:
    if (
        isinstance(num_classes, bool)
        or not isinstance(num_classes, (int, np.integer))
        or num_classes < 1
    ):
        raise ValueError(f"{arch}: num_classes must be a positive int, got {num_classes!r}")


def _alexnet(
    spec: Spec,
    num_classes: int,
    devices: Any,
    seed: int,
    init: str,
    dtype: Any,
    variant: Variant = Variant(),  # noqa: B008 -- frozen, so one shared default is safe
    merged: bool | None = None,
    input_size: int | None = None,
) -> TwoTowerNet:
    """The paper's network [3.5] with the per-tower sizes of ``spec``: the whole table."""
    devices = _devices(devices)
    if input_size is None:
        input_size = spec.input_size
    if isinstance(input_size, bool) or not isinstance(input_size, (int, np.integer)):
        raise ValueError(f"{spec.arch}: input_size must be an int, got {input_size!r}")
    input_size = int(input_size)
    if init not in INITS:
        raise ValueError(f"{spec.arch}: init must be one of {INITS}, got {init!r}")
    _check_num_classes(spec.arch, num_classes)
    # tower a, tower b (the same device when only one); the one-tower variant: tower a only
    towers_on = [devices[0], devices[-1]][: variant.towers]
    n = variant.towers
    rng = np.random.default_rng(seed)
    c1, k1, s1, p1 = spec.conv1
    c2, c3, c4, c5 = spec.maps
    # the one-GPU net keeps the two-GPU net's conv5 and fc sizes (paper footnote to [3.2])
    c5, fc = c5 * 2 // n, spec.fc * 2 // n
    size = (input_size + 2 * p1 - k1) // s1 + 1  # conv1's maps
    for _ in range(3):  # pool1, pool2, pool5 (conv2-conv5 keep the size)
        size = _pooled(size, variant) if size >= variant.pool[0] else 0
    if size < 1:
        raise ValueError(
            f"{spec.arch}: input_size {input_size} is too small: nothing is left after pool5"
        )
    flat = n * c5 * size**2  # fc6 sees every tower's pool5 maps
    paper_pools = variant.pool == (3, 2) and not variant.pool_ceil
    if paper_pools and input_size == spec.input_size and size != spec.pool5:
        raise AssertionError(f"{spec.arch}: pool5 is {size}x{size}, the table says {spec.pool5}")

    def act() -> Any:
        return ACTIVATIONS[variant.activation]()

    def norm() -> list[tuple[str, Any]]:  # in the towers, or a stage of its own (lrn_across)
        return [("norm", variant.make_lrn())] if variant.lrn and not variant.lrn_across else []

    def pool() -> MaxPool2d:
        return variant.make_pool()  # overlapping (3, 2) [3.4]

    def named(layers: list[tuple[str, Any]], number: int) -> list[tuple[str, Any]]:
        return [(f"{kind}{number}", layer) for kind, layer in layers]

    def towers(build: Any) -> Towers:
        return Towers([build(_LayerMaker(rng, init, dtype, d)) for d in towers_on], towers_on)

    # Per tower. "own": sees only its own tower's maps; "both": after an Exchange.
    def conv1(make: _LayerMaker) -> list[tuple[str, Any]]:  # the image
        return named([("conv", make.conv(3, c1, k1, s1, p1, bias=0.0, image=True)),
                      (variant.activation, act())], 1)  # fmt: skip

    def conv2(make: _LayerMaker) -> list[tuple[str, Any]]:  # own
        return named([("conv", make.conv(c1, c2, 5, 1, 2, bias=1.0)),
                      (variant.activation, act())], 2)  # fmt: skip

    def conv1_2(make: _LayerMaker) -> Sequential:
        return Sequential([
            *conv1(make), *named([*norm(), ("pool", pool())], 1),
            *conv2(make), *named([*norm(), ("pool", pool())], 2),
        ])  # fmt: skip

    def conv3_5(make: _LayerMaker) -> Sequential:
        return Sequential([
            ("conv3", make.conv(n * c2, c3, 3, 1, 1, bias=0.0)),   # both
            (f"{variant.activation}3", act()),
            ("conv4", make.conv(c3, c4, 3, 1, 1, bias=1.0)),       # own
            (f"{variant.activation}4", act()),
            ("conv5", make.conv(c4, c5, 3, 1, 1, bias=1.0)),       # own
            (f"{variant.activation}5", act()),
            ("pool5", pool()),
            ("flatten", Flatten()),
        ])  # fmt: skip

    def fc6(make: _LayerMaker) -> Sequential:
        return Sequential([
            ("fc6", make.fc(flat, fc, bias=1.0)),                  # both
            (f"{variant.activation}6", act()),
            ("drop6", Dropout(0.5)),                               # [4.2]
        ])  # fmt: skip

    def fc7(make: _LayerMaker) -> Sequential:
        return Sequential([
            ("fc7", make.fc(n * fc, fc, bias=1.0)),                # both
            (f"{variant.activation}7", act()),
            ("drop7", Dropout(0.5)),
        ])  # fmt: skip

    def fc8(make: _LayerMaker) -> Sequential:  # one layer, on devices[0]
        return Sequential([
            ("fc8", make.fc(n * fc, num_classes, bias=0.0, last=True)),  # both; softmax: loss
        ])  # fmt: skip

    def joined_norm(number: int) -> JoinedLRN:  # one window across both towers' maps
        return JoinedLRN(towers_on, variant.make_lrn(), f"norm{number}")

    if variant.lrn and variant.lrn_across:  # conv1-2 cut at the LRNs; pool2 after the Exchange

        def third(make: _LayerMaker) -> Sequential:
            return Sequential([("pool2", pool()), *conv3_5(make).named_layers()])

        front = [
            ("conv1", towers(lambda make: Sequential(conv1(make)))),
            ("norm1", joined_norm(1)),
            ("conv2", towers(lambda make: Sequential([("pool1", pool()), *conv2(make)]))),
            ("norm2", joined_norm(2)),
            ("to_conv3", Exchange(towers_on)),
            ("conv3-5", towers(third)),
        ]
    else:
        front = [
            ("conv1-2", towers(conv1_2)),
            ("to_conv3", Exchange(towers_on)),
            ("conv3-5", towers(conv3_5)),
        ]
    stages = [
        ("input", Broadcast(towers_on, dtype)),
        *front,
        ("to_fc6", Exchange(towers_on)),
        ("fc6", towers(fc6)),
        ("to_fc7", Exchange(towers_on)),
        ("fc7", towers(fc7)),
        ("to_fc8", Gather(towers_on)),
        ("fc8", OnDevice(fc8(_LayerMaker(rng, init, dtype, devices[0])), devices[0])),
    ]

    config = {
        "arch": spec.arch,
        "num_classes": int(num_classes),
        "input_size": input_size,
        "init": init,
        "dtype": np.dtype(dtype).name,
        **variant.changes(),
    }
    notes = []
    if input_size == 227:
        notes.append(
            "input 227x227: the paper's text says 224, but conv1 (11x11, stride 4, no padding) "
            "needs 227 for its 55x55 maps: (227 - 11) / 4 + 1 = 55"
        )
    model = TwoTowerNet(
        stages, devices=devices, input_size=input_size, dtype=dtype, config=config, notes=notes
    )
    if merged is None:  # by default on one GPU: the towers as one network, fewer launches
        merged = len(devices) == 1 and devices[0].is_gpu and n == 2
    if merged:
        model = merge_towers(model)
    model.reseed(seed)
    return model


def _devices(devices: Any) -> list[Device]:
    if devices is None:
        return [Device("cpu")]
    if isinstance(devices, (str, Device)):
        devices = [devices]
    devices = [Device(d) for d in devices]
    if len(devices) not in (1, 2):
        raise ValueError(
            f"alexnet: devices must be a list of 1 or 2 devices (towers a and b), got {devices}"
        )
    return devices


def alexnet(
    num_classes: int = 1000,
    devices: Any = None,
    seed: int = 0,
    init: str = "paper",
    *,
    dtype: Any = "float32",
    activation: str = "relu",
    lrn: bool = True,
    pool: tuple[int, int] = (3, 2),
    towers: int = 2,
    merged: bool | None = None,
    input_size: int | None = None,
    lrn_constants: tuple[int, float, float, float] = PAPER_LRN,
    lrn_across: bool = False,
    pool_ceil: bool = False,
) -> TwoTowerNet:
    """The paper's AlexNet on 227x227x3 images: 60,965,224 parameters for 1000 classes.

    Args:
        num_classes: outputs of fc8 (the paper: 1000).
        devices: 1 or 2 devices (``Device`` or names like "gpu:0"); tower a on
            ``devices[0]``, tower b on ``devices[-1]``, fc8 on ``devices[0]``.
            Default: ``[Device("cpu")]`` (both towers on the CPU).
        seed: weights (host draws, the same on any device) and dropout generators.
        init: "paper" (N(0, 0.01^2), biases 1 in conv2/4/5, fc6/7), "scaled"
            (U(-1/sqrt(fan_in), 1/sqrt(fan_in))) or "balanced" (He's, the raw pixels'
            scale spread over the layers, conv1 blind to the mean colour); see the
            module docstring.
        dtype: "float32" (training) or "float64" (gradient checks).
        activation, lrn, pool, towers: the paper's ablations (:class:`Variant`); the
            defaults are the paper's network.
        merged: run two towers that share one device as one network
            (:mod:`minialexnet.merged`: grouped convolutions, the same function and
            parameters, half the launches). Default (None): on one GPU yes; on the CPU
            and on two devices no (there the towers run at once, one per core or GPU).
        input_size: the images' side (default 227); fc6's inputs follow from it.
        lrn_constants, lrn_across, pool_ceil: for weights trained elsewhere, e.g. Caffe's
            bvlc_alexnet at 224x224 (:class:`Variant`, :mod:`minialexnet.convert`).

    Returns:
        a :class:`~minialexnet.towers.TwoTowerNet`; ``forward(x)`` takes (N, 3, 227, 227).
    """
    variant = Variant(activation, lrn, pool, towers, lrn_constants, lrn_across, pool_ceil)
    return _alexnet(ALEXNET, num_classes, devices, seed, init, dtype, variant, merged, input_size)


def alexnet_cifar(
    num_classes: int = 10,
    devices: Any = None,
    seed: int = 0,
    init: str = "paper",
    *,
    dtype: Any = "float32",
    activation: str = "relu",
    lrn: bool = True,
    pool: tuple[int, int] = (3, 2),
    towers: int = 2,
    merged: bool | None = None,
    input_size: int | None = None,
    lrn_constants: tuple[int, float, float, float] = PAPER_LRN,
    lrn_across: bool = False,
    pool_ceil: bool = False,
) -> TwoTowerNet:
    """AlexNet's topology for 32x32x3 images (CIFAR-10): 2,846,090 parameters for 10 classes.

    Per tower: conv1 32 5x5 s1 p2 (32 -> pool 15), conv2 64 5x5 p2 (-> pool 7), conv3 96,
    conv4 96, conv5 64 (3x3 p1, -> pool 3), fc6 512 (1152 in), fc7 512 (1024 in); fc8
    1024 -> num_classes. Same arguments as :func:`alexnet` (``merged`` too); input (N, 3, 32, 32).
    """
    variant = Variant(activation, lrn, pool, towers, lrn_constants, lrn_across, pool_ceil)
    return _alexnet(
        ALEXNET_CIFAR, num_classes, devices, seed, init, dtype, variant, merged, input_size
    )


def alexnet_owt(
    num_classes: int = 1000,
    devices: Any = None,
    seed: int = 0,
    init: str = "scaled",
    *,
    dtype: Any = "float32",
    activation: str = "relu",
    lrn: bool = False,
    pool: tuple[int, int] = (3, 2),
    input_size: int | None = None,
    lrn_constants: tuple[int, float, float, float] = PAPER_LRN,
    pool_ceil: bool = False,
) -> TwoTowerNet:
    """torchvision's AlexNet, the one-tower net of "One weird trick" (Krizhevsky 2014).

    The same code as :func:`alexnet` with one tower and no LRN: conv1 64 11x11 stride 4
    pad 2 (224 -> 55 -> pool 27), conv2 192 5x5 p2 (-> pool 13), conv3 384, conv4 256,
    conv5 256 (3x3 p1, -> pool 6), fc6 4096 (9216 in), fc7 4096, fc8 1000:
    61,100,840 parameters for 1000 classes, input (N, 3, 224, 224). Its dropout sits
    after fc6's and fc7's ReLUs as in the paper (torchvision's sits before fc6 and fc7):
    the same function at test time. ``init`` "scaled" is PyTorch's default.
    """
    variant = Variant(activation, lrn, pool, 1, lrn_constants, False, pool_ceil)
    return _alexnet(ALEXNET_OWT, num_classes, devices, seed, init, dtype, variant, None, input_size)


def cnn4(
    num_classes: int = 10,
    devices: Any = None,
    seed: int = 0,
    init: str = "paper",
    *,
    dtype: Any = "float32",
    activation: str = "relu",
    lrn: bool = True,
    pool: tuple[int, int] = (3, 2),
) -> TwoTowerNet:
    """The "four-layer CNN" of the paper's CIFAR-10 remarks [3.1, Figure 1; 3.3]: 32x32x3 input.

    Three convolutions and one fully connected layer, in the layout of cuda-convnet's
    CIFAR-10 net that the paper's authors used for those remarks, on one device:

        conv1 32 5x5 p2 -> act -> pool -> LRN     32 -> 15
        conv2 32 5x5 p2 -> act -> pool -> LRN     15 -> 7
        conv3 64 5x5 p2 -> act -> pool            7 -> 3
        fc    576 -> num_classes (softmax in the loss)

    85,098 parameters for 10 classes. ``activation``, ``lrn`` and ``pool`` as in
    :class:`Variant` (pool (2, 2) gives 32 -> 16 -> 8 -> 4 and fc 1024 -> classes). No
    dropout. ``devices``: one device (a list of one, or its name); ``init`` as for
    :func:`alexnet` (biases are 0 in every layer here, so "paper" is N(0, 0.01^2) weights:
    on raw 0-255 pixels its first loss is ln 10 and it learns at lr 0.01). The result is a
    :class:`TwoTowerNet` with one tower ("a"), so training, checkpoints and evaluation
    treat it like AlexNet.
    """
    devices = _devices(devices)
    if len(devices) != 1:
        raise ValueError(f"cnn4: runs on one device, got {[d.name for d in devices]}")
    if init not in INITS:
        raise ValueError(f"cnn4: init must be one of {INITS}, got {init!r}")
    _check_num_classes("cnn4", num_classes)
    variant = Variant(activation, lrn, pool, towers=1)
    device = devices[0]
    make = _LayerMaker(np.random.default_rng(seed), init, dtype, device, depth=4)
    size = 32
    for _ in range(3):
        size = _pooled(size, variant)
    layers: list[tuple[str, Any]] = []
    for i, (c_in, c_out) in enumerate([(3, 32), (32, 32), (32, 64)], start=1):
        layers += [(f"conv{i}", make.conv(c_in, c_out, 5, 1, 2, bias=0.0, image=i == 1)),
                   (f"{variant.activation}{i}", ACTIVATIONS[variant.activation]()),
                   (f"pool{i}", variant.make_pool())]  # fmt: skip
        if variant.lrn and i < 3:
            layers.append((f"norm{i}", variant.make_lrn()))
    layers.append(("flatten", Flatten()))
    head = Sequential([("fc", make.fc(64 * size**2, num_classes, bias=0.0, last=True))])
    stages = [
        ("input", Broadcast([device], dtype)),
        ("conv1-3", Towers([Sequential(layers)], [device])),
        ("to_fc", Gather([device])),
        ("fc", OnDevice(head, device)),
    ]
    config = {
        "arch": "cnn4",
        "num_classes": int(num_classes),
        "input_size": 32,
        "init": init,
        "dtype": np.dtype(dtype).name,
        **{k: v for k, v in variant.changes().items() if k != "towers"},
    }
    return TwoTowerNet(stages, devices=devices, input_size=32, dtype=dtype, config=config)


ARCHS = {
    "alexnet": alexnet,
    "alexnet-cifar": alexnet_cifar,
    "alexnet-owt": alexnet_owt,
    "cnn4": cnn4,
}


def model_from_config(config: dict[str, Any], devices: Any = None, seed: int = 0) -> TwoTowerNet:
    """Rebuild a model from its ``config`` (e.g. a checkpoint's), with fresh weights."""
    arch = config.get("arch")
    if arch not in ARCHS:
        raise ValueError(f"model_from_config: unknown arch {arch!r}; expected one of {list(ARCHS)}")
    variant = Variant.from_config(config)
    kwargs: dict[str, Any] = {
        "dtype": config.get("dtype", "float32"),
        "activation": variant.activation,
        "lrn": variant.lrn,
        "pool": variant.pool,
    }
    if arch != "cnn4":
        kwargs.update(
            input_size=config.get("input_size"),
            lrn_constants=variant.lrn_constants,
            pool_ceil=variant.pool_ceil,
        )
    if arch in ("alexnet", "alexnet-cifar"):
        kwargs.update(towers=variant.towers, lrn_across=variant.lrn_across)
    return ARCHS[arch](config["num_classes"], devices, seed, config.get("init", "paper"), **kwargs)
