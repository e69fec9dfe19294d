"""softmax, softmax_cross_entropy and multiclass_hinge: direct formulas and finite differences."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import (
    GRAD_TOL,
    FakeCupy,
    Snapshot,
    assert_close,
    assert_dtype,
    dtypes,
    fast,
    npy,
    on,
    seeds,
)
from hypothesis import assume, given
from hypothesis import strategies as st

from minialexnet.functional import multiclass_hinge, softmax, softmax_cross_entropy
from minialexnet.gradcheck import numerical_gradient, relative_error

batch = st.integers(1, 6)
classes = st.integers(2, 7)
margins = st.sampled_from([1.0, 0.5, 2.0]) | st.floats(0.1, 3.0)


def problem(seed, n, c, dtype=np.float64, scale=2.0):
    rng = np.random.default_rng(seed)
    logits = (scale * rng.standard_normal((n, c))).astype(dtype)
    labels = rng.integers(0, c, n)
    return logits, labels


def log_softmax64(z):
    z = np.asarray(z, dtype=np.float64)
    m = z.max(axis=-1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=-1, keepdims=True))


def hinge_formula(s, y, margin):
    s = np.asarray(s, dtype=np.float64)
    n = s.shape[0]
    m = s - s[np.arange(n), y][:, None] + margin
    m[np.arange(n), y] = 0.0
    loss = np.maximum(m, 0).sum() / n
    ind = (m > 0).astype(np.float64)
    ind[np.arange(n), y] = -ind.sum(axis=1)
    return loss, ind / n


# ----------------------------------------------------------------------------- softmax
@fast(30)
@given(
    lead=st.lists(st.integers(1, 4), min_size=0, max_size=2).map(tuple),
    c=classes,
    dtype=dtypes,
    seed=seeds,
)
def test_softmax_rows_sum_to_one(device, lead, c, dtype, seed):
    z = on(device, (3 * np.random.default_rng(seed).standard_normal(lead + (c,))).astype(dtype))
    snap = Snapshot(z=z)
    p = softmax(z)
    snap.check("by softmax")
    assert_dtype(p, dtype)
    assert npy(p).shape == lead + (c,)
    assert np.all(npy(p) >= 0)
    assert_close(npy(p).astype(np.float64).sum(axis=-1), np.ones(lead), dtype)
    assert_close(p, np.exp(log_softmax64(npy(z))), dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_stable_for_huge_logits(device, dtype):
    z = on(device, np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4], [1e4, 1e4, -1e4]], dtype=dtype))
    p = npy(softmax(z))
    assert np.all(np.isfinite(p))
    np.testing.assert_allclose(p, [[1, 0, 0], [1 / 3, 1 / 3, 1 / 3], [0.5, 0.5, 0]], rtol=1e-6)


# ----------------------------------------------------------------------------- cross-entropy
@fast(30)
@given(n=batch, c=classes, dtype=dtypes, seed=seeds)
def test_cross_entropy_is_mean_negative_log_prob(device, n, c, dtype, seed):
    z, y = problem(seed, n, c, dtype)
    z, y = on(device, z, y)
    snap = Snapshot(z=z, y=y)
    loss, dz = softmax_cross_entropy(z, y)
    snap.check("by softmax_cross_entropy")
    assert npy(loss).shape == ()
    assert_dtype(loss, dtype, "loss")
    assert_dtype(dz, dtype, "dlogits")
    lp = log_softmax64(npy(z))
    y_np = npy(y)
    assert_close(float(loss), -lp[np.arange(n), y_np].mean(), dtype)
    onehot = np.eye(c)[y_np]
    assert_close(dz, (np.exp(lp) - onehot) / n, dtype)


@fast(30)
@given(n=batch, c=classes, seed=seeds)
def test_cross_entropy_gradient_finite_differences(device, n, c, seed):
    z, y = problem(seed, n, c)
    z, y = on(device, z, y)
    _, dz = softmax_cross_entropy(z, y)
    num = numerical_gradient(lambda v: softmax_cross_entropy(v, y)[0], z.copy(), 1.0)
    assert relative_error(dz, num) < GRAD_TOL


@fast(20)
@given(n=batch, c=st.integers(2, 1000))
def test_cross_entropy_of_uniform_logits_is_log_c(device, n, c):
    z = on(device, np.full((n, c), 3.7))
    y = on(device, np.arange(n) % c)
    loss, _ = softmax_cross_entropy(z, y)
    np.testing.assert_allclose(float(loss), np.log(c), rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_stable_for_huge_logits(device, dtype):
    z = np.array([[1e4, -1e4, 0.0], [1e4, -1e4, 0.0], [-1e4, 1e4, 5e3]], dtype=dtype)
    y = np.array([0, 1, 2])
    loss, dz = softmax_cross_entropy(*on(device, z, y))
    assert np.isfinite(float(loss)) and np.all(np.isfinite(npy(dz)))
    expected = (0.0 + 2e4 + 5e3) / 3  # -log p_y = max - z_y (other terms underflow)
    np.testing.assert_allclose(float(loss), expected, rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_labels_of_any_integer_dtype(device, dtype):
    z, y = problem(0, 4, 3, dtype)
    ref, _ = softmax_cross_entropy(*on(device, z, y))
    for ydt in (np.int32, np.int64, np.uint8):
        loss, _ = softmax_cross_entropy(*on(device, z, y.astype(ydt)))
        assert float(loss) == float(ref)


# ----------------------------------------------------------------------------- hinge
@fast(30)
@given(n=batch, c=classes, margin=margins, dtype=dtypes, seed=seeds)
def test_hinge_equals_formula(device, n, c, margin, dtype, seed):
    s, y = problem(seed, n, c, dtype)
    m = s.astype(np.float64) - s[np.arange(n), y][:, None] + margin
    m[np.arange(n), y] = 1.0
    assume(np.abs(m).min() > 1e-3)  # away from the kink: the indicator is unambiguous
    s_d, y_d = on(device, s, y)
    snap = Snapshot(s=s_d, y=y_d)
    loss, ds = multiclass_hinge(s_d, y_d, margin=margin)
    snap.check("by multiclass_hinge")
    assert npy(loss).shape == ()
    assert_dtype(loss, dtype, "loss")
    assert_dtype(ds, dtype, "dscores")
    want_loss, want_ds = hinge_formula(s, y, margin)
    assert_close(float(loss), want_loss, dtype, scale=c)
    assert_close(ds, want_ds, dtype)


@fast(30)
@given(n=batch, c=classes, margin=margins, seed=seeds)
def test_hinge_gradient_finite_differences(device, n, c, margin, seed):
    s, y = problem(seed, n, c)
    m = s - s[np.arange(n), y][:, None] + margin
    m[np.arange(n), y] = 1.0
    assume(np.abs(m).min() > 1e-3)
    s, y = on(device, s, y)
    _, ds = multiclass_hinge(s, y, margin=margin)
    num = numerical_gradient(lambda v: multiclass_hinge(v, y, margin=margin)[0], s.copy(), 1.0)
    assert relative_error(ds, num) < GRAD_TOL


def test_hinge_default_margin_and_strict_indicator(device):
    # row 0: s_1 - s_0 + 1 = 0 exactly -> not counted (strict); row 1: margins 1.5 and 0.5
    s = np.array([[2.0, 1.0, -5.0], [0.0, 0.5, -0.5]])
    y = np.array([0, 0])
    loss, ds = multiclass_hinge(*on(device, s, y))
    np.testing.assert_allclose(float(loss), (0.0 + 1.5 + 0.5) / 2)
    np.testing.assert_allclose(npy(ds), [[0, 0, 0], [-1.0, 0.5, 0.5]])
    zero, dzero = multiclass_hinge(*on(device, np.array([[10.0, 0.0, 0.0]]), np.array([0])))
    assert float(zero) == 0.0 and not np.any(npy(dzero))


@pytest.mark.parametrize("loss", [softmax_cross_entropy, multiclass_hinge, softmax])
def test_losses_work_on_the_gpu_of_the_scores_not_the_current_one(loss, monkeypatch):
    """``--gpus 1``: the logits are on GPU 1 while GPU 0 is current. CuPy would put the
    host labels (``xp.asarray``), the row indices and every result on GPU 0; each loss
    enters the scores' GPU. Checked with a stand-in CuPy that records the current GPU."""
    fake = FakeCupy(gpus=2).install(monkeypatch)
    s, y = problem(0, 4, 5)
    if loss is softmax:
        value, grad = None, loss(fake.on(1, s))
    else:
        value, grad = loss(fake.on(1, s), y)
        assert ("asarray", 1) in fake.calls, "the host labels move to the scores' GPU"
    assert fake.current == 0, "the current GPU is given back"
    assert fake.calls and {gpu for _, gpu in fake.calls} == {1}, fake.calls
    assert grad.device.id == 1
    if loss is softmax_cross_entropy:
        assert_close(value, -log_softmax64(s)[np.arange(4), y].mean())
    elif loss is multiclass_hinge:
        assert_close(value, hinge_formula(s, y, 1.0)[0])
