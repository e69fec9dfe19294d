"""gradcheck: it must accept correct gradients and catch wrong ones."""

from __future__ import annotations

import numpy as np
import pytest

from minialexnet.functional import linear_backward, linear_forward, lrn_backward, lrn_forward
from minialexnet.gradcheck import check_function, check_layer, numerical_gradient, relative_error
from minialexnet.layers import Linear


def test_numerical_gradient_of_a_known_function_and_x_restored():
    x = np.array([[1.0, -2.0], [0.5, 3.0]])
    before = x.copy()
    dout = np.array([[1.0, 2.0], [-1.0, 0.5]])
    grad = numerical_gradient(lambda v: v**3, x, dout)
    np.testing.assert_allclose(grad, 3 * before**2 * dout, rtol=1e-8)
    np.testing.assert_array_equal(x, before)


def test_numerical_gradient_needs_float64_and_contiguous():
    with pytest.raises(TypeError, match="float64"):
        numerical_gradient(lambda v: v, np.zeros(3, np.float32), np.ones(3, np.float32))
    with pytest.raises(ValueError, match="contiguous"):
        numerical_gradient(lambda v: v, np.zeros((3, 4))[:, ::2], np.ones((3, 2)))


def test_relative_error_is_normwise_and_checks_shapes():
    assert relative_error(np.zeros(3), np.zeros(3)) == 0.0
    assert relative_error([1.0, 0.0], [0.0, 0.0]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="shapes differ"):
        relative_error(np.zeros(2), np.zeros(3))


def test_check_function_accepts_a_correct_backward():
    rng = np.random.default_rng(0)
    inputs = {
        "x": rng.standard_normal((3, 4)),
        "w": rng.standard_normal((5, 4)),
        "b": rng.standard_normal(5),
    }
    errors = check_function(linear_forward, linear_backward, inputs)
    assert set(errors) == {"x", "w", "b"} and max(errors.values()) < 1e-8


def test_check_function_catches_a_wrong_backward():
    """An LRN backward without the cross-channel term is caught by a wide margin."""
    x = np.random.default_rng(1).standard_normal((2, 6, 3, 3)) * 3

    def forward(x):
        return lrn_forward(x, 5, 1.0, 0.5, 0.75)

    def first_term_only(dout, cache):
        _, _, _, scale, *_ = cache
        return dout * scale

    assert check_function(forward, lrn_backward, {"x": x})["x"] < 1e-7
    assert check_function(forward, first_term_only, {"x": x})["x"] > 1e-2


def test_check_function_wrt_and_count_mismatch():
    rng = np.random.default_rng(2)
    x, w, b = rng.standard_normal((2, 3)), rng.standard_normal((4, 3)), rng.standard_normal(4)
    errors = check_function(linear_forward, linear_backward, {"x": x, "w": w, "b": b}, wrt=["w"])
    assert list(errors) == ["w"]
    with pytest.raises(ValueError, match="backward returned 3 gradients"):
        check_function(lambda x: linear_forward(x, w, None), linear_backward, {"x": x})


def test_check_layer_reports_x_and_every_parameter():
    layer = Linear(4, 3, rng=np.random.default_rng(0), dtype="float64", weight_std=1.0)
    x = np.random.default_rng(1).standard_normal((5, 4))
    errors = check_layer(layer, x)
    assert set(errors) == {"x", "w", "b"} and max(errors.values()) < 1e-8
