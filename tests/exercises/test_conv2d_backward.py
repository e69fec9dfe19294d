"""Grading tests of the exercise conv2d_backward: ``col2im`` and ``conv2d_backward``.

The cache comes from the reference ``conv2d_forward``; the expected gradients
from the loop version ``conv2d_backward_loops`` and from finite differences.
"""

from __future__ import annotations

import numpy as np
import pytest
from exercise_support import (
    assert_close,
    assert_dtype,
    assert_gradient,
    assert_shape,
    in_place,
    numerical_gradient,
    rand,
    student_module,
)

student = student_module("minialexnet.functional.conv")


# (x shape, w shape, stride, pad, groups, bias)
CASES = [
    pytest.param((2, 3, 6, 6), (4, 3, 3, 3), 1, 1, 1, True, id="3x3-pad1"),
    pytest.param((2, 4, 9, 8), (6, 2, 3, 3), 2, 1, 2, True, id="groups2-stride2"),
    pytest.param((1, 3, 11, 13), (2, 3, 5, 3), (3, 2), (2, 0), 1, False, id="pairs-no-bias"),
    pytest.param((2, 3, 19, 19), (4, 3, 11, 11), 4, 2, 1, True, id="conv1-like"),
]


@pytest.fixture
def reference_im2col(ref, monkeypatch):
    """Backward rebuilds the columns with im2col when the forward did not keep them: use the
    reference im2col there, so that this exercise does not depend on conv2d_forward's."""
    if ref.isolated:
        monkeypatch.setattr(student, "im2col", ref.module("functional.conv").im2col)


def _setup(ref, x_shape, w_shape, stride, pad, groups, bias, col_bytes=None, seed=0):
    x = rand(seed, x_shape)
    w = rand(seed + 1, w_shape, scale=0.3)
    b = rand(seed + 2, (w_shape[0],)) if bias else None
    out, cache = ref.functional.conv2d_forward(x, w, b, stride, pad, groups, col_bytes=col_bytes)
    dout = rand(seed + 3, out.shape)
    return x, w, b, dout, lend_columns(cache)


def lend_columns(cache):
    """``cache``, whose kept columns (its last entry) the backward may take out and write
    over: the only change to its inputs it may make."""
    in_place(cache[-1])
    return cache


def _check(ref, grads, x, w, b, dout, stride, pad, groups):
    assert isinstance(grads, tuple) and len(grads) == 3, (
        f"conv2d_backward must return the tuple (dx, dw, db), got {type(grads).__name__}"
        + (f" of length {len(grads)}" if isinstance(grads, tuple) else "")
    )
    dx, dw, db = grads
    ex, ew, eb = ref.loops.conv2d_backward_loops(dout, x, w, stride, pad, groups, b is not None)
    assert_shape("dx (gradient of the input)", dx, x.shape, "the shape of x")
    assert_shape("dw (gradient of the weights)", dw, w.shape, "the shape of w")
    assert_close("dx (gradient of the input)", dx, ex, note=ref.note)
    assert_close("dw (gradient of the weights)", dw, ew, note=ref.note)
    if b is None:
        assert db is None, f"db must be None when there is no bias, got {type(db).__name__}"
    else:
        assert_close("db (gradient of the bias)", db, eb, note=ref.note)


@pytest.mark.parametrize("x_shape, w_shape, stride, pad, groups, bias", CASES)
def test_backward_matches_the_loop_version(ref, x_shape, w_shape, stride, pad, groups, bias):
    x, w, b, dout, cache = _setup(ref, x_shape, w_shape, stride, pad, groups, bias)
    _check(ref, student.conv2d_backward(dout, cache), x, w, b, dout, stride, pad, groups)


def test_backward_when_the_forward_kept_no_columns(ref, reference_im2col):
    """With col_bytes=1 the forward keeps no columns: backward rebuilds them chunk by chunk."""
    x, w, b, dout, cache = _setup(ref, (3, 4, 7, 7), (4, 2, 3, 3), 2, 1, 2, True, col_bytes=1)
    _check(ref, student.conv2d_backward(dout, cache), x, w, b, dout, 2, 1, 2)


def test_backward_twice_on_one_cache_gives_the_same_gradients(ref, reference_im2col):
    """The forward's kept columns may be used up by the first call; the second still works."""
    x, w, b, dout, cache = _setup(ref, (2, 3, 6, 6), (4, 3, 3, 3), 1, 1, 1, True)
    first = student.conv2d_backward(dout, cache)
    if isinstance(first, tuple):
        first = tuple(None if g is None else np.array(g) for g in first)
    second = student.conv2d_backward(dout, cache)
    _check(ref, first, x, w, b, dout, 1, 1, 1)
    _check(ref, second, x, w, b, dout, 1, 1, 1)


def test_backward_agrees_with_finite_differences(ref):
    x = rand(5, (1, 2, 5, 5))
    w = rand(6, (2, 2, 3, 3))
    b = rand(7, (2,))
    fwd = ref.functional.conv2d_forward
    out, cache = fwd(x, w, b, 2, 1)
    dout = rand(8, out.shape)
    dx, dw, db = student.conv2d_backward(dout, lend_columns(cache))
    assert_gradient("dx", dx, numerical_gradient(lambda v: fwd(v, w, b, 2, 1)[0], x, dout))
    assert_gradient("dw", dw, numerical_gradient(lambda v: fwd(x, v, b, 2, 1)[0], w, dout))
    assert_gradient("db", db, numerical_gradient(lambda v: fwd(x, w, v, 2, 1)[0], b, dout))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_backward_keeps_the_dtypes(ref, dtype):
    x = rand(0, (2, 2, 5, 5), dtype)
    w = rand(1, (3, 2, 3, 3), dtype)
    b = rand(2, (3,), dtype)
    out, cache = ref.functional.conv2d_forward(x, w, b, 1, 1)
    dout = rand(3, out.shape, dtype)
    dx, dw, db = student.conv2d_backward(dout, lend_columns(cache))
    for name, g in (("dx", dx), ("dw", dw), ("db", db)):
        assert_dtype(name, g, dtype)
    ex, ew, eb = ref.loops.conv2d_backward_loops(dout, x, w, 1, 1)
    assert_close("dx", dx, ex)
    assert_close("dw", dw, ew)


@pytest.mark.parametrize(
    "kernel, stride, out_hw",
    [((3, 3), (1, 1), (4, 4)), ((3, 3), (2, 2), (3, 3)), ((5, 3), (2, 1), (2, 4))],
)
def test_col2im_adds_every_column_entry_where_it_came_from(ref, kernel, stride, out_hw):
    """dxs[..] += col[c, i, j, n, oh, ow] at x_pad[n, c, i + sh*oh, j + sw*ow]; overlaps add up."""
    (kh, kw), (sh, sw), (oh, ow) = kernel, stride, out_hw
    n, c = 2, 3
    height, width = kh + sh * (oh - 1), kw + sw * (ow - 1)
    space_to_depth = ref.module("functional.conv").space_to_depth
    start = rand(1, (n, c, height, width))
    dxs = space_to_depth(start, (0, 0), stride)  # the layout col2im writes into
    col = rand(2, (c, kh, kw, n, oh, ow))
    expected = start.copy()
    for ci, i, j, ni, a, bb in np.ndindex(col.shape):
        expected[ni, ci, i + sh * a, j + sw * bb] += col[ci, i, j, ni, a, bb]
    result = student.col2im(col, in_place(dxs))
    assert result is not None, "col2im must return dxs (after adding into it in place)"
    want = space_to_depth(expected, (0, 0), stride)
    assert_close("col2im(col, dxs) (returned)", result, want, note=ref.note)
    assert_close("dxs after col2im (added in place)", dxs, want, note=ref.note)
