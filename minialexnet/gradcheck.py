"""Gradient checking: compare an analytic backward with centred finite differences.

For a forward ``out = f(x)`` and a fixed random upstream gradient ``dout``, the
scalar ``L(x) = sum(f(x) * dout)`` has gradient ``dL/dx = backward(dout)``. Each
entry of that gradient is estimated by centred differences

    dL/dx[i] ~= (L(x + eps e_i) - L(x - eps e_i)) / (2 eps)

whose error is O(eps^2) (truncation) plus O(u / eps) (rounding, u = 1.1e-16 in
float64). With eps = 1e-6 in float64 both are about 1e-10 relative, so a correct
backward of a smooth op agrees to a relative error far below 1e-6, and a wrong
one (a missing term, an off-by-one window) is off by 1e-2 or more.

The relative error reported is norm-wise, ``||a - n|| / max(||a|| + ||n||, tiny)``,
so entries that are near zero cannot blow it up.

Thresholds, and why kinks need care:
    * < 1e-7   smooth ops in float64 (conv, linear, LRN, tanh, softmax): expect ~1e-10.
    * < 1e-6   what the test-suite asserts for every op.
    * > 1e-4   almost certainly a bug.
    ReLU, max pooling, the hinge loss and dropout are not differentiable
    everywhere: at a kink (an input at 0 for ReLU, two equal maxima in a pooling
    window, a margin exactly at 0) the two sides of the difference see different
    pieces, and the finite difference is meaningless there. Draw inputs away
    from kinks (e.g. |x| > 10 eps, distinct values in each window) before
    checking; a large error at a kink is not a bug.

Always check in float64: float32 has u = 6e-8, which makes finite differences
accurate to only about 1e-3.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .backend import get_array_module, to_numpy

__all__ = ["numerical_gradient", "relative_error", "check_function", "check_layer"]


def relative_error(a: Any, b: Any) -> float:
    """Norm-wise relative error ``||a - b|| / max(||a|| + ||b||, 1e-300)``."""
    a = to_numpy(a).astype(np.float64)
    b = to_numpy(b).astype(np.float64)
    if a.shape != b.shape:
        raise ValueError(f"relative_error: shapes differ, {a.shape} vs {b.shape}")
    denom = max(float(np.linalg.norm(a) + np.linalg.norm(b)), 1e-300)
    return float(np.linalg.norm(a - b)) / denom


def numerical_gradient(f: Callable[[Any], Any], x: Any, dout: Any, eps: float = 1e-6) -> Any:
    """Centred-difference gradient of ``sum(f(x) * dout)`` with respect to ``x``.

    ``x`` is perturbed in place one entry at a time and restored exactly; pass a
    float64 array. Costs two calls of ``f`` per entry of ``x``.
    """
    xp = get_array_module(x)
    if x.dtype != np.float64:
        raise TypeError(f"numerical_gradient: x must be float64 for a useful check, got {x.dtype}")
    if not x.flags.c_contiguous:
        raise ValueError("numerical_gradient: x must be C-contiguous (pass x.copy())")
    grad = xp.zeros_like(x)
    flat_x = x.reshape(-1)  # a view, so writing to it perturbs x
    flat_g = grad.reshape(-1)
    for i in range(flat_x.size):
        old = flat_x[i].item()
        flat_x[i] = old + eps
        plus = float(xp.sum(f(x) * dout))
        flat_x[i] = old - eps
        minus = float(xp.sum(f(x) * dout))
        flat_x[i] = old
        flat_g[i] = (plus - minus) / (2 * eps)
    return grad


def check_function(
    forward: Callable[..., tuple[Any, Any]],
    backward: Callable[[Any, Any], Any],
    inputs: Mapping[str, Any],
    *,
    wrt: list[str] | None = None,
    seed: int = 0,
    eps: float = 1e-6,
) -> dict[str, float]:
    """Check a functional pair ``out, cache = forward(**inputs)``, ``backward(dout, cache)``.

    ``backward`` returns one gradient, or a tuple of gradients in the order of
    ``inputs``. ``wrt`` names the inputs to check (default: all of them);
    ``None`` entries of the returned tuple are skipped. The upstream gradient
    is a fixed standard-normal array (seeded), so every output entry matters.
    Returns ``{name: relative error}``.

        >>> from minialexnet.functional import conv2d_forward, conv2d_backward
        >>> errs = check_function(lambda x, w, b: conv2d_forward(x, w, b, stride=2),
        ...                       conv2d_backward, {"x": x, "w": w, "b": b})
    """
    names = list(inputs)
    inputs = {k: v.copy() for k, v in inputs.items()}
    out, cache = forward(**inputs)
    xp = get_array_module(out)
    dout = xp.asarray(np.random.default_rng(seed).standard_normal(out.shape)).astype(out.dtype)
    grads = backward(dout, cache)
    if not isinstance(grads, tuple):
        grads = (grads,)
    if len(grads) != len(names):
        raise ValueError(
            f"check_function: backward returned {len(grads)} gradients for inputs {names}"
        )
    errors: dict[str, float] = {}
    for name, analytic in zip(names, grads, strict=True):
        if (wrt is not None and name not in wrt) or analytic is None:
            continue

        def f(value: Any, name: str = name) -> Any:
            return forward(**{**inputs, name: value})[0]

        numeric = numerical_gradient(f, inputs[name], dout, eps=eps)
        errors[name] = relative_error(analytic, numeric)
    return errors


def check_layer(
    layer: Any, x: Any, *, train: bool = True, seed: int = 0, eps: float = 1e-6
) -> dict[str, float]:
    """Check a layer's ``backward`` against finite differences, for ``x`` and every parameter.

    The layer must be deterministic between calls (re-seed dropout layers, or
    use ``train=False``). Parameters are perturbed in place and restored.
    Returns ``{"x": err, "<param name>": err, ...}``.
    """
    x = x.copy()
    out = layer.forward(x, train=train)
    xp = get_array_module(out)
    dout = xp.asarray(np.random.default_rng(seed).standard_normal(out.shape)).astype(out.dtype)
    dx = layer.backward(dout)
    analytic = {"x": dx.copy()}
    analytic.update({name: g.copy() for name, _, g in layer.parameters()})
    params = {name: p for name, p, _ in layer.parameters()}

    errors = {
        "x": relative_error(
            analytic["x"], numerical_gradient(lambda v: layer.forward(v, train=train), x, dout, eps)
        )
    }
    for name, p in params.items():
        numeric = numerical_gradient(lambda _v: layer.forward(x, train=train), p, dout, eps)
        errors[name] = relative_error(analytic[name], numeric)
    return errors
