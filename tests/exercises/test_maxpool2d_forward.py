"""Grading tests of the exercise maxpool2d_forward (overlapping pooling, paper section 3.4).

Reference values from the loop version ``maxpool2d_loops``; the cache's ``code``
(the offset i*KW + j of each window's FIRST maximum in row-major order) is
checked by running the reference ``maxpool2d_backward`` on it, with ties.
"""

from __future__ import annotations

import numpy as np
import pytest
from exercise_support import (
    assert_close,
    assert_dtype,
    assert_shape,
    distinct,
    generator,
    rand,
    student_module,
)

student = student_module("minialexnet.functional.pool")


# (x shape, size, stride)
CASES = [
    pytest.param((2, 3, 7, 7), 3, 2, id="paper-3-every-2"),
    pytest.param((2, 2, 8, 8), 2, 2, id="2-every-2"),
    pytest.param((1, 2, 9, 7), (3, 2), (2, 1), id="pairs"),
    pytest.param((2, 1, 9, 9), 2, 3, id="stride-beyond-size"),
    pytest.param((1, 2, 13, 13), 3, 2, id="alexnet-13"),
    pytest.param((1, 1, 4, 4), 4, 1, id="one-window"),
]


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _out_shape(shape, size, stride):
    (kh, kw), (sh, sw) = _pair(size), _pair(stride)
    return (*shape[:2], (shape[2] - kh) // sh + 1, (shape[3] - kw) // sw + 1)


@pytest.mark.parametrize("shape, size, stride", CASES)
def test_forward_matches_the_loop_version(ref, shape, size, stride):
    x = rand(0, shape)
    out, _ = student.maxpool2d_forward(x, size, stride)
    assert_shape("out", out, _out_shape(shape, size, stride), "(N, C, OH, OW)")
    assert_close(
        f"out (size={size}, stride={stride})",
        out,
        ref.loops.maxpool2d_loops(x, size, stride),
        note=ref.note,
    )


@pytest.mark.parametrize("shape, size, stride", CASES)
def test_the_cache_routes_the_gradient_to_the_first_maximum(ref, shape, size, stride):
    """Ties (small integers) must go to the first maximum in row-major order."""
    x = generator(1).integers(0, 3, size=shape).astype(np.float64)
    out, cache = student.maxpool2d_forward(x, size, stride)
    dout = rand(2, np.shape(out))
    dx = ref.functional.maxpool2d_backward(dout, cache)
    expected = ref.loops.maxpool2d_backward_loops(dout, x, size, stride)
    assert_close(
        "dx from the reference maxpool2d_backward on your cache",
        dx,
        expected,
        note="(code must hold i*KW + j of each window's FIRST maximum, row-major)",
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_keeps_the_dtype_and_leaves_x_alone(ref, dtype):
    x = distinct(3, (2, 3, 7, 7), dtype)
    before = x.copy()
    out, _ = student.maxpool2d_forward(x)
    assert_dtype("out", out, dtype)
    assert np.array_equal(x, before), "maxpool2d_forward modified its input x"
    assert_close("out (defaults size=3, stride=2)", out, ref.loops.maxpool2d_loops(x, 3, 2))
