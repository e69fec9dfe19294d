"""The towers run side by side on CPU cores: same numbers as one after the other."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from minialexnet import concurrency
from minialexnet.backend import Device
from minialexnet.models import alexnet_cifar


def test_results_come_back_in_device_order_from_worker_threads(monkeypatch):
    monkeypatch.setattr(concurrency, "cpu_cores", lambda: 2)
    devices = [Device("cpu:0"), Device("cpu:1")]
    names = concurrency.run_per_device(
        devices, [lambda: threading.current_thread().name, lambda: "second"]
    )
    assert names[0].startswith("tower") and names[1] == "second"


def test_sequential_when_switched_off(monkeypatch):
    monkeypatch.setattr(concurrency, "cpu_cores", lambda: 2)
    monkeypatch.setenv("MINIALEXNET_TOWER_THREADS", "0")
    main = threading.current_thread().name
    names = concurrency.run_per_device(
        [Device("cpu")] * 2, [lambda: threading.current_thread().name] * 2
    )
    assert names == [main, main]


def test_an_exception_in_one_job_is_raised_after_both_finished(monkeypatch):
    monkeypatch.setattr(concurrency, "cpu_cores", lambda: 2)
    finished = threading.Event()

    def slow() -> None:
        finished.wait(0.05)
        finished.set()

    def broken() -> None:
        raise RuntimeError("tower b failed")

    with pytest.raises(RuntimeError, match="tower b failed"):
        concurrency.run_per_device([Device("cpu")] * 2, [slow, broken])
    assert finished.is_set()


def test_job_count_must_match_devices():
    with pytest.raises(ValueError, match="2 jobs for 1 devices"):
        concurrency.run_per_device([Device("cpu")], [lambda: 1, lambda: 2])


def _one_step(monkeypatch, threads: str):
    monkeypatch.setenv("MINIALEXNET_TOWER_THREADS", threads)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3, 32, 32)).astype(np.float32) * 50
    dlogits = rng.standard_normal((4, 10)).astype(np.float32)
    model = alexnet_cifar(seed=3, init="scaled")
    model.reseed(7)
    logits = model.forward(x, train=True)
    model.backward(dlogits)
    return logits, {name: grad.copy() for name, _, grad in model.parameters()}


def test_parallel_towers_are_deterministic_and_match_sequential_ones(monkeypatch):
    """Threads on: the same arrays bit for bit on every run. Threads off: the same
    function (BLAS with another thread count may add in another order: float32 rounding)."""
    monkeypatch.setattr(concurrency, "cpu_cores", lambda: 2)
    logits, grads = _one_step(monkeypatch, "1")
    logits_again, grads_again = _one_step(monkeypatch, "1")
    logits_seq, grads_seq = _one_step(monkeypatch, "0")
    np.testing.assert_array_equal(logits, logits_again)
    np.testing.assert_allclose(logits, logits_seq, rtol=1e-5, atol=1e-6)
    assert grads.keys() == grads_again.keys() == grads_seq.keys()
    for name, grad in grads.items():
        np.testing.assert_array_equal(grad, grads_again[name], err_msg=name)
        scale = float(np.abs(grads_seq[name]).max())
        np.testing.assert_allclose(grad, grads_seq[name], rtol=0, atol=1e-5 * scale, err_msg=name)
