"""The CUDA kernels run on their arrays' GPU, and compile one family at a time.

CuPy allocates and launches on the CURRENT GPU, whatever GPU the arrays are on, so a
kernel called with GPU 1's arrays while GPU 0 is current would read and write GPU 1's
memory from GPU 0. And one RawModule for every kernel meant that one compile error in
the pool or LRN code took the convolutions down too. Both are checked here on the CPU,
with a stand-in CuPy (:class:`helpers.FakeCupy`) that records which GPU was current at
each allocation, load and launch; the kernels' arithmetic is tested in
test_cuda_kernels.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from helpers import FakeCupy, rand

from minialexnet.functional import cuda_kernels

SCRIPT = Path(__file__).resolve().parent.parent / ".ci" / "gpu-check"


@pytest.fixture
def fake(monkeypatch) -> FakeCupy:
    """Two stand-in GPUs, GPU 0 current; the kernel modules start uncompiled."""
    monkeypatch.setattr(cuda_kernels, "_modules", {})
    monkeypatch.setattr(cuda_kernels, "_functions", {})
    monkeypatch.delenv("MINIALEXNET_KERNELS", raising=False)
    return FakeCupy(gpus=2).install(monkeypatch)


def _calls_of_every_wrapper(fake: FakeCupy, gpu: int) -> None:
    """Each public wrapper once, on arrays of GPU ``gpu``."""
    x = fake.on(gpu, rand(0, (2, 3, 6, 6), np.float32))
    xs = fake.on(gpu, rand(1, (3, 2, 1, 1, 6, 6), np.float32))
    col = cuda_kernels.im2col(xs, (3, 3), (4, 4))
    cuda_kernels.col2im(col, fake.on(gpu, np.zeros(xs.shape, np.float32)))
    out, cache = cuda_kernels.maxpool2d_forward(x, (2, 2), (2, 2))
    cuda_kernels.maxpool2d_backward(fake.on(gpu, np.ones(out.shape, np.float32)), cache)
    out, cache = cuda_kernels.lrn_forward(x, 5, 2.0, 1e-4, 0.75)
    cuda_kernels.lrn_backward(fake.on(gpu, np.ones(out.shape, np.float32)), cache)


def test_every_kernel_allocates_and_launches_on_its_arrays_gpu(fake):
    assert cuda_kernels.enabled(fake.on(1, np.zeros(2, np.float32)))
    _calls_of_every_wrapper(fake, gpu=1)
    assert fake.current == 0, "the current GPU is given back"
    assert [s for s, _ in fake.launches] == [
        f"{k}_f32" for k in ("im2col", "col2im", "maxpool_fwd", "maxpool_bwd", "lrn_fwd", "lrn_bwd")
    ]
    assert {gpu for _, gpu in fake.launches} == {1}, fake.launches
    assert {gpu for _, gpu in fake.calls} == {1}, f"allocated on another GPU: {fake.calls}"


def test_arrays_of_gpu_0_launch_on_gpu_0_while_gpu_1_is_current(fake):
    with fake.cuda.Device(1):
        _calls_of_every_wrapper(fake, gpu=0)
        assert fake.current == 1
    assert {gpu for _, gpu in fake.launches} == {0}


def test_a_launch_refuses_arrays_of_two_gpus(fake):
    a, b = fake.on(0, np.zeros(4, np.float32)), fake.on(1, np.zeros(4, np.float32))
    with pytest.raises(ValueError, match=r"GPUs \[0, 1\]"):
        cuda_kernels._launch("im2col", a.dtype, (a, b), 4, (1,) * 10)
    assert fake.launches == []


def test_compile_all_compiles_every_family_on_the_current_gpu(fake):
    with fake.cuda.Device(1):
        done = cuda_kernels.compile_all()
    assert list(done) == ["im2col", "maxpool", "lrn"] == list(cuda_kernels.FAMILIES)
    symbols = [s for family in done.values() for s in family]
    assert len(symbols) == 12 and {s for s, _ in fake.loads} == set(symbols)
    assert {gpu for _, gpu in fake.loads} == {1}


def test_a_family_that_does_not_compile_takes_only_its_own_kernels_down(fake, monkeypatch):
    log = '#error lrn.cu(12): error: identifier "powf" is undefined'
    monkeypatch.setitem(cuda_kernels.FAMILIES, "lrn", cuda_kernels.FAMILIES["lrn"] + log + "\n")
    with pytest.raises(RuntimeError) as info:
        cuda_kernels.compile_all()
    message = str(info.value)
    assert "family 'lrn'" in message and log in message
    assert "'im2col'" not in message and "'maxpool'" not in message
    # the convolutions and the pool still run on their kernels; LRN says what is wrong
    xs = fake.on(0, rand(1, (3, 2, 1, 1, 6, 6), np.float32))
    cuda_kernels.im2col(xs, (3, 3), (4, 4))
    cuda_kernels.maxpool2d_forward(fake.on(0, rand(0, (2, 3, 6, 6), np.float32)), (2, 2), (2, 2))
    assert [s for s, _ in fake.launches] == ["im2col_f32", "maxpool_fwd_f32"]
    with pytest.raises(RuntimeError, match="family 'lrn'.*MINIALEXNET_KERNELS=0"):
        cuda_kernels.lrn_forward(fake.on(0, np.ones((1, 4, 2, 2), np.float32)), 5, 2.0, 1e-4, 0.75)


def test_a_kernel_missing_from_its_family_is_named(fake, monkeypatch):
    source = cuda_kernels.FAMILIES["maxpool"].replace("MAXPOOL_BWD(maxpool_bwd_f64, double)", "")
    monkeypatch.setitem(cuda_kernels.FAMILIES, "maxpool", source)
    with pytest.raises(RuntimeError, match="(?s)family 'maxpool'.*maxpool_bwd_f64"):
        cuda_kernels.compile_all()


def _compile_stage() -> str:
    """The Python code the GPU check's ``compile`` stage runs."""
    text = SCRIPT.read_text()
    match = re.search(r'^stage compile "\$COMPILE_S" \$PY -c "([^"]+)"$', text, re.MULTILINE)
    assert match, ".ci/gpu-check has no compile stage"
    assert text.index("stage compile ") < text.index("stage pytest_gpu "), "compile runs first"
    return match.group(1)


def test_the_gpu_check_compiles_every_family_first(fake, capsys):
    exec(_compile_stage(), {})  # what `python3 -c` runs there, with the stand-in CuPy
    assert "'im2col'" in capsys.readouterr().out
    assert len(fake.loads) == 12
