"""relu, tanh, dropout and linear: formulas, finite differences, dtypes, untouched inputs."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import (
    GRAD_TOL,
    Snapshot,
    assert_close,
    assert_dtype,
    away_from_zero,
    dtypes,
    fast,
    npy,
    on,
    rand,
    seeds,
)
from hypothesis import given
from hypothesis import strategies as st

from minialexnet.functional import (
    dropout_backward,
    dropout_forward,
    linear_backward,
    linear_forward,
    relu_backward,
    relu_forward,
    tanh_backward,
    tanh_forward,
)
from minialexnet.gradcheck import check_function

shapes = st.lists(st.integers(1, 5), min_size=1, max_size=4).map(tuple)
small_shapes = st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple)
drop_p = st.sampled_from([0.0, 0.1, 0.5, 0.9]) | st.floats(0.0, 0.95)


# ----------------------------------------------------------------------------- relu
@fast(30)
@given(shape=shapes, dtype=dtypes, seed=seeds)
def test_relu_forward_backward(device, shape, dtype, seed):
    x = on(device, away_from_zero(seed, shape, dtype, lo=1e-3))
    snap = Snapshot(x=x)
    out, cache = relu_forward(x)
    snap.check("by relu_forward")
    assert_dtype(out, dtype)
    np.testing.assert_array_equal(npy(out), np.maximum(npy(x), 0))
    dout = on(device, rand(seed + 1, shape, dtype))
    snap = Snapshot(x=x, out=out, dout=dout)
    dx = relu_backward(dout, cache)
    snap.check("by relu_backward")
    assert_dtype(dx, dtype, "dx")
    np.testing.assert_array_equal(npy(dx), np.where(npy(x) > 0, npy(dout), 0))


@fast(25)
@given(shape=small_shapes, seed=seeds)
def test_relu_finite_differences(device, shape, seed):
    x = on(device, away_from_zero(seed, shape, lo=1e-3))
    errs = check_function(relu_forward, relu_backward, {"x": x}, seed=seed)
    assert errs["x"] < GRAD_TOL, errs


# ----------------------------------------------------------------------------- tanh
@fast(30)
@given(shape=shapes, dtype=dtypes, seed=seeds)
def test_tanh_forward_backward(device, shape, dtype, seed):
    x = on(device, rand(seed, shape, dtype, scale=2.0))
    snap = Snapshot(x=x)
    out, cache = tanh_forward(x)
    snap.check("by tanh_forward")
    assert_dtype(out, dtype)
    assert_close(out, np.tanh(npy(x).astype(np.float64)), dtype)
    dout = on(device, rand(seed + 1, shape, dtype))
    snap = Snapshot(x=x, out=out, dout=dout)
    dx = tanh_backward(dout, cache)
    snap.check("by tanh_backward")
    assert_dtype(dx, dtype, "dx")
    t = np.tanh(npy(x).astype(np.float64))
    assert_close(dx, npy(dout) * (1 - t**2), dtype)


@fast(25)
@given(shape=small_shapes, seed=seeds)
def test_tanh_finite_differences(device, shape, seed):
    x = on(device, rand(seed, shape, scale=2.0))
    errs = check_function(tanh_forward, tanh_backward, {"x": x}, seed=seed)
    assert errs["x"] < GRAD_TOL, errs


def test_tanh_saturates_without_nan(device):
    x = on(device, np.array([-1e4, -50.0, 0.0, 50.0, 1e4]))
    out, cache = tanh_forward(x)
    np.testing.assert_array_equal(npy(out), [-1.0, -1.0, 0.0, 1.0, 1.0])
    dx = tanh_backward(on(device, np.ones(5)), cache)
    assert np.all(np.isfinite(npy(dx)))


# ----------------------------------------------------------------------------- dropout
def keep_mask(device, seed, shape, p):
    """The contract's mask: rng.random(x.shape) >= p, from a generator seeded like the op's."""
    return npy(device.rng(seed).random(shape)) >= p


@fast(30)
@given(
    shape=shapes, p=drop_p, dtype=dtypes, seed=seeds, mode=st.sampled_from(["inverted", "paper"])
)
def test_dropout_train_scaling_and_backward_use_one_mask(device, shape, p, dtype, seed, mode):
    x = on(device, away_from_zero(seed, shape, dtype))
    snap = Snapshot(x=x)
    out, cache = dropout_forward(x, p, device.rng(seed), train=True, mode=mode)
    snap.check("by dropout_forward")
    assert_dtype(out, dtype)
    mask = npy(out) != 0  # x has no zeros: the kept units are the non-zero outputs
    scale = 1.0 / (1.0 - p) if mode == "inverted" else 1.0
    assert_close(out, np.where(mask, npy(x).astype(np.float64) * scale, 0.0), dtype)
    if p == 0:
        assert mask.all()

    dout = on(device, away_from_zero(seed + 1, shape, dtype))
    snap = Snapshot(x=x, out=out, dout=dout)
    dx = dropout_backward(dout, cache)
    snap.check("by dropout_backward")
    assert_dtype(dx, dtype, "dx")
    # the same mask and factor as the forward pass
    assert_close(dx, np.where(mask, npy(dout).astype(np.float64) * scale, 0.0), dtype)


@fast(25)
@given(shape=shapes, p=drop_p, dtype=dtypes, seed=seeds)
def test_dropout_mask_is_rng_random_ge_p(device, shape, p, dtype, seed):
    """The contract fixes the mask: keep = rng.random(x.shape) >= p (same seed, same mask)."""
    x = on(device, away_from_zero(seed, shape, dtype))
    out, _ = dropout_forward(x, p, device.rng(seed), train=True)
    np.testing.assert_array_equal(npy(out) != 0, keep_mask(device, seed, shape, p))


@fast(20)
@given(shape=shapes, dtype=dtypes, seed=seeds)
def test_dropout_p0_is_identity(device, shape, dtype, seed):
    x = on(device, rand(seed, shape, dtype))
    for mode in ("inverted", "paper"):
        out, cache = dropout_forward(x, 0.0, device.rng(seed), train=True, mode=mode)
        np.testing.assert_array_equal(npy(out), npy(x))
        dout = on(device, rand(seed + 1, shape, dtype))
        np.testing.assert_array_equal(npy(dropout_backward(dout, cache)), npy(dout))


@fast(20)
@given(shape=shapes, p=drop_p, dtype=dtypes, seed=seeds)
def test_dropout_eval(device, shape, p, dtype, seed):
    """Eval: inverted is the identity, paper multiplies by (1 - p); rng may be None."""
    x = on(device, rand(seed, shape, dtype))
    dout = on(device, rand(seed + 1, shape, dtype))
    out, cache = dropout_forward(x, p, None, train=False)  # default mode: inverted
    np.testing.assert_array_equal(npy(out), npy(x))
    np.testing.assert_array_equal(npy(dropout_backward(dout, cache)), npy(dout))
    out, cache = dropout_forward(x, p, None, train=False, mode="inverted")
    np.testing.assert_array_equal(npy(out), npy(x))
    out, cache = dropout_forward(x, p, None, train=False, mode="paper")
    assert_dtype(out, dtype)
    assert_close(out, npy(x).astype(np.float64) * (1 - p), dtype)
    assert_close(dropout_backward(dout, cache), npy(dout).astype(np.float64) * (1 - p), dtype)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_statistics(device, p):
    """Fraction kept ~ 1 - p; inverted scaling keeps the mean; paper train/eval agree on it."""
    x = on(device, np.ones((400, 500)))
    out, _ = dropout_forward(x, p, device.rng(123), train=True)
    out = npy(out)
    kept = np.mean(out != 0)
    assert abs(kept - (1 - p)) < 0.01, kept  # std of the fraction is < 0.0013
    assert abs(out.mean() - 1.0) < 0.03, out.mean()
    paper_train, _ = dropout_forward(x, p, device.rng(123), train=True, mode="paper")
    paper_eval, _ = dropout_forward(x, p, None, train=False, mode="paper")
    assert abs(npy(paper_train).mean() - npy(paper_eval).mean()) < 0.01


def test_dropout_same_seed_same_mask_other_seed_other_mask(device):
    x = on(device, np.ones((50, 40)))
    a, _ = dropout_forward(x, 0.5, device.rng(7), train=True)
    b, _ = dropout_forward(x, 0.5, device.rng(7), train=True)
    c, _ = dropout_forward(x, 0.5, device.rng(8), train=True)
    np.testing.assert_array_equal(npy(a), npy(b))
    assert not np.array_equal(npy(a), npy(c))
    # the generator advances: two draws from one generator differ
    rng = device.rng(7)
    d, _ = dropout_forward(x, 0.5, rng, train=True)
    e, _ = dropout_forward(x, 0.5, rng, train=True)
    assert not np.array_equal(npy(d), npy(e))


@fast(20)
@given(shape=small_shapes, p=drop_p, seed=seeds, mode=st.sampled_from(["inverted", "paper"]))
def test_dropout_finite_differences(device, shape, p, seed, mode):
    x = on(device, rand(seed, shape))
    # a freshly seeded generator per call: every forward draws the same mask
    errs = check_function(
        lambda x: dropout_forward(x, p, device.rng(seed), train=True, mode=mode),
        dropout_backward,
        {"x": x},
        seed=seed,
    )
    assert errs["x"] < GRAD_TOL, errs


# ----------------------------------------------------------------------------- linear
lead_shapes = st.lists(st.integers(1, 4), min_size=0, max_size=2).map(tuple)


@fast(30)
@given(
    lead=lead_shapes,
    fin=st.integers(1, 8),
    fout=st.integers(1, 8),
    bias=st.booleans(),
    dtype=dtypes,
    seed=seeds,
)
def test_linear_forward_backward(device, lead, fin, fout, bias, dtype, seed):
    x = on(device, rand(seed, lead + (fin,), dtype))
    w = on(device, rand(seed + 1, (fout, fin), dtype))
    b = on(device, rand(seed + 2, (fout,), dtype)) if bias else None
    snap = Snapshot(x=x, w=w, b=b)
    out, cache = linear_forward(x, w, b)
    snap.check("by linear_forward")
    assert npy(out).shape == lead + (fout,)
    assert_dtype(out, dtype)
    x64, w64 = npy(x).astype(np.float64), npy(w).astype(np.float64)
    expected = x64 @ w64.T + (0 if b is None else npy(b).astype(np.float64))
    assert_close(out, expected, dtype, scale=fin)

    dout = on(device, rand(seed + 3, lead + (fout,), dtype))
    snap = Snapshot(x=x, w=w, b=b, out=out, dout=dout)
    dx, dw, db = linear_backward(dout, cache)
    snap.check("by linear_backward")
    d64 = npy(dout).astype(np.float64).reshape(-1, fout)
    assert_dtype(dx, dtype, "dx")
    assert_dtype(dw, dtype, "dw")
    assert_close(dx, (d64 @ w64).reshape(lead + (fin,)), dtype, scale=fout)
    n_rows = d64.shape[0]
    assert_close(dw, d64.T @ x64.reshape(-1, fin), dtype, scale=n_rows)
    if bias:
        assert_dtype(db, dtype, "db")
        assert_close(db, d64.sum(axis=0), dtype, scale=n_rows)
    else:
        assert db is None


@fast(25)
@given(
    lead=lead_shapes, fin=st.integers(1, 6), fout=st.integers(1, 6), bias=st.booleans(), seed=seeds
)
def test_linear_finite_differences(device, lead, fin, fout, bias, seed):
    x = on(device, rand(seed, lead + (fin,)))
    w = on(device, rand(seed + 1, (fout, fin)))
    if bias:
        b = on(device, rand(seed + 2, (fout,)))
        errs = check_function(linear_forward, linear_backward, {"x": x, "w": w, "b": b}, seed=seed)
        assert set(errs) == {"x", "w", "b"}
    else:
        errs = check_function(
            lambda x, w: linear_forward(x, w, None),
            lambda d, c: linear_backward(d, c)[:2],
            {"x": x, "w": w},
            seed=seed,
        )
    assert max(errs.values()) < GRAD_TOL, errs


# ----------------------------------------------------------------------------- dtypes
@pytest.mark.parametrize("op", ["relu", "tanh", "dropout", "dropout-eval", "linear"])
def test_dx_has_x_dtype_whatever_dout_dtype(device, op):
    """A float64 dout for a float32 forward: each gradient keeps its own array's dtype."""
    x = on(device, away_from_zero(0, (3, 4), np.float32))
    if op == "linear":
        w, b = on(device, rand(1, (2, 4), np.float32), rand(2, (2,), np.float32))
        out, cache = linear_forward(x, w, b)
        dx, dw, db = linear_backward(on(device, rand(3, (3, 2))), cache)
        assert_dtype(dw, np.float32, "dw")
        assert_dtype(db, np.float32, "db")
    else:
        fwd, bwd = {
            "relu": (relu_forward, relu_backward),
            "tanh": (tanh_forward, tanh_backward),
            "dropout": (lambda x: dropout_forward(x, 0.5, device.rng(0)), dropout_backward),
            "dropout-eval": (
                lambda x: dropout_forward(x, 0.5, None, train=False, mode="paper"),
                dropout_backward,
            ),
        }[op]
        out, cache = fwd(x)
        dx = bwd(on(device, rand(3, (3, 4))), cache)
    assert_dtype(out, np.float32)
    assert_dtype(dx, np.float32, "dx")
