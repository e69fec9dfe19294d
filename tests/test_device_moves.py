"""Moves between devices: what CuPy refuses, the simulated devices refuse too.

CuPy copies an array from one GPU to another only when it is contiguous
(``cupy.asarray`` of another GPU's array calls ``ndarray.copy``, which raises
``NotImplementedError: CuPy cannot copy non-contiguous array between devices``).
The towers' backward passes split gradients into pieces along axis 1 -- strided
views -- and send them to the other tower's device: on two real GPUs the first
backward pass crashed (Gather.backward, then every Exchange.backward). So
``Device.asarray`` makes an array contiguous on its own device before it moves, and
the simulated ``cpu:N`` devices refuse a non-contiguous array as CuPy does, so that
the CPU tests catch such a move.
"""

from __future__ import annotations

import numpy as np
import pytest

from minialexnet import backend
from minialexnet import functional as F
from minialexnet.backend import Device, to_numpy
from minialexnet.models import alexnet_cifar
from minialexnet.towers import Exchange, Gather

CUPYS_REFUSAL = "cannot copy non-contiguous array between devices"


def test_the_simulated_copy_between_devices_refuses_what_cupy_refuses():
    a = Device("cpu:0").asarray(np.arange(24.0).reshape(2, 3, 4))
    with pytest.raises(NotImplementedError, match=CUPYS_REFUSAL):
        backend._copy_to_simulated(a[:, 1:], "cpu:1")  # a slice along axis 1: strided
    with pytest.raises(NotImplementedError, match=CUPYS_REFUSAL):
        backend._copy_to_simulated(a[:, :, ::2], "cpu:1")
    # contiguous ones move (C or F order, as CuPy's), and host arrays of any layout
    for ok in (a, a[1:], a[0].T, np.arange(24.0).reshape(4, 6)[:, 1:]):
        moved = backend._copy_to_simulated(ok, "cpu:1")
        assert Device("cpu:1").holds(moved) and moved.flags.c_contiguous
        np.testing.assert_array_equal(moved, np.asarray(ok))


def test_asarray_makes_a_view_contiguous_on_its_own_device_then_copies(monkeypatch):
    src, dst = Device("cpu:0"), Device("cpu:1")
    a = src.asarray(np.arange(24.0).reshape(2, 3, 4))
    copies = []
    real = backend._copy_to_simulated

    def spy(x, name, dtype=None):
        copies.append((x.device_name, x.flags.c_contiguous))
        return real(x, name, dtype)

    monkeypatch.setattr(backend, "_copy_to_simulated", spy)
    moved = dst.asarray(a[:, 1:], dtype=np.float32)
    assert copies == [("cpu:0", True)], "made contiguous on cpu:0, then copied"
    assert dst.holds(moved) and moved.dtype == np.float32
    np.testing.assert_array_equal(moved, np.arange(24.0).reshape(2, 3, 4)[:, 1:])
    assert src.holds(a) and a[0, 1, 0] == 4.0, "the source is left as it was"
    view = a[:, 1:]
    assert src.asarray(view) is view, "no copy when it stays"


def test_exchange_and_gather_send_their_pieces_home_across_devices():
    devices = [Device("cpu:0"), Device("cpu:1")]
    rng = np.random.default_rng(0)
    xs = [d.asarray(rng.standard_normal((2, c, 3))) for d, c in zip(devices, (2, 3), strict=True)]
    exchange, gather = Exchange(devices), Gather(devices)
    joined = exchange.forward(xs)
    gs = [d.asarray(rng.standard_normal((2, 5, 3))) for d in devices]
    dxs = exchange.backward(gs)
    for s, (dev, lo, hi) in enumerate([(devices[0], 0, 2), (devices[1], 2, 5)]):
        assert dev.holds(dxs[s]) and dev.holds(joined[s])
        want = to_numpy(gs[0])[:, lo:hi] + to_numpy(gs[1])[:, lo:hi]
        np.testing.assert_array_equal(dxs[s], want)
    gather.forward(xs)
    dout = devices[0].asarray(rng.standard_normal((2, 5, 3)))
    pieces = gather.backward(dout)
    assert devices[1].holds(pieces[1])
    np.testing.assert_array_equal(pieces[1], to_numpy(dout)[:, 2:])


def _forward_backward(devices: list[Device]) -> dict[str, np.ndarray]:
    model = alexnet_cifar(devices=devices, seed=3, init="scaled", dtype="float64")
    x = np.random.default_rng(4).standard_normal((3, 3, 32, 32))
    _, dlogits = F.softmax_cross_entropy(model.forward(x, train=False), np.arange(3))
    model.backward(dlogits)
    return {name: np.array(to_numpy(g)) for name, _, g in model.parameters()}


def test_the_two_tower_model_trains_across_two_simulated_devices():
    two = _forward_backward([Device("cpu:0"), Device("cpu:1")])
    one = _forward_backward([Device("cpu")])
    for name, grad in one.items():
        np.testing.assert_allclose(two[name], grad, rtol=1e-12, atol=1e-15, err_msg=name)


def test_the_simulated_devices_catch_a_strided_view_sent_across(monkeypatch):
    """Without the contiguous copy on the source device, the backward pass fails on the
    simulated devices as it did on two GPUs."""
    monkeypatch.setattr(backend, "_contiguous_to_move", lambda x, target: x)
    with pytest.raises(NotImplementedError, match=CUPYS_REFUSAL):
        _forward_backward([Device("cpu:0"), Device("cpu:1")])
