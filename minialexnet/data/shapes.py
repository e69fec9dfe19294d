"""The built-in "shapes" dataset: ten classes of drawn shapes, generated on the fly.

Why it exists: students may be offline and ImageNet is 150 GB. This dataset needs no
download and no files; it is a pure function of ``(seed, split, size, image_size)``
and can be drawn at any resolution (32x32 for quick runs, 256x256 to exercise the
paper's 224-crop pipeline [paper section 4]).

What is in it. Each image shows ONE object of one class on a textured background:

    0 circle            1 square             2 triangle           3 star
    4 cross             5 ring               6 horizontal stripes 7 vertical stripes
    8 checkerboard      9 crescent

The classes differ in SHAPE and STRUCTURE only. Everything else is drawn at random,
independently of the class, for every image:

* colour: the foreground and background colours are drawn independently and uniformly
  from the RGB cube (kept at least ``MIN_CONTRAST`` apart so the object is visible);
  so a classifier that looks only at colours is at chance;
* texture: both the object and the background get a linear colour gradient in a random
  direction, and the whole image gets per-pixel luminance noise (uniform, the same in
  R, G and B) of a random strength;
* position, scale, rotation and a little stretch (aspect ratio) of the object. Rotation
  is free (0-360 degrees) except for the stripes, whose tilt stays within +-20 degrees so
  that "horizontal" and "vertical" remain different classes. Horizontal flips and crops
  keep every label valid, which is what the paper's augmentation [section 4.1] assumes.

How it is drawn (vectorized, no Python loop over pixels). Every shape is an implicit
function: a *signed distance* ``d(u, v)`` that is negative inside the shape, where
``(u, v)`` are the pixel coordinates moved, rotated and scaled into the object's own
frame. For a batch of images we build a coordinate grid of shape (n, H, W), evaluate
``d`` on it with NumPy, and turn the distance (converted to pixels) into a coverage

    alpha = clip(0.5 - d_pixels, 0, 1)

which is 1 inside, 0 outside and a one-pixel linear ramp across the edge (cheap
anti-aliasing). The image is then ``background * (1 - alpha) + foreground * alpha``.
Only two small loops remain: over chunks of images (to bound memory) and over the ten
classes within a chunk. On a 2-core laptop-class CPU, 10,000 images at 32x32 take about
1 s and 2,000 at 256x256 about 9 s.
"""

from __future__ import annotations

import numpy as np

from .dataset import Dataset

__all__ = ["SHAPE_CLASSES", "DEFAULT_SIZES", "make_shapes", "load_shapes"]

SHAPE_CLASSES: list[str] = [
    "circle",
    "square",
    "triangle",
    "star",
    "cross",
    "ring",
    "horizontal stripes",
    "vertical stripes",
    "checkerboard",
    "crescent",
]

DEFAULT_SIZES: dict[str, int] = {"train": 10_000, "val": 2_000}
SPLIT_IDS: dict[str, int] = {"train": 0, "val": 1}

MIN_CONTRAST = 90.0  # smallest Euclidean RGB distance between foreground and background
PIXELS_PER_CHUNK = 1 << 20  # images rendered together: about 1M pixels (a few tens of MB)
_STRIPE_TILT = np.deg2rad(20.0)  # stripes stay within +-20 degrees of their orientation


# --------------------------------------------------------------------------- signed distances
# Each function takes the object-frame coordinates u, v (float32 arrays, same shape;
# the object fits in the unit disc) plus per-image parameters shaped to broadcast
# against u, and returns the signed distance in object units (negative inside).


def _box(u: np.ndarray, v: np.ndarray, half_w: float, half_h: float) -> np.ndarray:
    """Axis-aligned rectangle |u| <= half_w, |v| <= half_h (exact inside, close outside)."""
    return np.maximum(np.abs(u) - half_w, np.abs(v) - half_h)


def _frac(t: np.ndarray) -> np.ndarray:
    """Fractional part t - floor(t), in [0, 1) (much faster than np.mod for float arrays)."""
    return t - np.floor(t)


def _radius(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Distance from the object's centre, sqrt(u^2 + v^2)."""
    return np.sqrt(u * u + v * v)


def _polygon(u: np.ndarray, v: np.ndarray, sides: int, inradius: float) -> np.ndarray:
    """Regular polygon: fold the angle into one edge's wedge, then distance to that edge.

    phi = atan2(v, u); psi = angle to the nearest edge normal, in [-pi/sides, pi/sides];
    d = r cos(psi) - inradius  (= the largest of the half-plane distances).
    """
    wedge = 2 * np.pi / sides
    psi = (_frac(np.arctan2(v, u) / wedge) - 0.5) * wedge
    return _radius(u, v) * np.cos(psi) - inradius


def _star(u: np.ndarray, v: np.ndarray, points: int = 5, outer: float = 0.95, inner: float = 0.42):
    """Star with `points` tips: fold the angle into the wedge between a dent and a tip.

    In the folded frame the dent is at angle 0, radius `inner`, and the tip at angle
    pi/points, radius `outer`; inside the star means below the line through them.
    """
    wedge = np.pi / points
    # tips at angles 0, 2*wedge, ...; dents halfway between. psi: 0 at a dent, wedge at a tip
    psi = np.abs(_frac(np.arctan2(v, u) / (2 * wedge)) - 0.5) * (2 * wedge)
    r = _radius(u, v)
    px, py = r * np.cos(psi), r * np.sin(psi)
    # edge from dent (inner, 0) to tip (outer*cos w, outer*sin w); unit normal pointing out
    ex, ey = outer * np.cos(wedge) - inner, outer * np.sin(wedge)
    norm = np.hypot(ex, ey)
    nx, ny = ey / norm, -ex / norm
    return (px - inner) * nx + py * ny


# The patterned classes fill a square patch |u|, |v| <= PATCH; their pattern starts at the
# patch's edge (t = u + PATCH or v + PATCH runs from 0 to 2 * PATCH across it).
PATCH = 0.8


def _stripes(t: np.ndarray, period: np.ndarray) -> np.ndarray:
    """Bands along one axis, inside where frac(t / period) < 0.5; distance to the band edge."""
    return (np.abs(_frac(t / period) - 0.25) - 0.25) * period


def _checker(u: np.ndarray, v: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """Checkerboard of square cells of side `cell`: parity gives the sign, grid lines the size."""
    cu, cv = (u + PATCH) / cell, (v + PATCH) / cell
    to_line = np.minimum(np.abs(cu - np.round(cu)), np.abs(cv - np.round(cv))) * cell
    inside = (np.floor(cu) + np.floor(cv)) % 2 == 0
    return np.where(inside, -to_line, to_line)


def _class_distance(k: int, u: np.ndarray, v: np.ndarray, period: np.ndarray) -> np.ndarray:
    """Signed distance of class k (see SHAPE_CLASSES) in object units.

    `period` (per image, broadcastable) is the stripe period or the checkerboard cell side.
    """
    r = _radius(u, v)
    if k == 0:  # circle
        return r - 0.8
    if k == 1:  # square
        return _box(u, v, 0.68, 0.68)
    if k == 2:  # triangle (equilateral, circumradius 1)
        return _polygon(u, v, 3, 0.5)
    if k == 3:  # five-pointed star
        return _star(u, v)
    if k == 4:  # cross (plus sign): union = minimum of two bars
        return np.minimum(_box(u, v, 0.9, 0.28), _box(u, v, 0.28, 0.9))
    if k == 5:  # ring (annulus)
        return np.abs(r - 0.68) - 0.2
    patch = _box(u, v, PATCH, PATCH)
    if k == 6:  # horizontal stripes: bands along v; intersection = maximum
        return np.maximum(patch, _stripes(v + PATCH, period))
    if k == 7:  # vertical stripes
        return np.maximum(patch, _stripes(u + PATCH, period))
    if k == 8:  # checkerboard
        return np.maximum(patch, _checker(u, v, period))
    if k == 9:  # crescent: a disc minus a shifted disc
        return np.maximum(r - 0.85, -(np.hypot(u - 0.42, v) - 0.7))
    raise ValueError(f"no shape class {k}")


# --------------------------------------------------------------------------- parameters


def _draw_parameters(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Everything random about n images except the per-pixel noise: (n,) or (n, 3) arrays."""
    num_classes = len(SHAPE_CLASSES)
    labels = rng.permutation(np.arange(n) % num_classes).astype(np.int64)  # balanced
    radius = rng.uniform(0.38, 0.7, n)  # object radius, in half-image units
    stretch = np.exp(rng.uniform(-0.15, 0.15, n))  # aspect ratio ~ 0.86 .. 1.16
    angle = rng.uniform(0.0, 2 * np.pi, n)
    stripes = (labels == 6) | (labels == 7)
    angle[stripes] = rng.uniform(-_STRIPE_TILT, _STRIPE_TILT, int(stripes.sum()))
    # keep most of the object inside the frame
    centre = rng.uniform(-1.0, 1.0, (n, 2)) * (1.0 - 0.8 * radius)[:, None]
    # stripes: 3 or 4 bands (and the gaps between them) exactly fill the patch, so
    # (bands - 0.5) periods = 2 * PATCH; checkerboard: 4 or 5 cells across the patch
    bands = rng.integers(3, 5, n)
    period = np.where(labels == 8, 2 * PATCH / (bands + 1), 2 * PATCH / (bands - 0.5))

    background = rng.uniform(0, 255, (n, 3))
    foreground = rng.uniform(0, 255, (n, 3))
    too_close = np.linalg.norm(foreground - background, axis=1) < MIN_CONTRAST
    while too_close.any():  # redraw the few foregrounds that would be nearly invisible
        foreground[too_close] = rng.uniform(0, 255, (int(too_close.sum()), 3))
        too_close = np.linalg.norm(foreground - background, axis=1) < MIN_CONTRAST
    return {
        "labels": labels,
        "radius": radius,
        "stretch": stretch,
        "angle": angle,
        "centre": centre,
        "period": period,
        "background": background,
        "foreground": foreground,
        # gradients: a colour change of up to +-60 (background) / +-35 (object) across the
        # image, along a random direction
        "bg_shift": rng.uniform(-60, 60, (n, 3)),
        "bg_dir": rng.uniform(0, 2 * np.pi, n),
        "fg_shift": rng.uniform(-35, 35, (n, 3)),
        "fg_dir": rng.uniform(0, 2 * np.pi, n),
        "noise": rng.uniform(0.0, 14.0, n),  # std of the luminance noise, in 0-255 units
    }


# --------------------------------------------------------------------------- rendering


def _col(a: np.ndarray) -> np.ndarray:
    """(n,) -> (n, 1, 1) float32, to broadcast against an (n, H, W) grid."""
    return np.asarray(a, dtype=np.float32)[:, None, None]


def _ramp(shift: np.ndarray, direction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients of the colour ramp shift * (x cos(dir) + y sin(dir)) / (2 sqrt 2).

    The ramp goes from -shift/2 to +shift/2 corner to corner. shift (n, 3), direction (n,);
    returns the (n, 3) coefficients of x and of y.
    """
    scale = shift / (2 * np.sqrt(2))
    return scale * np.cos(direction)[:, None], scale * np.sin(direction)[:, None]


def _linear_image(x, y, offset, coef_x, coef_y) -> np.ndarray:
    """offset + coef_x * x + coef_y * y per image and channel: (n, S, S, 3) float32.

    x (1, 1, S), y (1, S, 1); offset, coef_x, coef_y (n, 3). The sum of an (n, 1, S, 3)
    and an (n, S, 1, 3) array: only one full-size operation.
    """

    def per_image(a: np.ndarray) -> np.ndarray:
        return a.astype(np.float32)[:, None, None, :]

    return (per_image(offset) + per_image(coef_x) * x[..., None]) + per_image(coef_y) * y[..., None]


def _render(p: dict[str, np.ndarray], image_size: int, noise_rng: np.random.Generator):
    """Draw the images described by parameter dict `p` (n entries): (n, S, S, 3) uint8."""
    n, s = len(p["labels"]), image_size
    # pixel centres in [-1, 1]: x grows to the right, y grows downwards
    grid = ((np.arange(s, dtype=np.float32) + 0.5) / s * 2 - 1).astype(np.float32)
    x, y = grid[None, None, :], grid[None, :, None]  # (1, 1, S) and (1, S, 1)
    dx, dy = x - _col(p["centre"][:, 0]), y - _col(p["centre"][:, 1])  # (n, 1, S), (n, S, 1)

    # object frame: rotate by -angle, divide by the radius, stretch one axis
    cos, sin = _col(np.cos(p["angle"])), _col(np.sin(p["angle"]))
    rad, stretch = _col(p["radius"]), _col(p["stretch"])
    u = (cos * dx + sin * dy) / (rad * stretch)  # (n, S, S)
    v = (cos * dy - sin * dx) / (rad / stretch)

    distance = np.empty((n, s, s), dtype=np.float32)
    for k in range(len(SHAPE_CLASSES)):
        idx = np.flatnonzero(p["labels"] == k)
        if idx.size:
            distance[idx] = _class_distance(k, u[idx], v[idx], _col(p["period"][idx]))
    # coverage: distance in pixels (object units * pixels per unit), one-pixel ramp at the edge
    distance *= rad * (s / 2)
    alpha = np.clip(0.5 - distance, 0.0, 1.0, out=distance)[..., None]  # (n, S, S, 1)

    # image = background + alpha * (foreground - background), each colour a linear ramp
    # (so their difference is one too). The +0.5 makes the final truncation round.
    bg_x, bg_y = _ramp(p["bg_shift"], p["bg_dir"])
    fg_x, fg_y = _ramp(p["fg_shift"], p["fg_dir"])
    image = _linear_image(x, y, p["background"] + 0.5, bg_x, bg_y)
    difference = _linear_image(x, y, p["foreground"] - p["background"], fg_x - bg_x, fg_y - bg_y)
    difference *= alpha
    image += difference
    # luminance noise (the same in R, G, B), uniform with standard deviation p["noise"]
    noise = noise_rng.random((n, s, s), dtype=np.float32) - np.float32(0.5)
    noise *= _col(p["noise"] * np.sqrt(12.0))
    image += noise[..., None]
    return np.clip(image, 0, 255, out=image).astype(np.uint8)


def make_shapes(
    n: int, *, image_size: int = 32, seed: int = 0, split: str = "train"
) -> tuple[np.ndarray, np.ndarray]:
    """Generate n images of the shapes dataset.

    Returns ``(images, labels)``: images uint8 (n, image_size, image_size, 3) NHWC,
    labels int64 (n,) in [0, 10), balanced (each class n // 10 or n // 10 + 1 times)
    and shuffled. The result is a pure function of (n, image_size, seed, split); the
    "train" and "val" splits use different random streams, so they share no image.
    """
    if split not in SPLIT_IDS:
        raise ValueError(f"make_shapes: split must be one of {sorted(SPLIT_IDS)}, got {split!r}")
    if n < 0:
        raise ValueError(f"make_shapes: n must be >= 0, got {n}")
    if image_size < 8:
        raise ValueError(f"make_shapes: image_size must be >= 8, got {image_size}")
    split_id = SPLIT_IDS[split]
    params = _draw_parameters(np.random.default_rng([seed, split_id, 0]), n)

    images = np.empty((n, image_size, image_size, 3), dtype=np.uint8)
    chunk = max(1, PIXELS_PER_CHUNK // (image_size * image_size))  # depends on size only
    for index, start in enumerate(range(0, n, chunk)):
        part = {key: value[start : start + chunk] for key, value in params.items()}
        noise_rng = np.random.default_rng([seed, split_id, 1, index])
        images[start : start + chunk] = _render(part, image_size, noise_rng)
    return images, params["labels"]


def load_shapes(
    split: str = "train", *, image_size: int = 32, size: int | None = None, seed: int = 0
) -> Dataset:
    """The shapes dataset as a :class:`Dataset` (default 10,000 train / 2,000 val images)."""
    if split not in SPLIT_IDS:
        raise ValueError(f"shapes: split must be one of {sorted(SPLIT_IDS)}, got {split!r}")
    n = DEFAULT_SIZES[split] if size is None else int(size)
    images, labels = make_shapes(n, image_size=image_size, seed=seed, split=split)
    return Dataset(images, labels, list(SHAPE_CLASSES), f"shapes-{split}")
