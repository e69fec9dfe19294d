"""Transforms of the paper's section 4.1: mean image, PCA colour, random crops/flips, ten-crop."""

from __future__ import annotations

import numpy as np
import pytest

from minialexnet.data.transforms import (
    TEN_CROP_ORDER,
    Stats,
    dataset_statistics,
    eval_transform,
    ten_crop,
    train_transform,
)


def _images(n: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


def _stats_for(images: np.ndarray) -> Stats:
    return dataset_statistics(images)


def _reference_padded(images: np.ndarray, stats: Stats, pad: int, shift=None) -> np.ndarray:
    """The paper's order, done the slow obvious way: NHWC float32, mean-subtracted, padded."""
    x = images.astype(np.float32) - stats.mean
    if shift is not None:
        x += shift.astype(np.float32)[:, None, None, :]
    return np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))


def _nchw(x: np.ndarray) -> np.ndarray:
    return x.transpose(0, 3, 1, 2)


# --------------------------------------------------------------------------------------------
# dataset_statistics and Stats


def _correlated_images(n: int, h: int, w: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images whose pixels have a chosen (non-diagonal) RGB covariance."""
    rng = np.random.default_rng(seed)
    a = np.array([[40.0, 0.0, 0.0], [25.0, 15.0, 0.0], [10.0, -8.0, 6.0]])
    cov = a @ a.T
    z = rng.standard_normal((n, h, w, 3)) @ a.T + np.array([120.0, 110.0, 100.0])
    return np.clip(np.rint(z), 0, 255).astype(np.uint8), cov


def test_statistics_match_eigh_on_float64_pixels():
    images, cov_true = _correlated_images(300, 6, 5)
    stats = dataset_statistics(images)
    pixels = images.reshape(-1, 3).astype(np.float64)
    cov = np.cov(pixels, rowvar=False, bias=True)
    ref_vals, ref_vecs = np.linalg.eigh(cov)
    ref_vals, ref_vecs = ref_vals[::-1], ref_vecs[:, ::-1]

    assert stats.mean.dtype == np.float32 and stats.mean.shape == (6, 5, 3)
    assert stats.eigvals.dtype == np.float32 and stats.eigvals.shape == (3,)
    assert stats.eigvecs.dtype == np.float32 and stats.eigvecs.shape == (3, 3)
    np.testing.assert_allclose(stats.mean, images.astype(np.float64).mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(stats.eigvals, ref_vals, rtol=1e-5)
    assert np.all(np.diff(stats.eigvals) <= 0), "eigenvalues sorted descending"
    for k in range(3):  # eigenvectors up to sign
        v, r = stats.eigvecs[:, k].astype(np.float64), ref_vecs[:, k]
        assert min(np.abs(v - r).max(), np.abs(v + r).max()) < 1e-5
    # columns are eigenvectors: C p_k = lambda_k p_k, orthonormal
    p = stats.eigvecs.astype(np.float64)
    np.testing.assert_allclose(cov @ p, p * stats.eigvals, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(p.T @ p, np.eye(3), atol=1e-6)
    # and the known generating covariance is recovered (sampling error only)
    np.testing.assert_allclose(cov, cov_true, rtol=0.05, atol=20.0)


def test_statistics_chunking_and_memmap_agree(tmp_path):
    images, _ = _correlated_images(97, 4, 4, seed=1)
    path = tmp_path / "images.u8"
    mm = np.memmap(path, dtype=np.uint8, mode="w+", shape=images.shape)
    mm[:] = images
    mm.flush()
    mm = np.memmap(path, dtype=np.uint8, mode="r", shape=images.shape)
    full = dataset_statistics(images)
    for chunk_size, source in [(1, images), (7, mm), (1000, mm), (None, mm)]:
        s = dataset_statistics(source, chunk_size=chunk_size)
        np.testing.assert_allclose(s.mean, full.mean, rtol=1e-6)
        np.testing.assert_allclose(s.eigvals, full.eigvals, rtol=1e-6)
        np.testing.assert_allclose(s.eigvecs, full.eigvecs, atol=1e-6)


def test_stats_round_trip_and_checks():
    stats = dataset_statistics(_images(5, 4, 4))
    arrays = stats.to_arrays(prefix="data.")
    assert set(arrays) == {"data.mean", "data.eigvals", "data.eigvecs"}
    back = Stats.from_arrays({**arrays, "other": np.zeros(1)}, prefix="data.")
    for key in ("mean", "eigvals", "eigvecs"):
        np.testing.assert_array_equal(getattr(back, key), getattr(stats, key))
        assert getattr(back, key).dtype == np.float32
    with pytest.raises(ValueError, match="eigvecs"):
        Stats.from_arrays({"mean": stats.mean, "eigvals": stats.eigvals})
    with pytest.raises(ValueError, match="mean"):
        Stats(mean=np.zeros((4, 4)), eigvals=np.ones(3), eigvecs=np.eye(3))
    with pytest.raises(ValueError, match="eigvals"):
        Stats(mean=np.zeros((4, 4, 3)), eigvals=np.ones(4), eigvecs=np.eye(3))
    with pytest.raises(ValueError, match="empty"):
        dataset_statistics(np.zeros((0, 4, 4, 3), np.uint8))


# --------------------------------------------------------------------------------------------
# eval_transform


def test_eval_transform_shape_values_and_zero_mean():
    images = _images(64, 10, 9)
    stats = _stats_for(images)
    x = eval_transform(images, stats=stats, crop=6)
    assert x.shape == (64, 3, 6, 6) and x.dtype == np.float32 and x.flags.c_contiguous
    oy, ox = (10 - 6) // 2, (9 - 6) // 2
    ref = _reference_padded(images, stats, 0)[:, oy : oy + 6, ox : ox + 6]
    np.testing.assert_array_equal(x, _nchw(ref))
    # raw 0-255 scale minus the mean image: zero mean per pixel over the training set
    assert np.abs(x.astype(np.float64).mean(axis=0)).max() < 1e-3
    assert 1000 < x.var() < 10000  # uniform uint8: variance 255^2/12 ~ 5400, not unit scale


def test_eval_transform_full_size_and_rectangular_crop():
    images = _images(3, 8, 8)
    stats = _stats_for(images)
    np.testing.assert_array_equal(
        eval_transform(images, stats=stats, crop=8), _nchw(_reference_padded(images, stats, 0))
    )
    assert eval_transform(images, stats=stats, crop=(4, 6)).shape == (3, 3, 4, 6)


# --------------------------------------------------------------------------------------------
# train_transform


def test_train_transform_shapes_dtype_and_determinism():
    images = _images(16, 12, 12)
    stats = _stats_for(images)
    kw = dict(stats=stats, crop=10, pad=2)
    a = train_transform(images, np.random.default_rng(5), **kw)
    b = train_transform(images, np.random.default_rng(5), **kw)
    c = train_transform(images, np.random.default_rng(6), **kw)
    assert a.shape == (16, 3, 10, 10) and a.dtype == np.float32 and a.flags.c_contiguous
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # the input is not modified
    np.testing.assert_array_equal(images, _images(16, 12, 12))


def _locate(out: np.ndarray, padded: np.ndarray, crop: int) -> tuple[np.ndarray, np.ndarray]:
    """For each image, the offsets (oy, ox) where `out` (NCHW) is a window of `padded` (NHWC),
    and whether it is the mirrored window; (-1, -1) where none matches."""
    n, hp, wp, _ = padded.shape
    found = np.full((n, 2), -1)
    mirrored = np.zeros(n, dtype=bool)
    hits = np.zeros(n, dtype=int)
    out_nhwc = out.transpose(0, 2, 3, 1)
    for oy in range(hp - crop + 1):
        for ox in range(wp - crop + 1):
            win = padded[:, oy : oy + crop, ox : ox + crop]
            same = (out_nhwc == win).all(axis=(1, 2, 3))
            flip = (out_nhwc == win[:, :, ::-1]).all(axis=(1, 2, 3))
            found[same | flip] = (oy, ox)
            mirrored |= flip & ~same
            hits += same | flip
    assert hits.max() <= 1, "random images: a window should match at one offset only"
    return found, mirrored


def test_train_crops_are_windows_of_the_padded_image_at_every_offset():
    crop, pad = 8, 2
    images = _images(1500, 8, 8, seed=3)
    stats = _stats_for(images)
    out = train_transform(
        images, np.random.default_rng(0), stats=stats, crop=crop, pad=pad, flip=False, pca_std=0
    )
    padded = _reference_padded(images, stats, pad)
    found, mirrored = _locate(out, padded, crop)
    assert (found >= 0).all(), "every output is a window of its padded image"
    assert not mirrored.any()
    offsets = {tuple(o) for o in found}
    span = 8 + 2 * pad - crop + 1
    assert offsets == {(i, j) for i in range(span) for j in range(span)}
    # the zero padding is really zero (not the mean, not shifted): corner windows have zeros
    corner = (found == 0).all(axis=1)
    assert (out[corner][:, :, :pad, :] == 0).all()


def test_train_crops_with_flips_and_pca_shift_are_windows():
    crop, pad = 6, 1
    images = _images(400, 7, 6, seed=4)
    stats = _stats_for(images)
    rng = np.random.default_rng(9)
    out = train_transform(images, rng, stats=stats, crop=crop, pad=pad, pca_std=0.1)
    # regenerate the same alphas: alpha is drawn first, (N, 3) normal
    alpha = np.random.default_rng(9).normal(0.0, 0.1, size=(400, 3))
    shift = (alpha * stats.eigvals / 255) @ stats.eigvecs.T.astype(np.float64)
    padded = _reference_padded(images, stats, 0, shift)
    padded = np.pad(padded, ((0, 0), (pad, pad), (pad, pad), (0, 0)))  # pad after the shift
    found, mirrored = _locate(out, padded, crop)
    assert (found >= 0).all()
    assert 0.4 < mirrored.mean() < 0.6


def test_flip_fraction_is_one_half_and_flipped_images_are_mirrors():
    n = 4000
    image = _images(1, 6, 6, seed=7)
    images = np.repeat(image, n, axis=0)
    stats = Stats(mean=np.full((6, 6, 3), 100.0), eigvals=np.ones(3), eigvecs=np.eye(3))
    out = train_transform(images, np.random.default_rng(1), stats=stats, crop=6, pca_std=0)
    plain = eval_transform(image, stats=stats, crop=6)[0]
    mirror = plain[:, :, ::-1]
    assert not np.array_equal(plain, mirror)
    is_plain = (out == plain).all(axis=(1, 2, 3))
    is_mirror = (out == mirror).all(axis=(1, 2, 3))
    assert (is_plain | is_mirror).all()
    assert abs(is_mirror.mean() - 0.5) < 4 * 0.5 / np.sqrt(n)
    # flip=False never flips
    out = train_transform(
        images[:200], np.random.default_rng(1), stats=stats, crop=6, pca_std=0, flip=False
    )
    assert (out == plain).all()


def test_pca_colour_shift_is_a_few_grey_levels_on_natural_statistics():
    """With the covariance of real photographs (first eigenvalue ~10^4 on the 0-255 scale) the
    colour shift must stay small next to the image: a few grey levels, not thousands."""
    rng = np.random.default_rng(3)
    grey = rng.integers(0, 256, size=(500, 8, 8, 1))
    images = np.clip(grey + rng.integers(-20, 21, size=(500, 8, 8, 3)), 0, 255).astype(np.uint8)
    stats = _stats_for(images)
    assert stats.eigvals[0] > 10_000  # strongly correlated channels, as in photographs
    plain = train_transform(images, np.random.default_rng(5), stats=stats, crop=8, pca_std=0)
    shifted = train_transform(images, np.random.default_rng(5), stats=stats, crop=8, pca_std=0.1)
    shift_rms = np.sqrt(np.mean((shifted - plain) ** 2))
    expected = 0.1 * np.sqrt(np.sum((stats.eigvals / 255.0) ** 2) / 3)  # per channel
    assert 0.8 * expected < shift_rms < 1.2 * expected
    assert shift_rms < 0.1 * np.sqrt(np.mean(plain**2))


def test_pca_shift_has_the_papers_covariance():
    """Shift s = P (alpha * lambda / 255), alpha ~ N(0, sigma^2 I):
    Cov(s) = P diag((sigma lambda / 255)^2) P^T, the same for every pixel of an image
    (lambda of [0, 1] pixel values, shift in 0-255 units: see PCA_PIXEL_SCALE)."""
    n, sigma = 20000, 0.1
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.standard_normal((3, 3)))
    eigvals = np.array([900.0, 300.0, 40.0])
    stats = Stats(mean=np.full((2, 2, 3), 50.0), eigvals=eigvals, eigvecs=q)
    images = np.full((n, 2, 2, 3), 50, dtype=np.uint8)
    out = train_transform(images, rng, stats=stats, crop=2, pca_std=sigma)
    shifts = out[:, :, 0, 0].astype(np.float64)  # image - mean = 0: only the shift remains
    assert np.allclose(out, shifts[:, :, None, None], atol=1e-4), "same shift for every pixel"
    cov = shifts.T @ shifts / n  # mean zero by construction
    p = stats.eigvecs.astype(np.float64)
    in_basis = p.T @ cov @ p
    expected = (sigma * stats.eigvals.astype(np.float64) / 255) ** 2
    tol = 5 * np.sqrt(2 / n)  # ~5 standard errors of a variance estimate
    np.testing.assert_allclose(np.diag(in_basis), expected, rtol=tol)
    off = in_basis / np.sqrt(np.outer(expected, expected))
    assert np.abs(off - np.diag(np.diag(off))).max() < 5 / np.sqrt(n)
    std_per_channel = np.sqrt((p**2) @ expected)
    assert np.abs(shifts.mean(axis=0) / std_per_channel).max() < 5 / np.sqrt(n)
    # pca_std=0 turns it off
    out0 = train_transform(images, rng, stats=stats, crop=2, pca_std=0)
    assert not out0.any()


# --------------------------------------------------------------------------------------------
# ten_crop


def test_ten_crop_order_offsets_and_mirrors():
    images = _images(4, 9, 8, seed=2)
    stats = _stats_for(images)
    crop = 5
    out = ten_crop(images, stats=stats, crop=crop)
    assert out.shape == (10, 4, 3, crop, crop) and out.dtype == np.float32
    assert len(TEN_CROP_ORDER) == 10
    ref = _reference_padded(images, stats, 0)
    h, w = 9, 8
    offsets = [(0, 0), (0, w - crop), (h - crop, 0), (h - crop, w - crop)]
    offsets.append(((h - crop) // 2, (w - crop) // 2))
    for k, (oy, ox) in enumerate(offsets):
        np.testing.assert_array_equal(out[k], _nchw(ref[:, oy : oy + crop, ox : ox + crop]))
        np.testing.assert_array_equal(out[k + 5], out[k][..., ::-1])
    np.testing.assert_array_equal(out[4], eval_transform(images, stats=stats, crop=crop))


# --------------------------------------------------------------------------------------------
# errors


@pytest.mark.parametrize("fn", ["train", "eval", "ten"])
def test_bad_inputs_raise(fn):
    images = _images(2, 8, 8)
    stats = _stats_for(images)

    def call(imgs=images, st=stats, crop=6, **kw):
        if fn == "train":
            return train_transform(imgs, np.random.default_rng(0), stats=st, crop=crop, **kw)
        if fn == "eval":
            return eval_transform(imgs, stats=st, crop=crop)
        return ten_crop(imgs, stats=st, crop=crop)

    with pytest.raises(ValueError, match="uint8"):
        call(images.astype(np.float32))
    with pytest.raises(ValueError, match="4-d"):
        call(images[0])
    with pytest.raises(ValueError, match="3 .RGB. channels"):
        call(np.concatenate([images, images[..., :1]], axis=-1))
    with pytest.raises(ValueError, match="larger than"):
        call(crop=9)
    with pytest.raises(ValueError, match="positive"):
        call(crop=0)
    small = Stats(mean=np.zeros((6, 6, 3)), eigvals=np.ones(3), eigvecs=np.eye(3))
    with pytest.raises(ValueError, match=r"stats.mean has shape \(6, 6, 3\)"):
        call(st=small)


def test_train_specific_errors():
    images = _images(2, 8, 8)
    stats = _stats_for(images)
    rng = np.random.default_rng(0)
    assert train_transform(images, rng, stats=stats, crop=12, pad=2).shape == (2, 3, 12, 12)
    with pytest.raises(ValueError, match="padded"):
        train_transform(images, rng, stats=stats, crop=13, pad=2)
    with pytest.raises(ValueError, match="pad"):
        train_transform(images, rng, stats=stats, crop=6, pad=-1)
    with pytest.raises(ValueError, match="pca_std"):
        train_transform(images, rng, stats=stats, crop=6, pca_std=-0.1)
    with pytest.raises(TypeError, match="Generator"):
        train_transform(images, 0, stats=stats, crop=6)
