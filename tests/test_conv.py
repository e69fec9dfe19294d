"""conv2d_forward / conv2d_backward against the loop reference and finite differences."""

from __future__ import annotations

import numpy as np
from helpers import (
    GRAD_TOL,
    Snapshot,
    assert_close,
    assert_dtype,
    conv_cases,
    dtypes,
    fast,
    npy,
    on,
    pair,
    rand,
    seeds,
)
from hypothesis import given
from hypothesis import strategies as st

from minialexnet.functional import conv2d_backward, conv2d_forward
from minialexnet.functional.reference import conv2d_backward_loops, conv2d_loops
from minialexnet.gradcheck import check_function


def make(case, seed, dtype=np.float64):
    """x, w, b (b None when the case has no bias) as NumPy arrays."""
    x = rand(seed, case.x_shape, dtype)
    w = rand(seed + 1, case.w_shape, dtype, scale=0.5)
    b = rand(seed + 2, (case.c_out,), dtype) if case.bias else None
    return x, w, b


def f64(a):
    return None if a is None else npy(a).astype(np.float64)


# ----------------------------------------------------------------------------- forward
@fast(40)
@given(case=conv_cases(), dtype=dtypes, seed=seeds)
def test_forward_matches_loops_shape_dtype_and_leaves_inputs(device, case, dtype, seed):
    x, w, b = on(device, *make(case, seed, dtype))
    snap = Snapshot(x=x, w=w, b=b)
    out, _ = conv2d_forward(x, w, b, stride=case.stride, pad=case.pad, groups=case.groups)
    snap.check("by conv2d_forward")
    assert npy(out).shape == case.out_shape  # floor((H + 2 pad - K) / stride) + 1
    assert_dtype(out, dtype)
    expected = conv2d_loops(f64(x), f64(w), f64(b), case.stride, case.pad, case.groups)
    fan_in = case.w_shape[1] * case.kh * case.kw
    assert_close(out, expected, dtype, scale=fan_in)


def test_forward_known_values(device):
    """A hand-computed cross-correlation (no kernel flip), with padding and stride 2."""
    x = np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4)
    w = np.array([[[[1.0, 0.0], [0.0, -1.0]]]])  # x[i, j] - x[i+1, j+1] = -5 everywhere
    out, _ = conv2d_forward(*on(device, x, w), None)
    np.testing.assert_array_equal(npy(out), np.full((1, 1, 3, 3), -5.0))
    out, _ = conv2d_forward(*on(device, x, w), None, stride=2, pad=1)
    # padded 6x6, windows at rows/cols 0, 2, 4: top-left sees only x[0,0] * (-1)
    expected = np.array([[0.0, -2.0, 0.0], [-8.0, -5.0, 7.0], [0.0, 13.0, 15.0]])
    np.testing.assert_array_equal(npy(out)[0, 0], expected)


@fast(25)
@given(case=conv_cases(max_n=4), dtype=dtypes, seed=seeds, budget=st.integers(1, 4000))
def test_col_bytes_chunking_gives_same_result(device, case, dtype, seed, budget):
    x, w, b = on(device, *make(case, seed, dtype))
    kw = dict(stride=case.stride, pad=case.pad, groups=case.groups)
    out_ref, cache_ref = conv2d_forward(x, w, b, **kw)
    out, cache = conv2d_forward(x, w, b, **kw, col_bytes=budget)  # tiny: many chunks
    t = dict(rtol=1e-12, atol=1e-12) if dtype == np.float64 else dict(rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(npy(out), npy(out_ref), **t)
    dout = on(device, rand(seed + 3, case.out_shape, dtype))
    for got, want in zip(
        conv2d_backward(dout, cache), conv2d_backward(dout, cache_ref), strict=True
    ):
        if want is None:
            assert got is None
        else:
            np.testing.assert_allclose(npy(got), npy(want), **t)


@fast(15)
@given(case=conv_cases(max_n=3), seed=seeds)
def test_need_dx_false_skips_dx_and_keeps_dw_db(device, case, seed):
    x, w, b = on(device, *make(case, seed, np.float64))
    kw = dict(stride=case.stride, pad=case.pad, groups=case.groups)
    _, cache = conv2d_forward(x, w, b, **kw, col_bytes=2000)  # chunked, with kept columns
    dout = on(device, rand(seed + 3, case.out_shape))
    dx, dw, db = conv2d_backward(dout, cache, need_dx=False)
    _, dw_all, db_all = conv2d_backward(dout, cache)
    assert dx is None
    np.testing.assert_array_equal(npy(dw), npy(dw_all))
    assert (db is None) == (db_all is None)
    if db is not None:
        np.testing.assert_array_equal(npy(db), npy(db_all))


@fast(25)
@given(case=conv_cases(max_groups=1, bias=True), seed=seeds)
def test_groups_2_equals_two_separate_convs(device, case, seed):
    # double the channels of a groups=1 case, then split it into the two towers
    c_in, c_out = 2 * case.c_in, 2 * case.c_out
    x = rand(seed, (case.n, c_in, case.h, case.w))
    w = rand(seed + 1, (c_out, case.c_in, case.kh, case.kw))
    b = rand(seed + 2, (c_out,))
    kw = dict(stride=case.stride, pad=case.pad)
    out, cache = conv2d_forward(*on(device, x, w, b), groups=2, **kw)
    top, cache_top = conv2d_forward(
        *on(device, x[:, : case.c_in], w[: case.c_out], b[: case.c_out]), **kw
    )
    bot, cache_bot = conv2d_forward(
        *on(device, x[:, case.c_in :], w[case.c_out :], b[case.c_out :]), **kw
    )
    assert_close(out, np.concatenate([npy(top), npy(bot)], axis=1))

    dout = rand(seed + 3, npy(out).shape)
    dx, dw, db = conv2d_backward(on(device, dout), cache)
    dxt, dwt, dbt = conv2d_backward(on(device, dout[:, : case.c_out]), cache_top)
    dxb, dwb, dbb = conv2d_backward(on(device, dout[:, case.c_out :]), cache_bot)
    assert_close(dx, np.concatenate([npy(dxt), npy(dxb)], axis=1))
    assert_close(dw, np.concatenate([npy(dwt), npy(dwb)], axis=0))
    assert_close(db, np.concatenate([npy(dbt), npy(dbb)], axis=0))


def test_bias_none(device):
    x, w = rand(0, (2, 3, 5, 5)), rand(1, (4, 3, 3, 3))
    b0 = np.zeros(4)
    out_none, cache = conv2d_forward(*on(device, x, w), None, pad=1)
    out_zero, _ = conv2d_forward(*on(device, x, w, b0), pad=1)
    assert_close(out_none, out_zero)
    dout = on(device, rand(2, npy(out_none).shape))
    dx, dw, db = conv2d_backward(dout, cache)
    assert db is None
    ex, ew, _ = conv2d_backward_loops(dout, x, w, pad=1, has_bias=False)
    assert_close(dx, ex)
    assert_close(dw, ew)


def test_non_contiguous_input(device):
    x = rand(0, (2, 3, 7, 6))
    w = rand(1, (2, 3, 3, 3))
    xt = x.transpose(0, 1, 3, 2)[:, :, ::-1]  # a strided, reversed view
    out, _ = conv2d_forward(*on(device, xt, w), None, stride=(2, 1), pad=(0, 1))
    assert_close(out, conv2d_loops(np.ascontiguousarray(xt), w, None, (2, 1), (0, 1)))


# ----------------------------------------------------------------------------- backward
@fast(25)
@given(case=conv_cases(max_n=2, max_cpg=2, max_groups=2, max_k=3, max_extra=3), seed=seeds)
def test_backward_matches_finite_differences(device, case, seed):
    x, w, b = on(device, *make(case, seed))
    kw = dict(stride=case.stride, pad=case.pad, groups=case.groups)
    if case.bias:
        errs = check_function(
            lambda x, w, b: conv2d_forward(x, w, b, **kw),
            conv2d_backward,
            {"x": x, "w": w, "b": b},
            seed=seed,
        )
        assert set(errs) == {"x", "w", "b"}
    else:
        errs = check_function(
            lambda x, w: conv2d_forward(x, w, None, **kw),
            lambda d, c: conv2d_backward(d, c)[:2],
            {"x": x, "w": w},
            seed=seed,
        )
    assert max(errs.values()) < GRAD_TOL, errs


@fast(30)
@given(case=conv_cases(max_n=3, max_cpg=3, max_k=5, max_extra=8), dtype=dtypes, seed=seeds)
def test_backward_matches_loops_dtype_and_leaves_inputs(device, case, dtype, seed):
    x, w, b = on(device, *make(case, seed, dtype))
    out, cache = conv2d_forward(x, w, b, stride=case.stride, pad=case.pad, groups=case.groups)
    dout = on(device, rand(seed + 3, case.out_shape, dtype))
    snap = Snapshot(x=x, w=w, b=b, dout=dout, out=out)
    dx, dw, db = conv2d_backward(dout, cache)
    snap.check("by conv2d_backward")
    assert npy(dx).shape == case.x_shape and npy(dw).shape == case.w_shape
    assert_dtype(dx, dtype, "dx")
    assert_dtype(dw, dtype, "dw")
    ex, ew, eb = conv2d_backward_loops(
        f64(dout), f64(x), f64(w), case.stride, case.pad, case.groups, has_bias=case.bias
    )
    n_out = case.out_shape[0] * case.out_shape[2] * case.out_shape[3]
    assert_close(dx, ex, dtype, scale=case.c_out * case.kh * case.kw)
    assert_close(dw, ew, dtype, scale=n_out)
    if case.bias:
        assert npy(db).shape == (case.c_out,)
        assert_dtype(db, dtype, "db")
        assert_close(db, eb, dtype, scale=n_out)
    else:
        assert db is None


def test_gradient_dtypes_follow_their_arrays(device):
    """Mixed precision: each gradient has the dtype of the thing it is the gradient of."""
    x = rand(0, (2, 2, 5, 5), np.float32)
    w = rand(1, (3, 2, 3, 3), np.float64)
    b = rand(2, (3,), np.float64)
    out, cache = conv2d_forward(*on(device, x, w, b))
    assert_dtype(out, np.float32)
    for dout_dtype in (np.float32, np.float64):
        dout = on(device, rand(3, npy(out).shape, dout_dtype))
        dx, dw, db = conv2d_backward(dout, cache)
        assert_dtype(dx, np.float32, "dx")
        assert_dtype(dw, np.float64, "dw")
        assert_dtype(db, np.float64, "db")


# ----------------------------------------------------------------------------- im2col
@fast(30)
@given(case=conv_cases(), seed=seeds)
def test_col2im_is_the_exact_adjoint_of_im2col(device, case, seed):
    """<im2col(x), y> == <x, col2im(y)> for every x and y: col2im is im2col's transpose."""
    from minialexnet.functional.conv import col2im, im2col, space_to_depth

    x = on(device, rand(seed, case.x_shape, np.float64))
    kh, kw = case.w_shape[2:]
    out, _ = conv2d_forward(
        x,
        on(device, rand(seed + 1, case.w_shape, np.float64)),
        None,
        case.stride,
        case.pad,
        case.groups,
    )
    xs = space_to_depth(x, pair(case.pad), pair(case.stride))
    col = im2col(xs, (kh, kw), out.shape[2:])
    y = on(device, rand(seed + 2, tuple(col.shape), np.float64))
    back = col2im(y, device.xp.zeros_like(xs))
    lhs = float((npy(col) * npy(y)).sum())
    rhs = float((npy(xs) * npy(back)).sum())
    assert abs(lhs - rhs) <= 1e-10 * max(1.0, abs(lhs))


def test_backward_twice_on_one_cache_gives_the_same_gradients(device):
    """backward takes the kept columns out of the cache; a second call must rebuild them."""
    x = on(device, rand(0, (2, 4, 7, 7), np.float64))
    w = on(device, rand(1, (6, 2, 3, 3), np.float64))
    b = on(device, rand(2, (6,), np.float64))
    out, cache = conv2d_forward(x, w, b, 2, 1, 2)
    dout = on(device, rand(3, tuple(out.shape), np.float64))
    first = [npy(g) for g in conv2d_backward(dout, cache)]
    second = [npy(g) for g in conv2d_backward(dout, cache)]
    for a, b_ in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b_)
