"""Hidden grading cases of sgd_momentum (not shipped to students)."""

from __future__ import annotations

import numpy as np
from exercise_support import assert_close, generator, student_module

SGD = student_module("minialexnet.optim", in_place=True).SGD  # updates w in place


def test_many_steps_with_changing_gradients_and_rates():
    rng = generator(5)
    w = rng.standard_normal(6)
    grad = np.zeros(6)
    opt = SGD([("w", w, grad)], lr=0.05, momentum=0.9, weight_decay=5e-4)
    ww, vv = w.copy(), np.zeros(6)
    for step in range(20):
        if step in (7, 14):
            opt.lr /= 10
        grad[...] = rng.standard_normal(6)
        opt.step()
        vv = 0.9 * vv - 5e-4 * opt.lr * ww - opt.lr * grad
        ww = ww + vv
        assert_close(f"w after step {step + 1}", w, ww)
        assert_close(f"velocity after step {step + 1}", opt.velocity["w"], vv)


def test_weight_decay_alone_shrinks_the_weights():
    """With a zero gradient and no momentum, w <- (1 - weight_decay * lr) * w."""
    w = np.full(3, 2.0)
    opt = SGD([("w", w, np.zeros(3))], lr=0.1, momentum=0.0, weight_decay=0.5)
    opt.step()
    assert_close("w (weight decay only)", w, np.full(3, 2.0 * (1 - 0.05)))


def test_state_dict_round_trip_continues_identically():
    rng = generator(6)
    w1, g1 = rng.standard_normal(4), rng.standard_normal(4)
    w2, g2 = w1.copy(), g1.copy()
    a = SGD([("w", w1, g1)], lr=0.1, momentum=0.9)
    a.step()
    b = SGD([("w", w2, g2)], lr=0.1, momentum=0.9)
    b.load_state_dict(a.state_dict())
    w2[...] = w1
    a.step()
    b.step()
    assert_close("w after restoring the optimizer's state", w2, w1)
