"""Grading tests of the exercise maxpool2d_backward.

The cache comes from the reference ``maxpool2d_forward``; the expected gradient
from the loop version ``maxpool2d_backward_loops`` (each window's gradient goes,
whole, to its first maximum; overlapping windows add up) and finite differences.
"""

from __future__ import annotations

import numpy as np
import pytest
from exercise_support import (
    assert_close,
    assert_dtype,
    assert_gradient,
    assert_shape,
    distinct,
    generator,
    numerical_gradient,
    rand,
    student_module,
)

student = student_module("minialexnet.functional.pool")


CASES = [
    pytest.param((2, 3, 7, 7), 3, 2, id="paper-3-every-2"),
    pytest.param((2, 2, 8, 8), 2, 2, id="2-every-2"),
    pytest.param((1, 2, 9, 7), (3, 2), (2, 1), id="pairs"),
    pytest.param((2, 1, 9, 9), 2, 3, id="stride-beyond-size"),
    pytest.param((1, 2, 13, 13), 3, 2, id="alexnet-13"),
]


@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
@pytest.mark.parametrize("shape, size, stride", CASES)
def test_backward_matches_the_loop_version(ref, shape, size, stride, ties):
    rng = generator(0)
    x = rng.integers(0, 3, size=shape).astype(np.float64) if ties else distinct(0, shape)
    out, cache = ref.functional.maxpool2d_forward(x, size, stride)
    dout = rand(1, out.shape)
    dx = student.maxpool2d_backward(dout, cache)
    assert_shape("dx", dx, shape, "the shape of x")
    expected = ref.loops.maxpool2d_backward_loops(dout, x, size, stride)
    what = "first maximum of each window, row-major" if ties else "each window's maximum"
    assert_close(f"dx (size={size}, stride={stride}; to the {what})", dx, expected, note=ref.note)


def test_overlapping_windows_add_their_gradients(ref):
    """One large entry is the max of four overlapping 3x3 windows: it gets all four gradients."""
    x = np.zeros((1, 1, 5, 5))
    x[0, 0, 2, 2] = 10.0
    out, cache = ref.functional.maxpool2d_forward(x, 3, 2)
    dout = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    dx = student.maxpool2d_backward(dout, cache)
    expected = np.zeros_like(x)
    expected[0, 0, 2, 2] = 10.0
    assert_close("dx (the centre is the maximum of all four windows)", dx, expected)


def test_backward_agrees_with_finite_differences(ref):
    x = distinct(2, (1, 2, 5, 5))
    fwd = ref.functional.maxpool2d_forward
    out, cache = fwd(x, 3, 2)
    dout = rand(3, out.shape)
    dx = student.maxpool2d_backward(dout, cache)
    assert_gradient("dx", dx, numerical_gradient(lambda v: fwd(v, 3, 2)[0], x, dout))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_backward_keeps_the_dtype(ref, dtype):
    x = distinct(4, (2, 2, 7, 7), dtype)
    out, cache = ref.functional.maxpool2d_forward(x, 3, 2)
    dout = rand(5, out.shape, dtype)
    dx = student.maxpool2d_backward(dout, cache)
    assert_dtype("dx", dx, dtype)
    assert_close("dx", dx, ref.loops.maxpool2d_backward_loops(dout, x, 3, 2))
