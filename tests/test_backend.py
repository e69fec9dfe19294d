"""backend.Device: names, the CPU fallback, clear errors without a GPU, seeded generators."""

from __future__ import annotations

import numpy as np
import pytest

import minialexnet.backend as backend
from minialexnet.backend import Device, get_array_module, gpu_available, to_numpy, tower_devices


def test_cpu_device_uses_numpy():
    dev = Device("cpu")
    assert dev.xp is np and dev.kind == "cpu" and dev.index is None and not dev.is_gpu
    assert dev.name == "cpu" and repr(dev) == "Device('cpu')"
    with dev as same:  # a no-op context manager on the CPU
        assert same is dev
    dev.synchronize()


def test_device_equality_and_copy():
    assert Device("cpu") == Device(" CPU ") and hash(Device("cpu")) == hash(Device("cpu"))
    assert Device(Device("cpu")) == Device("cpu")
    assert Device("cpu") != "cpu"


@pytest.mark.parametrize("spec", ["tpu", "gpu:x", "gpu:-1", "cpu:0:1", ""])
def test_unknown_device_names_are_rejected_with_the_valid_ones(spec):
    with pytest.raises(ValueError, match="expected 'cpu', 'gpu', 'gpu:N' or 'auto'"):
        Device(spec)


def test_non_string_device_is_a_type_error():
    with pytest.raises(TypeError, match="Device"):
        Device(0)  # type: ignore[arg-type]


@pytest.mark.skipif(gpu_available(), reason="checks the message shown where there is no GPU")
def test_asking_for_a_gpu_without_one_says_what_is_missing_and_how_to_install():
    with pytest.raises(RuntimeError) as info:
        Device("gpu:0")
    message = str(info.value)
    assert "gpu:0" in message
    assert "pip install 'minialexnet[gpu]'" in message


@pytest.mark.skipif(gpu_available(), reason="checks the CPU fallback where there is no GPU")
def test_auto_falls_back_to_cpu_with_a_one_line_notice(capsys):
    dev = Device("auto")
    assert dev == Device("cpu")
    err = capsys.readouterr().err
    assert "running on the CPU" in err and err.count("\n") == 1


def test_missing_cupy_is_reported(monkeypatch):
    monkeypatch.setattr(backend, "_cupy", None)
    monkeypatch.setattr(backend, "_cupy_import_error", "ModuleNotFoundError: no module 'cupy'")
    with pytest.raises(RuntimeError, match="CuPy is not importable.*minialexnet\\[gpu\\]"):
        Device("gpu:1")
    assert not gpu_available()


def test_asarray_holds_and_to_numpy(device):
    x = device.asarray([1.0, 2.0, 3.0], dtype=np.float32)
    assert device.holds(x) and x.dtype == np.float32
    assert get_array_module(x) is device.xp
    np.testing.assert_array_equal(to_numpy(x), [1, 2, 3])
    assert get_array_module(np.zeros(2), 3.0) is np


def test_rng_is_seeded_and_repeatable(device):
    a = to_numpy(device.rng(7).standard_normal((4, 5), dtype=np.float32))
    b = to_numpy(device.rng(7).standard_normal((4, 5), dtype=np.float32))
    c = to_numpy(device.rng(8).standard_normal((4, 5), dtype=np.float32))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.dtype == np.float32


def test_cpu_rng_is_numpy_pcg64_bit_for_bit():
    expected = np.random.default_rng(3).random(6)
    np.testing.assert_array_equal(Device("cpu").rng(3).random(6), expected)


# ---------------------------------------------------------------- simulated CPU devices
def test_simulated_cpu_devices_are_distinct_and_transfers_copy():
    a, b = Device("cpu:0"), Device("cpu:1")
    assert a != b and a.name == "cpu:0" and a.xp is np and not a.is_gpu
    x = a.asarray(np.arange(6.0).reshape(2, 3))
    assert a.holds(x) and not b.holds(x) and not Device("cpu").holds(x)
    y = b.asarray(x)
    assert b.holds(y) and a.holds(x)
    y[0, 0] = 100.0  # a transfer is a copy
    assert x[0, 0] == 0.0
    assert a.asarray(x) is not None and a.holds(a.asarray(x))
    assert a.holds(x * 2 + 1) and a.holds(x.sum(axis=0)) and a.holds(x[:, 1:].copy())


def test_mixing_arrays_of_two_simulated_devices_raises():
    a, b = Device("cpu:0"), Device("cpu:1")
    x, y = a.asarray(np.ones((2, 2))), b.asarray(np.ones((2, 2)))
    with pytest.raises(ValueError, match="different devices"):
        x + y
    with pytest.raises(ValueError, match="different devices"):
        np.concatenate([x, y])
    with pytest.raises(ValueError, match="different devices"):
        x @ y
    np.testing.assert_array_equal(x + np.ones((2, 2)), 2.0)  # host arrays mix freely


def test_every_functional_op_keeps_its_inputs_on_their_simulated_device():
    """The model-parallel tests rely on this: outputs and gradients stay where inputs are."""
    from minialexnet import functional as F

    dev, other = Device("cpu:1"), Device("cpu:0")
    rng = np.random.default_rng(0)
    x = dev.asarray(rng.standard_normal((2, 4, 9, 9)).astype(np.float32))
    w = dev.asarray(rng.standard_normal((6, 2, 3, 3)).astype(np.float32))
    b = dev.asarray(np.zeros(6, np.float32))
    checks = []
    out, cache = F.conv2d_forward(x, w, b, 2, 1, 2)
    checks += [out, *F.conv2d_backward(out, cache)]
    for fwd, bwd in [
        (F.lrn_forward, F.lrn_backward),
        (F.maxpool2d_forward, F.maxpool2d_backward),
        (F.relu_forward, F.relu_backward),
        (F.tanh_forward, F.tanh_backward),
    ]:
        out, cache = fwd(x)
        checks += [out, bwd(out, cache)]
    out, cache = F.dropout_forward(x, 0.5, dev.rng(0))
    checks += [out, F.dropout_backward(out, cache)]
    wl = dev.asarray(rng.standard_normal((3, 4)).astype(np.float32))
    out, cache = F.linear_forward(x[:, :, 0, 0], wl, None)
    checks += [out, *F.linear_backward(out, cache)[:2]]
    checks += [
        F.softmax(out),
        F.softmax_cross_entropy(out, np.array([0, 2]))[1],
        F.multiclass_hinge(out, np.array([1, 0]))[1],
    ]
    for i, arr in enumerate(checks):
        assert dev.holds(arr), f"result {i} left {dev.name}: {getattr(arr, 'device_name', None)}"
    with pytest.raises(ValueError, match="different devices"):
        F.conv2d_forward(x, other.asarray(w), None, groups=2)


def test_tower_devices_reads_gpus_and_device():
    assert tower_devices(None, "cpu") == [Device("cpu")]
    assert tower_devices("", "cpu:1") == [Device("cpu:1")]
    for bad in ("zero", "0,1,2", ","):
        with pytest.raises(ValueError, match="--gpus"):
            tower_devices(bad)


@pytest.mark.skipif(gpu_available(), reason="checks the message shown where there is no GPU")
def test_tower_devices_without_a_gpu_says_what_to_install():
    with pytest.raises(RuntimeError, match="CuPy|CUDA"):
        tower_devices("0,1")
