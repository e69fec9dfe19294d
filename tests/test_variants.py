"""The paper's ablations as model variants [3.1-3.4], and cnn4, the four-layer CIFAR-10 net.

Counts are worked out by hand from the layer table in ``minialexnet/models.py``
(weights + biases per layer); each variant changes exactly what it names.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from minialexnet.gradcheck import numerical_gradient, relative_error
from minialexnet.layers import LRN, MaxPool2d, ReLU, Tanh
from minialexnet.models import Variant, alexnet, alexnet_cifar, cnn4, model_from_config
from minialexnet.train import parse_variant

CIFAR_PARAMS = 2_846_090


def layers_of(model: Any, kind: type) -> list[str]:
    return [name for name, layer, _ in model.named_layers() if isinstance(layer, kind)]


def images(n: int, seed: int = 0, dtype: Any = np.float64) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal((n, 3, 32, 32)) * 50).astype(dtype)


def test_one_tower_has_half_the_kernels_in_conv1_to_conv4_and_the_full_conv5_and_fc():
    model = alexnet_cifar(towers=1)
    shapes = {k: v.shape for k, v in model.state_dict().items()}
    assert not any(k.startswith("b.") for k in shapes)
    assert shapes["a.conv1.w"] == (32, 3, 5, 5)  # one tower's 32, not 2 x 32
    assert shapes["a.conv2.w"] == (64, 32, 5, 5)
    assert shapes["a.conv3.w"] == (96, 64, 3, 3)  # sees only its own conv2 maps
    assert shapes["a.conv4.w"] == (96, 96, 3, 3)
    assert shapes["a.conv5.w"] == (128, 96, 3, 3)  # 2 x 64: conv5 keeps its size
    assert shapes["a.fc6.w"] == (1024, 128 * 3 * 3)
    assert shapes["a.fc7.w"] == (1024, 1024)
    assert shapes["fc8.w"] == (10, 1024)
    by_hand = (
        (3 * 25 * 32 + 32) + (32 * 25 * 64 + 64) + (64 * 9 * 96 + 96) + (96 * 9 * 96 + 96)
        + (96 * 9 * 128 + 128) + (1152 * 1024 + 1024) + (1024 * 1024 + 1024) + (1024 * 10 + 10)
    )  # fmt: skip
    assert model.num_parameters() == by_hand == 2_543_370
    assert model.forward(images(2)).shape == (2, 10)


def test_non_overlapping_pooling_changes_the_sizes_and_only_fc6():
    model = alexnet_cifar(pool=(2, 2))
    pools = [layer for _, layer, _ in model.named_layers() if isinstance(layer, MaxPool2d)]
    assert pools and all(p.size == (2, 2) and p.stride == (2, 2) for p in pools)
    # 32 -> 16 -> 8 -> 4 instead of 32 -> 15 -> 7 -> 3: fc6 sees 2 x 64 x 4 x 4 inputs
    assert model.state_dict()["a.fc6.w"].shape == (512, 2 * 64 * 16)
    assert model.num_parameters() == CIFAR_PARAMS + 2 * 512 * 2 * 64 * (16 - 9)
    assert model.forward(images(2)).shape == (2, 10)
    # the paper's net at 227: pool 2/2 also ends at 6x6 (55 -> 27 -> 13 -> 6), so the
    # parameters are the paper's 60,965,224 and pool5 is 128 x 6 x 6 per tower
    big = alexnet(pool=(2, 2))
    assert big.num_parameters() == 60_965_224
    pool5 = [line.split()[1:6] for line in big.summary().splitlines() if "pool5" in line]
    assert pool5 == [["1", "x", "128", "x", "6"]] * 2


def test_tanh_replaces_every_relu_and_lrn_off_removes_every_normalization():
    default = alexnet_cifar()
    assert len(layers_of(default, ReLU)) == 14 and len(layers_of(default, LRN)) == 4
    model = alexnet_cifar(activation="tanh", lrn=False)
    assert layers_of(model, ReLU) == [] and layers_of(model, LRN) == []
    assert len(layers_of(model, Tanh)) == 14
    assert model.num_parameters() == CIFAR_PARAMS
    assert "a.tanh1" in layers_of(model, Tanh)
    # same seed, same weights: the variants differ in the function, not the draw
    assert all(np.array_equal(default.state_dict()[k], v) for k, v in model.state_dict().items())


def test_variants_are_recorded_in_the_config_and_rebuilt_from_it():
    assert alexnet_cifar().config.keys() == {"arch", "num_classes", "input_size", "init", "dtype"}
    model = alexnet_cifar(activation="tanh", lrn=False, pool=(2, 2), towers=1)
    config = model.config
    assert (config["activation"], config["lrn"], config["pool"], config["towers"]) == (
        "tanh", False, [2, 2], 1,
    )  # fmt: skip
    again = model_from_config(config)
    assert again.config == config
    assert {k: v.shape for k, v in again.state_dict().items()} == {
        k: v.shape for k, v in model.state_dict().items()
    }
    four = cnn4(activation="tanh", lrn=False, pool=(2, 2))
    assert model_from_config(four.config).config == four.config


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"activation": "sigmoid"}, "activation must be one of"),
        ({"lrn": "no"}, "lrn must be True or False"),
        ({"pool": (0, 2)}, "pool must be"),
        ({"pool": (3,)}, "pool must be"),
        ({"towers": 3}, "towers must be 1 or 2"),
    ],
)
def test_bad_variants_say_what_is_allowed(kwargs, message):
    with pytest.raises(ValueError, match=message):
        alexnet_cifar(**kwargs)


def test_cnn4_layout_counts_and_output():
    model = cnn4()
    names = [name for name, _, _ in model.named_layers()]
    assert names[:5] == ["a.conv1", "a.relu1", "a.pool1", "a.norm1", "a.conv2"]
    by_hand = (3 * 25 * 32 + 32) + (32 * 25 * 32 + 32) + (32 * 25 * 64 + 64) + (576 * 10 + 10)
    assert model.num_parameters() == by_hand == 85_098
    assert model.forward(images(3, dtype=np.float32)).shape == (3, 10)
    assert len(layers_of(cnn4(lrn=False), LRN)) == 0 and len(layers_of(model, LRN)) == 2
    assert cnn4(pool=(2, 2)).state_dict()["fc.w"].shape == (10, 64 * 4 * 4)
    with pytest.raises(ValueError, match="one device"):
        cnn4(devices=["cpu:0", "cpu:1"])


@pytest.mark.parametrize("variant", [{}, {"activation": "tanh", "lrn": False}])
def test_cnn4_gradients_match_finite_differences(variant):
    model = cnn4(seed=3, init="scaled", dtype="float64", **variant)
    x = images(2, seed=4) / 50
    logits = model.forward(x, train=False)
    dout = np.random.default_rng(5).standard_normal(logits.shape)
    dx = model.backward(dout)
    grads = {name: np.array(g) for name, _, g in model.parameters()}
    params = {name: p for name, p, _ in model.parameters()}

    def f(_: Any) -> Any:
        return model.forward(x, train=False)

    for name, index in [("a.conv1.w", (1, 2)), ("a.conv2.b", slice(None)),
                        ("a.conv3.w", (9, 4)), ("fc.w", (3, slice(0, 40)))]:  # fmt: skip
        numeric = numerical_gradient(f, params[name][index], dout)
        assert relative_error(grads[name][index], numeric) < 1e-6, name
    numeric_dx = numerical_gradient(f, x[1, 0, 5, 3:15], dout)
    assert relative_error(dx[1, 0, 5, 3:15], numeric_dx) < 1e-6


def test_parse_variant_reads_the_command_line_forms():
    assert parse_variant([]) == {}
    assert parse_variant(["activation=tanh", "lrn=off", "pool=2/2", "towers=1"]) == {
        "activation": "tanh", "lrn": False, "pool": (2, 2), "towers": 1,
    }  # fmt: skip
    assert parse_variant(["lrn=on", "pool=3,2"]) == {"lrn": True, "pool": (3, 2)}
    assert Variant(**parse_variant(["pool=3/2"])).changes() == {}


@pytest.mark.parametrize(
    "item, message",
    [
        ("activation", "expected KEY=VALUE"),
        ("depth=9", "unknown key 'depth'"),
        ("lrn=maybe", "lrn=on or lrn=off"),
        ("pool=3", "pool=WINDOW/STRIDE"),
        ("towers=two", "towers=1 or towers=2"),
        ("activation=sigmoid", "activation must be one of"),
    ],
)
def test_parse_variant_refuses_bad_items_with_the_fix(item, message):
    with pytest.raises(ValueError, match=message):
        parse_variant([item])
