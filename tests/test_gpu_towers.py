"""The two-tower model's two-device code path on real GPUs.

On a one-GPU machine both towers are given the same GPU through the two-device
path (``devices=[gpu:0, gpu:0]``: Exchange and Gather copy between "devices" that
are one), which must compute what the one-device model computes. With two GPUs,
every array of tower b (parameters, gradients, momentum, activations) lives on
GPU 1 and everything else on GPU 0. The CPU versions of these tests, with two
simulated CPU devices, are in test_models.py and test_optim.py.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from helpers import needs_gpu, record_outputs

from minialexnet import functional as F
from minialexnet.backend import Device, to_numpy
from minialexnet.models import alexnet_cifar
from minialexnet.optim import SGD


def _gpu_count() -> int:
    import cupy

    return int(cupy.cuda.runtime.getDeviceCount())


def _train_step(devices: list[Device]) -> tuple[Any, dict[str, np.ndarray], Any, dict]:
    model = alexnet_cifar(devices=devices, seed=3, init="scaled", dtype="float64")
    opt = SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x = np.random.default_rng(4).standard_normal((4, 3, 32, 32))
    outputs = record_outputs(model)
    logits = model.forward(x, train=False)
    _, dlogits = F.softmax_cross_entropy(logits, np.arange(4) % 10)
    model.backward(dlogits)
    opt.step()
    params = {name: to_numpy(p) for name, p, _ in model.parameters()}
    return model, params, opt, outputs


@needs_gpu
def test_two_device_path_with_one_gpu_twice_computes_the_one_device_model():
    gpu = Device("gpu:0")
    _, twice, _, _ = _train_step([gpu, gpu])
    _, once, _, _ = _train_step([gpu])  # on one GPU: the towers run as one network (merged.py)
    _, cpu, _, _ = _train_step([Device("cpu")])
    for name in once:  # the same products, grouped differently: equal up to rounding
        np.testing.assert_allclose(twice[name], once[name], rtol=1e-12, atol=1e-15, err_msg=name)
        np.testing.assert_allclose(once[name], cpu[name], rtol=1e-9, atol=1e-12, err_msg=name)


@needs_gpu
def test_each_tower_lives_on_its_own_gpu():
    if _gpu_count() < 2:
        pytest.skip("needs two GPUs (this machine has one); the same-GPU path is tested above")
    d0, d1 = Device("gpu:0"), Device("gpu:1")
    model, _, opt, outputs = _train_step([d0, d1])
    for name, param, grad in model.parameters():
        home = d1 if name.startswith("b.") else d0
        assert home.holds(param) and home.holds(grad) and home.holds(opt.velocity[name]), name
    for name, out in outputs.items():
        assert (d1 if name.startswith("b.") else d0).holds(out), name
    _, one_gpu, _, _ = _train_step([d0])
    for name, p, _ in model.parameters():
        np.testing.assert_allclose(to_numpy(p), one_gpu[name], rtol=1e-12, err_msg=name)
