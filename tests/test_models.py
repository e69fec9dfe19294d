"""Tests of minialexnet.towers and minialexnet.models: AlexNet's shapes, its two towers, its init.

The central claim [3.2]: two towers on one device are the same function as ONE
network whose conv2, conv4, conv5 are grouped convolutions (groups=2), whose LRN
runs within each half of the channels, and whose conv3, fc6, fc7, fc8 are dense
layers with the towers' weights stacked (tower a's rows, then tower b's). The
equivalence test builds that one-stack network from plain layers and compares
logits, the input gradient and every parameter gradient, in float64.

The two-device tests use simulated devices ``Device("cpu:0")``/``Device("cpu:1")``:
NumPy arrays that raise when arrays of two devices meet, so a forward+backward
that runs proves that only Broadcast, Exchange and Gather move data.

Only ``alexnet_cifar`` (32x32) runs forward at a batch above 1; the full
``alexnet`` is built once (60M parameters, ~1.5 s) for its counts and summary.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from helpers import record_outputs

from minialexnet.backend import Device, to_numpy
from minialexnet.functional import lrn_backward, lrn_forward
from minialexnet.gradcheck import numerical_gradient, relative_error
from minialexnet.layers import Conv2d, Dropout, Flatten, Linear, MaxPool2d, ReLU, Sequential
from minialexnet.models import alexnet, alexnet_cifar, model_from_config
from minialexnet.towers import Broadcast, Exchange, Gather

CIFAR_PARAMS = 2_846_090
ALEXNET_PARAMS = 60_965_224
# layer: (paper bias, weight shape per tower) for alexnet_cifar
CIFAR_LAYERS = {
    "conv1": (0.0, (32, 3, 5, 5)),
    "conv2": (1.0, (64, 32, 5, 5)),
    "conv3": (0.0, (96, 128, 3, 3)),
    "conv4": (1.0, (96, 96, 3, 3)),
    "conv5": (1.0, (64, 96, 3, 3)),
    "fc6": (1.0, (512, 1152)),
    "fc7": (1.0, (512, 1024)),
}


def images(n: int, size: int = 32, seed: int = 0, dtype: Any = np.float64) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 3, size, size)).astype(dtype)


def two_devices() -> list[Device]:
    return [Device("cpu:0"), Device("cpu:1")]


def grads_of(model: Any) -> dict[str, np.ndarray]:
    return {name: np.array(to_numpy(g)) for name, _, g in model.parameters()}


def step(model: Any, x: np.ndarray, train: bool, seed: int = 1) -> tuple[Any, Any]:
    """Forward, then backward of a fixed random upstream gradient; returns (logits, dx)."""
    logits = model.forward(x, train=train)
    dlogits = np.random.default_rng(seed).standard_normal(logits.shape).astype(logits.dtype)
    dx = model.backward(dlogits)
    return logits, dx


# ------------------------------------------------------------------------------ shapes, counts
def test_full_alexnet_has_the_papers_parameter_count_shapes_and_summary():
    model = alexnet()
    assert model.num_parameters() == ALEXNET_PARAMS
    assert sum(p.size for _, p, _ in model.parameters()) == ALEXNET_PARAMS
    shapes = {name: p.shape for name, p, _ in model.parameters()}
    assert shapes["a.conv1.w"] == shapes["b.conv1.w"] == (48, 3, 11, 11)
    assert shapes["a.conv2.w"] == (128, 48, 5, 5)  # own tower: 48 maps in
    assert shapes["b.conv3.w"] == (192, 256, 3, 3)  # both towers: 256 maps in
    assert shapes["a.conv4.w"] == (192, 192, 3, 3)
    assert shapes["b.conv5.w"] == (128, 192, 3, 3)
    assert shapes["a.fc6.w"] == (2048, 9216)
    assert shapes["b.fc7.w"] == (2048, 4096)
    assert shapes["fc8.w"] == (1000, 4096) and shapes["fc8.b"] == (1000,)
    assert model.input_size == 227 and model.config["arch"] == "alexnet"

    text = model.summary()
    for name, _, _ in model.named_layers():
        assert name in text
    assert "60,965,224" in text and "227" in text and "224" in text
    assert "1 x 48 x 55 x 55" in text and "1 x 128 x 6 x 6" in text and "1 x 1000" in text

    logits = model.forward(np.zeros((1, 3, 227, 227), np.float32), train=False)
    assert logits.shape == (1, 1000) and logits.dtype == np.float32


def test_cifar_variant_counts_and_output_shapes():
    model = alexnet_cifar()
    assert model.num_parameters() == CIFAR_PARAMS
    for layer, (_, shape) in CIFAR_LAYERS.items():
        for tower in "ab":
            assert model.state_dict()[f"{tower}.{layer}.w"].shape == shape
    assert model.state_dict()["fc8.w"].shape == (10, 1024)
    assert model.input_size == 32
    out = model.forward(images(3, dtype=np.float32))
    assert out.shape == (3, 10) and out.dtype == np.float32
    assert alexnet_cifar(num_classes=7).forward(images(2)).shape == (2, 7)
    text = model.summary()
    assert "2,846,090" in text
    for name, _, _ in model.named_layers():
        assert name in text


def test_config_is_json_and_rebuilds_the_model():
    model = alexnet_cifar(num_classes=5, init="scaled", dtype="float64")
    config = json.loads(json.dumps(model.config))
    assert config == {
        "arch": "alexnet-cifar",
        "num_classes": 5,
        "input_size": 32,
        "init": "scaled",
        "dtype": "float64",
    }
    again = model_from_config(config)
    assert again.config == model.config
    for (n1, p1, _), (n2, p2, _) in zip(model.parameters(), again.parameters(), strict=True):
        assert n1 == n2 and np.array_equal(p1, p2)


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="init"):
        alexnet_cifar(init="kaiming")
    with pytest.raises(ValueError, match="devices"):
        alexnet_cifar(devices=["cpu:0", "cpu:1", "cpu:2"])
    with pytest.raises(ValueError, match="num_classes"):
        alexnet_cifar(num_classes=0)
    with pytest.raises(ValueError, match=r"\(N, 3, 32, 32\)"):
        alexnet_cifar().forward(images(2, size=28))


# ------------------------------------------------------------------------------ the pieces
def test_exchange_concatenates_in_tower_order_and_sums_gradients_at_home():
    d0, d1 = two_devices()
    xa, xb = np.arange(4.0).reshape(2, 2), 10 + np.arange(6.0).reshape(2, 3)
    ex = Exchange([d0, d1])
    ya, yb = ex.forward([d0.asarray(xa), d1.asarray(xb)])
    assert d0.holds(ya) and d1.holds(yb)
    np.testing.assert_array_equal(ya, np.concatenate([xa, xb], axis=1))
    np.testing.assert_array_equal(yb, np.concatenate([xa, xb], axis=1))

    ga, gb = np.arange(10.0).reshape(2, 5), 100 * np.arange(10.0).reshape(2, 5)
    dxa, dxb = ex.backward([d0.asarray(ga), d1.asarray(gb)])
    assert d0.holds(dxa) and d1.holds(dxb)
    np.testing.assert_array_equal(dxa, ga[:, :2] + gb[:, :2])  # xa fed both towers
    np.testing.assert_array_equal(dxb, ga[:, 2:] + gb[:, 2:])


def test_gather_and_broadcast_move_explicitly_and_their_backwards_undo_it():
    d0, d1 = two_devices()
    xa, xb = np.ones((2, 3, 2, 2)), 2 * np.ones((2, 1, 2, 2))
    gather = Gather([d0, d1])
    y = gather.forward([d0.asarray(xa), d1.asarray(xb)])
    assert d0.holds(y) and y.shape == (2, 4, 2, 2)
    g = np.arange(32.0).reshape(2, 4, 2, 2)
    dxa, dxb = gather.backward(d0.asarray(g))
    assert d0.holds(dxa) and d1.holds(dxb)
    np.testing.assert_array_equal(dxa, g[:, :3])
    np.testing.assert_array_equal(dxb, g[:, 3:])

    bc = Broadcast([d0, d1], np.float32)
    ya, yb = bc.forward(np.ones((1, 2)))
    assert d0.holds(ya) and d1.holds(yb) and ya.dtype == np.float32
    dx = bc.backward([d0.asarray(np.ones((1, 2))), d1.asarray(np.full((1, 2), 3.0))])
    assert d0.holds(dx)
    np.testing.assert_array_equal(dx, np.full((1, 2), 4.0))


# ------------------------------------------------------------------------------ = groups=2
class GroupLRN:
    """LRN within each half of the channels: what LRN on two towers is on one stack."""

    params: dict = {}
    grads: dict = {}

    def forward(self, x: Any, train: bool = True) -> Any:
        pairs = [lrn_forward(h, 5, 2.0, 1e-4, 0.75) for h in np.split(x, 2, axis=1)]
        outs, self.cache = zip(*pairs, strict=True)
        return np.concatenate(outs, axis=1)

    def backward(self, dout: Any) -> Any:
        halves = zip(np.split(dout, 2, 1), self.cache, strict=True)
        return np.concatenate([lrn_backward(g, c) for g, c in halves], axis=1)

    def parameters(self):
        return iter(())

    def zero_grad(self) -> None:
        pass


def one_stack(model: Any) -> Sequential:
    """alexnet_cifar as one network of plain layers, from the model's weights (float64)."""
    sd = model.state_dict()

    def stacked(name: str) -> tuple[np.ndarray, np.ndarray]:  # a's kernels/rows, then b's
        w = np.concatenate([sd[f"a.{name}.w"], sd[f"b.{name}.w"]])
        return w, np.concatenate([sd[f"a.{name}.b"], sd[f"b.{name}.b"]])

    def conv(name: str, groups: int, stride: int, pad: int) -> Conv2d:
        w, b = stacked(name)
        layer = Conv2d(w.shape[1] * groups, w.shape[0], w.shape[2], stride, pad, groups,
                       dtype="float64")  # fmt: skip
        layer.params["w"][...], layer.params["b"][...] = w, b
        return layer

    def fc(w: np.ndarray, b: np.ndarray) -> Linear:
        layer = Linear(w.shape[1], w.shape[0], dtype="float64")
        layer.params["w"][...], layer.params["b"][...] = w, b
        return layer

    return Sequential([
        ("conv1", conv("conv1", groups=1, stride=1, pad=2)),  # 64 maps: a's 32, then b's
        ("relu1", ReLU()), ("norm1", GroupLRN()), ("pool1", MaxPool2d(3, 2)),
        ("conv2", conv("conv2", groups=2, stride=1, pad=2)),  # own tower = groups=2
        ("relu2", ReLU()), ("norm2", GroupLRN()), ("pool2", MaxPool2d(3, 2)),
        ("conv3", conv("conv3", groups=1, stride=1, pad=1)),  # both towers = dense
        ("relu3", ReLU()),
        ("conv4", conv("conv4", groups=2, stride=1, pad=1)),
        ("relu4", ReLU()),
        ("conv5", conv("conv5", groups=2, stride=1, pad=1)),
        ("relu5", ReLU()), ("pool5", MaxPool2d(3, 2)), ("flatten", Flatten()),
        ("fc6", fc(*stacked("fc6"))), ("relu6", ReLU()), ("drop6", Dropout(0.5)),
        ("fc7", fc(*stacked("fc7"))), ("relu7", ReLU()), ("drop7", Dropout(0.5)),
        ("fc8", fc(sd["fc8.w"], sd["fc8.b"])),
    ])  # fmt: skip


@pytest.mark.parametrize("init", ["paper", "scaled"])
def test_two_towers_on_one_device_equal_one_grouped_network(init):
    model = alexnet_cifar(seed=3, init=init, dtype="float64")
    reference = one_stack(model)
    x = images(3, seed=4) * 30  # raw-pixel-like scale, so LRN is far from a constant factor
    logits, dx = step(model, x, train=False)
    ref_logits, ref_dx = step(reference, x, train=False)

    def close(a: Any, b: Any) -> None:
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12 * np.abs(b).max())

    close(logits, ref_logits)
    close(dx, ref_dx)
    grads = grads_of(model)
    for name, g in reference.grads.items():
        if name.startswith("fc8."):
            close(grads[name], g)
        else:
            a, b = np.split(g, 2)  # tower a's kernels/rows, then tower b's
            close(grads[f"a.{name}"], a)
            close(grads[f"b.{name}"], b)
    assert len(grads) == 2 * 2 * len(CIFAR_LAYERS) + 2


# ------------------------------------------------------------------------------ two devices
def test_two_devices_place_everything_and_compute_what_one_device_computes():
    model = alexnet_cifar(devices=two_devices(), seed=2, init="scaled")
    d0, d1 = model.devices
    outputs = record_outputs(model)
    x = images(4, dtype=np.float32)
    logits, dx = step(model, x, train=True)  # dropout on: the masks must match too

    assert d0.holds(logits) and d0.holds(dx)
    for name, param, grad in model.parameters():
        home = d1 if name.startswith("b.") else d0
        assert home.holds(param) and home.holds(grad), name
    for name, out in outputs.items():
        assert (d1 if name.startswith("b.") else d0).holds(out), name
    assert len(outputs) == len(list(model.named_layers()))

    # the summary's shapes are the shapes the forward produced (for a batch of 1)
    rows = {line.split()[0]: line for line in model.summary().splitlines() if line}
    for name, out in outputs.items():
        assert " x ".join(map(str, (1, *out.shape[1:]))) in rows[name], name

    single = alexnet_cifar(seed=2, init="scaled")
    ref_logits, ref_dx = step(single, x, train=True)
    np.testing.assert_array_equal(logits, ref_logits)
    np.testing.assert_array_equal(dx, ref_dx)
    ref_grads = grads_of(single)
    for name, g in grads_of(model).items():
        np.testing.assert_array_equal(g, ref_grads[name], err_msg=name)


def test_input_grad_off_skips_the_image_gradient_and_keeps_every_parameter_gradient():
    """Training sets ``input_grad = False``: conv1 skips dL/dx; nothing else changes."""
    for devices in ([Device("cpu")], two_devices()):
        model = alexnet_cifar(devices=devices, seed=5, init="scaled")
        x = images(3, dtype=np.float32)
        assert model.input_grad
        logits, dx = step(model, x, train=False)
        assert dx is not None and dx.shape == x.shape
        want = grads_of(model)
        model.input_grad = False
        assert not model.input_grad
        first = [layer for name, layer, _ in model.named_layers() if name.endswith("conv1")]
        assert len(first) == 2 and not any(layer.input_grad for layer in first)
        logits_off, dx_off = step(model, x, train=False)
        assert dx_off is None
        np.testing.assert_array_equal(to_numpy(logits_off), to_numpy(logits))
        for name, g in grads_of(model).items():
            np.testing.assert_array_equal(g, want[name], err_msg=name)
        model.input_grad = True
        assert step(model, x, train=False)[1] is not None


def test_model_on_each_device_matches_the_cpu(device):
    """Both towers on one device (the CPU, or GPU 0 where there is one)."""
    model = alexnet_cifar(devices=[device], seed=8, init="scaled", dtype="float64")
    x = images(2, seed=9)
    logits, dx = step(model, x, train=False)
    assert device.holds(logits) and device.holds(dx)
    assert all(device.holds(p) and device.holds(g) for _, p, g in model.parameters())
    cpu = alexnet_cifar(seed=8, init="scaled", dtype="float64")
    ref_logits, ref_dx = step(cpu, x, train=False)
    np.testing.assert_allclose(to_numpy(logits), ref_logits, rtol=1e-9)
    np.testing.assert_allclose(to_numpy(dx), ref_dx, rtol=1e-8, atol=1e-12 * np.abs(ref_dx).max())
    ref_grads = grads_of(cpu)
    for name, g in grads_of(model).items():
        np.testing.assert_allclose(g, ref_grads[name], rtol=1e-8, atol=1e-12, err_msg=name)
    model.reseed(0)
    assert model.forward(x, train=True).shape == (2, 10)  # dropout draws on the device


def test_same_seed_gives_the_same_weights_on_any_devices():
    one = alexnet_cifar(seed=11).state_dict()
    two = alexnet_cifar(seed=11, devices=two_devices()).state_dict()
    other = alexnet_cifar(seed=12).state_dict()
    assert list(one) == list(two)
    for name in one:
        assert type(two[name]) is np.ndarray  # host copies, not device arrays
        np.testing.assert_array_equal(one[name], two[name])
    assert not np.array_equal(one["b.conv1.w"], other["b.conv1.w"])
    assert not np.array_equal(one["a.conv1.w"], one["b.conv1.w"])  # towers differ


# ------------------------------------------------------------------------------ gradients
def test_gradients_match_finite_differences():
    model = alexnet_cifar(seed=5, init="scaled", dtype="float64")
    x = images(2, seed=6)
    logits, dx = step(model, x, train=False, seed=7)
    dout = np.random.default_rng(7).standard_normal(logits.shape)
    analytic = grads_of(model)
    params = {name: p for name, p, _ in model.parameters()}

    def f(_: Any) -> Any:
        return model.forward(x, train=False)

    # (parameter, index of a small contiguous block): one block per kind of layer and tower
    blocks = [
        ("a.conv1.w", (0, 1)),
        ("b.conv2.b", slice(0, 16)),
        ("b.conv3.w", (5, 100)),
        ("a.conv4.w", (7, 3)),
        ("b.conv5.b", slice(40, 56)),
        ("a.fc6.w", (9, slice(0, 16))),
        ("b.fc7.w", (3, slice(500, 516))),
        ("fc8.w", (2, slice(1010, 1020))),
        ("fc8.b", slice(None)),
    ]
    for name, index in blocks:
        numeric = numerical_gradient(f, params[name][index], dout)
        assert relative_error(analytic[name][index], numeric) < 1e-5, name
    numeric_dx = numerical_gradient(f, x[1, 2, 7, 10:22], dout)  # f reads x, perturbed in place
    assert relative_error(dx[1, 2, 7, 10:22], numeric_dx) < 1e-5


# ------------------------------------------------------------------------------ state
def test_state_dict_round_trip_and_load_errors_name_the_key():
    source = alexnet_cifar(seed=0)
    target = alexnet_cifar(seed=1, devices=two_devices())
    x = images(2, dtype=np.float32)
    assert not np.allclose(source.forward(x, train=False), target.forward(x, train=False))
    state = source.state_dict()
    target.load_state_dict(state)
    for name, p in target.state_dict().items():
        np.testing.assert_array_equal(p, state[name])
    np.testing.assert_array_equal(source.forward(x, train=False), target.forward(x, train=False))
    for name, p, g in target.parameters():  # still on their devices, grads too
        home = target.devices[1] if name.startswith("b.") else target.devices[0]
        assert home.holds(p) and home.holds(g)
    state["a.conv1.w"][...] = 0  # a copy: the model is untouched
    assert np.abs(source.state_dict()["a.conv1.w"]).sum() > 0

    missing = {k: v for k, v in state.items() if k != "b.fc6.b"}
    with pytest.raises(ValueError, match=r"missing .*'b\.fc6\.b'"):
        target.load_state_dict(missing)
    with pytest.raises(ValueError, match=r"unexpected .*'c\.conv1\.w'"):
        target.load_state_dict({**state, "c.conv1.w": state["a.conv1.w"]})
    with pytest.raises(ValueError, match=r"'fc8\.w' has shape \(10, 1024\) .* \(7, 1024\)"):
        target.load_state_dict({**state, "fc8.w": np.zeros((7, 1024), np.float32)})


def test_reseed_makes_training_forward_repeatable_and_zero_grad_clears():
    model = alexnet_cifar(seed=0, devices=two_devices())
    x = images(4, dtype=np.float32)
    model.reseed(5)
    first = model.forward(x, train=True)
    second = model.forward(x, train=True)
    model.reseed(5)
    again = model.forward(x, train=True)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, second)  # fresh masks each call
    model.reseed(6)
    assert not np.array_equal(first, model.forward(x, train=True))
    np.testing.assert_array_equal(model.forward(x, train=False), model.forward(x, train=False))
    model.reseed(5)  # every dropout layer (a.drop6, b.drop6, a.drop7, b.drop7) its own stream
    draws = [
        layer.rng.random(8) for _, layer, _ in model.named_layers() if isinstance(layer, Dropout)
    ]
    assert len(draws) == 4 and len({d.tobytes() for d in draws}) == 4

    model.backward(np.ones_like(first))
    assert any(np.abs(g).sum() > 0 for _, _, g in model.parameters())
    model.zero_grad()
    assert all(np.abs(g).sum() == 0 for _, _, g in model.parameters())


# ------------------------------------------------------------------------------ init
def test_paper_init_biases_and_weight_scale():
    sd = alexnet_cifar(seed=0, init="paper").state_dict()
    for layer, (bias, _) in CIFAR_LAYERS.items():
        for tower in "ab":
            assert np.all(sd[f"{tower}.{layer}.b"] == bias), f"{tower}.{layer}.b"
    assert np.all(sd["fc8.b"] == 0)
    for name in ("a.fc6.w", "b.fc6.w", "a.conv3.w"):
        w = sd[name]
        assert abs(w.std() - 0.01) < 0.0005 and abs(w.mean()) < 0.0005, name


def test_scaled_init_is_uniform_within_one_over_sqrt_fan_in():
    sd = alexnet_cifar(seed=0, init="scaled").state_dict()
    fan_in = {"conv1": 3 * 25, "conv2": 32 * 25, "conv3": 128 * 9, "conv4": 96 * 9,
              "conv5": 96 * 9, "fc6": 1152, "fc7": 1024}  # fmt: skip
    for layer, n in fan_in.items():
        bound = 1 / np.sqrt(n)
        for tower in "ab":
            for kind in "wb":
                p = sd[f"{tower}.{layer}.{kind}"]
                assert np.abs(p).max() <= bound, f"{tower}.{layer}.{kind}"
            w = sd[f"{tower}.{layer}.w"]
            assert np.abs(w).max() > 0.95 * bound  # fills the interval
            assert abs(w.std() - bound / np.sqrt(3)) < 0.05 * bound  # U(-a, a): std a/sqrt(3)
    assert np.abs(sd["fc8.w"]).max() <= 1 / np.sqrt(1024)
