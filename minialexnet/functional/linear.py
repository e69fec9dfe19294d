"""Fully connected (linear) layer.

Paper section 3.5: fc6 (9216 -> 4096), fc7 (4096 -> 4096) and fc8 (4096 -> 1000).

    out = x @ w.T + b        x (..., in_features), w (out_features, in_features),
                             b (out_features,), out (..., out_features)

Backward, with the leading axes flattened into one batch axis of size M:

    dx = dout @ w            (M, in)
    dw = dout.T @ x          (out, in)
    db = sum of dout over the batch
"""

from __future__ import annotations

from typing import Any

from . import _checks

__all__ = ["linear_forward", "linear_backward"]


def linear_forward(x: Any, w: Any, b: Any) -> tuple[Any, tuple]:
    """Linear forward: ``out = x @ w.T + b``.

    Args:
        x: inputs (..., in_features), usually (N, in_features).
        w: weights (out_features, in_features).
        b: bias (out_features,), or None.

    Returns:
        out (..., out_features) in x's dtype, and the cache for :func:`linear_backward`.
    """
    fn = "linear_forward"
    _checks.floating(x, fn, "x")
    _checks.floating(w, fn, "w")
    _checks.ndim(w, 2, fn, "w", "(out_features, in_features)")
    if x.ndim < 1 or x.shape[-1] != w.shape[1]:
        raise ValueError(
            f"{fn}: x has shape {tuple(x.shape)} but w has shape {tuple(w.shape)}: x's last axis "
            f"must equal in_features = w.shape[1] = {w.shape[1]} (flatten conv maps first)"
        )
    if b is not None:
        _checks.floating(b, fn, "b")
        if tuple(b.shape) != (w.shape[0],):
            raise ValueError(f"{fn}: b must have shape ({w.shape[0]},), got {tuple(b.shape)}")
    out = x @ w.astype(x.dtype, copy=False).T
    if b is not None:
        out += b.astype(x.dtype, copy=False)
    return out, (x, w, b)


def linear_backward(dout: Any, cache: tuple, need_dx: bool = True) -> tuple[Any, Any, Any]:
    """Linear backward: ``dx = dout @ w``, ``dw = dout.T @ x``, ``db = dout summed over the batch``.

    Returns (dx, dw, db) shaped like x, w, b (db None when b was None; dx None when
    ``need_dx`` is False: a first layer, whose input needs no gradient).
    """
    x, w, b = cache
    _checks.dout_shape(dout, x.shape[:-1] + (w.shape[0],), "linear_backward")
    dout = dout.astype(x.dtype, copy=False)
    dout2 = dout.reshape(-1, w.shape[0])
    x2 = x.reshape(-1, w.shape[1])
    dx = (dout @ w.astype(x.dtype, copy=False)).astype(x.dtype, copy=False) if need_dx else None
    dw = (dout2.T @ x2).astype(w.dtype, copy=False)
    db = None if b is None else dout2.sum(axis=0).astype(b.dtype, copy=False)
    return dx, dw, db
