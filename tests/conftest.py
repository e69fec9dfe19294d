"""Shared fixtures: every test that can run on CuPy is parametrized over devices."""

from __future__ import annotations

import pytest
from helpers import GPU_REASON

from minialexnet.backend import Device, gpu_available

DEVICE_PARAMS = [
    pytest.param("cpu", id="cpu"),
    pytest.param(
        "gpu:0",
        id="gpu",
        marks=[pytest.mark.gpu, pytest.mark.skipif(not gpu_available(), reason=GPU_REASON)],
    ),
]


@pytest.fixture(params=DEVICE_PARAMS)
def device(request: pytest.FixtureRequest) -> Device:
    """Each available device in turn: the CPU always, GPU 0 where there is one."""
    return Device(request.param)


@pytest.fixture
def xp(device: Device):
    """The array module (numpy or cupy) of the ``device`` fixture."""
    return device.xp
