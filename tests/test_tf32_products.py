"""Which matrix products can run in TensorFloat-32: every product of conv and linear.

CuPy applies its float32 compute type (``backend.set_tf32``, ``train --tf32``) only to
products of two matrices: ``cupy.matmul`` of 2-D arrays goes through ``tensordot_core``,
which asks cuBLAS for ``CUBLAS_COMPUTE_32F_FAST_TF32`` when TF32 is set, while a batched
(3-D) ``matmul`` calls ``gemmStridedBatchedEx`` with the data type as compute type, and
copies transposed operands first (CuPy 14.2, ``cupy/_core/_routines_linalg.pyx``). So
a product runs in TF32 when TF32 is on AND both operands have at most two axes.

The stand-in: an ndarray subclass that records, for every ``matmul`` it takes part in,
the compute type CuPy would use by that rule. The convolutions used one batched
product per layer before; every product must now be TF32-capable. The GPU test runs
the same convolution with TF32 off and on and sees the products change.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from helpers import needs_gpu

from minialexnet.functional import conv2d_backward, conv2d_forward, linear_backward, linear_forward


class Recording(np.ndarray):
    """A NumPy array that logs the compute type CuPy would give each product it is in."""

    log: list[str] = []
    tf32 = True  # as after backend.set_tf32(True)

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        if ufunc is np.matmul:
            two_d = all(np.ndim(a) <= 2 for a in inputs)
            Recording.log.append("TF32" if (two_d and Recording.tf32) else "FP32 (batched)")
        plain = [a.view(np.ndarray) if isinstance(a, np.ndarray) else a for a in inputs]
        if "out" in kwargs:
            kwargs["out"] = tuple(o.view(np.ndarray) for o in kwargs["out"])
        result = getattr(ufunc, method)(*plain, **kwargs)
        return result.view(Recording) if isinstance(result, np.ndarray) else result


def _rec(shape: tuple[int, ...], seed: int) -> Recording:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32).view(Recording)


@pytest.mark.parametrize(
    "x_shape, w_shape, stride, pad, groups",
    [
        ((2, 3, 19, 19), (8, 3, 11, 11), 4, 0, 1),  # conv1-like: dense, strided
        ((2, 8, 7, 7), (12, 4, 5, 5), 1, 2, 2),  # conv2-like: two groups
        ((2, 6, 5, 5), (6, 6, 3, 3), 1, 1, 1),  # conv3-like
    ],
)
def test_every_convolution_product_is_a_2d_product_that_tf32_reaches(
    x_shape, w_shape, stride, pad, groups
):
    Recording.log = []
    x, w, b = _rec(x_shape, 0), _rec(w_shape, 1), _rec((w_shape[0],), 2)
    out, cache = conv2d_forward(x, w, b, stride, pad, groups, col_bytes=x[0].nbytes * 1000)
    conv2d_backward(_rec(out.shape, 3), cache)
    # forward: one product per group; backward: dw and dx per group
    assert Recording.log == ["TF32"] * (3 * groups)
    # and the answer is the plain NumPy one
    want, _ = conv2d_forward(*(a.view(np.ndarray) for a in (x, w, b)), stride, pad, groups)
    np.testing.assert_allclose(out.view(np.ndarray), want, rtol=1e-5, atol=1e-5)


def test_chunked_convolution_and_linear_products_are_2d_too():
    Recording.log = []
    x, w, b = _rec((3, 4, 6, 6), 0), _rec((6, 2, 3, 3), 1), _rec((6,), 2)
    out, cache = conv2d_forward(x, w, b, 1, 1, 2, col_bytes=1)  # one image per chunk
    conv2d_backward(_rec(out.shape, 3), cache)
    assert set(Recording.log) == {"TF32"} and len(Recording.log) == 3 * 2 * 3
    Recording.log = []
    xl, wl = _rec((5, 7), 4), _rec((3, 7), 5)
    y, lcache = linear_forward(xl, wl, None)
    linear_backward(_rec(y.shape, 6), lcache)
    assert Recording.log == ["TF32"] * 3


def test_the_stand_in_tells_a_batched_product_apart():
    Recording.log = []
    np.matmul(_rec((2, 3, 4), 0), _rec((2, 4, 5), 1))
    np.matmul(_rec((3, 4), 0), _rec((4, 5), 1))
    assert Recording.log == ["FP32 (batched)", "TF32"]


@needs_gpu
def test_tf32_reaches_the_convolutions_on_a_gpu():
    import cupy

    from minialexnet.backend import set_tf32

    rng = cupy.random.default_rng(0)
    x = rng.standard_normal((8, 96, 27, 27), dtype=cupy.float32)
    w = rng.standard_normal((256, 48, 5, 5), dtype=cupy.float32)
    try:
        set_tf32(False)
        exact, _ = conv2d_forward(x, w, None, 1, 2, 2)
        set_tf32(True)
        fast, _ = conv2d_forward(x, w, None, 1, 2, 2)
    finally:
        set_tf32(False)
    diff = float(cupy.abs(fast - exact).max() / cupy.abs(exact).max())
    assert 0 < diff < 1e-2, diff  # TF32 rounds the inputs to 10 bits: changed, slightly
