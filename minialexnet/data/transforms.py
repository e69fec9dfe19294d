"""Image transforms of the paper's section 4.1: mean image, random crops and flips, PCA colour.

Everything here runs on the host in NumPy, with no Python loop over pixels. The training
transform without padding (the paper's 227 crops of 256x256 images) walks the batch one image
at a time: each image's window (3 x 227 x 227 float32, 620 KB) stays in the CPU cache while it
is cast, mean-subtracted, shifted and mirrored, which is twice as fast as whole-batch passes
over 80 MB arrays, and every NumPy call releases the GIL, so loader threads scale (the loop
itself costs a few microseconds per image). With padding (32 crops of CIFAR-10 images padded
to 40) the batch is small and is transformed in whole-batch operations. Both give the same
numbers.

Input: uint8 images NHWC ``(N, H, W, 3)`` (a plain array or an ``np.memmap``).
Output: float32 NCHW ``(N, 3, crop, crop)`` ready for the model.

**Input scale.** As in the paper, the model sees *raw 0-255 pixel values minus the per-pixel
mean image* of the training set -- no division by a standard deviation. The values lie in about
[-255, 255] with a variance of a few thousand; LRN's constants (k=2, alpha=1e-4) were chosen by
the paper for activations on this scale (see ``paper.md``, section [5], "Input scale matters").

The three transforms:

* :func:`train_transform` -- training-time augmentation [4.1]:
  ``x = crop_flip(pad(image - mean_image + eigvecs @ (alpha * eigvals / 255)))`` with
  ``alpha ~ N(0, pca_std^2)`` per image per call, a random ``crop x crop`` window (one offset per
  image) and a horizontal flip with probability 1/2 per image.
* :func:`eval_transform` -- the centre ``crop x crop`` window, mean subtracted.
* :func:`ten_crop` -- the paper's test-time ten patches: four corners, centre, and the
  horizontal reflections of those five; the caller averages the ten softmax outputs.

:func:`dataset_statistics` computes the mean image and the PCA of the RGB covariance
(:class:`Stats`) once over the whole training set, in float64, in chunks (a memmap is read
sequentially, never loaded whole).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = [
    "PCA_PIXEL_SCALE",
    "TEN_CROP_ORDER",
    "Stats",
    "dataset_statistics",
    "eval_transform",
    "ten_crop",
    "train_transform",
]

#: Names of the ten patches of :func:`ten_crop`, in output order.
TEN_CROP_ORDER: tuple[str, ...] = (
    "top-left",
    "top-right",
    "bottom-left",
    "bottom-right",
    "centre",
    "top-left-flipped",
    "top-right-flipped",
    "bottom-left-flipped",
    "bottom-right-flipped",
    "centre-flipped",
)

_STAT_KEYS = ("mean", "eigvals", "eigvecs")

# Elements (uint8 values) per chunk in dataset_statistics: 2^22 -> 32 MiB as float64.
_CHUNK_ELEMENTS = 1 << 22


@dataclass
class Stats:
    """Training-set statistics used by the transforms (raw 0-255 pixel scale).

    Attributes:
        mean: ``(H, W, 3)`` float32, the per-pixel mean image
            ``mean[i, j, c] = (1/N) sum_n images[n, i, j, c]``.
        eigvals: ``(3,)`` float32, eigenvalues ``lambda_1 >= lambda_2 >= lambda_3 >= 0`` of the
            3x3 covariance of the RGB values of every pixel of every training image.
        eigvecs: ``(3, 3)`` float32, orthonormal; column ``k`` is the eigenvector ``p_k`` of
            ``eigvals[k]`` (sign fixed so that its largest-magnitude entry is positive).

    Arrays are converted to float32 and checked on construction (``ValueError`` on a wrong shape).
    """

    mean: np.ndarray
    eigvals: np.ndarray
    eigvecs: np.ndarray

    def __post_init__(self) -> None:
        self.mean = np.ascontiguousarray(self.mean, dtype=np.float32)
        self.eigvals = np.ascontiguousarray(self.eigvals, dtype=np.float32)
        self.eigvecs = np.ascontiguousarray(self.eigvecs, dtype=np.float32)
        if self.mean.ndim != 3 or self.mean.shape[-1] != 3:
            raise ValueError(f"Stats: mean must have shape (H, W, 3), got {self.mean.shape}")
        if self.eigvals.shape != (3,):
            raise ValueError(f"Stats: eigvals must have shape (3,), got {self.eigvals.shape}")
        if self.eigvecs.shape != (3, 3):
            raise ValueError(f"Stats: eigvecs must have shape (3, 3), got {self.eigvecs.shape}")

    def to_arrays(self, prefix: str = "") -> dict[str, np.ndarray]:
        """The statistics as ``{prefix + "mean": ..., prefix + "eigvals": ..., ...}`` (copies),
        e.g. to store in a checkpoint."""
        return {prefix + key: getattr(self, key).copy() for key in _STAT_KEYS}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], prefix: str = "") -> Stats:
        """Inverse of :meth:`to_arrays`; extra keys are ignored, a missing one is a ValueError."""
        missing = [prefix + key for key in _STAT_KEYS if prefix + key not in arrays]
        if missing:
            raise ValueError(
                f"Stats.from_arrays: missing {missing}; got keys {sorted(arrays)[:10]}"
            )
        return cls(**{key: np.array(arrays[prefix + key]) for key in _STAT_KEYS})


# --------------------------------------------------------------------------------------------
# Checks


def _check_images(images: np.ndarray, fn: str) -> None:
    if not isinstance(images, np.ndarray):
        raise ValueError(
            f"{fn}: images must be a NumPy uint8 array (N, H, W, 3), got {type(images).__name__}"
        )
    if images.dtype != np.uint8:
        raise ValueError(f"{fn}: images must have dtype uint8, got {images.dtype}")
    if images.ndim != 4:
        raise ValueError(
            f"{fn}: images must be 4-d NHWC (N, H, W, 3), got {images.ndim}-d shape {images.shape}"
        )
    if images.shape[-1] != 3:
        raise ValueError(
            f"{fn}: images must have 3 (RGB) channels last (N, H, W, 3), got shape {images.shape}"
        )


def _check_stats(stats: Stats, images: np.ndarray, fn: str) -> None:
    if not isinstance(stats, Stats):
        raise ValueError(f"{fn}: stats must be a Stats, got {type(stats).__name__}")
    if stats.mean.shape != images.shape[1:]:
        raise ValueError(
            f"{fn}: stats.mean has shape {stats.mean.shape} but the images are "
            f"{images.shape[1:]} (H, W, 3); compute the statistics at the same resolution"
        )


def _crop_hw(crop: int | tuple[int, int], fn: str) -> tuple[int, int]:
    if isinstance(crop, (int, np.integer)):
        ch = cw = int(crop)
    else:
        try:
            ch, cw = (int(c) for c in crop)
        except (TypeError, ValueError):
            raise ValueError(f"{fn}: crop must be an int or an (h, w) pair, got {crop!r}") from None
    if ch < 1 or cw < 1:
        raise ValueError(f"{fn}: crop must be positive, got {crop!r}")
    return ch, cw


def _check_fits(ch: int, cw: int, h: int, w: int, pad: int, fn: str) -> None:
    if ch > h + 2 * pad or cw > w + 2 * pad:
        what = f"the padded image ({h}+2*{pad}) x ({w}+2*{pad})" if pad else f"the image {h}x{w}"
        raise ValueError(f"{fn}: crop {ch}x{cw} is larger than {what}")


# --------------------------------------------------------------------------------------------
# Statistics


def dataset_statistics(images: np.ndarray, *, chunk_size: int | None = None) -> Stats:
    """Mean image and PCA of the RGB covariance of a training set [4.1].

    With ``M = N*H*W`` pixels ``x_m`` (RGB vectors on the raw 0-255 scale), in float64:

        mean image   m[i, j, :] = (1/N) sum_n images[n, i, j, :]
        channel mean mu         = (1/M) sum_m x_m
        covariance   C          = (1/M) sum_m x_m x_m^T - mu mu^T     (3 x 3)
        C = P diag(lambda) P^T  (``np.linalg.eigh``; eigenvalues sorted descending)

    Args:
        images: uint8 ``(N, H, W, 3)``; an ``np.memmap`` is read ``chunk_size`` images at a time.
        chunk_size: images per chunk (default: about 4M values, 32 MiB of float64).

    Returns:
        :class:`Stats` (float32 arrays).
    """
    fn = "dataset_statistics"
    _check_images(images, fn)
    n, h, w, _ = images.shape
    if n == 0:
        raise ValueError(f"{fn}: images is empty (N = 0)")
    if chunk_size is None:
        chunk_size = max(1, _CHUNK_ELEMENTS // (h * w * 3))
    if chunk_size < 1:
        raise ValueError(f"{fn}: chunk_size must be >= 1, got {chunk_size}")

    pixel_sum = np.zeros((h, w, 3), dtype=np.float64)
    outer_sum = np.zeros((3, 3), dtype=np.float64)
    for start in range(0, n, chunk_size):
        chunk = np.asarray(images[start : start + chunk_size], dtype=np.float64)
        pixel_sum += chunk.sum(axis=0)
        flat = chunk.reshape(-1, 3)
        outer_sum += flat.T @ flat  # sums of products of integers: exact below 2^53

    mean_image = pixel_sum / n
    mu = mean_image.mean(axis=(0, 1))
    cov = outer_sum / (n * h * w) - np.outer(mu, mu)
    cov = (cov + cov.T) / 2
    eigvals, eigvecs = np.linalg.eigh(cov)
    order = np.argsort(eigvals)[::-1]
    eigvals = np.clip(eigvals[order], 0.0, None)
    eigvecs = eigvecs[:, order]
    largest = np.argmax(np.abs(eigvecs), axis=0)
    eigvecs = eigvecs * np.sign(eigvecs[largest, np.arange(3)])
    return Stats(mean=mean_image, eigvals=eigvals, eigvecs=eigvecs)


# --------------------------------------------------------------------------------------------
# Transforms

PCA_PIXEL_SCALE = 255.0
"""The scale on which the PCA colour shift is computed: pixel values in [0, 1].

The paper's shift ``sum_i p_i alpha_i lambda_i`` is not scale-free: ``lambda_i`` is a variance,
so it grows with the square of the pixel unit. Computed on raw 0-255 values, the first
eigenvalue of natural images is about 10^4 and ``0.1 * lambda_1`` would move every pixel by
~1000 levels, drowning the image (we measured inputs 10x larger than the images themselves,
and training stuck at chance). The reference implementations (Facebook's fb.resnet.torch, 2016:
lambda = 0.2175, 0.0188, 0.0045 from a random subset of ImageNet; the paper gives none) take the
covariance of pixel values in [0, 1], which makes the shift a few grey levels:
``lambda_[0,1] = lambda / 255^2``, and back in 0-255 units the shift is
``255 * P (alpha * lambda / 255^2) = P (alpha * lambda / 255)``. :class:`Stats` keeps
``lambda`` of the raw 0-255 values."""


def train_transform(
    images: np.ndarray,
    rng: np.random.Generator,
    *,
    stats: Stats,
    crop: int | tuple[int, int],
    pad: int = 0,
    flip: bool = True,
    pca_std: float = 0.1,
) -> np.ndarray:
    """Training augmentation of the paper [4.1], vectorized over the batch.

    For each image ``I_n`` (float, raw 0-255 scale) the result equals, in this order:

    1. ``I_n - mean`` (the per-pixel mean image, full size);
    2. PCA colour: add ``s_n = P @ (alpha_n * lambda / 255)`` to every pixel, where
       ``P``/``lambda`` are ``stats.eigvecs``/``stats.eigvals`` and ``alpha_n ~ N(0, pca_std^2)``
       (3 values per image, drawn anew at every call): the paper's
       ``sum_i p_i alpha_i lambda_i`` with ``sigma = 0.1``, with ``lambda`` the eigenvalues
       of the covariance of pixel values in [0, 1], as the reference implementations compute
       it, and the shift converted back to 0-255 units (see :data:`PCA_PIXEL_SCALE`);
    3. zero padding of ``pad`` pixels on each side (zero = the mean, after step 1);
    4. a random ``crop x crop`` window, offsets ``oy ~ U{0..H+2pad-crop}``,
       ``ox ~ U{0..W+2pad-crop}``, one per image;
    5. a horizontal flip with probability 1/2 per image (if ``flip``).

    It is computed in the cheap order (take each window from the uint8 images and from the
    mean image, subtract, add ``s_n``, zero the padding, flip), which gives the same numbers:
    without padding one image at a time, the flip read from the mirrored window; with padding
    in whole-batch operations (``sliding_window_view`` gathers).

    Randomness, all from ``rng`` and in this order: ``alpha`` (N, 3) normal, ``oy`` (N,),
    ``ox`` (N,) integers, then (only if ``flip``) N uniforms for the flips. The same generator
    state therefore gives the same crops whatever ``pca_std`` is.

    Args:
        images: uint8 ``(N, H, W, 3)``.
        rng: a NumPy ``Generator``.
        stats: training-set :class:`Stats` with ``mean`` of shape ``(H, W, 3)``.
        crop: output size, an int or an ``(h, w)`` pair.
        pad: zero padding on each side before cropping (e.g. 4 for CIFAR-10 at crop 32).
        flip: random horizontal flips.
        pca_std: standard deviation of ``alpha`` (0 turns PCA colour off).

    Returns:
        float32 ``(N, 3, crop, crop)``.
    """
    fn = "train_transform"
    _check_images(images, fn)
    _check_stats(stats, images, fn)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"{fn}: rng must be a numpy.random.Generator (np.random.default_rng(seed)), "
            f"got {type(rng).__name__}"
        )
    ch, cw = _crop_hw(crop, fn)
    pad = int(pad)
    if pad < 0:
        raise ValueError(f"{fn}: pad must be >= 0, got {pad}")
    if not pca_std >= 0:
        raise ValueError(f"{fn}: pca_std must be >= 0, got {pca_std}")
    n, h, w, _ = images.shape
    _check_fits(ch, cw, h, w, pad, fn)

    alpha = rng.normal(0.0, pca_std, size=(n, 3))
    # row n: s_n = P @ (alpha_n * lambda / 255)  ->  (alpha * lambda / 255) @ P^T
    lam = stats.eigvals.astype(np.float64) / PCA_PIXEL_SCALE
    shift = (alpha * lam) @ stats.eigvecs.T.astype(np.float64)
    oy = rng.integers(0, h + 2 * pad - ch + 1, size=n)
    ox = rng.integers(0, w + 2 * pad - cw + 1, size=n)
    flipped = rng.random(n) < 0.5 if flip else np.zeros(n, dtype=bool)

    mean = stats.mean.transpose(2, 0, 1)  # (3, H, W) view
    if not pad:
        return _train_per_image(images, mean, oy, ox, flipped, shift.astype(np.float32), ch, cw)
    # Padded (small images): whole-batch operations.
    images = np.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    mean = np.pad(mean, ((0, 0), (pad, pad), (pad, pad)))
    # One (crop x crop) window per image: a strided gather of whole rows, no per-pixel indexing.
    windows = sliding_window_view(images, (ch, cw, 3), axis=(1, 2, 3))  # (N, H', W', 1, ch, cw, 3)
    x = np.empty((n, 3, ch, cw), dtype=np.float32)
    np.copyto(x, windows[np.arange(n), oy, ox, 0].transpose(0, 3, 1, 2))  # uint8 -> float32
    x -= sliding_window_view(mean, (ch, cw), axis=(1, 2))[:, oy, ox].transpose(1, 0, 2, 3)
    x += shift.astype(np.float32)[:, :, None, None]
    inside = np.pad(np.ones((h, w), dtype=bool), pad)
    outside = ~sliding_window_view(inside, (ch, cw))[oy, ox]  # (N, ch, cw)
    np.copyto(x, np.float32(0), where=outside[:, None])
    if flipped.any():
        x[flipped] = x[flipped, :, :, ::-1]
    return x


def _train_per_image(
    images: np.ndarray,
    mean: np.ndarray,
    oy: np.ndarray,
    ox: np.ndarray,
    flipped: np.ndarray,
    shift: np.ndarray,
    ch: int,
    cw: int,
) -> np.ndarray:
    """:func:`train_transform` without padding, one image at a time (see the module docstring).

    ``mean`` is the (3, H, W) mean image, ``shift`` the (N, 3) float32 colour shifts. A flip is
    read from the mirrored window (a negative stride) instead of being applied afterwards:
    the same values, one pass less. The arithmetic is the whole-batch path's, in its order.
    """
    n = images.shape[0]
    x = np.empty((n, 3, ch, cw), dtype=np.float32)
    for i in range(n):
        top, left = int(oy[i]), int(ox[i])
        window = images[i, top : top + ch, left : left + cw].transpose(2, 0, 1)  # (3, ch, cw)
        mean_window = mean[:, top : top + ch, left : left + cw]
        if flipped[i]:
            window, mean_window = window[:, :, ::-1], mean_window[:, :, ::-1]
        out = x[i]
        np.copyto(out, window)  # uint8 -> float32
        out -= mean_window
        out += shift[i][:, None, None]
    return x


def eval_transform(images: np.ndarray, *, stats: Stats, crop: int | tuple[int, int]) -> np.ndarray:
    """Centre ``crop x crop`` window minus the mean image (raw 0-255 scale, as the paper).

    Offsets ``((H - crop) // 2, (W - crop) // 2)``; the same window as :func:`ten_crop`'s centre.

    Args:
        images: uint8 ``(N, H, W, 3)``.
        stats: :class:`Stats` with ``mean`` of shape ``(H, W, 3)``.
        crop: an int or an ``(h, w)`` pair, at most the image size.

    Returns:
        float32 ``(N, 3, crop, crop)``.
    """
    fn = "eval_transform"
    _check_images(images, fn)
    _check_stats(stats, images, fn)
    ch, cw = _crop_hw(crop, fn)
    _, h, w, _ = images.shape
    _check_fits(ch, cw, h, w, 0, fn)
    return _window(images, stats.mean, (h - ch) // 2, (w - cw) // 2, ch, cw)


def ten_crop(images: np.ndarray, *, stats: Stats, crop: int | tuple[int, int]) -> np.ndarray:
    """The paper's ten test-time patches [4.1], mean subtracted (raw 0-255 scale).

    Output index ``k`` along the first axis (see :data:`TEN_CROP_ORDER`):

    ====  ==================  =====================================
    k     patch               window offset (row, col)
    ====  ==================  =====================================
    0     top-left            (0, 0)
    1     top-right           (0, W - crop)
    2     bottom-left         (H - crop, 0)
    3     bottom-right        (H - crop, W - crop)
    4     centre              ((H - crop) // 2, (W - crop) // 2)
    5-9   mirrors of 0-4      ``out[k + 5] = out[k][..., ::-1]``
    ====  ==================  =====================================

    Args:
        images: uint8 ``(N, H, W, 3)``.
        stats: :class:`Stats` with ``mean`` of shape ``(H, W, 3)``.
        crop: an int or an ``(h, w)`` pair, at most the image size.

    Returns:
        float32 ``(10, N, 3, crop, crop)``. Average the model's softmax over axis 0.
    """
    fn = "ten_crop"
    _check_images(images, fn)
    _check_stats(stats, images, fn)
    ch, cw = _crop_hw(crop, fn)
    n, h, w, _ = images.shape
    _check_fits(ch, cw, h, w, 0, fn)
    offsets = [(0, 0), (0, w - cw), (h - ch, 0), (h - ch, w - cw), ((h - ch) // 2, (w - cw) // 2)]
    out = np.empty((10, n, 3, ch, cw), dtype=np.float32)
    for k, (oy, ox) in enumerate(offsets):
        _window(images, stats.mean, oy, ox, ch, cw, out=out[k])
        out[k + 5] = out[k][..., ::-1]
    return out


def _window(
    images: np.ndarray,
    mean: np.ndarray,
    oy: int,
    ox: int,
    ch: int,
    cw: int,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """``images[:, oy:oy+ch, ox:ox+cw] - mean[oy:oy+ch, ox:ox+cw]`` as float32 NCHW."""
    if out is None:
        out = np.empty((images.shape[0], 3, ch, cw), dtype=np.float32)
    np.copyto(out, images[:, oy : oy + ch, ox : ox + cw].transpose(0, 3, 1, 2))
    out -= mean[oy : oy + ch, ox : ox + cw].transpose(2, 0, 1)
    return out
