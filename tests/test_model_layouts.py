"""Other people's AlexNets in this library's code (issue 17): Caffe's layout (LRN across the
towers, pooling that rounds up, 224x224 input, Caffe's LRN constants) and torchvision's
one-tower net, as variants of the same builders, each checked against a second way of
computing it."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from helpers import needs_gpu

from minialexnet import functional as F
from minialexnet.backend import to_numpy
from minialexnet.layers import LRN, MaxPool2d
from minialexnet.merged import flat_layers, merge_towers
from minialexnet.models import Variant, alexnet, alexnet_cifar, alexnet_owt, model_from_config
from minialexnet.towers import JoinedLRN

CAFFE = dict(lrn_across=True, pool_ceil=True, lrn_constants=(5, 1.0, 2e-5, 0.75))


def _grads(model: Any, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    model.zero_grad()
    logits = model.forward(x, train=False)
    _, dlogits = F.softmax_cross_entropy(logits, np.arange(len(x)) % 10)
    dx = model.backward(dlogits)
    return (
        to_numpy(logits),
        to_numpy(dx),
        {n: to_numpy(g).copy() for n, _, g in model.parameters()},
    )


def _cifar(**kw: Any) -> Any:
    return alexnet_cifar(seed=2, init="scaled", dtype="float64", **kw)


def test_lrn_across_towers_is_one_lrn_over_all_maps():
    """Tower t's maps after a JoinedLRN are LRN(cat(a, b))[:, piece t], forward and backward:
    the towers on two (simulated) devices, the same towers on one, and the merged net with
    a plain LRN over all channels give the same outputs and gradients."""
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)) * 50
    two = _cifar(devices=["cpu:0", "cpu:1"], **CAFFE)
    one = _cifar(**CAFFE)
    merged = _cifar(merged=True, **CAFFE)
    assert sum(isinstance(s, JoinedLRN) for _, s in two.stages) == 2
    norms = [layer for name, layer in flat_layers(merged) if isinstance(layer, LRN)]
    assert [n.groups for n in norms] == [1, 1] and norms[0].k == 1.0
    want = _grads(one, x)
    for other in (two, merged):
        got = _grads(other, x)
        np.testing.assert_allclose(got[0], want[0], rtol=1e-10)
        np.testing.assert_allclose(got[1], want[1], rtol=1e-9, atol=1e-12 * np.abs(want[1]).max())
        for name, g in want[2].items():
            np.testing.assert_allclose(got[2][name], g, rtol=1e-8, atol=1e-12, err_msg=name)


def test_lrn_across_differs_from_the_papers_lrn_within_towers():
    """At the towers' border the windows see the other tower: another function (the
    reason the variant exists)."""
    x = np.random.default_rng(1).standard_normal((2, 3, 32, 32)) * 50
    across = _cifar(**CAFFE)
    within = _cifar(lrn_constants=CAFFE["lrn_constants"], pool_ceil=True)
    within.load_state_dict(across.state_dict())
    assert not np.allclose(across.forward(x, train=False), within.forward(x, train=False))


def test_joined_lrn_stage_gradient_by_finite_differences():
    norm = LRN(5, 1.0, 1e-2, 0.75)
    stage = JoinedLRN(["cpu:0", "cpu:1"], norm, "norm1")
    rng = np.random.default_rng(3)
    xs = [rng.standard_normal((2, 4, 3, 3)) * 3, rng.standard_normal((2, 3, 3, 3)) * 3]
    douts = [rng.standard_normal((2, 4, 3, 3)), rng.standard_normal((2, 3, 3, 3))]

    def loss(a: np.ndarray, b: np.ndarray) -> float:
        ys = stage.forward([a, b])
        return float(sum((to_numpy(y) * d).sum() for y, d in zip(ys, douts, strict=True)))

    stage.forward(xs)
    grads = [to_numpy(g) for g in stage.backward(douts)]
    eps = 1e-6
    for t in range(2):
        numeric = np.zeros_like(xs[t])
        for i in np.ndindex(xs[t].shape):
            plus = [x.copy() for x in xs]
            minus = [x.copy() for x in xs]
            plus[t][i] += eps
            minus[t][i] -= eps
            numeric[i] = (loss(*plus) - loss(*minus)) / (2 * eps)
        np.testing.assert_allclose(grads[t], numeric, rtol=1e-6, atol=1e-8)


def test_caffe_layout_at_224_keeps_6x6_at_pool5_and_the_papers_parameter_count():
    model = alexnet(input_size=224, init="scaled", **CAFFE)
    rows = {name: shape for name, shape, _, _ in model.layer_rows()}
    assert rows["a.conv1"][2:] == (54, 54) and rows["a.pool1"][2:] == (27, 27)
    assert rows["a.pool5"][2:] == (6, 6)
    assert model.num_parameters() == 60_965_224
    assert all(layer.ceil_mode for _, layer in flat_layers(model) if isinstance(layer, MaxPool2d))
    floor = alexnet(input_size=224, init="scaled")  # rounding down: 26, 12, 5
    assert {n: s for n, s, _, _ in floor.layer_rows()}["a.pool5"][2:] == (5, 5)


def test_torchvision_layout_is_the_one_tower_variant():
    model = alexnet_owt(init="scaled")
    assert model.num_parameters() == 61_100_840
    convs = [layer for _, layer in flat_layers(model) if hasattr(layer, "out_channels")]
    assert [c.out_channels for c in convs] == [64, 192, 384, 256, 256]
    assert convs[0].pad == (2, 2) and not any(
        isinstance(layer, LRN) for _, layer in flat_layers(model)
    )
    assert model.config["arch"] == "alexnet-owt" and model.input_size == 224


@pytest.mark.parametrize(
    "build",
    [
        lambda: alexnet_cifar(seed=1, **CAFFE),
        lambda: alexnet_cifar(seed=1, pool=(2, 2), activation="tanh", pool_ceil=True),
        lambda: alexnet_owt(seed=1, input_size=227, lrn=True),
    ],
    ids=["caffe-cifar", "tanh-ceil", "owt-227-lrn"],
)
def test_config_rebuilds_the_same_function(build):
    model = build()
    again = model_from_config(model.config, seed=5)
    again.load_state_dict(model.state_dict())
    size = model.input_size
    x = np.random.default_rng(2).standard_normal((2, 3, size, size)).astype(np.float32) * 50
    np.testing.assert_array_equal(again.forward(x, train=False), model.forward(x, train=False))
    assert again.config == model.config


def test_the_papers_network_records_none_of_the_new_keys():
    config = alexnet_cifar().config
    assert not {"lrn_constants", "lrn_across", "pool_ceil"} & set(config)
    assert config["input_size"] == 32


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(lrn_across=True, towers=1), "need two towers"),
        (dict(lrn_constants=(5, 1.0)), "lrn_constants must be"),
        (dict(lrn_constants=(0, 1.0, 1e-4, 0.75)), "lrn_constants must be"),
        (dict(pool_ceil=1), "pool_ceil must be True or False"),
    ],
)
def test_bad_variants_say_what_was_wrong(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Variant(**kwargs)


def test_an_input_too_small_for_the_network_is_refused():
    with pytest.raises(ValueError, match="input_size 40 is too small"):
        alexnet(input_size=40)


def test_merge_towers_keeps_lrn_across_as_one_lrn():
    model = _cifar(**CAFFE)
    merged = merge_towers(model)
    x = np.random.default_rng(4).standard_normal((2, 3, 32, 32)) * 50
    np.testing.assert_allclose(
        merged.forward(x, train=False), model.forward(x, train=False), rtol=1e-10
    )


@needs_gpu
def test_caffe_layout_on_the_gpu_matches_the_cpu():
    """JoinedLRN and ceil-mode pooling on a GPU: merged on one device, and as towers on two
    devices (``gpu:0`` twice: the two-device code path), against the CPU, in float64."""
    from minialexnet.backend import Device

    gpu = Device("gpu:0")
    x = np.random.default_rng(5).standard_normal((2, 3, 32, 32)) * 50
    want = _grads(_cifar(**CAFFE), x)
    for devices in ([gpu], [gpu, gpu]):
        got = _grads(_cifar(devices=devices, **CAFFE), x)
        np.testing.assert_allclose(got[0], want[0], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(got[1], want[1], rtol=1e-8, atol=1e-12 * np.abs(want[1]).max())
        for name, g in want[2].items():
            np.testing.assert_allclose(got[2][name], g, rtol=1e-8, atol=1e-12, err_msg=name)
