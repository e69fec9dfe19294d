"""maxpool2d_forward / maxpool2d_backward: loop reference, finite differences, ties, overlap."""

from __future__ import annotations

import numpy as np
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

from minialexnet.functional import maxpool2d_backward, maxpool2d_forward
from minialexnet.functional.reference import maxpool2d_backward_loops, maxpool2d_loops
from minialexnet.gradcheck import check_function


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
