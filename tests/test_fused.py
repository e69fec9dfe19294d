"""The one-launch CuPy passes of minialexnet.fused against the generic array code.

On a GPU, ``optim.SGD.step`` and ``relu_backward`` take the fused kernels; with
``MINIALEXNET_KERNELS=0`` they run the generic code. Both must give the same numbers,
bit for bit (the kernels round every product on its own, in the generic order). On
the CPU the fused path is never taken: the dispatch is checked there.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import needs_gpu

from minialexnet import fused
from minialexnet.functional import relu_backward, relu_forward
from minialexnet.optim import SGD


def test_the_fused_passes_are_for_cupy_arrays_only(monkeypatch):
    assert not fused.enabled(np.ones(3, np.float32))
    monkeypatch.setenv("MINIALEXNET_KERNELS", "0")
    assert not fused.enabled(np.ones(3, np.float32))


def _sgd_run(xp, steps: int, dtype) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    shapes = {"w": (64, 3, 5, 5), "b": (64,), "fc": (10, 300)}
    params = {k: xp.asarray(rng.standard_normal(s).astype(dtype)) for k, s in shapes.items()}
    grads = {k: xp.zeros_like(p) for k, p in params.items()}
    opt = SGD([(k, params[k], grads[k]) for k in shapes], lr=0.01, momentum=0.9, weight_decay=5e-4)
    for step in range(steps):
        for g in grads.values():
            g[...] = xp.asarray(np.random.default_rng(step).standard_normal(g.shape).astype(dtype))
        if step == 1:
            opt.lr = 0.001  # the velocity keeps the old rate's steps
        if step == 2:
            opt.weight_decay = 0.0  # the branch without decay
        opt.step()
    out = {k: np.asarray(p.get() if hasattr(p, "get") else p) for k, p in params.items()}
    out |= {
        f"v.{k}": np.asarray(v.get() if hasattr(v, "get") else v) for k, v in opt.velocity.items()
    }
    return out


@needs_gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_sgd_step_equals_the_generic_step_bit_for_bit(monkeypatch, dtype):
    import cupy

    fast = _sgd_run(cupy, 4, dtype)
    monkeypatch.setenv("MINIALEXNET_KERNELS", "0")
    generic = _sgd_run(cupy, 4, dtype)
    cpu = _sgd_run(np, 4, dtype)
    for k in fast:
        np.testing.assert_array_equal(fast[k], generic[k], err_msg=k)
        np.testing.assert_allclose(fast[k], cpu[k], rtol=1e-6, atol=1e-7, err_msg=k)


@needs_gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_relu_backward_equals_the_generic_one(monkeypatch, dtype):
    import cupy

    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 7, 5, 5)).astype(dtype)
    x[0, 0, 0, :3] = [0.0, -0.0, np.nan]
    dout = rng.standard_normal(x.shape).astype(dtype)
    dout[1, 1, 1, :2] = [np.inf, -np.inf]
    gx, gd = cupy.asarray(x), cupy.asarray(dout)
    out, cache = relu_forward(gx)
    fast = relu_backward(gd, cache).get()
    monkeypatch.setenv("MINIALEXNET_KERNELS", "0")
    generic = relu_backward(gd, cache).get()
    assert fast.dtype == generic.dtype == dtype
    np.testing.assert_array_equal(fast, generic)  # NaN, inf * 0 and signed zeros included
    np.testing.assert_array_equal(np.signbit(fast), np.signbit(generic))
