"""Shared fixtures: every test that can run on CuPy is parametrized over devices."""

from __future__ import annotations

import pytest

from minialexnet.backend import Device, gpu_available

_GPU_REASON = "needs CuPy and a CUDA GPU (none here); install with pip install 'minialexnet[gpu]'"

DEVICE_PARAMS = [
    pytest.param("cpu", id="cpu"),
    pytest.param(
        "gpu:0",
        id="gpu",
        marks=[pytest.mark.gpu, pytest.mark.skipif(not gpu_available(), reason=_GPU_REASON)],
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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test skipped for want of a GPU ("needs CuPy and a CUDA GPU ...") is a GPU test:
    mark it ``gpu`` too, so that ``pytest -m gpu`` (the GPU check) selects it."""
    for item in items:
        for mark in item.iter_markers("skipif"):
            if str(mark.kwargs.get("reason", "")).startswith("needs CuPy and a CUDA GPU"):
                item.add_marker(pytest.mark.gpu)
                break
