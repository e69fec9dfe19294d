"""Two towers on one device run as one network (minialexnet.merged) compute the tower model.

The merged network is what ``alexnet(devices=["gpu:0"])`` builds on one GPU; here it is
built on the CPU with ``merged=True`` and compared with the tower model of the same
seed: the same parameters (names, order, values), outputs, gradients and SGD steps,
in float64, up to the rounding of products grouped differently.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from helpers import needs_gpu

from minialexnet import functional as F
from minialexnet.backend import Device, to_numpy
from minialexnet.checkpoint import load_checkpoint, save_checkpoint
from minialexnet.layers import LRN, Conv2d
from minialexnet.merged import MergedTowers, merge_towers
from minialexnet.models import alexnet, alexnet_cifar
from minialexnet.optim import SGD


def _pair(**kwargs: Any) -> tuple[Any, Any]:
    args = dict(seed=3, init="scaled", dtype="float64", **kwargs)
    return alexnet_cifar(merged=False, **args), alexnet_cifar(merged=True, **args)


def _images(n: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 3, 32, 32)) * 50


def _backward(model: Any, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    logits = model.forward(x, train=False)
    _, dlogits = F.softmax_cross_entropy(logits, np.arange(len(x)) % 10)
    dx = model.backward(dlogits)
    grads = {name: to_numpy(g).copy() for name, _, g in model.parameters()}
    return to_numpy(logits), to_numpy(dx), grads


def test_merged_network_has_the_tower_models_parameters_as_views():
    towers, merged = _pair()
    assert [n for n, _, _ in merged.parameters()] == [n for n, _, _ in towers.parameters()]
    want = towers.state_dict()
    for name, value in merged.state_dict().items():
        np.testing.assert_array_equal(value, want[name], err_msg=name)
    conv1 = next(layer for name, layer, _ in merged.named_layers() if name == "conv1")
    params = dict((n, p) for n, p, _ in merged.parameters())
    assert np.shares_memory(params["a.conv1.w"], conv1.params["w"])
    assert np.shares_memory(params["b.conv1.w"], conv1.params["w"])
    assert conv1.out_channels == 64 and conv1.groups == 1  # sees the whole image: dense
    layers = {name: layer for name, layer, _ in merged.named_layers()}
    assert [layers[c].groups for c in ("conv2", "conv3", "conv4", "conv5")] == [2, 1, 2, 2]
    assert layers["norm1"].groups == 2 and layers["norm2"].groups == 2
    assert merged.num_parameters() == towers.num_parameters() == 2_846_090
    assert merged.forward_flops() == towers.forward_flops()
    assert not any(isinstance(s, MergedTowers) for _, s in towers.stages)


def test_merged_network_computes_the_tower_model_forward_and_backward():
    towers, merged = _pair()
    x = _images()
    logits_t, dx_t, grads_t = _backward(towers, x)
    logits_m, dx_m, grads_m = _backward(merged, x)
    np.testing.assert_allclose(logits_m, logits_t, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dx_m, dx_t, rtol=1e-9, atol=1e-14 * np.abs(dx_t).max())
    for name, g in grads_t.items():
        np.testing.assert_allclose(grads_m[name], g, rtol=1e-9, atol=1e-13, err_msg=name)
    for stage in ("conv1-2", "conv3-5", "fc6", "fc7"):  # features joined as the towers' are
        np.testing.assert_allclose(
            to_numpy(merged.features(x, stage)), to_numpy(towers.features(x, stage)), rtol=1e-10
        )


def test_sgd_steps_and_state_dicts_agree_between_the_two_layouts():
    towers, merged = _pair()
    x = _images(seed=1)
    optims = [
        SGD(m.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4) for m in (towers, merged)
    ]
    for _ in range(2):
        for model, opt in zip((towers, merged), optims, strict=True):
            _backward(model, x)
            opt.step()
    want = towers.state_dict()
    for name, value in merged.state_dict().items():
        np.testing.assert_allclose(value, want[name], rtol=1e-9, atol=1e-12, err_msg=name)
    # the views stay views: loading a state writes into the merged arrays
    fresh = alexnet_cifar(seed=99, dtype="float64", merged=True)
    fresh.load_state_dict(want)
    np.testing.assert_allclose(
        _backward(fresh, x)[0], _backward(towers, x)[0], rtol=1e-10, atol=1e-12
    )


def test_a_checkpoint_of_a_merged_model_loads_into_the_tower_model(tmp_path):
    _, merged = _pair()
    opt = SGD(merged.parameters(), lr=0.01)
    _backward(merged, _images())
    opt.step()
    path = tmp_path / "m.npz"
    save_checkpoint(path, merged.state_dict(), {"config": merged.config})
    arrays, meta = load_checkpoint(path)
    towers = alexnet_cifar(seed=7, init="scaled", dtype="float64", merged=False)
    towers.load_state_dict(arrays)
    assert meta["config"] == towers.config
    for name, value in towers.state_dict().items():
        np.testing.assert_array_equal(value, merged.state_dict()[name], err_msg=name)


def test_the_first_layer_can_skip_the_images_gradient():
    _, merged = _pair()
    merged.input_grad = False
    assert _backward(merged, _images())[1].shape == ()  # to_numpy(None)
    assert not merged.input_grad


def test_dropout_draws_on_the_merged_layers_and_reseeding_repeats_them():
    _, merged = _pair()
    x = _images()
    merged.reseed(4)
    first = to_numpy(merged.forward(x, train=True))
    merged.reseed(4)
    np.testing.assert_array_equal(to_numpy(merged.forward(x, train=True)), first)
    assert not np.allclose(first, to_numpy(merged.forward(x, train=False)))


def test_merging_needs_two_towers_on_one_device():
    with pytest.raises(ValueError, match="one tower"):
        alexnet_cifar(towers=1, merged=True)
    two = alexnet_cifar(devices=["cpu:0", "cpu:1"], merged=False)
    with pytest.raises(ValueError, match="share one device"):
        merge_towers(two)


def test_summary_lists_the_merged_layers_and_says_so():
    _, merged = _pair()
    text = merged.summary()
    assert "conv1    1 x 64 x 32 x 32" in text and "run as one network" in text
    assert "total parameters: 2,846,090" in text


def test_on_the_cpu_and_on_two_devices_the_towers_stay_towers():
    cpu = alexnet_cifar()
    assert not any(isinstance(s, MergedTowers) for _, s in cpu.stages)
    assert not any(isinstance(s, MergedTowers) for _, s in alexnet_cifar(
        devices=["cpu:0", "cpu:1"]).stages)  # fmt: skip


# -------------------------------------------------------------------------- grouped LRN
def test_lrn_with_groups_normalises_each_half_on_its_own():
    x = np.random.default_rng(2).standard_normal((2, 12, 3, 4)) * 30
    dout = np.random.default_rng(3).standard_normal(x.shape)
    grouped = LRN(n=5, k=2.0, alpha=1e-3, beta=0.75, groups=2)
    halves = [LRN(n=5, k=2.0, alpha=1e-3, beta=0.75) for _ in range(2)]
    out = grouped.forward(x)
    want = np.concatenate([h.forward(x[:, 6 * i : 6 * i + 6]) for i, h in enumerate(halves)], 1)
    np.testing.assert_array_equal(out, want)
    dx = grouped.backward(dout)
    want_dx = np.concatenate(
        [h.backward(dout[:, 6 * i : 6 * i + 6]) for i, h in enumerate(halves)], 1
    )
    np.testing.assert_array_equal(dx, want_dx)
    # a window that crossed the halves would see channel 6 from channel 5
    assert not np.allclose(out, LRN(n=5, k=2.0, alpha=1e-3, beta=0.75).forward(x))


def test_lrn_groups_must_divide_the_channels():
    with pytest.raises(ValueError, match="divisible"):
        LRN(groups=2).forward(np.ones((1, 5, 2, 2)))
    with pytest.raises(ValueError, match="groups"):
        LRN(groups=0)
    layer = LRN(groups=2)
    layer.forward(np.ones((1, 4, 2, 2)))
    with pytest.raises(ValueError, match="dout"):
        layer.backward(np.ones((1, 4, 2, 3)))


# ------------------------------------------------------------------------------ on a GPU
@needs_gpu
def test_one_gpu_builds_the_merged_network_and_it_matches_the_cpu():
    gpu = Device("gpu:0")
    model = alexnet_cifar(devices=[gpu], seed=3, init="scaled", dtype="float64")
    assert any(isinstance(s, MergedTowers) for _, s in model.stages)
    towers = alexnet_cifar(devices=[gpu, gpu], seed=3, init="scaled", dtype="float64")
    assert not any(isinstance(s, MergedTowers) for _, s in towers.stages)
    cpu = alexnet_cifar(seed=3, init="scaled", dtype="float64")
    x = _images()
    logits_c, dx_c, grads_c = _backward(cpu, x)
    for m in (model, towers):
        logits, dx, grads = _backward(m, x)
        np.testing.assert_allclose(logits, logits_c, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(dx, dx_c, rtol=1e-8, atol=1e-13 * np.abs(dx_c).max())
        for name, g in grads_c.items():
            np.testing.assert_allclose(grads[name], g, rtol=1e-8, atol=1e-12, err_msg=name)


@needs_gpu
def test_paper_model_on_one_gpu_is_merged_and_trains_a_step():
    gpu = Device("gpu:0")
    model = alexnet(devices=[gpu], seed=0, init="scaled")
    assert isinstance(dict(model.stages)["conv1-2"], MergedTowers)
    conv1 = dict((n, layer) for n, layer, _ in model.named_layers())["conv1"]
    assert isinstance(conv1, Conv2d) and conv1.out_channels == 96
    opt = SGD(model.parameters(), lr=0.001)
    x = np.random.default_rng(0).standard_normal((4, 3, 227, 227)).astype(np.float32) * 60
    before = model.state_dict()["b.conv1.w"]
    _backward(model, x)
    opt.step()
    assert not np.array_equal(model.state_dict()["b.conv1.w"], before)
