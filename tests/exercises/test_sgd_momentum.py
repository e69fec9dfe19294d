"""Grading tests of the exercise sgd_momentum: ``SGD.step``, the paper's update rule [5].

    v <- momentum * v - weight_decay * lr * w - lr * grad
    w <- w + v

The velocity holds the step, learning rate included; both arrays are updated in
place (the model holds the same arrays). The expected values are computed here
with plain Python floats.
"""

from __future__ import annotations

import numpy as np
import pytest
from exercise_support import assert_close, assert_dtype, generator, student_module

SGD = student_module("minialexnet.optim", in_place=True).SGD  # updates w in place


def _by_hand(w0, grads, lr, momentum, decay):
    """The weights and velocity after one update per gradient, entry by entry."""
    w = [float(v) for v in np.ravel(w0)]
    v = [0.0] * len(w)
    for g in grads:
        g = [float(e) for e in np.ravel(g)]
        for i in range(len(w)):
            v[i] = momentum * v[i] - decay * lr * w[i] - lr * g[i]
            w[i] = w[i] + v[i]
    shape = np.shape(w0)
    return np.reshape(w, shape), np.reshape(v, shape)


@pytest.mark.parametrize(
    "lr, momentum, decay",
    [(0.1, 0.9, 5e-4), (0.01, 0.9, 0.0), (0.5, 0.0, 0.0), (0.05, 0.5, 0.1)],
)
def test_three_steps_follow_the_papers_rule(lr, momentum, decay):
    rng = generator(0)
    w = rng.standard_normal((3, 4))
    w0 = w.copy()
    grad = np.zeros_like(w)
    opt = SGD([("w", w, grad)], lr=lr, momentum=momentum, weight_decay=decay)
    grads = [rng.standard_normal(w.shape) for _ in range(3)]
    for step, g in enumerate(grads, start=1):
        grad[...] = g  # the backward pass refills the gradient in place
        opt.step()
        want_w, want_v = _by_hand(w0, grads[:step], lr, momentum, decay)
        what = f"(lr={lr}, momentum={momentum}, weight_decay={decay})"
        assert_close(f"w after step {step} {what}", w, want_w)
        assert_close(f"velocity after step {step} {what}", opt.velocity["w"], want_v)


def test_updates_the_same_arrays_in_place():
    w = np.ones((2, 2))
    grad = np.full((2, 2), 0.5)
    opt = SGD([("w", w, grad)], lr=0.1, momentum=0.9, weight_decay=0.0)
    velocity = opt.velocity["w"]
    opt.step()
    assert opt.velocity["w"] is velocity, "keep the velocity array; update it in place (v *= ...)"
    assert_close("w (the parameter array itself, updated in place)", w, np.full((2, 2), 0.95))
    assert_close("velocity", velocity, np.full((2, 2), -0.05))


def test_every_parameter_is_updated_with_its_own_velocity():
    rng = generator(1)
    params = [
        (f"p{i}", rng.standard_normal(s), rng.standard_normal(s))
        for i, s in enumerate([(3,), (2, 3), (4, 1, 2)])
    ]
    starts = [p.copy() for _, p, _ in params]
    opt = SGD(params, lr=0.05, momentum=0.9, weight_decay=1e-3)
    opt.step()
    opt.step()
    for (name, p, g), p0 in zip(params, starts, strict=True):
        want_w, want_v = _by_hand(p0, [g, g], 0.05, 0.9, 1e-3)
        assert_close(f"{name} after two steps", p, want_w)
        assert_close(f"velocity of {name} after two steps", opt.velocity[name], want_v)


def test_a_new_learning_rate_does_not_rescale_the_old_velocity():
    """The velocity holds steps taken with the old rate; only the new gradient sees the new one."""
    w = np.zeros(1)
    grad = np.ones(1)
    opt = SGD([("w", w, grad)], lr=1.0, momentum=0.5, weight_decay=0.0)
    opt.step()  # v = -1, w = -1
    opt.lr = 0.1
    opt.step()  # v = 0.5 * -1 - 0.1 * 1 = -0.6, w = -1.6
    assert_close("velocity after the learning rate changed", opt.velocity["w"], np.array([-0.6]))
    assert_close("w after the learning rate changed", w, np.array([-1.6]))


def test_float32_parameters_stay_float32():
    w = np.ones((3,), dtype=np.float32)
    grad = np.full((3,), 0.25, dtype=np.float32)
    opt = SGD([("w", w, grad)], lr=0.1, momentum=0.9, weight_decay=5e-4)
    opt.step()
    assert_dtype("w", w, np.float32)
    assert_dtype("velocity", opt.velocity["w"], np.float32)
    want_w, _ = _by_hand(np.ones(3), [np.full(3, 0.25)], 0.1, 0.9, 5e-4)
    assert_close("w", w, want_w)
