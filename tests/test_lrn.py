"""lrn_forward / lrn_backward: paper formula, loop reference, finite differences, PyTorch form."""

from __future__ import annotations

import numpy as np
from helpers import (
    GRAD_TOL,
    Snapshot,
    assert_close,
    assert_dtype,
    dtypes,
    fast,
    lrn_alpha,
    lrn_beta,
    lrn_k,
    lrn_n,
    npy,
    on,
    rand,
    seeds,
)
from hypothesis import given
from hypothesis import strategies as st

from minialexnet.functional import lrn_backward, lrn_forward
from minialexnet.functional.reference import lrn_backward_loops, lrn_loops
from minialexnet.gradcheck import check_function

# x of ndim 2 .. 5 with the channels on axis 1; C sometimes smaller than n
shapes = st.lists(st.integers(1, 4), min_size=0, max_size=3).flatmap(
    lambda rest: st.tuples(st.integers(1, 3), st.integers(1, 9)).map(lambda nc: nc + tuple(rest))
)
small_shapes = st.lists(st.integers(1, 3), min_size=0, max_size=2).flatmap(
    lambda rest: st.tuples(st.integers(1, 2), st.integers(1, 7)).map(lambda nc: nc + tuple(rest))
)


def paper_formula(x, n, k, alpha, beta):
    """b_c = a_c / (k + alpha * sum_{c' = c - n//2}^{c + (n-1)//2} a_{c'}^2)^beta, clipped."""
    x = np.asarray(x, dtype=np.float64)
    c_total = x.shape[1]
    out = np.empty_like(x)
    for c in range(c_total):
        lo, hi = max(0, c - n // 2), min(c_total - 1, c + (n - 1) // 2)
        s = np.sum(x[:, lo : hi + 1] ** 2, axis=1)
        out[:, c] = x[:, c] / (k + alpha * s) ** beta
    return out


def torch_local_response_norm(x, size, alpha, beta, k):
    """torch.nn.functional.local_response_norm, transcribed: pad the squares with size//2
    zero channels in front and (size-1)//2 behind, AVERAGE over `size` channels (padding
    counted), then x / (k + alpha * average)^beta."""
    x = np.asarray(x, dtype=np.float64)
    c_total = x.shape[1]
    sq = np.moveaxis(x**2, 1, 0)
    padded = np.concatenate(
        [np.zeros((size // 2,) + sq.shape[1:]), sq, np.zeros(((size - 1) // 2,) + sq.shape[1:])]
    )
    avg = np.stack([padded[c : c + size].sum(axis=0) / size for c in range(c_total)])
    return x / (k + alpha * np.moveaxis(avg, 0, 1)) ** beta


# ----------------------------------------------------------------------------- forward
@fast(40)
@given(shape=shapes, n=lrn_n, k=lrn_k, alpha=lrn_alpha, beta=lrn_beta, dtype=dtypes, seed=seeds)
def test_forward_matches_formula_and_loops(device, shape, n, k, alpha, beta, dtype, seed):
    x = on(device, rand(seed, shape, dtype, scale=2.0))
    snap = Snapshot(x=x)
    out, _ = lrn_forward(x, n=n, k=k, alpha=alpha, beta=beta)
    snap.check("by lrn_forward")
    assert npy(out).shape == tuple(shape)
    assert_dtype(out, dtype)
    x64 = npy(x).astype(np.float64)
    assert_close(out, paper_formula(x64, n, k, alpha, beta), dtype)
    assert_close(out, lrn_loops(x64, n, k, alpha, beta), dtype)


@fast(30)
@given(shape=shapes, n=lrn_n, k=lrn_k, alpha=lrn_alpha, beta=lrn_beta, seed=seeds)
def test_pytorch_convention_alpha_times_n(device, shape, n, k, alpha, beta, seed):
    """The paper's alpha is PyTorch's alpha / size: lrn(n, alpha) == torch_lrn(n, n * alpha)."""
    x = rand(seed, shape, scale=2.0)
    out, _ = lrn_forward(on(device, x), n=n, k=k, alpha=alpha, beta=beta)
    assert_close(out, torch_local_response_norm(x, size=n, alpha=n * alpha, beta=beta, k=k))


def test_paper_hyperparameters_window_off_by_one_is_visible(device):
    """With large alpha a window shifted by one channel changes the output a lot."""
    x = rand(0, (2, 8, 3, 3), scale=3.0)
    out, _ = lrn_forward(on(device, x), n=5, k=2.0, alpha=0.5, beta=0.75)
    assert_close(out, paper_formula(x, 5, 2.0, 0.5, 0.75))
    for wrong_n in (4, 6):
        assert not np.allclose(npy(out), paper_formula(x, wrong_n, 2.0, 0.5, 0.75), rtol=1e-3)


@fast(20)
@given(shape=shapes, k=lrn_k, alpha=lrn_alpha, beta=lrn_beta, dtype=dtypes, seed=seeds)
def test_n_equal_1_normalises_each_channel_by_itself(device, shape, k, alpha, beta, dtype, seed):
    x = rand(seed, shape, dtype)
    out, _ = lrn_forward(on(device, x), n=1, k=k, alpha=alpha, beta=beta)
    x64 = x.astype(np.float64)
    assert_close(out, x64 / (k + alpha * x64**2) ** beta, dtype)


@fast(20)
@given(n=lrn_n, k=lrn_k, alpha=lrn_alpha, beta=lrn_beta, seed=seeds)
def test_single_channel(device, n, k, alpha, beta, seed):
    """One channel: the window is that channel alone, whatever n."""
    x = rand(seed, (3, 1, 4, 2))
    out, cache = lrn_forward(on(device, x), n=n, k=k, alpha=alpha, beta=beta)
    assert_close(out, x / (k + alpha * x**2) ** beta)
    errs = check_function(
        lambda x: lrn_forward(x, n=n, k=k, alpha=alpha, beta=beta),
        lrn_backward,
        {"x": on(device, x)},
        seed=seed,
    )
    assert errs["x"] < GRAD_TOL, errs


def test_defaults_are_the_papers(device):
    """n=5, k=2, alpha=1e-4, beta=0.75 (section 3.3), on a raw-pixel-scale input."""
    x = rand(0, (2, 7, 3, 3), scale=100.0)
    out, _ = lrn_forward(on(device, x))
    assert_close(out, paper_formula(x, 5, 2.0, 1e-4, 0.75))


# ----------------------------------------------------------------------------- backward
@fast(30)
@given(shape=small_shapes, n=lrn_n, k=lrn_k, alpha=lrn_alpha, beta=lrn_beta, seed=seeds)
def test_backward_matches_finite_differences(device, shape, n, k, alpha, beta, seed):
    x = on(device, rand(seed, shape, scale=2.0))
    errs = check_function(
        lambda x: lrn_forward(x, n=n, k=k, alpha=alpha, beta=beta),
        lrn_backward,
        {"x": x},
        seed=seed,
    )
    assert errs["x"] < GRAD_TOL, errs


@fast(30)
@given(shape=shapes, n=lrn_n, k=lrn_k, alpha=lrn_alpha, beta=lrn_beta, dtype=dtypes, seed=seeds)
def test_backward_matches_loops_dtype_and_leaves_inputs(
    device, shape, n, k, alpha, beta, dtype, seed
):
    x = on(device, rand(seed, shape, dtype, scale=2.0))
    out, cache = lrn_forward(x, n=n, k=k, alpha=alpha, beta=beta)
    dout = on(device, rand(seed + 1, shape, dtype))
    snap = Snapshot(x=x, out=out, dout=dout)
    dx = lrn_backward(dout, cache)
    snap.check("by lrn_backward")
    assert npy(dx).shape == tuple(shape)
    assert_dtype(dx, dtype, "dx")
    expected = lrn_backward_loops(
        npy(dout).astype(np.float64), npy(x).astype(np.float64), n, k, alpha, beta
    )
    assert_close(dx, expected, dtype, scale=4)


def test_dx_has_x_dtype_whatever_dout_dtype(device):
    x = on(device, rand(0, (2, 6, 3, 3), np.float32))
    out, cache = lrn_forward(x, n=3, alpha=0.1)
    dx = lrn_backward(on(device, rand(1, npy(out).shape, np.float64)), cache)
    assert_dtype(dx, np.float32, "dx")
