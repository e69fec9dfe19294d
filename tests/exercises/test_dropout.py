"""Grading tests of the exercise dropout: ``dropout_forward`` and ``dropout_backward``.

p is the probability of DROPPING a unit; the mask is ``rng.random(x.shape) >= p``
(so a seeded generator gives a known mask). "inverted" scales the kept units by
1/(1-p) while training and does nothing at test time; "paper" keeps them as they
are while training and multiplies by (1-p) at test time.
"""

from __future__ import annotations

import numpy as np
import pytest
from exercise_support import (
    assert_close,
    assert_dtype,
    assert_shape,
    generator,
    rand,
    student_module,
)

student = student_module("minialexnet.functional.dropout")


def _mask(seed, shape, p):
    return generator(seed).random(shape) >= p


@pytest.mark.parametrize("p", [0.5, 0.2, 0.0])
@pytest.mark.parametrize("mode", ["inverted", "paper"])
def test_training_uses_the_documented_mask_and_scale(p, mode):
    x = rand(0, (4, 30))
    out, _ = student.dropout_forward(x, p, generator(7), train=True, mode=mode)
    assert_shape("out", out, x.shape, "the shape of x")
    scale = 1 / (1 - p) if mode == "inverted" else 1.0
    expected = x * _mask(7, x.shape, p) * scale
    assert_close(
        f"out (train, p={p}, mode={mode})",
        out,
        expected,
        note="(mask: rng.random(x.shape) >= p, one draw per element)",
    )


@pytest.mark.parametrize("mode, factor", [("inverted", 1.0), ("paper", 0.6)])
def test_evaluation_is_deterministic(mode, factor):
    x = rand(1, (3, 5, 2))
    out, _ = student.dropout_forward(x, 0.4, None, train=False, mode=mode)
    assert_close(f"out (test time, mode={mode}: x times {factor})", out, x * factor)
    assert out is not x, "return a new array at test time (the caller may change it), not x itself"


def test_about_a_fraction_p_is_dropped():
    x = np.ones((200, 500))
    out, _ = student.dropout_forward(x, 0.3, generator(3), train=True)
    dropped = float(np.mean(np.asarray(out) == 0))
    assert abs(dropped - 0.3) < 0.01, f"dropped {dropped:.3f} of the units with p=0.3"
    assert abs(float(np.mean(out)) - 1.0) < 0.02, "inverted dropout must keep the mean of x"


@pytest.mark.parametrize("train", [True, False], ids=["train", "test"])
@pytest.mark.parametrize("mode", ["inverted", "paper"])
def test_backward_goes_through_the_same_mask_and_scale(mode, train):
    x = rand(2, (6, 8))
    p = 0.5
    _, cache = student.dropout_forward(x, p, generator(11), train=train, mode=mode)
    dout = rand(3, x.shape)
    dx = student.dropout_backward(dout, cache)
    if train:
        scale = 1 / (1 - p) if mode == "inverted" else 1.0
        expected = dout * _mask(11, x.shape, p) * scale
    else:
        expected = dout * (1 - p if mode == "paper" else 1.0)
    assert_close(f"dx ({'train' if train else 'test'}, mode={mode})", dx, expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_keeps_the_dtype_and_leaves_the_inputs_alone(dtype):
    x = rand(4, (5, 6), dtype)
    x_before = x.copy()
    out, cache = student.dropout_forward(x, 0.5, generator(0), train=True)
    assert_dtype("out", out, dtype)
    dout = rand(5, x.shape, dtype)
    d_before = dout.copy()
    dx = student.dropout_backward(dout, cache)
    assert_dtype("dx", dx, dtype)
    assert np.array_equal(x, x_before), "dropout_forward modified x"
    assert np.array_equal(dout, d_before), "dropout_backward modified dout"
