"""Grading tests of the exercise lrn_backward.

The cache comes from the reference ``lrn_forward``; the expected gradient from
the loop version ``lrn_backward_loops`` and from finite differences.
"""

from __future__ import annotations

import numpy as np
import pytest
from exercise_support import (
    assert_close,
    assert_dtype,
    assert_gradient,
    assert_shape,
    numerical_gradient,
    rand,
    student_module,
)

student = student_module("minialexnet.functional.lrn")


# (x shape, n, k, alpha, beta, scale of x)
CASES = [
    pytest.param((2, 12, 3, 3), 5, 2.0, 1e-4, 0.75, 80.0, id="paper-at-scale"),
    pytest.param((2, 9, 3, 3), 5, 1.0, 0.5, 0.75, 1.0, id="n5-large-alpha"),
    pytest.param((2, 9, 2, 2), 3, 0.5, 1.0, 1.0, 1.0, id="n3"),
    pytest.param((1, 8, 2, 3), 4, 2.0, 0.3, 0.5, 1.0, id="n4-even"),
    pytest.param((2, 7, 2, 2), 6, 1.0, 0.4, 0.75, 1.0, id="n6-even"),
    pytest.param((3, 6, 2, 2), 1, 1.5, 0.7, 1.25, 1.0, id="n1"),
    pytest.param((5, 10), 5, 2.0, 0.2, 0.75, 1.0, id="2d-features"),
]


@pytest.mark.parametrize("shape, n, k, alpha, beta, scale", CASES)
def test_backward_matches_the_loop_version(ref, shape, n, k, alpha, beta, scale):
    x = rand(0, shape, scale=scale)
    _, cache = ref.functional.lrn_forward(x, n=n, k=k, alpha=alpha, beta=beta)
    dout = rand(1, shape)
    dx = student.lrn_backward(dout, cache)
    assert_shape("dx", dx, shape, "the shape of x")
    expected = ref.loops.lrn_backward_loops(dout, x, n=n, k=k, alpha=alpha, beta=beta)
    assert_close(f"dx (n={n}, k={k}, alpha={alpha}, beta={beta})", dx, expected, note=ref.note)


@pytest.mark.parametrize("n", [2, 3, 5])
def test_backward_agrees_with_finite_differences(ref, n):
    x = rand(2, (1, 6, 2, 2))
    fwd = ref.functional.lrn_forward
    _, cache = fwd(x, n, 1.0, 0.5, 0.75)
    dout = rand(3, x.shape)
    dx = student.lrn_backward(dout, cache)
    numeric = numerical_gradient(lambda v: fwd(v, n, 1.0, 0.5, 0.75)[0], x, dout)
    assert_gradient(f"dx (n={n})", dx, numeric)


def test_backward_has_the_cross_channel_terms(ref):
    """A fixed scaling dout * D^-beta is not enough: neighbours' denominators depend on x."""
    x = rand(4, (1, 5, 1, 1), scale=2.0)
    _, cache = ref.functional.lrn_forward(x, 5, 1.0, 1.0, 0.75)
    dout = np.zeros_like(x)
    dout[0, 2] = 1.0  # only the middle output matters
    dx = student.lrn_backward(dout, cache)
    expected = ref.loops.lrn_backward_loops(dout, x, 5, 1.0, 1.0, 0.75)
    assert_close("dx with dout one-hot on channel 2 (every channel feels it)", dx, expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_backward_keeps_the_dtype_and_leaves_dout_alone(ref, dtype):
    x = rand(5, (2, 7, 2, 2), dtype, scale=2.0)
    _, cache = ref.functional.lrn_forward(x, 5, 1.0, 0.3, 0.75)
    dout = rand(6, x.shape, dtype)
    before = dout.copy()
    dx = student.lrn_backward(dout, cache)
    assert_dtype("dx", dx, dtype)
    assert np.array_equal(dout, before), "lrn_backward modified dout"
    assert_close("dx", dx, ref.loops.lrn_backward_loops(dout, x, 5, 1.0, 0.3, 0.75))
