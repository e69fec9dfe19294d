"""Grading tests of the exercise conv2d_forward: ``im2col`` and ``conv2d_forward``.

The reference values come from the loop version ``conv2d_loops`` (one output
number at a time, no im2col), the cache is checked by running the reference
``conv2d_backward`` on it.
"""

from __future__ import annotations

import numpy as np
import pytest
from exercise_support import assert_close, assert_dtype, assert_shape, rand, student_module

student = student_module("minialexnet.functional.conv")


# (x shape, w shape, stride, pad, groups, bias)
CASES = [
    pytest.param((2, 3, 7, 7), (4, 3, 3, 3), 1, 1, 1, True, id="3x3-pad1"),
    pytest.param((2, 4, 9, 8), (6, 2, 3, 3), 2, 1, 2, True, id="groups2-stride2"),
    pytest.param((1, 3, 11, 13), (2, 3, 5, 3), (3, 2), (2, 0), 1, False, id="pairs-no-bias"),
    pytest.param((3, 6, 5, 5), (6, 2, 1, 1), 1, 0, 3, True, id="1x1-groups3"),
    pytest.param((2, 3, 23, 23), (4, 3, 11, 11), 4, 2, 1, True, id="conv1-like"),
]


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _inputs(x_shape, w_shape, bias, dtype=np.float64, seed=0):
    x = rand(seed, x_shape, dtype)
    w = rand(seed + 1, w_shape, dtype, scale=0.3)
    b = rand(seed + 2, (w_shape[0],), dtype) if bias else None
    return x, w, b


def _out_shape(x_shape, w_shape, stride, pad):
    (sh, sw), (ph, pw) = _pair(stride), _pair(pad)
    n, _, h, w = x_shape
    return (n, w_shape[0], (h + 2 * ph - w_shape[2]) // sh + 1, (w + 2 * pw - w_shape[3]) // sw + 1)


@pytest.mark.parametrize(
    "x_shape, kernel, stride, pad",
    [
        ((2, 3, 5, 6), (3, 3), (1, 1), (1, 1)),
        ((2, 2, 9, 7), (3, 2), (2, 3), (0, 1)),
        ((1, 2, 11, 11), (5, 5), (4, 4), (2, 2)),
    ],
)
def test_im2col_gathers_every_window(ref, x_shape, kernel, stride, pad):
    """col[c, i, j, n, oh, ow] = x_pad[n, c, i + sh*oh, j + sw*ow], in the documented layout."""
    x = rand(3, x_shape)
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, pad
    n, c, h, w = x_shape
    oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    xs = ref.module("functional.conv").space_to_depth(x, pad, stride)
    col = student.im2col(xs, kernel, (oh, ow))
    assert_shape("im2col(...)", col, (c, kh, kw, n, oh, ow), "(C, KH, KW, N, OH, OW)")
    x_pad = np.zeros((n, c, h + 2 * ph, w + 2 * pw))
    x_pad[:, :, ph : ph + h, pw : pw + w] = x
    expected = np.empty((c, kh, kw, n, oh, ow))
    for ci, i, j, ni, a, bb in np.ndindex(expected.shape):
        expected[ci, i, j, ni, a, bb] = x_pad[ni, ci, i + sh * a, j + sw * bb]
    assert_close("im2col(...)", col, expected, note=ref.note)


@pytest.mark.parametrize("x_shape, w_shape, stride, pad, groups, bias", CASES)
def test_forward_matches_the_loop_version(ref, x_shape, w_shape, stride, pad, groups, bias):
    x, w, b = _inputs(x_shape, w_shape, bias)
    out, _ = student.conv2d_forward(x, w, b, stride=stride, pad=pad, groups=groups)
    assert_shape("out", out, _out_shape(x_shape, w_shape, stride, pad), "(N, C_out, OH, OW)")
    expected = ref.loops.conv2d_loops(x, w, b, stride, pad, groups)
    assert_close("out", out, expected, note=ref.note)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_forward_keeps_the_dtype_and_leaves_the_inputs_alone(ref, dtype):
    x, w, b = _inputs((2, 4, 6, 6), (4, 2, 3, 3), True, dtype)
    copies = [a.copy() for a in (x, w, b)]
    out, _ = student.conv2d_forward(x, w, b, stride=1, pad=1, groups=2)
    assert_dtype("out", out, dtype)
    for name, before, after in zip(("x", "w", "b"), copies, (x, w, b), strict=True):
        assert np.array_equal(before, after), f"conv2d_forward modified its input {name}"
    assert_close("out", out, ref.loops.conv2d_loops(x, w, b, 1, 1, 2), note=ref.note)


def test_forward_in_chunks_gives_the_same_result(ref):
    """With a tiny col_bytes the batch is processed one image at a time."""
    x, w, b = _inputs((4, 3, 8, 8), (5, 3, 3, 3), True)
    whole, _ = student.conv2d_forward(x, w, b, stride=2, pad=1)
    chunked, _ = student.conv2d_forward(x, w, b, stride=2, pad=1, col_bytes=1)
    expected = ref.loops.conv2d_loops(x, w, b, 2, 1)
    assert_close("out (whole batch)", whole, expected, note=ref.note)
    assert_close("out (col_bytes=1: one image per chunk)", chunked, expected, note=ref.note)


@pytest.mark.parametrize("col_bytes", [None, 1], ids=["kept-columns", "chunked"])
def test_the_cache_works_with_the_reference_backward(ref, col_bytes):
    """The cache must keep xs (the space-to-depth input) and kept_col for conv2d_backward."""
    x, w, b = _inputs((2, 4, 7, 7), (6, 2, 3, 3), True)
    out, cache = student.conv2d_forward(x, w, b, stride=2, pad=1, groups=2, col_bytes=col_bytes)
    dout = rand(9, np.shape(out))
    dx, dw, db = ref.functional.conv2d_backward(dout, cache)
    ex, ew, eb = ref.loops.conv2d_backward_loops(dout, x, w, 2, 1, 2)
    why = "(the reference conv2d_backward on your cache; check xs and kept_col)"
    assert_close("dx", dx, ex, note=why)
    assert_close("dw", dw, ew, note=why)
    assert_close("db", db, eb, note=why)
