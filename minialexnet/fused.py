"""Fused elementwise passes for CuPy arrays: several array operations in one GPU launch.

The readable code does each step of an update as its own whole-array operation;
on a GPU each is a kernel launch and a full pass through memory. Here the hot ones
are written once more as a single CuPy ``ElementwiseKernel`` each, used only for
CuPy arrays (``MINIALEXNET_KERNELS=0`` switches them off with the CUDA kernels):

    sgd_update     the paper's update [5] in one pass instead of six:
                       v <- momentum * v - (weight_decay * lr) * w - lr * grad
                       w <- w + v
                   (optim.SGD.step; the generic code: six operations per parameter,
                   204 launches per step for the paper model)
    relu_backward  dx = dout * [out > 0] in one pass instead of two

Each computes exactly what the generic code computes, in the same order, with
every product rounded on its own (``__fmul_rn``: never fused into a multiply-add),
so results are the same bit for bit. Instructor-only in a released student copy,
like :mod:`minialexnet.functional.cuda_kernels` (the SGD update is an exercise).
"""

from __future__ import annotations

import os
from typing import Any

from .backend import get_array_module

__all__ = ["enabled", "sgd_update", "relu_backward"]

_PREAMBLE = r"""
__device__ float mul_rn(float a, float b) { return __fmul_rn(a, b); }
__device__ double mul_rn(double a, double b) { return __dmul_rn(a, b); }
"""

_kernels: dict[str, Any] = {}


def enabled(x: Any) -> bool:
    """True when ``x`` is a float32/float64 CuPy array, unless ``MINIALEXNET_KERNELS=0``."""
    if os.environ.get("MINIALEXNET_KERNELS", "1").strip() == "0":
        return False
    return get_array_module(x).__name__ == "cupy" and x.dtype.char in "fd"


def _kernel(name: str) -> Any:
    """The ElementwiseKernel ``name``, made once (CuPy compiles it per dtype and device)."""
    if name not in _kernels:
        import cupy  # noqa: PLC0415 -- only reached with CuPy arrays

        if name == "sgd":
            _kernels[name] = cupy.ElementwiseKernel(
                "T grad, T momentum, T decay_lr, T lr",
                "T w, T v",
                """
                T vel = mul_rn(v, momentum);
                if (decay_lr != (T)0) vel = vel - mul_rn(decay_lr, w);
                vel = vel - mul_rn(lr, grad);
                v = vel;
                w = w + vel;
                """,
                "minialexnet_sgd_update",
                preamble=_PREAMBLE,
            )
        elif name == "relu_backward":
            _kernels[name] = cupy.ElementwiseKernel(
                "T dout, T out",
                "T dx",
                "dx = dout * (out > (T)0 ? (T)1 : (T)0)",
                "minialexnet_relu_bwd",
            )
    return _kernels[name]


def sgd_update(w: Any, grad: Any, v: Any, lr: float, momentum: float, weight_decay: float) -> None:
    """The paper's SGD step for one parameter, in place, in one launch (see the module).

    ``w``, ``grad`` and ``v`` are CuPy arrays of one shape and dtype on one device.
    """
    t = w.dtype.type
    _kernel("sgd")(grad, t(momentum), t(weight_decay * lr), t(lr), w, v)


def relu_backward(dout: Any, out: Any) -> Any:
    """``dout * [out > 0]`` in out's dtype, in one launch (dout any float dtype)."""
    return _kernel("relu_backward")(dout.astype(out.dtype, copy=False), out)
