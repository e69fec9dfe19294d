"""maxpool2d_forward / maxpool2d_backward: loop reference, finite differences, ties, overlap;
ceil mode (Caffe's rounding, PyTorch's and ONNX's option) the same ways."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from helpers import (
    GRAD_TOL,
    Snapshot,
    assert_close,
    assert_dtype,
    distinct,
    dtypes,
    fast,
    npy,
    on,
    pair,
    pool_cases,
    rand,
    seeds,
)
from hypothesis import given
from hypothesis import strategies as st

from minialexnet.functional import maxpool2d_backward, maxpool2d_forward, pool
from minialexnet.functional.pool import pooled_size
from minialexnet.functional.reference import maxpool2d_backward_loops, maxpool2d_loops
from minialexnet.gradcheck import check_function, check_layer
from minialexnet.layers import MaxPool2d


@fast(40)
@given(case=pool_cases(), dtype=dtypes, seed=seeds)
def test_forward_matches_loops_shape_dtype_and_leaves_inputs(device, case, dtype, seed):
    x = on(device, rand(seed, case.x_shape, dtype))
    snap = Snapshot(x=x)
    out, _ = maxpool2d_forward(x, size=case.size, stride=case.stride)
    snap.check("by maxpool2d_forward")
    assert npy(out).shape == case.out_shape  # floor((H - size) / stride) + 1
    assert_dtype(out, dtype)
    # a max is one of the inputs: exact equality, in any dtype
    np.testing.assert_array_equal(npy(out), maxpool2d_loops(npy(x), case.size, case.stride))


@fast(20)
@given(case=pool_cases(), seed=seeds)
def test_forward_all_negative_input(device, case, seed):
    """The max of negative numbers is negative (no max initialised at 0)."""
    x = -np.abs(rand(seed, case.x_shape)) - 1.0
    out, _ = maxpool2d_forward(on(device, x), size=case.size, stride=case.stride)
    np.testing.assert_array_equal(npy(out), maxpool2d_loops(x, case.size, case.stride))


def test_alexnet_pool_shapes(device):
    """Overlapping 3/2 pooling: 55 -> 27, 27 -> 13, 13 -> 6 (paper, section 3.4)."""
    for h, oh in [(55, 27), (27, 13), (13, 6)]:
        out, _ = maxpool2d_forward(on(device, rand(0, (1, 2, h, h))), size=3, stride=2)
        assert npy(out).shape == (1, 2, oh, oh)


def test_non_contiguous_input(device):
    x = rand(0, (2, 3, 7, 8)).transpose(0, 1, 3, 2)[:, ::-1]
    out, cache = maxpool2d_forward(on(device, x), size=3, stride=2)
    np.testing.assert_array_equal(npy(out), maxpool2d_loops(np.ascontiguousarray(x), 3, 2))
    dout = rand(1, npy(out).shape)
    dx = maxpool2d_backward(on(device, dout), cache)
    assert_close(dx, maxpool2d_backward_loops(dout, np.ascontiguousarray(x), 3, 2))


# ----------------------------------------------------------------------------- backward
@fast(30)
@given(case=pool_cases(max_n=2, max_c=2, max_extra=4), seed=seeds)
def test_backward_matches_finite_differences(device, case, seed):
    # distinct values 0.1 apart: no window has a tie, eps = 1e-6 never changes an arg-max
    x = on(device, distinct(seed, case.x_shape))
    errs = check_function(
        lambda x: maxpool2d_forward(x, case.size, case.stride),
        maxpool2d_backward,
        {"x": x},
        seed=seed,
    )
    assert errs["x"] < GRAD_TOL, errs


@fast(30)
@given(
    case=pool_cases(max_n=3, max_c=3, max_size=5, max_extra=10),
    dtype=dtypes,
    seed=seeds,
    ties=st.booleans(),
)
def test_backward_matches_loops_dtype_and_leaves_inputs(device, case, dtype, seed, ties):
    if ties:  # values from {0, 1, 2}: many windows hold their maximum more than once
        x = np.random.default_rng(seed).integers(0, 3, case.x_shape).astype(dtype)
    else:
        x = distinct(seed, case.x_shape, dtype)
    x = on(device, x)
    out, cache = maxpool2d_forward(x, size=case.size, stride=case.stride)
    dout = on(device, rand(seed + 1, case.out_shape, dtype))
    snap = Snapshot(x=x, out=out, dout=dout)
    dx = maxpool2d_backward(dout, cache)
    snap.check("by maxpool2d_backward")
    assert npy(dx).shape == case.x_shape
    assert_dtype(dx, dtype, "dx")
    expected = maxpool2d_backward_loops(
        npy(dout).astype(np.float64), npy(x), case.size, case.stride
    )
    assert_close(dx, expected, dtype, scale=4)


@fast(25)
@given(case=pool_cases(max_size=4, max_extra=8), dtype=dtypes, seed=seeds)
def test_ties_send_gradient_to_first_element_of_each_window(device, case, dtype, seed):
    """Constant input: every window's gradient goes to its top-left entry (as PyTorch)."""
    x = on(device, np.full(case.x_shape, 0.5, dtype=dtype))
    out, cache = maxpool2d_forward(x, size=case.size, stride=case.stride)
    dout = rand(seed, case.out_shape, dtype)
    dx = maxpool2d_backward(on(device, dout), cache)
    (sh, sw) = pair(case.stride)
    expected = np.zeros(case.x_shape)
    for i in range(case.out_shape[2]):
        for j in range(case.out_shape[3]):
            expected[:, :, i * sh, j * sw] += dout[:, :, i, j]
    assert_close(dx, expected, dtype)


def test_ties_first_in_row_major_order(device):
    """Two maxima in one 2x2 window: the one in the first row wins, then the first column."""
    x = np.array([[0.0, 1.0], [1.0, 0.0]]).reshape(1, 1, 2, 2)
    out, cache = maxpool2d_forward(on(device, x), size=2, stride=2)
    dx = maxpool2d_backward(on(device, np.ones((1, 1, 1, 1))), cache)
    np.testing.assert_array_equal(npy(dx)[0, 0], [[0.0, 1.0], [0.0, 0.0]])
    x = np.array([[0.0, 0.0], [1.0, 1.0]]).reshape(1, 1, 2, 2)
    out, cache = maxpool2d_forward(on(device, x), size=2, stride=2)
    dx = maxpool2d_backward(on(device, np.ones((1, 1, 1, 1))), cache)
    np.testing.assert_array_equal(npy(dx)[0, 0], [[0.0, 0.0], [1.0, 0.0]])


@fast(20)
@given(dtype=dtypes, seed=seeds)
def test_overlapping_windows_sum(device, dtype, seed):
    """5x5, size 3 stride 2: the centre belongs to all four windows and is the max of each."""
    x = rand(seed, (2, 3, 5, 5), dtype)
    x[:, :, 2, 2] = 100.0
    out, cache = maxpool2d_forward(on(device, x), size=3, stride=2)
    np.testing.assert_array_equal(npy(out), np.full((2, 3, 2, 2), 100.0, dtype=dtype))
    dout = rand(seed + 1, (2, 3, 2, 2), dtype)
    dx = maxpool2d_backward(on(device, dout), cache)
    expected = np.zeros((2, 3, 5, 5))
    expected[:, :, 2, 2] = dout.astype(np.float64).sum(axis=(2, 3))
    assert_close(dx, expected, dtype)


def test_dx_has_x_dtype_whatever_dout_dtype(device):
    x = on(device, distinct(0, (2, 2, 5, 5), np.float32))
    out, cache = maxpool2d_forward(x, 2, 2)
    dx = maxpool2d_backward(on(device, rand(1, npy(out).shape, np.float64)), cache)
    assert_dtype(dx, np.float32, "dx")


def test_windows_of_more_than_127_elements(device):
    """A 12x12 window has 144 offsets, more than an int8 index holds: still exact."""
    rng = np.random.default_rng(0)
    x = rng.permutation(2 * 3 * 26 * 27).reshape(2, 3, 26, 27).astype(np.float64)
    x[0, 0, :12, :12] = x[0, 0, 11, 11] = 1e6  # ties: the first one (0, 0) must win
    out, cache = maxpool2d_forward(on(device, x), 12, 7)
    np.testing.assert_array_equal(npy(out), maxpool2d_loops(x, 12, 7))
    dout = rng.standard_normal(out.shape)
    dx = maxpool2d_backward(on(device, dout), cache)
    np.testing.assert_array_equal(npy(dx), maxpool2d_backward_loops(dout, x, 12, 7))


# ----------------------------------------------------------------------------- ceil mode
def windows_ceil(n: int, k: int, s: int) -> int:
    """Ceil mode's window count, counted: windows start at 0, s, 2s, ... until one reaches
    the last pixel, and none starts at or past the end (the plain reading of PyTorch's rule)."""
    count, start = 1, 0
    while start + k < n and start + s < n:
        count, start = count + 1, start + s
    return count


def torch_formula(n: int, k: int, s: int) -> int:
    """PyTorch's documented size (no padding, dilation 1): ceil((n - k) / s) + 1, then
    one less if the last window would start at or past the end."""
    out = math.ceil((n - k) / s) + 1
    return out - 1 if (out - 1) * s >= n else out


def pad_end(x: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """x with -inf appended to H and W up to ``hw``."""
    _, _, h, w = x.shape
    widths = ((0, 0), (0, 0), (0, hw[0] - h), (0, hw[1] - w))
    return np.pad(x, widths, constant_values=-np.inf)


def covered(x_shape, size, stride, out_shape) -> tuple[int, int]:
    """x's H and W grown to the end of the last windows, (OH - 1)*sh + KH and likewise
    (where stride > size, the windows may end before x does)."""
    (kh, kw), (sh, sw) = pair(size), pair(stride)
    return max(x_shape[2], (out_shape[2] - 1) * sh + kh), max(
        x_shape[3], (out_shape[3] - 1) * sw + kw
    )


def ceil_pool_loops(x: np.ndarray, size, stride) -> np.ndarray:
    """Ceil-mode max pooling, one window at a time, each cut to the pixels that exist."""
    (kh, kw), (sh, sw) = pair(size), pair(stride)
    n, c, h, w = x.shape
    oh, ow = windows_ceil(h, kh, sh), windows_ceil(w, kw, sw)
    out = np.zeros((n, c, oh, ow), x.dtype)
    for i in range(oh):
        for j in range(ow):
            out[:, :, i, j] = x[:, :, i * sh : i * sh + kh, j * sw : j * sw + kw].max(axis=(2, 3))
    return out


@st.composite
def ceil_cases(draw, max_n: int = 2, max_c: int = 2, max_size: int = 4, max_extra: int = 6):
    """(x shape, size, stride) whose H axis has a last window hanging over the edge."""
    kh, kw = draw(st.integers(1, max_size)), draw(st.integers(1, max_size))
    sh, sw = draw(st.integers(2, 4)), draw(st.integers(1, 4))
    h = kh + sh * draw(st.integers(0, 3)) + draw(st.integers(1, sh - 1))  # sh doesn't divide H-KH
    w = draw(st.integers(kw, kw + max_extra))
    size = kh if kh == kw and draw(st.booleans()) else (kh, kw)
    stride = sh if sh == sw and draw(st.booleans()) else (sh, sw)
    shape = (draw(st.integers(1, max_n)), draw(st.integers(1, max_c)), h, w)
    return shape, size, stride


# (H, size, stride, floor, ceil): the row of PyTorch's table is ceil's
SIZES = [
    pytest.param(54, 3, 2, 26, 27, id="onnx-alexnet-pool1-54"),
    pytest.param(5, 2, 2, 2, 3, id="5-by-2-every-2"),
    pytest.param(7, 2, 3, 2, 3, id="7-by-2-every-3"),
    pytest.param(55, 3, 2, 27, 27, id="paper-pool1-55"),
    pytest.param(27, 3, 2, 13, 13, id="pool2-27"),
    pytest.param(13, 3, 2, 6, 6, id="pool5-13"),
    pytest.param(5, 2, 3, 2, 2, id="5-by-2-every-3"),
    pytest.param(4, 4, 1, 1, 1, id="one-window"),
    # PyTorch's rule removes the window that would start at the end: 2, not ceil(3/2)+1 = 3
    pytest.param(4, 1, 2, 2, 2, id="rule-4-by-1-every-2"),
    pytest.param(5, 1, 3, 2, 2, id="rule-5-by-1-every-3"),
    pytest.param(7, 2, 4, 2, 2, id="rule-7-by-2-every-4"),
]


@pytest.mark.parametrize("h, k, s, floor, ceil", SIZES)
def test_ceil_mode_output_sizes(device, h, k, s, floor, ceil):
    assert pooled_size(h, k, s) == pooled_size(h, k, s, False) == floor == (h - k) // s + 1
    assert pooled_size(h, k, s, True) == ceil == torch_formula(h, k, s) == windows_ceil(h, k, s)
    x = on(device, rand(0, (1, 2, h, h + 1)))
    out, _ = maxpool2d_forward(x, k, s, ceil_mode=True)
    assert npy(out).shape == (1, 2, ceil, pooled_size(h + 1, k, s, True))
    out, _ = maxpool2d_forward(x, k, s)  # floor mode stays the default
    assert npy(out).shape == (1, 2, floor, pooled_size(h + 1, k, s))


def test_pytorchs_rule_drops_a_window_starting_at_the_end():
    """4 pixels, window 1, stride 2: ceil((4 - 1)/2) + 1 = 3 would start a window at 4."""
    assert math.ceil((4 - 1) / 2) + 1 == 3 and pooled_size(4, 1, 2, True) == 2


def test_pooled_size_agrees_with_the_formulas_and_the_count_everywhere():
    for n in range(1, 40):
        for k in range(1, n + 1):
            for s in range(1, 8):
                assert pooled_size(n, k, s) == (n - k) // s + 1
                ceil = pooled_size(n, k, s, True)
                assert ceil == torch_formula(n, k, s) == windows_ceil(n, k, s)
                # the last window starts inside; it reaches the end, or the next would not start
                assert (ceil - 1) * s < n and ((ceil - 1) * s + k >= n or ceil * s >= n)
                # one window more than floor mode where the stride does not divide n - k,
                # unless that window would start at or past the end
                floor = pooled_size(n, k, s)
                assert ceil - floor == int((n - k) % s != 0 and floor * s < n)


def test_onnx_alexnet_keeps_6x6_at_pool5_only_in_ceil_mode(device):
    """224 -> conv1 (11, stride 4) 54 -> pool 27 -> conv2 (pad 2) 27 -> pool 13 -> pool5 6."""
    conv1 = (224 - 11) // 4 + 1
    assert conv1 == 54
    for ceil_mode, sizes in [(True, [27, 13, 6]), (False, [26, 12, 5])]:
        h = conv1
        for want in sizes:
            out, _ = maxpool2d_forward(on(device, rand(0, (1, 2, h, h))), 3, 2, ceil_mode=ceil_mode)
            h = npy(out).shape[2]  # conv2 to conv5 keep the size (pad 2 and 1)
            assert h == want, (ceil_mode, sizes)


@fast(40)
@given(case=st.one_of(ceil_cases(), pool_cases()), dtype=dtypes, seed=seeds)
def test_ceil_forward_matches_the_loops_and_padding_with_minus_inf(device, case, dtype, seed):
    shape, size, stride = (
        case if isinstance(case, tuple) else (case.x_shape, case.size, case.stride)
    )
    x_np = rand(seed, shape, dtype)
    x = on(device, x_np)
    snap = Snapshot(x=x)
    out, cache = maxpool2d_forward(x, size, stride, ceil_mode=True)
    snap.check("by maxpool2d_forward(ceil_mode=True)")
    assert_dtype(out, dtype)
    (kh, kw), (sh, sw) = pair(size), pair(stride)
    assert npy(out).shape == (*shape[:2], torch_formula(shape[2], kh, sh),
                              torch_formula(shape[3], kw, sw))  # fmt: skip
    assert cache[0] == shape  # x's own shape, not the padded one
    np.testing.assert_array_equal(npy(out), ceil_pool_loops(x_np, size, stride))
    padded = pad_end(x_np, covered(shape, size, stride, npy(out).shape))
    np.testing.assert_array_equal(npy(out), maxpool2d_loops(padded, size, stride))


@fast(30)
@given(case=ceil_cases(), seed=seeds)
def test_ceil_backward_matches_finite_differences(device, case, seed):
    shape, size, stride = case
    x = on(device, distinct(seed, shape))  # no ties: eps never changes an arg-max
    errs = check_function(
        lambda x: maxpool2d_forward(x, size, stride, ceil_mode=True),
        maxpool2d_backward,
        {"x": x},
        seed=seed,
    )
    assert errs["x"] < GRAD_TOL, errs


@fast(30)
@given(case=ceil_cases(max_n=3, max_c=3, max_size=5), dtype=dtypes, seed=seeds, ties=st.booleans())
def test_ceil_backward_matches_loops_on_padded_input(device, case, dtype, seed, ties):
    shape, size, stride = case
    if ties:  # values from {0, 1, 2}: many windows hold their maximum more than once
        x_np = np.random.default_rng(seed).integers(0, 3, shape).astype(dtype)
    else:
        x_np = distinct(seed, shape, dtype)
    x = on(device, x_np)
    out, cache = maxpool2d_forward(x, size, stride, ceil_mode=True)
    dout_np = rand(seed + 1, npy(out).shape, dtype)
    dout = on(device, dout_np)
    snap = Snapshot(x=x, out=out, dout=dout)
    dx = maxpool2d_backward(dout, cache)
    snap.check("by maxpool2d_backward")
    assert npy(dx).shape == shape
    assert_dtype(dx, dtype, "dx")
    padded = pad_end(x_np, covered(shape, size, stride, npy(out).shape))
    full = maxpool2d_backward_loops(dout_np.astype(np.float64), padded, size, stride)
    h, w = shape[2:]
    assert not full[:, :, h:].any() and not full[:, :, :, w:].any()  # nothing to the padding
    assert_close(dx, full[:, :, :h, :w], dtype, scale=4)


@fast(20)
@given(case=ceil_cases(), seed=seeds, fill=st.sampled_from([0.5, -np.inf, np.nan]))
def test_ceil_gradient_reaches_only_real_pixels(device, case, seed, fill):
    """Constant input, -inf (ties with the padding) or NaN too: each window's gradient goes
    to its top-left pixel, inside the image, so none is lost to the padding."""
    shape, size, stride = case
    x = on(device, np.full(shape, fill))
    out, cache = maxpool2d_forward(x, size, stride, ceil_mode=True)
    np.testing.assert_array_equal(npy(out), np.full(npy(out).shape, fill))
    dout = rand(seed, npy(out).shape)
    dx = npy(maxpool2d_backward(on(device, dout), cache))
    assert dx.shape == shape
    (sh, sw) = pair(stride)
    expected = np.zeros(shape)
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            expected[:, :, i * sh, j * sw] += dout[:, :, i, j]
    assert_close(dx, expected)
    assert_close(dx.sum(axis=(2, 3)), dout.sum(axis=(2, 3)))


NAN, INF = np.nan, np.inf


@pytest.mark.parametrize(
    "row",
    [
        [1.0, 2.0, 3.0, 9.0, NAN],  # the last window is [9, NaN]
        [1.0, 2.0, 3.0, NAN, 9.0],  # NaN first in the last window
        [-INF, -INF, -INF, -INF, -INF],  # -inf ties with the padding
        [0.0, 1.0, 5.0, -INF, -INF],
        [NAN, 1.0, 2.0, 3.0, 4.0],
    ],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ceil_windows_at_the_edge_pool_what_is_there(device, row, dtype):
    """Each window, partial ones included, gives the value and code (its maximum's position)
    of floor-mode pooling of just its pixels: NaN rule and ties as in the module docstring."""
    rows = np.array([row, row[::-1], row[1:] + row[:1]], dtype=dtype)  # 3x5: 2x2 windows by 2
    x = rows[None, None]
    out, cache = maxpool2d_forward(on(device, x), 2, 2, ceil_mode=True)
    out, code = npy(out), npy(cache[4])
    assert out.shape == (1, 1, 2, 3)
    for i in range(2):
        for j in range(3):
            part = x[:, :, 2 * i : 2 * i + 2, 2 * j : 2 * j + 2]
            want, want_cache = maxpool2d_forward(on(device, part), part.shape[2:], 1)
            np.testing.assert_array_equal(out[0, 0, i, j], npy(want)[0, 0, 0, 0])
            kw_part = part.shape[3]
            p, q = divmod(int(npy(want_cache[4])[0, 0, 0, 0]), kw_part)
            assert divmod(int(code[0, 0, i, j]), 2) == (p, q), (i, j, part)
    dx = npy(maxpool2d_backward(on(device, np.ones(out.shape, dtype)), cache))
    assert dx.shape == x.shape and dx.sum() == out.size  # every window's 1 reached x


def test_ceil_mode_non_contiguous_input(device):
    x = rand(0, (2, 3, 8, 9)).transpose(0, 1, 3, 2)[:, ::-1]  # 9 x 8: both axes hang over
    out, cache = maxpool2d_forward(on(device, x), 3, 2, ceil_mode=True)
    assert npy(out).shape == (2, 3, 4, 4)
    np.testing.assert_array_equal(npy(out), ceil_pool_loops(x, 3, 2))
    dout = rand(1, npy(out).shape)
    dx = maxpool2d_backward(on(device, dout), cache)
    padded = pad_end(np.ascontiguousarray(x), (9, 9))
    assert_close(dx, maxpool2d_backward_loops(dout, padded, 3, 2)[:, :, :9, :8])


def test_ceil_mode_float16(device):
    x = distinct(0, (1, 2, 5, 6), np.float16)
    out, cache = maxpool2d_forward(on(device, x), 2, 2, ceil_mode=True)
    assert_dtype(out, np.float16)
    np.testing.assert_array_equal(npy(out), ceil_pool_loops(x, 2, 2))
    dx = maxpool2d_backward(on(device, np.ones(npy(out).shape, np.float32)), cache)
    assert_dtype(dx, np.float16, "dx")
    assert npy(dx).shape == x.shape and float(npy(dx).sum()) == npy(out).size


@pytest.mark.parametrize("bad", [1, 0, "yes", None, 1.0, (True,)])
def test_ceil_mode_must_be_a_bool(bad):
    x = rand(0, (1, 1, 5, 5))
    with pytest.raises(TypeError, match=r"maxpool2d_forward: ceil_mode must be True or False, got"):
        maxpool2d_forward(x, 2, 2, ceil_mode=bad)
    message = f"MaxPool2d: ceil_mode must be True or False, got {bad!r} ({type(bad).__name__})"
    with pytest.raises(TypeError, match=re.escape(message)):
        MaxPool2d(2, 2, ceil_mode=bad)


def test_ceil_mode_accepts_numpy_bools():
    x = rand(0, (1, 1, 5, 5))
    assert maxpool2d_forward(x, 2, 2, ceil_mode=np.True_)[0].shape == (1, 1, 3, 3)
    assert MaxPool2d(2, 2, np.False_).ceil_mode is False


def test_ceil_mode_still_refuses_a_window_larger_than_the_input():
    with pytest.raises(ValueError, match="larger than the input"):
        maxpool2d_forward(rand(0, (1, 1, 2, 5)), 3, 2, ceil_mode=True)


# ----------------------------------------------------------------------------- the layer
def test_layer_ceil_mode_shapes_repr_and_passes(device):
    layer = MaxPool2d(3, 2, ceil_mode=True)
    assert layer.ceil_mode is True and MaxPool2d().ceil_mode is False
    assert repr(layer) == "MaxPool2d(size=(3, 3), stride=(2, 2), ceil_mode=True)"
    assert repr(MaxPool2d(3, 2)) == "MaxPool2d(size=(3, 3), stride=(2, 2))"
    assert repr(MaxPool2d(3, 2, False)) == "MaxPool2d(size=(3, 3), stride=(2, 2))"
    x = on(device, distinct(0, (2, 3, 54, 54)))
    out = layer.forward(x)
    assert npy(out).shape == (2, 3, 27, 27)
    want, cache = maxpool2d_forward(x, 3, 2, ceil_mode=True)
    np.testing.assert_array_equal(npy(out), npy(want))
    dout = on(device, rand(1, (2, 3, 27, 27)))
    np.testing.assert_array_equal(npy(layer.backward(dout)), npy(maxpool2d_backward(dout, cache)))
    assert npy(MaxPool2d(3, 2).forward(x)).shape == (2, 3, 26, 26)


@pytest.mark.parametrize("size, stride", [(3, 2), (2, 2), ((3, 2), (2, 3))])
def test_layer_ceil_mode_gradients(device, size, stride):
    x = on(device, distinct(0, (2, 3, 8, 7)))
    errs = check_layer(MaxPool2d(size, stride, ceil_mode=True), x)
    assert set(errs) == {"x"} and errs["x"] < GRAD_TOL, errs


# ----------------------------------------------------------------------------- dispatch
class KernelStandIn:
    """Stands in for ``pool.cuda_kernels`` on NumPy arrays: records what the dispatcher hands
    the kernels, and answers with the generic code (itself switched off meanwhile)."""

    POOL_WINDOW_MAX = 128

    def __init__(self) -> None:
        self.calls: list[tuple] = []
        self.on = True

    def enabled(self, x, dtype=None) -> bool:
        return self.on

    def _generic(self, fn, *args):
        self.on = False
        try:
            return fn(*args)
        finally:
            self.on = True

    def maxpool2d_forward(self, x, size, stride):
        self.calls.append(("forward", x.shape, bool(np.isneginf(x).any())))
        return self._generic(maxpool2d_forward, x, size, stride)

    def maxpool2d_backward(self, dout, cache):
        self.calls.append(("backward", cache[0], dout.shape))
        return self._generic(maxpool2d_backward, dout, cache)


def test_kernels_get_padded_input_and_a_padded_cache(monkeypatch):
    """Ceil mode on the kernels: the dispatcher pads x with -inf for the (floor-mode)
    forward kernel, hands back a cache with x's own shape, and gives the backward kernel
    the padded shape, cutting its dx back to x's. Floor mode passes x as it is."""
    stand_in = KernelStandIn()
    monkeypatch.setattr(pool, "cuda_kernels", stand_in)
    x = distinct(0, (2, 3, 8, 7))
    dout = rand(1, (2, 3, 4, 3))
    out, cache = maxpool2d_forward(x, 3, 2, ceil_mode=True)
    dx = maxpool2d_backward(dout, cache)
    assert stand_in.calls == [
        ("forward", (2, 3, 9, 7), True),  # H: 8 -> 9 for the 4th window; W: 3 windows fit 7
        ("backward", (2, 3, 9, 7), (2, 3, 4, 3)),
    ]
    assert cache[0] == x.shape and dx.shape == x.shape and dx.flags.c_contiguous
    stand_in.on = False  # the generic code, through the same functions
    want, want_cache = maxpool2d_forward(x, 3, 2, ceil_mode=True)
    np.testing.assert_array_equal(out, want)
    np.testing.assert_array_equal(cache[4], want_cache[4])
    np.testing.assert_array_equal(dx, maxpool2d_backward(dout, want_cache))
    stand_in.calls.clear()
    stand_in.on = True
    out, cache = maxpool2d_forward(x, 3, 2)
    maxpool2d_backward(np.ones_like(out), cache)
    assert stand_in.calls == [("forward", x.shape, False), ("backward", x.shape, out.shape)]
