"""Grading tests of the exercise tower_exchange: ``Exchange.forward`` and ``Exchange.backward``.

The paper's cross-GPU connection [3.2]: every tower receives ALL towers' outputs,
concatenated along axis 1 in tower order, on its own device; the backward pass
splits each tower's gradient into the pieces and sums, on each source tower's
device, the pieces that came from it. Two simulated CPU devices ("cpu:0",
"cpu:1") stand in for two GPUs: mixing their arrays raises, as on real GPUs.
"""

from __future__ import annotations

import numpy as np
import pytest
from exercise_support import assert_close, assert_shape, generator, student_module

from minialexnet.backend import Device

Exchange = student_module("minialexnet.towers").Exchange


def _devices():
    return [Device("cpu:0"), Device("cpu:1")]


def _check_list(name, got, n):
    assert isinstance(got, (list, tuple)) and len(got) == n, (
        f"{name}: expected a list of {n} arrays (one per tower), got "
        + (f"a list of {len(got)}" if isinstance(got, (list, tuple)) else type(got).__name__)
    )


@pytest.mark.parametrize(
    "shape_a, shape_b",
    [((2, 3), (2, 5)), ((2, 4, 3, 3), (2, 2, 3, 3)), ((1, 6, 2, 2), (1, 6, 2, 2))],
)
def test_forward_gives_every_tower_both_outputs_on_its_own_device(shape_a, shape_b):
    d0, d1 = _devices()
    rng = generator(0)
    xa, xb = rng.standard_normal(shape_a), rng.standard_normal(shape_b)
    ex = Exchange([d0, d1])
    ys = ex.forward([d0.asarray(xa), d1.asarray(xb)])
    _check_list("Exchange.forward", ys, 2)
    joined = np.concatenate([xa, xb], axis=1)
    for t, (dev, y) in enumerate(zip((d0, d1), ys, strict=True)):
        tower = "ab"[t]
        assert_shape(f"tower {tower}'s input", y, joined.shape, "both outputs joined on axis 1")
        assert dev.holds(y), f"tower {tower}'s input must live on its device {dev.name}"
        assert_close(f"tower {tower}'s input (a's output, then b's)", np.asarray(y), joined)


@pytest.mark.parametrize(
    "shape_a, shape_b",
    [((2, 3), (2, 5)), ((2, 4, 3, 3), (2, 2, 3, 3))],
)
def test_backward_sums_each_piece_on_its_home_device(shape_a, shape_b):
    d0, d1 = _devices()
    rng = generator(1)
    xa, xb = rng.standard_normal(shape_a), rng.standard_normal(shape_b)
    ex = Exchange([d0, d1])
    ex.forward([d0.asarray(xa), d1.asarray(xb)])
    joined = (shape_a[0], shape_a[1] + shape_b[1], *shape_a[2:])
    ga, gb = rng.standard_normal(joined), rng.standard_normal(joined)
    dxs = ex.backward([d0.asarray(ga), d1.asarray(gb)])
    _check_list("Exchange.backward", dxs, 2)
    ca = shape_a[1]
    want = [ga[:, :ca] + gb[:, :ca], ga[:, ca:] + gb[:, ca:]]  # x_s fed both towers
    for s, (dev, dx, w) in enumerate(zip((d0, d1), dxs, want, strict=True)):
        tower = "ab"[s]
        assert_shape(f"dx of tower {tower}", dx, w.shape, f"the shape of tower {tower}'s output")
        assert dev.holds(dx), f"dx of tower {tower} must live on its device {dev.name}"
        assert_close(
            f"dx of tower {tower} (its piece of both towers' gradients)", np.asarray(dx), w
        )


def test_one_device_is_plain_concatenation():
    cpu = Device("cpu")
    xa, xb = np.arange(6.0).reshape(2, 3), np.arange(4.0).reshape(2, 2)
    ex = Exchange([cpu, cpu])
    ya, yb = ex.forward([xa, xb])
    assert_close("tower a's input", ya, np.concatenate([xa, xb], axis=1))
    assert_close("tower b's input", yb, np.concatenate([xa, xb], axis=1))
    g = np.ones((2, 5))
    dxa, dxb = ex.backward([g, 2 * g])
    assert_close("dx of tower a", dxa, np.full((2, 3), 3.0))
    assert_close("dx of tower b", dxb, np.full((2, 2), 3.0))


def test_backward_leaves_the_gradients_alone():
    d0, d1 = _devices()
    ex = Exchange([d0, d1])
    ex.forward([d0.asarray(np.ones((1, 2))), d1.asarray(np.ones((1, 1)))])
    ga, gb = np.arange(3.0).reshape(1, 3), 10 + np.arange(3.0).reshape(1, 3)
    a_dev, b_dev = d0.asarray(ga), d1.asarray(gb)
    ex.backward([a_dev, b_dev])
    assert np.array_equal(np.asarray(a_dev), ga) and np.array_equal(np.asarray(b_dev), gb), (
        "Exchange.backward modified the incoming gradients (sum into new arrays)"
    )
