"""The loop references are right on their own: hand-computed cases and finite differences.

Nothing here imports the fast ops; these tests are what makes the reference
trustworthy enough to test the fast ops against.
"""

from __future__ import annotations

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from minialexnet.functional.reference import (
    conv2d_backward_loops,
    conv2d_loops,
    lrn_backward_loops,
    lrn_loops,
    maxpool2d_backward_loops,
    maxpool2d_loops,
)
from minialexnet.gradcheck import numerical_gradient, relative_error

TOL = 1e-7  # smooth ops in float64 agree to ~1e-10


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# ---------------------------------------------------------------------------
# conv2d
# ---------------------------------------------------------------------------

X33 = np.arange(9, dtype=np.float64).reshape(1, 1, 3, 3)  # [[0,1,2],[3,4,5],[6,7,8]]
W22 = np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 1, 2, 2)


def test_conv_hand_computed_3x3_by_2x2() -> None:
    # out[0,0] = 0*1 + 1*2 + 3*3 + 4*4 = 27, and so on; bias 0.5 added everywhere
    out = conv2d_loops(X33, W22, np.array([0.5]))
    np.testing.assert_array_equal(out, [[[[27.5, 37.5], [57.5, 67.5]]]])
    assert conv2d_loops(X33, W22, None)[0, 0, 1, 1] == 67.0


def test_conv_hand_computed_stride_and_pad() -> None:
    # pad 1 -> 5x5 with a zero border, stride 2 -> 2x2 output
    out = conv2d_loops(X33, W22, None, stride=2, pad=1)
    # windows: [[0,0],[0,0]], [[0,0],[1,2]], [[0,3],[0,6]], [[4,5],[7,8]]
    np.testing.assert_array_equal(out, [[[[0.0, 11.0], [30.0, 67.0]]]])


def test_conv_backward_hand_computed() -> None:
    dout = np.ones((1, 1, 2, 2))
    dx, dw, db = conv2d_backward_loops(dout, X33, W22)
    np.testing.assert_array_equal(db, [4.0])
    # dw[p, q] = sum of the x entries that w[p, q] met
    np.testing.assert_array_equal(dw, [[[[8.0, 12.0], [20.0, 24.0]]]])
    # dx[a, b] = sum of the weights that touched x[a, b]
    np.testing.assert_array_equal(dx, [[[[1.0, 3.0, 2.0], [4.0, 10.0, 6.0], [3.0, 7.0, 4.0]]]])
    assert conv2d_backward_loops(dout, X33, W22, has_bias=False)[2] is None


def _conv_einsum(x, w, b, stride, pad):
    """An independent vectorised conv (groups=1) for random comparisons."""
    sh, sw = stride
    ph, pw = pad
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    win = sliding_window_view(xp, w.shape[2:], axis=(2, 3))[:, :, ::sh, ::sw]
    return np.einsum("nchwpq,ocpq->nohw", win, w) + b[None, :, None, None]


@pytest.mark.parametrize("stride,pad", [((1, 1), (0, 0)), ((2, 1), (1, 0)), ((3, 2), (2, 1))])
def test_conv_matches_einsum(stride, pad) -> None:
    rng = _rng(1)
    x = rng.standard_normal((2, 3, 7, 6))
    w = rng.standard_normal((4, 3, 3, 2))
    b = rng.standard_normal(4)
    np.testing.assert_allclose(
        conv2d_loops(x, w, b, stride=stride, pad=pad),
        _conv_einsum(x, w, b, stride, pad),
        rtol=1e-12,
        atol=1e-12,
    )


def test_conv_int_and_pair_arguments_agree() -> None:
    rng = _rng(2)
    x, w = rng.standard_normal((1, 2, 5, 5)), rng.standard_normal((3, 2, 3, 3))
    np.testing.assert_array_equal(
        conv2d_loops(x, w, None, stride=2, pad=1), conv2d_loops(x, w, None, (2, 2), (1, 1))
    )


def test_conv_groups2_is_two_convs_concatenated() -> None:
    rng = _rng(3)
    x = rng.standard_normal((2, 4, 5, 5))
    w = rng.standard_normal((6, 2, 3, 3))  # C_out 6, C_in/groups = 2
    b = rng.standard_normal(6)
    out = conv2d_loops(x, w, b, stride=1, pad=1, groups=2)
    top = conv2d_loops(x[:, :2], w[:3], b[:3], stride=1, pad=1)
    bottom = conv2d_loops(x[:, 2:], w[3:], b[3:], stride=1, pad=1)
    np.testing.assert_allclose(out, np.concatenate([top, bottom], axis=1), rtol=0, atol=0)

    dout = rng.standard_normal(out.shape)
    dx, dw, db = conv2d_backward_loops(dout, x, w, stride=1, pad=1, groups=2)
    dx1, dw1, db1 = conv2d_backward_loops(dout[:, :3], x[:, :2], w[:3], stride=1, pad=1)
    dx2, dw2, db2 = conv2d_backward_loops(dout[:, 3:], x[:, 2:], w[3:], stride=1, pad=1)
    np.testing.assert_array_equal(dx, np.concatenate([dx1, dx2], axis=1))
    np.testing.assert_array_equal(dw, np.concatenate([dw1, dw2], axis=0))
    np.testing.assert_array_equal(db, np.concatenate([db1, db2]))


@pytest.mark.parametrize(
    "stride,pad,groups,c_in,c_out",
    [(1, 0, 1, 2, 2), ((2, 1), (1, 0), 2, 4, 2), (2, 1, 3, 3, 6)],
)
def test_conv_backward_matches_finite_differences(stride, pad, groups, c_in, c_out) -> None:
    rng = _rng(4)
    x = rng.standard_normal((2, c_in, 5, 4))
    w = rng.standard_normal((c_out, c_in // groups, 3, 2))
    b = rng.standard_normal(c_out)
    out = conv2d_loops(x, w, b, stride, pad, groups)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = conv2d_backward_loops(dout, x, w, stride, pad, groups)

    def conv(**kw):
        args = {"x": x, "w": w, "b": b, **kw}
        return conv2d_loops(args["x"], args["w"], args["b"], stride, pad, groups)

    assert relative_error(dx, numerical_gradient(lambda v: conv(x=v), x.copy(), dout)) < TOL
    assert relative_error(dw, numerical_gradient(lambda v: conv(w=v), w.copy(), dout)) < TOL
    assert relative_error(db, numerical_gradient(lambda v: conv(b=v), b.copy(), dout)) < TOL


# ---------------------------------------------------------------------------
# max pooling
# ---------------------------------------------------------------------------


def test_maxpool_hand_computed_overlapping() -> None:
    x = np.array([[1.0, 2.0, 0.0], [0.0, 9.0, 3.0], [4.0, 0.0, 5.0]]).reshape(1, 1, 3, 3)
    out = maxpool2d_loops(x, size=2, stride=1)
    np.testing.assert_array_equal(out, [[[[9.0, 9.0], [9.0, 9.0]]]])
    # all four overlapping windows pick the centre: its gradient is the sum
    dout = np.array([1.0, 2.0, 3.0, 4.0]).reshape(1, 1, 2, 2)
    dx = maxpool2d_backward_loops(dout, x, size=2, stride=1)
    expected = np.zeros((1, 1, 3, 3))
    expected[0, 0, 1, 1] = 10.0
    np.testing.assert_array_equal(dx, expected)


def test_maxpool_alexnet_window_hand_computed() -> None:
    x = np.arange(25, dtype=np.float64).reshape(1, 1, 5, 5)
    # 3x3 windows at stride 2: the max is each window's bottom-right corner
    np.testing.assert_array_equal(maxpool2d_loops(x), [[[[12.0, 14.0], [22.0, 24.0]]]])


def test_maxpool_tie_sends_gradient_to_first_in_row_major_order() -> None:
    x = np.array([[1.0, 5.0], [5.0, 5.0]]).reshape(1, 1, 2, 2)
    dx = maxpool2d_backward_loops(np.array([[[[7.0]]]]), x, size=2, stride=2)
    np.testing.assert_array_equal(dx, [[[[0.0, 7.0], [0.0, 0.0]]]])
    # a constant window: everything to the top-left corner
    dx = maxpool2d_backward_loops(np.array([[[[1.0]]]]), np.zeros((1, 1, 2, 2)), 2, 2)
    np.testing.assert_array_equal(dx, [[[[1.0, 0.0], [0.0, 0.0]]]])


def test_maxpool_rectangular_size_and_stride() -> None:
    x = np.arange(24, dtype=np.float64).reshape(1, 1, 4, 6)
    out = maxpool2d_loops(x, size=(2, 3), stride=(2, 3))
    np.testing.assert_array_equal(out, [[[[8.0, 11.0], [20.0, 23.0]]]])


def test_maxpool_backward_matches_finite_differences() -> None:
    rng = _rng(5)
    # distinct values, at least 0.01 apart: no ties, so no kinks near x
    x = (rng.permutation(2 * 3 * 7 * 7).astype(np.float64) * 0.01).reshape(2, 3, 7, 7)
    out = maxpool2d_loops(x, 3, 2)
    dout = rng.standard_normal(out.shape)
    dx = maxpool2d_backward_loops(dout, x, 3, 2)
    num = numerical_gradient(lambda v: maxpool2d_loops(v, 3, 2), x.copy(), dout)
    assert relative_error(dx, num) < TOL


# ---------------------------------------------------------------------------
# LRN
# ---------------------------------------------------------------------------


def test_lrn_one_channel_is_x_over_k_plus_alpha_x2() -> None:
    x = _rng(6).standard_normal((3, 1, 2, 2)) * 10
    k, alpha, beta = 2.0, 1e-2, 0.75
    for n in (1, 3, 5):
        np.testing.assert_allclose(
            lrn_loops(x, n, k, alpha, beta), x / (k + alpha * x**2) ** beta, rtol=1e-14
        )


def test_lrn_n1_is_elementwise() -> None:
    x = _rng(7).standard_normal((2, 4, 3)) * 10
    np.testing.assert_allclose(
        lrn_loops(x, n=1, k=1.0, alpha=0.1, beta=0.5), x / np.sqrt(1.0 + 0.1 * x**2), rtol=1e-14
    )


@pytest.mark.parametrize(
    "n,expected",
    [
        # D = 1 + 0.5 * (sum of squares over the window), beta = 1; x = [1, 2, 3]
        (3, [1 / 3.5, 2 / 8.0, 3 / 7.5]),  # windows {0,1}, {0,1,2}, {1,2}
        (2, [1 / 1.5, 2 / 3.5, 3 / 7.5]),  # windows {0}, {0,1}, {1,2}   (c-1 .. c)
        (4, [1 / 3.5, 2 / 8.0, 3 / 8.0]),  # windows {0,1}, {0,1,2}, {0,1,2} (c-2 .. c+1)
    ],
)
def test_lrn_hand_computed_windows(n, expected) -> None:
    x = np.array([1.0, 2.0, 3.0]).reshape(1, 3, 1, 1)
    out = lrn_loops(x, n=n, k=1.0, alpha=0.5, beta=1.0)
    np.testing.assert_allclose(out.ravel(), expected, rtol=1e-14)


def test_lrn_paper_constants_on_unit_scale_is_nearly_2_pow_minus_075() -> None:
    x = _rng(8).standard_normal((1, 6, 2, 2))
    np.testing.assert_allclose(lrn_loops(x), x * 2.0**-0.75, rtol=1e-3)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("shape", [(2, 6, 2, 3), (3, 5)])
def test_lrn_backward_matches_finite_differences(n, shape) -> None:
    rng = _rng(9)
    x = rng.standard_normal(shape) * 3
    kw = {"n": n, "k": 1.5, "alpha": 0.2, "beta": 0.75}  # large alpha: cross terms matter
    dout = rng.standard_normal(shape)
    dx = lrn_backward_loops(dout, x, **kw)
    num = numerical_gradient(lambda v: lrn_loops(v, **kw), x.copy(), dout)
    assert relative_error(dx, num) < TOL


# ---------------------------------------------------------------------------
# dtypes, inputs untouched, errors
# ---------------------------------------------------------------------------


def test_dtypes_preserved_and_inputs_unchanged() -> None:
    rng = _rng(10)
    x = rng.standard_normal((1, 2, 5, 5)).astype(np.float32)
    w = rng.standard_normal((2, 2, 3, 3)).astype(np.float32)
    b = rng.standard_normal(2).astype(np.float32)
    x0, w0, b0 = x.copy(), w.copy(), b.copy()

    out = conv2d_loops(x, w, b)
    assert out.dtype == np.float32
    dx, dw, db = conv2d_backward_loops(np.ones_like(out), x, w)
    assert dx.dtype == dw.dtype == db.dtype == np.float32

    p = maxpool2d_loops(x)
    assert p.dtype == np.float32
    assert maxpool2d_backward_loops(np.ones_like(p), x).dtype == np.float32

    assert lrn_loops(x).dtype == np.float32
    assert lrn_backward_loops(np.ones_like(x), x).dtype == np.float32

    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(w, w0)
    np.testing.assert_array_equal(b, b0)


def test_wrong_ndim_raises() -> None:
    x3 = np.zeros((2, 5, 5))
    w = np.zeros((1, 2, 3, 3))
    with pytest.raises(ValueError, match="x"):
        conv2d_loops(x3, w, None)
    with pytest.raises(ValueError, match="w"):
        conv2d_loops(np.zeros((1, 2, 5, 5)), w[0], None)
    with pytest.raises(ValueError, match="dout"):
        conv2d_backward_loops(np.zeros((1, 3, 3)), np.zeros((1, 2, 5, 5)), w)
    with pytest.raises(ValueError, match="x"):
        maxpool2d_loops(x3)
    with pytest.raises(ValueError, match="dout"):
        maxpool2d_backward_loops(np.zeros((1, 2, 2)), np.zeros((1, 2, 5, 5)))
    with pytest.raises(ValueError, match="ndim"):
        lrn_loops(np.zeros(5))
    with pytest.raises(ValueError, match="ndim"):
        lrn_backward_loops(np.zeros(5), np.zeros(5))
