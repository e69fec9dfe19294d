"""Grading tests of the exercise softmax_cross_entropy.

loss = -(1/N) sum_n log softmax(logits)[n, labels[n]], and its gradient with
respect to the logits (the 1/N included). Reference values are computed one row
at a time with Python's math module, and the gradient by finite differences.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from exercise_support import (
    assert_close,
    assert_dtype,
    assert_gradient,
    assert_shape,
    generator,
    numerical_gradient,
    rand,
    student_module,
)

student = student_module("minialexnet.functional.loss")


def _row_by_row(logits, labels):
    """Loss and gradient, one example at a time, with math.fsum (float64)."""
    z = np.asarray(logits, dtype=np.float64)
    n = z.shape[0]
    total, grad = 0.0, np.zeros_like(z)
    for row, label in enumerate(labels):
        top = max(z[row])
        weights = [math.exp(v - top) for v in z[row]]
        norm = math.fsum(weights)
        total += math.log(norm) + top - z[row, label]
        for j, wj in enumerate(weights):
            grad[row, j] = (wj / norm - (j == label)) / n
    return total / n, grad


CASES = [
    pytest.param(4, 3, 1.0, id="4x3"),
    pytest.param(16, 10, 3.0, id="16x10"),
    pytest.param(1, 5, 1.0, id="one-example"),
    pytest.param(7, 2, 0.1, id="two-classes"),
]


@pytest.mark.parametrize("n, c, scale", CASES)
def test_loss_and_gradient(n, c, scale):
    logits = rand(n * c, (n, c), scale=scale)
    labels = generator(c).integers(0, c, size=n)
    result = student.softmax_cross_entropy(logits, labels)
    assert isinstance(result, tuple) and len(result) == 2, "return the pair (loss, dlogits)"
    loss, dlogits = result
    want_loss, want_grad = _row_by_row(logits, labels)
    assert math.isclose(float(loss), want_loss, rel_tol=1e-9, abs_tol=1e-12), (
        f"loss: got {float(loss):.10g}, expected {want_loss:.10g} (the MEAN over the batch)"
    )
    assert_shape("dlogits", dlogits, logits.shape, "the shape of logits")
    assert_close("dlogits", dlogits, want_grad)


def test_large_logits_stay_finite():
    """exp(1000) overflows: subtract each row's maximum first (it changes nothing else)."""
    logits = np.array([[1000.0, 0.0, -1000.0], [500.0, 501.0, 499.0], [-800.0, -801.0, -802.0]])
    labels = np.array([2, 0, 1])
    loss, dlogits = student.softmax_cross_entropy(logits, labels)
    want_loss, want_grad = _row_by_row(logits, labels)
    assert np.isfinite(float(loss)), f"loss is {float(loss)} for logits in the thousands"
    assert math.isclose(float(loss), want_loss, rel_tol=1e-9), (
        f"loss: got {float(loss)}, expected {want_loss}"
    )
    assert_close("dlogits (logits in the thousands)", dlogits, want_grad)


def test_gradient_agrees_with_finite_differences():
    logits = rand(5, (3, 4))
    labels = np.array([0, 3, 1])
    _, dlogits = student.softmax_cross_entropy(logits, labels)
    numeric = numerical_gradient(
        lambda z: student.softmax_cross_entropy(z, labels)[0], logits, np.ones(())
    )
    assert_gradient("dlogits", dlogits, numeric)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_keeps_the_dtype_and_leaves_the_logits_alone(dtype):
    logits = rand(6, (5, 4), dtype, scale=2.0)
    before = logits.copy()
    labels = np.array([0, 1, 2, 3, 0])
    loss, dlogits = student.softmax_cross_entropy(logits, labels)
    assert np.array_equal(logits, before), "softmax_cross_entropy modified the logits"
    assert_dtype("dlogits", dlogits, dtype)
    assert np.asarray(loss).dtype == np.dtype(dtype), (
        f"loss: dtype {np.asarray(loss).dtype}, expected {np.dtype(dtype)} (the logits' dtype)"
    )
    want_loss, want_grad = _row_by_row(logits, labels)
    assert math.isclose(float(loss), want_loss, rel_tol=1e-5)
    assert_close("dlogits", dlogits, want_grad)
