"""Layers: the functional ops of ``minialexnet.functional`` with their state attached.

A layer holds three things the pure functions do not:

* ``params``: its learnable arrays by name (``"w"``, ``"b"``); empty for layers
  without parameters.
* ``grads``: the gradient of the loss with respect to each parameter, same keys
  and shapes as ``params``. ``backward`` overwrites it (no accumulation), in
  place, so a reference to a gradient array stays valid across steps.
* ``cache``: what ``forward`` saved for ``backward`` (``NO_CACHE`` before the
  first ``forward``).

Every layer has the same four methods::

    out = layer.forward(x, train=True)   # stores the cache
    dx = layer.backward(dout)             # fills layer.grads, returns dL/dx
    for name, param, grad in layer.parameters(): ...
    layer.zero_grad()                     # grads <- 0

``Sequential`` chains layers: forward in order, backward in reverse, and
names every parameter with a dotted path (``"conv1.w"``, ``"block.0.b"``).

Parameters are drawn on the host with a NumPy ``Generator`` and then moved to
the layer's device, so the same seed gives bit-identical weights on the CPU and
on a GPU. Pass one generator to all the layers of a model: the default,
``np.random.default_rng(0)`` per layer, gives two layers of the same shape the
same weights.

Section numbers ([3.3] etc.) refer to the paper, summarised in ``paper.md``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from .backend import Device
from .functional import (
    conv2d_backward,
    conv2d_forward,
    dropout_backward,
    dropout_forward,
    linear_backward,
    linear_forward,
    lrn_backward,
    lrn_forward,
    maxpool2d_backward,
    maxpool2d_forward,
    relu_backward,
    relu_forward,
    tanh_backward,
    tanh_forward,
)
from .functional._checks import pair

__all__ = [
    "Layer",
    "Conv2d",
    "MaxPool2d",
    "LRN",
    "ReLU",
    "Tanh",
    "Dropout",
    "Linear",
    "Flatten",
    "Sequential",
]


# -- argument checks ---------------------------------------------------------------------------


def _positive_int(value: Any, cls: str, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{cls}: {name} must be a positive int, got {value!r}")
    return int(value)


def _real(value: Any, cls: str, name: str, minimum: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{cls}: {name} must be a real number, got {value!r}")
    if not math.isfinite(value) or (minimum is not None and value < minimum):
        bound = "finite" if minimum is None else f"finite and >= {minimum}"
        raise ValueError(f"{cls}: {name} must be {bound}, got {value!r}")
    return float(value)


def _float_dtype(dtype: Any, cls: str) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"{cls}: dtype must be 'float32' or 'float64', got {dtype!r}")
    return dt


def _host_rng(rng: Any, cls: str) -> np.random.Generator:
    if rng is None:
        return np.random.default_rng(0)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"{cls}: rng must be a numpy Generator (weights are drawn on the host so that a "
            f"seed gives the same weights on every device), got {type(rng).__name__}; "
            "pass np.random.default_rng(seed)"
        )
    return rng


def _device(device: Any) -> Device:
    return Device("cpu") if device is None else Device(device)


# -- the base class ----------------------------------------------------------------------------

NO_CACHE: Any = object()
"""``layer.cache`` before the first forward (not ``None``: an op's cache may itself be ``None``)."""


class Layer:
    """Base class: empty ``params``/``grads``, the cache, and the shared methods.

    A subclass implements ``forward(x, train)`` (saving ``self.cache``) and
    ``backward(dout)`` (starting with ``self._cache_or_raise()``).
    """

    def __init__(self) -> None:
        self.params: dict[str, Any] = {}
        self.grads: dict[str, Any] = {}
        self.cache: Any = NO_CACHE

    def forward(self, x: Any, train: bool = True) -> Any:
        """The layer's output for ``x``; keeps what backward needs in ``self.cache``.

        ``train`` matters only to layers that act differently at test time (dropout).
        """
        raise NotImplementedError

    def backward(self, dout: Any) -> Any:
        """dL/dx from ``dout`` = dL/d(output) of the last forward; fills ``grads`` if any."""
        raise NotImplementedError

    def parameters(self) -> Iterator[tuple[str, Any, Any]]:
        """``(name, param, grad)`` for every parameter of this layer."""
        for name, param in self.params.items():
            yield name, param, self.grads[name]

    def zero_grad(self) -> None:
        """Set every gradient to zero (in place)."""
        for grad in self.grads.values():
            grad.fill(0)

    def _cache_or_raise(self) -> Any:
        if self.cache is NO_CACHE:
            raise RuntimeError(
                f"{type(self).__name__}.backward called before forward: call forward(x) first, "
                "backward uses what it saved"
            )
        return self.cache

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


# -- layers with parameters --------------------------------------------------------------------


class _WeightLayer(Layer):
    """What Conv2d and Linear share: a weight ``w``, an optional bias ``b``, a device.

    Initialisation as the paper's [5]: ``w ~ N(0, weight_std^2)`` drawn on the host
    with ``rng``, ``b = bias_value``, both cast to ``dtype`` and moved to ``device``.

    Subclasses set ``_op_backward`` to their functional backward (``(dout, cache,
    need_dx) -> (dx, dw, db)``) and write their own ``forward``.

    ``input_grad`` (True unless set): False makes ``backward`` skip dx and return
    None, for a network's first layer, whose input (the images) needs no gradient
    (:attr:`minialexnet.towers.TwoTowerNet.input_grad`).
    """

    input_grad: bool = True

    def _init_params(
        self,
        cls: str,
        w_shape: tuple[int, ...],
        bias: bool,
        weight_std: float,
        bias_value: float,
        rng: Any,
        device: Any,
        dtype: Any,
    ) -> None:
        weight_std = _real(weight_std, cls, "weight_std", minimum=0.0)
        bias_value = _real(bias_value, cls, "bias_value")
        self.dtype = _float_dtype(dtype, cls)
        self.device = _device(device)
        rng = _host_rng(rng, cls)

        w = (weight_std * rng.standard_normal(w_shape)).astype(self.dtype)
        self.params["w"] = self.device.asarray(w)
        if bias:
            self.params["b"] = self.device.asarray(np.full(w_shape[0], bias_value, self.dtype))
        with self.device:
            self.grads = {k: self.device.xp.zeros_like(v) for k, v in self.params.items()}

    def backward(self, dout: Any) -> Any:
        """dx from the op's backward (None if not ``input_grad``); dw and db go into ``grads``."""
        cache = self._cache_or_raise()
        with self.device:
            dx, dw, db = self._op_backward(dout, cache, need_dx=self.input_grad)
            self._store_grads(dw, db)
        return dx

    def _store_grads(self, dw: Any, db: Any) -> None:
        """Overwrite the gradients in place (an optimizer may hold references to them)."""
        self.grads["w"][...] = dw
        if "b" in self.grads:
            self.grads["b"][...] = db

    def zero_grad(self) -> None:
        with self.device:  # on a GPU, work on the GPU that holds the arrays
            super().zero_grad()


class Conv2d(_WeightLayer):
    """2-D convolution (cross-correlation), NCHW [3.5].

    ``out[n, o, i, j] = b[o] + sum_{c, p, q} w[o, c, p, q] * x_pad[n, g*C_in/groups + c,
    i*stride_h + p, j*stride_w + q]``, where ``g`` is the group of output channel ``o``.

    Shapes: x (N, C_in, H, W) -> out (N, C_out, H_out, W_out) with
    ``H_out = (H + 2*pad_h - KH) // stride_h + 1`` (same for W).
    Parameters: ``w`` (C_out, C_in/groups, KH, KW), ``b`` (C_out,) unless ``bias=False``.

    ``groups=2`` splits the channels into two halves that never see each other:
    the paper's conv2, conv4 and conv5, whose kernels see only the maps of
    their own GPU [3.2].

    Initialisation [5]: ``w ~ N(0, weight_std^2)`` (the paper: 0.01), ``b = bias_value``
    (the paper: 1 in conv2, conv4, conv5, so the ReLUs start positive; 0 elsewhere).
    ``col_bytes`` bounds the im2col buffer of the functional op (any value, same result).
    """

    _op_backward = staticmethod(conv2d_backward)

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        pad: int | tuple[int, int] = 0,
        groups: int = 1,
        bias: bool = True,
        *,
        weight_std: float = 0.01,
        bias_value: float = 0.0,
        rng: np.random.Generator | None = None,
        device: Device | str | None = None,
        dtype: Any = "float32",
        col_bytes: int | None = None,
    ) -> None:
        super().__init__()
        name = "Conv2d"
        self.in_channels = _positive_int(in_channels, name, "in_channels")
        self.out_channels = _positive_int(out_channels, name, "out_channels")
        self.kernel_size = pair(kernel_size, name, "kernel_size", 1)
        self.stride = pair(stride, name, "stride", 1)
        self.pad = pair(pad, name, "pad", 0)
        self.groups = _positive_int(groups, name, "groups")
        if self.in_channels % self.groups or self.out_channels % self.groups:
            raise ValueError(
                f"Conv2d: in_channels ({in_channels}) and out_channels ({out_channels}) must "
                f"both be divisible by groups ({groups})"
            )
        self.col_bytes = col_bytes
        w_shape = (self.out_channels, self.in_channels // self.groups, *self.kernel_size)
        self._init_params(name, w_shape, bias, weight_std, bias_value, rng, device, dtype)

    def forward(self, x: Any, train: bool = True) -> Any:
        with self.device:
            out, self.cache = conv2d_forward(
                x,
                self.params["w"],
                self.params.get("b"),
                stride=self.stride,
                pad=self.pad,
                groups=self.groups,
                col_bytes=self.col_bytes,
            )
        return out

    def __repr__(self) -> str:
        return (
            f"Conv2d({self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, pad={self.pad}, groups={self.groups}, "
            f"bias={'b' in self.params}, dtype={self.dtype.name}, device={self.device.name!r})"
        )


class Linear(_WeightLayer):
    """Fully connected layer: ``out = x @ w.T + b`` [3.5] (the paper's fc6, fc7, fc8).

    Shapes: x (..., in_features) -> out (..., out_features).
    Parameters: ``w`` (out_features, in_features), ``b`` (out_features,) unless ``bias=False``.

    Initialisation [5]: ``w ~ N(0, weight_std^2)`` (the paper: 0.01), ``b = bias_value``
    (the paper: 1 in fc6 and fc7, 0 in fc8).
    """

    _op_backward = staticmethod(linear_backward)

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        weight_std: float = 0.01,
        bias_value: float = 0.0,
        rng: np.random.Generator | None = None,
        device: Device | str | None = None,
        dtype: Any = "float32",
    ) -> None:
        super().__init__()
        name = "Linear"
        self.in_features = _positive_int(in_features, name, "in_features")
        self.out_features = _positive_int(out_features, name, "out_features")
        w_shape = (self.out_features, self.in_features)
        self._init_params(name, w_shape, bias, weight_std, bias_value, rng, device, dtype)

    def forward(self, x: Any, train: bool = True) -> Any:
        with self.device:
            out, self.cache = linear_forward(x, self.params["w"], self.params.get("b"))
        return out

    def __repr__(self) -> str:
        return (
            f"Linear({self.in_features}, {self.out_features}, bias={'b' in self.params}, "
            f"dtype={self.dtype.name}, device={self.device.name!r})"
        )


# -- layers without parameters -----------------------------------------------------------------


class MaxPool2d(Layer):
    """Max pooling over ``size x size`` windows moved by ``stride``, no padding [3.4].

    ``out[n, c, i, j] = max_{p, q < size} x[n, c, i*stride + p, j*stride + q]``.
    Shapes: (N, C, H, W) -> (N, C, OH, OW) with, per axis,

    - floor mode (the default): ``OH = (H - size)//stride + 1``;
    - ``ceil_mode=True``: ``OH = ceil((H - size)/stride) + 1``, less one if that last
      window would start at or past the end, ``(OH - 1)*stride >= H`` (PyTorch's rule,
      :func:`~minialexnet.functional.pool.pooled_size`); a window hanging over the edge
      pools the pixels that are there.

    The paper overlaps the windows: size 3, stride 2 (the defaults). Ceil mode is
    Caffe's (its pooling always rounds up) and an option of PyTorch and ONNX: the ONNX
    model zoo's BVLC AlexNet declares a 224x224 input and needs it to keep 6x6 maps at
    pool5 (224 -> conv1 54 -> pool1 27 -> pool2 13 -> pool5 6; floor mode gives 26 at
    pool1 and 5 at pool5).
    """

    def __init__(
        self,
        size: int | tuple[int, int] = 3,
        stride: int | tuple[int, int] = 2,
        ceil_mode: bool = False,
    ) -> None:
        super().__init__()
        self.size = pair(size, "MaxPool2d", "size", 1)
        self.stride = pair(stride, "MaxPool2d", "stride", 1)
        if not isinstance(ceil_mode, (bool, np.bool_)):
            got = f"{ceil_mode!r} ({type(ceil_mode).__name__})"
            raise TypeError(f"MaxPool2d: ceil_mode must be True or False, got {got}")
        self.ceil_mode = bool(ceil_mode)

    def forward(self, x: Any, train: bool = True) -> Any:
        out, self.cache = maxpool2d_forward(x, self.size, self.stride, ceil_mode=self.ceil_mode)
        return out

    def backward(self, dout: Any) -> Any:
        return maxpool2d_backward(dout, self._cache_or_raise())

    def __repr__(self) -> str:
        ceil = ", ceil_mode=True" if self.ceil_mode else ""
        return f"MaxPool2d(size={self.size}, stride={self.stride}{ceil})"


class LRN(Layer):
    """Local response normalisation across channels [3.3].

    ``b[c] = a[c] / (k + alpha * sum_{c'} a[c']^2)^beta``, the sum over the ``n``
    channels ``c - n//2 .. c + (n-1)//2`` that exist, at the same position.
    Shape unchanged (channel axis 1). The paper: n=5, k=2, alpha=1e-4, beta=0.75,
    after the ReLU of conv1 and conv2. Here ``alpha`` multiplies the plain sum;
    PyTorch's and Caffe's alpha is ``n`` times larger (they use the mean).

    ``groups=2``: the channels are two halves normalised apart, a window never
    reaching across (the paper's two towers in one network, each normalising its own
    maps). The input (N, C, ...) is viewed as (N*groups, C/groups, ...): no copy.
    """

    def __init__(
        self, n: int = 5, k: float = 2.0, alpha: float = 1e-4, beta: float = 0.75, groups: int = 1
    ) -> None:
        super().__init__()
        self.n = _positive_int(n, "LRN", "n")
        self.k = _real(k, "LRN", "k")
        self.alpha = _real(alpha, "LRN", "alpha")
        self.beta = _real(beta, "LRN", "beta")
        self.groups = _positive_int(groups, "LRN", "groups")

    def _grouped(self, x: Any) -> Any:
        """x (N, C, ...) as (N*groups, C/groups, ...)."""
        if self.groups == 1:
            return x
        if x.ndim < 2 or x.shape[1] % self.groups:
            raise ValueError(
                f"LRN: groups={self.groups} needs a channel axis (axis 1) divisible by it, got "
                f"shape {tuple(x.shape)}"
            )
        return x.reshape(x.shape[0] * self.groups, x.shape[1] // self.groups, *x.shape[2:])

    def forward(self, x: Any, train: bool = True) -> Any:
        out, cache = lrn_forward(self._grouped(x), self.n, self.k, self.alpha, self.beta)
        self.cache = (x.shape, cache)
        return out.reshape(x.shape)

    def backward(self, dout: Any) -> Any:
        shape, cache = self._cache_or_raise()
        if tuple(dout.shape) != tuple(shape):
            raise ValueError(
                f"LRN.backward: dout has shape {tuple(dout.shape)} but the forward output had "
                f"shape {tuple(shape)}"
            )
        return lrn_backward(self._grouped(dout), cache).reshape(shape)

    def __repr__(self) -> str:
        groups = f", groups={self.groups}" if self.groups != 1 else ""
        return f"LRN(n={self.n}, k={self.k}, alpha={self.alpha}, beta={self.beta}{groups})"


class ReLU(Layer):
    """Rectified linear unit ``f(x) = max(0, x)``, elementwise, any shape [3.1].

    The paper's non-linearity after every conv and hidden fc layer.
    """

    def forward(self, x: Any, train: bool = True) -> Any:
        out, self.cache = relu_forward(x)
        return out

    def backward(self, dout: Any) -> Any:
        return relu_backward(dout, self._cache_or_raise())


class Tanh(Layer):
    """Hyperbolic tangent ``f(x) = tanh(x)``, elementwise, any shape.

    The saturating non-linearity the paper compares ReLU against [3.1, Figure 1].
    """

    def forward(self, x: Any, train: bool = True) -> Any:
        out, self.cache = tanh_forward(x)
        return out

    def backward(self, dout: Any) -> Any:
        return tanh_backward(dout, self._cache_or_raise())


class Dropout(Layer):
    """Dropout: each unit is zeroed with probability ``p`` while training [4].

    ``mode="inverted"`` (default): train ``out = x * mask / (1 - p)``, eval ``out = x``.
    ``mode="paper"``: train ``out = x * mask``, eval ``out = x * (1 - p)``, as the paper
    ("multiply the outputs by 0.5" at test time). Both have the same expectation.
    ``mask = rng.random(x.shape) >= p``; any shape. The paper: p=0.5 after fc6 and fc7.

    ``rng`` draws the masks: a NumPy Generator for CPU arrays (default
    ``np.random.default_rng(0)``), ``device.rng(seed)`` for arrays on a GPU.
    ``forward(x, train=False)`` draws nothing.
    """

    def __init__(self, p: float = 0.5, *, mode: str = "inverted", rng: Any = None) -> None:
        super().__init__()
        self.p = _real(p, "Dropout", "p", minimum=0.0)
        if not self.p < 1.0:
            raise ValueError(f"Dropout: p (the probability of dropping) must be in [0, 1), got {p}")
        if mode not in ("inverted", "paper"):
            raise ValueError(f"Dropout: mode must be 'inverted' or 'paper', got {mode!r}")
        self.mode = mode
        self.rng = np.random.default_rng(0) if rng is None else rng

    def forward(self, x: Any, train: bool = True) -> Any:
        rng = self.rng if train else None
        out, self.cache = dropout_forward(x, self.p, rng, train, mode=self.mode)
        return out

    def backward(self, dout: Any) -> Any:
        return dropout_backward(dout, self._cache_or_raise())

    def __repr__(self) -> str:
        return f"Dropout(p={self.p}, mode={self.mode!r})"


class Flatten(Layer):
    """Reshape (N, d1, d2, ...) -> (N, d1*d2*...), e.g. pool5's (N, 256, 6, 6) -> fc6's 9216 [3.5].

    Backward reshapes the gradient back to the input's shape.
    """

    def forward(self, x: Any, train: bool = True) -> Any:
        if x.ndim < 2:
            raise ValueError(
                f"Flatten: x must have a batch axis and at least one more, got shape {x.shape}"
            )
        self.cache = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dout: Any) -> Any:
        shape = self._cache_or_raise()
        expected = (shape[0], math.prod(shape[1:]))
        if tuple(dout.shape) != expected:
            raise ValueError(
                f"Flatten.backward: dout has shape {tuple(dout.shape)} but the forward output "
                f"had shape {expected}"
            )
        return dout.reshape(shape)


# -- containers --------------------------------------------------------------------------------


_LAYER_METHODS = ("forward", "backward", "parameters", "zero_grad")


class Sequential(Layer):
    """Layers applied one after another: ``out = f_k(... f_2(f_1(x)))``.

    ``backward`` runs the layers' backwards in reverse order (the chain rule).
    Build it from layers (named "0", "1", ...), or from named layers, given as a
    dict/OrderedDict or a list of ``(name, layer)`` pairs::

        Sequential(Conv2d(3, 8, 3), ReLU())
        Sequential([("conv1", Conv2d(3, 8, 3)), ("relu1", ReLU())])

    ``parameters()`` names each parameter by its path: ``"conv1.w"``, or
    ``"block.0.w"`` for a Sequential inside a Sequential. ``params`` and
    ``grads`` are dicts built from those names on each access (the arrays are
    the layers' own). ``model[i]``, ``model["conv1"]``, ``model[a:b]`` (a new
    Sequential sharing the layers), ``len(model)`` and ``for layer in model``
    work as for a list.
    """

    def __init__(self, *layers: Any) -> None:
        # No Layer.__init__: params and grads are properties here, built from the children.
        if len(layers) == 1 and isinstance(layers[0], Mapping):
            named = list(layers[0].items())
        elif len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            named = list(layers[0])
            if not all(isinstance(p, tuple) and len(p) == 2 for p in named):
                raise ValueError(
                    "Sequential: a single list argument must hold (name, layer) pairs; "
                    "pass plain layers as separate arguments: Sequential(layer1, layer2)"
                )
        else:
            named = [(str(i), layer) for i, layer in enumerate(layers)]
        if not named:
            raise ValueError("Sequential: needs at least one layer")
        for name, layer in named:
            if not isinstance(name, str) or not name or "." in name:
                raise ValueError(
                    f"Sequential: layer names must be non-empty strings without '.', got {name!r}"
                )
            if not all(callable(getattr(layer, m, None)) for m in _LAYER_METHODS):
                raise TypeError(
                    f"Sequential: {name!r} is a {type(layer).__name__}, not a layer "
                    f"(needs the methods {', '.join(_LAYER_METHODS)})"
                )
        names = [name for name, _ in named]
        if len(set(names)) != len(names):
            raise ValueError(f"Sequential: layer names must be unique, got {names}")
        self.names: list[str] = names
        self.layers: list[Any] = [layer for _, layer in named]

    def forward(self, x: Any, train: bool = True) -> Any:
        for layer in self.layers:
            x = layer.forward(x, train=train)
        return x

    def backward(self, dout: Any) -> Any:
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return dout

    def parameters(self) -> Iterator[tuple[str, Any, Any]]:
        """``("<layer name>.<param name>", param, grad)`` for every parameter, in order."""
        for name, layer in zip(self.names, self.layers, strict=True):
            for pname, param, grad in layer.parameters():
                yield f"{name}.{pname}", param, grad

    @property
    def params(self) -> dict[str, Any]:  # type: ignore[override]
        """Every parameter by its name (``"conv1.w"``), the layers' own arrays."""
        return {name: p for name, p, _ in self.parameters()}

    @property
    def grads(self) -> dict[str, Any]:  # type: ignore[override]
        """Every gradient by its parameter's name, the layers' own arrays."""
        return {name: g for name, _, g in self.parameters()}

    def zero_grad(self) -> None:
        for layer in self.layers:
            layer.zero_grad()

    def named_layers(self) -> Iterable[tuple[str, Any]]:
        """``(name, layer)`` pairs of the direct children, in order."""
        return zip(self.names, self.layers, strict=True)

    def __getitem__(self, key: int | str | slice) -> Any:
        if isinstance(key, str):
            if key not in self.names:
                raise KeyError(f"Sequential: no layer named {key!r}; names are {self.names}")
            return self.layers[self.names.index(key)]
        if isinstance(key, slice):
            return Sequential(list(zip(self.names[key], self.layers[key], strict=True)))
        return self.layers[key]

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.layers)

    def __repr__(self) -> str:
        lines = ["Sequential("]
        for name, layer in zip(self.names, self.layers, strict=True):
            child = repr(layer).replace("\n", "\n  ")
            lines.append(f"  ({name}): {child}")
        lines.append(")")
        return "\n".join(lines)
