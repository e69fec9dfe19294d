"""The CUDA gathers of minialexnet.functional.cuda_kernels against the generic array code.

On the CPU: the source compiles with nvcc (where nvcc exists) and NumPy arrays never
reach the kernels.
On a GPU: im2col and col2im equal the generic versions (hypothesis-drawn shapes, strides
and both float dtypes), and whole convolutions agree with the kernels on and off.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minialexnet.backend import Device, gpu_available
from minialexnet.functional import conv, cuda_kernels

needs_gpu = pytest.mark.skipif(
    not gpu_available(), reason="needs CuPy and a CUDA GPU (none here); pip install '.[gpu]'"
)


def test_source_compiles_with_nvcc(tmp_path):
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("nvcc is not on PATH (the CUDA toolkit is not installed here)")
    source = tmp_path / "kernels.cu"
    source.write_text(cuda_kernels.SOURCE)
    done = subprocess.run(
        [nvcc, "--ptx", "-o", str(tmp_path / "kernels.ptx"), str(source)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    ptx = (tmp_path / "kernels.ptx").read_text()
    for name in ("im2col_f32", "im2col_f64", "col2im_f32", "col2im_f64"):
        assert f".entry {name}" in ptx


def test_kernels_never_take_numpy_arrays(monkeypatch):
    x = np.zeros((1, 1, 1, 1, 2, 2), np.float32)
    monkeypatch.setenv("MINIALEXNET_KERNELS", "1")
    assert not cuda_kernels.enabled(x)
    monkeypatch.delenv("MINIALEXNET_KERNELS")
    assert not cuda_kernels.enabled(x)


@needs_gpu
def test_kernels_are_on_for_cupy_unless_switched_off(monkeypatch):
    x = Device("gpu:0").xp.zeros((1, 1, 1, 1, 2, 2), "float32")
    monkeypatch.delenv("MINIALEXNET_KERNELS", raising=False)
    assert cuda_kernels.enabled(x)
    monkeypatch.setenv("MINIALEXNET_KERNELS", "0")
    assert not cuda_kernels.enabled(x)


shapes = st.tuples(
    st.integers(1, 3),  # n
    st.integers(1, 4),  # c
    st.integers(3, 12),  # h
    st.integers(3, 12),  # w
    st.integers(1, 5),  # kh
    st.integers(1, 5),  # kw
    st.integers(1, 4),  # stride
    st.integers(0, 2),  # pad
    st.sampled_from(["float32", "float64"]),
)


@needs_gpu
@settings(max_examples=40, deadline=None)
@given(shapes)
def test_gathers_equal_the_generic_code_on_the_gpu(case):
    n, c, h, w, kh, kw, s, p, dtype = case
    if kh > h + 2 * p or kw > w + 2 * p:
        return
    dev = Device("gpu:0")
    xp = dev.xp
    rng = np.random.default_rng(0)
    x = xp.asarray(rng.standard_normal((n, c, h, w)).astype(dtype))
    oh, ow = (h + 2 * p - kh) // s + 1, (w + 2 * p - kw) // s + 1
    xs = conv.space_to_depth(x, (p, p), (s, s))
    ours = cuda_kernels.im2col(xs, (kh, kw), (oh, ow))
    with mock.patch.dict(os.environ, {"MINIALEXNET_KERNELS": "0"}):  # the array code
        generic = conv.im2col(xs, (kh, kw), (oh, ow))
    assert ours.shape == generic.shape and bool((ours == generic).all())
    col = xp.asarray(rng.standard_normal(generic.shape).astype(dtype))
    base = xp.asarray(rng.standard_normal(xs.shape).astype(dtype))
    with mock.patch.dict(os.environ, {"MINIALEXNET_KERNELS": "0"}):
        want = conv.col2im(col, base.copy())
        ref = conv.col2im(col[:, :, :, : max(1, n - 1)], base.copy()[:, : max(1, n - 1)])
    got = cuda_kernels.col2im(col, base.copy())
    tol = 1e-5 if dtype == "float32" else 1e-12
    assert float(xp.abs(got - want).max()) <= tol * max(1.0, float(xp.abs(want).max()))
    sliced = base.copy()  # a non-contiguous target: a batch slice, as conv2d_backward passes
    cuda_kernels.col2im(col[:, :, :, : max(1, n - 1)], sliced[:, : max(1, n - 1)])
    assert float(xp.abs(sliced[:, : max(1, n - 1)] - ref).max()) <= tol * 10


@needs_gpu
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_alexnet_conv1_and_conv2_agree_with_kernels_on_and_off(dtype, monkeypatch):
    dev = Device("gpu:0")
    xp = dev.xp
    rng = np.random.default_rng(1)
    for n, c, h, k, s, p, g, co in [(4, 3, 227, 11, 4, 0, 1, 96), (4, 96, 27, 5, 1, 2, 2, 256)]:
        x = xp.asarray(rng.standard_normal((n, c, h, h)).astype(dtype))
        w = xp.asarray(rng.standard_normal((co, c // g, k, k)).astype(dtype) * 0.01)
        b = xp.asarray(rng.standard_normal(co).astype(dtype))
        results = []
        for flag in ("0", "1"):
            monkeypatch.setenv("MINIALEXNET_KERNELS", flag)
            out, cache = conv.conv2d_forward(x, w, b, s, p, g, col_bytes=2**22)  # chunked
            dout = xp.asarray(np.random.default_rng(2).standard_normal(out.shape).astype(dtype))
            results.append((out, *conv.conv2d_backward(dout, cache)))
        tol = 1e-4 if dtype == "float32" else 1e-10
        for a, b_ in zip(*results, strict=True):
            scale = max(1.0, float(xp.abs(a).max()))
            assert float(xp.abs(a - b_).max()) <= tol * scale
