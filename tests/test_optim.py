"""SGD (the paper's update rule) and the learning-rate schedules [5]."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from minialexnet.backend import Device, SimulatedDeviceArray, to_numpy
from minialexnet.layers import Linear
from minialexnet.optim import SGD, LinearSchedule, PlateauSchedule, StepSchedule

# -- the update rule -----------------------------------------------------------------------------

W0 = [1.0, -2.0]
GRADS = [[0.5, 0.25], [-1.0, 0.5], [0.0, 2.0]]


def _hand(lrs: list[float], momentum: float, decay: float) -> list[list[float]]:
    """The paper's rule on plain Python floats: the weights after each step."""
    w, v, history = list(W0), [0.0, 0.0], []
    for lr, g in zip(lrs, GRADS, strict=True):
        v = [momentum * v[i] - decay * lr * w[i] - lr * g[i] for i in range(2)]
        w = [w[i] + v[i] for i in range(2)]
        history.append(list(w))
    return history


def _run(device: Device, lrs: list[float], momentum: float, decay: float) -> list[np.ndarray]:
    w = device.asarray(np.array(W0))
    g = device.xp.zeros_like(w)
    opt = SGD([("w", w, g)], lr=lrs[0], momentum=momentum, weight_decay=decay)
    history = []
    for lr, grad in zip(lrs, GRADS, strict=True):
        g[...] = device.asarray(np.array(grad))  # refilled in place, as a layer's backward does
        opt.lr = lr
        opt.step()
        history.append(to_numpy(w).copy())
    assert opt.params[0][1] is w
    return history


def test_three_steps_match_hand_computation(device: Device) -> None:
    got = _run(device, [0.1, 0.1, 0.1], momentum=0.9, decay=0.01)
    # element 0 by hand: v1 = -0.01*0.1*1 - 0.1*0.5 = -0.051, w1 = 0.949;
    # v2 = 0.9*-0.051 - 0.001*0.949 + 0.1 = 0.053151, w2 = 1.002151;
    # v3 = 0.9*0.053151 - 0.001*1.002151 - 0 = 0.046833749, w3 = 1.048984749
    np.testing.assert_allclose([h[0] for h in got], [0.949, 1.002151, 1.048984749], rtol=1e-12)
    np.testing.assert_allclose(got, _hand([0.1, 0.1, 0.1], 0.9, 0.01), rtol=1e-12)


def test_lr_change_keeps_the_old_velocity_unscaled(device: Device) -> None:
    """The paper's v holds lr*grad; PyTorch's would rescale the old velocity by the new lr."""
    got = _run(device, [0.1, 0.1, 0.01], momentum=0.9, decay=0.01)
    # v3 = 0.9*0.053151 - 0.01*0.01*1.002151 - 0.01*0 = 0.0477356849; w3 = 1.0498866849
    assert got[2][0] == pytest.approx(1.0498866849, rel=1e-12)
    np.testing.assert_allclose(got, _hand([0.1, 0.1, 0.01], 0.9, 0.01), rtol=1e-12)


def test_no_momentum_no_decay_is_plain_gradient_descent() -> None:
    got = _run(Device("cpu"), [0.5, 0.5, 0.5], momentum=0.0, decay=0.0)
    assert got[0].tolist() == [1.0 - 0.25, -2.0 - 0.125]


def test_updates_in_place_and_keeps_dtype(device: Device) -> None:
    layer = Linear(3, 2, rng=np.random.default_rng(0), device=device.name)
    w, b = layer.params["w"], layer.params["b"]
    before = to_numpy(w).copy()
    layer.grads["w"][...] = 1.0
    opt = SGD(layer.parameters(), lr=0.1)
    opt.step()
    assert layer.params["w"] is w and layer.params["b"] is b
    assert w.dtype == np.float32 and opt.velocity["w"].dtype == np.float32
    assert not np.array_equal(to_numpy(w), before)
    assert device.holds(opt.velocity["w"]) and device.holds(w)


def test_velocity_lives_on_each_parameters_simulated_device() -> None:
    d1, d2 = Device("cpu:1"), Device("cpu:2")
    w1, w2 = d1.asarray(np.ones(3)), d2.asarray(np.ones((2, 2)))
    g1, g2 = d1.asarray(np.full(3, 0.5)), d2.asarray(np.full((2, 2), -0.5))
    opt = SGD([("a", w1, g1), ("b", w2, g2)], lr=0.1)
    assert isinstance(opt.velocity["a"], SimulatedDeviceArray)
    assert d1.holds(opt.velocity["a"]) and d2.holds(opt.velocity["b"])
    opt.step()  # would raise if anything mixed the two devices
    assert d1.holds(w1) and d2.holds(w2) and d1.holds(opt.velocity["a"])
    np.testing.assert_allclose(np.asarray(w1), 1 - 0.1 * 5e-4 - 0.05)
    state = opt.state_dict()
    assert type(state["velocity"]["a"]) is np.ndarray  # host copies, no device tag
    opt.load_state_dict(state)
    assert d1.holds(opt.velocity["a"]) and d2.holds(opt.velocity["b"])


def test_linear_regression_loss_decreases(device: Device) -> None:
    rng = np.random.default_rng(1)
    x_host = rng.standard_normal((64, 4))
    y_host = x_host @ np.array([[1.0], [-2.0], [0.5], [3.0]]) + 0.7
    x, y = device.asarray(x_host), device.asarray(y_host)
    layer = Linear(4, 1, rng=rng, device=device.name, dtype="float64", weight_std=0.1)
    opt = SGD(layer.parameters(), lr=0.02, momentum=0.9, weight_decay=5e-4)
    losses = []
    for _ in range(150):
        err = layer.forward(x) - y
        losses.append(float((err**2).mean()))
        layer.backward(2 * err / len(x_host))
        opt.step()
    assert losses[-1] < 1e-2 * losses[0]
    assert losses[-1] < 0.01


# -- state ---------------------------------------------------------------------------------------


def _fixed_grad_steps(opt: SGD, layer: Linear, seeds: range) -> None:
    for s in seeds:
        r = np.random.default_rng(s)
        for grad in layer.grads.values():
            grad[...] = r.standard_normal(grad.shape).astype(grad.dtype)
        opt.step()


def test_state_dict_round_trip_gives_identical_steps() -> None:
    a = Linear(5, 3, rng=np.random.default_rng(0))
    opt_a = SGD(a.parameters(), lr=0.05, momentum=0.8, weight_decay=1e-3)
    _fixed_grad_steps(opt_a, a, range(3))
    opt_a.lr = 0.005
    state = opt_a.state_dict()
    state_copy = {**state, "velocity": {k: v.copy() for k, v in state["velocity"].items()}}

    b = Linear(5, 3, rng=np.random.default_rng(99))
    for name in a.params:
        b.params[name][...] = a.params[name]
    opt_b = SGD(b.parameters(), lr=1.0, momentum=0.1, weight_decay=0.0)
    opt_b.load_state_dict(state_copy)
    assert (opt_b.lr, opt_b.momentum, opt_b.weight_decay) == (0.005, 0.8, 1e-3)

    _fixed_grad_steps(opt_a, a, range(3, 5))
    _fixed_grad_steps(opt_b, b, range(3, 5))
    for name in a.params:
        np.testing.assert_array_equal(a.params[name], b.params[name])
    # state_dict copies: later steps did not change the saved velocities
    np.testing.assert_array_equal(state["velocity"]["w"], state_copy["velocity"]["w"])


def test_load_state_dict_refuses_mismatch_and_changes_nothing() -> None:
    layer = Linear(2, 2)
    opt = SGD(layer.parameters(), lr=0.1)
    good = opt.state_dict()
    bad_shape = {**good, "velocity": {"w": np.ones((3, 2)), "b": np.ones(2)}}
    with pytest.raises(ValueError, match=r"'w'.*\(3, 2\)"):
        opt.load_state_dict({**bad_shape, "lr": 0.5})
    assert opt.lr == 0.1 and not opt.velocity["b"].any()
    with pytest.raises(ValueError, match=r"missing \['b'\]"):
        opt.load_state_dict({**good, "velocity": {"w": good["velocity"]["w"]}})
    with pytest.raises(ValueError, match=r"unexpected \['c'\]"):
        opt.load_state_dict({**good, "velocity": {**good["velocity"], "c": np.ones(1)}})
    with pytest.raises(ValueError, match="velocity"):
        opt.load_state_dict({"lr": 0.1, "momentum": 0.9, "weight_decay": 0.0})
    with pytest.raises(ValueError, match="lr"):
        opt.load_state_dict({**good, "lr": -1.0})


# -- bad arguments -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"lr": 0.0}, "lr"),
        ({"lr": -0.1}, "lr"),
        ({"lr": math.nan}, "lr"),
        ({"lr": "0.1"}, "lr"),
        ({"momentum": 1.0}, "momentum"),
        ({"momentum": -0.1}, "momentum"),
        ({"weight_decay": -1e-4}, "weight_decay"),
    ],
)
def test_bad_hyperparameters(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SGD(Linear(2, 2).parameters(), **kwargs)


def test_bad_parameters() -> None:
    w = np.zeros((2, 3))
    with pytest.raises(ValueError, match=r"shape \(3, 2\).*\(2, 3\)"):
        SGD([("w", w, np.zeros((3, 2)))])
    with pytest.raises(ValueError, match="duplicate.*'w'"):
        SGD([("w", w, np.zeros_like(w)), ("w", np.zeros(1), np.zeros(1))])
    with pytest.raises(ValueError, match="no parameters"):
        SGD([])
    with pytest.raises(TypeError, match="triples"):
        SGD([(w, np.zeros_like(w))])


# -- PlateauSchedule -----------------------------------------------------------------------------

ERRORS = [0.9, 0.8, 0.8, 0.85, 0.7, 0.7, 0.7, 0.6, 0.65, 0.6, 0.6, 0.6, 0.6, 0.6]
#        new  up   -1   -2:÷10 up   -1   -2:÷10 up  -1    -2:÷10 -1  -2:exhausted
REDUCED_AT = [3, 6, 9]
EXHAUSTED_AT = 11


def _opt(lr: float = 0.01) -> SGD:
    return SGD([("w", np.zeros(2), np.zeros(2))], lr=lr)


def test_plateau_reduces_after_patience_then_exhausts() -> None:
    opt = _opt()
    sched = PlateauSchedule(opt, patience=2, factor=0.1, max_reductions=3)
    lrs = []
    for epoch, err in enumerate(ERRORS):
        assert sched.exhausted == (epoch > EXHAUSTED_AT)
        reduced = sched.step(err)
        assert reduced == (epoch in REDUCED_AT), epoch
        lrs.append(opt.lr)
    assert sched.exhausted and sched.reductions == 3
    assert lrs[2] == 0.01 and lrs[3] == pytest.approx(1e-3)
    assert lrs[6] == pytest.approx(1e-4) and lrs[-1] == pytest.approx(1e-5)


def test_plateau_threshold_and_patience() -> None:
    opt = _opt()
    plain = PlateauSchedule(opt, patience=2)
    assert [plain.step(e) for e in [0.5, 0.47, 0.46]] == [False, False, False]
    strict = PlateauSchedule(opt, patience=2, threshold=0.05)
    assert [strict.step(e) for e in [0.5, 0.47, 0.46]] == [False, False, True]
    patient = PlateauSchedule(_opt(), patience=3)
    assert [patient.step(e) for e in [0.5, 0.5, 0.5, 0.5]] == [False, False, False, True]


def test_plateau_does_not_count_epochs_at_chance() -> None:
    """10 classes: chance error 0.9. Epochs at 0.86+ (within 5% of chance) are a slow start."""
    opt = _opt()
    sched = PlateauSchedule(opt, patience=2, chance_error=0.9)
    at_chance = [0.9, 0.89, 0.9, 0.895, 0.9, 0.89]
    assert not any(sched.step(e) for e in at_chance)
    assert opt.lr == 0.01 and sched.bad_epochs == 0
    # once it learns, plateaus count as usual
    assert [sched.step(e) for e in [0.6, 0.61, 0.62]] == [False, False, True]
    assert opt.lr == pytest.approx(1e-3)
    # without chance_error the same start would have cut the rate twice
    plain_opt = _opt()
    plain = PlateauSchedule(plain_opt, patience=2)
    assert sum(plain.step(e) for e in at_chance) == 2
    with pytest.raises(ValueError, match="chance_error"):
        PlateauSchedule(_opt(), chance_error=1.5)


def test_plateau_nan_is_no_improvement_and_zero_reductions_stop_at_once() -> None:
    opt = _opt()
    sched = PlateauSchedule(opt, patience=1, max_reductions=0)
    assert sched.step(0.5) is False and not sched.exhausted
    assert sched.step(math.nan) is False and sched.exhausted
    assert opt.lr == 0.01


def test_plateau_state_round_trip() -> None:
    whole_opt = _opt()
    whole = PlateauSchedule(whole_opt)
    expected = [whole.step(e) for e in ERRORS]

    opt = _opt()
    first = PlateauSchedule(opt)
    got = [first.step(e) for e in ERRORS[:9]]
    state = json.loads(json.dumps({"sched": first.state_dict(), "optim_lr": opt.lr}))

    opt2 = _opt(lr=state["optim_lr"])
    second = PlateauSchedule(opt2)
    second.load_state_dict(state["sched"])
    got += [second.step(e) for e in ERRORS[9:]]
    assert got == expected
    assert second.exhausted and opt2.lr == pytest.approx(whole_opt.lr)
    with pytest.raises(ValueError, match="PlateauSchedule"):
        second.load_state_dict(StepSchedule(opt2).state_dict())


def test_plateau_bad_arguments() -> None:
    opt = _opt()
    for kwargs in (
        {"patience": 0},
        {"factor": 1.0},
        {"factor": 0.0},
        {"max_reductions": -1},
        {"threshold": -0.1},
    ):
        with pytest.raises(ValueError, match=next(iter(kwargs))):
            PlateauSchedule(opt, **kwargs)
    with pytest.raises(ValueError, match="val_error"):
        PlateauSchedule(opt).step("0.5")  # type: ignore[arg-type]


# -- StepSchedule --------------------------------------------------------------------------------


def test_step_schedule() -> None:
    opt = _opt()
    sched = StepSchedule(opt, every=3)
    assert [sched.step() for _ in range(6)] == [False, False, True, False, False, True]
    assert opt.lr == pytest.approx(1e-4) and not sched.exhausted

    opt2 = _opt(lr=opt.lr)
    resumed = StepSchedule(opt2, every=3)
    resumed.load_state_dict(json.loads(json.dumps(sched.state_dict())))
    assert [resumed.step(0.3) for _ in range(3)] == [False, False, True]
    assert opt2.lr == pytest.approx(1e-5)
    with pytest.raises(ValueError, match="every"):
        StepSchedule(opt, every=0)
    with pytest.raises(ValueError, match="factor"):
        StepSchedule(opt, factor=2.0)


# -- LinearSchedule ------------------------------------------------------------------------------


def test_linear_schedule_goes_down_in_a_straight_line_and_never_back_up() -> None:
    opt = _opt(lr=0.02)
    sched = LinearSchedule(opt)
    lrs = []
    for done in (0.0, 0.25, 0.5, 0.4, 0.75, 1.0, 1.5):  # 0.4: time went back? ignored
        sched.on_batch(done)
        lrs.append(opt.lr)
    assert lrs == pytest.approx([0.02, 0.015, 0.01, 0.01, 0.005, 0.0, 0.0])
    assert sched.step(0.3) is False and not sched.exhausted and opt.lr == 0.0

    opt2 = _opt(lr=0.5)  # a resumed run: the start lr and the progress come from the state
    resumed = LinearSchedule(opt2)
    half = LinearSchedule(_opt(lr=0.02))
    half.on_batch(0.5)
    resumed.load_state_dict(json.loads(json.dumps(half.state_dict())))
    resumed.on_batch(0.3)  # behind the saved progress: stays at 0.5 done
    assert opt2.lr == pytest.approx(0.01)
    with pytest.raises(ValueError, match="LinearSchedule"):
        resumed.load_state_dict(StepSchedule(opt2).state_dict())
    with pytest.raises(ValueError, match="done"):
        resumed.on_batch(float("nan"))
