"""Tests of minialexnet.layers: gradients (finite differences), state, naming, initialisation.

Gradient checks run in float64 on small shapes. ReLU and max pooling are not
differentiable at a kink (an input at 0, two equal maxima in a window), so their
inputs are drawn away from kinks: |x| >= 0.1 for ReLU, values 0.1 apart for pooling
(both far larger than the finite-difference step 1e-6). Dropout is made
deterministic by re-seeding its generator before every forward.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minialexnet.backend import Device, to_numpy
from minialexnet.gradcheck import check_layer
from minialexnet.layers import (
    LRN,
    Conv2d,
    Dropout,
    Flatten,
    Layer,
    Linear,
    MaxPool2d,
    ReLU,
    Sequential,
    Tanh,
)

TOL = 1e-6
# hypothesis + the function-scoped `device` fixture: the fixture does not change between
# examples, which is what we want here.
HYPO = settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


# -- helpers -----------------------------------------------------------------------------------


def normal(device: Device, shape: tuple[int, ...], seed: int = 0, scale: float = 1.0):
    """A float64 standard-normal array on ``device`` (drawn on the host, so seeds agree)."""
    return device.asarray(scale * np.random.default_rng(seed).standard_normal(shape))


def away_from_zero(device: Device, shape: tuple[int, ...], seed: int = 0):
    """float64 values with 0.1 <= |x| <= 1.1: no ReLU kink within a finite-difference step."""
    rng = np.random.default_rng(seed)
    magnitude = rng.uniform(0.1, 1.1, shape)
    return device.asarray(np.where(rng.random(shape) < 0.5, -magnitude, magnitude))


def distinct(device: Device, shape: tuple[int, ...], seed: int = 0):
    """float64 values 0.1 apart in random order: no ties in any pooling window."""
    values = np.random.default_rng(seed).permutation(int(np.prod(shape))) * 0.1 - 1.0
    return device.asarray(values.reshape(shape))


def assert_grads_ok(errors: dict[str, float], expected_keys: set[str]) -> None:
    assert set(errors) == expected_keys
    bad = {k: e for k, e in errors.items() if not e < TOL}
    assert not bad, f"relative errors above {TOL}: {bad} (all: {errors})"


class SeededDropout(Dropout):
    """Dropout that re-creates its generator before every forward: the same mask each time."""

    def __init__(self, p: float, device: Device, seed: int = 0, **kwargs) -> None:
        super().__init__(p, rng=device.rng(seed), **kwargs)
        self.device, self.seed = device, seed

    def forward(self, x, train=True):
        self.rng = self.device.rng(self.seed)
        return super().forward(x, train)


def f64(**kwargs):
    return dict(dtype="float64", rng=np.random.default_rng(1), **kwargs)


# -- gradient checks, layer by layer ------------------------------------------------------------


@pytest.mark.parametrize(
    "cfg",
    [
        dict(stride=1, pad=0, groups=1, bias=True),
        dict(stride=2, pad=1, groups=2, bias=True),
        dict(stride=(2, 1), pad=(1, 0), groups=1, bias=False),
    ],
    ids=["plain", "stride2-pad1-groups2", "pairs-nobias"],
)
def test_conv2d_gradients(device, cfg):
    layer = Conv2d(4, 6, 3, **cfg, **f64(device=device, bias_value=0.1))
    x = normal(device, (2, 4, 5, 6))
    expected = {"x", "w", "b"} if cfg["bias"] else {"x", "w"}
    assert_grads_ok(check_layer(layer, x), expected)


@pytest.mark.parametrize("bias", [True, False])
def test_linear_gradients(device, bias):
    layer = Linear(7, 5, bias=bias, **f64(device=device, weight_std=0.5, bias_value=0.3))
    assert_grads_ok(
        check_layer(layer, normal(device, (3, 7))), {"x", "w", "b"} if bias else {"x", "w"}
    )


def test_linear_gradients_with_extra_leading_axes(device):
    layer = Linear(4, 3, **f64(device=device, weight_std=0.5))
    assert_grads_ok(check_layer(layer, normal(device, (2, 3, 4))), {"x", "w", "b"})


@pytest.mark.parametrize("size, stride", [(3, 2), (2, 2), ((3, 2), (1, 2))])
def test_maxpool2d_gradients(device, size, stride):
    x = distinct(device, (2, 3, 7, 6))
    assert_grads_ok(check_layer(MaxPool2d(size, stride), x), {"x"})


@pytest.mark.parametrize("n", [5, 4, 1])
def test_lrn_gradients(device, n):
    # Inputs of scale 10 and alpha=1e-2 make the normaliser far from constant, so a wrong
    # cross-channel term would show.
    layer = LRN(n=n, k=2.0, alpha=1e-2, beta=0.75)
    assert_grads_ok(check_layer(layer, normal(device, (2, 7, 3, 3), scale=10.0)), {"x"})


def test_lrn_gradients_paper_constants(device):
    assert_grads_ok(check_layer(LRN(), normal(device, (2, 6, 3, 3), scale=30.0)), {"x"})


def test_relu_gradients(device):
    assert_grads_ok(check_layer(ReLU(), away_from_zero(device, (2, 3, 4, 5))), {"x"})


def test_tanh_gradients(device):
    assert_grads_ok(check_layer(Tanh(), normal(device, (2, 3, 4, 5))), {"x"})


def test_flatten_gradients(device):
    assert_grads_ok(check_layer(Flatten(), normal(device, (2, 3, 2, 2))), {"x"})


@pytest.mark.parametrize("mode", ["inverted", "paper"])
@pytest.mark.parametrize("train", [True, False])
def test_dropout_gradients(device, mode, train):
    layer = SeededDropout(0.5, device, seed=3, mode=mode)
    x = normal(device, (4, 10))
    assert_grads_ok(check_layer(layer, x, train=train), {"x"})
    if train:  # a real mask: some units dropped, some kept
        out = to_numpy(layer.forward(x, train=True))
        assert (out == 0).any() and (out != 0).any()


# -- Sequential ----------------------------------------------------------------------------------


def small_net(device: Device, named: bool) -> Sequential:
    init = dict(dtype="float64", rng=np.random.default_rng(5), device=device, weight_std=0.3)
    layers = [
        ("conv", Conv2d(3, 4, 3, pad=1, bias_value=0.1, **init)),
        ("relu", ReLU()),
        ("lrn", LRN(n=3, alpha=1e-2)),
        ("pool", MaxPool2d(3, 2)),
        ("flatten", Flatten()),
        ("drop", SeededDropout(0.25, device, seed=1)),
        ("fc", Linear(4 * 2 * 2, 3, **init)),
    ]
    return Sequential(OrderedDict(layers)) if named else Sequential(*(lay for _, lay in layers))


@pytest.mark.parametrize("named", [False, True], ids=["numbered", "named"])
def test_sequential_gradients_and_names(device, named):
    net = small_net(device, named)
    names = [name for name, _, _ in net.parameters()]
    expected = ["conv.w", "conv.b", "fc.w", "fc.b"] if named else ["0.w", "0.b", "6.w", "6.b"]
    assert names == expected
    x = normal(device, (2, 3, 5, 5), seed=2)
    assert net.forward(x).shape == (2, 3)
    assert_grads_ok(check_layer(net, x), {"x", *expected})


def test_sequential_from_pairs_and_nesting():
    block = Sequential([("conv", Conv2d(2, 2, 1)), ("relu", ReLU())])
    net = Sequential(block, Flatten(), Sequential(Linear(8, 3), Tanh()))
    names = [name for name, _, _ in net.parameters()]
    assert names == ["0.conv.w", "0.conv.b", "2.0.w", "2.0.b"]
    assert list(net.params) == names and list(net.grads) == names
    net = Sequential({"block": block, "flat": Flatten()})
    assert [name for name, _, _ in net.parameters()] == ["block.conv.w", "block.conv.b"]


def test_sequential_container_protocol():
    conv, relu, flat = Conv2d(1, 2, 1), ReLU(), Flatten()
    net = Sequential([("conv", conv), ("relu", relu), ("flat", flat)])
    assert len(net) == 3
    assert list(net) == [conv, relu, flat]
    assert net[0] is conv and net[-1] is flat and net["relu"] is relu
    head = net[:2]
    assert isinstance(head, Sequential) and head.names == ["conv", "relu"] and head[0] is conv
    with pytest.raises(KeyError, match="nope"):
        net["nope"]
    text = repr(net)
    assert "(conv): Conv2d(1, 2" in text and "(flat): Flatten()" in text


def test_sequential_runs_in_order_and_backward_in_reverse(device):
    net = Sequential(Flatten(), Linear(6, 2, device=device, dtype="float64"))
    x = normal(device, (3, 2, 3))
    out = net.forward(x)
    assert out.shape == (3, 2)
    dx = net.backward(device.xp.ones_like(out))
    assert dx.shape == x.shape


@pytest.mark.parametrize(
    "args, error",
    [
        ((), ValueError),  # empty
        (([("a", ReLU()), ("a", Tanh())],), ValueError),  # duplicate name
        (([("a.b", ReLU())],), ValueError),  # dot in name
        (([("", ReLU())],), ValueError),  # empty name
        (([ReLU(), Tanh()],), ValueError),  # a list that is not of pairs
        ((ReLU(), "relu"), TypeError),  # not a layer
    ],
)
def test_sequential_rejects_bad_input(args, error):
    with pytest.raises(error, match="Sequential"):
        Sequential(*args)


def test_zero_grad(device):
    net = small_net(device, named=True)
    x = normal(device, (2, 3, 5, 5))
    net.backward(device.xp.ones_like(net.forward(x)))
    assert all(float(abs(g).sum()) > 0 for _, _, g in net.parameters())
    net.zero_grad()
    assert all(float(abs(g).sum()) == 0 for _, _, g in net.parameters())


# -- state and bookkeeping ------------------------------------------------------------------------

ALL_LAYERS = [
    lambda dev: Conv2d(3, 4, 3, device=dev),
    lambda dev: Linear(5, 2, device=dev),
    lambda dev: MaxPool2d(),
    lambda dev: LRN(),
    lambda dev: ReLU(),
    lambda dev: Tanh(),
    lambda dev: Dropout(0.5, rng=dev.rng(0)),
    lambda dev: Flatten(),
    lambda dev: Sequential(Conv2d(3, 4, 3, device=dev), ReLU()),
]
LAYER_IDS = ["conv", "linear", "maxpool", "lrn", "relu", "tanh", "dropout", "flatten", "seq"]


@pytest.mark.parametrize("make", ALL_LAYERS, ids=LAYER_IDS)
def test_backward_before_forward_raises(device, make):
    layer = make(device)
    with pytest.raises(RuntimeError, match="forward"):
        layer.backward(device.xp.ones((2, 3), dtype="float32"))


@pytest.mark.parametrize("make", ALL_LAYERS, ids=LAYER_IDS)
def test_grads_match_params(device, make):
    layer = make(device)
    assert isinstance(layer, Layer)
    assert list(layer.grads) == list(layer.params)
    for name, param, grad in layer.parameters():
        assert layer.params[name] is param
        assert grad.shape == param.shape and grad.dtype == param.dtype
        assert device.holds(param) and device.holds(grad)
    if not isinstance(layer, Sequential) and not isinstance(layer, (Conv2d, Linear)):
        assert layer.params == {} and layer.grads == {}


@pytest.mark.parametrize("cls, shape", [(Conv2d, (2, 3, 6, 6)), (Linear, (2, 5))])
def test_backward_overwrites_grads_in_place(device, cls, shape):
    layer = Conv2d(3, 4, 3, device=device) if cls is Conv2d else Linear(5, 2, device=device)
    x = normal(device, shape).astype("float32")
    held = dict(layer.grads)
    out = layer.forward(x)
    dout = device.xp.ones_like(out)
    layer.backward(dout)
    first = {k: to_numpy(g).copy() for k, g in layer.grads.items()}
    layer.backward(dout)  # no accumulation: the same gradients again
    for k, g in layer.grads.items():
        assert g is held[k]  # the same arrays, overwritten in place
        np.testing.assert_array_equal(to_numpy(g), first[k])


@pytest.mark.parametrize("cls, shape", [(Conv2d, (2, 3, 6, 6)), (Linear, (2, 5))])
def test_input_grad_false_returns_no_dx_and_the_same_parameter_gradients(device, cls, shape):
    layer = Conv2d(3, 4, 3, device=device) if cls is Conv2d else Linear(5, 2, device=device)
    x = normal(device, shape)
    dout = device.xp.ones_like(layer.forward(x))
    assert layer.backward(dout).shape == x.shape
    want = {k: to_numpy(g).copy() for k, g in layer.grads.items()}
    layer.input_grad = False
    assert layer.backward(dout) is None
    for k, g in layer.grads.items():
        np.testing.assert_array_equal(to_numpy(g), want[k])


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(1, 4), min_size=2, max_size=5))
def test_flatten_round_trips_shapes(shape):
    shape = tuple(shape)
    x = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    layer = Flatten()
    out = layer.forward(x)
    assert out.shape == (shape[0], int(np.prod(shape[1:])))
    dx = layer.backward(out)
    assert dx.shape == shape
    np.testing.assert_array_equal(dx, x)


def test_flatten_rejects_bad_shapes():
    layer = Flatten()
    with pytest.raises(ValueError, match="Flatten"):
        layer.forward(np.zeros(3, dtype=np.float32))
    layer.forward(np.zeros((2, 3, 4), dtype=np.float32))
    with pytest.raises(ValueError, match="dout"):
        layer.backward(np.zeros((2, 11), dtype=np.float32))


@HYPO
@given(
    c_in=st.integers(1, 3),
    c_out=st.integers(1, 3),
    groups=st.sampled_from([1, 2]),
    k=st.integers(1, 3),
    stride=st.integers(1, 3),
    pad=st.integers(0, 2),
    hw=st.integers(3, 7),
)
def test_conv2d_shapes(device, c_in, c_out, groups, k, stride, pad, hw):
    c_in, c_out = c_in * groups, c_out * groups
    layer = Conv2d(c_in, c_out, k, stride, pad, groups, device=device)
    assert layer.params["w"].shape == (c_out, c_in // groups, k, k)
    assert layer.params["b"].shape == (c_out,)
    x = normal(device, (2, c_in, hw, hw)).astype("float32")
    out = layer.forward(x)
    side = (hw + 2 * pad - k) // stride + 1
    assert out.shape == (2, c_out, side, side) and out.dtype == np.float32
    assert layer.backward(device.xp.ones_like(out)).shape == x.shape


# -- initialisation, dtype, device ---------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda rng, dev: Conv2d(3, 8, 5, groups=1, rng=rng, device=dev),
        lambda rng, dev: Linear(6, 4, rng=rng, device=dev),
    ],
    ids=["conv", "linear"],
)
def test_same_seed_same_weights(device, make):
    a = make(np.random.default_rng(42), device)
    b = make(np.random.default_rng(42), device)
    c = make(np.random.default_rng(43), device)
    cpu = make(np.random.default_rng(42), Device("cpu"))
    np.testing.assert_array_equal(to_numpy(a.params["w"]), to_numpy(b.params["w"]))
    np.testing.assert_array_equal(to_numpy(a.params["w"]), cpu.params["w"])  # bit for bit
    assert not np.array_equal(to_numpy(a.params["w"]), to_numpy(c.params["w"]))
    # the default generator is seeded too
    np.testing.assert_array_equal(
        to_numpy(make(None, device).params["w"]), to_numpy(make(None, device).params["w"])
    )


def test_paper_initialisation():
    layer = Linear(1000, 200, bias_value=1.0, rng=np.random.default_rng(0))
    w, b = layer.params["w"], layer.params["b"]
    assert abs(float(w.std()) - 0.01) < 0.0002 and abs(float(w.mean())) < 0.0002
    np.testing.assert_array_equal(b, np.ones(200, dtype=np.float32))
    conv = Conv2d(8, 16, 3, groups=2, weight_std=0.05, bias_value=0.5)
    assert abs(float(conv.params["w"].std()) - 0.05) < 0.01
    assert np.all(conv.params["b"] == np.float32(0.5))
    assert "b" not in Conv2d(2, 2, 3, bias=False).params


@pytest.mark.parametrize("dtype", [None, "float32", "float64", np.float64])
def test_dtype(device, dtype):
    kwargs = {} if dtype is None else {"dtype": dtype}
    want = np.dtype(dtype or "float32")
    conv = Conv2d(2, 3, 3, device=device, **kwargs)
    fc = Linear(3, 2, device=device, **kwargs)
    for layer in (conv, fc):
        for _, p, g in layer.parameters():
            assert p.dtype == want and g.dtype == want
    x = normal(device, (2, 2, 3, 3)).astype(want)
    out = fc.forward(Flatten().forward(conv.forward(x)))
    assert out.dtype == want
    fc.backward(device.xp.ones_like(out))
    assert all(g.dtype == want for g in fc.grads.values())


def test_dropout_eval_draws_nothing():
    x = np.arange(1.0, 9.0).reshape(2, 4)
    rng = np.random.default_rng(0)
    state = rng.bit_generator.state
    np.testing.assert_array_equal(Dropout(0.5, rng=rng).forward(x, train=False), x)
    np.testing.assert_array_equal(
        Dropout(0.25, mode="paper", rng=rng).forward(x, train=False), 0.75 * x
    )
    assert rng.bit_generator.state == state
    out = Dropout(0.5, rng=rng).forward(x, train=True)  # inverted: kept units doubled
    assert set(np.unique(out / x)) <= {0.0, 2.0}
    assert rng.bit_generator.state != state


def test_dropout_same_seed_same_mask(device):
    x = device.xp.ones((8, 16), dtype="float32")
    a = Dropout(0.5, rng=device.rng(7)).forward(x)
    b = Dropout(0.5, rng=device.rng(7)).forward(x)
    np.testing.assert_array_equal(to_numpy(a), to_numpy(b))


# -- constructor checks and repr ----------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: Conv2d(0, 4, 3),
        lambda: Conv2d(3, 4, 0),
        lambda: Conv2d(3, 4, 3, stride=0),
        lambda: Conv2d(3, 4, 3, pad=-1),
        lambda: Conv2d(3, 4, 3, groups=2),  # 3 not divisible by 2
        lambda: Conv2d(4, 4, 3, groups=0),
        lambda: Conv2d(3, 4, (3, 3, 3)),
        lambda: Conv2d(3, 4, 3, weight_std=-1.0),
        lambda: Conv2d(3, 4, 3, dtype="int32"),
        lambda: Conv2d(3, 4, 2.5),
        lambda: Linear(0, 3),
        lambda: Linear(3, 2, dtype="float16"),
        lambda: Linear(3, 2, bias_value=float("nan")),
        lambda: MaxPool2d(0),
        lambda: MaxPool2d(3, stride=-2),
        lambda: LRN(n=0),
        lambda: LRN(k="2"),
        lambda: Dropout(1.0),
        lambda: Dropout(-0.1),
        lambda: Dropout(0.5, mode="caffe"),
    ],
)
def test_constructors_reject_bad_arguments(make):
    # a bad value is a ValueError; a value of the wrong type (2.5, a triple) a TypeError
    with pytest.raises((ValueError, TypeError)):
        make()


def test_host_rng_must_be_numpy():
    with pytest.raises(TypeError, match="default_rng"):
        Linear(3, 2, rng=42)


def test_repr_shows_configuration():
    assert repr(Conv2d(3, 96, 11, stride=4)).startswith(
        "Conv2d(3, 96, kernel_size=(11, 11), stride=(4, 4), pad=(0, 0), groups=1, bias=True"
    )
    assert repr(Linear(9216, 4096)).startswith("Linear(9216, 4096, bias=True")
    assert repr(MaxPool2d()) == "MaxPool2d(size=(3, 3), stride=(2, 2))"
    assert repr(LRN()) == "LRN(n=5, k=2.0, alpha=0.0001, beta=0.75)"
    assert repr(Dropout()) == "Dropout(p=0.5, mode='inverted')"
    assert repr(ReLU()) == "ReLU()"
